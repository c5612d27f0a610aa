"""LightGBM's C++ core writes `[LightGBM] [Fatal] <message>` straight to file descriptor 2 and
then raises the same message as a Python exception, which the CLI prints as its one error line.
While native training or scoring runs, descriptor 2 points at a temporary file; Python's own
`sys.stderr` (a progress bar, the error line) keeps the terminal. Whatever else was captured is
written back to `sys.stderr` afterwards; the fatal echo is not.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import TextIO

FATAL_PREFIX = "[LightGBM] [Fatal]"
_lock = threading.Lock()  # descriptor 2 is one per process


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[None]:
    with _lock, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        swapped = _uses_fd_2(sys.stderr)
        python_stderr = sys.stderr
        try:
            os.dup2(sink.fileno(), 2)
            if swapped:  # Python's writes keep going where they went
                sys.stderr = open(os.dup(saved), "w", encoding="utf-8", errors="replace")  # noqa: SIM115
            yield
        finally:
            if swapped:
                sys.stderr.close()
                sys.stderr = python_stderr
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [
                line
                for line in sink.read().decode("utf-8", "replace").splitlines()
                if line.strip() and not line.startswith(FATAL_PREFIX)
            ]
            if kept:
                python_stderr.write("\n".join(kept) + "\n")


def _uses_fd_2(stream: TextIO) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False
