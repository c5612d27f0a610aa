"""A window's columns: which are features, which categorical, which the score; and each one as the
drift statistics take it, read from Arrow's buffers: finite float64 values of a numeric column,
counts per category of any other, and the share missing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from retrain_cli.core.errors import DataError
from retrain_cli.statistics.drift import FloatArray, drop_missing

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Columns:
    """Which columns of the windows are features, which categorical, which hold the model's
    predictions (the score, or each class's probability) and which its target."""

    features: list[str] | None
    categorical: Sequence[str] = ()
    excluded: Sequence[str] = ()
    scores: Sequence[str] = ()
    target: str | None = None

    @property
    def outputs(self) -> list[str]:
        """The predictions' columns, then the target's: compared as the features are."""
        return [*self.scores, *([self.target] if self.target else [])]


def column_kind(arrow_type: pa.DataType, name: str, columns: Columns) -> str:
    """Numeric for integer, floating and decimal columns not listed as categorical; every other
    type (string, dictionary, bool, timestamp, ...) is categorical."""
    import pyarrow as pa

    if name in columns.categorical:
        return "categorical"
    numeric = pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
    return "numeric" if numeric or pa.types.is_decimal(arrow_type) else "categorical"


def numeric_values(
    column: pa.ChunkedArray, name: str, window: str, *, required: bool = True
) -> tuple[FloatArray, float]:
    """The column as float64, nulls and NaN dropped, and the share of them. A column with no
    values is an error when `required` (a reference), else no values at a missing rate of 1."""
    import pyarrow as pa

    chunks = [float64_values(c) for c in column.cast(pa.float64()).chunks if len(c)]
    values = chunks[0] if len(chunks) == 1 else np.concatenate(chunks or [np.empty(0)])
    finite, missing = drop_missing(values)
    if finite.size == 0 and not required:
        return finite, 1.0
    if finite.size == 0:
        raise DataError(f"feature {name!r} has no values in the {window} window (all missing)")
    if not np.isfinite(finite).all():
        raise DataError(f"feature {name!r} has infinite values in the {window} window")
    return finite, missing


def float64_values(chunk: pa.Array) -> FloatArray:
    """A non-empty float64 Arrow array as numpy, nulls as NaN, read from its buffers.

    Arrow's own `to_numpy` would import pandas; the data buffer is wrapped without a copy when
    there are no nulls.
    """
    end = chunk.offset + len(chunk)
    validity, data = chunk.buffers()
    values: FloatArray = np.frombuffer(data, dtype=np.float64, count=end)[chunk.offset :]
    if chunk.null_count:
        bits = np.frombuffer(validity, dtype=np.uint8)
        valid = np.unpackbits(bits, count=end, bitorder="little")[chunk.offset :].view(bool)
        values = np.where(valid, values, np.nan)
    return values


def category_counts(
    column: pa.ChunkedArray, name: str, window: str, *, required: bool = True
) -> tuple[dict[str, int], float]:
    """Count per category (its value as text), nulls and NaN left out; and the share of them
    (`required` as for `numeric_values`)."""
    import pyarrow.compute as pc

    counts = {
        str(entry["values"]): int(entry["counts"])
        for entry in pc.value_counts(column).to_pylist()
        if entry["values"] is not None and entry["values"] == entry["values"]  # not NaN
    }
    if not counts and not required:
        return counts, 1.0
    if not counts:
        raise DataError(f"feature {name!r} has no values in the {window} window (all missing)")
    return counts, (len(column) - sum(counts.values())) / len(column)
