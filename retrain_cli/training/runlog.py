"""Each run's own log, `logs/<job>/run-<run id>.log` under RETRAIN_HOME (0600), beside what `jobs
due --run` captured of the process: what the run did, step by step, how it ended, and the
library warnings raised while it ran. `runs show --log` reads it on the host that ran it (the
history row names the host)."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from retrain_cli.core import paths
from retrain_cli.core.durations import utcnow
from retrain_cli.core.private import append_line


def path_of(logs_dir: Path, job: str, run_id: int) -> Path:
    return paths.job_logs(logs_dir, job) / f"run-{run_id}.log"


class RunLog:
    """Appends time-stamped lines; a line that cannot be written never fails the run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def line(self, text: str) -> None:
        try:
            append_line(self.path, f"{utcnow().isoformat(timespec='seconds')} {text}")
        except OSError:
            return

    @contextmanager
    def warnings(self) -> Iterator[None]:
        """Library warnings raised inside go to the log and then on as before (the command's
        `warnings.log`). Only on the main thread: `warnings.catch_warnings` swaps process-wide
        state, which a run on another thread (a test's race) must not touch."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                yield
            finally:
                for w in caught:
                    self.line(f"warning: {w.category.__name__}: {' '.join(str(w.message).split())}")
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
