"""Host slots: one `flock`ed file per slot (and one per job) in a private lock directory. The
kernel releases a flock when its holder exits for any reason, SIGKILL included."""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from retrain_cli.core import paths
from retrain_cli.core.errors import BusyError, ConfigError
from retrain_cli.core.private import FILE_MODE, private_dir
from retrain_cli.core.settings import Settings

POLL_SECONDS = 0.2  # between tries for a host slot


@dataclass
class Lease:
    """A held slot (and the job's lock), and the running row that claimed it; `release` is
    idempotent."""

    slot: int
    run_id: int = 0
    _handles: list[IO[str]] = field(default_factory=list, repr=False)

    def release(self) -> None:
        while self._handles:
            handle = self._handles.pop()
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


class HostSlots(Protocol):
    """This host's slots: the job's lock at once and a slot within `wait_seconds`, or
    BusyError. `FileSlots` is the implementation; tests may pass their own."""

    def acquire(self, job: str, wait_seconds: float) -> Lease: ...

    def slots_in_use(self) -> int: ...


class FileSlots:
    """flock-based slots under `directory` (created 0700: not a shared temp directory)."""

    def __init__(
        self,
        directory: Path,
        slots: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.directory = directory
        self.slots = slots
        self._clock, self._sleep = clock, sleep

    def acquire(self, job: str, wait_seconds: float) -> Lease:
        self._prepare()
        lease = Lease(slot=-1)
        job_lock = self._try_lock(paths.job_lock(self.directory, job))
        if job_lock is None:
            raise BusyError(f"job {job!r} is already running ({self._holder(job)})")
        _write_holder(job_lock)
        lease._handles.append(job_lock)
        deadline = self._clock() + max(wait_seconds, 0.0)
        while True:
            for slot in range(self.slots):
                handle = self._try_lock(self._slot_path(slot))
                if handle is not None:
                    _write_holder(handle)
                    lease.slot = slot
                    lease._handles.append(handle)
                    return lease
            if self._clock() >= deadline:
                lease.release()
                raise BusyError(
                    f"all {self.slots} retrain slots are busy"
                    + (f" (waited {wait_seconds:g}s)" if wait_seconds > 0 else "")
                )
            self._sleep(POLL_SECONDS)

    def slots_in_use(self) -> int:
        if not self.directory.is_dir():
            return 0
        busy = 0
        for slot in range(self.slots):
            handle = self._try_lock(self._slot_path(slot))
            if handle is None:
                busy += 1
            else:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
        return busy

    def _prepare(self) -> None:
        try:
            private_dir(self.directory)
            os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise ConfigError(f"cannot use the lock directory {self.directory}: {exc}") from exc

    def _slot_path(self, slot: int) -> Path:
        return paths.slot_lock(self.directory, slot)

    @staticmethod
    def _try_lock(path: Path) -> IO[str] | None:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, FILE_MODE)  # job names: private
        handle = os.fdopen(fd, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return handle

    def _holder(self, job: str) -> str:
        try:
            text = paths.job_lock(self.directory, job).read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        return f"held by {text}" if text else "held by another process"


def _write_holder(handle: IO[str]) -> None:
    """Record who holds the lock, for the message a second attempt prints."""
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()


def file_slots(settings: Settings) -> FileSlots:
    return FileSlots(settings.locks_dir, settings.max_concurrent_retrains)
