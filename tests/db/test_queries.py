"""Shared queries, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from retrain_cli.core.durations import utcnow
from retrain_cli.db.models import ModelDriftMonitoring, ModelPerformanceTracking
from retrain_cli.db.queries import newest_per_model

SessionFactory = Callable[[], AbstractContextManager[Session]]


def drift_row(model: str, at: datetime, scope: str, share: float) -> ModelDriftMonitoring:
    return ModelDriftMonitoring(
        check_id=uuid.uuid4().hex,
        model_name=model,
        checked_at=at,
        scope=scope,
        feature=None if scope == "dataset" else "x",
        method="psi",
        statistic=share,
        threshold=0.25,
        drifted=share >= 0.5,
        drift_share=share,
        n_reference=10,
        n_current=10,
        metrics={},
    )


def perf_row(model: str, at: datetime, metric: str, primary: bool) -> ModelPerformanceTracking:
    return ModelPerformanceTracking(
        check_id=uuid.uuid4().hex,
        model_name=model,
        checked_at=at,
        metric=metric,
        value=at.minute / 100,
        threshold=0.5,
        is_primary=primary,
        degraded=False,
        n_samples=100,
        n_dropped=0,
    )


def test_newest_per_model_takes_each_models_newest_row_that_meets_the_condition(
    session: SessionFactory,
) -> None:
    now = utcnow().replace(microsecond=0)
    minutes = [now - timedelta(minutes=m) for m in (30, 20, 10)]
    with session() as s:
        s.add_all(
            [
                drift_row("a", minutes[0], "dataset", 0.9),
                drift_row("a", minutes[1], "dataset", 0.1),  # a's newest dataset row
                drift_row("a", minutes[2], "feature", 0.8),  # newer, but not dataset-level
                drift_row("b", minutes[0], "dataset", 0.6),
                drift_row("b", minutes[0], "feature", 0.7),  # the same check's feature row
            ]
        )
    with session() as s:
        table = ModelDriftMonitoring
        query = newest_per_model(
            table, table.scope == "dataset", table.model_name, table.drift_share
        )
        assert sorted(tuple(row) for row in s.execute(query)) == [("a", 0.1), ("b", 0.6)]


def test_newest_primary_metric_ignores_newer_secondary_metrics(session: SessionFactory) -> None:
    now = utcnow().replace(second=0, microsecond=0)
    with session() as s:
        s.add_all(
            [
                perf_row("a", now - timedelta(minutes=40), "auc", primary=True),
                perf_row("a", now - timedelta(minutes=20), "auc", primary=True),
                perf_row("a", now - timedelta(minutes=5), "brier", primary=False),
            ]
        )
    with session() as s:
        table = ModelPerformanceTracking
        query = newest_per_model(table, table.is_primary, table.model_name, table.checked_at)
        [(model, checked_at)] = s.execute(query)
        assert model == "a"
        assert checked_at.replace(tzinfo=None) == (now - timedelta(minutes=20)).replace(tzinfo=None)
