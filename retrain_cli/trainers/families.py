"""Every model family behind one small interface (see `base.Trainer`): made by its type, loaded
from its verified artifact directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain_cli.core.errors import JobSpecError
from retrain_cli.trainers import single
from retrain_cli.trainers.base import Trainer

if TYPE_CHECKING:
    from retrain_cli.jobs.spec import JobSpec


def trainer_for(model_type: str, hyperparameters: dict[str, Any]) -> Trainer:
    """A fresh trainer of the job's family."""
    if model_type == "ensemble":
        single.require_torch(model_type)
        # here, not at import: an ensemble loads both LightGBM and PyTorch
        from retrain_cli.trainers.ensemble_trainer import EnsembleTrainer

        return EnsembleTrainer({k: v for k, v in hyperparameters.items() if k != "device"})
    return single.new_trainer(model_type, hyperparameters)


def load_trainer(model_type: str, directory: Path, manifest: dict[str, Any]) -> Trainer:
    """The trainer saved in a verified artifact directory."""
    if model_type == "ensemble" and manifest.get("trainer") != "fake":
        single.require_torch(model_type)
        # here, not at import: an ensemble loads both LightGBM and PyTorch
        from retrain_cli.trainers.ensemble_trainer import EnsembleTrainer

        return EnsembleTrainer.load(directory, manifest)
    return single.load(model_type, directory, manifest)


def check_hyperparameters(spec: JobSpec) -> None:
    """Refuse at `jobs apply` what a library would refuse at the first retrain: each LightGBM
    model's parameters (the job's, or an ensemble member's) are checked by LightGBM."""
    # here, not at import: only an apply with LightGBM parameters loads LightGBM to check them
    from retrain_cli.trainers.lightgbm_trainer import refused

    models = [("hyperparameters", spec.type, spec.hyperparameters)]
    models += [
        (f"members.{m.type}.hyperparameters", m.type, m.hyperparameters)
        for m in spec.members
        if not isinstance(m, str)
    ]
    task: dict[str, Any] = {}
    if spec.task != "binary":
        task["task"] = str(spec.task)
    if spec.classes:
        task["num_class"] = len(spec.classes)
    for where, model_type, hyperparameters in models:
        if model_type == "lightgbm" and hyperparameters:
            problem = refused({**hyperparameters, **task})
            if problem:
                raise JobSpecError(f"job {spec.name!r}: {where}: LightGBM refuses them: {problem}")
