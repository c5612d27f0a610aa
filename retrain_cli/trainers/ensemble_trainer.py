"""Ensemble: members trained by their own trainers, combined by a weighted average of their
scores, predicted values or class probability vectors (by the job's task).

Members train on the first part of the training split and are weighted by their skill above
chance on the rest (the validation tail): AUC above 0.5 (binary), one-vs-rest AUC above 0.5
(multiclass), R² above 0 (regression). A row a member cannot score (a sequence model's first
rows) is averaged over the members that can. The artifact nests one directory per member, each
with its own manifest; `ensemble.json` lists them with their manifests' sha256, and the top
manifest covers `ensemble.json`, so one digest verifies every file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrain_cli.data.training import TrainingData, fingerprint
from retrain_cli.statistics import multiclass, performance, regression
from retrain_cli.store import artifacts
from retrain_cli.trainers import single
from retrain_cli.trainers.base import Trainer, TrainingContext

if TYPE_CHECKING:
    import pandas as pd

ENSEMBLE_FILE = "ensemble.json"
VALIDATION_FRACTION = 0.2
TORCH_KEYS = (
    "sequence_length",
    "hidden_size",
    "num_layers",
    "d_model",
    "nhead",
    "dropout",
    "max_epochs",
    "batch_size",
    "learning_rate",
    "patience",
    "validation_fraction",
    "incremental_epochs",
    "seed",
    "loss",
)
SHARED_BY_ALL = ("num_threads", "task", "num_class")  # every member's, whatever its family


class EnsembleTrainer:
    name = "ensemble"

    def __init__(self, hyperparameters: dict[str, Any]) -> None:
        params = dict(hyperparameters)
        self.members = [_member(m) for m in params.pop("members", ["lightgbm", "lstm"])]
        self.task = str(params.get("task", "binary"))
        self.shared = params

    def fit(
        self, data: TrainingData, context: TrainingContext, init_from: Path | None = None
    ) -> EnsembleTrainer:
        n_valid = max(1, int(len(data.target) * VALIDATION_FRACTION))
        train = TrainingData(data.features.iloc[:-n_valid], data.target[:-n_valid])
        valid = TrainingData(data.features.iloc[-n_valid:], data.target[-n_valid:])
        parent = _read_manifest(init_from) if init_from else None
        self.members_: list[dict[str, Any]] = []
        self.trainers_: list[Trainer] = []
        for index, member in enumerate(self.members):
            fingerprint = _fingerprint(data, member)
            reused = _reuse(parent, init_from, index, member, fingerprint)
            trainer = reused or _trainer(member, self.shared).fit(train, context)
            skill = _skill(self.task, valid.target, trainer.predict(valid.features))
            self.trainers_.append(trainer)
            self.members_.append(
                {
                    **member,
                    "fingerprint": fingerprint,
                    "validation_skill": skill,
                    "reused": reused is not None,
                }
            )
        raw = np.array([max(m["validation_skill"], 1e-3) for m in self.members_])
        for member, weight in zip(self.members_, raw / raw.sum(), strict=True):
            member["weight"] = float(weight)
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]:
        # (members, rows) or, with class probabilities, (members, rows, classes)
        scores = np.stack([t.predict(features) for t in self.trainers_])
        finite = np.isfinite(scores)
        member_weights = np.array([m["weight"] for m in self.members_])
        weights = member_weights.reshape(-1, *([1] * (scores.ndim - 1))) * finite
        total = weights.sum(axis=0)
        combined = np.sum(np.nan_to_num(scores) * weights, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            result: np.ndarray[Any, np.dtype[np.float64]] = np.where(
                total > 0, combined / np.where(total > 0, total, 1), np.nan
            )
        return result

    def save(self, directory: Path) -> str:
        listed = []
        for index, (member, trainer) in enumerate(zip(self.members_, self.trainers_, strict=True)):
            folder = directory / "members" / f"{index}-{member['type']}"
            folder.mkdir(parents=True)
            primary = trainer.save(folder)
            manifest = artifacts.write_manifest(
                folder,
                primary,
                {
                    "trainer": trainer.name,
                    "model_type": member["type"],
                    "hyperparameters": _member_hyperparameters(member, self.shared),
                },
            )
            listed.append(
                {
                    **member,
                    "path": f"members/{folder.name}",
                    "sha256": artifacts.sha256_file(manifest),
                }
            )
        (directory / ENSEMBLE_FILE).write_text(json.dumps({"members": listed}, indent=2))
        return ENSEMBLE_FILE

    @classmethod
    def load(cls, directory: Path, manifest: dict[str, Any]) -> EnsembleTrainer:
        """Load every member after verifying its manifest against the recorded digest."""
        trainer = cls(manifest.get("hyperparameters", {}))
        listed = json.loads((directory / ENSEMBLE_FILE).read_text())["members"]
        trainer.members_, trainer.trainers_ = listed, []
        for member in listed:
            folder = directory / member["path"]
            member_manifest = artifacts.verify(folder, member["sha256"])
            trainer.trainers_.append(
                _Subset(single.load(member["type"], folder, member_manifest), member["features"])
            )
        return trainer


def _skill(task: str, target: Any, predicted: Any) -> float:
    """A member's skill above chance on the validation rows it scored (0 when undefined)."""
    scored = np.isfinite(predicted) if predicted.ndim == 1 else np.isfinite(predicted).all(axis=1)
    y, p = target[scored], predicted[scored]
    try:
        if task == "multiclass":
            return multiclass.auc_ovr(y.astype(np.int64), p) - 0.5
        if task == "regression":
            return regression.r2(y, p)
        return performance.auc(y, p) - 0.5
    except performance.Undefined:
        return 0.0


