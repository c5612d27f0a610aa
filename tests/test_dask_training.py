"""LightGBM training of `compute: dask` jobs on a real Dask cluster (a `distributed.LocalCluster`
of two worker processes over TCP), against the same retrain run here, on both backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.db.models import ModelVersionManagement, RetrainingJobHistory
from tests.conftest import Cli
from tests.helpers import training_frame, write_job

pytestmark = pytest.mark.slow
_COMMAND = [sys.executable, "-m", "retrain_cli", "retrain"]


def _dataset(folder: Path, n: int = 6000) -> pd.DataFrame:
    """Training rows in five files and an empty one, out of time order across and within files,
    with many rows sharing a timestamp (the hold-out's boundary falls inside a run of ties)."""
    frame = training_frame(n, seed=4)
    frame["ts"] = frame["ts"].dt.floor("D")  # 24 rows per timestamp
    frame.loc[frame.sample(frac=0.02, random_state=1).index, "y"] = np.nan  # unlabelled rows
    shuffled = frame.sample(frac=1.0, random_state=2).reset_index(drop=True)
    shuffled["part"] = np.arange(len(shuffled)) % 5
    pq.write_to_dataset(pa.Table.from_pandas(shuffled), folder / "train", ["part"])
    (folder / "train" / "part=9").mkdir()  # and an empty file
    empty = pa.Table.from_pandas(shuffled.drop(columns="part").head(0), preserve_index=False)
    pq.write_table(empty, folder / "train" / "part=9" / "empty.parquet")
    training_frame(2000, seed=5).to_parquet(folder / "cur.parquet")
    return frame


def _apply(cli: Cli, folder: Path, name: str, compute: str, **fields: object) -> None:
    spec = write_job(
        folder,
        name,
        model=f"{name}-model",
        data={"train": "train/", "current": "cur.parquet"},
        features=["f0", "f1", "f2", "colour"],
        compute=compute,
        thresholds={"performance": 0.6},
        **{"hyperparameters": {"num_boost_round": 40}, **fields},
    )
    assert cli("jobs", "apply", "-f", str(spec)).exit_code == 0


def test_the_cluster_holds_out_exactly_the_rows_a_local_run_holds_out(
    cli: Cli,
    tmp_path: Path,
    dask_scheduler: str,
    session: Callable[[], AbstractContextManager[Session]],
) -> None:
    from retrain_cli.cluster import training as cluster_training
    from retrain_cli.cluster.backend import DaskBackend
    from retrain_cli.cluster.client import Cluster
    from retrain_cli.compute.local import LOCAL
    from retrain_cli.jobs.store import effective_job, get_job, load_configs

    _dataset(tmp_path)
    _apply(cli, tmp_path, "job", "dask", holdout_fraction=0.23)
    with session() as s:
        job = effective_job(get_job(s, "job"), load_configs(s))
    local = LOCAL.prepare_training(job)
    with Cluster(dask_scheduler, 10) as cluster:
        remote = DaskBackend(cluster).prepare_training(job)
        assert isinstance(remote.train, cluster_training.ClusterRows)
        assert remote.train.rows == len(local.train.target)
    pd.testing.assert_frame_equal(
        remote.holdout.features, local.holdout.features.reset_index(drop=True)
    )
    assert remote.holdout.target.tolist() == local.holdout.target.tolist()
    assert (remote.features, remote.categorical) == (local.features, local.categorical)
    assert remote.fingerprint["rows"] == local.fingerprint["rows"]
    assert remote.fingerprint["time_max"] == local.fingerprint["time_max"]


def test_a_retrain_on_the_cluster_matches_the_local_one_and_continues_from_it(
    cli: Cli,
    tmp_path: Path,
    dask_scheduler: str,
    monkeypatch: pytest.MonkeyPatch,
    session: Callable[[], AbstractContextManager[Session]],
) -> None:
    monkeypatch.setenv("RETRAIN_DASK_SCHEDULER", dask_scheduler)
    _dataset(tmp_path)
    _apply(cli, tmp_path, "here", "local")
    _apply(cli, tmp_path, "there", "dask", strategy="incremental", drift={"reference": "training"})
    runs = {}
    for name in ("here", "there"):
        result = cli("retrain", name, "--json")
        assert result.exit_code == 0, result.stderr
        runs[name] = json.loads(result.stdout)
    assert (runs["here"]["compute"], runs["there"]["compute"]) == ("local", "dask")
    here, there = (runs[name]["version"]["metrics"] for name in ("here", "there"))
    assert there["n_holdout"] == here["n_holdout"]
    # distributed LightGBM bins and sums histograms per worker: close, not bit for bit
    assert there["auc"] == pytest.approx(here["auc"], abs=0.02)
    assert there["auc"] > 0.8
    # the artifact is LightGBM's text model: an incremental run continues from it
    again = cli("retrain", "there", "--force", "--json")
    assert again.exit_code == 0, again.stderr
    with session() as s:
        versions = s.scalars(
            select(ModelVersionManagement).where(ModelVersionManagement.model_name == "there-model")
        ).all()
    assert sorted(v.version for v in versions) == [1, 2]
    assert [v.parent_version for v in sorted(versions, key=lambda v: v.version)] == [None, 1]
    published = Path(versions[0].artifact_path).parent
    assert (published / "model.txt").read_text().startswith("tree\n")
    # its training profile was built on the cluster: the drift check against it
    assert (published / "profile.json").exists()
    checked = cli("drift", "check", "there", "--json")
    assert checked.exit_code == 0, checked.stderr
    (result,) = json.loads(checked.stdout)["results"]
    assert result["profile"]["built_from"] == "training data" and not result["drifted"]


def test_an_unreachable_scheduler_fails_the_run_and_registers_nothing(
    cli: Cli,
    tmp_path: Path,
    unreachable_scheduler: str,
    session: Callable[[], AbstractContextManager[Session]],
) -> None:
    _dataset(tmp_path)
    _apply(cli, tmp_path, "there", "dask")
    result = cli("retrain", "there")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert f"the Dask scheduler {unreachable_scheduler} is unreachable" in line
    with session() as s:
        (run,) = s.scalars(select(RetrainingJobHistory)).all()
        assert run.status == "failed" and "unreachable" in (run.error or "")
        assert s.scalars(select(ModelVersionManagement)).all() == []


def _scheduler_tasks(address: str) -> list[str]:
    """The keys the scheduler still tracks, asked by a client of our own."""
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        return list(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.tasks)))


