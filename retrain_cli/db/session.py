"""The one place that makes engines and sessions.

A command run opens one `session_scope`: it commits when the block completes and rolls back when it
raises, so a failed command leaves the tables as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from retrain_cli.core.errors import ConfigError, DatabaseError
from retrain_cli.core.private import create_private, private_dir
from retrain_cli.core.redaction import check_url, redact_url, scrub

# The Alembic revision this release's models correspond to (a test keeps it equal to the head).
SCHEMA_REVISION = "0011_runs_and_windows"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, *, connect_timeout: int = 10) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and foreign keys on every connection."""
    try:
        parsed = check_url(url, "the database URL")
    except ConfigError as exc:
        raise DatabaseError(str(exc)) from exc
    parsed = with_default_driver(parsed)
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            database = Path(parsed.database).expanduser()
            private_dir(database.parent)
            create_private(database)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs["pool_pre_ping"] = True
        if parsed.get_backend_name() == "postgresql":
            kwargs["connect_args"] = {
                "connect_timeout": connect_timeout,
                "application_name": "retrain-cli",
            }
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise DatabaseError(f"no driver for {redact_url(url)}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def with_default_driver(url: URL) -> URL:
    """`postgresql://` means psycopg2, the driver retrain-cli depends on (SQLAlchemy 2.1 would
    pick psycopg 3)."""
    return url.set(drivername="postgresql+psycopg2") if url.drivername == "postgresql" else url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@contextmanager
def session_scope(engine: Engine, *, check_schema: bool = True) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception.

    Connection failures become one `DatabaseError` line with the password masked.
    """
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    url = engine.url.render_as_string(hide_password=False)
    try:
        if check_schema:
            ensure_schema(engine)
        with factory() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
    except OperationalError as exc:
        raise DatabaseError(
            f"cannot use database {redact_url(url)}: {scrub(_reason(exc))}"
        ) from exc


def ensure_schema(engine: Engine) -> None:
    """Fail with a clear hint when the schema is missing or at another revision."""
    with engine.connect() as conn:
        found = None
        if inspect(conn).has_table("alembic_version"):
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if found is None:
        raise DatabaseError("the database has no retrain-cli schema: run `retrain-cli db init`")
    if found != SCHEMA_REVISION:
        # here, not at import: the schema module maps the ORM models, which completion and
        # a URL check do without
        from retrain_cli.db.schema import require_known_revision

        require_known_revision(found)
        raise DatabaseError(
            f"the database schema is at revision {found}, this retrain-cli expects "
            f"{SCHEMA_REVISION}: run `retrain-cli db init` to upgrade it"
        )


def _reason(exc: DBAPIError) -> str:
    lines = [ln.strip() for ln in str(exc.orig).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc.orig).__name__
