"""`jobs due`: read every enabled job's state in a few set-based queries, decide, start runs.

The queries are per table, not per job, so their number does not grow with the jobs: jobs carry
their last run's start and status; the newest drift, performance and active-version facts are one
grouped query each.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, select, tuple_
from sqlalchemy.orm import Session

from retrain_cli.core import paths
from retrain_cli.core.choices import RowKind, VersionStatus
from retrain_cli.core.errors import one_line
from retrain_cli.core.private import open_private_append, private_dir
from retrain_cli.core.settings import Settings
from retrain_cli.db.models import (
    AutoRetrainingConfig,
    AutoRetrainingJob,
    ModelDriftMonitoring,
    ModelPerformanceTracking,
    ModelVersionManagement,
    RetrainingJobHistory,
)
from retrain_cli.db.queries import drift_verdict, newest_per_model
from retrain_cli.db.tracking import of_kind
from retrain_cli.jobs.defaults import RETRY_BACKOFF_S
from retrain_cli.jobs.store import JobFailure
from retrain_cli.scheduling import schedule
from retrain_cli.scheduling.schedule import JobState, Verdict
from retrain_cli.training.slots.database import slots_held
from retrain_cli.training.slots.files import file_slots

if TYPE_CHECKING:
    from retrain_cli.versions.rollouts.state import Move


@dataclass
class DueReport:
    now: datetime
    due: list[Verdict]
    running: list[Verdict]
    backoff: list[Verdict]
    not_due: int
    started: list[dict[str, Any]] = field(default_factory=list)
    waiting: list[dict[str, Any]] = field(default_factory=list)  # due, not started: why
    slots_held: int = 0  # database slots held now, across hosts
    errors: list[JobFailure] = field(default_factory=list)  # jobs that could not be decided
    rollouts: list[Move] = field(default_factory=list)  # steps, promotions, aborts, rollbacks


def due_jobs(session: Session, now: datetime, max_wait_s: float) -> DueReport:
    """Every enabled job's verdict at `now`; due jobs in turn (`schedule.by_turn`)."""
    verdicts, errors = [], []
    for state in job_states(session):
        try:
            verdicts.append(schedule.evaluate(state, now))
        except Exception as exc:  # one job's broken state must not stop the others
            errors.append(JobFailure(state.job, one_line(exc)))
    due = schedule.by_turn([v for v in verdicts if v.is_due], now, max_wait_s)
    return DueReport(
        now=now,
        due=due,
        running=[v for v in verdicts if v.state == "running"],
        backoff=[v for v in verdicts if v.state == "backoff"],
        not_due=sum(v.state == "not_due" for v in verdicts),
        slots_held=slots_held(session),
        errors=errors,
    )


def job_states(session: Session) -> list[JobState]:
    """Every enabled job's state: plain columns (no ORM objects, no spec documents to decode)."""
    defaults = {
        (c.model_type, c.task): (c.schedule, c.max_model_age_s)
        for c in session.scalars(select(AutoRetrainingConfig))
    }
    job = AutoRetrainingJob
    rows = session.execute(
        select(
            job.id,
            job.name,
            job.model_name,
            job.model_type,
            job.task,
            job.priority,
            job.schedule,
            job.timezone,
            job.triggers,
            job.created_at,
            job.max_model_age_s,
            job.spec["retry_backoff"].as_integer(),
            job.last_run_at,
            job.last_run_status,
            job.manual_requested_at,
            job.manual_reason,
            job.spec[("performance", "estimated_triggers")].as_boolean(),
        ).where(job.enabled)
    ).all()
    drift = _newest_drift(session)
    degraded = _newest_performance(session, estimated=False)
    wanted = any(row[-1] for row in rows)  # a job that retrains on estimates
    estimated = _newest_performance(session, estimated=True) if wanted else {}
    active = dict(
        session.execute(
            select(ModelVersionManagement.model_name, ModelVersionManagement.created_at).where(
                ModelVersionManagement.status == VersionStatus.ACTIVE
            )
        ).all()
    )
    finished = _failed_finish_times(session)
    states = []
    for (
        job_id,
        name,
        model,
        model_type,
        task,
        priority,
        cron,
        zone,
        triggers,
        created_at,
        max_age,
        backoff,
        last_run_at,
        last_status,
        manual_at,
        manual_reason,
        estimated_triggers,
    ) in rows:
        default_schedule, default_age = defaults[(model_type, task)]
        drift_at, drift_detail, broken = drift.get(model, (None, None, None))
        perf_at, perf_detail = degraded.get(model, (None, None))
        if estimated_triggers:  # a newer estimate speaks until labels arrive
            guess_at, guess_detail = estimated.get(model, (None, None))
            if guess_at is not None and (perf_at is None or guess_at > perf_at):
                perf_at, perf_detail = guess_at, guess_detail and f"estimated {guess_detail}"
        states.append(
            JobState(
                job=name,
                model=model,
                priority=priority,
                schedule=cron or default_schedule,
                timezone=zone,
                triggers=frozenset(triggers),
                created_at=created_at,
                retry_backoff_s=backoff if backoff is not None else RETRY_BACKOFF_S,
                max_model_age_s=max_age or default_age,
                last_run_at=last_run_at,
                last_run_status=last_status,
                last_finished_at=finished.get(job_id),
                manual_requested_at=manual_at,
                manual_reason=manual_reason,
                drift_at=drift_at,
                drift_detail=drift_detail,
                contract_detail=broken,
                degraded_at=perf_at,
                degraded_detail=perf_detail,
                active_created_at=active.get(model),
            )
        )
    return states


