"""Drift checks of `compute: dask` jobs on a real Dask cluster (a `distributed.LocalCluster` of
two worker processes over TCP), against the same checks run here."""

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import Cli
from tests.helpers import window, write_job

if TYPE_CHECKING:
    from retrain_cli.data.profile import Profile
    from retrain_cli.data.streaming import Partition

BINNED = ("psi", "kl", "js", "hellinger", "chi2_stat", "chi2_pvalue")


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


def _here_and_there(
    cli: Cli, folder: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The windows, and the same job twice: `here` (compute: local), `there` (compute: dask)."""
    monkeypatch.setenv("RETRAIN_DASK_SCHEDULER", scheduler)
    _windows(folder)
    _apply(cli, folder, "here", "local")
    _apply(cli, folder, "there", "dask")


@pytest.mark.slow
def test_a_drift_check_counted_on_the_cluster_equals_the_local_one(
    cli: Cli, tmp_path: Path, dask_scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _here_and_there(cli, tmp_path, dask_scheduler, monkeypatch)
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
    cli: Cli, tmp_path: Path, unreachable_scheduler: str
) -> None:
    _windows(tmp_path)
    _apply(cli, tmp_path, "there", "dask")
    result = cli("drift", "check", "there", "--json")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        f"Error: there: the Dask scheduler {unreachable_scheduler} is unreachable"
    )
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


def _reference_dataset(folder: Path) -> Path:
    """A reference window in six files: ties, missing values, a column all missing in a file."""
    rng = np.random.default_rng(5)
    frame = window(30_000, seed=3)
    frame["f1"] = np.round(frame["f1"], 1)  # many ties at the bin edges
    frame.loc[rng.random(len(frame)) < 0.05, "f0"] = np.nan
    frame["part"] = np.repeat(np.arange(6), 5000)
    frame.loc[frame["part"] == 2, "f0"] = np.nan
    pq.write_to_dataset(pa.Table.from_pandas(frame), folder / "ref", ["part"])
    return folder / "ref"


def _profiles_equal(local: "Profile", remote: "Profile") -> None:
    assert remote.rows == local.rows and remote.bins == local.bins
    assert remote.columns.keys() == local.columns.keys()
    for name, column in local.columns.items():
        other = remote.columns[name]
        if column.kind == "categorical":
            assert other == column
            continue
        exact = ("rows", "missing", "min", "max", "edges", "counts")
        assert other.model_dump(include=set(exact)) == column.model_dump(include=set(exact))
        assert other.mean == pytest.approx(column.mean, rel=1e-12, abs=1e-12)
        assert other.std == pytest.approx(column.std, rel=1e-12)


@pytest.mark.slow
def test_a_profile_built_on_the_cluster_equals_the_local_one_bit_for_bit(
    tmp_path: Path, dask_scheduler: str
) -> None:
    from retrain_cli.cluster.backend import DaskBackend
    from retrain_cli.cluster.client import Cluster
    from retrain_cli.compute.local import LOCAL
    from retrain_cli.data.columns import Columns
    from retrain_cli.data.sources import file_source

    source = file_source(f"{_reference_dataset(tmp_path)}/")
    columns = Columns(features=None, categorical=["colour"], excluded=["ts", "y"], scores=["score"])
    local = LOCAL.profile(source, columns, 10)
    with Cluster(dask_scheduler, 10) as cluster:
        remote = DaskBackend(cluster).profile(source, columns, 10)
    _profiles_equal(local, remote)


def _kill_worker_once(marker: str, part: "Partition", name: str) -> pa.Array:
    """A partition's column, read by a worker that dies by SIGKILL the first time it tries."""
    import signal

    from retrain_cli.data.streaming import partition_column

    if not os.path.exists(marker):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return partition_column(part, name)


@pytest.mark.slow
def test_a_worker_killed_during_a_profile_build_changes_nothing(
    tmp_path: Path, dask_scheduler: str
) -> None:
    import sys
    from functools import partial

    import cloudpickle

    from retrain_cli.cluster import profile as cluster_profile
    from retrain_cli.cluster.client import Cluster
    from retrain_cli.data import streaming
    from retrain_cli.data.sources import file_source

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers lack tests/
    source = file_source(f"{_reference_dataset(tmp_path)}/")
    kinds = {"f0": "numeric", "f1": "numeric", "colour": "categorical"}
    parts = streaming.partitions(source, "reference", list(kinds)) or []
    marker = tmp_path / "killed"
    with Cluster(dask_scheduler, 10) as cluster:
        client = cluster.client()
        calm = cluster_profile.build(
            client, parts, streaming.partition_column, kinds, 10, 30_000, "w"
        )
        killing = partial(_kill_worker_once, str(marker))
        survived = cluster_profile.build(client, parts, killing, kinds, 10, 30_000, "w")
        client.wait_for_workers(2, timeout=30)
    assert marker.exists()  # a worker did die
    _profiles_equal(calm, survived)


@pytest.mark.slow
def test_drift_profile_of_a_dask_job_is_built_on_the_cluster_and_says_so(
    cli: Cli, tmp_path: Path, dask_scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _here_and_there(cli, tmp_path, dask_scheduler, monkeypatch)
    result = cli("drift", "profile", "here", "there", "--json")
    assert result.exit_code == 0, result.stderr
    here, there = json.loads(result.stdout)["results"]
    assert (here["compute"], there["compute"]) == ("local", "dask")
    assert there["compute_note"] is None and there["rows"] == here["rows"] == 4000


@pytest.mark.slow
def test_a_data_contract_checked_on_the_cluster_equals_the_local_check(
    tmp_path: Path, dask_scheduler: str
) -> None:
    from datetime import UTC, datetime

    from retrain_cli.cluster.backend import DaskBackend
    from retrain_cli.cluster.client import Cluster
    from retrain_cli.compute.local import LOCAL
    from retrain_cli.data.sources import file_source
    from retrain_cli.jobs.sections import SchemaSpec

    current = window(5000, seed=2, shift=0.3)
    current["day"] = np.repeat(np.arange(5), 1000)
    current["id"] = np.arange(5000)
    current.loc[4321, "id"] = 12  # the same key in the first and the fifth partition
    current.loc[:2000, "f1"] = np.nan
    pq.write_to_dataset(pa.Table.from_pandas(current), tmp_path / "cur", ["day"])
    contract = SchemaSpec.model_validate(
        {
            "min_rows": 6000,
            "freshness": "1d",
            "columns": {
                "id": {"type": "integer", "unique": True},
                "f0": {"min": -2, "max": 2},
                "f1": {"max_missing": 0.1},
                "colour": {"categories": ["red", "green"]},
                "gone": {},
            },
        }
    )
    source, now = file_source(f"{tmp_path / 'cur'}/"), datetime(2027, 3, 1, tzinfo=UTC)
    here = LOCAL.check_contract(source, "current", contract, "ts", now)
    with Cluster(dask_scheduler, 10) as cluster:
        there = DaskBackend(cluster).check_contract(source, "current", contract, "ts", now)
    rules = ["required", "unique", "range", "missing", "categories", "min_rows", "freshness"]
    assert [v.rule for v in here] == rules
    assert [(v.rule, v.column, v.observed, v.limit) for v in there] == [
        (v.rule, v.column, v.observed, v.limit) for v in here
    ]
