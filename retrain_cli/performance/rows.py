"""A performance check's result as rows of `model_performance_tracking`, each of its kind: the
checked metrics, an estimate and its calibration, realized values of earlier estimates, change
points and a rollout's analysis (`db.tracking` owns the kinds; docs/storage.md)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from retrain_cli.core.choices import RowKind
from retrain_cli.db.models import ModelPerformanceTracking
from retrain_cli.db.tracking import CALIBRATION_METRIC, change_point_metric
from retrain_cli.versions.rollouts.checks import analysis_row

if TYPE_CHECKING:
    from retrain_cli.performance.result import PerfResult


def add_performance_check(
    session: Session, result: PerfResult, job_id: int | None, *, backfilled: bool = False
) -> None:
    """One row per metric; the primary metric's row carries the threshold and the verdict.
    An estimate's rows are marked `estimated`, with the calibration's Brier score beside them;
    realized values of earlier estimates carry the estimate's window. `backfilled`: `jobs
    backfill` checked the past window [window_start, window_end) of the result (the unique key
    admits each metric once per job and window)."""
    rows = [
        _row(
            result, job_id, RowKind.CHECKED, name, value, result.reasons.get(name), result.degraded
        )
        for name, value in result.metrics.items()
    ]
    estimate = result.estimate
    if estimate is not None:
        window = (estimate.window_start, estimate.window_end)
        rows += [
            _row(
                result,
                job_id,
                RowKind.ESTIMATED,
                name,
                value,
                estimate.reasons.get(name),
                estimate.degraded,
                estimated=True,
                window=window,
                n_samples=estimate.n_samples,
            )
            for name, value in estimate.metrics.items()
        ]
        rows.append(
            _row(
                result,
                job_id,
                RowKind.CALIBRATION,
                CALIBRATION_METRIC,
                estimate.brier,
                None if estimate.brier is not None else "not_calibrated",
                None,
                estimated=True,
                window=window,
                n_samples=estimate.n_reference,
            )
        )
    rows += [
        _row(
            result,
            job_id,
            RowKind.REALIZED,
            realized.metric,
            realized.realized,
            None,
            None,
            window=(realized.window_start, realized.window_end),
            n_samples=realized.n_samples,
            judged=False,  # a record beside the estimate; the check's own row is the primary
        )
        for realized in result.realized
    ]
    rows += [
        _row(
            result,
            job_id,
            RowKind.CHANGE_POINT,
            change_point_metric(point.method),
            point.after,
            None,
            None,
            window=(point.at, point.at),
            judged=False,
        )
        for point in result.change_points
    ]
    if result.analysis is not None:
        analysed = analysis_row(result.analysis)
        metric = analysed.pop("metric")
        row = _row(result, job_id, RowKind.ROLLOUT, metric, None, None, None, judged=False)
        for name, value in analysed.items():
            setattr(row, name, value)
        rows.append(row)
    for row in rows:
        row.backfilled = backfilled
    session.add_all(rows)
    session.flush()


def _row(
    result: PerfResult,
    job_id: int | None,
    kind: RowKind,
    name: str,
    value: float | None,
    reason: str | None,
    degraded: bool | None,
    *,
    estimated: bool = False,
    window: tuple[datetime | None, datetime | None] | None = None,
    n_samples: int | None = None,
    judged: bool = True,
) -> ModelPerformanceTracking:
    primary = judged and name == result.primary_metric
    start, end = window if window is not None else (result.window_start, result.window_end)
    return ModelPerformanceTracking(
        check_id=result.check_id,
        job_id=job_id,
        kind=kind,
        model_name=result.model,
        version=result.version,
        checked_at=result.checked_at,
        window_start=start,
        window_end=end,
        metric=name,
        value=value,
        reason=reason,
        threshold=result.threshold if primary else None,
        baseline=result.baseline if primary else None,
        is_primary=primary,
        degraded=degraded if primary else None,
        estimated=estimated,
        n_samples=result.n_samples if n_samples is None else n_samples,
        n_dropped=result.n_dropped if n_samples is None else 0,
    )
