"""Reference profiles: a window summarised once, so that a drift check never re-reads it.

Per numeric column: rows, missing values, min/max/mean/std, the interior bin edges of the exact
mode (`drift.bin_edges`) with the exact reference count per bin, and a KLL quantile sketch (Apache
DataSketches, k = KLL_K) for KS and Wasserstein. Per categorical column: the exact count of each
category, up to MAX_CATEGORIES of them; the rarer ones share one OTHER count.

A current window is streamed into the same counts and a sketch of its own (`WindowSummary`), one
record batch at a time. The binned statistics (psi, kl, js, hellinger, chi-square) come from the
same bins and the same counts as in the exact mode, so they are the exact mode's values. KS and
Wasserstein come from the two sketches: each sketch's CDF is within its normalised rank error
(`rank_error`, at 99% confidence) of the window's, so the KS statistic is within the sum of the
two errors, and Wasserstein within that sum times the range of the values. A sketch that has
not had to compact holds every value (error 0).

The file is JSON (no pickle); a sketch is DataSketches' own binary form, base64-encoded.
"""

from __future__ import annotations

import base64
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from retrain_cli import drift
from retrain_cli.columns import category_counts, numeric_values
from retrain_cli.errors import DataError

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

    with ThreadPoolExecutor(max_workers=max(1, min(len(kinds), os.cpu_count() or 1))) as pool:
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


