"""The single-model families: LightGBM, and PyTorch's LSTM and Transformer (the members an
ensemble is made of). Each library is imported when a model of its family is made or loaded."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from retrain_cli.core.errors import NotAvailableError
from retrain_cli.trainers.base import FakeTrainer, Trainer

TORCH_FAMILIES = ("lstm", "transformer", "ensemble")
INSTALL_TORCH = (
    "install PyTorch to train it: pip install torch==2.13.0 (the CPU build), "
    "then pip install 'retrain-cli[torch]'"
)


def new_trainer(model_type: str, hyperparameters: dict[str, Any]) -> Trainer:
    """A fresh LightGBM, LSTM or Transformer trainer."""
    params = dict(hyperparameters)
    device = params.pop("device", "auto")
    if model_type == "lightgbm":
        # here, not at import: LightGBM and PyTorch load only for the family that needs them
        from retrain_cli.trainers.lightgbm_trainer import LightGBMTrainer

        return LightGBMTrainer(params)
    require_torch(model_type)
    if model_type in ("lstm", "transformer"):
        # here, not at import: PyTorch loads only for a sequence model
        from retrain_cli.trainers.torch_trainer import SequenceTrainer

        return SequenceTrainer(model_type, params, device)
    raise NotAvailableError(f"unknown model type {model_type!r}")


def load(model_type: str, directory: Path, manifest: dict[str, Any]) -> Trainer:
    """A single-model trainer saved in a verified artifact directory."""
    if manifest.get("trainer") == "fake":
        return FakeTrainer.load(directory, manifest)
    if model_type == "lightgbm":
        # here, not at import: LightGBM and PyTorch load only for the family that needs them
        from retrain_cli.trainers.lightgbm_trainer import LightGBMTrainer

        return LightGBMTrainer.load(directory, manifest)
    require_torch(model_type)
    if model_type in ("lstm", "transformer"):
        # here, not at import: PyTorch loads only for a sequence model
        from retrain_cli.trainers.torch_trainer import SequenceTrainer

        return SequenceTrainer.load(directory, manifest)
    raise NotAvailableError(f"cannot load a {model_type!r} artifact")


def require_torch(model_type: str) -> None:
    if importlib.util.find_spec("torch") is None:
        raise NotAvailableError(
            f"{model_type} models need PyTorch, which is not installed: {INSTALL_TORCH}"
        )