def _newest_drift(session: Session) -> dict[str, tuple[datetime, str | None, str | None]]:
    """Per model, the newest dataset-level drift result: (when, detail if drifted, detail if
    the window broke the job's data contract). A backfilled window is history, not a
    trigger."""
    table = ModelDriftMonitoring
    rows = session.execute(
        newest_per_model(
            table,
            and_(drift_verdict(table), ~table.backfilled),
            table.model_name,
            table.checked_at,
            table.drifted,
            table.drift_share,
            table.metrics,
        )
    )
    return {
        m: (
            at,
            _drift_detail(share, metrics, at) if drifted else None,
            _contract_detail(metrics, at),
        )
        for m, at, drifted, share, metrics in rows
    }


def _contract_detail(metrics: dict[str, Any], at: datetime) -> str | None:
    broken = metrics.get("contract_violations")
    if not broken:
        return None
    return f"the current window broke {broken} rule(s) of the data contract at {at.isoformat()}"


def _drift_detail(share: float | None, metrics: dict[str, Any], at: datetime) -> str:
    """The check's own words for its drift; rows recorded before it kept them, their share."""
    what = metrics.get("reason") or (
        "predictions drifted" if share is None else f"drift share {share:.2f}"
    )
    return f"{what} at {at.isoformat()}"


def _newest_performance(
    session: Session, *, estimated: bool
) -> dict[str, tuple[datetime, str | None]]:
    """Per model, the newest primary performance result, realized or estimated: (when,
    detail if degraded)."""
    table = ModelPerformanceTracking
    rows = session.execute(
        newest_per_model(
            table,
            and_(
                table.is_primary,
                of_kind(RowKind.ESTIMATED if estimated else RowKind.CHECKED),
                ~table.backfilled,
            ),
            table.model_name,
            table.checked_at,
            table.metric,
            table.value,
            table.degraded,
        )
    )
    return {
        m: (at, f"{metric} {value:.4g} degraded at {at.isoformat()}" if degraded else None)
        for m, at, metric, value, degraded in rows
    }


def _failed_finish_times(session: Session) -> dict[int, datetime]:
    """When each job whose last run failed (or was abandoned) saw that run end: point lookups
    of (job_id, started_at = the job's last_run_at) through the history's index, written as a
    row-value IN so that SQLite's planner does not scan the history instead."""
    job, run = AutoRetrainingJob, RetrainingJobHistory
    last_failed = select(job.id, job.last_run_at).where(
        job.enabled, job.last_run_status.in_(schedule.FAILED)
    )
    rows = session.execute(
        select(run.job_id, run.finished_at).where(
            tuple_(run.job_id, run.started_at).in_(last_failed)
        )
    )
    return {job_id: at for job_id, at in rows if at is not None}


def start_due(
    report: DueReport, settings: Settings, database_url: str | None
) -> list[subprocess.Popen[bytes]]:
    """Start the highest-priority due jobs as detached `retrain-cli retrain` processes, at most
    as many as there are free slots now; the rest stay due for the next tick. Returns the
    processes, for a caller that waits for them (`jobs due --run --wait`)."""
    limit = settings.max_concurrent_retrains
    in_use = file_slots(settings).slots_in_use()
    if settings.database_slots:  # the global limit, across hosts
        in_use = max(in_use, report.slots_held)
    free = max(limit - in_use, 0)
    for verdict in report.due[free:]:
        waited = (report.now - (verdict.due_since or report.now)).total_seconds()
        report.waiting.append(
            {
                "job": verdict.job,
                "priority": verdict.priority,
                "due_since": verdict.due_since,
                "waited_s": waited,
                "why": f"no free slot ({in_use} of {limit} in use, {free} started by this tick)",
            }
        )
    processes = []
    for verdict in report.due[:free]:
        reason = verdict.reasons[0]
        # a run that serves a cron fire time is keyed by it: on many hosts it starts once
        fire = next((r.fire_time for r in verdict.reasons if r.fire_time is not None), None)
        log = _log_path(settings, verdict.job, report.now)
        process = _spawn(verdict.job, reason.trigger, reason.detail, fire, log, database_url)
        processes.append(process)
        report.started.append(
            {"job": verdict.job, "trigger": reason.trigger, "pid": process.pid, "log": str(log)}
        )
    return processes


def wait_for(report: DueReport, processes: list[subprocess.Popen[bytes]]) -> None:
    """Wait for the started retrains and record each one's exit code in the report."""
    for started, process in zip(report.started, processes, strict=True):
        started["exit_code"] = process.wait()


def _log_path(settings: Settings, job: str, now: datetime) -> Path:
    path = paths.run_log(settings.logs_dir, job, now, os.getpid())
    private_dir(path.parent)
    return path


def _spawn(
    job: str,
    trigger: str,
    detail: str,
    fire: datetime | None,
    log: Path,
    database_url: str | None,
) -> subprocess.Popen[bytes]:
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
        *(["--scheduled-for", fire.isoformat()] if fire else []),
    ]
    with open_private_append(log) as output:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return process
