"""Metrics against scikit-learn (classification) and hand-computed empyrical values (trading)."""

import math

import numpy as np
import pytest
from sklearn import metrics as sk

from retrain_cli.statistics import performance as perf

rng = np.random.default_rng(7)
N = 400
LABELS = rng.integers(0, 2, N).astype(float)
SCORES = np.clip(LABELS * 0.3 + rng.random(N) * 0.7, 0, 1)
TIED_SCORES = np.round(SCORES, 1)  # many ties


def close(value: float) -> object:
    return pytest.approx(value, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("scores", [SCORES, TIED_SCORES, 1 - SCORES], ids=["plain", "ties", "inv"])
def test_classification_metrics_equal_scikit_learn(scores: np.ndarray) -> None:
    predicted = (scores >= 0.5).astype(int)
    assert perf.auc(LABELS, scores) == close(sk.roc_auc_score(LABELS, scores))
    assert perf.precision(LABELS, scores) == close(sk.precision_score(LABELS, predicted))
    assert perf.recall(LABELS, scores) == close(sk.recall_score(LABELS, predicted))
    assert perf.f1(LABELS, scores) == close(sk.f1_score(LABELS, predicted))
    assert perf.accuracy(LABELS, scores) == close(sk.accuracy_score(LABELS, predicted))
    assert perf.log_loss(LABELS, scores) == pytest.approx(
        sk.log_loss(LABELS, scores, labels=[0, 1]), rel=1e-9
    )


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_decision_threshold_is_configurable(threshold: float) -> None:
    predicted = (SCORES >= threshold).astype(int)
    assert perf.precision(LABELS, SCORES, threshold) == close(sk.precision_score(LABELS, predicted))
    assert perf.f1(LABELS, SCORES, threshold) == close(sk.f1_score(LABELS, predicted))


def test_log_loss_clips_certain_mistakes() -> None:
    y, p = np.array([1.0, 0.0, 1.0]), np.array([0.0, 1.0, 1.0])
    assert perf.log_loss(y, p) == pytest.approx(sk.log_loss(y, p, labels=[0, 1]), rel=1e-9)


@pytest.mark.parametrize(
    ("function", "y", "scores", "reason"),
    [
        (perf.auc, [1.0, 1.0, 1.0], [0.2, 0.9, 0.4], "single_class"),
        (perf.log_loss, [0.0, 0.0], [0.2, 0.9], "single_class"),
        (perf.precision, [0.0, 1.0], [0.1, 0.2], "no_positive_pred"),
        (perf.recall, [0.0, 0.0], [0.9, 0.2], "no_positive_label"),
        (perf.f1, [0.0, 0.0], [0.1, 0.2], "no_positives"),
    ],
)
def test_undefined_classification_metrics_say_why(
    function: object, y: list[float], scores: list[float], reason: str
) -> None:
    with pytest.raises(perf.Undefined) as info:
        function(np.array(y), np.array(scores))  # type: ignore[operator]
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("y", "scores"),
    [
        ([0.0, 1.0], [0.1, 0.2]),  # positives exist, none predicted: a collapsed model
        ([0.0, 0.0, 1.0], [0.9, 0.1, 0.2]),  # only false positives and misses
        ([1.0, 1.0], [0.1, 0.9]),
    ],
)
def test_f1_is_scikit_learns_wherever_it_defines_one(y: list[float], scores: list[float]) -> None:
    predicted = (np.array(scores) >= 0.5).astype(int)
    expected = sk.f1_score(np.array(y), predicted, zero_division=np.nan)
    assert perf.f1(np.array(y), np.array(scores)) == close(expected)


def test_an_equity_curve_beyond_float64_still_has_a_drawdown_and_no_nan() -> None:
    returns = np.array([1e200, 1e200, -0.5, 0.1])  # the curve passes 1e400
    assert perf.max_drawdown(returns) == close(-0.5)
    with pytest.raises(perf.Undefined, match="equity_overflow"):
        perf.total_return(returns)
    with pytest.raises(perf.Undefined, match="equity_overflow"):
        perf.max_drawdown(np.array([1e200, 1e200, -2.0]))  # below -100%: no log-space fallback


def test_an_equity_curve_that_overflows_and_then_hits_zero_has_a_drawdown_of_minus_one() -> None:
    assert perf.max_drawdown(np.array([1e300, 1e300, -1.0, 0.5])) == -1.0


@pytest.mark.parametrize("size", [1e300, 1e-3, 1.0])
def test_sharpe_and_sortino_do_not_depend_on_the_scale_of_the_returns(size: float) -> None:
    """Returns of 1e300 overflow a plain std (the Sharpe ratio then came out 0.0): the ratios
    are the same at any scale."""
    returns = RETURNS * size
    assert perf.sharpe(returns, 252) == close(perf.sharpe(RETURNS, 252))
    assert perf.sortino(returns, 252) == close(perf.sortino(RETURNS, 252))


