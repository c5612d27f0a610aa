"""Performance estimated without labels, as NannyML does it: confidence-based performance
estimation (CBPE) of binary and multiclass classifiers, and direct loss estimation (DLE) of
regression models (at the end of this module); pure functions over numpy arrays.

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

# what each task's estimate holds
ESTIMATED_METRICS = {
    "binary": ("auc", "precision", "recall", "f1", "accuracy"),
    "multiclass": ("accuracy", "f1_macro", "precision_macro", "recall_macro", "auc_ovr"),
    "regression": ("rmse", "mae"),
}


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

    @classmethod
    def too_few(cls, n_samples: int, names: tuple[str, ...]) -> Estimate:
        """Every metric NULL: fewer rows than `min_samples`."""
        return cls(dict.fromkeys(names), dict.fromkeys(names, "insufficient_samples"), n_samples)

    def measured(self, measures: dict[str, Callable[[], float]]) -> Estimate:
        """Each metric's value, or NULL with the reason it is undefined."""
        for name, compute in measures.items():
            try:
                self.values[name] = float(compute())
            except Undefined as exc:
                self.values[name], self.reasons[name] = None, exc.reason
        return self


def estimate(
    calibration: Calibration, scores: FloatArray, threshold: float, min_samples: int
) -> Estimate:
    """The expected precision, recall, F1, accuracy and ROC AUC of `scores` (CBPE)."""
    if scores.size < min_samples:
        return Estimate.too_few(int(scores.size), ESTIMATED_METRICS["binary"])
    result = Estimate(n_samples=int(scores.size))
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
    return result.measured(measures)


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


# --- multiclass: CBPE one class against the rest ----------------------------------------------


@dataclass(frozen=True)
class ClassCalibration:
    """One isotonic calibration per class (its probability against the rest), as NannyML's
    multiclass CBPE: a row's calibrated probabilities are then scaled to sum to 1."""

    classes: list[Calibration]
    brier: float  # the mean over classes of each one's Brier score on the reference

    def probabilities(self, proba: FloatArray) -> FloatArray:
        calibrated = np.column_stack(
            [c.probabilities(proba[:, k]) for k, c in enumerate(self.classes)]
        )
        total = calibrated.sum(axis=1, keepdims=True)
        uniform = np.full_like(calibrated, 1.0 / calibrated.shape[1])
        scaled: FloatArray = np.divide(calibrated, total, out=uniform, where=total > 0)
        return scaled


def calibrate_classes(labels: FloatArray, proba: FloatArray, min_samples: int) -> ClassCalibration:
    """Fit each class's calibration on a labelled reference (class indices, K probabilities)."""
    classes = [
        calibrate((labels == k).astype(np.float64), proba[:, k], min_samples)
        for k in range(proba.shape[1])
    ]
    return ClassCalibration(classes, float(np.mean([c.brier for c in classes])))


def estimate_multiclass(
    calibration: ClassCalibration, proba: FloatArray, min_samples: int
) -> Estimate:
    """The expected accuracy, macro precision, recall and F1, and one-vs-rest AUC of a window's
    class probabilities, the predicted class being the most probable one (CBPE per class)."""
    if proba.shape[0] < min_samples:
        return Estimate.too_few(int(proba.shape[0]), ESTIMATED_METRICS["multiclass"])
    result = Estimate(n_samples=int(proba.shape[0]))
    p = calibration.probabilities(proba)
    guess = np.argmax(proba, axis=1)
    rows = np.arange(proba.shape[0])
    per_class = []
    for k in range(proba.shape[1]):
        chosen = guess == k
        tp, fp = float(p[chosen, k].sum()), float((1 - p[chosen, k]).sum())
        fn = float(p[~chosen, k].sum())
        per_class.append((tp, fp, fn))
    measures: dict[str, Callable[[], float]] = {
        "accuracy": lambda: float(p[rows, guess].mean()),
        "precision_macro": lambda: _macro(per_class, lambda tp, fp, fn: (tp, tp + fp)),
        "recall_macro": lambda: _macro(per_class, lambda tp, fp, fn: (tp, tp + fn)),
        "f1_macro": lambda: _macro(per_class, lambda tp, fp, fn: (2 * tp, 2 * tp + fp + fn)),
        "auc_ovr": lambda: float(
            np.mean([expected_auc(p[:, k], proba[:, k]) for k in range(proba.shape[1])])
        ),
    }
    return result.measured(measures)


def _macro(
    per_class: list[tuple[float, float, float]],
    ratio: Callable[[float, float, float], tuple[float, float]],
) -> float:
    """The mean over classes of a ratio of expected counts, 0 where its denominator is 0 (as
    the realized metrics' `zero_division=0`)."""
    values = []
    for counts in per_class:
        numerator, denominator = ratio(*counts)
        values.append(numerator / denominator if denominator > 0 else 0.0)
    return float(np.mean(values))


# --- regression: direct loss estimation ---------------------------------------------------------

DLE_ROUNDS = 100  # LightGBM's (and NannyML's DLE's) default number of trees


@dataclass(frozen=True)
class LossModels:
    """NannyML's direct loss estimation (DLE): LightGBM models of a row's absolute and squared
    error from its features and its prediction, fitted on labelled reference rows. Their
    predictions on an unlabelled window, averaged, estimate its MAE and (square-rooted) RMSE.
    `error` is the models' own mean absolute error on the reference, as the Brier score is
    CBPE's: how well the loss was learnt there."""

    absolute: Any
    squared: Any
    n_reference: int
    error: float

    def estimate(self, inputs: Any, min_samples: int) -> Estimate:
        rows = len(inputs)
        if rows < min_samples:
            return Estimate.too_few(rows, ESTIMATED_METRICS["regression"])
        result = Estimate(n_samples=rows)
        absolute = np.clip(self.absolute.predict(inputs), 0.0, None)
        squared = np.clip(self.squared.predict(inputs), 0.0, None)
        result.values["rmse"] = float(np.sqrt(squared.mean()))
        result.values["mae"] = float(absolute.mean())
        return result


def fit_loss_models(
    inputs: Any, truth: FloatArray, predicted: FloatArray, min_samples: int
) -> LossModels:
    """Fit the DLE models on reference rows: `inputs` are the features and the prediction
    (a frame: categorical columns as pandas categories), `truth` the labels."""
    if len(truth) < min_samples:
        raise Undefined("insufficient_samples")
    import lightgbm as lgb

    params = {"objective": "regression", "verbosity": -1, "seed": 0, "deterministic": True}
    params["force_col_wise"] = True  # one histogram layout with `deterministic`
    error = np.abs(truth - predicted)
    models = [
        lgb.train(params, lgb.Dataset(inputs, label=target), num_boost_round=DLE_ROUNDS)
        for target in (error, error**2)
    ]
    fitted_error = float(np.mean(np.abs(models[0].predict(inputs) - error)))
    return LossModels(models[0], models[1], len(truth), fitted_error)
