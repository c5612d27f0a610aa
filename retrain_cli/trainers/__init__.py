"""Model families behind one small interface (see `base.Trainer`)."""

from __future__ import annotations

from typing import Any

from retrain_cli.errors import NotAvailableError
from retrain_cli.trainers.base import Trainer


def trainer_for(model_type: str, hyperparameters: dict[str, Any]) -> Trainer:
    """A fresh trainer of the job's family."""
    if model_type == "lightgbm":
        from retrain_cli.trainers.lightgbm_trainer import LightGBMTrainer

        return LightGBMTrainer(hyperparameters)
    raise NotAvailableError(
        f"model type {model_type!r} cannot be retrained yet: this release trains lightgbm "
        "(the PyTorch and ensemble families land with issue #6)"
    )


def load_trainer(model_type: str, directory: Any, manifest: dict[str, Any]) -> Trainer:
    """The trainer saved in a verified artifact directory."""
    if manifest.get("trainer") == "fake":
        from retrain_cli.trainers.base import FakeTrainer

        return FakeTrainer.load(directory, manifest)
    if model_type == "lightgbm":
        from retrain_cli.trainers.lightgbm_trainer import LightGBMTrainer

        return LightGBMTrainer.load(directory, manifest)
    raise NotAvailableError(f"cannot load a {model_type!r} artifact in this release")
