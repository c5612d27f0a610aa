"""A node-exporter textfile of the pipeline's state, rewritten atomically after each command.

Point node-exporter's `--collector.textfile.directory` at `metrics.textfile_dir` (config) or
`RETRAIN_METRICS_DIR`. `retrain_job_last_success_timestamp_seconds` is the dead-man's switch:
alert when `time() - it` exceeds a job's expected cadence.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from retrain_cli.db.models import (
    AutoRetrainingJob,
    ModelDriftMonitoring,
    ModelPerformanceTracking,
    ModelVersionManagement,
    RetrainingJobHistory,
)
from retrain_cli.db.queries import newest_per_model

FILE_NAME = "retrain_cli.prom"


def write_metrics(session: Session, directory: Path, now: datetime, slots_in_use: int) -> Path:
    """Write the textfile with prometheus_client's atomic `write_to_textfile`."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()

    def gauge(name: str, help_text: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, help_text, labels, registry=registry)

    last_run = gauge("retrain_job_last_run_timestamp_seconds", "Start of the last run.", ("job",))
    status = gauge("retrain_job_last_run_status", "1 for the last run's status.", ("job", "status"))
    success = gauge(
        "retrain_job_last_success_timestamp_seconds",
        "End of the last succeeded run (dead-man's switch).",
        ("job",),
    )
    duration = gauge(
        "retrain_job_last_run_duration_seconds", "Duration of the last finished run.", ("job",)
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
        .where(run.status == "succeeded")
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

    active = gauge("retrain_model_active_version", "The active version number.", ("model",))
    for model, version in session.execute(
        select(ModelVersionManagement.model_name, ModelVersionManagement.version).where(
            ModelVersionManagement.status == "active"
        )
    ):
        active.labels(model).set(version)
    _latest_drift(
        session,
        gauge(
            "retrain_model_drift_share",
            "Share of drifted features in the newest check.",
            ("model",),
        ),
    )
    _latest_primary(
        session,
        gauge(
            "retrain_model_primary_metric",
            "The newest primary performance metric.",
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


def _latest_drift(session: Session, gauge: object) -> None:
    table = ModelDriftMonitoring
    query = newest_per_model(table, table.scope == "dataset", table.model_name, table.drift_share)
    for model, share in session.execute(query):
        if share is not None:
            gauge.labels(model).set(share)  # type: ignore[attr-defined]


def _latest_primary(session: Session, gauge: object) -> None:
    table = ModelPerformanceTracking
    query = newest_per_model(table, table.is_primary, table.model_name, table.metric, table.value)
    for model, metric, value in session.execute(query):
        if value is not None:
            gauge.labels(model, metric).set(value)  # type: ignore[attr-defined]
