"""Drift statistics: pure functions over numpy arrays (no pandas, no database, no clock).

Numeric columns are sorted once; every statistic is derived from the two sorted samples with the
same floating-point operations scipy uses, so the values equal scipy's to rounding:

- bins: interior edges are the unique values of `np.quantile(ref, [1/B, ..., (B-1)/B])`, outer
  edges -inf and +inf; v falls in bin i when e_i <= v < e_{i+1}.
- p, q: reference and current proportions per bin (or per category, over the union of both
  windows). `eps` replaces a zero proportion for psi, kl and js.
- psi = sum((q - p) * ln(q / p)); kl = scipy.stats.entropy(p, q);
  js = scipy.spatial.distance.jensenshannon(p, q) (natural log, a distance);
  hellinger = sqrt(0.5 * sum((sqrt(p) - sqrt(q))^2)) on the proportions before eps.
- ks_stat, ks_pvalue: scipy.stats.ks_2samp(ref, cur) with its default method ('auto'); the
  statistic comes from the sorted samples, the p-value from scipy itself.
- wasserstein = scipy.stats.wasserstein_distance(ref, cur); wasserstein_norm = wasserstein /
  max(std(ref, ddof=0), 0.001).
- chi2_stat, chi2_pvalue: scipy.stats.chi2_contingency on the 2 x K table of counts, no correction.

Missing values are the caller's to drop (see `drop_missing`); these functions need finite data.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

EPS = 1e-4
DEFAULT_BINS = 10
KS_EXACT_MAX_N = 10_000  # scipy's 'auto' uses the exact distribution up to this sample size
MIN_STD = 0.001
_ECDF_BLOCK = 1 << 18  # merged points per step of `_ecdf_distances`: 2 MB per float array
P_VALUE_METHODS = ("ks_pvalue", "chi2_pvalue")
ORDERED_STATISTICS = ("ks_stat", "ks_pvalue", "wasserstein", "wasserstein_norm")
NUMERIC_ONLY = {"wasserstein_norm": "psi", "ks_pvalue": "chi2_pvalue"}
CATEGORICAL_ONLY = {"chi2_pvalue": "ks_pvalue"}

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Histogram:
    """Reference and current proportions over the bins (or categories) the statistics used."""

    labels: list[str]
    reference: list[float]
    current: list[float]


@dataclass(frozen=True)
class Decision:
    """Whether one column drifted, and by which statistic."""

    method: str
    statistic: float
    threshold: float
    drifted: bool


def drop_missing(values: FloatArray) -> tuple[FloatArray, float]:
    """The finite values of a numeric column, and the share that was missing (NaN).

    >>> drop_missing(np.array([1.0, np.nan, 3.0, np.nan]))
    (array([1., 3.]), 0.5)
    """
    mask = np.isnan(values)
    missing = int(mask.sum())
    rate = missing / values.size if values.size else 0.0
    return (values[~mask] if missing else values), rate


def bin_edges(ref: FloatArray, bins: int = DEFAULT_BINS) -> FloatArray:
    """The interior edges of the reference's quantile bins: unique `np.quantile` cut points
    (the same whether `ref` is sorted or not).

    >>> bin_edges(np.arange(1.0, 11.0), bins=4)
    array([3.25, 5.5 , 7.75])
    """
    levels = np.arange(1, bins) / bins
    return np.unique(np.quantile(ref, levels))


def bin_counts(values_sorted: FloatArray, edges: FloatArray) -> NDArray[np.int64]:
    """Counts per bin [-inf, e_0), [e_0, e_1), ..., [e_last, inf) of a sorted sample.

    >>> bin_counts(np.array([1.0, 2.0, 2.0, 5.0]), np.array([2.0, 4.0]))
    array([1, 2, 1])
    """
    below = np.searchsorted(values_sorted, edges, side="left")
    return np.diff(np.concatenate(([0], below, [values_sorted.size]))).astype(np.int64)


def psi(p: FloatArray, q: FloatArray, eps: float = EPS) -> float:
    """Population stability index of proportions `q` (current) against `p` (reference).

    A zero proportion is replaced by `eps` first.

    >>> round(psi(np.array([0.5, 0.5]), np.array([0.9, 0.1])), 6)
    0.87889
    """
    p, q = _with_eps(p, eps), _with_eps(q, eps)
    return float(np.sum((q - p) * np.log(q / p)))


def kl(p: FloatArray, q: FloatArray, eps: float = EPS) -> float:
    """Kullback-Leibler divergence: scipy.stats.entropy(p, q) after the eps rule.

    >>> round(kl(np.array([0.5, 0.5]), np.array([0.9, 0.1])), 6)
    0.510826
    """
    from scipy.stats import entropy

    return float(entropy(_with_eps(p, eps), _with_eps(q, eps)))


def js(p: FloatArray, q: FloatArray, eps: float = EPS) -> float:
    """Jensen-Shannon distance (natural log): scipy's `jensenshannon(p, q)` after the eps rule.

    >>> round(js(np.array([1.0, 0.0]), np.array([0.0, 1.0]), eps=0.0), 6)
    0.832555
    """
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(_with_eps(p, eps), _with_eps(q, eps)))


def hellinger(p: FloatArray, q: FloatArray) -> float:
    """Hellinger distance sqrt(0.5 * sum((sqrt(p) - sqrt(q))^2)) of the raw proportions.

    >>> hellinger(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    1.0
    """
    return float(np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))


def _with_eps(p: FloatArray, eps: float) -> FloatArray:
    return np.where(p == 0, eps, p)


def distribution_metrics(ref_counts: NDArray[Any], cur_counts: NDArray[Any]) -> dict[str, float]:
    """psi, kl, js and hellinger of two count vectors over the same bins or categories."""
    p = ref_counts / ref_counts.sum()
    q = cur_counts / cur_counts.sum()
    return {"psi": psi(p, q), "kl": kl(p, q), "js": js(p, q), "hellinger": hellinger(p, q)}


def numeric_drift(
    ref: FloatArray, cur: FloatArray, bins: int = DEFAULT_BINS, *, ordered: bool = True
) -> tuple[dict[str, float], Histogram]:
    """The numeric statistics of two finite, non-empty samples.

    The binned ones (psi, kl, js, hellinger) need no ordering: quantile cut points by selection
    and counts by bin lookup, in linear time. With `ordered`, each sample is also sorted once for
    the statistics that compare whole distributions: ks_stat, ks_pvalue, wasserstein and
    wasserstein_norm.
    """
    if not ordered:
        edges = bin_edges(ref, bins)
        ref_counts, cur_counts = bin_lookup(ref, edges), bin_lookup(cur, edges)
        metrics = distribution_metrics(ref_counts, cur_counts)
        return metrics, _histogram(bin_labels(edges), ref_counts, cur_counts)
    ref_sorted, cur_sorted = np.sort(ref), np.sort(cur)
    edges = bin_edges(ref_sorted, bins)
    ref_counts, cur_counts = bin_counts(ref_sorted, edges), bin_counts(cur_sorted, edges)
    metrics = distribution_metrics(ref_counts, cur_counts)
    ks_stat, wasserstein = _ecdf_distances(ref_sorted, cur_sorted)
    metrics["ks_stat"] = ks_stat
    metrics["wasserstein"] = wasserstein
    metrics["wasserstein_norm"] = wasserstein / max(float(np.std(ref)), MIN_STD)
    metrics["ks_pvalue"] = ks_pvalue(ref_sorted, cur_sorted, ks_stat)
    return metrics, _histogram(bin_labels(edges), ref_counts, cur_counts)


def bin_lookup(values: FloatArray, edges: FloatArray) -> NDArray[np.int64]:
    """`bin_counts` of an unsorted sample: each value's bin by binary search over the edges.

    >>> bin_lookup(np.array([5.0, 2.0, 1.0, 2.0]), np.array([2.0, 4.0]))
    array([1, 2, 1])
    """
    index = np.searchsorted(edges, values, side="right")
    return np.bincount(index, minlength=edges.size + 1).astype(np.int64)


def bin_labels(edges: FloatArray) -> list[str]:
    bounds = ["-inf", *(f"{e:.4g}" for e in edges), "inf"]
    return [f"[{lo}, {hi})" for lo, hi in itertools.pairwise(bounds)]


def _histogram(labels: list[str], ref: NDArray[Any], cur: NDArray[Any]) -> Histogram:
    return Histogram(labels, (ref / ref.sum()).tolist(), (cur / cur.sum()).tolist())


def _ecdf_distances(ref_sorted: FloatArray, cur_sorted: FloatArray) -> tuple[float, float]:
    """KS statistic and Wasserstein-1 distance from both empirical CDFs on the merged sample.

    A stable argsort of the two sorted runs merges them in linear time and says which sample
    each merged point came from; running counts then give F and G at every point. At the last
    point of each run of ties those counts are the `searchsorted(..., 'right')` values scipy
    uses, so the largest gap is ks_2samp's statistic and the sum of gap times step length is
    wasserstein_distance's (steps inside a run of ties have length zero).

    The merged points are walked in blocks that stay in the CPU cache: the same arithmetic as
    whole-array expressions, without a dozen array temporaries of the merged size.
    """
    n1, n2 = ref_sorted.size, cur_sorted.size
    total = n1 + n2
    # numpy vectorises the int32 cumsum, not the int64 one
    count_type: Any = np.int32 if total < 2**31 else np.int64
    merged = np.concatenate((ref_sorted, cur_sorted))
    order = np.argsort(merged, kind="stable")
    ks, wasserstein, ref_before = 0.0, 0.0, 0
    for start in range(0, total, _ECDF_BLOCK):
        stop = min(start + _ECDF_BLOCK, total)
        index = order[start : stop + 1]  # and the next point, for each point's step
        steps = np.diff(merged[index])
        ref_count = np.cumsum(index[: stop - start] < n1, dtype=count_type)
        ref_count += ref_before
        ref_before = int(ref_count[-1])
        cur_count = np.arange(start + 1, stop + 1, dtype=count_type)
        cur_count -= ref_count
        gaps = np.abs(ref_count / n1 - cur_count / n2)
        if stop == total:  # the last point ends its run of ties and has no step after it
            ks = max(ks, float(gaps[-1]))
            gaps = gaps[:-1]
        ks = max(ks, float(gaps[steps != 0].max(initial=0.0)))
        wasserstein += float(np.sum(np.multiply(gaps, steps, out=gaps)))  # not BLAS's dot
    return min(ks, 1.0), wasserstein


def ks_pvalue(ref_sorted: FloatArray, cur_sorted: FloatArray, ks_stat: float) -> float:
    """Two-sided KS p-value of two sorted samples whose KS statistic is `ks_stat`, as
    scipy.stats.ks_2samp's 'auto' mode computes it.

    Small samples go to ks_2samp itself (its exact method); large ones to the distribution
    ks_2samp uses for them, `kstwo.sf(D, round(n1 * n2 / (n1 + n2)))`, so that the statistic
    already known is not computed again.
    """
    from scipy.stats import ks_2samp

    if max(ref_sorted.size, cur_sorted.size) <= KS_EXACT_MAX_N:
        return float(ks_2samp(ref_sorted, cur_sorted).pvalue)
    return ks_asymptotic_pvalue(ks_stat, ref_sorted.size, cur_sorted.size)


def ks_asymptotic_pvalue(ks_stat: float, n1: int, n2: int) -> float:
    """Two-sided KS p-value of a statistic between samples of n1 and n2 values, from the
    distribution ks_2samp's 'asymp' method uses: `kstwo.sf(D, round(n1 * n2 / (n1 + n2)))`."""
    from scipy.stats import kstwo

    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(np.clip(kstwo.sf(ks_stat, np.round(m * n / (m + n))), 0, 1))


def categorical_drift(
    ref_counts: Mapping[str, int], cur_counts: Mapping[str, int]
) -> tuple[dict[str, Any], Histogram]:
    """Every categorical statistic of two category -> count maps, over the union of categories.

    Also lists `new_categories`: those seen in the current window only.
    """
    categories = sorted(set(ref_counts) | set(cur_counts))
    ref = np.array([ref_counts.get(c, 0) for c in categories], dtype=np.float64)
    cur = np.array([cur_counts.get(c, 0) for c in categories], dtype=np.float64)
    metrics: dict[str, Any] = distribution_metrics(ref, cur)
    if len(categories) > 1:
        metrics["chi2_stat"], metrics["chi2_pvalue"] = chi2_test(np.vstack([ref, cur]))
    else:  # one category in both windows: identical distributions, zero degrees of freedom
        metrics["chi2_stat"], metrics["chi2_pvalue"] = 0.0, 1.0
    metrics["new_categories"] = [c for c in categories if c not in ref_counts]
    return metrics, _histogram(categories, ref, cur)


def chi2_test(table: FloatArray) -> tuple[float, float]:
    """Pearson's chi-squared test of independence of a table of counts with no empty row or
    column: scipy.stats.chi2_contingency(table, correction=False).

    >>> [round(v, 6) for v in chi2_test(np.array([[10.0, 20.0], [20.0, 10.0]]))]
    [6.666667, 0.009823]
    """
    from scipy.stats import chi2_contingency

    result = chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def decision_method(method: str, kind: str) -> str:
    """The statistic that decides for a column of `kind`: numeric-only methods map to their
    categorical counterpart (wasserstein_norm -> psi, ks_pvalue -> chi2_pvalue) and back."""
    if kind == "categorical":
        return NUMERIC_ONLY.get(method, method)
    return CATEGORICAL_ONLY.get(method, method)


def decide(metrics: Mapping[str, Any], method: str, threshold: float, alpha: float) -> Decision:
    """Drift when a distance exceeds `threshold`, or a p-value falls below `alpha`."""
    value = float(metrics[method])
    if method in P_VALUE_METHODS:
        return Decision(method, value, alpha, value < alpha)
    return Decision(method, value, threshold, value > threshold and math.isfinite(value))
