"""A window of a job's predictions as the checks judge it: its columns, its settings, and
every metric of its labelled rows by the job's task (`statistics.tasks`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrain_cli.data import predictions
from retrain_cli.data.predictions import PredictionColumns
from retrain_cli.jobs.sections import PerfSettings
from retrain_cli.statistics import performance, tasks
from retrain_cli.statistics.performance import FloatArray

if TYPE_CHECKING:
    import pandas as pd

    from retrain_cli.jobs.store import EffectiveJob


def settings_for(job: EffectiveJob) -> PerfSettings:
    return PerfSettings(
        primary_metric=job.spec.primary_metric,
        threshold=job.performance_threshold,
        task=job.spec.task,
        quantile=job.spec.quantile,
        **dict(job.spec.performance),
    )


def columns_for(job: EffectiveJob) -> PredictionColumns:
    spec = job.spec
    return PredictionColumns(
        spec.time_column,
        spec.target,
        spec.score_column,
        spec.return_column,
        task=str(spec.task),
        classes=tuple(spec.classes or ()),
        probabilities=tuple(spec.probability_columns.values()),
    )


def scoring_of(settings: PerfSettings) -> tasks.Scoring:
    """How the window's predictions are judged (`statistics.tasks`)."""
    return tasks.Scoring(
        task=str(settings.task),
        threshold=settings.decision_threshold,
        quantile=settings.quantile,
        min_samples=settings.min_samples,
        periods_per_year=settings.periods_per_year,
        risk_free=settings.risk_free,
    )


def evaluation_of(
    rows: pd.DataFrame, columns: PredictionColumns, settings: PerfSettings
) -> tuple[performance.Evaluation, FloatArray, FloatArray]:
    """Every metric of labelled rows, and their outcomes and predictions. The return column of a
    binary job's predictions holds the strategy's returns; a regression job's, the realized
    returns its predictions forecast (the strategy's are derived: `tasks.strategy_returns`)."""
    outcomes = predictions.outcomes(rows, columns)
    predicted = predictions.predicted(rows, columns)
    returns = (
        predictions.floats(rows[columns.returns], columns.returns) if columns.returns else None
    )
    scoring = scoring_of(settings)
    if settings.task == "binary":
        evaluation = tasks.evaluate(scoring, outcomes, predicted, strategy=returns)
    else:
        evaluation = tasks.evaluate(scoring, outcomes, predicted, returns)
    return evaluation, outcomes, predicted


def feature_columns(job: EffectiveJob, present: list[str]) -> list[str]:
    """The job's features among the predictions' columns (default: every column but the
    target, time, score, return and class columns, and a rollout's version and shadow ones)."""
    spec = job.spec
    if spec.features is not None:
        return [c for c in spec.features if c in present]
    rollout = spec.rollout
    others = {rollout.version_column, rollout.shadow_score_column} if rollout else set()
    return [c for c in present if c not in spec.special_columns | others]
