"""Model families behind one small interface (see `base.Trainer`)."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

from retrain_cli.core.errors import NotAvailableError
from retrain_cli.trainers.base import Trainer

TORCH_FAMILIES = ("lstm", "transformer", "ensemble")
INSTALL_TORCH = (
    "install PyTorch to train it: pip install torch==2.13.0 (the CPU build), "
    "then pip install 'retrain-cli[torch]'"
)


def preload(modules: tuple[str, ...]) -> None:
    """Import a trainer's heavy libraries (its `modules`)."""
    for name in modules:
        importlib.import_module(name)


def trainer_for(model_type: str, hyperparameters: dict[str, Any]) -> Trainer:
    """A fresh trainer of the job's family."""
    params = dict(hyperparameters)
    device = params.pop("device", "auto")
    if model_type == "lightgbm":
        from retrain_cli.trainers.lightgbm_trainer import LightGBMTrainer

        return LightGBMTrainer(params)
    _require_torch(model_type)
    if model_type in ("lstm", "transformer"):
        from retrain_cli.trainers.torch_trainer import SequenceTrainer

        return SequenceTrainer(model_type, params, device)
    if model_type == "ensemble":
        from retrain_cli.trainers.ensemble_trainer import EnsembleTrainer

        return EnsembleTrainer(params)
    raise NotAvailableError(f"unknown model type {model_type!r}")


def load_trainer(model_type: str, directory: Path, manifest: dict[str, Any]) -> Trainer:
    """The trainer saved in a verified artifact directory."""
    trainer = manifest.get("trainer")
    if trainer == "fake":
        from retrain_cli.trainers.base import FakeTrainer

        return FakeTrainer.load(directory, manifest)
    if model_type == "lightgbm":
        from retrain_cli.trainers.lightgbm_trainer import LightGBMTrainer

        return LightGBMTrainer.load(directory, manifest)
    _require_torch(model_type)
    if model_type in ("lstm", "transformer"):
        from retrain_cli.trainers.torch_trainer import SequenceTrainer

        return SequenceTrainer.load(directory, manifest)
    if model_type == "ensemble":
        from retrain_cli.trainers.ensemble_trainer import EnsembleTrainer

        return EnsembleTrainer.load(directory, manifest)
    raise NotAvailableError(f"cannot load a {model_type!r} artifact")


def _require_torch(model_type: str) -> None:
    if importlib.util.find_spec("torch") is None:
        raise NotAvailableError(
            f"{model_type} models need PyTorch, which is not installed: {INSTALL_TORCH}"
        )
