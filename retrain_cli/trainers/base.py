"""The trainer interface, the context a training run reports to, and a fake for tests.

trainer.fit(data, context, init_from)  -> trainer   (learned state in attributes ending _)
trainer.predict(features)              -> scores in [0, 1], one per row
trainer.save(directory)                -> writes model files (never pickles)
Trainer.load(directory, manifest)      -> a trainer ready to predict
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from retrain_cli.core.errors import RetrainError
from retrain_cli.data.training import TrainingData

if TYPE_CHECKING:
    import pandas as pd


class TrainingTimeout(RetrainError):
    """Training ran past the job's timeout."""


@dataclass
class TrainingContext:
    """What a trainer reports to each step: progress, and the deadline it must not pass."""

    deadline: float = float("inf")  # time.monotonic() value
    on_progress: Callable[[int, int], None] = field(default=lambda done, total: None)
    clock: Callable[[], float] = time.monotonic

    def step(self, done: int, total: int) -> None:
        """Report progress; raise TrainingTimeout once the deadline has passed."""
        self.on_progress(done, total)
        if self.clock() > self.deadline:
            raise TrainingTimeout("timeout: training ran past the job's timeout")


class Trainer(Protocol):
    name: str

    def fit(
        self, data: TrainingData, context: TrainingContext, init_from: Path | None = None
    ) -> Trainer: ...

    def predict(self, features: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]: ...

    def save(self, directory: Path) -> str:
        """Write the model files; return the primary file's name."""
        ...


class FakeTrainer:
    """Least-squares scores squashed to [0, 1]: instant, deterministic, numeric features only.

    `steps` (default 3) calls to `context.step`, `seconds_per_step` of sleep each, let tests
    exercise progress, timeouts and concurrency without a real model.
    """

    name = "fake"

    def __init__(self, steps: int = 3, seconds_per_step: float = 0.0, bias: float = 0.0) -> None:
        self.steps = steps
        self.seconds_per_step = seconds_per_step
        self.bias = bias

    def fit(
        self, data: TrainingData, context: TrainingContext, init_from: Path | None = None
    ) -> FakeTrainer:
        for step in range(1, self.steps + 1):
            time.sleep(self.seconds_per_step)
            context.step(step, self.steps)
        x = self._design(data.features)
        self.coef_ = np.linalg.lstsq(x, data.target * 2 - 1, rcond=None)[0]
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]:
        raw = self._design(features) @ self.coef_ + self.bias
        scores: np.ndarray[Any, np.dtype[np.float64]] = 1 / (1 + np.exp(-raw))
        return scores

    def save(self, directory: Path) -> str:
        (directory / "fake.json").write_text(json.dumps({"coef": self.coef_.tolist()}))
        return "fake.json"

    @classmethod
    def load(cls, directory: Path, manifest: dict[str, Any]) -> FakeTrainer:
        trainer = cls(bias=float(manifest.get("bias", 0.0)))
        trainer.coef_ = np.array(json.loads((directory / "fake.json").read_text())["coef"])
        return trainer

    @staticmethod
    def _design(features: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]:
        numeric = features.select_dtypes("number").to_numpy(dtype=np.float64, na_value=np.nan)
        return np.column_stack([np.nan_to_num(numeric), np.ones(len(features))])
