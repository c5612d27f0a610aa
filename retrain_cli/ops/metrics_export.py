"""A node-exporter textfile of the pipeline's state, rewritten atomically after each command.

Point node-exporter's `--collector.textfile.directory` at `metrics.textfile_dir` (config) or
`RETRAIN_METRICS_DIR`. Jobs are labelled `retrain_job`, not `job`: Prometheus sets `job` to the
scrape job's name and would rename ours. `dashboards/alerts.yml` holds the rules over these,
among them the dead-man's switch: `time() - retrain_job_last_success_timestamp_seconds` against
twice `retrain_job_expected_interval_seconds`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from retrain_cli.core.choices import RowKind, RunStatus, VersionStatus, better
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
from retrain_cli.scheduling import schedule
from retrain_cli.versions.rollouts import state as rollouts

FILE_NAME = "retrain_cli.prom"
JOB = ("retrain_job",)


def write_metrics(session: Session, directory: Path, now: datetime, slots_in_use: int) -> Path:
    """Write the textfile with prometheus_client's atomic `write_to_textfile`."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()

    def gauge(name: str, help_text: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, help_text, labels, registry=registry)

    last_run = gauge("retrain_job_last_run_timestamp_seconds", "Start of the last run.", JOB)
    status = gauge("retrain_job_last_run_status", "1 for the last run's status.", (*JOB, "status"))
    success = gauge(
        "retrain_job_last_success_timestamp_seconds",
        "End of the last succeeded run (dead-man's switch).",
        JOB,
    )
    duration = gauge(
        "retrain_job_last_run_duration_seconds", "Duration of the last finished run.", JOB
    )
    for name, started, last_status in session.execute(
        select(
            AutoRetrainingJob.name, AutoRetrainingJob.last_run_at, AutoRetrainingJob.last_run_status
        )
    ):
        if started is not None:
            last_run.labels(name).set(started.timestamp())
            status.labels(name, last_status or "unknown").set(1)
    run, job = RetrainingJobHistory, AutoRetrainingJob
    for name, finished in session.execute(
        select(job.name, func.max(run.finished_at))
        .join(run, run.job_id == job.id)
        .where(run.status == RunStatus.SUCCEEDED)
        .group_by(job.name)
    ):
        if finished is not None:
            success.labels(name).set(finished.timestamp())
    newest = (
        select(run.job_id, func.max(run.finished_at).label("at"))
        .where(run.finished_at.is_not(None), run.duration_s.is_not(None))
        .group_by(run.job_id)
        .subquery()
    )
    for name, seconds in session.execute(
        select(job.name, run.duration_s)
        .join(run, run.job_id == job.id)
        .join(newest, and_(newest.c.job_id == run.job_id, newest.c.at == run.finished_at))
    ):
        if seconds is not None:
            duration.labels(name).set(seconds)

    _expected_intervals(
        session,
        now,
        gauge(
            "retrain_job_expected_interval_seconds",
            "The longest gap between the schedule's fire times (enabled scheduled jobs).",
            JOB,
        ),
    )
    failing = gauge(
        "retrain_job_consecutive_failures",
        "Failed or abandoned runs since the last succeeded one.",
        JOB,
    )
    for name, count in session.execute(_consecutive_failures()):
        failing.labels(name).set(count)

    active = gauge("retrain_model_active_version", "The active version number.", ("model",))
    for model, version in session.execute(
        select(ModelVersionManagement.model_name, ModelVersionManagement.version).where(
            ModelVersionManagement.status == VersionStatus.ACTIVE
        )
    ):
        active.labels(model).set(version)
    _traffic_weights(
        session,
        gauge(
            "retrain_model_traffic_weight",
            "The share of traffic to serve each version (the serving document's weights).",
            ("model", "version"),
        ),
    )
    _latest_drift(
        session,
        gauge(
            "retrain_model_drift_share",
            "Share of drifted features in the newest check.",
            ("model",),
        ),
        gauge(
            "retrain_model_drift_detected",
            "1 when the newest drift check found drift, else 0.",
            ("model",),
        ),
        gauge(
            "retrain_model_data_contract_violations",
            "Rules of the job's data contract the newest drift check's window broke.",
            ("model",),
        ),
    )
    _latest_primary(
        session,
        gauge(
            "retrain_model_primary_metric",
            "The newest primary performance metric (better: which way it improves).",
            ("model", "metric", "better"),
        ),
        gauge(
            "retrain_model_primary_metric_threshold",
            "The threshold the newest primary metric was judged against (a ceiling when "
            "lower is better).",
            ("model", "metric", "better"),
        ),
        gauge(
            "retrain_model_degraded",
            "1 when the newest performance check found the model degraded, else 0.",
            ("model", "metric"),
        ),
    )
    gauge("retrain_slots_in_use", "Retrain slots held on this host.").set(slots_in_use)
    gauge("retrain_metrics_generated_timestamp_seconds", "When this file was written.").set(
        now.timestamp()
    )

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    write_to_textfile(str(path), registry)
    return path


