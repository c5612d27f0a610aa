"""Drift checks of `compute: dask` jobs on a real Dask cluster (a `distributed.LocalCluster` of
two worker processes over TCP), against the same checks run here."""

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import Cli
from tests.helpers import window, write_job

BINNED = ("psi", "kl", "js", "hellinger", "chi2_stat", "chi2_pvalue")


def _require_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("the dask extra is not installed (CI runs the cluster tests)")
        pytest.skip("the dask extra is not installed: pip install 'retrain-cli[dask]'")


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    _require_distributed()
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


def _windows(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    window(4000, seed=1).to_parquet(folder / "ref.parquet")
    current = window(5000, seed=2, shift=0.3)
    current["day"] = np.repeat(np.arange(5), 1000)
    pq.write_to_dataset(pa.Table.from_pandas(current), folder / "cur", ["day"])


def _apply(cli: Cli, folder: Path, name: str, compute: str) -> None:
    data = {"train": "ref.parquet", "reference": "ref.parquet", "current": "cur/"}
    spec = write_job(
        folder,
        name,
        data=data,
        features=["f0", "f1", "colour"],
        compute=compute,
        drift={"mode": "profile", "all_statistics": True},
    )
    assert cli("jobs", "apply", "-f", str(spec)).exit_code == 0


@pytest.mark.slow
def test_a_drift_check_counted_on_the_cluster_equals_the_local_one(
    cli: Cli, tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAIN_DASK_SCHEDULER", scheduler)
    _windows(tmp_path)
    _apply(cli, tmp_path, "here", "local")
    _apply(cli, tmp_path, "there", "dask")
    result = cli("drift", "check", "here", "there", "--json")
    assert result.exit_code in (0, 3), result.stderr
    here, there = json.loads(result.stdout)["results"]
    assert (here["compute"], there["compute"]) == ("local", "dask")
    assert there["n_current"] == here["n_current"] == 5000
    assert there["drifted"] == here["drifted"]
    for local, remote in zip(here["features"], there["features"], strict=True):
        assert remote["drifted"] == local["drifted"]
        for name in BINNED:  # the same counts, merged: bit for bit
            if name in local["metrics"]:
                assert remote["metrics"][name] == local["metrics"][name]
        if "ks_stat" in local["metrics"]:
            bound = (
                remote["metrics"]["approximate"]["ks_stat"]
                + local["metrics"]["approximate"]["ks_stat"]
            )
            assert abs(remote["metrics"]["ks_stat"] - local["metrics"]["ks_stat"]) <= bound


@pytest.mark.slow
def test_an_unreachable_scheduler_fails_the_job_with_one_line(
    cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _require_distributed()
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(
        yaml.safe_dump({"dask": {"scheduler": "tcp://127.0.0.1:9", "timeout": 2}})
    )
    _windows(tmp_path)
    _apply(cli, tmp_path, "there", "dask")
    result = cli("drift", "check", "there", "--json")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: there: the Dask scheduler tcp://127.0.0.1:9 is unreachable")
    assert json.loads(result.stdout)["results"] == []


def test_without_a_scheduler_a_dask_job_is_checked_here_and_says_why(
    cli: Cli, tmp_path: Path
) -> None:
    _windows(tmp_path)
    _apply(cli, tmp_path, "there", "dask")
    result = cli("drift", "check", "there", "--json")
    assert result.exit_code in (0, 3), result.stderr
    (checked,) = json.loads(result.stdout)["results"]
    assert checked["compute"] == "local" and "scheduler" in checked["compute_note"]
