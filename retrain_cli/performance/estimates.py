"""Estimates in a performance check: the window's unlabelled predictions estimated by CBPE
(binary and multiclass) or DLE (regression) (`estimation.py`), and earlier estimates realized
once their labels arrived."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from retrain_cli.core.choices import Metric, RowKind
from retrain_cli.data import predictions
from retrain_cli.data.predictions import PredictionColumns
from retrain_cli.db.models import ModelPerformanceTracking
from retrain_cli.db.tracking import of_kind
from retrain_cli.performance import estimation, window
from retrain_cli.statistics import performance, tasks
from retrain_cli.statistics.performance import FloatArray

if TYPE_CHECKING:
    import pandas as pd

    from retrain_cli.jobs.sections import PerfSettings

MAX_REALIZED = 100  # earlier estimates realized per check, the newest first


@dataclass
class EstimatedResult:
    """The window's unlabelled rows, their metrics estimated by CBPE."""

    degraded: bool | None
    metrics: dict[str, float | None]
    reasons: dict[str, str]
    n_samples: int  # unlabelled rows estimated
    n_reference: int  # labelled rows the calibration was fitted on
    # how well the calibration fits those rows (lower is better): its Brier score (CBPE; the
    # mean over classes for multiclass), or the loss model's mean absolute error (DLE)
    brier: float | None
    judgement: list[str]
    window_start: datetime | None = None
    window_end: datetime | None = None


@dataclass(frozen=True)
class Realized:
    """An earlier estimate whose labels have all arrived, and the value they realized."""

    window_start: datetime
    window_end: datetime
    metric: str
    estimated: float | None
    realized: float | None
    n_samples: int


def estimate_window(
    frame: pd.DataFrame,
    columns: PredictionColumns,
    settings: PerfSettings,
    baseline: float | None,
    features: Sequence[str] = (),
) -> EstimatedResult:
    """Calibrate on every labelled row of the predictions, estimate the window's unlabelled
    ones, and judge the estimated primary metric as a realized one is judged. A regression
    job's loss models read `features` (those of the predictions' columns) beside the
    prediction."""

    label, predicted = columns.label, list(columns.predicted)
    reference = frame.dropna(subset=[label, *predicted])
    recent = predictions.window(frame, columns.time, settings.window)
    unlabelled = recent[recent[label].isna() & recent[predicted].notna().all(axis=1)]
    try:
        found, brier = _estimate(reference, unlabelled, columns, settings, features)
    except performance.Undefined as exc:
        names = estimation.ESTIMATED_METRICS[settings.task]
        values: dict[str, float | None] = dict.fromkeys(names)
        reasons, brier = dict.fromkeys(names, exc.reason), None
    else:
        values, reasons = found.values, found.reasons
    metric = settings.primary_metric
    verdict = performance.judge(
        metric, values[metric], settings.threshold, baseline, settings.max_relative_drop
    )
    start, end = predictions.span(unlabelled, columns.time)
    return EstimatedResult(
        degraded=verdict.degraded,
        metrics=values,
        reasons=reasons,
        n_samples=len(unlabelled),
        n_reference=len(reference),
        brier=brier,
        judgement=verdict.reasons,
        window_start=start,
        window_end=end,
    )


def _estimate(
    reference: pd.DataFrame,
    unlabelled: pd.DataFrame,
    columns: PredictionColumns,
    settings: PerfSettings,
    features: Sequence[str],
) -> tuple[estimation.Estimate, float]:
    """The estimate of the task, and its calibration's quality; `Undefined` when nothing can
    be calibrated."""
    known = predictions.outcomes(reference, columns)
    fitted_on = predictions.predicted(reference, columns)
    guessed = predictions.predicted(unlabelled, columns)
    least = settings.min_samples
    if settings.task == "multiclass":
        classes = estimation.calibrate_classes(known, fitted_on, least)
        return estimation.estimate_multiclass(classes, guessed, least), classes.brier
    if settings.task == "regression":
        used = [c for c in features if c in reference.columns]
        models = estimation.fit_loss_models(
            _loss_inputs(reference, used, fitted_on), known, fitted_on, least
        )
        return models.estimate(_loss_inputs(unlabelled, used, guessed), least), models.error
    calibration = estimation.calibrate(known, fitted_on, least)
    found = estimation.estimate(calibration, guessed, settings.decision_threshold, least)
    return found, calibration.brier


def _loss_inputs(rows: pd.DataFrame, features: list[str], predicted: FloatArray) -> pd.DataFrame:
    """The loss models' inputs: the features (text as categories) and the prediction."""
    import pandas as pd

    inputs = rows[features].copy()
    for name in features:
        if not pd.api.types.is_numeric_dtype(inputs[name].dtype):
            inputs[name] = inputs[name].astype("category")
    inputs["__prediction__"] = predicted
    return inputs.reset_index(drop=True)


def realize_estimates(
    session: Session,
    frame: pd.DataFrame,
    columns: PredictionColumns,
    settings: PerfSettings,
    model: str,
) -> list[Realized]:
    """The realized metrics of earlier estimates whose rows are now all labelled: the same
    window (its first and last timestamp), scored as `perf check` scores a window."""
    import pandas as pd

    if columns.time is None:
        return []
    windows = _pending(session, model)
    if not windows:
        return []
    times = predictions.timestamps(frame, columns.time)
    found: list[Realized] = []
    for (start, end), estimates in windows.items():
        rows = frame[(times >= pd.Timestamp(start)) & (times <= pd.Timestamp(end))]
        if rows.empty or rows[columns.label].isna().any():
            continue  # not every label has arrived yet
        rows = rows.dropna(subset=list(columns.predicted))
        evaluation = tasks.evaluate(
            window.scoring_of(settings),
            predictions.outcomes(rows, columns),
            predictions.predicted(rows, columns),
        )
        found.extend(
            Realized(start, end, metric, value, evaluation.values.get(metric), len(rows))
            for metric, value in estimates.items()
        )
    return found


def _pending(
    session: Session, model: str
) -> dict[tuple[datetime, datetime], dict[str, float | None]]:
    """The newest (at most MAX_REALIZED) estimated windows of `model` whose realized values
    are not in the table yet: each window's estimated value per metric."""
    table, realized = ModelPerformanceTracking, aliased(ModelPerformanceTracking)
    recorded = exists().where(
        realized.model_name == table.model_name,
        realized.metric == table.metric,
        realized.window_start == table.window_start,
        realized.window_end == table.window_end,
        of_kind(RowKind.CHECKED, RowKind.REALIZED, table=realized),
    )
    rows = session.execute(
        select(table.window_start, table.window_end, table.metric, table.value)
        .where(
            table.model_name == model,
            of_kind(RowKind.ESTIMATED),
            table.window_start.is_not(None),
            table.window_end.is_not(None),
            ~recorded,
        )
        .order_by(table.checked_at.desc())
        .limit(MAX_REALIZED * len(Metric))
    )
    windows: dict[tuple[datetime, datetime], dict[str, float | None]] = {}
    for start, end, metric, value in rows:
        if start is None or end is None:
            continue
        if (start, end) in windows or len(windows) < MAX_REALIZED:
            windows.setdefault((start, end), {}).setdefault(metric, value)
    return windows
