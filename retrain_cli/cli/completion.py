"""Shell completion of job and model names, read from the database.

Completion runs on every <TAB>: it must be quick and must never print an error, so a database
that is slow or unreachable completes nothing.
"""

from __future__ import annotations

from pathlib import Path

CONNECT_TIMEOUT_S = 2


def job_names(incomplete: str) -> list[str]:
    return _names("name", incomplete)


def model_names(incomplete: str) -> list[str]:
    return _names("model_name", incomplete)  # every model is some job's


def _names(name: str, incomplete: str) -> list[str]:
    try:
        # a lightweight table clause, not the ORM models: mapping them all would cost a TAB
        # press a tenth of a second (the test of completion keeps the names in step)
        from sqlalchemy import column as named_column
        from sqlalchemy import select, table

        from retrain_cli.core.settings import load_settings
        from retrain_cli.db.session import make_engine

        url = load_settings().database_url
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
            return []  # no database yet: completing must not create one
        column = table("auto_retraining_jobs", named_column(name)).c[name]
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
