"""Each statistic against a straightforward scipy/numpy implementation of its definition."""

import itertools
from typing import Any

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, entropy, ks_2samp, wasserstein_distance

from retrain_cli.statistics import drift

EPS = 1e-4


def close(value: float) -> Any:
    return pytest.approx(value, rel=1e-9, abs=1e-12)


def straightforward_numeric(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> dict[str, float]:
    interior = np.unique(np.quantile(ref, np.arange(1, bins) / bins))
    edges = np.concatenate(([-np.inf], interior, [np.inf]))
    p = np.array([np.sum((ref >= lo) & (ref < hi)) for lo, hi in itertools.pairwise(edges)])
    q = np.array([np.sum((cur >= lo) & (cur < hi)) for lo, hi in itertools.pairwise(edges)])
    return {
        **straightforward_distribution(p / len(ref), q / len(cur)),
        "ks_stat": ks_2samp(ref, cur).statistic,
        "ks_pvalue": ks_2samp(ref, cur).pvalue,
        "wasserstein": wasserstein_distance(ref, cur),
        "wasserstein_norm": wasserstein_distance(ref, cur) / max(np.std(ref), 0.001),
    }


def straightforward_distribution(p: np.ndarray, q: np.ndarray) -> dict[str, float]:
    pe, qe = np.where(p == 0, EPS, p), np.where(q == 0, EPS, q)
    return {
        "psi": float(np.sum((qe - pe) * np.log(qe / pe))),
        "kl": float(entropy(pe, qe)),
        "js": float(jensenshannon(pe, qe)),
        "hellinger": float(np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2))),
    }


rng = np.random.default_rng(20261126)
NUMERIC_CASES = {
    "same distribution": (rng.normal(size=2000), rng.normal(size=1500)),
    "shifted and wider": (rng.normal(size=3000), rng.normal(0.5, 2.0, size=2500)),
    "heavy ties": (rng.integers(0, 4, 5000).astype(float), rng.integers(0, 6, 4000).astype(float)),
    "constant reference": (np.full(500, 3.0), rng.normal(3.0, 0.1, size=400)),
    "both constant": (np.full(300, 1.0), np.full(200, 1.0)),
    "tiny samples": (np.array([1.0, 2.0]), np.array([2.0, 5.0, 7.0])),
    "large, asymptotic p-value": (rng.normal(size=40_000), rng.normal(0.02, 1, size=30_000)),
    "large, a small shift: p-value from the one-sided sum": (
        rng.normal(size=40_000),
        rng.normal(0.05, 1, size=30_000),
    ),
    # the merged sample is walked in blocks of 65,536 points: runs of ties across their
    # boundaries, and a merged size that fills the last block exactly
    "ties across blocks": (
        rng.integers(0, 3, 100_000).astype(float),
        rng.integers(0, 4, 80_000).astype(float),
    ),
    "merged size a whole number of blocks": (
        rng.normal(size=65_536),
        rng.normal(0.1, 1, size=65_536),
    ),
    "skewed, few unique quantiles": (
        np.concatenate([np.zeros(900), rng.exponential(size=100)]),
        np.concatenate([np.zeros(500), rng.exponential(size=500)]),
    ),
}


@pytest.mark.parametrize(("ref", "cur"), NUMERIC_CASES.values(), ids=NUMERIC_CASES.keys())
def test_numeric_statistics_equal_their_definitions(ref: np.ndarray, cur: np.ndarray) -> None:
    metrics, histogram = drift.numeric_drift(ref, cur)
    expected = straightforward_numeric(ref, cur)
    for name, value in expected.items():
        assert metrics[name] == close(value), name
    assert sum(histogram.reference) == pytest.approx(1.0)
    assert sum(histogram.current) == pytest.approx(1.0)


@pytest.mark.parametrize(("ref", "cur"), NUMERIC_CASES.values(), ids=NUMERIC_CASES.keys())
def test_the_binned_statistics_need_no_sorting(ref: np.ndarray, cur: np.ndarray) -> None:
    ordered, ordered_histogram = drift.numeric_drift(ref, cur)
    unordered, histogram = drift.numeric_drift(ref, cur, ordered=False)
    assert set(unordered) == {"psi", "kl", "js", "hellinger"}
    assert unordered == {name: ordered[name] for name in unordered}
    assert histogram == ordered_histogram


