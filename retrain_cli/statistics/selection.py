"""Exact order statistics of values spread over many partitions, without gathering them.

Each partition holds its values sorted (on a Dask worker, say). For each wanted rank the client
keeps a bracket [lo, hi] known to hold the value; each round every partition reports exact counts
at the bracket's ends and a few of its values strictly inside it, at known positions. From those,
a narrower bracket follows that must still hold the value (exact bounds, no estimate), and once a
bracket holds at most `SAMPLE` values per partition they all come back and the rank is read off.
Each round divides the values inside by about SAMPLE / 2, so 50M values need three or four.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

SAMPLE = 256

Value = Any  # a numpy scalar of the partitions' dtype
Bracket = tuple[Value | None, Value | None]  # None: unbounded


class Probe(NamedTuple):
    """One partition's view of one bracket."""

    below_lo: int  # values < lo
    upto_lo: int  # values <= lo
    below_hi: int  # values < hi
    upto_hi: int  # values <= hi
    positions: np.ndarray[Any, Any]  # 0-based ranks among the values strictly inside
    sample: np.ndarray[Any, Any]  # those values
    inside: int  # how many values are strictly inside

    @property
    def complete(self) -> bool:
        return len(self.sample) == self.inside


def probe(values: np.ndarray[Any, Any], brackets: Sequence[Bracket]) -> list[Probe]:
    """A partition's sorted `values` against each bracket: a task on a worker."""
    probes = []
    for lo, hi in brackets:
        below_lo = 0 if lo is None else int(np.searchsorted(values, lo, "left"))
        upto_lo = 0 if lo is None else int(np.searchsorted(values, lo, "right"))
        below_hi = len(values) if hi is None else int(np.searchsorted(values, hi, "left"))
        upto_hi = len(values) if hi is None else int(np.searchsorted(values, hi, "right"))
        inside = values[upto_lo:below_hi]
        n = len(inside)
        positions = (
            np.arange(n)
            if n <= SAMPLE
            else np.unique(np.linspace(0, n - 1, SAMPLE).round().astype(np.int64))
        )
        probes.append(Probe(below_lo, upto_lo, below_hi, upto_hi, positions, inside[positions], n))
    return probes


def select(ranks: Sequence[int], run: Callable[[list[Bracket]], list[list[Probe]]]) -> list[Value]:
    """The values at 0-based `ranks` of all partitions' values together; `run(brackets)` returns
    each partition's `probe` of the brackets."""
    brackets: list[Bracket] = [(None, None)] * len(ranks)
    found: list[Value | None] = [None] * len(ranks)
    while True:
        open_ = [i for i, value in enumerate(found) if value is None]
        if not open_:
            return found
        per_part = run([brackets[i] for i in open_])
        for slot, i in enumerate(open_):
            probes = [part[slot] for part in per_part]
            found[i], brackets[i] = _narrow(ranks[i], brackets[i], probes)


def _narrow(rank: int, bracket: Bracket, probes: list[Probe]) -> tuple[Value | None, Bracket]:
    """The value at `rank` when the probes settle it, else a narrower bracket that holds it."""
    lo, hi = bracket
    below_lo, upto_lo = (sum(p.below_lo for p in probes), sum(p.upto_lo for p in probes))
    below_hi, upto_hi = (sum(p.below_hi for p in probes), sum(p.upto_hi for p in probes))
    if lo is not None and below_lo <= rank < upto_lo:
        return lo, bracket
    if hi is not None and below_hi <= rank < upto_hi:
        return hi, bracket
    if not upto_lo <= rank < below_hi:
        raise ValueError(f"rank {rank} is outside the values (bracket lost it)")
    if all(p.complete for p in probes):
        inside = np.sort(np.concatenate([p.sample for p in probes]))
        return inside[rank - upto_lo], bracket
    # Bounds on how many values lie below a sampled value v, from each partition's samples at
    # known positions: at least (the position of the last sample < v) + 1, at most the position
    # of the first sample >= v.
    candidates = np.unique(np.concatenate([p.sample for p in probes]))

    def most_below(v: Value) -> int:
        return upto_lo + sum(
            int(p.positions[i]) if i < len(p.sample) else p.inside
            for p in probes
            for i in [int(np.searchsorted(p.sample, v, "left"))]
        )

    def least_upto(v: Value) -> int:
        return upto_lo + sum(
            int(p.positions[i - 1]) + 1 if i > 0 else 0
            for p in probes
            for i in [int(np.searchsorted(p.sample, v, "right"))]
        )

    # the largest candidate with at most `rank` values below it, the smallest with more than
    # `rank` values at or below it (both counts monotone in v: binary search)
    new_lo = _last(candidates, lambda v: most_below(v) <= rank)
    new_hi = _first(candidates, lambda v: least_upto(v) > rank)
    return None, (lo if new_lo is None else new_lo, hi if new_hi is None else new_hi)


def _last(sorted_values: np.ndarray[Any, Any], ok: Callable[[Value], bool]) -> Value | None:
    """The last value for which `ok` holds, `ok` being true up to a point and false after."""
    low, high = 0, len(sorted_values)
    while low < high:
        mid = (low + high) // 2
        if ok(sorted_values[mid]):
            low = mid + 1
        else:
            high = mid
    return sorted_values[low - 1] if low else None


def _first(sorted_values: np.ndarray[Any, Any], ok: Callable[[Value], bool]) -> Value | None:
    """The first value for which `ok` holds, `ok` being false up to a point and true after."""
    low, high = 0, len(sorted_values)
    while low < high:
        mid = (low + high) // 2
        if ok(sorted_values[mid]):
            high = mid
        else:
            low = mid + 1
    return sorted_values[low] if low < len(sorted_values) else None
