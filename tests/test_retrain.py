"""`retrain` end to end in-process: real LightGBM on small data, both backends."""

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.core.durations import Phases
from retrain_cli.core.errors import ConflictError
from retrain_cli.core.settings import load_settings
from retrain_cli.data.training import prepare
from retrain_cli.db.models import AutoRetrainingJob, ModelVersionManagement, RetrainingJobHistory
from retrain_cli.db.session import make_engine
from retrain_cli.store import artifacts
from retrain_cli.trainers.base import FakeTrainer
from retrain_cli.trainers.families import load_trainer
from retrain_cli.training.registration import database_key
from retrain_cli.training.runner import Hooks, RetrainRequest, RunFailed, retrain
from retrain_cli.training.slots import FileSlots
from tests.conftest import Cli
from tests.helpers import published, training_frame, write_training_job

SessionFactory = Callable[[], AbstractContextManager[Session]]


def apply(cli: Cli, path: Path) -> None:
    result = cli("jobs", "apply", "-f", str(path))
    assert result.exit_code == 0, result.stderr


def run(cli: Cli, job: str = "j1", *args: str) -> tuple[int, dict[str, Any], str]:
    result = cli("retrain", job, "--json", *args)
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}, result.stderr


def versions(session: SessionFactory) -> list[ModelVersionManagement]:
    with session() as s:
        return list(s.scalars(select(ModelVersionManagement).order_by(ModelVersionManagement.id)))


def runs(session: SessionFactory) -> list[RetrainingJobHistory]:
    with session() as s:
        return list(s.scalars(select(RetrainingJobHistory).order_by(RetrainingJobHistory.id)))


@pytest.mark.slow
def test_first_run_registers_and_promotes_with_a_verified_artifact(
    cli: Cli, tmp_path: Path, session: SessionFactory, home: Path
) -> None:
    apply(cli, write_training_job(tmp_path))
    code, result, _ = run(cli)
    assert code == 0, result
    assert (result["status"], result["promoted"], result["gate"]["decision"]) == (
        "succeeded",
        True,
        "promote",
    )
    assert result["version"]["version"] == 1 and result["version"]["metrics"]["auc"] > 0.8
    (version,) = versions(session)
    assert (version.status, version.parent_version, version.strategy) == (
        "active",
        None,
        "incremental",
    )
    directory = published(home, "j1-model", 1)
    assert sorted(p.name for p in directory.iterdir()) == [
        "manifest.json",
        "metadata.json",
        "model.txt",
        "profile.json",
        "sample.parquet",
    ]
    manifest = artifacts.verify(directory, version.sha256)
    assert version.size_bytes == (directory / "manifest.json").stat().st_size
    assert version.data_fingerprint["rows"] == 600 and len(version.data_fingerprint["sha256"]) == 64
    assert not list((home / "artifacts" / "j1-model").glob(".staging-*"))
    (row,) = runs(session)
    assert (row.status, row.version_id, row.promoted, row.trigger) == (
        "succeeded",
        version.id,
        True,
        "manual",
    )
    assert row.gate["reasons"] and row.duration_s is not None and row.pid > 0
    with session() as s:
        job = s.scalars(select(AutoRetrainingJob)).one()
        assert job.last_run_status == "succeeded"
    # the artifact reloads and reproduces the hold-out scores it was evaluated on
    trainer = load_trainer("lightgbm", directory, manifest)
    from retrain_cli.jobs.store import effective_job, load_configs

    with session() as s:
        prepared = prepare(
            effective_job(s.scalars(select(AutoRetrainingJob)).one(), load_configs(s))
        )
    from retrain_cli.statistics.performance import auc

    assert auc(prepared.holdout.target, trainer.predict(prepared.holdout.features)) == (
        pytest.approx(version.metrics["auc"], rel=1e-12)
    )


