"""LSTM, Transformer and Ensemble through the same trainer interface, with real PyTorch."""

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.core.errors import NotAvailableError
from retrain_cli.data.training import prepare
from retrain_cli.db.models import AutoRetrainingJob, ModelVersionManagement
from retrain_cli.jobs.store import effective_job, load_configs
from retrain_cli.statistics import performance
from retrain_cli.store import artifacts
from retrain_cli.trainers.base import TrainingContext, TrainingData
from retrain_cli.trainers.families import load_trainer, trainer_for
from tests.conftest import Cli
from tests.helpers import SMALL_SEQUENCE, lagged_frame, write_training_job

SessionFactory = Callable[[], AbstractContextManager[Session]]
ENSEMBLE = {
    "members": ["lightgbm", "lstm"],
    "hyperparameters": {**SMALL_SEQUENCE, "num_boost_round": 20},
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("lstm", {"hyperparameters": SMALL_SEQUENCE}),
        ("transformer", {"hyperparameters": SMALL_SEQUENCE}),
        ("ensemble", ENSEMBLE),
    ],
)
def test_each_family_trains_registers_and_reproduces_its_holdout(
    cli: Cli, tmp_path: Path, session: SessionFactory, home: Path, kind: str, extra: dict[str, Any]
) -> None:
    path = write_training_job(
        tmp_path, frame=lagged_frame(), type=kind, thresholds={"performance": 0.5}, **extra
    )
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    result = cli("retrain", "j1")
    assert result.exit_code == 0, result.stderr
    with session() as s:
        version = s.scalars(select(ModelVersionManagement)).one()
        job = effective_job(s.scalars(select(AutoRetrainingJob)).one(), load_configs(s))
    directory = Path(version.artifact_path).parent
    manifest = artifacts.verify(directory, version.sha256)
    prepared = prepare(job)
    first = load_trainer(kind, directory, manifest).predict(prepared.holdout.features)
    second = load_trainer(kind, directory, manifest).predict(prepared.holdout.features)
    np.testing.assert_array_equal(first, second)
    scored = np.isfinite(first)
    assert scored.sum() == version.metrics["n_scored"]
    if kind != "ensemble":  # the first sequence_length - 1 rows have no prediction
        assert (~scored).sum() == SMALL_SEQUENCE["sequence_length"] - 1 and scored[-1]
    auc = performance.auc(prepared.holdout.target[scored], first[scored])
    assert auc == pytest.approx(version.metrics["auc"], rel=1e-12)
    assert version.status == "active" and not any(directory.rglob("*.pkl"))


def fit(kind: str, frame: Any, hp: dict[str, Any]) -> Any:
    data = TrainingData(frame[["f0", "f1"]], frame["y"].to_numpy(dtype=float))
    return trainer_for(kind, hp).fit(data, TrainingContext())


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_sequence_models_use_the_order_of_time(kind: str) -> None:
    frame = lagged_frame(n=1500, seed=1)
    train, holdout = frame.iloc[:1200], frame.iloc[1200:]
    hp = {**SMALL_SEQUENCE, "max_epochs": 15, "patience": 15}
    shuffled = train.sample(frac=1.0, random_state=0).reset_index(drop=True)

    def auc(model: Any) -> float:
        scores = model.predict(holdout[["f0", "f1"]])
        keep = np.isfinite(scores)
        return performance.auc(holdout["y"].to_numpy(dtype=float)[keep], scores[keep])

    ordered_auc, shuffled_auc = auc(fit(kind, train, hp)), auc(fit(kind, shuffled, hp))
    assert ordered_auc > 0.75
    assert ordered_auc - shuffled_auc > 0.1, (ordered_auc, shuffled_auc)


@pytest.mark.slow
def test_the_ensemble_is_at_least_as_good_as_its_weakest_member(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    path = write_training_job(
        tmp_path,
        frame=lagged_frame(n=900),
        type="ensemble",
        thresholds={"performance": 0.5},
        **ENSEMBLE,
    )
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    assert cli("retrain", "j1").exit_code == 0
    with session() as s:
        version = s.scalars(select(ModelVersionManagement)).one()
        job = effective_job(s.scalars(select(AutoRetrainingJob)).one(), load_configs(s))
    directory = Path(version.artifact_path).parent
    ensemble = load_trainer("ensemble", directory, artifacts.verify(directory, version.sha256))
    holdout = prepare(job).holdout
    aucs = []
    for scorer in [ensemble, *ensemble.trainers_]:
        scores = scorer.predict(holdout.features)
        keep = np.isfinite(scores)
        aucs.append(performance.auc(holdout.target[keep], scores[keep]))
    assert aucs[0] >= min(aucs[1:])
    # every member's files are covered by the one recorded digest
    member = directory / ensemble.members_[1]["path"] / "model.pt"
    member.write_bytes(member.read_bytes() + b"x")
    with pytest.raises(Exception, match="sha256 does not match"):
        load_trainer("ensemble", directory, artifacts.verify(directory, version.sha256))


@pytest.mark.slow
def test_incremental_ensemble_reuses_members_whose_data_did_not_change(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    path = write_training_job(
        tmp_path,
        frame=lagged_frame(),
        type="ensemble",
        strategy="incremental",
        thresholds={"performance": 0.5},
        **ENSEMBLE,
    )
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    assert cli("retrain", "j1").exit_code == 0
    assert cli("retrain", "j1", "--force").exit_code == 0
    with session() as s:
        second = s.scalars(
            select(ModelVersionManagement).where(ModelVersionManagement.version == 2)
        ).one()
    listed = load_trainer(
        "ensemble",
        Path(second.artifact_path).parent,
        artifacts.verify(Path(second.artifact_path).parent, second.sha256),
    ).members_
    assert [m["reused"] for m in listed] == [True, True] and second.parent_version == 1


def test_without_torch_a_sequence_job_fails_with_an_install_hint(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    with pytest.raises(NotAvailableError, match=r"pip install torch==2.13.0"):
        trainer_for("lstm", {})
    path = write_training_job(tmp_path, frame=lagged_frame(), type="lstm")
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    result = cli("retrain", "j1")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "need PyTorch, which is not installed" in result.stderr
    assert cli("jobs", "list").exit_code == 0
