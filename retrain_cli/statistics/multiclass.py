"""Multiclass metrics: pure functions of the true classes (indices 0..K-1 into the job's class
order) and a row of K probabilities per row, the predicted class being the most probable (the
first of ties, as numpy's argmax).

Each equals scikit-learn's on the same arrays (tested to 1e-12): the averaged precision, recall
and F1 run over the classes present in the true or the predicted classes, a class-level 0/0
counting 0 (scikit-learn's `zero_division=0`); `log_loss` is over the K classes (`labels=`);
`auc_ovr` is the mean of each class's one-vs-rest AUC (`roc_auc_score(multi_class="ovr")`).
Where scikit-learn has no number these raise `Undefined`:

    class_missing      auc_ovr when a class has no row, or every row (no one-vs-rest split)

Lower is better for `log_loss` only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from retrain_cli.statistics.performance import FloatArray, Undefined, auc

IntArray = NDArray[np.int64]


def predicted(proba: FloatArray) -> IntArray:
    """The most probable class of each row."""
    classes: IntArray = np.argmax(proba, axis=1).astype(np.int64)
    return classes


def accuracy(y_true: IntArray, proba: FloatArray) -> float:
    return float(np.mean(predicted(proba) == y_true))


def _per_class(
    y_true: IntArray, proba: FloatArray
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """True positives, false positives and false negatives of each class present in the true or
    predicted classes, and each one's support (rows of that true class)."""
    guess = predicted(proba)
    labels = np.union1d(y_true, guess)
    tp = np.array([np.sum((guess == c) & (y_true == c)) for c in labels], dtype=np.int64)
    fp = np.array([np.sum((guess == c) & (y_true != c)) for c in labels], dtype=np.int64)
    fn = np.array([np.sum((guess != c) & (y_true == c)) for c in labels], dtype=np.int64)
    support = tp + fn
    return tp, fp, fn, support


def _ratio(numerator: IntArray, denominator: IntArray) -> FloatArray:
    """Class-level ratios, 0 where the denominator is 0 (`zero_division=0`)."""
    result: FloatArray = np.divide(
        numerator, denominator, out=np.zeros(numerator.size), where=denominator > 0
    )
    return result


def precision_macro(y_true: IntArray, proba: FloatArray) -> float:
    tp, fp, _, _ = _per_class(y_true, proba)
    return float(np.mean(_ratio(tp, tp + fp)))


def recall_macro(y_true: IntArray, proba: FloatArray) -> float:
    tp, _, fn, _ = _per_class(y_true, proba)
    return float(np.mean(_ratio(tp, tp + fn)))


def f1_macro(y_true: IntArray, proba: FloatArray) -> float:
    tp, fp, fn, _ = _per_class(y_true, proba)
    return float(np.mean(_ratio(2 * tp, 2 * tp + fp + fn)))


def f1_weighted(y_true: IntArray, proba: FloatArray) -> float:
    """F1 per class, averaged with each class's support as its weight."""
    tp, fp, fn, support = _per_class(y_true, proba)
    return float(np.sum(_ratio(2 * tp, 2 * tp + fp + fn) * support) / np.sum(support))


def log_loss(y_true: IntArray, proba: FloatArray) -> float:
    """Mean cross-entropy of the true class's probability, clipped to [eps, 1 - eps] with eps
    float64's machine epsilon. Probabilities outside [0, 1] are refused, not clipped."""
    if not np.all((proba >= 0.0) & (proba <= 1.0)):
        raise ValueError("log_loss needs probabilities: some are outside [0, 1]")
    eps = np.finfo(np.float64).eps
    chosen = np.clip(proba[np.arange(y_true.size), y_true], eps, 1 - eps)
    return float(-np.mean(np.log(chosen)))


def auc_ovr(y_true: IntArray, proba: FloatArray) -> float:
    """The mean over classes of the AUC of that class against the rest."""
    classes = proba.shape[1]
    counts = np.bincount(y_true, minlength=classes)
    if np.any(counts == 0) or np.any(counts == y_true.size):
        raise Undefined("class_missing")
    return float(
        np.mean([auc((y_true == c).astype(np.float64), proba[:, c]) for c in range(classes)])
    )
