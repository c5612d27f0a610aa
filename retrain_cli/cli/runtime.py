"""Open the settings, engine and the one session of a command run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from retrain_cli.db.session import make_engine, session_scope
from retrain_cli.durations import utcnow
from retrain_cli.history import sweep_abandoned
from retrain_cli.settings import Settings, load_settings


@contextmanager
def open_session(database_url: str | None) -> Iterator[tuple[Settings, Session]]:
    """The command's settings and its session; committed when the block completes.

    First, in a transaction of its own, runs whose process died are marked abandoned: every
    command notices them, not only the next retrain.
    """
    settings = load_settings(database_url)
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            sweep_abandoned(session, utcnow())
        with session_scope(engine, check_schema=False) as session:
            yield settings, session
    finally:
        engine.dispose()
