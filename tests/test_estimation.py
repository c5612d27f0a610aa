"""Estimated performance (CBPE): pure functions, against the realized metrics."""

from __future__ import annotations

import numpy as np
import pytest

from retrain_cli.performance import estimation
from retrain_cli.statistics import performance
from retrain_cli.statistics.performance import Undefined

pytest.importorskip("sklearn")


def scored(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and calibrated scores of a logistic model whose feature moved by `shift`: the
    score distribution changes, the score-to-outcome relation does not (covariate shift)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    p = 1 / (1 + np.exp(-(2 * x - 1)))
    return (rng.random(n) < p).astype(np.float64), p


def realized(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    return {
        "auc": performance.auc(labels, scores),
        "precision": performance.precision(labels, scores, threshold),
        "recall": performance.recall(labels, scores, threshold),
        "f1": performance.f1(labels, scores, threshold),
        "accuracy": performance.accuracy(labels, scores, threshold),
    }


def test_with_certain_probabilities_the_expected_auc_is_the_realized_auc() -> None:
    """Calibrated probabilities of exactly 0 and 1 make the expected ROC curve the real one
    (ties in the score counting one half, as in the realized AUC)."""
    rng = np.random.default_rng(1)
    labels = (rng.random(500) < 0.3).astype(np.float64)
    scores = np.round(rng.random(500), 2)  # many ties
    assert estimation.expected_auc(labels, scores) == pytest.approx(
        performance.auc(labels, scores), abs=1e-12
    )


@pytest.mark.parametrize("shift", [0.0, 0.5, 1.0, -1.0])
def test_estimates_are_within_two_hundredths_of_the_realized_metrics(shift: float) -> None:
    ref_labels, ref_scores = scored(20_000, 0.0, seed=2)
    calibration = estimation.calibrate(ref_labels, ref_scores, min_samples=30)
    labels, scores = scored(20_000, shift, seed=3)
    estimate = estimation.estimate(calibration, scores, threshold=0.5, min_samples=30)
    for metric, value in realized(labels, scores, 0.5).items():
        assert estimate.values[metric] == pytest.approx(value, abs=0.02), metric
    assert 0 < calibration.brier < 0.25


def test_a_reference_of_one_class_cannot_be_calibrated() -> None:
    with pytest.raises(Undefined) as raised:
        estimation.calibrate(np.zeros(100), np.linspace(0, 1, 100), min_samples=30)
    assert raised.value.reason == "reference_single_class"


def test_a_small_reference_or_window_is_undefined_not_zero() -> None:
    labels, scores = scored(1000, 0.0, seed=4)
    with pytest.raises(Undefined) as raised:
        estimation.calibrate(labels[:10], scores[:10], min_samples=30)
    assert raised.value.reason == "insufficient_samples"
    calibration = estimation.calibrate(labels, scores, min_samples=30)
    small = estimation.estimate(calibration, scores[:5], threshold=0.5, min_samples=30)
    assert set(small.values.values()) == {None}
    assert set(small.reasons.values()) == {"insufficient_samples"}


def test_no_score_above_the_threshold_leaves_precision_undefined() -> None:
    labels, scores = scored(1000, 0.0, seed=5)
    calibration = estimation.calibrate(labels, scores, min_samples=30)
    result = estimation.estimate(calibration, scores * 0.4, threshold=0.5, min_samples=30)
    assert result.values["precision"] is None
    assert result.reasons["precision"] == "no_positive_pred"
    assert result.values["accuracy"] is not None