class WindowSummary:
    """A current window, batch by batch: per numeric column its counts over the profile's bins,
    missing values, range and (with `ordered`) a KLL sketch; per categorical column its counts.
    `peak_rows` is the most rows it has held at once."""

    def __init__(self, profile: Profile, names: Sequence[str], *, ordered: bool) -> None:
        from datasketches import kll_doubles_sketch

        self.profile = profile
        self.names = list(names)
        self.rows = 0
        self.peak_rows = 0
        self.missing = dict.fromkeys(names, 0)
        self.bins: dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = {}
        self.sketches: dict[str, kll_doubles_sketch] = {}
        self.ranges: dict[str, list[float]] = {}
        self.categories: dict[str, Counter[str]] = {}
        for name in names:
            column = profile.columns[name]
            if isinstance(column, NumericColumn):
                edges = np.array(column.edges, dtype=np.float64)
                self.bins[name] = (edges, np.zeros(edges.size + 1, dtype=np.int64))
                self.ranges[name] = [np.inf, -np.inf]
                if ordered:
                    self.sketches[name] = kll_doubles_sketch(profile.kll_k)
            else:
                self.categories[name] = Counter()

    def add(self, batch: pa.RecordBatch, pool: Executor | None = None) -> None:
        """Count one batch, its columns on `pool` when given (numpy and Arrow release the
        GIL; a sketch's update does not)."""
        self.rows += batch.num_rows
        self.peak_rows = max(self.peak_rows, batch.num_rows)
        names = [*self.bins, *self.categories]
        columns = [batch.column(name) for name in names]
        list(
            pool.map(self._add_column, names, columns)
            if pool
            else map(self._add_column, names, columns)
        )

    def _add_column(self, name: str, column: pa.Array) -> None:
        if name in self.categories:
            seen, missing = _category_counts(column)
            self.categories[name].update(seen)
            self.missing[name] += missing
            return
        edges, counts = self.bins[name]
        values, missing = finite(column, name)
        self.missing[name] += missing
        if values.size:
            counts += drift.bin_lookup(values, edges)
            low, high = self.ranges[name]
            self.ranges[name] = [min(low, values.min()), max(high, values.max())]
            if name in self.sketches:
                update(self.sketches[name], values)

    def n(self, name: str) -> int:
        return self.rows - self.missing[name]

    def state(self) -> dict[str, Any]:
        """What this summary counted, in plain values (sketches in their binary form), for
        `merge` in another process."""
        return {
            "rows": self.rows,
            "peak_rows": self.peak_rows,
            "missing": self.missing,
            "counts": {name: counts.tolist() for name, (_, counts) in self.bins.items()},
            "ranges": self.ranges,
            "sketches": {name: sketch.serialize() for name, sketch in self.sketches.items()},
            "categories": {name: dict(counter) for name, counter in self.categories.items()},
        }

    def merge(self, state: dict[str, Any]) -> None:
        """Add another summary's `state` of other rows of the same window: counts add up
        exactly, sketches merge (within the same rank error)."""
        from datasketches import kll_doubles_sketch

        self.rows += state["rows"]
        self.peak_rows = max(self.peak_rows, state["peak_rows"])
        for name, missing in state["missing"].items():
            self.missing[name] += missing
        for name, counts in state["counts"].items():
            self.bins[name][1][:] += np.asarray(counts, dtype=np.int64)
            low, high = state["ranges"][name]
            self.ranges[name] = [min(self.ranges[name][0], low), max(self.ranges[name][1], high)]
        for name, data in state["sketches"].items():
            self.sketches[name].merge(kll_doubles_sketch.deserialize(data))
        for name, counts in state["categories"].items():
            self.categories[name].update(counts)

    def compare(self, name: str) -> tuple[dict[str, Any], drift.Histogram]:
        """The statistics of one column against the profile's, as the exact mode names them."""
        reference = self.profile.columns[name]
        if self.n(name) == 0:
            raise DataError(f"feature {name!r} has no values in the current window (all missing)")
        if isinstance(reference, CategoricalColumn):
            return drift.categorical_drift(*self._folded(name, reference))
        edges, counts = self.bins[name]
        ref_counts = np.array(reference.counts, dtype=np.int64)
        metrics: dict[str, Any] = drift.distribution_metrics(ref_counts, counts)
        if name in self.sketches:
            metrics.update(self._ordered(name, reference))
        return metrics, drift.Histogram(
            drift.bin_labels(edges),
            (ref_counts / ref_counts.sum()).tolist(),
            (counts / counts.sum()).tolist(),
        )

    def _folded(
        self, name: str, reference: CategoricalColumn
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Both windows' counts; when the profile folded rare categories into OTHER, the
        current window's categories outside the profile's are folded likewise."""
        current = self.categories[name]
        if not reference.other:
            return reference.counts, dict(current)
        folded: Counter[str] = Counter()
        for category, count in current.items():
            folded[category if category in reference.counts else OTHER] += count
        return {**reference.counts, OTHER: reference.other}, dict(folded)

    def _ordered(self, name: str, reference: NumericColumn) -> dict[str, Any]:
        ref_sketch, cur_sketch = sketch_of(reference), self.sketches[name]
        ks, wasserstein = sketch_distances(ref_sketch, cur_sketch)
        ks_error = sum(_cdf_error(s, self.profile.rank_error) for s in (ref_sketch, cur_sketch))
        low, high = self.ranges[name]
        span = max(high, reference.max) - min(low, reference.min)
        n_ref, n_cur = reference.n, self.n(name)
        return {
            "ks_stat": ks,
            "ks_pvalue": drift.ks_asymptotic_pvalue(ks, n_ref, n_cur),
            "wasserstein": wasserstein,
            "wasserstein_norm": wasserstein / max(reference.std, drift.MIN_STD),
            # the largest differences from the exact values (the p-value is that of ks_stat)
            "approximate": {"ks_stat": ks_error, "wasserstein": ks_error * span},
        }


def summarize(
    part: Any, profile: Profile, names: list[str], ordered: bool, role: str
) -> dict[str, Any]:
    """A task on a cluster worker: one partition of a window, counted against `profile`."""
    from retrain_cli.datasource import partition_batches

    summary = WindowSummary(profile, names, ordered=ordered)
    for batch in partition_batches(part, role, names):
        summary.add(batch)
    return summary.state()


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


def _cdf_error(sketch: kll_doubles_sketch, rank_error: float) -> float:
    return rank_error + 1.0 / GRID if sketch.is_estimation_mode() else 0.0


def finite(
    column: pa.Array, name: str, window: str = "current"
) -> tuple[np.ndarray[Any, Any], int]:
    """A batch's numeric column as finite float64 values, and how many were missing."""
    import pyarrow as pa

    from retrain_cli.columns import float64_values

    try:
        values = float64_values(column.cast(pa.float64())) if len(column) else np.empty(0)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"feature {name!r} in the {window} window is not numeric: {exc}") from exc
    kept, _ = drift.drop_missing(values)
    if not np.isfinite(kept).all():
        raise DataError(f"feature {name!r} has infinite values in the {window} window")
    return kept, values.size - kept.size


def _category_counts(column: pa.Array) -> tuple[dict[str, int], int]:
    import pyarrow as pa

    try:
        counts, _ = category_counts(pa.chunked_array([column]), "", "current")
    except DataError:  # nothing but missing values in this batch
        return {}, len(column)
    return counts, len(column) - sum(counts.values())
