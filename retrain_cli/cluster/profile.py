"""A profile built on a Dask cluster, one column at a time, one task per partition.

Each partition's values of the column stay on the worker that read them, sorted. The bin edges
are quantiles of the whole column, which no partition knows: the two order statistics each edge
interpolates between are found exactly by `selection` (a few rounds of counts and samples), and
numpy interpolates between them as `np.quantile` does, so the edges, and the counts per bin that
the tasks then return, are bit for bit those of a local profile. The KLL sketches merge within
the same rank error; mean and std merge by Chan's formula (equal to rounding, not bit for bit).
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from retrain_cli.cluster.client import gather
from retrain_cli.core.errors import DataError
from retrain_cli.data import profile as profiles
from retrain_cli.data.columns import category_counts
from retrain_cli.statistics import drift, selection

if TYPE_CHECKING:
    import pyarrow as pa
    from distributed import Client

    from retrain_cli.data.profile import CategoricalColumn, NumericColumn, Profile

Load = Callable[[Any, str], "pa.Array"]  # (partition, column name) -> the column, on a worker


def build(
    client: Client,
    parts: list[Any],
    load: Load,
    kinds: Mapping[str, str],
    bins: int,
    rows: int,
    built_from: str,
) -> Profile:
    """The profile of the window whose partitions `load` reads, as `profiles.build` makes it."""
    columns: dict[str, NumericColumn | CategoricalColumn] = {}
    for name, kind in kinds.items():
        if kind == "numeric":
            columns[name] = _numeric(client, parts, load, name, bins, rows)
        else:
            columns[name] = _categorical(client, parts, load, name, rows)
    return profiles.Profile(
        built_from=built_from,
        bins=bins,
        rank_error=profiles.rank_error(),
        rows=rows,
        columns=columns,
    )


def _numeric(
    client: Client, parts: list[Any], load: Load, name: str, bins: int, rows: int
) -> NumericColumn:
    from datasketches import kll_doubles_sketch

    held = client.map(_sorted_values, parts, load=load, name=name, pure=False)
    try:
        stats = gather(client, _moments, held)
        n = sum(s["n"] for s in stats)
        if n == 0:
            raise DataError(f"feature {name!r} has no values in the reference window (all missing)")
        mean = sum(s["sum"] for s in stats) / n
        m2 = sum(s["m2"] + s["n"] * (s["sum"] / s["n"] - mean) ** 2 for s in stats if s["n"])
        edges = _edges(client, held, n, bins)
        counts = np.sum(gather(client, _bin_counts, held, edges=edges), axis=0)
        sketch = kll_doubles_sketch(profiles.KLL_K)
        for s in stats:
            sketch.merge(kll_doubles_sketch.deserialize(s["sketch"]))
    finally:
        for future in held:  # dropped: their dependent tasks are done
            future.release()
    return profiles.NumericColumn(
        rows=rows,
        missing=rows - n,
        min=min(s["min"] for s in stats if s["n"]),
        max=max(s["max"] for s in stats if s["n"]),
        mean=float(mean),
        std=float(np.sqrt(m2 / n)),
        edges=edges.tolist(),
        counts=counts.tolist(),
        sketch=base64.b64encode(sketch.serialize()).decode("ascii"),
    )


def _edges(client: Client, held: list[Any], n: int, bins: int) -> np.ndarray[Any, Any]:
    """`drift.bin_edges` of the whole column: for each level q, np.quantile's "linear" method
    reads the sorted values at floor((n-1) q) and the next, and interpolates between the two by
    the fraction; the two come from `selection`, the interpolation from np.quantile itself."""
    levels = np.arange(1, bins) / bins
    virtual = (n - 1) * levels
    below = np.floor(virtual).astype(np.int64)
    ranks = sorted({*below.tolist(), *np.minimum(below + 1, n - 1).tolist()})

    def run(brackets: list[selection.Bracket]) -> list[list[selection.Probe]]:
        return gather(client, selection.probe, held, brackets=brackets)

    value = dict(zip(ranks, selection.select(ranks, run), strict=True))
    cuts = [
        np.quantile(np.array([value[j], value[min(j + 1, n - 1)]]), fraction)
        for j, fraction in zip(below.tolist(), (virtual - below).tolist(), strict=True)
    ]
    return np.unique(np.array(cuts, dtype=np.float64))


def _categorical(
    client: Client, parts: list[Any], load: Load, name: str, rows: int
) -> CategoricalColumn:
    counts: Counter[str] = Counter()
    for seen in gather(client, _category_counts, parts, load=load, name=name):
        counts.update(seen)
    if not counts:
        raise DataError(f"feature {name!r} has no values in the reference window (all missing)")
    return profiles.categorical_column(counts, rows)


# tasks, on the workers


def _sorted_values(part: Any, load: Load, name: str) -> np.ndarray[Any, Any]:
    values, _ = profiles.finite(load(part, name), name, "reference")
    return np.sort(values)


def _moments(values: np.ndarray[Any, Any]) -> dict[str, Any]:
    from datasketches import kll_doubles_sketch

    sketch = kll_doubles_sketch(profiles.KLL_K)
    if values.size:
        profiles.update(sketch, values)
    total = float(np.sum(values))
    mean = total / values.size if values.size else 0.0
    return {
        "n": int(values.size),
        "sum": total,
        "m2": float(np.sum((values - mean) ** 2)),
        "min": float(values[0]) if values.size else 0.0,
        "max": float(values[-1]) if values.size else 0.0,
        "sketch": sketch.serialize(),
    }


def _bin_counts(values: np.ndarray[Any, Any], edges: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return drift.bin_counts(values, edges)


def _category_counts(part: Any, load: Load, name: str) -> dict[str, int]:
    import pyarrow as pa

    try:
        counts, _ = category_counts(pa.chunked_array([load(part, name)]), name, "reference")
    except DataError:  # only missing values in this partition
        return {}
    return counts
