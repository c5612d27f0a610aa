"""LSTM and Transformer sequence models on PyTorch (the only module that imports torch).

Each row is predicted from the window of the `sequence_length` rows ending at it, so the first
`sequence_length - 1` rows of any frame get no prediction (NaN). Features are standardised with
the training split's mean and std, saved with the model. The head follows the job's task: one
logit and binary cross-entropy (binary), one logit per class and cross-entropy, predicting the
softmax (multiclass), or one value and the `loss` (`mse` or `huber`) on the target standardised
like the features, predicting in the target's units (regression). Artifacts: the `state_dict`
saved with `torch.save` and loaded with `weights_only=True`, beside `model.json` (architecture and
preprocessing) — never a pickled module.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrain_cli.data.training import TrainingData
from retrain_cli.trainers.base import TrainingContext

if TYPE_CHECKING:
    import pandas as pd
    import torch

STATE_FILE, CONFIG_FILE = "model.pt", "model.json"
DEFAULTS: dict[str, Any] = {
    "sequence_length": 32,
    "hidden_size": 32,
    "num_layers": 1,
    "d_model": 32,
    "nhead": 4,
    "dropout": 0.1,
    "max_epochs": 20,
    "batch_size": 64,
    "learning_rate": 0.001,
    "patience": 3,
    "validation_fraction": 0.2,
    "incremental_epochs": 3,
    "seed": 0,
    "task": "binary",
    "num_class": 1,
    "loss": "mse",
}
ARCHITECTURE = (
    "kind",
    "task",
    "num_class",
    "n_features",
    "sequence_length",
    "hidden_size",
    "num_layers",
    "d_model",
    "nhead",
    "dropout",
)


def build(config: dict[str, Any]) -> torch.nn.Module:
    """The network for `config` (kind lstm or transformer): one output per window, or one per
    class (multiclass)."""
    import torch
    from torch import nn

    outputs = config["num_class"] if config.get("task") == "multiclass" else 1

    class LSTMNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers = config["num_layers"]
            self.lstm = nn.LSTM(
                config["n_features"],
                config["hidden_size"],
                layers,
                batch_first=True,
                dropout=config["dropout"] if layers > 1 else 0.0,
            )
            self.head = nn.Linear(config["hidden_size"], outputs)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            output, _ = self.lstm(x)
            return _squeezed(self.head(output[:, -1]))

    class TransformerNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            d = config["d_model"]
            self.embed = nn.Linear(config["n_features"], d)
            self.position = nn.Parameter(torch.zeros(config["sequence_length"], d))
            layer = nn.TransformerEncoderLayer(
                d,
                config["nhead"],
                dim_feedforward=2 * d,
                dropout=config["dropout"],
                batch_first=True,
            )
            self.encoder = nn.TransformerEncoder(
                layer, config["num_layers"], enable_nested_tensor=False
            )
            self.head = nn.Linear(d, outputs)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.encoder(self.embed(x) + self.position)
            return _squeezed(self.head(h[:, -1]))

    def _squeezed(out: torch.Tensor) -> torch.Tensor:
        return out.squeeze(-1) if outputs == 1 else out

    return LSTMNet() if config["kind"] == "lstm" else TransformerNet()


def _loss(config: dict[str, Any], loss: str) -> Any:
    from torch import nn

    task = config.get("task", "binary")
    if task == "multiclass":
        return nn.CrossEntropyLoss()
    if task == "regression":
        return nn.HuberLoss() if loss == "huber" else nn.MSELoss()
    return nn.BCEWithLogitsLoss()


class SequenceTrainer:
    """`fit` trains from scratch, or for `incremental_epochs` from `init_from`'s weights."""

    def __init__(self, kind: str, hyperparameters: dict[str, Any], device: str = "auto") -> None:
        self.name = kind
        self.hyperparameters = {**DEFAULTS, **hyperparameters}
        self.device = device

    def fit(
        self, data: TrainingData, context: TrainingContext, init_from: Path | None = None
    ) -> SequenceTrainer:
        import torch

        hp = self.hyperparameters
        if hp.get("num_threads"):
            torch.set_num_threads(int(hp["num_threads"]))  # this retrain's share of the cores
        torch.manual_seed(hp["seed"])
        if init_from is not None:
            self._load(init_from)
            epochs = hp["incremental_epochs"]
        else:
            features = _numeric(data.features)
            self.mean_ = features.mean(axis=0)
            self.std_ = np.where(features.std(axis=0) > 1e-12, features.std(axis=0), 1.0)
            target = data.target
            regression = hp["task"] == "regression"
            self.target_scale_ = (
                (float(target.mean()), float(target.std()) if target.std() > 1e-12 else 1.0)
                if regression
                else (0.0, 1.0)
            )
            self.config_ = {
                "kind": self.name,
                "n_features": features.shape[1],
                **{k: hp[k] for k in ARCHITECTURE if k in hp},
                "features": [str(c) for c in data.features.columns],
            }
            self.model_ = build(self.config_)
            epochs = hp["max_epochs"]
        centre, scale = self.target_scale_
        y = (data.target[self.config_["sequence_length"] - 1 :] - centre) / scale
        self._train(self._windows(data.features), y, epochs, context)
        return self

    def _train(
        self,
        x: np.ndarray[Any, Any],
        y: np.ndarray[Any, Any],
        epochs: int,
        context: TrainingContext,
    ) -> None:
        import torch

        hp = self.hyperparameters
        device = self._device()
        model = self.model_.to(device)
        n_valid = max(1, int(len(x) * hp["validation_fraction"])) if len(x) > 10 else 0
        # class indices for cross-entropy; values (or 0/1) for the others
        kind = torch.long if self.config_.get("task") == "multiclass" else torch.float32
        train_x, train_y = (
            torch.as_tensor(x[: len(x) - n_valid]),
            torch.as_tensor(y[: len(y) - n_valid], dtype=kind),
        )
        valid_x, valid_y = (
            torch.as_tensor(x[len(x) - n_valid :]),
            torch.as_tensor(y[len(y) - n_valid :], dtype=kind),
        )
        optimiser = torch.optim.Adam(model.parameters(), lr=hp["learning_rate"])
        loss_fn = _loss(self.config_, hp["loss"])
        generator = torch.Generator().manual_seed(hp["seed"])
        best, best_state, stale = math.inf, None, 0
        for epoch in range(1, epochs + 1):
            model.train()
            order = torch.randperm(len(train_x), generator=generator)
            for start in range(0, len(order), hp["batch_size"]):
                batch = order[start : start + hp["batch_size"]]
                optimiser.zero_grad()
                loss = loss_fn(model(train_x[batch].to(device)), train_y[batch].to(device))
                loss.backward()
                optimiser.step()
                context.step(epoch - 1, epochs)  # each batch: a cancel or timeout stops it soon
            context.step(epoch, epochs)
            if n_valid == 0:
                continue
            model.eval()
            with torch.no_grad():
                valid_loss = float(loss_fn(model(valid_x.to(device)), valid_y.to(device)))
            if valid_loss < best - 1e-6:
                best, stale = valid_loss, 0
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
                if stale >= hp["patience"]:
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
        self.model_ = model.cpu()

    def predict(self, features: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]:
        import torch

        length, task = self.config_["sequence_length"], self.config_.get("task", "binary")
        rows = len(features)
        scores = np.full(
            (rows, self.config_["num_class"]) if task == "multiclass" else rows, np.nan
        )
        if len(features) < length:
            return scores
        self.model_.eval()
        with torch.no_grad():
            outputs = torch.cat(
                [
                    self.model_(torch.as_tensor(chunk))
                    for chunk in np.array_split(
                        self._windows(features), max(1, (len(features) - length + 1) // 4096 + 1)
                    )
                ]
            )
        if task == "multiclass":
            predicted = torch.softmax(outputs, dim=-1).numpy()
        elif task == "regression":
            centre, scale = self.target_scale_
            predicted = outputs.numpy().astype(np.float64) * scale + centre
        else:
            predicted = torch.sigmoid(outputs).numpy()
        scores[length - 1 :] = predicted.astype(np.float64)
        return scores

    def _windows(self, features: pd.DataFrame) -> np.ndarray[Any, Any]:
        """(n - L + 1, L, F) float32 windows of the standardised features, ending at each row."""
        length = (
            self.config_["sequence_length"]
            if hasattr(self, "config_")
            else (self.hyperparameters["sequence_length"])
        )
        values = ((_numeric(features) - self.mean_) / self.std_).astype(np.float32)
        if len(values) < length:
            return np.empty((0, length, values.shape[1]), dtype=np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(values, length, axis=0)
        return np.ascontiguousarray(windows.transpose(0, 2, 1))

    def _device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def save(self, directory: Path) -> str:
        import torch

        torch.save(self.model_.state_dict(), directory / STATE_FILE)
        config = {
            **self.config_,
            "mean": self.mean_.tolist(),
            "std": self.std_.tolist(),
            "target_scale": list(self.target_scale_),
        }
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        return STATE_FILE

    def _load(self, directory: Path) -> None:
        import torch

        config = json.loads((directory / CONFIG_FILE).read_text())
        self.mean_, self.std_ = np.array(config.pop("mean")), np.array(config.pop("std"))
        centre, scale = config.pop("target_scale", (0.0, 1.0))
        self.target_scale_ = (float(centre), float(scale))
        self.config_ = config
        self.model_ = build(config)
        state = torch.load(directory / STATE_FILE, weights_only=True, map_location="cpu")
        self.model_.load_state_dict(state)

    @classmethod
    def load(cls, directory: Path, manifest: dict[str, Any]) -> SequenceTrainer:
        trainer = cls(manifest["trainer"], manifest.get("hyperparameters", {}), device="cpu")
        trainer._load(directory)
        return trainer


def _numeric(features: pd.DataFrame) -> np.ndarray[Any, Any]:
    """Numeric features as float64; categorical ones by their category codes."""
    import pandas as pd

    columns = [
        features[c].cat.codes.to_numpy(dtype=np.float64, na_value=np.nan)
        if isinstance(features[c].dtype, pd.CategoricalDtype)
        else np.nan_to_num(features[c].to_numpy(dtype=np.float64, na_value=np.nan))
        for c in features.columns
    ]
    return np.column_stack(columns)
