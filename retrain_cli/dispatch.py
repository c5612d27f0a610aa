"""`jobs due`: read every enabled job's state in a few set-based queries, decide, start runs.

The queries are per table, not per job (10,000 jobs and 1M history rows stay well under a
second): jobs carry their last run's start and status; the newest drift, performance and
active-version facts are one grouped query each.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from retrain_cli import schedule
from retrain_cli.db.models import (
    AutoRetrainingConfig,
    AutoRetrainingJob,
    ModelDriftMonitoring,
    ModelPerformanceTracking,
    ModelVersionManagement,
    RetrainingJobHistory,
)
from retrain_cli.schedule import JobState, Verdict
from retrain_cli.semaphore import FileSemaphore
from retrain_cli.settings import Settings


@dataclass
class DueReport:
    now: datetime
    due: list[Verdict]
    running: list[Verdict]
    backoff: list[Verdict]
    not_due: int
    started: list[dict[str, Any]] = field(default_factory=list)


def due_jobs(session: Session, now: datetime) -> DueReport:
    """Every enabled job's verdict at `now`; due jobs by priority, then the oldest last run."""
    verdicts = [schedule.evaluate(state, now) for state in job_states(session)]
    due = [v for v in verdicts if v.is_due]
    due.sort(
        key=lambda v: (-v.priority, v.last_run_at or datetime.min.replace(tzinfo=now.tzinfo), v.job)
    )
    return DueReport(
        now=now,
        due=due,
        running=[v for v in verdicts if v.state == "running"],
        backoff=[v for v in verdicts if v.state == "backoff"],
        not_due=sum(v.state == "not_due" for v in verdicts),
    )


def job_states(session: Session) -> list[JobState]:
    configs = {c.model_type: c for c in session.scalars(select(AutoRetrainingConfig))}
    jobs = list(session.scalars(select(AutoRetrainingJob).where(AutoRetrainingJob.enabled)))
    drift = _newest_drift(session)
    degraded = _newest_performance(session)
    active = dict(
        session.execute(
            select(ModelVersionManagement.model_name, ModelVersionManagement.created_at).where(
                ModelVersionManagement.status == "active"
            )
        ).all()
    )
    finished = _failed_finish_times(
        session, [j.id for j in jobs if j.last_run_status in schedule.FAILED]
    )
    states = []
    for job in jobs:
        config = configs[job.model_type]
        drift_at, drift_detail = drift.get(job.model_name, (None, None))
        perf_at, perf_detail = degraded.get(job.model_name, (None, None))
        states.append(
            JobState(
                job=job.name,
                model=job.model_name,
                priority=job.priority,
                schedule=job.schedule or config.schedule,
                timezone=job.timezone,
                triggers=frozenset(job.triggers),
                created_at=job.created_at,
                retry_backoff_s=job.spec.get("retry_backoff", 1800),
                max_model_age_s=job.max_model_age_s or config.max_model_age_s,
                last_run_at=job.last_run_at,
                last_run_status=job.last_run_status,
                last_finished_at=finished.get(job.id),
                manual_requested_at=job.manual_requested_at,
                manual_reason=job.manual_reason,
                drift_at=drift_at,
                drift_detail=drift_detail,
                degraded_at=perf_at,
                degraded_detail=perf_detail,
                active_created_at=active.get(job.model_name),
            )
        )
    return states


def _newest_drift(session: Session) -> dict[str, tuple[datetime, str | None]]:
    """Per model, the newest dataset-level drift result: (when, detail if drifted)."""
    table = ModelDriftMonitoring
    newest = (
        select(table.model_name, func.max(table.checked_at).label("at"))
        .where(table.scope == "dataset")
        .group_by(table.model_name)
        .subquery()
    )
    rows = session.execute(
        select(table.model_name, table.checked_at, table.drifted, table.drift_share)
        .join(
            newest, and_(table.model_name == newest.c.model_name, table.checked_at == newest.c.at)
        )
        .where(table.scope == "dataset")
    )
    return {
        m: (at, f"drift share {share:.2f} at {at.isoformat()}" if drifted else None)
        for m, at, drifted, share in rows
    }


def _newest_performance(session: Session) -> dict[str, tuple[datetime, str | None]]:
    """Per model, the newest primary performance result: (when, detail if degraded)."""
    table = ModelPerformanceTracking
    newest = (
        select(table.model_name, func.max(table.checked_at).label("at"))
        .where(table.is_primary)
        .group_by(table.model_name)
        .subquery()
    )
    rows = session.execute(
        select(table.model_name, table.checked_at, table.metric, table.value, table.degraded)
        .join(
            newest, and_(table.model_name == newest.c.model_name, table.checked_at == newest.c.at)
        )
        .where(table.is_primary)
    )
    return {
        m: (at, f"{metric} {value:.4g} degraded at {at.isoformat()}" if degraded else None)
        for m, at, metric, value, degraded in rows
    }


def _failed_finish_times(session: Session, job_ids: list[int]) -> dict[int, datetime]:
    if not job_ids:
        return {}
    table = RetrainingJobHistory
    rows = session.execute(
        select(table.job_id, func.max(table.finished_at))
        .where(table.job_id.in_(job_ids), table.status.in_(schedule.FAILED))
        .group_by(table.job_id)
    )
    return {job_id: at for job_id, at in rows if at is not None}


def start_due(report: DueReport, settings: Settings, database_url: str | None) -> None:
    """Start the highest-priority due jobs as detached `retrain-cli retrain` processes, at most
    as many as there are free slots now; the rest stay due for the next tick."""
    free = (
        settings.max_concurrent_retrains
        - FileSemaphore(settings.locks_dir, settings.max_concurrent_retrains).slots_in_use()
    )
    for verdict in report.due[: max(free, 0)]:
        reason = verdict.reasons[0]
        log = _log_path(settings, verdict.job, report.now)
        pid = _spawn(verdict.job, reason.trigger, reason.detail, log, database_url)
        report.started.append(
            {"job": verdict.job, "trigger": reason.trigger, "pid": pid, "log": str(log)}
        )


def _log_path(settings: Settings, job: str, now: datetime) -> Path:
    folder = settings.logs_dir / job
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{now.strftime('%Y%m%dT%H%M%SZ')}-{os.getpid()}.log"


def _spawn(job: str, trigger: str, detail: str, log: Path, database_url: str | None) -> int:
    """A detached child in its own session; the URL travels in the environment, not argv
    (where `ps` would show a password)."""
    env = dict(os.environ)
    if database_url:
        env["RETRAIN_DATABASE_URL"] = database_url
    argv = [
        sys.executable,
        "-m",
        "retrain_cli",
        "retrain",
        job,
        "--trigger",
        trigger,
        "--trigger-detail",
        detail,
    ]
    with open(log, "ab") as output:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return process.pid