@pytest.mark.slow
def test_incremental_run_has_the_champion_as_parent(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    apply(cli, write_training_job(tmp_path))
    assert run(cli)[0] == 0
    code, _result, _ = run(
        cli, "j1", "--trigger", "drift", "--trigger-detail", "psi 0.4", "--force"
    )
    assert code == 0
    _first, second = versions(session)
    assert (second.version, second.parent_version) == (2, 1)
    assert runs(session)[1].trigger == "drift" and runs(session)[1].trigger_detail == "psi 0.4"


@pytest.mark.slow
def test_a_worse_challenger_is_registered_but_not_promoted(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    apply(cli, write_training_job(tmp_path, strategy="full"))
    assert run(cli)[0] == 0
    apply(
        cli,
        write_training_job(
            tmp_path,
            strategy="full",
            hyperparameters={"num_boost_round": 1, "num_leaves": 2, "learning_rate": 0.01},
        ),
    )
    code, result, _ = run(cli)
    assert code == 0 and result["promoted"] is False
    assert "does not beat the champion" in result["gate"]["reasons"][-1]
    assert [(v.version, v.status) for v in versions(session)] == [(1, "active"), (2, "registered")]


@pytest.mark.slow
def test_no_promote_holds_a_better_version(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    apply(cli, write_training_job(tmp_path))
    code, result, _ = run(cli, "j1", "--no-promote")
    assert (code, result["promoted"]) == (0, False)
    assert result["gate"]["reasons"][-1] == "held: --no-promote"
    assert [v.status for v in versions(session)] == ["registered"]


@pytest.mark.slow
def test_a_version_below_the_threshold_is_not_promoted(cli: Cli, tmp_path: Path) -> None:
    apply(cli, write_training_job(tmp_path, thresholds={"performance": 0.999}))
    code, result, _ = run(cli)
    assert (code, result["promoted"]) == (0, False)
    assert "misses the threshold" in result["gate"]["reasons"][0]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("missing file", "no such file"),
        ("wrong columns", "train data has no column 'f2'"),
        ("all-NaN target", "target 'y' has no values"),
        ("too few rows", "labelled rows; at least 20 needed"),
        ("labels not 0/1", "target 'y' must hold 0/1 labels"),
    ],
)
def test_bad_inputs_fail_with_one_line_and_a_failed_row(
    cli: Cli, tmp_path: Path, session: SessionFactory, home: Path, breakage: str, message: str
) -> None:
    frame = training_frame()
    fields: dict[str, Any] = {"features": ["f0", "f1", "f2"]}
    if breakage == "wrong columns":
        frame = frame.drop(columns=["f2"])
    elif breakage == "all-NaN target":
        frame["y"] = np.nan
    elif breakage == "too few rows":
        frame = frame.head(10)
    elif breakage == "labels not 0/1":
        frame["y"] = frame["y"] * 3
    apply(cli, write_training_job(tmp_path, frame=frame, **fields))
    if breakage == "missing file":
        (tmp_path / "train.parquet").unlink()
    code, result, stderr = run(cli)
    assert code == 1
    assert stderr.count("\n") == 1 and message in stderr
    assert result["status"] == "failed" and message in result["error"]
    assert list(result["phases"]) == ["load"]  # where it stopped
    (row,) = runs(session)
    assert row.status == "failed" and message in row.error
    assert versions(session) == []
    assert not list((home / "artifacts").glob("*/*"))


@pytest.mark.slow
def test_a_monotone_constraint_on_a_categorical_feature_is_one_line_not_an_abort(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    hyperparameters = {"num_boost_round": 5, "monotone_constraints": [1, 0, 1]}
    fields = {"features": ["f0", "f1", "colour"], "categorical": ["colour"]}
    apply(cli, write_training_job(tmp_path, hyperparameters=hyperparameters, **fields))
    code, result, stderr = run(cli)  # LightGBM itself would stop the process (SIGABRT)
    assert code == 1 and stderr.count("\n") == 1
    assert "monotone in a categorical feature (colour): set its constraint to 0" in stderr
    assert result["status"] == "failed" and list(result["phases"]) == ["load", "train"]
    assert versions(session) == []


@pytest.mark.parametrize(
    ("params", "refused"),
    [
        ({"monotone_constraints": [1, 0, -1]}, "colour"),
        ({"mc": "0,1,1"}, "b, colour"),  # an alias, as LightGBM's comma-separated string
        ({"monotone_constraints": [1, 1, 0]}, None),  # numeric features only
        ({"monotone_constraints": "not numbers"}, None),  # left to LightGBM's own message
        ({}, None),
    ],
)
def test_a_monotone_constraint_is_refused_only_on_a_categorical_feature(
    params: dict[str, Any], refused: str | None
) -> None:
    from retrain_cli.core.errors import JobSpecError
    from retrain_cli.trainers.lightgbm_trainer import refuse_monotone_categories

    features, categorical = ["a", "b", "colour"], ["b", "colour"]
    if refused is None:
        refuse_monotone_categories(params, features, ["colour"])
        return
    with pytest.raises(JobSpecError, match=re.escape(f"categorical feature ({refused})")):
        refuse_monotone_categories(params, features, categorical)


def in_process(db_url: str, job: str, hooks: Hooks) -> Any:
    settings = load_settings(db_url)
    engine = make_engine(db_url)
    try:
        return retrain(engine, settings, RetrainRequest(job, force=True), hooks)
    finally:
        engine.dispose()


def test_timeout_stops_training_and_records_failed(
    cli: Cli, db_url: str, tmp_path: Path, session: SessionFactory
) -> None:
    apply(cli, write_training_job(tmp_path, timeout="1s"))
    hooks = Hooks(trainer_factory=lambda kind, hp: FakeTrainer(steps=50, seconds_per_step=0.1))
    with pytest.raises(RunFailed, match="timeout"):
        in_process(db_url, "j1", hooks)
    (row,) = runs(session)
    assert row.status == "failed" and row.error.startswith("timeout")
    assert row.duration_s < 5
    assert versions(session) == []


def test_progress_is_reported_per_step(cli: Cli, db_url: str, tmp_path: Path) -> None:
    apply(cli, write_training_job(tmp_path))
    seen: list[tuple[int, int]] = []
    hooks = Hooks(
        trainer_factory=lambda kind, hp: FakeTrainer(steps=4),
        on_progress=lambda done, total: seen.append((done, total)),
    )
    assert in_process(db_url, "j1", hooks).status == "succeeded"
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


@pytest.mark.slow
def test_each_step_of_a_run_reports_its_wall_seconds(cli: Cli, db_url: str, tmp_path: Path) -> None:
    apply(cli, write_training_job(tmp_path))
    text = cli("retrain", "j1")
    assert text.exit_code == 0 and ", train " in text.stdout and "s, register " in text.stdout
    code, result, _ = run(cli, "j1", "--force")  # the JSON document carries them too
    assert code == 0
    assert list(result["phases"]) == ["load", "train", "evaluate", "champion", "register"]
    hooks = Hooks(trainer_factory=lambda kind, hp: FakeTrainer(steps=3, seconds_per_step=0.1))
    start = time.monotonic()
    slow = in_process(db_url, "j1", hooks)
    elapsed = time.monotonic() - start
    assert list(slow.phases) == list(result["phases"])
    assert slow.phases["train"] >= 0.3 > slow.phases["evaluate"]
    assert sum(slow.phases.values()) <= elapsed


def test_phases_add_up_the_time_spent_in_each_named_step() -> None:
    ticks = iter([0.0, 1.5, 2.0, 2.25, 10.0, 10.5])
    phases = Phases(clock=lambda: next(ticks))
    with phases("load"):
        pass
    with phases("train"):
        pass
    with pytest.raises(ValueError), phases("load"):  # a step that raises still counts
        raise ValueError
    assert phases.seconds == {"load": 2.0, "train": 0.25}


def test_busy_job_exits_75_and_records_a_skipped_row(
    cli: Cli, tmp_path: Path, session: SessionFactory, home: Path
) -> None:
    apply(cli, write_training_job(tmp_path))
    lease = FileSlots(home / "locks", 3).acquire("j1", 0)
    try:
        result = cli("retrain", "j1")
    finally:
        lease.release()
    assert result.exit_code == 75
    assert "job 'j1' is already running (held by pid" in result.stderr
    (row,) = runs(session)
    assert row.status == "skipped" and "already running" in row.error


def test_no_free_slot_exits_75_with_json(
    cli: Cli, tmp_path: Path, session: SessionFactory, home: Path
) -> None:
    apply(cli, write_training_job(tmp_path))
    semaphore = FileSlots(home / "locks", 3)
    leases = [semaphore.acquire(f"other{i}", 0) for i in range(3)]
    try:
        code, result, stderr = run(cli)
    finally:
        for lease in leases:
            lease.release()
    assert code == 75 and result["status"] == "skipped"
    assert "all 3 retrain slots are busy" in stderr
    assert [r.status for r in runs(session)] == ["skipped"]
    assert (home / "locks").stat().st_mode & 0o777 == 0o700


@pytest.mark.slow
def test_a_tampered_champion_is_never_built_upon(
    cli: Cli, tmp_path: Path, session: SessionFactory, home: Path
) -> None:
    apply(cli, write_training_job(tmp_path))
    assert run(cli)[0] == 0
    (published(home, "j1-model", 1) / "model.txt").write_text("tree=evil\n")
    code, _, stderr = run(cli, "j1", "--force")
    assert code == 1 and "sha256 does not match" in stderr
    assert [(v.version, v.status) for v in versions(session)] == [(1, "active")]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("hyperparameters", "layout"),
    [
        ({}, "[force_col_wise: 1]"),  # deterministic by default: one layout, fixed
        ({"force_row_wise": True}, "[force_row_wise: 1]"),  # the job's own choice stands
        ({"deterministic": False}, "[force_col_wise: 0]"),  # LightGBM may time both
    ],
)
def test_a_deterministic_lightgbm_run_fixes_its_histogram_layout(
    hyperparameters: dict[str, object], layout: str
) -> None:
    import pandas as pd

    from retrain_cli.trainers.base import TrainingContext, TrainingData
    from retrain_cli.trainers.lightgbm_trainer import LightGBMTrainer

    rng = np.random.default_rng(3)
    features = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    target = (features["a"] > 0).to_numpy(dtype=np.float64)
    trainer = LightGBMTrainer({**hyperparameters, "num_boost_round": 3}).fit(
        TrainingData(features, target), TrainingContext()
    )
    lines = trainer.booster_.model_to_string().splitlines()
    assert layout in lines
    forced = [line for line in lines if line.startswith("[force_") and line.endswith(": 1]")]
    assert forced == ([layout] if layout.endswith(": 1]") else [])


@pytest.mark.slow
def test_lightgbm_grows_the_same_trees_from_its_arrow_input_as_from_a_float64_matrix() -> None:
    # the trainer hands LightGBM Arrow columns (faster to bin, no matrix copy); the model and
    # its scores must be exactly those of the plain float64 matrix, missing values included
    import lightgbm as lgb
    import pandas as pd

    from retrain_cli.trainers.base import TrainingContext, TrainingData
    from retrain_cli.trainers.lightgbm_trainer import LightGBMTrainer

    rng = np.random.default_rng(7)
    n = 3000
    x = rng.normal(size=n)
    x[rng.random(n) < 0.1] = np.nan
    counts = pd.array(rng.integers(0, 9, size=n), dtype="Int64")
    counts[rng.random(n) < 0.1] = pd.NA
    features = pd.DataFrame(
        {
            "x": x,
            "counts": counts,
            "small": rng.integers(-3, 3, size=n).astype(np.int8),
            "f32": rng.normal(size=n).astype(np.float32),
        }
    )
    target = ((np.nan_to_num(x) + rng.normal(size=n)) > 0).astype(np.float64)
    params = {"num_leaves": 7, "min_data_in_leaf": 5}
    trainer = LightGBMTrainer({**params, "num_boost_round": 15}).fit(
        TrainingData(features, target), TrainingContext()
    )
    plain = lgb.train(
        {**LightGBMTrainer({}).params, **params},
        lgb.Dataset(
            features.to_numpy(dtype=np.float64, na_value=np.nan),
            label=target,
            feature_name=list(features),
        ),
        num_boost_round=15,
    )
    assert trainer.booster_.model_to_string() == plain.model_to_string()
    assert np.array_equal(
        trainer.predict(features),
        plain.predict(features.to_numpy(dtype=np.float64, na_value=np.nan)),
    )


@pytest.mark.slow
def test_a_killed_runs_staging_is_removed_by_the_next_run_and_a_live_ones_kept(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    import os

    apply(cli, write_training_job(tmp_path))
    model = home / "artifacts" / "j1-model"
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )  # a process that has exited
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = artifacts._HOST
        killed = model / f".staging-{host}-{gone.stdout.strip()}-{'a' * 32}"
        running = model / f".staging-{host}-{live.pid}-{'b' * 32}"
        elsewhere = model / f".staging-otherhost-{gone.stdout.strip()}-{'c' * 32}"
        for path in (killed, running, elsewhere):
            path.mkdir(parents=True)
            (path / "model.txt").write_text("half a model")
        assert run(cli)[0] == 0
        assert not killed.exists()
        assert running.exists() and elsewhere.exists()  # another host's process is its own
    finally:
        live.kill()
        live.wait()
    assert os.stat(published(home, "j1-model", 1) / "model.txt").st_size > 0


@pytest.mark.slow
def test_two_databases_sharing_one_artifacts_dir_never_overwrite_each_others_artifacts(
    cli: Cli, tmp_path: Path, home: Path, session: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each database has its own home (docs/many-hosts.md), and both homes name one
    artifacts directory: every version's directory is named by its digest."""
    shared = tmp_path / "shared-artifacts"
    other_home = tmp_path / "other-home"
    for folder in (home, other_home):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(f"artifacts_dir: {shared}\n")
    apply(cli, write_training_job(tmp_path))
    assert run(cli)[0] == 0
    (mine,) = versions(session)
    other = Cli(f"sqlite:///{tmp_path / 'other.db'}")
    monkeypatch.setenv("RETRAIN_HOME", str(other_home))
    assert other("db", "init").exit_code == 0
    apply(other, tmp_path / "j1.yaml")
    assert run(other)[0] == 0  # the other database's v1 of the same model
    monkeypatch.setenv("RETRAIN_HOME", str(home))
    assert len(list((shared / "j1-model").glob("1-*"))) == 2
    artifacts.verify(Path(mine.artifact_path).parent, mine.sha256)  # untouched
    code, result, stderr = run(cli, "j1", "--force")  # incremental from this v1
    assert code == 0 and result["version"]["version"] == 2, stderr


def test_publishing_onto_an_existing_directory_is_refused(tmp_path: Path) -> None:
    staging, target = tmp_path / "staging", tmp_path / "1-abc"
    staging.mkdir()
    target.mkdir()
    (target / "model.txt").write_text("published")
    with pytest.raises(ConflictError, match="never overwritten"):
        artifacts.publish(staging, target, "db")
    assert (target / "model.txt").read_text() == "published" and staging.is_dir()


@pytest.mark.slow
def test_a_directory_published_by_a_run_killed_before_its_commit_is_removed_by_the_next_run(
    cli: Cli, tmp_path: Path, home: Path, session: SessionFactory, db_url: str
) -> None:
    apply(cli, write_training_job(tmp_path))
    assert run(cli)[0] == 0
    dead = subprocess.run(
        [sys.executable, "-c", "print(__import__('os').getpid())"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    engine = make_engine(db_url)
    ours = database_key(engine)
    engine.dispose()
    model = home / "artifacts" / "j1-model"
    committed = published(home, "j1-model", 1)

    def leftover(name: str, database: str, pid: str = dead) -> Path:
        path = model / name
        path.mkdir(exist_ok=True)
        marker = {"host": artifacts._HOST, "pid": int(pid), "database": database}
        (path / artifacts.UNREGISTERED).write_text(json.dumps(marker))
        return path

    killed = leftover("2-" + "a" * 16, ours)
    foreign = leftover("9-" + "b" * 16, "another-database")
    leftover(committed.name, ours)  # killed after its commit, before dropping the marker
    assert run(cli, "j1", "--force")[0] == 0
    assert not killed.exists() and foreign.exists()
    assert committed.is_dir() and not (committed / artifacts.UNREGISTERED).exists()
    assert not (published(home, "j1-model", 2) / artifacts.UNREGISTERED).exists()


@pytest.mark.slow
def test_a_lightgbm_fatal_error_is_the_one_line_on_stderr(
    tmp_path: Path, home: Path, db_url: str
) -> None:
    # parameters LightGBM accepts alone and refuses only with the data (one constraint, three
    # features): past the check at apply, a fatal error in training
    wrong = {"num_boost_round": 5, "monotone_constraints": [1]}
    job = write_training_job(tmp_path, features=["f0", "f1", "f2"], hyperparameters=wrong)
    env = {**os.environ, "RETRAIN_HOME": str(home), "RETRAIN_DATABASE_URL": db_url}

    def command(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "retrain_cli", *args]
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)

    assert command("jobs", "apply", "-f", str(job)).returncode == 0
    result = command("retrain", "j1", "--json")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Error: " + json.loads(result.stdout)["error"]
    ]  # LightGBM's own "[LightGBM] [Fatal] ..." echo is not there
    assert "monotone_constraints.size()" in result.stderr


@pytest.mark.slow
def test_a_retrain_on_unchanged_data_and_hyperparameters_is_skipped_and_trains_nothing(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    apply(cli, write_training_job(tmp_path))
    assert run(cli)[0] == 0
    code, result, _ = run(cli)
    assert code == 0 and result["status"] == "skipped" and result["version"] is None
    assert "nothing to learn: j1-model v1, the active version" in result["error"]
    assert list(result["phases"]) == ["load"]
    assert "skipped, nothing to learn" in cli("retrain", "j1").stdout
    assert [v.version for v in versions(session)] == [1]
    assert [r.status for r in runs(session)] == ["succeeded", "skipped", "skipped"]
    apply(cli, write_training_job(tmp_path, hyperparameters={"num_boost_round": 31}))
    assert run(cli)[1]["status"] == "succeeded"  # new hyperparameters: something to learn


@pytest.mark.slow
def test_force_retrains_unchanged_data_and_a_tie_is_not_promoted_unless_allowed(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    apply(cli, write_training_job(tmp_path, strategy="full"))
    assert run(cli)[0] == 0
    code, result, _ = run(cli, "j1", "--force")  # deterministic: the same model again
    assert code == 0 and result["gate"]["values"]["margin"] == 0
    assert (
        result["promoted"] is False and "by more than 0 (margin 0)" in result["gate"]["reasons"][0]
    )
    apply(cli, write_training_job(tmp_path, strategy="full", gate={"allow_ties": True}))
    code, result, _ = run(cli, "j1", "--force")
    assert result["promoted"] is True and "(needed at least 0)" in result["gate"]["reasons"][0]
    assert [(v.version, v.status) for v in versions(session)] == [
        (1, "retired"),  # the champion it replaced
        (2, "registered"),
        (3, "active"),
    ]
