"""A window of scored predictions as the performance checks read it: its columns, the rows of
its time window, and its values checked by the job's task (0/1 outcomes and probabilities;
classes and a probability per class that sum to 1; numbers), finite, with times.

A multiclass row's probabilities must sum to 1 within `PROBABILITY_SUM_TOLERANCE` (models
exported in float32 round them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from retrain_cli.core.errors import DataError
from retrain_cli.data.training import class_indices, time_order
from retrain_cli.statistics.performance import FloatArray

if TYPE_CHECKING:
    import pandas as pd

PROBABILITY_SUM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class PredictionColumns:
    time: str | None
    label: str
    score: str  # binary: the probability of a 1; regression: the predicted value
    returns: str | None
    task: str = "binary"
    classes: tuple[str, ...] = ()  # multiclass: the classes, in order,
    probabilities: tuple[str, ...] = ()  # and each one's probability column

    @property
    def predicted(self) -> tuple[str, ...]:
        """The columns that hold a row's prediction."""
        return self.probabilities if self.task == "multiclass" else (self.score,)


def outcomes(frame: pd.DataFrame, columns: PredictionColumns) -> FloatArray:
    """The label column of rows that have one, as the task reads it."""
    name = columns.label
    if columns.task == "multiclass":
        return class_indices(frame[name], columns.classes, name)
    if columns.task == "regression":
        return floats(frame[name], name)
    return labels(frame, name)


def predicted(frame: pd.DataFrame, columns: PredictionColumns) -> FloatArray:
    """The predictions of rows that have them: probabilities (binary), a row of class
    probabilities summing to 1 (multiclass), finite values (regression)."""
    import numpy as np

    if columns.task == "regression":
        return floats(frame[columns.score], columns.score)
    if columns.task == "binary":
        return scores(frame, columns.score)
    rows: FloatArray = np.column_stack([scores(frame, c) for c in columns.probabilities])
    off = np.abs(rows.sum(axis=1) - 1.0) > PROBABILITY_SUM_TOLERANCE
    if off.any():
        raise DataError(
            f"columns {', '.join(columns.probabilities)}: {int(off.sum())} rows' probabilities "
            f"do not sum to 1 (within {PROBABILITY_SUM_TOLERANCE:g})"
        )
    return rows


def timestamps(frame: pd.DataFrame, column: str) -> pd.Series[Any]:
    """The time column as UTC timestamps (text parsed; see `training_data.time_order`)."""
    import pandas as pd

    return pd.to_datetime(time_order(frame[column], column), utc=True)


def window(frame: pd.DataFrame, time_column: str | None, window_s: int | None) -> pd.DataFrame:
    """The rows of the last `window_s` seconds before the newest timestamp."""
    if window_s is None:
        return frame
    if time_column is None:
        raise DataError("a performance window needs the job's time_column")
    import pandas as pd

    times = timestamps(frame, time_column)
    newest = times.max()
    if pd.isna(newest):
        raise DataError(f"column {time_column!r} has no timestamps")
    return frame[times > newest - pd.Timedelta(seconds=window_s)]


def floats(series: pd.Series[Any], name: str) -> FloatArray:
    """A numeric column without missing values as float64, refusing text and infinities."""
    import numpy as np
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(series.dtype):  # bool counts as numeric
        raise DataError(f"column {name!r} must be numeric, not {series.dtype}")
    values: FloatArray = series.to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(values).all():
        raise DataError(f"column {name!r} has infinite values")
    return values


def labels(frame: pd.DataFrame, name: str) -> FloatArray:
    """The outcome column of rows that have one: 0/1 only."""
    import numpy as np

    values = floats(frame[name], name)
    if not set(np.unique(values).tolist()) <= {0.0, 1.0}:
        raise DataError(f"column {name!r} must hold 0/1 outcomes")
    return values


def scores(frame: pd.DataFrame, name: str) -> FloatArray:
    """The score column of rows that have one: probabilities in [0, 1]."""
    values = floats(frame[name], name)
    outside = int(((values < 0) | (values > 1)).sum())
    if outside:
        raise DataError(
            f"column {name!r} has {outside} scores outside [0, 1]: "
            "probabilities are expected, not logits"
        )
    return values


def instant(value: Any) -> datetime | None:
    """A timestamp as an aware UTC datetime (None for a missing one)."""
    import pandas as pd

    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        return None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    result: datetime = stamp.to_pydatetime()
    return result


def span(frame: pd.DataFrame, time_column: str | None) -> tuple[datetime | None, datetime | None]:
    """The first and last timestamp of the rows (None, None without a time column or rows), by
    time: text is parsed first, as the rows were chosen (`2026-11-9` is after `2026-11-10`
    as text)."""
    if time_column is None or not len(frame):
        return None, None
    times = timestamps(frame, time_column)
    return instant(times.min()), instant(times.max())
