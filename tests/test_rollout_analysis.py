"""The rollout's statistical decision, checked against scipy.stats.bootstrap and scikit-learn
called directly: the same intervals, the same verdicts, and "not enough samples" waits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics

from retrain_cli.versions.rollouts.analysis import (
    SEED,
    Outcomes,
    Rule,
    compare_paired,
    compare_unpaired,
    metric_of_rows,
)

SKLEARN = {
    "auc": lambda y, s, t: metrics.roc_auc_score(y, s),
    "accuracy": lambda y, s, t: metrics.accuracy_score(y, s >= t),
    "precision": lambda y, s, t: metrics.precision_score(y, s >= t),
    "recall": lambda y, s, t: metrics.recall_score(y, s >= t),
    "f1": lambda y, s, t: metrics.f1_score(y, s >= t),
}


def scored(n: int, quality: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(np.float64)
    return labels, scores_for(labels, quality, rng)


def scores_for(labels: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    logit = quality * (2 * labels - 1) + rng.normal(0, 1, labels.size)
    return np.round(1 / (1 + np.exp(-logit)), 2)  # rounded: ties, as real scores have


@pytest.mark.parametrize("metric", sorted(SKLEARN))
def test_each_metric_of_a_batch_of_resamples_equals_scikit_learn_on_each(metric: str) -> None:
    labels, scores = scored(400, 1.0, 1)
    rng = np.random.default_rng(2)
    rows = rng.integers(0, 400, size=(5, 400))
    batch = metric_of_rows(metric, Outcomes.of(labels, scores), rows, 0.5)
    expected = [SKLEARN[metric](labels[r], scores[r], 0.5) for r in rows]
    np.testing.assert_allclose(batch, expected, rtol=0, atol=1e-12)
    whole = metric_of_rows(metric, Outcomes.of(labels, scores), np.arange(400), 0.5)
    assert float(whole) == pytest.approx(SKLEARN[metric](labels, scores, 0.5), abs=1e-12)


def test_an_undefined_metric_is_nan_not_a_number_made_up() -> None:
    ones, rows = np.ones(10), np.arange(10)[None]
    assert np.isnan(metric_of_rows("auc", Outcomes.of(ones, np.linspace(0, 1, 10)), rows, 0.5))
    assert np.isnan(metric_of_rows("precision", Outcomes.of(ones, np.zeros(10)), rows, 0.5))


RULE = Rule("auc", max_drop=0.01, min_samples=200, confidence=0.9, resamples=200)


def test_the_unpaired_interval_is_scipys_bootstrap_of_the_auc_difference() -> None:
    champion, candidate = scored(900, 1.0, 3), scored(700, 1.1, 4)
    result = compare_unpaired(RULE, champion, candidate)

    def difference(old: np.ndarray, new: np.ndarray) -> float:
        return float(
            metrics.roc_auc_score(candidate[0][new], candidate[1][new])
            - metrics.roc_auc_score(champion[0][old], champion[1][old])
        )

    expected = stats.bootstrap(
        (np.arange(900), np.arange(700)),
        difference,
        n_resamples=RULE.resamples,
        vectorized=False,
        paired=False,
        confidence_level=RULE.confidence,
        method="percentile",
        random_state=np.random.default_rng(SEED),
    ).confidence_interval
    assert result.low == pytest.approx(expected.low, abs=1e-12)
    assert result.high == pytest.approx(expected.high, abs=1e-12)
    assert result.difference == pytest.approx(difference(np.arange(900), np.arange(700)))
    assert (result.n_champion, result.n_candidate, result.paired) == (900, 700, False)


def test_the_paired_interval_resamples_the_same_rows_for_both_versions() -> None:
    labels, champion = scored(800, 1.0, 5)
    candidate = scores_for(labels, 1.0, np.random.default_rng(6))
    result = compare_paired(RULE, labels, champion, candidate)

    def difference(rows: np.ndarray) -> float:
        return float(
            metrics.roc_auc_score(labels[rows], candidate[rows])
            - metrics.roc_auc_score(labels[rows], champion[rows])
        )

    expected = stats.bootstrap(
        (np.arange(800),),
        difference,
        n_resamples=RULE.resamples,
        vectorized=False,
        confidence_level=RULE.confidence,
        method="percentile",
        random_state=np.random.default_rng(SEED),
    ).confidence_interval
    assert (result.low, result.high) == pytest.approx((expected.low, expected.high), abs=1e-12)
    assert result.paired


@pytest.mark.parametrize(
    ("quality", "verdict"),
    [(1.6, "pass"), (0.2, "fail"), (0.93, "wait")],
    ids=["better", "much worse", "slightly worse, not yet decided"],
)
def test_the_verdict_follows_the_interval_and_max_drop(quality: float, verdict: str) -> None:
    result = compare_unpaired(RULE, scored(1500, 1.0, 7), scored(1500, quality, 8))
    assert result.verdict == verdict, result.reason
    assert result.low is not None and result.high is not None
    if verdict == "pass":
        assert result.low >= -RULE.max_drop
    elif verdict == "fail":
        assert result.high < -RULE.max_drop
    else:
        assert result.low < -RULE.max_drop <= result.high


def test_too_few_samples_waits_even_for_a_clearly_better_candidate() -> None:
    result = compare_unpaired(RULE, scored(5000, 0.1, 9), scored(199, 3.0, 10))
    assert result.verdict == "wait"
    assert result.reason == "199 labelled rows, fewer than 200"
    assert result.low is None and result.candidate is not None  # measured, not judged


def test_an_undefined_metric_waits() -> None:
    labels = np.zeros(500)
    result = compare_paired(RULE, labels, np.full(500, 0.2), np.full(500, 0.3))
    assert result.verdict == "wait" and "undefined" in result.reason


def test_past_max_rows_a_uniform_sample_of_each_version_is_judged() -> None:
    champion, candidate = scored(5000, 1.0, 11), scored(4000, 1.05, 12)
    capped = Rule("auc", 0.01, 200, 0.9, 200, max_rows=1000)
    result = compare_unpaired(capped, champion, candidate)

    def sample(n: int) -> np.ndarray:
        return np.sort(np.random.default_rng(SEED).choice(n, 1000, replace=False))

    old, new = sample(5000), sample(4000)
    by_hand = compare_unpaired(
        RULE, (champion[0][old], champion[1][old]), (candidate[0][new], candidate[1][new])
    )
    assert (result.low, result.high) == (by_hand.low, by_hand.high)
    assert (result.n_champion, result.n_candidate) == (5000, 4000)  # what each version served
    assert "uniform sample of 1,000 rows" in result.reason
    assert "sample" not in by_hand.reason
