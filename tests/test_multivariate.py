"""Multivariate drift: a domain classifier catches what per-feature tests cannot."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.db.models import ModelDriftMonitoring
from retrain_cli.drift import multivariate
from tests.conftest import Cli
from tests.helpers import write_job

SessionFactory = Callable[[], AbstractContextManager[Session]]
FEATURES = [("x1", "numeric"), ("x2", "numeric"), ("colour", "categorical")]


def window(n: int, correlation: float, seed: int) -> pd.DataFrame:
    """Two standard normal features with the given correlation (every marginal unchanged
    whatever it is) and an independent category."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = correlation * x1 + np.sqrt(1 - correlation**2) * rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], n)
    return pd.DataFrame({"x1": x1, "x2": x2, "colour": colour})


def classify(reference: pd.DataFrame, current: pd.DataFrame) -> multivariate.Multivariate:
    return multivariate.domain_classifier(
        pa.Table.from_pandas(reference),
        pa.Table.from_pandas(current),
        FEATURES,
        max_auc=0.6,
        folds=5,
        confidence=0.95,
        threads=1,
    )


def test_a_change_in_correlation_alone_is_caught() -> None:
    found = classify(window(4000, 0.0, seed=1), window(4000, 0.9, seed=2))
    assert found.drifted and found.auc is not None and found.auc > 0.7
    # the interval is Student's t over the folds' AUCs, as scipy computes it
    folds = np.array(found.fold_aucs)
    low, high = stats.t.interval(0.95, len(folds) - 1, loc=folds.mean(), scale=stats.sem(folds))
    assert (found.ci_low, found.ci_high) == pytest.approx((low, high), rel=1e-12)
    assert abs(found.auc - folds.mean()) < 0.01  # pooled out-of-fold AUC near the folds' mean
    assert {f["feature"] for f in found.top_features[:2]} == {"x1", "x2"}
    assert len(found.fold_aucs) == 5


def test_windows_from_one_distribution_are_indistinguishable() -> None:
    found = classify(window(4000, 0.5, seed=3), window(4000, 0.5, seed=4))
    assert not found.drifted
    assert found.auc is not None and abs(found.auc - 0.5) < 0.05


def test_too_few_rows_leave_the_auc_unknown_not_drifted() -> None:
    found = classify(window(20, 0.0, seed=5), window(20, 0.9, seed=6))
    assert found.auc is None and not found.drifted
    assert found.reason == "too_few_rows: 20 reference and 20 current, needs 50"


def test_feature_names_lightgbm_would_refuse_are_fine() -> None:
    reference, current = window(2000, 0.0, seed=7), window(2000, 0.9, seed=8)
    names = {"x1": 'a"b{c}:[d]', "x2": "x,2"}
    found = multivariate.domain_classifier(
        pa.Table.from_pandas(reference.rename(columns=names)),
        pa.Table.from_pandas(current.rename(columns=names)),
        [(names["x1"], "numeric"), (names["x2"], "numeric")],
        max_auc=0.6,
        folds=3,
        confidence=0.95,
        threads=1,
    )
    assert found.drifted
    assert {f["feature"] for f in found.top_features} == set(names.values())


def test_sampling_a_streamed_window_keeps_a_uniform_sample_of_the_asked_size() -> None:
    table = pa.table({"i": np.arange(100_000)})
    kept = multivariate.sample_batches(table.to_batches(max_chunksize=7_000), 5_000, seed=0)
    values = kept.column("i").to_numpy()
    assert kept.num_rows == 5_000 and np.unique(values).size == 5_000
    assert abs(values.mean() - 50_000) < 1_500  # about uniform over the whole window
    small = multivariate.sample_batches(table.slice(0, 10).to_batches(), 5_000, seed=0)
    assert small.num_rows == 10


def setup(cli: Cli, folder: Path, mode: str = "exact", **multivariate_spec: Any) -> None:
    """Feature-only windows; the label, time and score are in the training data."""
    window(3000, 0.0, seed=10).to_parquet(folder / "ref.parquet")
    window(3000, 0.9, seed=11).to_parquet(folder / "cur.parquet")
    labelled = window(10, 0.0, seed=12).assign(ts=range(10), y=0, score=0.5)
    labelled.to_parquet(folder / "train.parquet")
    job = write_job(
        folder,
        "j1",
        categorical=["colour"],
        drift={"mode": mode, "multivariate": {"max_auc": 0.6, **multivariate_spec}},
    )
    result = cli("jobs", "apply", "-f", str(job))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("mode", ["exact", "profile"])
def test_a_job_with_a_domain_classifier_drifts_where_no_feature_does(
    cli: Cli, tmp_path: Path, session: SessionFactory, mode: str
) -> None:
    setup(cli, tmp_path, mode)
    result = cli("drift", "check", "j1", "--json")
    assert result.exit_code == 3, result.output
    (checked,) = json.loads(result.stdout)["results"]
    assert checked["drift_share"] == 0.0 and checked["drifted"] is True
    assert checked["multivariate"]["auc"] > 0.7
    with session() as s:
        rows = s.scalars(
            select(ModelDriftMonitoring).where(ModelDriftMonitoring.scope == "dataset")
        ).all()
    verdict, classifier = sorted(rows, key=lambda r: r.method == "domain_classifier")
    assert verdict.drifted and verdict.drift_share == 0.0
    assert classifier.method == "domain_classifier" and classifier.drifted
    assert classifier.statistic == pytest.approx(checked["multivariate"]["auc"])
    assert classifier.threshold == 0.6 and classifier.n_reference == 3000
    low, high = classifier.metrics["ci"]
    assert low < high
    assert {f["feature"] for f in classifier.metrics["top_features"][:2]} == {"x1", "x2"}
    # one check, one verdict: stats counts one drift alert, `jobs due` one drift reason
    stats = json.loads(cli("stats", "--json").stdout)
    assert stats["jobs"][0]["drift_alerts"] == 1
    due = json.loads(cli("jobs", "due", "--json").stdout)
    reasons = [r for d in due["due"] for r in d["reasons"] if r["trigger"] == "drift"]
    assert len(reasons) == 1  # and it names what found the drift, not a share of 0.00
    assert reasons[0]["detail"].startswith(f"domain classifier AUC {classifier.statistic:.3f} at")


def test_the_drift_check_says_what_separates_the_windows(cli: Cli, tmp_path: Path) -> None:
    setup(cli, tmp_path, sample=2000, folds=3)
    result = cli("drift", "check", "j1")
    assert result.exit_code == 3
    line = next(x for x in result.stdout.splitlines() if "domain classifier" in x)
    assert "tells the windows apart" in line and "2000 + 2000 rows, 3 folds" in line
    assert "most separating: x" in line


def test_a_max_auc_of_one_half_or_less_is_refused(cli: Cli, tmp_path: Path) -> None:
    job = write_job(tmp_path, "j1", drift={"multivariate": {"max_auc": 0.5}})
    result = cli("jobs", "apply", "-f", str(job))
    assert result.exit_code == 1
    assert "drift.multivariate.max_auc" in result.stderr
