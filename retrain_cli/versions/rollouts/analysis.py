"""A candidate judged against the champion on live outcomes: pure functions, no database.

The difference of one metric (candidate minus champion, turned round for a lower-is-better
metric such as `rmse`, so that a drop is always a change for the worse) gets a two-sided
bootstrap interval from `scipy.stats.bootstrap` over resampled row numbers (percentile
method: BCa's jackknife costs n evaluations, too many for a window of a million rows). Paired on
the same rows for a shadow candidate, unpaired on the rows each version served for canary, A/B and
bake. A check *passes* when the interval's low end is not below `-max_drop`, *fails* when its high
end is below it (worse by more than `max_drop` at that confidence), and otherwise, or with fewer
than `min_samples` labelled rows for either version, *waits*.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from retrain_cli.core.choices import LOWER_IS_BETTER
from retrain_cli.statistics import multiclass
from retrain_cli.statistics.performance import FloatArray, Undefined

IntArray = NDArray[np.intp]

Verdict = Literal["pass", "fail", "wait"]
SEED = 0  # the same window judged twice gets the same verdict
BATCH_CELLS = 4_000_000  # resampled values held at once: 32 MB of float64 per array


@dataclass(frozen=True)
class Rule:
    metric: str
    max_drop: float
    min_samples: int
    confidence: float
    resamples: int
    threshold: float = 0.5  # a score at or above it predicts 1
    max_rows: int | None = None  # judge a uniform sample of this many rows of each version
    quantile: float | None = None  # the level of a quantile forecast (`pinball`)

    @property
    def sign(self) -> float:
        """+1 for a higher-is-better metric, -1 for an error or a loss."""
        return -1.0 if self.metric in LOWER_IS_BETTER else 1.0


@dataclass(frozen=True)
class Comparison:
    verdict: Verdict
    reason: str
    metric: str
    paired: bool
    candidate: float | None  # the metric on the candidate's rows
    champion: float | None  # on the champion's rows (the same rows when paired)
    n_candidate: int
    n_champion: int
    difference: float | None = None  # candidate - champion
    low: float | None = None  # the interval of the difference
    high: float | None = None

    def numbers(self) -> dict[str, object]:
        """The analysis as recorded beside its event or measurement."""
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "metric": self.metric,
            "paired": self.paired,
            "candidate": self.candidate,
            "champion": self.champion,
            "n_candidate": self.n_candidate,
            "n_champion": self.n_champion,
            "difference": self.difference,
            "low": self.low,
            "high": self.high,
        }


@dataclass(frozen=True)
class Outcomes:
    """One version's labelled rows and their predictions (a binary score, a regression value,
    or a row of class probabilities), with each binary score's rank among the distinct scores
    (computed once: every resample reuses it)."""

    labels: FloatArray
    scores: FloatArray
    groups: IntArray
    n_groups: int

    @classmethod
    def of(cls, labels: FloatArray, scores: FloatArray) -> Outcomes:
        if scores.ndim != 1:
            return cls(labels, scores, np.zeros(0, dtype=np.intp), 0)
        distinct, groups = np.unique(scores, return_inverse=True)
        return cls(labels, scores, groups.reshape(-1), len(distinct))


_EPS = float(np.finfo(np.float64).eps)
# the regression and multiclass metrics that are a mean of one value per row
_ROW_MEANS: dict[str, Callable[[FloatArray, FloatArray], FloatArray]] = {
    "mae": lambda y, p: np.abs(y - p),
    "mape": lambda y, p: np.abs(y - p) / np.where(y == 0, np.nan, np.abs(y)),
    "accuracy_of_classes": lambda y, p: (np.argmax(p, axis=1) == y).astype(np.float64),
    "log_loss_of_classes": lambda y, p: (
        -np.log(np.clip(p[np.arange(y.size), y.astype(np.intp)], _EPS, 1 - _EPS))
    ),
}


def metric_of_rows(
    metric: str, outcomes: Outcomes, rows: IntArray, threshold: float, quantile: float | None = None
) -> FloatArray:
    """The metric of the rows `rows` index along its last axis (one resample per leading
    index), NaN where undefined: the definitions of `performance.py`, `regression.py` and
    `multiclass.py`, for a batch at once (the averaged multiclass ones and AUC one-vs-rest:
    one resample after another).

    AUC is Mann-Whitney U from counts per distinct score: per resample, the positives of each
    score times the negatives below it (ties a half), so that no resample is sorted again."""
    if outcomes.scores.ndim == 2 or metric in REGRESSION:
        return _of_values(metric, outcomes, rows, quantile)
    labels = outcomes.labels[rows]
    positive = labels == 1
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "auc":
            return _auc(outcomes, rows, labels)
        predicted = outcomes.scores[rows] >= threshold
        tp = (predicted & positive).sum(axis=-1)
        fp = (predicted & ~positive).sum(axis=-1)
        fn = (~predicted & positive).sum(axis=-1)
        ratios: dict[str, Callable[[], FloatArray]] = {
            "precision": lambda: tp / (tp + fp),
            "recall": lambda: tp / (tp + fn),
            "f1": lambda: 2 * tp / (2 * tp + fp + fn),
            "accuracy": lambda: np.mean(predicted == positive, axis=-1),
        }
        if metric not in ratios:
            raise ValueError(f"{metric!r} is not judged per row of outcomes")
        return np.asarray(ratios[metric](), dtype=np.float64)


REGRESSION = frozenset({"rmse", "mae", "mape", "r2", "median_ae", "pinball"})


def _of_values(
    metric: str, outcomes: Outcomes, rows: IntArray, quantile: float | None
) -> FloatArray:
    """A regression or multiclass metric of each resample."""
    y, p = outcomes.labels, outcomes.scores
    classes = p.ndim == 2
    key = f"{metric}_of_classes" if classes and metric in ("accuracy", "log_loss") else metric
    with np.errstate(divide="ignore", invalid="ignore"):
        if key in _ROW_MEANS:
            return np.asarray(np.mean(_ROW_MEANS[key](y, p)[rows], axis=-1), dtype=np.float64)
        if not classes:
            error = (y - p)[rows]
            if metric == "rmse":
                return np.asarray(np.sqrt(np.mean(error**2, axis=-1)), dtype=np.float64)
            if metric == "median_ae":
                return np.asarray(np.median(np.abs(error), axis=-1), dtype=np.float64)
            if metric == "r2":
                truth = y[rows]
                spread = np.sum((truth - truth.mean(axis=-1, keepdims=True)) ** 2, axis=-1)
                return np.asarray(1 - np.sum(error**2, axis=-1) / spread, dtype=np.float64)
            if metric == "pinball" and quantile is not None:
                loss = np.maximum(quantile * error, (quantile - 1) * error)
                return np.asarray(np.mean(loss, axis=-1), dtype=np.float64)
            raise ValueError(f"{metric!r} is not judged per row of outcomes")
    if not hasattr(multiclass, metric):
        raise ValueError(f"{metric!r} is not judged per row of outcomes")
    function = getattr(multiclass, metric)
    flat = rows.reshape(-1, rows.shape[-1])
    values = np.empty(len(flat))
    for index, chosen in enumerate(flat):
        try:
            values[index] = function(y[chosen].astype(np.int64), p[chosen])
        except Undefined:
            values[index] = np.nan
    return values.reshape(rows.shape[:-1])


def _auc(outcomes: Outcomes, rows: IntArray, labels: FloatArray) -> FloatArray:
    shape, n_groups = rows.shape[:-1], outcomes.n_groups
    batch = int(np.prod(shape))
    flat = (outcomes.groups[rows].reshape(batch, -1) + n_groups * np.arange(batch)[:, None]).ravel()
    size = batch * n_groups
    rows_per_group = np.bincount(flat, minlength=size).reshape(batch, n_groups)
    positives = np.bincount(flat, weights=labels.ravel(), minlength=size).reshape(batch, n_groups)
    negatives = rows_per_group - positives
    below = np.cumsum(negatives, axis=-1) - negatives
    u = (positives * (below + 0.5 * negatives)).sum(axis=-1)
    auc = u / (positives.sum(axis=-1) * negatives.sum(axis=-1))
    return np.asarray(auc, dtype=np.float64).reshape(shape)


def compare_paired(
    rule: Rule, labels: FloatArray, champion: FloatArray, candidate: FloatArray
) -> Comparison:
    """Shadow: both versions scored the same labelled rows."""
    n = len(labels)
    kept = _kept(n, rule)
    old, new = Outcomes.of(labels[kept], champion[kept]), Outcomes.of(labels[kept], candidate[kept])

    def difference(rows: IntArray, axis: int = -1) -> FloatArray:
        return rule.sign * (_metric(rule, new, rows) - _metric(rule, old, rows))

    rows = np.arange(len(kept))
    return _judge(
        rule,
        True,
        (rows,),
        difference,
        (n, n),
        (_metric(rule, new, rows), _metric(rule, old, rows)),
        sampled=len(kept) < n,
    )


def compare_unpaired(
    rule: Rule,
    champion: tuple[FloatArray, FloatArray],
    candidate: tuple[FloatArray, FloatArray],
) -> Comparison:
    """Canary, A/B and bake: (labels, scores) of the rows each version served."""
    n_old, n_new = len(champion[0]), len(candidate[0])
    old_kept, new_kept = _kept(n_old, rule), _kept(n_new, rule)
    old = Outcomes.of(champion[0][old_kept], champion[1][old_kept])
    new = Outcomes.of(candidate[0][new_kept], candidate[1][new_kept])

    def difference(old_rows: IntArray, new_rows: IntArray, axis: int = -1) -> FloatArray:
        return rule.sign * (_metric(rule, new, new_rows) - _metric(rule, old, old_rows))

    old_rows, new_rows = np.arange(len(old_kept)), np.arange(len(new_kept))
    return _judge(
        rule,
        False,
        (old_rows, new_rows),
        difference,
        (n_new, n_old),
        (_metric(rule, new, new_rows), _metric(rule, old, old_rows)),
        sampled=len(old_kept) < n_old or len(new_kept) < n_new,
    )


def _kept(n: int, rule: Rule) -> IntArray:
    """Every row, or past `max_rows` a uniform sample of them (in order): a bootstrap's cost
    grows with the rows resampled, while its interval narrows only with their square root."""
    if rule.max_rows is None or n <= rule.max_rows:
        return np.arange(n)
    chosen = np.random.default_rng(SEED).choice(n, rule.max_rows, replace=False)
    return np.sort(chosen)


def _metric(rule: Rule, outcomes: Outcomes, rows: IntArray) -> FloatArray:
    return metric_of_rows(rule.metric, outcomes, rows, rule.threshold, rule.quantile)


def _judge(
    rule: Rule,
    paired: bool,
    data: tuple[IntArray, ...],
    statistic: Callable[..., FloatArray],
    sizes: tuple[int, int],
    values: tuple[FloatArray, FloatArray],
    *,
    sampled: bool,
) -> Comparison:
    """The verdict; `sizes` and `values` are (candidate, champion): the rows each served and
    the metric on the rows judged. `statistic` is the improvement (`rule.sign` times the
    difference); the recorded difference and interval are the metric's own."""
    from scipy.stats import bootstrap

    n_candidate, n_champion = sizes
    new, old = _finite(values[0]), _finite(values[1])
    seen = Comparison("wait", "", rule.metric, paired, new, old, n_candidate, n_champion)
    fewest = min(n_candidate, n_champion)
    if fewest < rule.min_samples:
        return _with(seen, "wait", f"{fewest} labelled rows, fewer than {rule.min_samples}")
    if new is None or old is None:
        return _with(seen, "wait", f"{rule.metric} is undefined on the rows so far")
    interval = bootstrap(
        data,
        statistic,
        n_resamples=rule.resamples,
        batch=max(1, BATCH_CELLS // sum(len(d) for d in data)),
        vectorized=True,
        paired=paired,
        confidence_level=rule.confidence,
        method="percentile",
        random_state=np.random.default_rng(SEED),
    ).confidence_interval
    better_low, better_high = _finite(interval.low), _finite(interval.high)
    if better_low is None or better_high is None:
        return _with(seen, "wait", f"{rule.metric} is undefined on too many resamples")
    low, high = sorted((rule.sign * better_low, rule.sign * better_high))
    judged = Comparison(
        "wait", "", rule.metric, paired, new, old, n_candidate, n_champion, new - old, low, high
    )
    direction = " (lower is better)" if rule.sign < 0 else ""
    span = f"{rule.metric} difference {new - old:+.4f}{direction}, {rule.confidence:.0%} "
    span += f"interval [{low:+.4f}, {high:+.4f}]"
    if sampled:
        span += f" (on a uniform sample of {rule.max_rows:,} rows per version)"
    if better_low >= -rule.max_drop:
        return _with(judged, "pass", f"{span}: not worse by more than {rule.max_drop:g}")
    if better_high < -rule.max_drop:
        return _with(judged, "fail", f"{span}: worse by more than {rule.max_drop:g}")
    return _with(judged, "wait", f"{span}: not yet decided")


def _with(comparison: Comparison, verdict: Verdict, reason: str) -> Comparison:
    from dataclasses import replace

    return replace(comparison, verdict=verdict, reason=reason)


def _finite(value: object) -> float | None:
    number = float(np.asarray(value, dtype=np.float64))
    return number if np.isfinite(number) else None
