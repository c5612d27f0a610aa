"""Create or upgrade the schema with Alembic, and seed the per-type defaults (`db init`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from retrain_cli import __version__
from retrain_cli.core.errors import DatabaseError
from retrain_cli.core.redaction import scrub
from retrain_cli.db.models import AutoRetrainingConfig
from retrain_cli.db.queries import SCHEMA_LOCK, registry_id, take_turns

DAY_S = 86_400

# The four model types' defaults for binary jobs (docs/job-files.md); the multiclass and
# regression rows copy them with their task's metric and threshold (`TASK_DEFAULTS`). `db init`
# inserts the missing ones and never overwrites an edited row.
BINARY_CONFIGS: tuple[dict[str, Any], ...] = (
    {
        "model_type": "lightgbm",
        "schedule": "0 2 * * *",
        "drift_threshold": 0.25,
        "performance_threshold": 0.80,
        "strategy": "incremental",
        "max_model_age_s": 30 * DAY_S,
        "hyperparameters": {"num_boost_round": 200, "learning_rate": 0.05, "num_leaves": 31},
    },
    {
        "model_type": "lstm",
        "schedule": "0 3 * * *",
        "drift_threshold": 0.30,
        "performance_threshold": 0.75,
        "strategy": "full",
        "max_model_age_s": 30 * DAY_S,
        "hyperparameters": {
            "sequence_length": 32,
            "hidden_size": 32,
            "num_layers": 1,
            "max_epochs": 20,
            "batch_size": 64,
            "learning_rate": 0.001,
        },
    },
    {
        "model_type": "transformer",
        "schedule": "0 4 * * *",
        "drift_threshold": 0.30,
        "performance_threshold": 0.75,
        "strategy": "full",
        "max_model_age_s": 30 * DAY_S,
        "hyperparameters": {
            "sequence_length": 32,
            "d_model": 32,
            "nhead": 4,
            "num_layers": 2,
            "max_epochs": 20,
            "batch_size": 64,
            "learning_rate": 0.001,
        },
    },
    {
        "model_type": "ensemble",
        "schedule": "0 5 * * *",
        "drift_threshold": 0.20,
        "performance_threshold": 0.85,
        "strategy": "incremental",
        "max_model_age_s": 30 * DAY_S,
        "hyperparameters": {"members": ["lightgbm", "lstm"]},
    },
)
# each task's default metric (a threshold needs a scale-free one: r2 for regression, where rmse
# is in the target's units) and its threshold per model type; binary's are the rows above
TASK_DEFAULTS: dict[str, tuple[str, dict[str, float]]] = {
    "binary": ("auc", {c["model_type"]: c["performance_threshold"] for c in BINARY_CONFIGS}),
    "multiclass": (
        "auc_ovr",
        {"lightgbm": 0.80, "lstm": 0.75, "transformer": 0.75, "ensemble": 0.85},
    ),
    "regression": ("r2", {"lightgbm": 0.0, "lstm": 0.0, "transformer": 0.0, "ensemble": 0.0}),
}
DEFAULT_CONFIGS: tuple[dict[str, Any], ...] = tuple(
    {**config, "task": task, "performance_metric": metric, "performance_threshold": by_type[t]}
    for task, (metric, by_type) in TASK_DEFAULTS.items()
    for config in BINARY_CONFIGS
    for t in [config["model_type"]]
)


@dataclass(frozen=True)
class InitResult:
    """What `db init` did."""

    database: str
    revision_before: str | None
    revision: str
    configs_added: list[str]
    registry: str  # the database's id (see `core.ownership`)


def init_database(
    engine: Engine, now: datetime, check: Callable[[str], None] = lambda registry: None
) -> InitResult:
    """Upgrade the schema to head and add the missing default configs, in one transaction;
    `check` is given the database's registry id before it commits, and may refuse it."""
    try:
        with engine.connect() as conn, _foreign_keys_checked_at_the_end(conn), conn.begin():
            take_turns(conn, SCHEMA_LOCK)  # racing inits: the later one finds the head
            before, after = _upgrade(conn)
            with Session(bind=conn) as session:
                added = seed_default_configs(session, now)
                session.flush()
                registry = registry_id(session)
                check(registry)
            _require_foreign_keys(conn)
    except OperationalError as exc:
        raise DatabaseError(
            f"cannot initialise {engine.url.render_as_string(hide_password=True)}: "
            f"{scrub(str(exc.orig).strip().splitlines()[0])}"
        ) from exc
    return InitResult(
        database=engine.url.render_as_string(hide_password=True),
        revision_before=before,
        revision=after,
        configs_added=added,
        registry=registry,
    )


def seed_default_configs(session: Session, now: datetime) -> list[str]:
    """Insert the default config of each model type and task that has none; return those added
    (`lightgbm` for a binary row, `lightgbm/regression` for another task's)."""
    table = AutoRetrainingConfig
    present = {(t, k) for t, k in session.execute(select(table.model_type, table.task))}
    added = []
    for default in DEFAULT_CONFIGS:
        key = (default["model_type"], default["task"])
        if key in present:
            continue
        session.add(AutoRetrainingConfig(**default, created_at=now, updated_at=now))
        added.append(key[0] if key[1] == "binary" else "/".join(key))
    return added


@contextmanager
def _foreign_keys_checked_at_the_end(conn: Connection) -> Iterator[None]:
    """SQLite: foreign keys off while the migrations rebuild a table that others reference
    (the pragma only takes effect outside a transaction; `_require_foreign_keys` checks them
    before the commit), on again after."""
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
    conn.commit()
    try:
        yield
    finally:
        conn.rollback()
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.commit()


def _require_foreign_keys(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise DatabaseError(f"the schema upgrade broke {len(broken)} foreign keys: {broken[0]}")


def _upgrade(conn: Connection) -> tuple[str | None, str]:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    before = MigrationContext.configure(conn).get_current_revision()
    if before is not None:
        require_known_revision(before)
    config = alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
    after = MigrationContext.configure(conn).get_current_revision()
    if after is None:
        raise DatabaseError("the schema upgrade ran but left no Alembic revision")
    return before, after


def require_known_revision(revision: str) -> None:
    """A schema revision that no migration of this release made was made by a newer release:
    say so, rather than let Alembic fail on a revision it cannot locate."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError:
        raise DatabaseError(
            f"the database schema is at revision {revision}, which retrain-cli {__version__} "
            "does not know: a newer retrain-cli upgraded it; install that release here "
            "(`retrain-cli --version` on the host that last ran `db init` says which)"
        ) from None


def alembic_config() -> Any:
    """Alembic's config pointing at the migrations shipped inside the package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "retrain_cli.db:migrations")
    return config


def render_postgresql_ddl() -> str:
    """The PostgreSQL DDL of the schema at head, as Alembic renders it offline (`schemas.sql`)."""
    import io

    from alembic import command

    buffer = io.StringIO()
    config = alembic_config()
    config.output_buffer = buffer
    command.upgrade(config, "head", sql=True)
    header = (
        "-- retrain-cli: PostgreSQL DDL of the six tables, rendered from the Alembic migrations\n"
        "-- by `retrain-cli db sql`. Applying it by hand and then running `retrain-cli db init`\n"
        "-- only seeds the default configs (alembic_version records the revision applied).\n\n"
    )
    return header + buffer.getvalue()
