"""Drift weighed by what the model uses: each version records its features' share of importance,
and a `drift.weighting: importance` job's verdict is the share of importance its drifted
features carry. On both backends, in the exact and the profile mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import Cli
from tests.helpers import write_job

FEATURES = [f"f{i}" for i in range(6)]


def frame(n: int, seed: int, shifted: tuple[str, ...] = ()) -> pd.DataFrame:
    """Six features; the label follows f0 (and a little f1): f0 carries most of a model."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({name: rng.normal(0, 1, n) for name in FEATURES})
    data.insert(0, "ts", pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"))
    logit = 3 * data["f0"] + 0.5 * data["f1"]
    data["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    for name in shifted:
        data[name] += 3.0
    return data


def apply(cli: Cli, folder: Path, name: str, **fields: Any) -> None:
    path = write_job(
        folder,
        name,
        model="m",
        data={"train": "train.parquet", "reference": "ref.parquet", "current": "cur.parquet"},
        features=FEATURES,
        hyperparameters={"num_boost_round": 30, "num_threads": 1},
        thresholds={"performance": 0.6},
        **fields,
    )
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0


def windows(folder: Path, shifted: tuple[str, ...]) -> None:
    frame(1000, seed=1).to_parquet(folder / "train.parquet")
    frame(600, seed=2).drop(columns="y").to_parquet(folder / "ref.parquet")
    frame(600, seed=3, shifted=shifted).drop(columns="y").to_parquet(folder / "cur.parquet")


def check(cli: Cli, job: str) -> dict[str, Any]:
    result = cli("drift", "check", job, "--json")
    assert result.exit_code in (0, 3), result.stderr
    (checked,) = json.loads(result.stdout)["results"]
    assert (result.exit_code == 3) is checked["drifted"]
    document: dict[str, Any] = checked
    return document


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["exact", "profile"])
def test_a_shift_in_the_top_feature_alone_drifts_an_importance_job_and_not_a_share_job(
    cli: Cli, tmp_path: Path, mode: str
) -> None:
    windows(tmp_path, shifted=("f0",))
    apply(cli, tmp_path, "by-share", drift={"mode": mode})
    apply(cli, tmp_path, "by-importance", drift={"mode": mode, "weighting": "importance"})
    assert cli("retrain", "by-share").exit_code == 0
    (version,) = json.loads(cli("versions", "list", "m", "--json").stdout)["versions"]
    importance = version["importance"]
    assert next(iter(importance)) == "f0" and importance["f0"] > 0.5
    assert sum(importance.values()) == pytest.approx(1.0)

    share = check(cli, "by-share")
    assert share["drifted"] is False and share["weighting"] == "share"
    weighted = check(cli, "by-importance")
    assert weighted["drifted"] is True and weighted["weighting"] == "importance"
    assert weighted["weighted_share"] == pytest.approx(importance["f0"])
    # each feature carries its importance, in the JSON and the table (by importance)
    assert {f["feature"]: f["importance"] for f in weighted["features"]} == pytest.approx(
        importance
    )
    table = cli("drift", "check", "by-importance").stdout
    assert table.index("f0") < table.index("f5")
    assert f"carrying {importance['f0']:.0%} of the model's importance" in table
    due = json.loads(cli("jobs", "due", "--json").stdout)
    reasons = {d["job"]: [r["detail"] for r in d["reasons"]] for d in due["due"]}
    carried = f"drift in features carrying {importance['f0']:.0%} of the model's importance"
    assert any(carried in (detail or "") for detail in reasons["by-importance"])


@pytest.mark.slow
def test_a_shift_in_four_features_the_model_does_not_use_drifts_a_share_job_only(
    cli: Cli, tmp_path: Path
) -> None:
    windows(tmp_path, shifted=("f2", "f3", "f4", "f5"))
    apply(cli, tmp_path, "by-share")
    apply(cli, tmp_path, "by-importance", drift={"weighting": "importance"})
    assert cli("retrain", "by-share").exit_code == 0
    assert check(cli, "by-share")["drifted"] is True
    weighted = check(cli, "by-importance")
    assert weighted["drifted"] is False and weighted["weighted_share"] < 0.5


def test_an_importance_job_without_an_active_version_falls_back_to_the_share_and_says_so(
    cli: Cli, tmp_path: Path
) -> None:
    windows(tmp_path, shifted=("f0",))
    apply(cli, tmp_path, "by-importance", drift={"weighting": "importance"})
    checked = check(cli, "by-importance")
    assert checked["weighting"] == "share" and checked["drifted"] is False
    note = "weighting: importance fell back to share: m has no active version"
    assert checked["weighting_note"] == note
    assert note in cli("drift", "check", "by-importance").stdout


def test_the_weighted_verdict_counts_a_dead_feature_and_a_missing_rate_with_their_weight() -> None:
    from retrain_cli.drift.compare import ColumnDrift, DriftResult, weigh

    def column(name: str, drifted: bool, n_current: int = 100) -> ColumnDrift:
        histogram: Any = None
        return ColumnDrift(
            name, "numeric", drifted, "psi", 0.1, 0.25, 100, n_current, 0.0, 0.0, {}, histogram
        )

    def result(columns: list[ColumnDrift]) -> DriftResult:
        from datetime import UTC, datetime

        found = DriftResult(
            None, "m", datetime.now(UTC), False, 0.0, 0.5, 0.25, "psi", 100, 100, columns, []
        )
        found.weighting = "importance"
        return found

    shares = {"a": 0.6, "b": 0.3, "c": 0.1}
    moved = result([column("a", True), column("b", False), column("c", False)])
    weigh(moved, shares, "")
    assert moved.drifted is True and moved.weighted_share == pytest.approx(0.6)
    small = result([column("a", False), column("b", False), column("c", True)])
    weigh(small, shares, "")
    assert small.drifted is False and small.weighted_share == pytest.approx(0.1)
    dead = result([column("a", False), column("b", False), column("c", True, n_current=0)])
    weigh(dead, shares, "")
    assert dead.drifted is True  # a dead feature drifts the dataset, whatever its weight
    zero = result([column("a", True), column("b", False), column("c", False)])
    weigh(zero, dict.fromkeys(shares, 0.0), "")
    assert zero.weighting == "share"
    assert zero.weighting_note == (
        "weighting: importance fell back to share: the active version's importance is all 0"
    )


@pytest.mark.slow
def test_permutation_importance_of_an_lstm_is_reproducible_and_sums_to_1(
    cli: Cli, tmp_path: Path
) -> None:
    windows(tmp_path, shifted=())
    path = write_job(
        tmp_path,
        "seq",
        model="seq-model",
        type="lstm",
        data={"train": "train.parquet"},
        features=FEATURES,
        hyperparameters={"sequence_length": 4, "max_epochs": 4, "hidden_size": 8},
        thresholds={"performance": 0.5},
    )
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    for _ in range(2):
        assert cli("retrain", "seq", "--force").exit_code == 0
    versions = json.loads(cli("versions", "list", "seq-model", "--json").stdout)["versions"]
    first, second = (v["importance"] for v in versions)
    assert first == second  # the same seed: the same numbers
    assert sum(first.values()) == pytest.approx(1.0) and min(first.values()) >= 0.0
    assert max(first, key=first.get) == "f0"


@pytest.mark.slow
def test_an_importance_job_counted_on_the_dask_cluster_weighs_as_it_does_here(
    cli: Cli, tmp_path: Path, dask_scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window counted on the cluster (profile mode, `compute: dask`), the weighing after
    it from the database: the same verdict and weighted share as the check here."""
    monkeypatch.setenv("RETRAIN_DASK_SCHEDULER", dask_scheduler)
    windows(tmp_path, shifted=("f0",))
    profile = {"mode": "profile", "weighting": "importance"}
    apply(cli, tmp_path, "here", drift=profile)
    apply(cli, tmp_path, "there", drift=profile, compute="dask")
    assert cli("retrain", "here").exit_code == 0
    here, there = check(cli, "here"), check(cli, "there")
    assert (here["compute"], there["compute"]) == ("local", "dask")
    assert there["drifted"] is here["drifted"] is True
    assert there["weighted_share"] == pytest.approx(here["weighted_share"])
