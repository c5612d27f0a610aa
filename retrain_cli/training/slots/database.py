"""Database slots, for many hosts on one PostgreSQL: claiming a slot is inserting the run's
`running` history row with a slot number and a lease expiry on the database clock. A partial
unique index admits one running row per slot and per job, so racing claimers cannot over-admit.
Without database slots (SQLite) the row is inserted without a number, and the per-job index
alone keeps a job from running twice."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from retrain_cli.core.choices import RunStatus
from retrain_cli.core.durations import utcnow
from retrain_cli.core.errors import BusyError, DatabaseError
from retrain_cli.core.settings import Settings
from retrain_cli.db.models import AutoRetrainingJob, RetrainingJobHistory
from retrain_cli.db.models import RetrainingJobHistory as Run
from retrain_cli.db.queries import database_now
from retrain_cli.db.session import session_scope
from retrain_cli.training import history

CLAIM_POLL_SECONDS = 0.5  # between tries for a database slot
# a live holder's write commits within milliseconds; a holder frozen inside its transaction
# would keep a claimer waiting on its row until it resumes: its slot counts as busy instead
CLAIM_LOCK_TIMEOUT = "2s"
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout


@dataclass(frozen=True)
class Claim:
    """Who asks for a slot: the job, why, and the cron fire time it serves (if any)."""

    job_id: int
    job: str
    trigger: str
    detail: str | None = None
    scheduled_for: datetime | None = None


class _AllSlotsBusy(BusyError):
    """Every database slot is held (worth waiting for, unlike "this job is running")."""


def claim_within(engine: Engine, settings: Settings, claim: Claim, wait_seconds: float) -> int:
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
                if session.get_bind().dialect.name == "postgresql":
                    session.execute(text(f"SET LOCAL lock_timeout = '{CLAIM_LOCK_TIMEOUT}'"))
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
        except DatabaseError as exc:  # `session_scope`'s, from the driver's OperationalError
            if not _lock_timed_out(exc):
                raise  # otherwise the slot's holder is frozen inside a transaction: the next
    raise _AllSlotsBusy(
        f"all {settings.max_concurrent_retrains} retrain slots are busy across hosts"
    )


def _lock_timed_out(exc: DatabaseError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, OperationalError) and (
        getattr(cause.orig, "pgcode", None) == LOCK_NOT_AVAILABLE
    )


def _explain_conflict(engine: Engine, claim: Claim) -> None:

    with session_scope(engine, check_schema=False) as session:
        holder = session.scalar(
            select(Run).where(Run.job_id == claim.job_id, Run.status == RunStatus.RUNNING)
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


class Beat(StrEnum):
    """What renewing a run's heartbeat found."""

    RENEWED = "renewed"
    LOST = "lost"  # no longer `running`, or its lease expired: another host may hold the slot
    CANCELLED = "cancelled"  # renewed, and an operator asked it to stop (`runs cancel`)


def beat(session: Session, run_id: int, now: datetime, lease_s: float | None = None) -> Beat:
    """Renew the heartbeat (and the lease) and read the cancel request in the same statement;
    LOST when the run is no longer `running` or its lease already expired, so its holder must
    stop."""
    table = RetrainingJobHistory
    values: dict[str, Any] = {"heartbeat_at": now}
    conditions = [table.id == run_id, table.status == RunStatus.RUNNING]
    if lease_s is not None:
        clock = database_now(session)
        values["lease_expires_at"] = clock + timedelta(seconds=lease_s)
        conditions.append(or_(table.lease_expires_at.is_(None), table.lease_expires_at >= clock))
    statement = update(table).where(*conditions).values(**values)
    renewed = session.execute(statement.returning(table.cancel_requested_at)).first()
    if renewed is None:
        return Beat.LOST
    return Beat.RENEWED if renewed.cancel_requested_at is None else Beat.CANCELLED


def running_slots(session: Session) -> list[dict[str, Any]]:
    """The database slots held now: which host and run holds each, and the lease's age."""
    table, job = RetrainingJobHistory, AutoRetrainingJob
    clock = database_now(session)
    rows = session.execute(
        select(
            table.slot,
            table.host,
            table.pid,
            table.id,
            job.name,
            table.started_at,
            table.heartbeat_at,
            table.lease_expires_at,
        )
        .join(job, job.id == table.job_id)
        .where(table.status == RunStatus.RUNNING, table.slot.is_not(None))
        .order_by(table.slot)
    )
    return [
        {
            "slot": slot,
            "host": host,
            "pid": pid,
            "run_id": run_id,
            "job": name,
            "held_s": (clock - started).total_seconds(),
            "lease_age_s": (clock - (beat or started)).total_seconds(),
            "lease_expires_in_s": (expires - clock).total_seconds() if expires else None,
        }
        for slot, host, pid, run_id, name, started, beat, expires in rows
    ]


def slots_held(session: Session) -> int:
    """How many database slots are held now, across hosts."""
    table = RetrainingJobHistory
    count = session.scalar(
        select(func.count())
        .select_from(table)
        .where(table.status == RunStatus.RUNNING, table.slot.is_not(None))
    )
    return int(count or 0)
