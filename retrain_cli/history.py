"""Retrain runs in `retraining_job_history`: skipped, running, heartbeat, finished, abandoned."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from retrain_cli.db.models import AutoRetrainingJob, RetrainingJobHistory

HOST = socket.gethostname()
DEFAULT_TIMEOUT_S = 3600


def record_skipped(
    session: Session, job_id: int, trigger: str, detail: str | None, reason: str, now: datetime
) -> RetrainingJobHistory:
    run = RetrainingJobHistory(
        job_id=job_id,
        trigger=trigger,
        trigger_detail=detail,
        status="skipped",
        host=HOST,
        pid=os.getpid(),
        started_at=now,
        finished_at=now,
        duration_s=0.0,
        error=reason,
    )
    session.add(run)
    session.flush()
    return run


def start_run(
    session: Session,
    job_id: int,
    trigger: str,
    detail: str | None,
    now: datetime,
    *,
    slot: int | None = None,
    lease_s: float | None = None,
    scheduled_for: datetime | None = None,
) -> RetrainingJobHistory:
    """Insert the running row. With `slot`, this insert is the claim of a database slot: the
    partial unique index on running slots lets exactly one of any racing claimers in."""
    run = RetrainingJobHistory(
        job_id=job_id,
        trigger=trigger,
        trigger_detail=detail,
        status="running",
        host=HOST,
        pid=os.getpid(),
        started_at=now,
        heartbeat_at=now,
        slot=slot,
        scheduled_for=scheduled_for,
    )
    if lease_s is not None:
        run.lease_expires_at = database_now(session) + timedelta(seconds=lease_s)
    session.add(run)
    session.flush()  # the claim: a conflicting running row fails here
    job = session.get(AutoRetrainingJob, job_id)
    if job is not None:
        job.last_run_at, job.last_run_status = now, "running"
    session.flush()
    return run


def finish_run(
    session: Session,
    run_id: int,
    status: str,
    now: datetime,
    *,
    error: str | None = None,
    version_id: int | None = None,
    promoted: bool | None = None,
    gate: dict[str, Any] | None = None,
) -> RetrainingJobHistory:
    run = session.get(RetrainingJobHistory, run_id)
    if run is None:
        raise LookupError(f"run {run_id} vanished")
    run.status, run.finished_at, run.error = status, now, error
    run.duration_s = (now - run.started_at).total_seconds()
    run.version_id, run.promoted, run.gate = version_id, promoted, gate
    job = session.get(AutoRetrainingJob, run.job_id)
    if job is not None:
        job.last_run_status = status
    session.flush()
    return run


def beat(session: Session, run_id: int, now: datetime, lease_s: float | None = None) -> bool:
    """Renew the heartbeat (and the lease); False when the run is no longer `running` or its
    lease already expired (another host may hold the slot now), so its holder must stop."""
    table = RetrainingJobHistory
    values: dict[str, Any] = {"heartbeat_at": now}
    conditions = [table.id == run_id, table.status == "running"]
    if lease_s is not None:
        clock = database_now(session)
        values["lease_expires_at"] = clock + timedelta(seconds=lease_s)
        conditions.append(or_(table.lease_expires_at.is_(None), table.lease_expires_at >= clock))
    result = session.execute(update(table).where(*conditions).values(**values))
    return bool(getattr(result, "rowcount", 0))


def expire_leases(session: Session) -> int:
    """Mark `abandoned` the running rows whose lease expired, by the database's clock."""
    table = RetrainingJobHistory
    clock = database_now(session)
    expired = list(
        session.scalars(
            select(table.id).where(
                table.status == "running",
                table.lease_expires_at.is_not(None),
                table.lease_expires_at < clock,
            )
        )
    )
    for run_id in expired:
        finish_run(session, run_id, "abandoned", clock, error="abandoned: lease expired")
    return len(expired)


def database_now(session: Session) -> datetime:
    """The database server's clock (PostgreSQL), shared by every host; on SQLite (one host)
    this host's clock."""
    from retrain_cli.durations import utcnow

    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        value = session.scalar(select(func.clock_timestamp()))
        if isinstance(value, datetime):
            return value.astimezone(UTC)
    return utcnow()


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
        .where(table.status == "running", table.slot.is_not(None))
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


def sweep_abandoned(session: Session, now: datetime) -> list[int]:
    """Mark `abandoned` the running rows whose process died on this host, or whose heartbeat is
    older than the job's timeout (any host). Returns their ids."""
    expire_leases(session)
    rows = session.execute(
        select(RetrainingJobHistory, AutoRetrainingJob.timeout_s)
        .join(AutoRetrainingJob, AutoRetrainingJob.id == RetrainingJobHistory.job_id)
        .where(RetrainingJobHistory.status == "running")
    ).all()
    abandoned = []
    for run, timeout_s in rows:
        stale = now - (run.heartbeat_at or run.started_at) > timedelta(
            seconds=timeout_s or DEFAULT_TIMEOUT_S
        )
        if (run.host == HOST and not pid_alive(run.pid)) or stale:
            why = "process died" if not stale else "heartbeat older than the job's timeout"
            finish_run(session, run.id, "abandoned", now, error=f"abandoned: {why}")
            abandoned.append(run.id)
    return abandoned


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
