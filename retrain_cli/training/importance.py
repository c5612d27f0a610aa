"""What each feature is worth to a trained model, recorded with its version: the share of the
model's importance each feature carries (the shares sum to 1; all 0 when nothing mattered).

- LightGBM: each feature's share of the total gain of its splits (`feature_importance("gain")`).
- Every other family (LSTM, Transformer, ensemble): permutation importance on the hold-out. The
  newest `MAX_ROWS` rows of the hold-out (contiguous, so that a sequence model's windows stay
  windows) are scored as they are and with one feature's values shuffled (a fixed seed); a
  feature's importance is how much the job's primary metric got worse, clipped at 0.

Drift checks with `drift.weighting: importance` weigh each feature by these shares.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from retrain_cli.core.choices import better
from retrain_cli.data.training import Prepared, TrainingData
from retrain_cli.trainers.base import Trainer
from retrain_cli.trainers.lightgbm_trainer import LightGBMTrainer
from retrain_cli.training import evaluation

if TYPE_CHECKING:
    from retrain_cli.jobs.store import EffectiveJob

MAX_ROWS = 2000
SEED = 0


def feature_importance(
    job: EffectiveJob, trainer: Trainer, prepared: Prepared[Any]
) -> dict[str, float]:
    """Each feature's share of the model's importance (see the module's docstring)."""
    if isinstance(trainer, LightGBMTrainer):
        raw = trainer.booster_.feature_importance(importance_type="gain")
    else:
        raw = permutation(job, trainer, prepared)
    return shares(prepared.features, raw)


def shares(features: list[str], raw: Any) -> dict[str, float]:
    """`raw` importance, negative values clipped to 0, as shares summing to 1 (all 0 when
    nothing is positive)."""
    clipped = np.clip(np.nan_to_num(np.asarray(raw, dtype=np.float64)), 0.0, None)
    total = float(clipped.sum())
    values = clipped / total if total > 0 else clipped
    return {name: float(value) for name, value in zip(features, values, strict=True)}


def permutation(job: EffectiveJob, trainer: Trainer, prepared: Prepared[Any]) -> Any:
    """How much the primary metric gets worse when each feature's values are shuffled over the
    newest hold-out rows (0 where it is undefined)."""
    holdout = prepared.holdout
    rows = min(len(holdout.target), MAX_ROWS)
    features = holdout.features.iloc[-rows:]
    sample = replace(
        prepared,
        holdout=TrainingData(features, holdout.target[-rows:]),
        holdout_returns=(
            prepared.holdout_returns[-rows:] if prepared.holdout_returns is not None else None
        ),
    )
    metric = str(job.primary_metric)
    sign = 1.0 if better(metric) == "higher" else -1.0

    def score(frame: Any) -> float | None:
        found = evaluation.holdout_metrics(job, sample, trainer.predict(frame)).values
        return found.get(metric)

    base = score(features)
    rng = np.random.default_rng(SEED)
    drops = []
    for name in prepared.features:
        column = features[name]
        shuffled = features.assign(
            **{name: column.iloc[rng.permutation(len(column))].set_axis(column.index)}
        )
        value = score(shuffled)
        drops.append(0.0 if base is None or value is None else sign * (base - value))
    return np.array(drops)
