"""Queries shared by more than one command."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnExpressionArgument, Select, and_, func, select

from retrain_cli.db.models import ModelDriftMonitoring, ModelPerformanceTracking


def newest_per_model(
    table: type[ModelDriftMonitoring] | type[ModelPerformanceTracking],
    condition: ColumnExpressionArgument[bool],
    *columns: Any,
) -> Select[*tuple[Any, ...]]:
    """`columns` of each model's newest row of `table` among the rows meeting `condition`.

    The newest `checked_at` per model, joined back to its rows: a grouped scan of the
    (model_name, checked_at) index, not a window over every result ever recorded.
    """
    newest = (
        select(table.model_name, func.max(table.checked_at).label("at"))
        .where(condition)
        .group_by(table.model_name)
        .subquery()
    )
    matches = and_(table.model_name == newest.c.model_name, table.checked_at == newest.c.at)
    return select(*columns).join(newest, matches).where(condition)
