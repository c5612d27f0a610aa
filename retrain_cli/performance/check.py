"""One performance check: load scored predictions, compute every metric, judge, record."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from retrain_cli.core.choices import ESTIMABLE_METRICS
from retrain_cli.core.errors import DataError, RetrainError
from retrain_cli.data import predictions
from retrain_cli.data.predictions import PredictionColumns
from retrain_cli.data.sources import file_source, read_frame
from retrain_cli.jobs.sections import PerfSettings
from retrain_cli.jobs.store import JobFailure, check_each
from retrain_cli.performance import change_points, window
from retrain_cli.performance import estimates as perf_estimates
from retrain_cli.performance.result import PerfResult
from retrain_cli.performance.rows import add_performance_check
from retrain_cli.statistics import performance, tasks
from retrain_cli.statistics.performance import FloatArray
from retrain_cli.versions.registry import active_version
from retrain_cli.versions.rollouts import checks
from retrain_cli.versions.rollouts import moves as rollout_moves

if TYPE_CHECKING:
    import pandas as pd

    from retrain_cli.jobs.sections import ChangePointSpec
    from retrain_cli.jobs.store import EffectiveJob
    from retrain_cli.performance.change_points import ChangePoint


AD_HOC_COLUMNS = PredictionColumns(time="ts", label="y_true", score="y_score", returns="return")


def check_jobs(
    session: Session, jobs: Sequence[EffectiveJob], now: datetime, *, every_enabled: bool
) -> list[PerfResult | JobFailure]:
    """Check and record each job (see `jobs.check_each`); `--all` skips jobs without a
    predictions source. A rollout (or bake) whose analysis was recorded moves as it allows."""

    def record_and_advance(result: PerfResult, job_id: int) -> None:
        add_performance_check(session, result, job_id)
        if result.analysis is None:
            return
        try:  # a move that cannot be made (a preflight fails) leaves the recorded check alone
            with session.begin_nested():
                result.moves = rollout_moves.advance(session, result.model, now)
        except RetrainError as exc:
            result.rollout_error = str(exc)

    return check_each(
        jobs,
        lambda job: evaluate_job(session, job, now),
        record_and_advance,
        applies=lambda job: job.spec.data.predictions is not None,
        every_enabled=every_enabled,
    )


def evaluate_job(
    session: Session, job: EffectiveJob, now: datetime, *, estimate_only: bool = False
) -> PerfResult:
    """Score the job's predictions source (nothing recorded). With `performance.estimate`,
    also estimate the window's unlabelled rows and realize earlier estimates whose labels have
    arrived; `estimate_only` (`perf estimate`) estimates and nothing else."""
    source = job.spec.data.predictions
    if source is None:
        raise DataError(f"job {job.name!r} has no data.predictions source")
    frame = read_frame(source, "predictions")
    columns, settings = window.columns_for(job), window.settings_for(job)
    estimable = ESTIMABLE_METRICS[job.spec.task]
    if estimate_only and settings.primary_metric not in estimable:
        raise DataError(
            f"primary metric {settings.primary_metric!r} cannot be estimated without labels "
            f"({', '.join(sorted(estimable))} can)"
        )
    result = evaluate(session, frame, columns, settings, job.model, job.name, now)
    if estimate_only:
        result.metrics, result.reasons, result.degraded, result.judgement = {}, {}, None, []
    if estimate_only or settings.estimate:
        features = window.feature_columns(job, list(frame.columns))
        estimate = perf_estimates.estimate_window(
            frame, columns, settings, result.baseline, features
        )
        # a check whose every label arrived has nothing to estimate; `perf estimate` says so
        result.estimate = estimate if estimate.n_samples or estimate_only else None
    if settings.estimate and not estimate_only:
        result.realized = perf_estimates.realize_estimates(
            session, frame, columns, settings, job.model
        )
    if not estimate_only:
        result.analysis = checks.analyse(session, job, frame, columns, now)
    return result


def estimate_jobs(
    session: Session, jobs: Sequence[EffectiveJob], now: datetime, *, every_enabled: bool
) -> list[PerfResult | JobFailure]:
    """`perf estimate`: estimate and record each job; `--all` takes the jobs with
    `performance.estimate`."""
    return check_each(
        jobs,
        lambda job: evaluate_job(session, job, now, estimate_only=True),
        lambda result, job_id: add_performance_check(session, result, job_id),
        applies=lambda job: job.spec.data.predictions is not None and job.spec.performance.estimate,
        every_enabled=every_enabled,
    )


def check_file(
    session: Session, model: str, path: Path, settings: PerfSettings, now: datetime
) -> PerfResult:
    """The ad hoc form: one file with the default column names, recorded without a job."""
    frame = read_frame(file_source(path), "predictions")
    columns = AD_HOC_COLUMNS
    if columns.returns not in frame.columns:
        columns = PredictionColumns(columns.time, columns.label, columns.score, None)
    result = evaluate(session, frame, columns, settings, model, None, now)
    add_performance_check(session, result, job_id=None)
    return result


def evaluate(
    session: Session,
    frame: pd.DataFrame,
    columns: PredictionColumns,
    settings: PerfSettings,
    model: str,
    job: str | None,
    now: datetime,
) -> PerfResult:
    """Metrics of the rows with every used column present, judged against the threshold and
    the active version's hold-out value (nothing recorded)."""
    used = [c for c in (columns.label, *columns.predicted, columns.returns) if c]
    missing = [c for c in [*used, columns.time] if c and c not in frame.columns]
    if missing:
        raise DataError(f"predictions have no column {', '.join(map(repr, missing))}")
    frame = predictions.window(frame, columns.time, settings.window)
    complete = frame.dropna(subset=used)
    evaluation, labels, scores = window.evaluation_of(complete, columns, settings)
    metric = settings.primary_metric
    if metric not in evaluation.values:
        raise DataError(f"primary metric {metric!r} needs a return column in the predictions")
    active = active_version(session, model)
    baseline = _number(active.metrics.get(metric)) if active else None
    verdict = performance.judge(
        metric, evaluation.values[metric], settings.threshold, baseline, settings.max_relative_drop
    )
    points = settings.change_points
    found = (
        []
        if points is None
        else _change_points(complete, columns.time, (settings.task, labels, scores), points)
    )
    start, end = predictions.span(complete, columns.time)
    return PerfResult(
        job=job,
        model=model,
        version=active.version if active else None,
        checked_at=now,
        degraded=verdict.degraded,
        primary_metric=metric,
        metrics=evaluation.values,
        reasons=evaluation.reasons,
        n_samples=len(complete),
        n_dropped=len(frame) - len(complete),
        threshold=settings.threshold,
        baseline=baseline,
        judgement=verdict.reasons,
        window_start=start,
        window_end=end,
        change_points=found,
    )


def _change_points(
    rows: pd.DataFrame,
    time_column: str | None,
    predicted: tuple[str, FloatArray, FloatArray],
    spec: ChangePointSpec,
) -> list[ChangePoint]:
    """Change points of the rows' loss (`tasks.row_losses`: the task's task, outcomes and
    predictions) in time order (file order without a time column)."""
    import dataclasses

    import numpy as np

    order = np.arange(len(rows))
    stamps = None
    if time_column is not None:
        stamps = predictions.timestamps(rows, time_column)
        order = np.argsort(stamps.to_numpy(), kind="stable")
    task, labels, scores = predicted
    loss = tasks.row_losses(task, labels[order], scores[order])
    found = change_points.change_points(loss, spec.method, spec.parameters())
    if stamps is None:
        return found
    return [
        dataclasses.replace(p, at=predictions.instant(stamps.iloc[order[p.index]])) for p in found
    ]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
