"""Performance metrics: pure functions over numpy arrays (no pandas, no database, no clock).

Higher is better for every metric here except `log_loss` (a loss). A metric that is undefined on
its input raises `Undefined` with a reason code instead of returning 0, 0.5 or inf:

    single_class           AUC (or log loss) with only one class in y_true
    no_positive_label      recall with no positive label
    no_positive_pred       precision with no positive prediction
    insufficient_samples   fewer than `min_samples` rows, or fewer than 2 returns
    zero_volatility        a standard deviation (or downside risk) below 1e-12
    non_finite_returns     Sharpe or Sortino of returns holding inf or NaN
    equity_overflow        an equity curve float64 cannot follow (and its value is not knowable)
    constant_input         ic when the predicted or the realized returns are all the same
    no_nonzero_returns     win rate when every return is exactly zero

Classification metrics equal scikit-learn's on the same arrays (tested); trading metrics are
defined as empyrical defines them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from retrain_cli.core.choices import LOWER_IS_BETTER

FloatArray = NDArray[np.float64]
MIN_VOLATILITY = 1e-12
DEFAULT_MIN_SAMPLES = 30
DEFAULT_PERIODS_PER_YEAR = 252.0
CLASSIFICATION_METRICS = ("auc", "precision", "recall", "f1", "log_loss", "accuracy")
TRADING_METRICS = ("sharpe", "sortino", "max_drawdown", "win_rate", "total_return")


class Undefined(ValueError):
    """The metric has no value on this input; `reason` is the code stored with the NULL."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def auc(y_true: FloatArray, y_score: FloatArray) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random
    negative, ties counting one half (Mann-Whitney U / (n_pos * n_neg)).

    >>> auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    positives = y_true == 1
    n_pos = int(positives.sum())
    n_neg = y_true.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise Undefined("single_class")
    ranks = _average_ranks(y_score)
    u = float(ranks[positives].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def _average_ranks(values: FloatArray) -> FloatArray:
    """1-based ranks with ties given their average rank (scipy.stats.rankdata 'average')."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_values[1:] != sorted_values[:-1])))
    ends = np.append(starts[1:], values.size)
    group_rank = (starts + ends + 1) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(values.size)
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def _confusion(
    y_true: FloatArray, y_score: FloatArray, threshold: float
) -> tuple[int, int, int, int]:
    predicted = y_score >= threshold
    actual = y_true == 1
    tp = int(np.sum(predicted & actual))
    fp = int(np.sum(predicted & ~actual))
    fn = int(np.sum(~predicted & actual))
    return tp, fp, fn, y_true.size - tp - fp - fn


def precision(y_true: FloatArray, y_score: FloatArray, threshold: float = 0.5) -> float:
    """TP / (TP + FP), predicting 1 where y_score >= threshold.

    >>> precision(np.array([0, 1, 1]), np.array([0.6, 0.7, 0.2]))
    0.5
    """
    tp, fp, _, _ = _confusion(y_true, y_score, threshold)
    if tp + fp == 0:
        raise Undefined("no_positive_pred")
    return tp / (tp + fp)


def recall(y_true: FloatArray, y_score: FloatArray, threshold: float = 0.5) -> float:
    """TP / (TP + FN), predicting 1 where y_score >= threshold."""
    tp, _, fn, _ = _confusion(y_true, y_score, threshold)
    if tp + fn == 0:
        raise Undefined("no_positive_label")
    return tp / (tp + fn)


def f1(y_true: FloatArray, y_score: FloatArray, threshold: float = 0.5) -> float:
    """2 TP / (2 TP + FP + FN), as scikit-learn defines it: 0 when positives exist but none is
    found (a collapsed model), undefined only with no positive label and no positive prediction.

    >>> f1(np.array([0, 1]), np.array([0.1, 0.2]))
    0.0
    """
    tp, fp, fn, _ = _confusion(y_true, y_score, threshold)
    if tp + fp + fn == 0:
        raise Undefined("no_positives")
    return 2 * tp / (2 * tp + fp + fn)


def accuracy(y_true: FloatArray, y_score: FloatArray, threshold: float = 0.5) -> float:
    """Share of rows whose prediction (y_score >= threshold) equals the label."""
    return float(np.mean((y_score >= threshold) == (y_true == 1)))


def log_loss(y_true: FloatArray, y_score: FloatArray) -> float:
    """Mean binary cross-entropy, probabilities clipped to [eps, 1 - eps] with eps the float64
    machine epsilon (scikit-learn's `log_loss(..., labels=[0, 1])`). Lower is better. Scores
    outside [0, 1] are not probabilities: refused (`ValueError`), not clipped into a number."""
    outside = int(np.count_nonzero(~((y_score >= 0.0) & (y_score <= 1.0))))
    if outside:
        raise ValueError(f"log_loss needs probabilities: {outside} scores are outside [0, 1]")
    if np.all(y_true == y_true[0]):
        raise Undefined("single_class")
    eps = np.finfo(np.float64).eps
    p = np.clip(y_score, eps, 1 - eps)
    return float(-np.mean(np.where(y_true == 1, np.log(p), np.log(1 - p))))


def sharpe(returns: FloatArray, periods_per_year: float, risk_free: float = 0.0) -> float:
    """Annualised Sharpe ratio: mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods_per_year).

    >>> round(sharpe(np.array([0.01, -0.005, 0.02, 0.0]), 252), 4)
    8.949
    """
    excess, scale = _scaled(_returns(returns) - risk_free)
    volatility = float(np.std(excess, ddof=1))
    if volatility * scale < MIN_VOLATILITY:
        raise Undefined("zero_volatility")
    return float(np.mean(excess)) / volatility * math.sqrt(periods_per_year)


def sortino(returns: FloatArray, periods_per_year: float, risk_free: float = 0.0) -> float:
    """Annualised Sortino ratio as empyrical: mean(r - rf) * A / downside risk, where downside
    risk = sqrt(mean(min(r - rf, 0)^2)) * sqrt(A)."""
    excess, scale = _scaled(_returns(returns) - risk_free)
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2))) * math.sqrt(periods_per_year)
    if downside * scale < MIN_VOLATILITY:
        raise Undefined("zero_volatility")
    return float(np.mean(excess)) * periods_per_year / downside


def max_drawdown(returns: FloatArray) -> float:
    """Largest peak-to-trough fall of the equity curve cumprod(1 + r), starting from equity 1,
    as a negative fraction (0 when the curve never falls).

    >>> max_drawdown(np.array([-0.5, 1.0]))
    -0.5
    """
    r = _returns(returns)
    with np.errstate(over="ignore", invalid="ignore"):
        equity = np.concatenate(([1.0], np.cumprod(1.0 + r)))
        drawdown = float(np.min(equity / np.maximum.accumulate(equity) - 1.0))
    if math.isfinite(drawdown):
        return drawdown
    if np.all(r > -1.0):  # an equity curve too steep for float64: the same in log space
        log_equity = np.concatenate(([0.0], np.cumsum(np.log1p(r))))
        return float(np.expm1(np.min(log_equity - np.maximum.accumulate(log_equity))))
    if r[np.argmax(r <= -1.0)] == -1.0:  # equity positive until it hits 0 and stays there
        return -1.0
    raise Undefined("equity_overflow")


def win_rate(returns: FloatArray) -> float:
    """count(r > 0) / count(r != 0)."""
    r = _returns(returns)
    traded = int(np.count_nonzero(r))
    if traded == 0:
        raise Undefined("no_nonzero_returns")
    return int(np.sum(r > 0)) / traded


def total_return(returns: FloatArray) -> float:
    """Compounded return over the window: prod(1 + r) - 1."""
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(np.prod(1.0 + _returns(returns)) - 1.0)
    if not math.isfinite(value):
        raise Undefined("equity_overflow")
    return value


def _scaled(values: FloatArray) -> tuple[FloatArray, float]:
    """`values` divided by a power of two near their largest magnitude, and that power: ratios
    such as mean / std are unchanged (the division is exact), and no square overflows."""
    largest = float(np.max(np.abs(values)))
    if not math.isfinite(largest):
        raise Undefined("non_finite_returns")
    if largest == 0.0:
        return values, 1.0
    scale = math.ldexp(1.0, math.frexp(largest)[1])
    return values / scale, scale


def ic(predicted: FloatArray, realized: FloatArray) -> float:
    """Information coefficient: the Spearman rank correlation of predicted and realized returns
    over the window's rows (`scipy.stats.spearmanr`, ties given their average rank)."""
    if predicted.size < 2:
        raise Undefined("insufficient_samples")
    if np.all(predicted == predicted[0]) or np.all(realized == realized[0]):
        raise Undefined("constant_input")
    from scipy.stats import spearmanr

    return float(spearmanr(predicted, realized).statistic)


def hit_rate(predicted: FloatArray, realized: FloatArray) -> float:
    """The share of rows whose predicted return has the realized return's sign, over the rows
    whose realized return is not 0."""
    moved = realized != 0
    if not np.any(moved):
        raise Undefined("no_nonzero_returns")
    return float(np.mean(np.sign(predicted[moved]) == np.sign(realized[moved])))


def _returns(returns: FloatArray) -> FloatArray:
    if returns.size < 2:
        raise Undefined("insufficient_samples")
    return returns


@dataclass
class Evaluation:
    """Every metric's value (None when undefined) and the reason code of each undefined one."""

    values: dict[str, float | None] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    n_samples: int = 0

    def measure(self, name: str, compute: Callable[[], float]) -> None:
        try:
            value = compute()
        except Undefined as exc:
            self.values[name], self.reasons[name] = None, exc.reason
            return
        self.values[name] = value


def evaluate(
    y_true: FloatArray,
    y_score: FloatArray,
    returns: FloatArray | None = None,
    *,
    threshold: float = 0.5,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    periods_per_year: float = DEFAULT_PERIODS_PER_YEAR,
    risk_free: float = 0.0,
) -> Evaluation:
    """Every classification metric, and every trading metric when `returns` is given, on rows
    without missing values (the caller drops those)."""
    result = Evaluation(n_samples=int(y_true.size))
    names = [*CLASSIFICATION_METRICS, *(TRADING_METRICS if returns is not None else ())]
    if y_true.size < min_samples:
        for name in names:
            result.values[name], result.reasons[name] = None, "insufficient_samples"
        return result
    t = threshold
    result.measure("auc", lambda: auc(y_true, y_score))
    result.measure("precision", lambda: precision(y_true, y_score, t))
    result.measure("recall", lambda: recall(y_true, y_score, t))
    result.measure("f1", lambda: f1(y_true, y_score, t))
    result.measure("log_loss", lambda: log_loss(y_true, y_score))
    result.measure("accuracy", lambda: accuracy(y_true, y_score, t))
    if returns is not None:
        a, rf = periods_per_year, risk_free
        result.measure("sharpe", lambda: sharpe(returns, a, rf))
        result.measure("sortino", lambda: sortino(returns, a, rf))
        result.measure("max_drawdown", lambda: max_drawdown(returns))
        result.measure("win_rate", lambda: win_rate(returns))
        result.measure("total_return", lambda: total_return(returns))
    return result


@dataclass(frozen=True)
class Judgement:
    degraded: bool | None  # None: unknown (the metric is undefined)
    reasons: list[str]


def judge(
    metric: str,
    value: float | None,
    threshold: float | None,
    baseline: float | None,
    max_relative_drop: float,
) -> Judgement:
    """Degraded when the value is worse than the absolute threshold, or worse than the baseline
    (the active version's hold-out value) by more than `max_relative_drop` of |baseline|.

    >>> judge("auc", 0.70, 0.80, None, 0.1)
    Judgement(degraded=True, reasons=['auc 0.7 below threshold 0.8'])
    >>> judge("auc", None, 0.80, 0.9, 0.1).degraded is None
    True
    """
    if value is None:
        return Judgement(None, [f"{metric} is undefined"])
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    reasons = []
    if threshold is not None and sign * value < sign * threshold:
        word = "above" if sign < 0 else "below"
        reasons.append(f"{metric} {value:.4g} {word} threshold {threshold:.4g}")
    if baseline is not None and baseline != 0:
        drop = sign * (baseline - value) / abs(baseline)
        if drop > max_relative_drop:
            reasons.append(
                f"{metric} {value:.4g} fell {drop:.1%} from the hold-out {baseline:.4g} "
                f"(allowed {max_relative_drop:.0%})"
            )
    return Judgement(bool(reasons), reasons)
