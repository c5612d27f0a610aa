"""A job's training data: load, validate, order by time, split off the hold-out, fingerprint."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

from retrain_cli.core.errors import DataError
from retrain_cli.core.threads import usable_cores
from retrain_cli.data.sources import read_frame

if TYPE_CHECKING:
    import pandas as pd

    from retrain_cli.jobs.store import EffectiveJob

MIN_ROWS = 20
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass
class TrainingData:
    """Features in time order and the target: 0/1 (binary), the class's index into the job's
    classes (multiclass) or the value (regression)."""

    features: pd.DataFrame
    target: np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class Target:
    """How a job's target column is read (plain values: it travels to Dask workers)."""

    column: str
    task: str = "binary"
    classes: tuple[str, ...] = ()

    @classmethod
    def of(cls, job: EffectiveJob) -> Target:
        spec = job.spec
        return cls(spec.target, str(spec.task), tuple(spec.classes or ()))

    def values(self, column: pd.Series[Any]) -> FloatArray:
        """The labels of a column without missing values, checked for the task: 0/1, a known
        class (as its index), or a finite number."""
        name = self.column
        if self.task == "multiclass":
            return class_indices(column, self.classes, name)
        import pandas as pd

        if not pd.api.types.is_numeric_dtype(column.dtype):
            kind = "0/1 labels" if self.task == "binary" else "numbers (a regression target)"
            raise DataError(f"target {name!r} must hold {kind}, not {column.dtype}")
        values: FloatArray = column.to_numpy(dtype=np.float64, na_value=np.nan)
        if self.task == "binary" and not set(np.unique(values).tolist()) <= {0.0, 1.0}:
            raise DataError(f"target {name!r} must hold 0/1 labels")
        if not np.isfinite(values).all():
            raise DataError(f"target {name!r} has infinite values")
        return values


def class_names(column: pd.Series[Any]) -> pd.Series[Any]:
    """Each value as the text that names its class: `2` and `2.0` both name class "2"."""
    import pandas as pd

    if pd.api.types.is_float_dtype(column.dtype):
        whole = column.to_numpy(dtype=np.float64)
        if np.all(np.mod(whole, 1) == 0):
            return pd.Series(whole.astype(np.int64), index=column.index).astype(str)
    return column.astype(str)


def class_indices(column: pd.Series[Any], classes: Sequence[str], name: str) -> FloatArray:
    """Each value's index into `classes`; a value that is not a class is an error naming it."""
    codes = class_names(column).map({c: float(i) for i, c in enumerate(classes)})
    unknown = codes.isna().to_numpy()
    if unknown.any():
        first = column[unknown].iloc[0]
        raise DataError(
            f"column {name!r} holds {first!r}, which is not one of the job's classes "
            f"({', '.join(classes)})"
        )
    indices: FloatArray = np.asarray(codes, dtype=np.float64)
    return indices


RowsT = TypeVar("RowsT")  # where the training rows are: TrainingData here, a cluster's there


@dataclass
class Prepared(Generic[RowsT]):
    """The time-ordered split of one job's training data."""

    features: list[str]
    categorical: list[str]
    train: RowsT  # read only by the backend that prepared them
    holdout: TrainingData
    holdout_returns: FloatArray | None
    fingerprint: dict[str, Any]


def prepare(job: EffectiveJob) -> Prepared[TrainingData]:
    """Load `data.train`, check every column, order by time and split the newest
    `holdout_fraction` of rows off as the hold-out."""
    spec = job.spec
    frame = read_frame(spec.data.train, "train")
    target, time_column, returns = spec.target, spec.time_column, spec.return_column
    features = feature_names(job, list(frame.columns))
    frame = labelled(frame, Target.of(job))
    require_rows(len(frame), target)
    if time_column:
        order = time_order(frame[time_column], time_column)
        if not order.is_monotonic_increasing:
            frame = frame.sort_values(time_column, kind="stable", key=lambda _: order)
    frame = frame.reset_index(drop=True)
    categorical = categorical_features(frame, features, spec.categorical)
    for column in categorical:
        frame[column] = frame[column].astype("category")
    n_holdout = holdout_rows(len(frame), spec.holdout_fraction)
    train, holdout = frame.iloc[:-n_holdout], frame.iloc[-n_holdout:]
    return Prepared(
        features=list(features),
        categorical=categorical,
        train=data_of(train, features, target),
        holdout=data_of(holdout, features, target),
        holdout_returns=returns_of(holdout, returns),
        fingerprint=fingerprint(frame, time_column),
    )


