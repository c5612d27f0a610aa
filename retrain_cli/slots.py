"""Retrain slots: at most N retrains at once, one run per job, and the lease that proves it.

Two kinds of slot, used together by `acquire` (one factory, one `Lease`):

- Host slots: one `flock`ed file per slot (and one per job) in a private lock directory. The
  kernel releases a flock when its holder exits for any reason, SIGKILL included.
- Database slots (many hosts on one PostgreSQL): claiming a slot is inserting the run's
  `running` history row with a slot number and a lease expiry on the database clock; a partial
  unique index admits one running row per slot and per job, so racing claimers cannot
  over-admit. Without database slots (SQLite) the row is inserted without a number, and the
  per-job index alone keeps a job from running twice.

A `Heartbeat` renews the row's heartbeat (and lease) while the run goes on.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from retrain_cli import history
from retrain_cli.db.session import session_scope
from retrain_cli.durations import utcnow
from retrain_cli.errors import BusyError, ConfigError, RetrainError
from retrain_cli.settings import Settings

POLL_SECONDS = 0.2  # between tries for a host slot
CLAIM_POLL_SECONDS = 0.5  # between tries for a database slot


class LeaseLost(RetrainError):
    """The run's database lease expired (the process was frozen or cut off): stop, register
    nothing, and leave the slot to whoever holds it now."""


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
        job_lock = self._try_lock(self.directory / f"job-{job}.lock")
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
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise ConfigError(f"cannot use the lock directory {self.directory}: {exc}") from exc

    def _slot_path(self, slot: int) -> Path:
        return self.directory / f"slot-{slot}.lock"

    @staticmethod
    def _try_lock(path: Path) -> IO[str] | None:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (kept open while held)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return handle

    def _holder(self, job: str) -> str:
        try:
            text = (self.directory / f"job-{job}.lock").read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        return f"held by {text}" if text else "held by another process"


def _write_holder(handle: IO[str]) -> None:
    """Record who holds the lock, for the message a second attempt prints."""
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()


@dataclass(frozen=True)
class Claim:
    """Who asks for a slot: the job, why, and the cron fire time it serves (if any)."""

    job_id: int
    job: str
    trigger: str
    detail: str | None = None
    scheduled_for: datetime | None = None


def acquire(
    engine: Engine, settings: Settings, claim: Claim, wait_seconds: float, host: HostSlots
) -> Lease:
    """The host's slot (fail fast), then the running row in a database slot, both within
    `wait_seconds`; BusyError (exit 75) when either is taken."""
    lease = host.acquire(claim.job, wait_seconds)
    try:
        lease.run_id = _claim_within(engine, settings, claim, wait_seconds)
    except BaseException:
        lease.release()
        raise
    return lease


def file_slots(settings: Settings) -> FileSlots:
    return FileSlots(settings.locks_dir, settings.max_concurrent_retrains)


class _AllSlotsBusy(BusyError):
    """Every database slot is held (worth waiting for, unlike "this job is running")."""


def _claim_within(engine: Engine, settings: Settings, claim: Claim, wait_seconds: float) -> int:
    """Claim a slot, retrying until `wait_seconds` pass while every slot is held elsewhere."""
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    while True:
        try:
            return _claim(engine, settings, claim)
        except _AllSlotsBusy:
            if time.monotonic() >= deadline:
                raise
            time.sleep(CLAIM_POLL_SECONDS)


def _claim(engine: Engine, settings: Settings, claim: Claim) -> int:
    """Insert the running row: with database slots, into the first free slot (each try its own
    transaction; the unique index, not a count, decides races); raise BusyError otherwise."""
    slots: list[int | None] = (
        list(range(settings.max_concurrent_retrains)) if settings.database_slots else [None]
    )
    lease_s = settings.lease_ttl_s if settings.database_slots else None
    for slot in slots:
        try:
            with session_scope(engine, check_schema=False) as session:
                if slot == 0:
                    history.expire_leases(session)
                return history.start_run(
                    session,
                    claim.job_id,
                    claim.trigger,
                    claim.detail,
                    utcnow(),
                    slot=slot,
                    lease_s=lease_s,
                    scheduled_for=claim.scheduled_for,
                ).id
        except IntegrityError:
            _explain_conflict(engine, claim)  # raises when the job itself is the reason
    raise _AllSlotsBusy(
        f"all {settings.max_concurrent_retrains} retrain slots are busy across hosts"
    )


def _explain_conflict(engine: Engine, claim: Claim) -> None:
    from retrain_cli.db.models import RetrainingJobHistory as Run

    with session_scope(engine, check_schema=False) as session:
        holder = session.scalar(
            select(Run).where(Run.job_id == claim.job_id, Run.status == "running")
        )
        if holder is not None:
            raise BusyError(
                f"job {claim.job!r} is already running (run {holder.id}, pid "
                f"{holder.pid} on {holder.host})"
            )
        if claim.scheduled_for is not None and session.scalar(
            select(Run.id).where(
                Run.job_id == claim.job_id, Run.scheduled_for == claim.scheduled_for
            )
        ):
            raise BusyError(
                f"job {claim.job!r} already ran for the fire time {claim.scheduled_for.isoformat()}"
            )


class Heartbeat:
    """Renews the run's heartbeat (and lease) from a thread; `check` raises once the run was
    taken away or, with a lease, once no renewal succeeded for a whole lease (a frozen or
    cut-off process learns it at its next step, before any renewal)."""

    def __init__(self, engine: Engine, settings: Settings, run_id: int, interval: float) -> None:
        self.engine, self.run_id, self.interval = engine, run_id, interval
        self.lease_s = settings.lease_ttl_s if settings.database_slots else None
        self._stop = threading.Event()
        self._lost = False
        self._renewed = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def check(self) -> None:
        if self._lost:
            raise LeaseLost("the run was marked abandoned by another process: stopping")
        if self.lease_s is not None and time.monotonic() - self._renewed > self.lease_s:
            self._lost = True
            raise LeaseLost("the run's lease expired before it could be renewed: stopping")

    def fence(self, session: Any) -> None:
        """Renew inside the registering transaction: only a live lease may register."""
        self.check()
        if not history.beat(session, self.run_id, utcnow(), self.lease_s):
            self._lost = True
            raise LeaseLost("the run's lease was lost before registering: nothing registered")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with session_scope(self.engine, check_schema=False) as session:
                    if not history.beat(session, self.run_id, utcnow(), self.lease_s):
                        self._lost = True
                        return
                self._renewed = time.monotonic()
            except RetrainError:
                continue  # a missed beat is retried; the lease bounds how long that can last
