"""A current window counted against a reference profile, batch by batch, in bounded memory:
per numeric column the counts over the profile's bins, the range and a KLL sketch; per categorical
column the counts. Summaries of a window's parts merge exactly (the sketches within their error),
so a cluster's workers count one partition each (docs/drift.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from retrain_cli.core.errors import DataError
from retrain_cli.data.columns import category_counts
from retrain_cli.data.profile import (
    GRID,
    OTHER,
    CategoricalColumn,
    NumericColumn,
    Profile,
    finite,
    sketch_distances,
    sketch_of,
    update,
)
from retrain_cli.statistics import drift

if TYPE_CHECKING:
    import pyarrow as pa
    from datasketches import kll_doubles_sketch


@dataclass(frozen=True)
class SummaryState:
    """A window summary's counts in plain values: what a task on a cluster worker sends back."""

    rows: int
    peak_rows: int
    missing: dict[str, int]
    counts: dict[str, list[int]]  # per numeric column, its count per bin
    ranges: dict[str, list[float]]  # per numeric column, [least, greatest]
    sketches: dict[str, bytes]  # per numeric column, its KLL sketch serialised
    categories: dict[str, dict[str, int]]  # per categorical column, its count per category


class WindowSummary:
    """A current window, batch by batch: per numeric column its counts over the profile's bins,
    missing values, range and (with `ordered`) a KLL sketch; per categorical column its counts.
    `peak_rows` is the most rows it has held at once."""

    def __init__(self, profile: Profile, names: Sequence[str], *, ordered: bool) -> None:
        from datasketches import kll_doubles_sketch

        self.profile = profile
        self.names = list(names)
        self.ordered = ordered
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

    def state(self) -> SummaryState:
        """What this summary counted, in plain values (sketches in their binary form), for
        `merge` in another process."""
        return SummaryState(
            rows=self.rows,
            peak_rows=self.peak_rows,
            missing=self.missing,
            counts={name: counts.tolist() for name, (_, counts) in self.bins.items()},
            ranges=self.ranges,
            sketches={name: sketch.serialize() for name, sketch in self.sketches.items()},
            categories={name: dict(counter) for name, counter in self.categories.items()},
        )

    def merge(self, state: SummaryState) -> None:
        """Add another summary's `state` of other rows of the same window: counts add up
        exactly, sketches merge (within the same rank error)."""
        from datasketches import kll_doubles_sketch

        self.rows += state.rows
        self.peak_rows = max(self.peak_rows, state.peak_rows)
        for name, missing in state.missing.items():
            self.missing[name] += missing
        for name, counts in state.counts.items():
            self.bins[name][1][:] += np.asarray(counts, dtype=np.int64)
            low, high = state.ranges[name]
            self.ranges[name] = [min(self.ranges[name][0], low), max(self.ranges[name][1], high)]
        for name, data in state.sketches.items():
            self.sketches[name].merge(kll_doubles_sketch.deserialize(data))
        for name, found in state.categories.items():
            self.categories[name].update(found)

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


def _cdf_error(sketch: kll_doubles_sketch, rank_error: float) -> float:
    return rank_error + 1.0 / GRID if sketch.is_estimation_mode() else 0.0


def _category_counts(column: pa.Array) -> tuple[dict[str, int], int]:
    import pyarrow as pa

    counts, _ = category_counts(pa.chunked_array([column]), "", "current", required=False)
    return counts, len(column) - sum(counts.values())