def feature_names(job: EffectiveJob, present: Sequence[str]) -> list[str]:
    """The job's features (default: every column but the target, time, return and score
    columns), after checking that every column the job names is in the data."""
    spec = job.spec
    features = spec.features or [c for c in present if c not in spec.special_columns]
    named = [spec.target, spec.time_column, spec.return_column, *features]
    missing = [c for c in named if c and c not in present]
    if missing:
        raise DataError(f"train data has no column {', '.join(map(repr, missing))}")
    if not features:
        raise DataError("train data has no feature columns")
    return list(features)


def labelled(frame: pd.DataFrame, target: Target) -> pd.DataFrame:
    """The rows with a label, each checked as the task reads it (`Target.values`); a multiclass
    target is replaced by its classes' indices."""
    name = target.column
    if frame[name].isna().any():
        frame = frame.dropna(subset=[name])
    values = target.values(frame[name])
    # a class becomes its index; other labels keep their dtype (and the data its fingerprint)
    return frame.assign(**{name: values}) if target.task == "multiclass" else frame


def require_rows(rows: int, target: str) -> None:
    if rows == 0:
        raise DataError(f"target {target!r} has no values in the train data")
    if rows < MIN_ROWS:
        raise DataError(f"train data has {rows} labelled rows; at least {MIN_ROWS} needed")


def holdout_rows(rows: int, fraction: float) -> int:
    return max(1, round(rows * fraction))


def returns_of(holdout: pd.DataFrame, returns: str | None) -> FloatArray | None:
    return holdout[returns].to_numpy(dtype=np.float64, na_value=np.nan) if returns else None


def time_order(column: pd.Series[Any], name: str) -> pd.Series[Any]:
    """The time column as something that orders by time: timestamps and numbers as they are,
    text parsed as timestamps (text would sort as text); unparsable values are an error."""
    import pandas as pd

    kind = column.dtype
    if pd.api.types.is_datetime64_any_dtype(kind) or pd.api.types.is_numeric_dtype(kind):
        return column
    parsed = pd.to_datetime(column, errors="coerce", utc=True, format="mixed")
    bad = int((parsed.isna() & column.notna()).sum())
    if bad:
        raise DataError(f"time column {name!r} has {bad} values that are not timestamps")
    return parsed


def categorical_features(
    frame: pd.DataFrame, features: list[str], declared: list[str]
) -> list[str]:
    """The features LightGBM treats as categories: declared, text or boolean."""
    import pandas as pd

    return [
        c
        for c in features
        if c in declared
        or not pd.api.types.is_numeric_dtype(frame[c].dtype)
        or pd.api.types.is_bool_dtype(frame[c].dtype)
    ]


def data_of(frame: pd.DataFrame, features: list[str], target: str) -> TrainingData:
    return TrainingData(frame[features], frame[target].to_numpy(dtype=np.float64, na_value=np.nan))


def fingerprint(frame: pd.DataFrame, time_column: str | None) -> dict[str, Any]:
    """Rows, time range, and a sha256 over every column's name, dtype and the sha256 of its
    values in row order.

    Numeric columns are hashed from their raw bytes; others through pandas' row hashes, so the
    same data gives the same digest in every process. Each column has its own digest so that
    the columns hash on every core at once (hashlib releases the GIL).
    """
    from concurrent.futures import ThreadPoolExecutor

    payloads = [_column_bytes(frame[name]) for name in frame.columns]
    with ThreadPoolExecutor(max_workers=usable_cores()) as pool:
        digests = list(pool.map(lambda payload: hashlib.sha256(payload).digest(), payloads))
    digest = hashlib.sha256()
    for name, column_digest in zip(frame.columns, digests, strict=True):
        digest.update(f"{name}\0{frame[name].dtype}\0".encode())
        digest.update(column_digest)
    result: dict[str, Any] = {"rows": len(frame), "sha256": digest.hexdigest()}
    if time_column:
        times = time_order(frame[time_column], time_column)  # by time, not as text sorts
        result["time_min"], result["time_max"] = str(times.min()), str(times.max())
    return result


def _column_bytes(column: pd.Series[Any]) -> Any:
    """The raw bytes of a numeric column (no copy), or pandas' row hashes of any other."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column.dtype) and not isinstance(
        column.dtype, pd.CategoricalDtype
    ):
        raw = column.to_numpy()
        if raw.dtype != object:
            return np.ascontiguousarray(raw).view(np.uint8).data
    # nullable booleans with NA come out as Python objects: hash their values
    return pd.util.hash_pandas_object(column, index=False).to_numpy()
