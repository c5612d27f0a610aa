"""Regression metrics: pure functions over numpy arrays of true and predicted values.

Each equals scikit-learn's function of the same name on the same arrays where scikit-learn
defines one (tested to 1e-12). Where scikit-learn returns a number that says nothing, these
raise `Undefined` with a reason code, stored with a NULL:

    constant_target    r2 of a target with no variance (scikit-learn: 1.0 or 0.0)
    zero_true_value    mape with a true value of 0 (scikit-learn divides by 2.2e-16 instead)

Lower is better for every metric here but `r2` (see `performance.LOWER_IS_BETTER`).
"""

from __future__ import annotations

import math

import numpy as np

from retrain_cli.statistics.performance import FloatArray, Undefined


def rmse(y_true: FloatArray, y_pred: FloatArray) -> float:
    """Root mean squared error (`sklearn.metrics.root_mean_squared_error`).

    >>> rmse(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    1.4142135623730951
    """
    return math.sqrt(float(np.mean((y_true - y_pred) ** 2)))


def mae(y_true: FloatArray, y_pred: FloatArray) -> float:
    """Mean absolute error (`sklearn.metrics.mean_absolute_error`)."""
    return float(np.mean(np.abs(y_true - y_pred)))


def mape(y_true: FloatArray, y_pred: FloatArray) -> float:
    """Mean absolute percentage error, as a fraction (`mean_absolute_percentage_error`)."""
    if np.any(y_true == 0):
        raise Undefined("zero_true_value")
    return float(np.mean(np.abs(y_true - y_pred) / np.abs(y_true)))


def r2(y_true: FloatArray, y_pred: FloatArray) -> float:
    """Coefficient of determination, 1 - SS_res / SS_tot (`r2_score`). Higher is better."""
    total = float(np.sum((y_true - np.mean(y_true)) ** 2))
    if total == 0.0:
        raise Undefined("constant_target")
    return 1.0 - float(np.sum((y_true - y_pred) ** 2)) / total


def median_ae(y_true: FloatArray, y_pred: FloatArray) -> float:
    """Median absolute error (`median_absolute_error`)."""
    return float(np.median(np.abs(y_true - y_pred)))


def pinball(y_true: FloatArray, y_pred: FloatArray, alpha: float) -> float:
    """Mean pinball loss of a quantile-`alpha` forecast (`mean_pinball_loss`).

    >>> pinball(np.array([1.0, 3.0]), np.array([2.0, 2.0]), 0.9)
    0.5
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"pinball needs a quantile in (0, 1), not {alpha}")
    diff = y_true - y_pred
    return float(np.mean(np.maximum(alpha * diff, (alpha - 1.0) * diff)))
