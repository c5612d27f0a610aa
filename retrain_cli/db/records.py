"""A check's result as rows: a drift check's in `model_drift_monitoring`, a performance
check's in `model_performance_tracking` (docs/storage.md)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from retrain_cli.core.choices import DOMAIN_CLASSIFIER
from retrain_cli.core.serialize import jsonable
from retrain_cli.db.models import ModelDriftMonitoring, ModelPerformanceTracking

if TYPE_CHECKING:
    from retrain_cli.drift.compare import ColumnDrift, DriftResult
    from retrain_cli.performance.check import PerfResult

NO_SHARE = "too_few_values: no feature had enough values in both windows"
CALIBRATION_METRIC = "calibration_brier"  # the row beside an estimate: its calibration's Brier


def add_drift_check(session: Session, result: DriftResult, job_id: int | None) -> None:
    """One row per feature, one for the score column, one dataset-level verdict and, with a
    domain classifier, its dataset-level row."""
    check: dict[str, Any] = {
        "check_id": result.check_id,
        "job_id": job_id,
        "model_name": result.model,
        "checked_at": result.checked_at,
    }

    def row(column: ColumnDrift, scope: str) -> ModelDriftMonitoring:
        return ModelDriftMonitoring(
            **check,
            scope=scope,
            feature=column.feature,
            kind=column.kind,
            method=column.method,
            statistic=column.statistic,
            threshold=column.threshold,
            drifted=column.drifted,
            n_reference=column.n_reference,
            n_current=column.n_current,
            missing_rate_ref=column.missing_rate_ref,
            missing_rate_cur=column.missing_rate_cur,
            metrics=jsonable(column.metrics),
        )

    rows = [row(c, "feature") for c in result.features]
    if result.prediction:
        rows.append(row(result.prediction, "prediction"))
    n_drifted = sum(c.drifted for c in result.features)
    rows.append(
        ModelDriftMonitoring(
            **check,
            scope="dataset",
            method=result.decision_method,
            statistic=result.drift_share,
            threshold=result.threshold,
            drifted=result.drifted,
            drift_share=result.drift_share,
            n_reference=result.n_reference,
            n_current=result.n_current,
            metrics={
                "mode": result.mode,
                "compute": result.compute,
                **({"compute_note": result.compute_note} if result.compute_note else {}),
                **({"profile": result.profile} if result.profile is not None else {}),
                "n_features": len(result.features),
                "required_share": result.required_share,
                "n_drifted": n_drifted,
                "drifted_features": [c.feature for c in result.features if c.drifted],
                "prediction_drifted": bool(result.prediction and result.prediction.drifted),
                **({"undefined": NO_SHARE} if result.drift_share is None else {}),
            },
        )
    )
    found = result.multivariate
    if found is not None:
        rows.append(
            ModelDriftMonitoring(
                **check,
                scope="dataset",
                method=DOMAIN_CLASSIFIER,
                statistic=found.auc,
                threshold=found.max_auc,
                drifted=found.drifted,
                n_reference=found.n_reference,
                n_current=found.n_current,
                metrics=jsonable(
                    {
                        "ci": [found.ci_low, found.ci_high],
                        "folds": found.folds,
                        "fold_aucs": found.fold_aucs,
                        "top_features": found.top_features,
                        **({"undefined": found.reason} if found.reason else {}),
                    }
                ),
            )
        )
    session.add_all(rows)
    session.flush()


def add_performance_check(session: Session, result: PerfResult, job_id: int | None) -> None:
    """One row per metric; the primary metric's row carries the threshold and the verdict.
    An estimate's rows are marked `estimated`, with the calibration's Brier score beside them;
    realized values of earlier estimates carry the estimate's window."""
    rows = [
        _row(result, job_id, name, value, result.reasons.get(name), result.degraded)
        for name, value in result.metrics.items()
    ]
    estimate = result.estimate
    if estimate is not None:
        window = (estimate.window_start, estimate.window_end)
        rows += [
            _row(
                result,
                job_id,
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
            f"change_point:{point.method}",
            point.after,
            None,
            None,
            window=(point.at, point.at),
            judged=False,
        )
        for point in result.change_points
    ]
    if result.analysis is not None:
        from retrain_cli.versions.rollouts.checks import analysis_row

        analysed = analysis_row(result.analysis)
        row = _row(result, job_id, analysed.pop("metric"), None, None, None, judged=False)
        for name, value in analysed.items():
            setattr(row, name, value)
        rows.append(row)
    session.add_all(rows)
    session.flush()


def _row(
    result: PerfResult,
    job_id: int | None,
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