def test_sharpe_of_returns_holding_inf_is_undefined_not_zero() -> None:
    with pytest.raises(perf.Undefined, match="non_finite_returns"):
        perf.sharpe(np.array([0.01, np.inf, 0.02]), 252)


@pytest.mark.parametrize("scores", [[0.2, 1.5], [-0.1, 0.5], [np.nan, 0.5]])
def test_log_loss_refuses_scores_that_are_not_probabilities(scores: list[float]) -> None:
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        perf.log_loss(np.array([0.0, 1.0]), np.array(scores))


RETURNS = np.array([0.01, -0.02, 0.015, 0.0, 0.03, -0.01, 0.005])


def test_sharpe_by_hand() -> None:
    mean = sum(RETURNS) / len(RETURNS)
    std = math.sqrt(sum((r - mean) ** 2 for r in RETURNS) / (len(RETURNS) - 1))
    assert perf.sharpe(RETURNS, 252) == close(mean / std * math.sqrt(252))
    rf = 0.001
    std_rf = math.sqrt(sum((r - rf - (mean - rf)) ** 2 for r in RETURNS) / (len(RETURNS) - 1))
    assert perf.sharpe(RETURNS, 12, rf) == close((mean - rf) / std_rf * math.sqrt(12))


def test_sortino_by_hand() -> None:
    mean = sum(RETURNS) / len(RETURNS)
    downside = math.sqrt(sum(min(r, 0) ** 2 for r in RETURNS) / len(RETURNS)) * math.sqrt(252)
    assert perf.sortino(RETURNS, 252) == close(mean * 252 / downside)


def test_max_drawdown_counts_a_first_period_loss() -> None:
    assert perf.max_drawdown(np.array([-0.1, 0.05])) == close(-0.1)
    # peak 1.1 * 1.2 = 1.32, trough 1.32 * 0.5 = 0.66
    assert perf.max_drawdown(np.array([0.1, 0.2, -0.5, 0.1])) == close(-0.5)
    assert perf.max_drawdown(np.array([0.01, 0.02])) == 0.0


def test_win_rate_and_total_return_by_hand() -> None:
    assert perf.win_rate(RETURNS) == close(4 / 6)  # one zero return does not count
    assert perf.total_return(RETURNS) == close(float(np.prod(1 + RETURNS) - 1))


@pytest.mark.parametrize(
    ("returns", "metric", "reason"),
    [
        (np.zeros(10), "sharpe", "zero_volatility"),
        (np.zeros(10), "sortino", "zero_volatility"),
        (np.zeros(10), "win_rate", "no_nonzero_returns"),
        (np.full(10, 0.01), "sharpe", "zero_volatility"),
        (np.full(10, 0.01), "sortino", "zero_volatility"),  # no downside at all
        (np.array([0.01]), "sharpe", "insufficient_samples"),
        (np.array([0.01]), "max_drawdown", "insufficient_samples"),
    ],
    ids=[
        "zeros-sharpe",
        "zeros-sortino",
        "zeros-win",
        "const-sharpe",
        "const-sortino",
        "one-sharpe",
        "one-drawdown",
    ],
)
def test_undefined_trading_metrics_say_why(returns: np.ndarray, metric: str, reason: str) -> None:
    evaluation = perf.evaluate(
        np.array([0.0, 1.0] * 5)[: returns.size], np.full(returns.size, 0.5), returns, min_samples=1
    )
    assert evaluation.values[metric] is None
    assert evaluation.reasons[metric] == reason


def test_too_few_rows_make_every_metric_insufficient() -> None:
    evaluation = perf.evaluate(LABELS[:10], SCORES[:10], RETURNS[:10], min_samples=30)
    assert set(evaluation.values.values()) == {None}
    assert set(evaluation.reasons.values()) == {"insufficient_samples"}


def test_two_rows_are_enough_when_min_samples_allows() -> None:
    evaluation = perf.evaluate(
        np.array([0.0, 1.0]), np.array([0.2, 0.8]), np.array([0.01, -0.02]), min_samples=2
    )
    assert evaluation.values["auc"] == 1.0
    assert evaluation.values["sharpe"] is not None


@pytest.mark.parametrize(
    ("metric", "value", "threshold", "baseline", "degraded"),
    [
        ("auc", 0.85, 0.80, None, False),
        ("auc", 0.79, 0.80, None, True),
        ("auc", 0.81, 0.80, 0.95, True),  # fell 14.7% from the hold-out
        ("auc", 0.88, 0.80, 0.95, False),  # fell 7.4%
        ("sharpe", -0.5, -1.0, -0.4, True),  # fell 25% of |baseline|
        ("log_loss", 0.9, 0.7, None, True),  # a loss: above is worse
        ("auc", None, 0.80, 0.95, None),
    ],
)
def test_judge(
    metric: str,
    value: float | None,
    threshold: float,
    baseline: float | None,
    degraded: bool | None,
) -> None:
    assert perf.judge(metric, value, threshold, baseline, 0.10).degraded is degraded
