"""The retraining history as operators read it (`runs list`, `runs show`), and `runs cancel`:
a request recorded on the running row, which the run's heartbeat reads and acts on."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from retrain_cli.core.choices import RunStatus
from retrain_cli.core.errors import ConflictError, NotFoundError
from retrain_cli.db.models import AutoRetrainingJob, ModelVersionManagement, RetrainingJobHistory
from retrain_cli.db.session import session_scope

DEFAULT_LIMIT = 50


@dataclass
class Run:
    """One row of the history, with its job's name and the version it made."""

    id: int
    job: str
    status: str
    trigger: str
    trigger_detail: str | None
    host: str
    pid: int
    slot: int | None
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    heartbeat_at: datetime | None
    model: str | None = None
    version: int | None = None
    promoted: bool | None = None
    error: str | None = None
    phases: dict[str, float] = field(default_factory=dict)
    gate: dict[str, Any] | None = None
    scheduled_for: datetime | None = None
    cancel_requested_at: datetime | None = None
    cancelled_by: str | None = None


def _query() -> Any:
    runs, jobs, versions = RetrainingJobHistory, AutoRetrainingJob, ModelVersionManagement
    return (
        select(runs, jobs.name, versions.model_name, versions.version)
        .join(jobs, jobs.id == runs.job_id)
        .outerjoin(versions, versions.id == runs.version_id)
    )


def _run(row: Any) -> Run:
    run, job, model, version = row
    return Run(
        id=run.id,
        job=job,
        status=run.status,
        trigger=run.trigger,
        trigger_detail=run.trigger_detail,
        host=run.host,
        pid=run.pid,
        slot=run.slot,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_s=run.duration_s,
        heartbeat_at=run.heartbeat_at,
        model=model,
        version=version,
        promoted=run.promoted,
        error=run.error,
        phases=dict(run.phases or {}),
        gate=run.gate,
        scheduled_for=run.scheduled_for,
        cancel_requested_at=run.cancel_requested_at,
        cancelled_by=run.cancelled_by,
    )


def list_runs(
    session: Session,
    *,
    job: str | None = None,
    status: RunStatus | None = None,
    since: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[Run]:
    """The newest runs first, at most `limit`."""
    runs = RetrainingJobHistory
    query = _query()
    if job is not None:
        query = query.where(AutoRetrainingJob.name == job)
    if status is not None:
        query = query.where(runs.status == status)
    if since is not None:
        query = query.where(runs.started_at >= since)
    query = query.order_by(runs.started_at.desc(), runs.id.desc()).limit(limit)
    return [_run(row) for row in session.execute(query).all()]


def get_run(session: Session, run_id: int) -> Run:
    row = session.execute(_query().where(RetrainingJobHistory.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"no run {run_id} (see `retrain-cli runs list`)")
    return _run(row)


def request_cancel(session: Session, run_id: int, actor: str, now: datetime) -> Run:
    """Record the cancel on the running row (a second request keeps the first's actor and
    time); the run's heartbeat reads it and stops the run, which records `cancelled`."""
    run = get_run(session, run_id)
    if run.status != RunStatus.RUNNING:
        raise ConflictError(f"run {run_id} is not running ({run.status}): nothing to cancel")
    table = RetrainingJobHistory
    session.execute(
        update(table)
        .where(
            table.id == run_id,
            table.status == RunStatus.RUNNING,
            table.cancel_requested_at.is_(None),
        )
        .values(cancel_requested_at=now, cancelled_by=actor)
    )
    session.flush()
    session.expire_all()
    return get_run(session, run_id)


def wait_until_finished(
    engine: Engine, run_id: int, timeout_s: float, poll_s: float = 0.5
) -> Run | None:
    """The run once it is no longer `running`, or None when `timeout_s` passed first."""
    deadline = time.monotonic() + timeout_s
    while True:
        with session_scope(engine) as session:
            run = get_run(session, run_id)
        if run.status != RunStatus.RUNNING:
            return run
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll_s)
