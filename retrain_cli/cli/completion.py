"""Shell completion of job and model names, read from the database.

Completion runs on every <TAB>: it must be quick and must never print an error, so a database
that is slow or unreachable completes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONNECT_TIMEOUT_S = 2


def job_names(incomplete: str) -> list[str]:
    from retrain_cli.db.models import AutoRetrainingJob

    return _names(AutoRetrainingJob.name, incomplete)


def model_names(incomplete: str) -> list[str]:
    from retrain_cli.db.models import AutoRetrainingJob

    return _names(AutoRetrainingJob.model_name, incomplete)  # every model is some job's


def _names(column: Any, incomplete: str) -> list[str]:
    try:
        from sqlalchemy import select

        from retrain_cli.core.settings import load_settings
        from retrain_cli.db.session import make_engine

        url = load_settings().database_url
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
            return []  # no database yet: completing must not create one
        engine = make_engine(url, connect_timeout=CONNECT_TIMEOUT_S)
        try:
            with engine.connect() as conn:
                query = (
                    select(column)
                    .distinct()
                    .where(column.startswith(incomplete, autoescape=True))
                    .order_by(column)
                    .limit(500)
                )
                return list(conn.scalars(query))
        finally:
            engine.dispose()
    except Exception:  # completion never fails the shell
        return []
