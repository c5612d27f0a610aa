"""Queries shared by more than one command."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ColumnExpressionArgument,
    Connection,
    Select,
    and_,
    func,
    select,
    text,
)
from sqlalchemy.orm import Session

from retrain_cli.core.choices import DOMAIN_CLASSIFIER
from retrain_cli.core.durations import utcnow
from retrain_cli.core.errors import DatabaseError
from retrain_cli.db.models import ModelDriftMonitoring, ModelPerformanceTracking, RegistryIdentity


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


def drift_verdict(table: type[ModelDriftMonitoring]) -> ColumnElement[bool]:
    """The rows holding each drift check's verdict: its dataset-level row, not the domain
    classifier's row beside it (whose verdict the check's already includes)."""
    return and_(table.scope == "dataset", table.method != DOMAIN_CLASSIFIER)


SCHEMA_LOCK = 0x7265747261696E  # "retrain"
JOBS_LOCK = SCHEMA_LOCK + 1


def take_turns(conn: Connection, key: int) -> None:
    """Serialise this transaction with every other that takes turns on `key` (racing `db init`s,
    racing `jobs apply`s): the later one sees what the earlier committed. The lock ends with
    the transaction (PgBouncer's transaction mode keeps working); SQLite's is its write lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # before the first statement of the transaction


def database_now(session: Session) -> datetime:
    """The database server's clock (PostgreSQL), shared by every host; on SQLite (one host)
    this host's clock."""

    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        value = session.scalar(select(func.clock_timestamp()))
        if isinstance(value, datetime):
            return value.astimezone(UTC)
    return utcnow()


def registry_id(session: Session) -> str:
    """The id `db init` gave this database (see `core.ownership`)."""
    found: str | None = session.scalar(select(RegistryIdentity.id))
    if found is None:
        raise DatabaseError("the database has no registry id: run `retrain-cli db init`")
    return found
