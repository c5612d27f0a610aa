"""The Dask cluster that jobs with `compute: dask` send their heavy work to.

Dask is the optional `dask` extra (`pip install 'retrain-cli[dask]'`); nothing imports it before a
job needs it. Without the packages, or without a scheduler (`dask.scheduler` in the config file or
`RETRAIN_DASK_SCHEDULER`), the work runs here, as for `compute: local`, and results say so. A
scheduler that is configured but cannot be reached is an error: one line, the job fails.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from retrain_cli.core.choices import Compute
from retrain_cli.core.durations import utcnow
from retrain_cli.core.errors import DataError, RetrainError
from retrain_cli.core.private import append_line
from retrain_cli.core.redaction import redact_url

if TYPE_CHECKING:
    from distributed import Client


class Cluster:
    """A connection made on first use and closed with the command. What Dask logs goes to
    `log` (the warnings log), not between the command's output and its one error line."""

    def __init__(self, scheduler: str | None, timeout_s: float, log: Path | None = None) -> None:
        self.scheduler = scheduler
        self.timeout_s = timeout_s
        self.log = log
        self._client: Client | None = None

    def local_reason(self) -> str | None:
        """Why work asked for on the cluster runs here instead; None when it can go there."""
        if importlib.util.find_spec("distributed") is None:
            return "the dask extra is not installed (pip install 'retrain-cli[dask]')"
        if not self.scheduler:
            return "no Dask scheduler configured (dask.scheduler or RETRAIN_DASK_SCHEDULER)"
        return None

    def placement(self, compute: Compute) -> tuple[Cluster | None, str | None]:
        """Where work of a job with this `compute` runs: here (None) or on this cluster, and
        why a job that asked for the cluster runs here."""
        if compute is not Compute.DASK:
            return None, None
        note = self.local_reason()
        return (self if note is None else None), note

    def client(self) -> Client:
        if self._client is None:
            from distributed import Client

            if self.log is not None:
                route_library_logs("distributed", self.log)
            assert self.scheduler is not None
            try:
                self._client = Client(self.scheduler, timeout=self.timeout_s, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise DataError(
                    f"the Dask scheduler {redact_url(self.scheduler)} is unreachable "
                    f"(waited {self.timeout_s:g} s): {_first_line(exc)}"
                ) from exc
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _AppendToLog(logging.Handler):
    """Each record as one line of a private log (passwords scrubbed, as every log)."""

    def __init__(self, path: Path) -> None:
        super().__init__(logging.WARNING)
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        text = " ".join(self.format(record).split())
        with contextlib.suppress(OSError):  # a log line must never fail the command
            append_line(self.path, f"{utcnow().isoformat()} {record.name}: {text}")


def route_library_logs(prefix: str, path: Path) -> None:
    """Send the records of a library's loggers (`distributed`, `distributed.client`, ...),
    tracebacks included, to `path` instead of the terminal: a scheduler lost mid-training
    would otherwise print thirty lines of traceback before the one `Error:` line."""
    names = [prefix, *(n for n in logging.root.manager.loggerDict if n.startswith(f"{prefix}."))]
    for name in names:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            terminal = isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler
            )
            if terminal or isinstance(handler, _AppendToLog):
                logger.removeHandler(handler)
        if name == prefix or not logger.propagate:
            logger.addHandler(_AppendToLog(path))
            logger.propagate = False


def run_all(
    client: Client, function: Any, items: list[Any], broadcast: dict[str, Any], **shared: Any
) -> Iterator[Any]:
    """`function(item, **broadcast, **shared)` for each item on the cluster, yielding results as
    they come; `broadcast` values are sent to every worker once. The futures are cancelled when
    the caller stops early (an error, a kill)."""
    from distributed import as_completed

    sent = {name: client.scatter(value, broadcast=True) for name, value in broadcast.items()}
    futures = client.map(function, items, pure=False, **sent, **shared)
    try:
        for future in as_completed(futures, loop=client.loop):
            try:
                result = future.result()
            except RetrainError:
                raise
            except Exception as exc:  # a worker without retrain-cli, a file it cannot read
                raise DataError(f"a task on the Dask cluster failed: {_first_line(exc)}") from exc
            yield result
    finally:
        client.cancel(futures)


def gather(
    client: Client, function: Any, items: list[Any], *more: list[Any], **shared: Any
) -> list[Any]:
    """`function(item, *more's items, **shared)` for each item (data or futures on the
    cluster), the results in the items' order; the tasks are cancelled when one fails or the
    caller is interrupted."""
    futures = client.map(function, items, *more, pure=False, **shared)
    try:
        return list(client.gather(futures))
    except RetrainError:  # the task's own one-line error (bad data), as it would be here
        raise
    except Exception as exc:
        raise DataError(f"a task on the Dask cluster failed: {_first_line(exc)}") from exc
    finally:
        client.cancel(futures)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
