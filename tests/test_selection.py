"""Exact order statistics over partitions (`selection.select`) against numpy on the whole."""

from __future__ import annotations

import numpy as np
import pytest

from retrain_cli.statistics import selection


def _select(parts: list[np.ndarray], ranks: list[int]) -> tuple[list[object], int]:
    held = [np.sort(part) for part in parts]
    rounds = 0

    def run(brackets: list[selection.Bracket]) -> list[list[selection.Probe]]:
        nonlocal rounds
        rounds += 1
        return [selection.probe(part, brackets) for part in held]

    return selection.select(ranks, run), rounds


DATA = {
    "normal": lambda rng: rng.normal(size=200_000),
    "heavy ties": lambda rng: np.round(rng.exponential(size=200_000), 1),
    "mostly one value": lambda rng: np.where(
        rng.random(200_000) < 0.9, 5.0, rng.normal(size=200_000)
    ),
    "integers": lambda rng: rng.integers(0, 1_000_000_000_000, size=200_000),
    "tiny": lambda rng: rng.normal(size=7),
}


@pytest.mark.parametrize("kind", list(DATA))
@pytest.mark.parametrize("n_parts", [1, 3, 40])
def test_every_rank_asked_for_is_the_value_a_full_sort_puts_there(kind: str, n_parts: int) -> None:
    rng = np.random.default_rng(7)
    values = DATA[kind](rng)
    parts = np.array_split(values, n_parts)
    ranks = sorted({0, len(values) - 1, *rng.integers(0, len(values), size=12).tolist()})
    found, rounds = _select(parts, ranks)
    assert found == np.sort(values)[ranks].tolist()
    assert rounds <= 5


def test_a_partition_without_values_takes_part_without_harm() -> None:
    parts = [np.array([], dtype=np.float64), np.arange(1000.0), np.array([], dtype=np.float64)]
    found, _ = _select(parts, [0, 499, 999])
    assert found == [0.0, 499.0, 999.0]