@pytest.mark.parametrize("bins", [2, 5, 20])
def test_bins_are_configurable(bins: int) -> None:
    ref, cur = NUMERIC_CASES["shifted and wider"]
    metrics, histogram = drift.numeric_drift(ref, cur, bins)
    assert metrics["psi"] == close(straightforward_numeric(ref, cur, bins)["psi"])
    assert len(histogram.labels) == bins


@pytest.mark.parametrize(
    ("ref", "cur"),
    [NUMERIC_CASES["large, asymptotic p-value"], NUMERIC_CASES["ties across blocks"]],
)
def test_large_sample_p_values_are_scipys_own(ref: np.ndarray, cur: np.ndarray) -> None:
    expected = ks_2samp(ref, cur)
    got = drift.ks_pvalue(np.sort(ref), np.sort(cur), float(expected.statistic))
    assert got == float(expected.pvalue)


def test_value_on_an_edge_falls_in_the_upper_bin() -> None:
    assert drift.bin_counts(np.array([1.0, 2.0, 3.0]), np.array([2.0])).tolist() == [1, 2]


CATEGORICAL_CASES = {
    "same categories": ({"a": 50, "b": 30, "c": 20}, {"a": 45, "b": 35, "c": 20}),
    "new category in current": ({"a": 50, "b": 50}, {"a": 40, "b": 40, "z": 20}),
    "category gone from current": ({"a": 50, "b": 50, "c": 5}, {"a": 60, "b": 40}),
}


@pytest.mark.parametrize(("ref", "cur"), CATEGORICAL_CASES.values(), ids=CATEGORICAL_CASES.keys())
def test_categorical_statistics_equal_their_definitions(
    ref: dict[str, int], cur: dict[str, int]
) -> None:
    categories = sorted(set(ref) | set(cur))
    p = np.array([ref.get(c, 0) for c in categories], dtype=float)
    q = np.array([cur.get(c, 0) for c in categories], dtype=float)
    chi2 = chi2_contingency(np.vstack([p, q]), correction=False)
    expected = {
        **straightforward_distribution(p / p.sum(), q / q.sum()),
        "chi2_stat": chi2.statistic,
        "chi2_pvalue": chi2.pvalue,
    }
    metrics, histogram = drift.categorical_drift(ref, cur)
    for name, value in expected.items():
        assert metrics[name] == close(value), name
    assert histogram.labels == categories
    assert metrics["new_categories"] == [c for c in categories if c not in ref]


def test_one_shared_category_is_no_drift() -> None:
    metrics, _ = drift.categorical_drift({"a": 10}, {"a": 3})
    assert (metrics["psi"], metrics["chi2_pvalue"]) == (0.0, 1.0)


def test_drop_missing_reports_the_rate() -> None:
    values, rate = drift.drop_missing(np.array([np.nan, 1.0, np.nan, np.nan]))
    assert values.tolist() == [1.0] and rate == 0.75


@pytest.mark.parametrize(
    ("method", "value", "drifted"),
    [
        ("psi", 0.3, True),
        ("psi", 0.25, False),
        ("js", 0.1, False),
        ("ks_pvalue", 0.01, True),
        ("ks_pvalue", 0.2, False),
        ("chi2_pvalue", 0.049, True),
    ],
)
def test_decide_distances_above_threshold_and_p_values_below_alpha(
    method: str, value: float, drifted: bool
) -> None:
    assert drift.decide({method: value}, method, threshold=0.25, alpha=0.05).drifted is drifted


@pytest.mark.parametrize(
    ("method", "kind", "used"),
    [
        ("wasserstein_norm", "categorical", "psi"),
        ("ks_pvalue", "categorical", "chi2_pvalue"),
        ("chi2_pvalue", "numeric", "ks_pvalue"),
        ("js", "categorical", "js"),
        ("psi", "numeric", "psi"),
    ],
)
def test_decision_method_maps_to_what_the_kind_supports(method: str, kind: str, used: str) -> None:
    assert drift.decision_method(method, kind) == used
