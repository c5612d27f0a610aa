"""Every metric of one task's predictions: pure functions over numpy arrays.

A prediction is, by task:

    binary       the probability of a 1, one per row (labels 0/1)
    multiclass   a row of K probabilities per row (labels: class indices 0..K-1)
    regression   the predicted value (labels: the true values)

With realized returns (a job's return column), the strategy's Sharpe, Sortino, drawdown, win rate
and total return: a binary job goes long at or above its decision threshold and short below; a
regression job predicts returns, long when positive, short when negative, flat at 0, and is also
judged on `ic` and `hit_rate` against the realized returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from retrain_cli.statistics import multiclass, performance, regression
from retrain_cli.statistics.performance import Evaluation, FloatArray

BINARY_METRICS = performance.CLASSIFICATION_METRICS
MULTICLASS_METRICS = (
    "accuracy",
    "f1_macro",
    "f1_weighted",
    "precision_macro",
    "recall_macro",
    "log_loss",
    "auc_ovr",
)
REGRESSION_METRICS = ("rmse", "mae", "mape", "r2", "median_ae")


@dataclass(frozen=True)
class Scoring:
    """How a job's predictions are judged: its task and the settings its metrics take."""

    task: str = "binary"
    threshold: float = 0.5  # binary: a score at or above it predicts 1
    quantile: float | None = None  # regression: a quantile forecast's level (adds `pinball`)
    min_samples: int = performance.DEFAULT_MIN_SAMPLES
    periods_per_year: float = performance.DEFAULT_PERIODS_PER_YEAR
    risk_free: float = 0.0


def metric_names(scoring: Scoring, returns: bool) -> list[str]:
    """The metrics `evaluate` computes for `scoring`'s task (with a return column or not)."""
    if scoring.task == "multiclass":
        return list(MULTICLASS_METRICS)
    trading = list(performance.TRADING_METRICS) if returns else []
    if scoring.task == "regression":
        pinball = ["pinball"] if scoring.quantile is not None else []
        forecast = ["ic", "hit_rate"] if returns else []
        return [*REGRESSION_METRICS, *pinball, *trading, *forecast]
    return [*BINARY_METRICS, *trading]


def strategy_returns(scoring: Scoring, predicted: FloatArray, realized: FloatArray) -> FloatArray:
    """The returns of trading on the predictions (see the module's docstring)."""
    if scoring.task == "regression":
        position = np.sign(predicted)
    else:
        position = np.where(predicted >= scoring.threshold, 1.0, -1.0)
    result: FloatArray = position * realized
    return result


def evaluate(
    scoring: Scoring,
    y_true: FloatArray,
    predicted: FloatArray,
    realized: FloatArray | None = None,
    *,
    strategy: FloatArray | None = None,
) -> Evaluation:
    """Every metric of the task on rows without missing values (the caller drops those).

    `realized` are the asset's returns of each row (the strategy's are derived from them);
    `strategy` gives the strategy's returns directly instead (a predictions file's return
    column of a binary job holds them)."""
    if scoring.task == "binary":
        returns = strategy
        if returns is None and realized is not None:
            returns = strategy_returns(scoring, predicted, realized)
        return performance.evaluate(
            y_true,
            predicted,
            returns,
            threshold=scoring.threshold,
            min_samples=scoring.min_samples,
            periods_per_year=scoring.periods_per_year,
            risk_free=scoring.risk_free,
        )
    result = Evaluation(n_samples=int(y_true.size))
    names = metric_names(scoring, realized is not None)
    if y_true.size < scoring.min_samples:
        for name in names:
            result.values[name], result.reasons[name] = None, "insufficient_samples"
        return result
    measures: dict[str, Callable[[], float]]
    if scoring.task == "multiclass":
        classes = y_true.astype(np.int64)
        measures = {
            name: partial(getattr(multiclass, name), classes, predicted)
            for name in MULTICLASS_METRICS
        }
    else:
        measures = {
            name: partial(getattr(regression, name), y_true, predicted)
            for name in REGRESSION_METRICS
        }
        if scoring.quantile is not None:
            alpha = scoring.quantile
            measures["pinball"] = lambda: regression.pinball(y_true, predicted, alpha)
        if realized is not None:
            a, rf = scoring.periods_per_year, scoring.risk_free
            returns = strategy_returns(scoring, predicted, realized)
            measures["sharpe"] = lambda: performance.sharpe(returns, a, rf)
            measures["sortino"] = lambda: performance.sortino(returns, a, rf)
            measures["max_drawdown"] = lambda: performance.max_drawdown(returns)
            measures["win_rate"] = lambda: performance.win_rate(returns)
            measures["total_return"] = lambda: performance.total_return(returns)
            measures["ic"] = lambda: performance.ic(predicted, realized)
            measures["hit_rate"] = lambda: performance.hit_rate(predicted, realized)
    for name in names:
        result.measure(name, measures[name])
    return result


def row_losses(task: str, y_true: FloatArray, predicted: FloatArray) -> FloatArray:
    """Each row's loss, for change points: the squared error of a binary score (its Brier
    score) or of a regression value, and the log loss of a multiclass row's true class."""
    if task == "multiclass":
        eps = np.finfo(np.float64).eps
        chosen = predicted[np.arange(y_true.size), y_true.astype(np.int64)]
        loss: FloatArray = -np.log(np.clip(chosen, eps, 1 - eps))
        return loss
    squared: FloatArray = (predicted - y_true) ** 2
    return squared
