"""Retrain runs in `retraining_job_history`: skipped, running, heartbeat, finished, abandoned."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.core.choices import RunStatus
from retrain_cli.core.processes import pid_alive
from retrain_cli.db.models import AutoRetrainingJob, RetrainingJobHistory
from retrain_cli.db.queries import database_now

HOST = socket.gethostname()
DEFAULT_TIMEOUT_S = 3600


def record_skipped(
    session: Session, job_id: int, trigger: str, detail: str | None, reason: str, now: datetime
) -> RetrainingJobHistory:
    run = RetrainingJobHistory(
        job_id=job_id,
        trigger=trigger,
        trigger_detail=detail,
        status=RunStatus.SKIPPED,
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
        status=RunStatus.RUNNING,
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
        job.last_run_at, job.last_run_status = now, RunStatus.RUNNING
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
    phases: dict[str, float] | None = None,
) -> RetrainingJobHistory:
    run = session.get(RetrainingJobHistory, run_id)
    if run is None:
        raise LookupError(f"run {run_id} vanished")
    run.status, run.finished_at, run.error = status, now, error
    if phases is not None:
        run.phases = dict(phases)
    run.duration_s = (now - run.started_at).total_seconds()
    run.version_id, run.promoted, run.gate = version_id, promoted, gate
    job = session.get(AutoRetrainingJob, run.job_id)
    if job is not None:
        job.last_run_status = status
    session.flush()
    return run


def record_phases(session: Session, run_id: int, phases: dict[str, float]) -> None:
    """The wall seconds of each step, once the last one (registering, which closes the run in
    its own transaction) has ended."""
    run = session.get(RetrainingJobHistory, run_id)
    if run is not None:
        run.phases = dict(phases)


def expire_leases(session: Session) -> int:
    """Mark `abandoned` the running rows whose lease expired, by the database's clock. A row
    another transaction holds locked is skipped, not waited for: its holder is writing it, or
    froze inside a transaction, and a later sweep sees it again."""
    table = RetrainingJobHistory
    clock = database_now(session)
    expired = list(
        session.scalars(
            select(table.id)
            .where(
                table.status == RunStatus.RUNNING,
                table.lease_expires_at.is_not(None),
                table.lease_expires_at < clock,
            )
            .with_for_update(skip_locked=True)  # SQLite has one writer: nothing to skip
        )
    )
    for run_id in expired:
        finish_run(session, run_id, RunStatus.ABANDONED, clock, error="abandoned: lease expired")
    return len(expired)


def sweep_abandoned(session: Session, now: datetime) -> list[int]:
    """Mark `abandoned` the running rows whose process died on this host, or whose heartbeat is
    older than the job's timeout (any host). Returns their ids."""
    expire_leases(session)
    rows = session.execute(
        select(RetrainingJobHistory, AutoRetrainingJob.timeout_s)
        .join(AutoRetrainingJob, AutoRetrainingJob.id == RetrainingJobHistory.job_id)
        .where(RetrainingJobHistory.status == RunStatus.RUNNING)
        .with_for_update(of=RetrainingJobHistory, skip_locked=True)  # as `expire_leases`
    ).all()
    abandoned = []
    for run, timeout_s in rows:
        stale = now - (run.heartbeat_at or run.started_at) > timedelta(
            seconds=timeout_s or DEFAULT_TIMEOUT_S
        )
        if (run.host == HOST and not pid_alive(run.pid)) or stale:
            why = "process died" if not stale else "heartbeat older than the job's timeout"
            finish_run(session, run.id, RunStatus.ABANDONED, now, error=f"abandoned: {why}")
            abandoned.append(run.id)
    return abandoned
