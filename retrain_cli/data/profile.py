"""Reference profiles: a window summarised once, so that a drift check never re-reads it.

Per numeric column: rows, missing values, min/max/mean/std, the interior bin edges of the exact
mode (`drift.bin_edges`) with the exact reference count per bin, and a KLL quantile sketch (Apache
DataSketches, k = KLL_K) for KS and Wasserstein. Per categorical column: the exact count of each
category, up to MAX_CATEGORIES of them; the rarer ones share one OTHER count.

A current window is streamed into the same counts and a sketch of its own, one record batch at
a time (`window_summary`). The binned statistics (psi, kl, js, hellinger, chi-square) come from the
same bins and the same counts as in the exact mode, so they are the exact mode's values. KS and
Wasserstein come from the two sketches: each sketch's CDF is within its normalised rank error
(`rank_error`, at 99% confidence) of the window's, so the KS statistic is within the sum of the
two errors, and Wasserstein within that sum times the range of the values. A sketch that has
not had to compact holds every value (error 0).

The file is JSON (no pickle); a sketch is DataSketches' own binary form, base64-encoded.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from retrain_cli.core.errors import DataError
from retrain_cli.core.threads import usable_cores
from retrain_cli.data.columns import category_counts, float64_values, numeric_values
from retrain_cli.statistics import drift

if TYPE_CHECKING:
    import pyarrow as pa
    from datasketches import kll_doubles_sketch

FORMAT: Literal[1] = 1
KLL_K = 2000  # normalised rank error of a CDF: 0.19% at 99% confidence
MAX_CATEGORIES = 1000
OTHER = "(other)"
GRID = 1 << 14  # ranks at which a compacted sketch's CDF is read (adds 1/GRID to its error)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NumericColumn(_Model):
    kind: Literal["numeric"] = "numeric"
    rows: int
    missing: int
    min: float
    max: float
    mean: float
    std: float
    edges: list[float]  # interior bin edges, as the exact mode cuts them
    counts: list[int]  # values per bin: [-inf, e0), [e0, e1), ..., [e_last, inf)
    sketch: str  # base64 of the KLL sketch in DataSketches' binary form

    @property
    def n(self) -> int:
        return self.rows - self.missing


class CategoricalColumn(_Model):
    kind: Literal["categorical"] = "categorical"
    rows: int
    missing: int
    counts: dict[str, int]  # the MAX_CATEGORIES most frequent categories
    other: int = 0  # values of the rarer categories

    @property
    def n(self) -> int:
        return self.rows - self.missing


Column = Annotated[NumericColumn | CategoricalColumn, Field(discriminator="kind")]


class Profile(_Model):
    format: Literal[1] = FORMAT
    built_from: str  # "reference window" or "training data of v3"
    bins: int
    kll_k: int = KLL_K
    rank_error: float  # of one sketch's CDF, at 99% confidence
    max_categories: int = MAX_CATEGORIES
    rows: int
    columns: dict[str, Column]


def rank_error(k: int = KLL_K) -> float:
    from datasketches import kll_doubles_sketch

    return float(kll_doubles_sketch.get_normalized_rank_error(k, True))


def build(
    load: Callable[[str], pa.ChunkedArray],
    kinds: Mapping[str, str],
    bins: int,
    rows: int,
    built_from: str,
) -> Profile:
    """Profile each column `load` returns (one column in memory per core at a time)."""

    def one(name: str) -> Column:
        column = load(name)
        if kinds[name] == "numeric":
            return _numeric(column, name, bins)
        return _categorical(column, name)

    with ThreadPoolExecutor(max_workers=max(1, min(len(kinds), usable_cores()))) as pool:
        columns = dict(zip(kinds, pool.map(one, kinds), strict=True))
    return Profile(
        built_from=built_from, bins=bins, rank_error=rank_error(), rows=rows, columns=columns
    )


def _numeric(column: pa.ChunkedArray, name: str, bins: int) -> NumericColumn:
    from datasketches import kll_doubles_sketch

    values, _ = numeric_values(column, name, "reference")
    edges = drift.bin_edges(values, bins)
    sketch = kll_doubles_sketch(KLL_K)
    update(sketch, values)
    return NumericColumn(
        rows=len(column),
        missing=len(column) - values.size,
        min=float(values.min()),
        max=float(values.max()),
        mean=float(np.mean(values)),
        std=float(np.std(values)),
        edges=edges.tolist(),
        counts=drift.bin_lookup(values, edges).tolist(),
        sketch=base64.b64encode(sketch.serialize()).decode("ascii"),
    )


def _categorical(column: pa.ChunkedArray, name: str) -> CategoricalColumn:
    counts, _ = category_counts(column, name, "reference")
    return categorical_column(counts, len(column))


def categorical_column(counts: Mapping[str, int], rows: int) -> CategoricalColumn:
    """The profile of a categorical column of `rows` rows with these counts per category: the
    MAX_CATEGORIES most frequent kept by name, the others counted together."""
    kept = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:MAX_CATEGORIES]
    n = sum(counts.values())
    return CategoricalColumn(
        rows=rows,
        missing=rows - n,
        counts=dict(kept),
        other=n - sum(count for _, count in kept),
    )


def sketch_of(column: NumericColumn) -> kll_doubles_sketch:
    from datasketches import kll_doubles_sketch

    return kll_doubles_sketch.deserialize(base64.b64decode(column.sketch))


def update(sketch: kll_doubles_sketch, values: np.ndarray[Any, Any]) -> None:
    """Add values to a sketch, which takes only writable arrays (not views of Arrow's)."""
    sketch.update(values if values.flags.writeable else values.copy())


def sketch_distances(ref: kll_doubles_sketch, cur: kll_doubles_sketch) -> tuple[float, float]:
    """KS statistic and Wasserstein-1 distance between the CDFs of two sketches, read at the
    values each sketch keeps (every value, for a sketch that has not compacted)."""
    points = np.unique(np.concatenate([_support(ref), _support(cur)]))
    f = np.asarray(ref.get_cdf(points.tolist(), True)[:-1])
    g = np.asarray(cur.get_cdf(points.tolist(), True)[:-1])
    gaps = np.abs(f - g)
    return min(float(gaps.max()), 1.0), float(np.sum(gaps[:-1] * np.diff(points)))


def _support(sketch: kll_doubles_sketch) -> np.ndarray[Any, Any]:
    """Values at evenly spaced ranks: all of them while the sketch holds every value, GRID
    otherwise."""
    steps = 2 * sketch.n if not sketch.is_estimation_mode() else GRID
    ranks = np.linspace(0.0, 1.0, min(steps, GRID) + 1)
    return np.asarray(sketch.get_quantiles(ranks.tolist()))


def finite(
    column: pa.Array, name: str, window: str = "current"
) -> tuple[np.ndarray[Any, Any], int]:
    """A batch's numeric column as finite float64 values, and how many were missing."""
    import pyarrow as pa

    try:
        values = float64_values(column.cast(pa.float64())) if len(column) else np.empty(0)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"feature {name!r} in the {window} window is not numeric: {exc}") from exc
    kept, _ = drift.drop_missing(values)
    if not np.isfinite(kept).all():
        raise DataError(f"feature {name!r} has infinite values in the {window} window")
    return kept, values.size - kept.size
