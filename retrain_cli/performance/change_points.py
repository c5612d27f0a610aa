"""Change points: where in a time-ordered window of labelled predictions the error level
changed, found by river's ADWIN or Page-Hinkley detector on the per-row loss.

The loss of a row is its task's (`tasks.row_losses`): the squared error of a binary score (the
row's Brier score, bounded in [0, 1], as ADWIN's guarantees assume) or of a regression value, and
the log loss of a multiclass row's true class (neither bounded: ADWIN still finds a change in
their mean, with looser guarantees). A detector signals some rows after the change (its
detection delay, measured in docs/benchmarks.md); the row where it signalled is the change point
reported, with the mean loss of the rows before it (since the previous one) and after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from retrain_cli.core.errors import ConfigError
from retrain_cli.statistics.performance import FloatArray

METHODS = ("adwin", "page_hinkley")


@dataclass(frozen=True)
class ChangePoint:
    method: str
    index: int  # the row, in time order, at which the detector signalled
    before: float | None  # the mean loss from the previous change point (or the start) to it
    after: float | None  # the mean loss from it to the next change point (or the end)
    at: datetime | None = None  # the row's timestamp


def detect(values: FloatArray, method: str, parameters: dict[str, Any]) -> list[int]:
    """The rows at which river's detector (`adwin` or `page_hinkley`, with `parameters` over
    river's defaults) signals a change, in one pass over `values`."""
    try:
        from river import drift
    except ImportError as exc:
        raise ConfigError("change points use river: pip install 'retrain-cli[monitoring]'") from exc
    detector = drift.ADWIN(**parameters) if method == "adwin" else drift.PageHinkley(**parameters)
    found = []
    for index, value in enumerate(values.tolist()):
        detector.update(value)
        if detector.drift_detected:
            found.append(index)
    return found


def change_points(values: FloatArray, method: str, parameters: dict[str, Any]) -> list[ChangePoint]:
    """`detect`, with the loss levels around each change point."""
    found = detect(values, method, parameters)
    bounds = [0, *found, values.size]
    points = []
    for position, index in enumerate(found):
        start, end = bounds[position], bounds[position + 2]
        after = values[index:end]
        points.append(
            ChangePoint(
                method=method,
                index=index,
                before=float(np.mean(values[start:index])) if index > start else None,
                after=float(np.mean(after)) if after.size else None,
            )
        )
    return points