def _traffic_weights(session: Session, gauge: Any) -> None:
    """The champion's weight is what its candidate (if any) does not take; a shadow candidate
    is exported with weight 0."""

    version = ModelVersionManagement
    taken = {model: rollout.weight for model, rollout in rollouts.in_progress(session).items()}
    rows = session.execute(
        select(version.model_name, version.version, version.status).where(
            version.status.in_((VersionStatus.ACTIVE, VersionStatus.CANDIDATE))
        )
    )
    for model, number, status in rows:
        weight = taken.get(model, 0.0)
        gauge.labels(model, str(number)).set(
            weight if status == VersionStatus.CANDIDATE else 1.0 - weight
        )


def _expected_intervals(session: Session, now: datetime, gauge: Any) -> None:
    job, config = AutoRetrainingJob, AutoRetrainingConfig
    rows = session.execute(
        select(job.name, func.coalesce(job.schedule, config.schedule), job.timezone, job.triggers)
        .join(config, (config.model_type == job.model_type) & (config.task == job.task))
        .where(job.enabled)
    )
    for name, expression, timezone, triggers in rows:
        if "scheduled" not in triggers:
            continue
        try:
            gap = schedule.longest_gap(expression, timezone, now)
        except ValueError:  # a schedule that never fires (stored before apply rejected them)
            continue
        if gap is not None:
            gauge.labels(name).set(gap)


def _consecutive_failures() -> Any:
    """Per job with runs: its failed and abandoned runs started after its last succeeded one."""
    run, job = RetrainingJobHistory, AutoRetrainingJob
    last_success = (
        select(run.job_id, func.max(run.started_at).label("at"))
        .where(run.status == RunStatus.SUCCEEDED)
        .group_by(run.job_id)
        .subquery()
    )
    after = or_(last_success.c.at.is_(None), run.started_at > last_success.c.at)
    failed = case(
        (and_(run.status.in_((RunStatus.FAILED, RunStatus.ABANDONED)), after), 1), else_=0
    )
    return (
        select(job.name, func.sum(failed))
        .join(run, run.job_id == job.id)
        .outerjoin(last_success, last_success.c.job_id == job.id)
        .group_by(job.name)
    )


def _latest_drift(session: Session, share: Any, detected: Any, contract: Any) -> None:
    table = ModelDriftMonitoring
    query = newest_per_model(  # the live checks: a backfilled window is history
        table,
        and_(drift_verdict(table), ~table.backfilled),
        table.model_name,
        table.drift_share,
        table.drifted,
        table.metrics,
    )
    for model, value, drifted, metrics in session.execute(query):
        detected.labels(model).set(int(bool(drifted)))
        if "contract_violations" in metrics:  # only jobs with a `schema:`
            contract.labels(model).set(metrics["contract_violations"])
        if value is not None:
            share.labels(model).set(value)


def _latest_primary(session: Session, value: Any, threshold: Any, degraded: Any) -> None:
    table = ModelPerformanceTracking
    query = newest_per_model(
        table,
        and_(table.is_primary, of_kind(RowKind.CHECKED), ~table.backfilled),  # realized values
        table.model_name,
        table.metric,
        table.value,
        table.threshold,
        table.degraded,
    )
    for model, metric, measured, limit, is_degraded in session.execute(query):
        if measured is not None:
            value.labels(model, metric, better(metric)).set(measured)
        if limit is not None:
            threshold.labels(model, metric, better(metric)).set(limit)
        if is_degraded is not None:
            degraded.labels(model, metric).set(int(is_degraded))
