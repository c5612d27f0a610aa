"""Multivariate drift: a domain classifier (LightGBM) trained to tell reference rows from
current rows. Per-feature tests miss a change in how features move together; a classifier
that separates the windows does not. Its cross-validated ROC AUC is the statistic: 0.5 means
the windows are indistinguishable.

Each window is sampled to at most `sample` rows (uniformly, in one streaming pass over a window
that is not in memory), the rows are split into `folds` stratified folds, and every row is scored
by the model that did not see it. The AUC of those out-of-fold scores is the statistic; the
interval is Student's t over the folds' AUCs (scipy); the features that separate the windows
most are those with the largest share of the models' total gain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from retrain_cli.statistics.performance import auc

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

PARAMETERS = {  # a small, fast model: it only has to notice that the windows differ
    "objective": "binary",
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "feature_fraction": 1.0,
    "deterministic": True,
    "verbosity": -1,
}
ROUNDS = 100
TOP_FEATURES = 5


@dataclass
class Multivariate:
    """The domain classifier's verdict on two windows."""

    auc: float | None
    ci_low: float | None
    ci_high: float | None
    max_auc: float
    drifted: bool
    n_reference: int  # rows sampled from each window
    n_current: int
    folds: int
    fold_aucs: list[float] = field(default_factory=list)
    top_features: list[dict[str, Any]] = field(default_factory=list)  # feature, gain share
    reason: str | None = None  # why the AUC is NULL


def sample_table(table: pa.Table, rows: int, seed: int) -> pa.Table:
    """At most `rows` rows of `table`, uniformly without replacement."""
    if table.num_rows <= rows:
        return table
    chosen = np.random.default_rng(seed).choice(table.num_rows, size=rows, replace=False)
    return table.take(np.sort(chosen))


def sample_batches(batches: Iterable[pa.RecordBatch], rows: int, seed: int) -> pa.Table:
    """At most `rows` rows of a window read batch by batch, uniformly without replacement:
    each row gets a random key and the `rows` smallest keys are kept, so memory holds the
    sample and one batch, whatever the window's size."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    kept: pa.Table | None = None
    keys = np.empty(0)
    for batch in batches:
        joined = (
            pa.Table.from_batches([batch])
            if kept is None
            else pa.concat_tables([kept, pa.Table.from_batches([batch]).cast(kept.schema)])
        )
        keys = np.concatenate([keys, rng.random(batch.num_rows)])
        if joined.num_rows > rows:
            keep = np.sort(np.argpartition(keys, rows)[:rows])
            joined, keys = joined.take(keep), keys[keep]
        kept = joined
    if kept is None:
        raise ValueError("the window has no rows")
    return kept


def domain_classifier(
    reference: pa.Table,
    current: pa.Table,
    features: Sequence[tuple[str, str]],
    *,
    max_auc: float,
    folds: int,
    confidence: float,
    threads: int,
    seed: int = 0,
) -> Multivariate:
    """Cross-validated AUC of a LightGBM model telling `current` rows (1) from `reference`
    rows (0) on `features` ((name, "numeric" | "categorical") pairs)."""
    n_ref, n_cur = reference.num_rows, current.num_rows

    def undefined(reason: str) -> Multivariate:
        return Multivariate(None, None, None, max_auc, False, n_ref, n_cur, folds, reason=reason)

    if min(n_ref, n_cur) < folds * 10:
        return undefined(f"too_few_rows: {n_ref} reference and {n_cur} current, needs {folds * 10}")
    if not features:
        return undefined("no_features")
    import lightgbm
    from scipy import stats

    frame = _frame(reference, current, features)
    labels = np.concatenate([np.zeros(n_ref), np.ones(n_cur)])
    scores = np.empty(labels.size)
    gains = np.zeros(len(features))
    fold_aucs = []
    for test in _stratified_folds(labels, folds, seed):
        train = np.ones(labels.size, dtype=bool)
        train[test] = False
        data = lightgbm.Dataset(frame[train], labels[train], free_raw_data=True)
        params = {**PARAMETERS, "num_threads": threads, "seed": seed}
        booster = lightgbm.train(params, data, num_boost_round=ROUNDS)
        scores[test] = booster.predict(frame.iloc[test])
        fold_aucs.append(auc(labels[test], scores[test]))
        gains += booster.feature_importance(importance_type="gain")
    value = auc(labels, scores)
    mean, sem = float(np.mean(fold_aucs)), float(stats.sem(fold_aucs))
    low, high = (
        stats.t.interval(confidence, len(fold_aucs) - 1, loc=mean, scale=sem)
        if sem > 0
        else (mean, mean)
    )
    total = float(gains.sum()) or 1.0
    ranked = sorted(zip(features, gains, strict=True), key=lambda item: -item[1])
    return Multivariate(
        auc=value,
        ci_low=float(low),
        ci_high=float(high),
        max_auc=max_auc,
        drifted=value > max_auc,
        n_reference=n_ref,
        n_current=n_cur,
        folds=folds,
        fold_aucs=[float(a) for a in fold_aucs],
        top_features=[
            {"feature": name, "gain_share": float(gain) / total}
            for (name, _), gain in ranked[:TOP_FEATURES]
            if gain > 0
        ],
    )


def _frame(
    reference: pa.Table, current: pa.Table, features: Sequence[tuple[str, str]]
) -> pd.DataFrame:
    """Both windows' features in one frame, in `features`' order but named by position (a
    column name may hold what LightGBM refuses in a feature name): numbers as float64,
    categories as pandas' category dtype over both windows' values (native categorical
    splits)."""
    import pandas as pd

    columns = {}
    for index, (name, kind) in enumerate(features):
        values = pd.concat(
            [reference.column(name).to_pandas(), current.column(name).to_pandas()],
            ignore_index=True,
        )
        if kind == "categorical":
            columns[f"f{index}"] = values.astype("string").astype("category")
        else:
            columns[f"f{index}"] = pd.to_numeric(values, errors="coerce").astype("float64")
    return pd.DataFrame(columns)


def _stratified_folds(labels: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """`folds` disjoint test sets, each with its share of both classes."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(folds)]
    for value in (0.0, 1.0):
        members = rng.permutation(np.flatnonzero(labels == value))
        for index, chunk in enumerate(np.array_split(members, folds)):
            parts[index].append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]
