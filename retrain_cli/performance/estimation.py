"""Performance estimated without labels: confidence-based performance estimation (CBPE, as
NannyML does it), pure functions over numpy arrays.

The model's scores are calibrated on a labelled reference window with scikit-learn's isotonic
regression; on an unlabelled window each row's calibrated score is the probability that its
label is 1, so the confusion matrix at the decision threshold has an expected value, and so do
precision, recall, F1, accuracy and the ROC curve. The estimate is as good as the calibration
and assumes the relation between score and outcome did not change (covariate shift only): the
Brier score of the calibration on the reference says how reliable it was there.

Undefined estimates raise `performance.Undefined` with these reason codes, stored with NULL:

    reference_single_class   the reference holds one class only: nothing to calibrate
    insufficient_samples     fewer than `min_samples` rows in the reference or the window
    no_positive_pred         precision with no row at or above the threshold
    no_positive_label        recall (or AUC) expecting no positive label at all
    no_negative_label        AUC expecting no negative label
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retrain_cli.core.errors import ConfigError
from retrain_cli.statistics.performance import FloatArray, Undefined

ESTIMATED_METRICS = ("auc", "precision", "recall", "f1", "accuracy")


@dataclass(frozen=True)
class Calibration:
    """A fitted isotonic map from score to P(label = 1), and its Brier score on the reference."""

    model: Any
    brier: float
    n_reference: int
    positive_rate: float

    def probabilities(self, scores: FloatArray) -> FloatArray:
        calibrated: FloatArray = np.clip(self.model.predict(scores), 0.0, 1.0)
        return calibrated


def calibrate(labels: FloatArray, scores: FloatArray, min_samples: int) -> Calibration:
    """Fit the calibration on a labelled reference (labels 0/1, scores in [0, 1])."""
    if labels.size < min_samples:
        raise Undefined("insufficient_samples")
    if np.unique(labels).size < 2:
        raise Undefined("reference_single_class")
    try:
        from sklearn.isotonic import IsotonicRegression
    except ImportError as exc:
        raise ConfigError(
            "estimated performance calibrates with scikit-learn: "
            "pip install 'retrain-cli[monitoring]'"
        ) from exc
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    model.fit(scores, labels)
    calibrated = np.clip(model.predict(scores), 0.0, 1.0)
    brier = float(np.mean((calibrated - labels) ** 2))
    return Calibration(model, brier, int(labels.size), float(labels.mean()))


@dataclass
class Estimate:
    """Each estimated metric (None when undefined, with its reason) on an unlabelled window."""

    values: dict[str, float | None] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    n_samples: int = 0


def estimate(
    calibration: Calibration, scores: FloatArray, threshold: float, min_samples: int
) -> Estimate:
    """The expected precision, recall, F1, accuracy and ROC AUC of `scores` (CBPE)."""
    result = Estimate(n_samples=int(scores.size))
    if scores.size < min_samples:
        for name in ESTIMATED_METRICS:
            result.values[name], result.reasons[name] = None, "insufficient_samples"
        return result
    p = calibration.probabilities(scores)
    predicted = scores >= threshold
    tp, fp = float(p[predicted].sum()), float((1 - p[predicted]).sum())
    fn, tn = float(p[~predicted].sum()), float((1 - p[~predicted]).sum())
    measures: dict[str, Callable[[], float]] = {
        "auc": lambda: expected_auc(p, scores),
        "precision": lambda: _ratio(tp, tp + fp, "no_positive_pred"),
        "recall": lambda: _ratio(tp, tp + fn, "no_positive_label"),
        "f1": lambda: _ratio(2 * tp, 2 * tp + fp + fn, "no_positive_label"),
        "accuracy": lambda: (tp + tn) / scores.size,
    }
    for name, compute in measures.items():
        try:
            result.values[name] = float(compute())
        except Undefined as exc:
            result.values[name], result.reasons[name] = None, exc.reason
    return result


def expected_auc(probabilities: FloatArray, scores: FloatArray) -> float:
    """The area under the expected ROC curve: at each distinct score, from the highest down,
    the expected true positives (the sum of the calibrated probabilities above it) over the
    expected positives, against the expected false positives over the expected negatives.

    >>> round(expected_auc(np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.1, 0.4, 0.35, 0.8])), 4)
    0.75
    """
    positives, negatives = float(probabilities.sum()), float((1 - probabilities).sum())
    if positives <= 0:
        raise Undefined("no_positive_label")
    if negatives <= 0:
        raise Undefined("no_negative_label")
    order = np.argsort(-scores, kind="mergesort")
    ranked, p = scores[order], probabilities[order]
    last_of_tie = np.append(ranked[1:] != ranked[:-1], True)  # one ROC point per distinct score
    tpr = np.concatenate(([0.0], np.cumsum(p)[last_of_tie] / positives))
    fpr = np.concatenate(([0.0], np.cumsum(1 - p)[last_of_tie] / negatives))
    return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2))


def _ratio(numerator: float, denominator: float, reason: str) -> float:
    if denominator <= 0:
        raise Undefined(reason)
    return numerator / denominator