def _member(spec: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(spec, str):
        return {"type": spec, "hyperparameters": {}, "features": None}
    return {
        "type": spec["type"],
        "hyperparameters": spec.get("hyperparameters", {}),
        "features": spec.get("features"),
    }


def _member_hyperparameters(member: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """The ensemble's shared hyperparameters that fit the member's family, then its own."""
    torch_family = member["type"] in ("lstm", "transformer")
    base = {
        k: v
        for k, v in shared.items()
        if k in SHARED_BY_ALL or ((k in TORCH_KEYS) == torch_family and k != "device")
    }
    return {**base, **member["hyperparameters"]}


def _trainer(member: dict[str, Any], shared: dict[str, Any]) -> Trainer:
    if member["type"] == "ensemble":
        raise ValueError("an ensemble member cannot itself be an ensemble")
    return _Subset(
        single.new_trainer(member["type"], _member_hyperparameters(member, shared)),
        member["features"],
    )


class _Subset:
    """A member that sees only its own feature columns (all of them when none are listed)."""

    def __init__(self, inner: Trainer, features: list[str] | None) -> None:
        self.inner, self.features = inner, features
        self.name = inner.name

    def _columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[self.features] if self.features else frame

    def fit(
        self, data: TrainingData, context: TrainingContext, init_from: Path | None = None
    ) -> _Subset:
        self.inner.fit(TrainingData(self._columns(data.features), data.target), context, init_from)
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]:
        return self.inner.predict(self._columns(features))

    def save(self, directory: Path) -> str:
        return self.inner.save(directory)


def _fingerprint(data: TrainingData, member: dict[str, Any]) -> str:
    frame = data.features[member["features"]] if member["features"] else data.features
    frame = frame.assign(__target__=data.target)
    return str(fingerprint(frame, None)["sha256"])


def _read_manifest(directory: Path | None) -> dict[str, Any] | None:
    if directory is None or not (directory / ENSEMBLE_FILE).is_file():
        return None
    result: dict[str, Any] = json.loads((directory / ENSEMBLE_FILE).read_text())
    return result


def _reuse(
    parent: dict[str, Any] | None,
    directory: Path | None,
    index: int,
    member: dict[str, Any],
    fingerprint: str,
) -> Trainer | None:
    """The parent's trained member when its type and input data are unchanged."""
    if parent is None or directory is None or index >= len(parent["members"]):
        return None
    old = parent["members"][index]
    if old["type"] != member["type"] or old.get("fingerprint") != fingerprint:
        return None
    folder = directory / old["path"]
    manifest = artifacts.verify(folder, old["sha256"])
    return _Subset(single.load(old["type"], folder, manifest), member["features"])
