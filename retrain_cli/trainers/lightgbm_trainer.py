"""LightGBM: gradient-boosted trees, saved as LightGBM's own text model (never a pickle)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrain_cli.core.errors import JobSpecError
from retrain_cli.data.training import TrainingData
from retrain_cli.trainers.base import TrainingContext
from retrain_cli.trainers.native import native_stderr_captured

if TYPE_CHECKING:
    import pandas as pd

MODEL_FILE = "model.txt"
DEFAULTS = {"verbosity": -1, "seed": 0, "deterministic": True}
OBJECTIVE = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}
HISTOGRAM_LAYOUTS = ("force_col_wise", "force_row_wise")
MONOTONE = ("monotone_constraints", "monotone_constraint", "mc", "monotonic_cst")  # its aliases


def refused(hyperparameters: dict[str, Any]) -> str | None:
    """What LightGBM itself says is wrong with a job's parameters (`max_depth: "abc"`,
    `bagging_fraction: 7`), without training: its configuration is checked, by its own rules,
    when a dataset is built. None when it accepts them."""
    import lightgbm as lgb

    try:
        params = LightGBMTrainer(hyperparameters).params
    except (TypeError, ValueError) as exc:
        return f"num_boost_round: {exc}"
    try:
        with native_stderr_captured():
            lgb.Dataset(np.zeros((2, 1)), label=np.array([0.0, 1.0]), params=params).construct()
    except lgb.basic.LightGBMError as exc:  # "... at config_auto.cpp, line 368 ." is noise
        return re.sub(r"\s+at \S+, line \d+\s*\.?\s*$", "", " ".join(str(exc).split()))
    return None


def refuse_monotone_categories(
    params: dict[str, Any], features: Sequence[str], categorical: Sequence[str]
) -> None:
    """One line for a monotone constraint on a categorical feature, before LightGBM sees it:
    LightGBM stops the whole process there (a fatal error in its C++ core, not an exception),
    which would leave a run with no outcome and, on a cluster, kill the worker."""
    for key in MONOTONE:
        value = params.get(key)
        if value is None:
            continue
        try:
            listed = value.split(",") if isinstance(value, str) else list(value)
            constraints = [int(c) for c in listed]
        except (TypeError, ValueError):
            continue  # LightGBM's own check names a malformed list
        bad = [f for f, c in zip(features, constraints, strict=False) if c and f in categorical]
        if bad:
            raise JobSpecError(
                f"hyperparameters.{key}: LightGBM cannot keep its output monotone in a "
                f"categorical feature ({', '.join(bad)}): set {'its' if len(bad) == 1 else 'their'}"
                " constraint to 0"
            )


class LightGBMTrainer:
    """`num_boost_round` rounds of boosting; `init_from` continues from a parent's model file.
    The job's task picks the default objective (`binary`, `multiclass` with `num_class`, or
    `regression`); a multiclass model predicts a row of class probabilities per row."""

    name = "lightgbm"

    def __init__(self, hyperparameters: dict[str, Any]) -> None:
        params = dict(hyperparameters)
        self.num_boost_round = int(params.pop("num_boost_round", 200))
        task = str(params.pop("task", "binary"))
        self.regression = task == "regression"
        self.params = {**DEFAULTS, "objective": OBJECTIVE[task], **params}
        if self.params["deterministic"] and not any(k in params for k in HISTOGRAM_LAYOUTS):
            # LightGBM's documentation asks for one histogram layout to be fixed with
            # `deterministic`: left to itself, it times both on the first round and keeps the
            # faster, a choice a busy host can flip and that sums histograms in another order.
            self.params["force_col_wise"] = True

    def fit(
        self, data: TrainingData, context: TrainingContext, init_from: Path | None = None
    ) -> LightGBMTrainer:
        import lightgbm as lgb

        total = self.num_boost_round
        columns = [str(c) for c in data.features.columns]
        refuse_monotone_categories(self.params, columns, _categorical(data.features))

        def report(env: Any) -> None:
            context.step(env.iteration - env.begin_iteration + 1, total)

        dataset = lgb.Dataset(
            _lightgbm_input(data.features),
            label=data.target,
            feature_name=columns,
            free_raw_data=False,
        )
        with native_stderr_captured():
            self.booster_ = lgb.train(
                self.params,
                dataset,
                num_boost_round=total,
                init_model=str(init_from / MODEL_FILE) if init_from else None,
                callbacks=[report],
            )
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]:
        # a row-major matrix: LightGBM scores row by row
        data = (
            features.to_numpy(dtype=np.float64, na_value=np.nan)
            if _all_numeric(features)
            else features
        )
        with native_stderr_captured():
            return np.asarray(self.booster_.predict(data), dtype=np.float64)

    def save(self, directory: Path) -> str:
        self.booster_.save_model(str(directory / MODEL_FILE))
        return MODEL_FILE

    @classmethod
    def load(cls, directory: Path, manifest: dict[str, Any]) -> LightGBMTrainer:
        import lightgbm as lgb

        trainer = cls(manifest.get("hyperparameters", {}))
        with native_stderr_captured():
            trainer.booster_ = lgb.Booster(model_file=str(directory / MODEL_FILE))
        return trainer


def _lightgbm_input(features: pd.DataFrame) -> Any:
    """An Arrow table of float64 columns when every feature is numeric; the frame when
    categories need LightGBM's pandas path.

    Each column is converted as `DataFrame.to_numpy(dtype=float64)` would (missing -> NaN) and
    wrapped without a copy: LightGBM bins Arrow columns faster than a row-major matrix and grows
    the same trees (docs/benchmarks.md).
    """
    import pyarrow as pa

    if _all_numeric(features):
        return pa.table(
            [
                pa.array(features[c].to_numpy(dtype=np.float64, na_value=np.nan))
                for c in features.columns
            ],
            names=[str(c) for c in features.columns],
        )
    return features


def _categorical(features: pd.DataFrame) -> list[str]:
    """The columns LightGBM's pandas path treats as categorical."""
    import pandas as pd

    return [str(c) for c, t in features.dtypes.items() if isinstance(t, pd.CategoricalDtype)]


def _all_numeric(features: pd.DataFrame) -> bool:
    """No column needs LightGBM's pandas path (categories)."""
    import pandas as pd

    return all(
        pd.api.types.is_numeric_dtype(t) and not isinstance(t, pd.CategoricalDtype)
        for t in features.dtypes
    )
