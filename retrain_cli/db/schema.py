"""Create or upgrade the schema with Alembic, and seed the per-type defaults (`db init`)."""

from __future__ import annotations

from collections.abc import Callable
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

# The four model types' defaults (docs/job-files.md); `db init` inserts the missing ones and never
# overwrites an edited row.
DEFAULT_CONFIGS: tuple[dict[str, Any], ...] = (
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
        with engine.begin() as conn:
            take_turns(conn, SCHEMA_LOCK)  # racing inits: the later one finds the head
            before, after = _upgrade(conn)
            with Session(bind=conn) as session:
                added = seed_default_configs(session, now)
                session.flush()
                registry = registry_id(session)
                check(registry)
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
    """Insert the default config of each model type that has none; return the types added."""
    present = set(session.scalars(select(AutoRetrainingConfig.model_type)))
    added = []
    for default in DEFAULT_CONFIGS:
        if default["model_type"] in present:
            continue
        session.add(AutoRetrainingConfig(**default, created_at=now, updated_at=now))
        added.append(default["model_type"])
    return added


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
