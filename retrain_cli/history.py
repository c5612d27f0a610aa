"""Retrain runs in `retraining_job_history`: skipped, running, heartbeat, finished, abandoned."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
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
    session: Session, job_id: int, trigger: str, detail: str | None, now: datetime
) -> RetrainingJobHistory:
    run = RetrainingJobHistory(
        job_id=job_id,
        trigger=trigger,
        trigger_detail=detail,
        status="running",
        host=HOST,
        pid=os.getpid(),
        started_at=now,
        heartbeat_at=now,
    )
    session.add(run)
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


def beat(session: Session, run_id: int, now: datetime) -> bool:
    """Renew the heartbeat; False when the run is no longer `running` (someone marked it
    abandoned), so its holder must stop."""
    result = session.execute(
        update(RetrainingJobHistory)
        .where(RetrainingJobHistory.id == run_id, RetrainingJobHistory.status == "running")
        .values(heartbeat_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


def sweep_abandoned(session: Session, now: datetime) -> list[int]:
    """Mark `abandoned` the running rows whose process died on this host, or whose heartbeat is
    older than the job's timeout (any host). Returns their ids."""
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
