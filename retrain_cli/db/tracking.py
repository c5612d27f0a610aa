"""The kinds of row in `model_performance_tracking`, and the one place that names them.

A performance check writes several kinds of row into the one table; each row says its kind in the
`kind` column (docs/storage.md), and readers select a kind with `of_kind`, never by the metric's
name. The `metric` values stay as users query them: a change point's row is
`change_point:<method>`, a rollout analysis' `rollout:<metric>`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

from retrain_cli.core.choices import RowKind
from retrain_cli.db.models import ModelPerformanceTracking

CALIBRATION_METRIC = "calibration_brier"  # the row beside an estimate: its calibration's Brier
_CHANGE_POINT = "change_point:"
_ROLLOUT = "rollout:"


def change_point_metric(method: str) -> str:
    """The metric of a change point's row: `change_point:<method>`."""
    return _CHANGE_POINT + method


def rollout_metric(metric: str) -> str:
    """The metric of a rollout analysis' row: `rollout:<metric>`."""
    return _ROLLOUT + metric


def of_kind(*kinds: RowKind, table: Any = ModelPerformanceTracking) -> ColumnElement[bool]:
    """The rows of these kinds (of `table`, an alias of the table in a self-join)."""
    return table.kind.in_([str(kind) for kind in kinds])  # type: ignore[no-any-return]
