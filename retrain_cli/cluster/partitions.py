"""What each Dask worker does with its partition of a `compute: dask` job's training rows: read
it, describe it, find its time keys, and split it into training and hold-out rows exactly as a
local run orders and splits the whole (`cluster.training` schedules these tasks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from retrain_cli.data import streaming
from retrain_cli.data import training as training_data

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class PartitionSummary:
    """What one partition of the training rows holds, described on its worker."""

    rows: int
    sha256: str  # over the partition's rows (`data.training.fingerprint`)
    categorical: list[str]  # its categorical features
    uniques: dict[str, list[Any]]  # each categorical feature's values
    span: tuple[Any, Any] | None  # the time column's least and greatest value; None: no rows


def read_part(
    part: streaming.Partition, columns: list[str], target: training_data.Target
) -> pd.DataFrame:
    import pandas as pd
    import pyarrow as pa

    batches = list(streaming.partition_batches(part, "train", columns))
    if not batches:  # an empty file of a dataset: no rows, as in a local read
        return pd.DataFrame(columns=columns)
    frame = training_data.labelled(
        pa.Table.from_batches(batches).to_pandas(split_blocks=True), target
    )
    return frame.reset_index(drop=True)


def describe(
    frame: pd.DataFrame, features: list[str], declared: list[str], time_column: str | None
) -> PartitionSummary:
    """A partition's rows, digest, time range, categorical features and their values."""
    categorical = training_data.categorical_features(frame, features, declared)
    return PartitionSummary(
        rows=len(frame),
        sha256=training_data.fingerprint(frame, None)["sha256"],
        categorical=categorical,
        uniques={name: frame[name].dropna().unique().tolist() for name in categorical},
        span=(
            (frame[time_column].min(), frame[time_column].max())
            if time_column and len(frame)
            else None
        ),
    )


def time_keys(frame: pd.DataFrame, time_column: str) -> np.ndarray[Any, Any]:
    """The partition's time column as numbers that sort as a local run sorts it: timestamps
    as int64 nanoseconds, missing values last."""
    import pandas as pd

    order = training_data.time_order(frame[time_column], time_column)
    if pd.api.types.is_datetime64_any_dtype(order.dtype):
        if getattr(order.dt, "tz", None) is not None:
            order = order.dt.tz_convert(None)
        keys: np.ndarray[Any, Any] = order.to_numpy(dtype="datetime64[ns]").view(np.int64).copy()
        keys[order.isna().to_numpy()] = np.iinfo(np.int64).max
    elif pd.api.types.is_integer_dtype(order.dtype) and not order.isna().any():
        keys = order.to_numpy(dtype=np.int64)
    else:
        keys = order.to_numpy(dtype=np.float64, na_value=np.inf)
    return keys


def sorted_keys(frame: pd.DataFrame, time_column: str) -> np.ndarray[Any, Any]:
    return np.sort(time_keys(frame, time_column))


def count_at(keys: np.ndarray[Any, Any], value: Any) -> tuple[int, int]:
    below = int(np.searchsorted(keys, value, "left"))
    return below, int(np.searchsorted(keys, value, "right")) - below


def kept_in_training(
    frame: pd.DataFrame, kept: int, time_column: str | None
) -> np.ndarray[Any, Any]:
    """Which rows of a partition stay in training: its first `kept` rows in time order (ties
    in file order)."""
    mask = np.zeros(len(frame), dtype=bool)
    if time_column is None:
        mask[:kept] = True
    else:
        mask[np.argsort(time_keys(frame, time_column), kind="stable")[:kept]] = True
    return mask


def holdout_rows(frame: pd.DataFrame, kept: int, time_column: str | None) -> pd.DataFrame:
    return frame[~kept_in_training(frame, kept, time_column)]


def training_rows(
    frame: pd.DataFrame,
    kept: int,
    columns: list[str],
    time_column: str | None,
    categories: dict[str, Any],
) -> pd.DataFrame:
    import pandas as pd

    rows = frame.loc[kept_in_training(frame, kept, time_column), columns].reset_index(drop=True)
    for name, known in categories.items():
        rows[name] = rows[name].astype(pd.CategoricalDtype(known))
    return rows


def empty(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.head(0)


def frame_column(frame: pd.DataFrame, name: str) -> Any:
    import pyarrow as pa

    return pa.Array.from_pandas(frame[name])
