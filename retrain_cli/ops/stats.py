"""Pipeline statistics for operators, aggregated in SQL (fast on a million history rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from retrain_cli.core.choices import RowKind, RunStatus, VersionStatus, better
from retrain_cli.db.models import (
    AutoRetrainingConfig,
    AutoRetrainingJob,
    ModelDriftMonitoring,
    ModelPerformanceTracking,
    ModelVersionManagement,
    RetrainingJobHistory,
)
from retrain_cli.db.queries import drift_verdict
from retrain_cli.db.tracking import of_kind
from retrain_cli.scheduling import schedule
from retrain_cli.scheduling.dispatch import job_states
from retrain_cli.training.slots.database import running_slots
from retrain_cli.versions.rollouts.state import in_progress

FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.ABANDONED)


@dataclass
class JobStats:
    job: str
    model: str
    enabled: bool
    runs: dict[str, int]
    success_rate: float | None
    p50_s: float | None
    p95_s: float | None
    last_run_at: datetime | None
    last_status: str | None
    active_version: int | None
    active_age_s: float | None
    drift_alerts: int
    degradations: int
    next_fire: datetime | None
    contract_breaks: int = 0  # drift checks whose window broke the job's data contract
    waiting_s: float | None = None  # due and not started: for how long
    estimation_error: float | None = None  # mean |estimated - realized| of the primary metric
    estimates_realized: int = 0  # estimates whose labels arrived in the period
    rollout: dict[str, Any] | None = None  # the model's candidate in rollout (`Rollout.summary`)
    task: str = "binary"
    primary_metric: str | None = None
    better: str | None = None  # which way the primary metric improves: higher | lower


@dataclass
class Stats:
    now: datetime
    since: datetime
    jobs: list[JobStats]
    totals: dict[str, Any] = field(default_factory=dict)
    slots_in_use: int = 0
    database_slots: list[dict[str, Any]] = field(default_factory=list)


def pipeline_stats(session: Session, now: datetime, period: timedelta, slots_in_use: int) -> Stats:
    since = now - period
    runs = _runs_by_status(session, since)
    percentiles = _duration_percentiles(session, since, (50, 95))
    active = {
        m: (v, at)
        for m, v, at in session.execute(
            select(
                ModelVersionManagement.model_name,
                ModelVersionManagement.version,
                ModelVersionManagement.promoted_at,
            ).where(ModelVersionManagement.status == VersionStatus.ACTIVE)
        )
    }
    drift = _count_by_model(
        session,
        ModelDriftMonitoring,
        since,
        and_(drift_verdict(ModelDriftMonitoring), ModelDriftMonitoring.drifted),
    )
    degraded = _count_by_model(
        session,
        ModelPerformanceTracking,
        since,
        and_(
            ModelPerformanceTracking.is_primary,
            of_kind(RowKind.CHECKED),
            ModelPerformanceTracking.degraded.is_(True),
        ),
    )
    broken = dict(
        session.execute(
            select(
                ModelDriftMonitoring.model_name,
                func.count(ModelDriftMonitoring.check_id.distinct()),
            )
            .where(
                ModelDriftMonitoring.checked_at >= since, ModelDriftMonitoring.scope == "contract"
            )
            .group_by(ModelDriftMonitoring.model_name)
        ).all()
    )
    config = AutoRetrainingConfig
    defaults = {
        (model_type, task): schedule
        for model_type, task, schedule in session.execute(
            select(config.model_type, config.task, config.schedule)
        )
    }
    waiting = _waiting(session, now)
    errors = _estimation_errors(session, since)
    rollouts = {model: r.summary() for model, r in in_progress(session).items()}
    jobs = []
    for job in session.scalars(select(AutoRetrainingJob).order_by(AutoRetrainingJob.name)):
        counts = runs.get(job.id, {})
        finished = sum(counts.get(s, 0) for s in FINISHED)
        version, promoted_at = active.get(job.model_name, (None, None))
        jobs.append(
            JobStats(
                job=job.name,
                model=job.model_name,
                enabled=job.enabled,
                runs=counts,
                success_rate=counts.get(RunStatus.SUCCEEDED, 0) / finished if finished else None,
                p50_s=percentiles.get((job.id, 50)),
                p95_s=percentiles.get((job.id, 95)),
                last_run_at=job.last_run_at,
                last_status=job.last_run_status,
                active_version=version,
                active_age_s=(now - promoted_at).total_seconds() if promoted_at else None,
                drift_alerts=drift.get(job.model_name, 0),
                degradations=degraded.get(job.model_name, 0),
                contract_breaks=broken.get(job.model_name, 0),
                next_fire=_next_fire(
                    job.schedule or defaults[(job.model_type, job.task)], job.timezone, now
                )
                if job.enabled
                else None,
                waiting_s=waiting.get(job.name),
                estimation_error=errors.get(job.model_name, (None, 0))[0],
                task=job.task,
                primary_metric=job.primary_metric,
                better=better(job.primary_metric),
                estimates_realized=errors.get(job.model_name, (None, 0))[1],
                rollout=rollouts.get(job.model_name),
            )
        )

    return Stats(
        now=now,
        since=since,
        jobs=jobs,
        totals=_totals(jobs),
        slots_in_use=slots_in_use,
        database_slots=running_slots(session),
    )


def _waiting(session: Session, now: datetime) -> dict[str, float]:
    """How long each due job has waited for a slot, as `jobs due` decides it."""

    waited = {}
    for state in job_states(session):
        try:
            verdict = schedule.evaluate(state, now)
        except ValueError:  # `jobs due` reports a job it cannot decide
            continue
        if verdict.is_due and verdict.due_since is not None:
            waited[state.job] = (now - verdict.due_since).total_seconds()
    return waited


def _estimation_errors(session: Session, since: datetime) -> dict[str, tuple[float, int]]:
    """Per model, the mean absolute difference between each estimate of the primary metric
    made in the period and the value its window realized once labelled, and how many."""
    estimate, realized = aliased(ModelPerformanceTracking), aliased(ModelPerformanceTracking)
    rows = session.execute(
        select(
            estimate.model_name,
            func.avg(func.abs(estimate.value - realized.value)),
            func.count(),
        )
        .join(
            realized,
            and_(
                realized.model_name == estimate.model_name,
                realized.metric == estimate.metric,
                realized.window_start == estimate.window_start,
                realized.window_end == estimate.window_end,
                of_kind(RowKind.CHECKED, RowKind.REALIZED, table=realized),
                realized.value.is_not(None),
            ),
        )
        .where(
            of_kind(RowKind.ESTIMATED, table=estimate),
            estimate.is_primary,
            estimate.checked_at >= since,
            estimate.value.is_not(None),
        )
        .group_by(estimate.model_name)
    )
    return {model: (float(error), count) for model, error, count in rows}


def _runs_by_status(session: Session, since: datetime) -> dict[int, dict[str, int]]:
    table = RetrainingJobHistory
    result: dict[int, dict[str, int]] = {}
    for job_id, status, count in session.execute(
        select(table.job_id, table.status, func.count())
        .where(table.started_at >= since)
        .group_by(table.job_id, table.status)
    ):
        result.setdefault(job_id, {})[status] = count
    return result


def _duration_percentiles(
    session: Session, since: datetime, levels: tuple[int, ...]
) -> dict[tuple[int, int], float]:
    """Nearest-rank percentiles of finished runs' durations per job, with window functions
    (the same SQL on SQLite and PostgreSQL): the value at rank ceil(p/100 * n)."""
    table = RetrainingJobHistory
    ranked = (
        select(
            table.job_id,
            table.duration_s,
            func.row_number()
            .over(partition_by=table.job_id, order_by=table.duration_s)
            .label("rank"),
            func.count().over(partition_by=table.job_id).label("n"),
        )
        .where(
            table.started_at >= since,
            table.status.in_((RunStatus.SUCCEEDED, RunStatus.FAILED)),
            table.duration_s.is_not(None),
        )
        .subquery()
    )
    result = {}
    for level in levels:
        wanted = (ranked.c.n * level + 99) // 100  # ceil(level% of n), integer division
        for job_id, duration in session.execute(
            select(ranked.c.job_id, ranked.c.duration_s).where(ranked.c.rank == wanted)
        ):
            result[(job_id, level)] = duration
    return result


def _count_by_model(
    session: Session, table: Any, since: datetime, condition: Any
) -> dict[str, int]:
    return dict(
        session.execute(
            select(table.model_name, func.count())
            .where(table.checked_at >= since, condition)
            .group_by(table.model_name)
        ).all()
    )


def _totals(jobs: list[JobStats]) -> dict[str, Any]:
    runs: dict[str, int] = {}
    for job in jobs:
        for status, count in job.runs.items():
            runs[status] = runs.get(status, 0) + count
    finished = sum(runs.get(s, 0) for s in FINISHED)
    return {
        "jobs": len(jobs),
        "enabled": sum(j.enabled for j in jobs),
        "runs": runs,
        "success_rate": runs.get(RunStatus.SUCCEEDED, 0) / finished if finished else None,
        "drift_alerts": sum(j.drift_alerts for j in jobs),
        "degradations": sum(j.degradations for j in jobs),
        "contract_breaks": sum(j.contract_breaks for j in jobs),
        "models_with_active_version": len({j.model for j in jobs if j.active_version}),
    }


def _next_fire(expression: str, timezone: str, now: datetime) -> datetime | None:
    """None for a schedule that never fires (stored before apply rejected them)."""
    try:
        return schedule.next_fire(expression, timezone, now)
    except ValueError:
        return None
