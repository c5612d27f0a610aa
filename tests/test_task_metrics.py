"""The regression, multiclass and return-forecast metrics against scikit-learn and scipy: equal
to 1e-12 on randomized inputs where both define a value; NULL with a reason where scikit-learn's
number would say nothing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn import metrics as sk

from retrain_cli.statistics import multiclass as mc
from retrain_cli.statistics import performance as perf
from retrain_cli.statistics import regression as reg
from retrain_cli.training.gate import decide

SEEDS = range(20)


def close(expected: float) -> object:
    return pytest.approx(expected, rel=1e-12, abs=1e-12)


def regression_rows(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    y = rng.normal(rng.uniform(-50, 50), rng.uniform(0.1, 30), n)
    y[y == 0] = 1.0
    return y, y + rng.normal(0, rng.uniform(0.01, 10), n)


@pytest.mark.parametrize("seed", SEEDS)
def test_regression_metrics_equal_scikit_learn(seed: int) -> None:
    y, p = regression_rows(seed)
    assert reg.rmse(y, p) == close(sk.root_mean_squared_error(y, p))
    assert reg.mae(y, p) == close(sk.mean_absolute_error(y, p))
    assert reg.mape(y, p) == close(sk.mean_absolute_percentage_error(y, p))
    assert reg.r2(y, p) == close(sk.r2_score(y, p))
    assert reg.median_ae(y, p) == close(sk.median_absolute_error(y, p))
    for alpha in (0.1, 0.5, 0.9):
        assert reg.pinball(y, p, alpha) == close(sk.mean_pinball_loss(y, p, alpha=alpha))


def test_regression_metrics_say_why_where_scikit_learns_number_means_nothing() -> None:
    with pytest.raises(perf.Undefined, match="constant_target"):
        reg.r2(np.array([3.0, 3.0, 3.0]), np.array([2.0, 3.0, 4.0]))  # scikit-learn: 0.0
    with pytest.raises(perf.Undefined, match="zero_true_value"):
        reg.mape(np.array([0.0, 2.0]), np.array([1.0, 2.0]))  # scikit-learn: 2.25e15
    with pytest.raises(ValueError, match="quantile"):
        reg.pinball(np.array([1.0]), np.array([1.0]), 1.5)


def multiclass_rows(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True classes and probability rows (summing to 1) of K classes; the predictions agree
    with the truth more often than chance, and some classes may be missing from either."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    n = int(rng.integers(k * 3, 300))
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += rng.uniform(0, 3)
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y.astype(np.int64), proba


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_metrics_equal_scikit_learn(seed: int) -> None:
    y, proba = multiclass_rows(seed)
    guess = proba.argmax(axis=1)
    k = proba.shape[1]
    assert mc.accuracy(y, proba) == close(sk.accuracy_score(y, guess))
    for name, average in (("macro", "macro"), ("weighted", "weighted")):
        expected = sk.f1_score(y, guess, average=average, zero_division=0)
        assert getattr(mc, f"f1_{name}")(y, proba) == close(expected)
    assert mc.precision_macro(y, proba) == close(
        sk.precision_score(y, guess, average="macro", zero_division=0)
    )
    assert mc.recall_macro(y, proba) == close(
        sk.recall_score(y, guess, average="macro", zero_division=0)
    )
    assert mc.log_loss(y, proba) == close(sk.log_loss(y, proba, labels=list(range(k))))
    if len(np.unique(y)) == k:  # two classes: scikit-learn wants the second's column alone
        scores = proba[:, 1] if k == 2 else proba
        expected = sk.roc_auc_score(y, scores, multi_class="ovr", average="macro")
        assert mc.auc_ovr(y, proba) == close(expected)


def test_a_class_never_predicted_counts_zero_in_the_averages_as_in_scikit_learn() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    proba = np.array([[0.8, 0.1, 0.1]] * 3 + [[0.1, 0.8, 0.1]] * 3)  # class 2 never predicted
    guess = proba.argmax(axis=1)
    assert mc.precision_macro(y, proba) == close(
        sk.precision_score(y, guess, average="macro", zero_division=0)
    )
    assert mc.f1_macro(y, proba) == close(sk.f1_score(y, guess, average="macro", zero_division=0))


def test_auc_ovr_without_every_class_is_undefined_and_log_loss_refuses_non_probabilities() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    with pytest.raises(perf.Undefined, match="class_missing"):
        mc.auc_ovr(np.array([0, 1, 0]), proba)  # class 2 has no row
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        mc.log_loss(np.array([0, 1, 0]), proba * 2)


@pytest.mark.parametrize("seed", SEEDS)
def test_ic_is_scipys_spearman_and_hit_rate_counts_matching_signs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 500))
    realized = np.round(rng.normal(0, 0.01, n), 3)  # rounded: ties and zero returns
    predicted = np.round(realized * rng.uniform(0, 1) + rng.normal(0, 0.01, n), 3)
    if np.all(predicted == predicted[0]) or np.all(realized == realized[0]):
        pytest.skip("a constant draw")
    assert perf.ic(predicted, realized) == close(spearmanr(predicted, realized).statistic)
    moved = realized != 0
    expected = np.mean(np.sign(predicted[moved]) == np.sign(realized[moved]))
    assert perf.hit_rate(predicted, realized) == close(float(expected))


def test_ic_and_hit_rate_say_why_when_undefined() -> None:
    with pytest.raises(perf.Undefined, match="constant_input"):
        perf.ic(np.array([0.1, 0.1, 0.1]), np.array([0.2, -0.1, 0.3]))
    with pytest.raises(perf.Undefined, match="no_nonzero_returns"):
        perf.hit_rate(np.array([0.1, -0.1]), np.array([0.0, 0.0]))


def test_errors_and_losses_are_lower_is_better_and_scores_higher() -> None:
    assert {"rmse", "mae", "mape", "median_ae", "pinball", "log_loss"} <= perf.LOWER_IS_BETTER
    assert perf.LOWER_IS_BETTER.isdisjoint({"r2", "auc_ovr", "f1_macro", "ic", "hit_rate"})


def test_a_gate_on_rmse_promotes_the_lower_error_and_treats_its_threshold_as_a_ceiling() -> None:
    def gate(challenger: float, champion: float | None) -> bool:
        return decide(
            "rmse",
            challenger,
            champion,
            threshold=2.0,
            min_improvement=0.0,
            n_holdout=100,
            min_samples=30,
        ).promote

    assert gate(1.0, 1.5) and not gate(1.5, 1.0)  # lower error wins
    assert not gate(2.5, None)  # above the ceiling: held
    assert perf.judge("rmse", 2.5, 2.0, None, 0.1).degraded is True
    assert perf.judge("rmse", 1.0, 2.0, 0.95, 0.1).degraded is False