def _wait_until(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


def test_a_retrain_past_its_timeout_on_the_cluster_fails_and_registers_nothing(
    cli: Cli,
    db_url: str,
    tmp_path: Path,
    dask_scheduler: str,
    session: Callable[[], AbstractContextManager[Session]],
) -> None:
    _dataset(tmp_path)
    _apply(cli, tmp_path, "there", "dask", timeout=1, hyperparameters={"num_boost_round": 800})
    done = subprocess.run(
        [*_COMMAND, "there", "--database-url", db_url],
        env={**os.environ, "RETRAIN_DASK_SCHEDULER": dask_scheduler},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == ["Error: timeout: training ran past the job's timeout"]
    with session() as s:
        (run,) = s.scalars(select(RetrainingJobHistory)).all()
        assert run.status == "failed"
        assert s.scalars(select(ModelVersionManagement)).all() == []
    # the cancelled run leaves nothing on the scheduler (its running training task ends there)
    assert _wait_until(lambda: not _scheduler_tasks(dask_scheduler), 60)


def test_a_retrain_killed_here_leaves_no_tasks_on_the_cluster(
    cli: Cli, db_url: str, tmp_path: Path, dask_scheduler: str
) -> None:
    _dataset(tmp_path)
    _apply(cli, tmp_path, "there", "dask", hyperparameters={"num_boost_round": 800})
    env = {**os.environ, "RETRAIN_DASK_SCHEDULER": dask_scheduler}
    command = [*_COMMAND, "there", "--database-url", db_url]
    retrain = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        started = _wait_until(
            lambda: any("train_part" in key for key in _scheduler_tasks(dask_scheduler)), 60
        )
        assert started, "the training never reached the cluster"
    finally:
        retrain.send_signal(signal.SIGKILL)
        retrain.communicate(timeout=30)
    assert _wait_until(lambda: not _scheduler_tasks(dask_scheduler), 60)


def test_without_the_dask_extra_a_dask_job_trains_here_and_says_why(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "distributed" else real(name, *a),
    )
    monkeypatch.setenv("RETRAIN_DASK_SCHEDULER", "tcp://127.0.0.1:9")  # never contacted
    _dataset(tmp_path)
    _apply(cli, tmp_path, "there", "dask")
    result = cli("retrain", "there", "--json")
    assert result.exit_code == 0, result.stderr
    run = json.loads(result.stdout)
    assert run["compute"] == "local" and "pip install 'retrain-cli[dask]'" in run["compute_note"]


def test_bad_training_data_on_the_cluster_fails_with_the_line_a_local_run_prints(
    cli: Cli,
    tmp_path: Path,
    dask_scheduler: str,
    monkeypatch: pytest.MonkeyPatch,
    session: Callable[[], AbstractContextManager[Session]],
) -> None:
    frame = training_frame(400, seed=6)
    frame.loc[7, "y"] = 2  # not a 0/1 label, in one file only
    frame["part"] = np.arange(len(frame)) % 3
    pq.write_to_dataset(pa.Table.from_pandas(frame), tmp_path / "train", ["part"])
    training_frame(100).to_parquet(tmp_path / "cur.parquet")
    _apply(cli, tmp_path, "here", "local")
    _apply(cli, tmp_path, "there", "dask")
    monkeypatch.setenv("RETRAIN_DASK_SCHEDULER", dask_scheduler)
    here, there = cli("retrain", "here"), cli("retrain", "there")
    assert here.exit_code == there.exit_code == 1
    assert there.stderr == here.stderr == "Error: target 'y' must hold 0/1 labels\n"
    with session() as s:
        assert s.scalars(select(ModelVersionManagement)).all() == []


def test_a_scheduler_killed_mid_training_is_one_error_line_and_dasks_log_goes_to_the_log(
    tmp_path: Path, home: Path
) -> None:
    """Dask's own account of a lost scheduler (thirty lines of `distributed.client` traceback)
    goes to warnings.log; the terminal gets the one `Error:` line. (On SQLite only: it is
    about what reaches the terminal, not about storage.)"""
    db_url = f"sqlite:///{tmp_path / 'retrain.db'}"
    cli = Cli(db_url)
    assert cli("db", "init").exit_code == 0
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            address,
            "--nworkers",
            "1",
            "--nthreads",
            "1",
            "--no-dashboard",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _dataset(tmp_path)
        _apply(cli, tmp_path, "there", "dask", hyperparameters={"num_boost_round": 3000})
        env = {**os.environ, "RETRAIN_DASK_SCHEDULER": address, "RETRAIN_HOME": str(home)}
        command = [*_COMMAND, "there", "--database-url", db_url]
        assert _wait_until(lambda: _workers(address) == 1, 60), "the worker never joined"
        retrain = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        started = _wait_until(lambda: any("train_part" in k for k in _scheduler_tasks(address)), 60)
        assert started, "the training never reached the cluster"
        scheduler.send_signal(signal.SIGKILL)
        _, stderr = retrain.communicate(timeout=180)
    finally:
        for process in (scheduler, worker):
            process.kill()
            process.wait(timeout=30)
    assert retrain.returncode == 1
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert "distributed" in (home / "logs" / "warnings.log").read_text()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _workers(address: str) -> int:
    from distributed import Client

    try:
        with Client(address, set_as_default=False, timeout=5) as client:
            return len(client.scheduler_info()["workers"])
    except OSError:
        return 0


@pytest.mark.parametrize(
    ("task", "target", "fields", "metric"),
    [
        ("regression", "amount", {"primary_metric": "r2"}, "r2"),
        ("multiclass", "grade", {"classes": ["a", "b", "c"]}, "auc_ovr"),
    ],
)
def test_a_regression_or_multiclass_job_trains_on_the_cluster_as_it_does_here(
    cli: Cli,
    tmp_path: Path,
    dask_scheduler: str,
    monkeypatch: pytest.MonkeyPatch,
    task: str,
    target: str,
    fields: dict[str, object],
    metric: str,
) -> None:
    """`lightgbm.dask`'s regressor for a regression job, its classifier (a probability per
    class) for a multiclass one: the hold-out metric close to a local run's."""
    monkeypatch.setenv("RETRAIN_DASK_SCHEDULER", dask_scheduler)
    frame = training_frame(4000, seed=4).drop(columns="y")
    rng = np.random.default_rng(3)
    frame["amount"] = 3 * frame["f0"] - frame["f1"] + rng.normal(0, 0.5, len(frame))
    frame["grade"] = np.array(["a", "b", "c"])[np.digitize(frame["f0"], [-0.5, 0.5])]
    frame["part"] = np.arange(len(frame)) % 4
    pq.write_to_dataset(pa.Table.from_pandas(frame), tmp_path / "train", ["part"])
    runs = {}
    for name, compute in (("here", "local"), ("there", "dask")):
        spec = write_job(
            tmp_path,
            name,
            data={"train": "train/"},
            features=["f0", "f1", "f2", "colour"],
            task=task,
            target=target,
            compute=compute,
            thresholds={"performance": 0.5},
            hyperparameters={"num_boost_round": 40},
            **fields,
        )
        assert cli("jobs", "apply", "-f", str(spec)).exit_code == 0
        result = cli("retrain", name, "--json")
        assert result.exit_code == 0, result.stderr
        runs[name] = json.loads(result.stdout)
    assert (runs["here"]["compute"], runs["there"]["compute"]) == ("local", "dask")
    here, there = (runs[name]["version"]["metrics"] for name in ("here", "there"))
    assert there[metric] == pytest.approx(here[metric], abs=0.03) and there[metric] > 0.8
