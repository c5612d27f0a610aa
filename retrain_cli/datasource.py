"""Read a job's data sources: Parquet, CSV, or an SQL query against any SQLAlchemy URL.

A source is `{"path": ...}` or `{"url": ..., "query": ...}`; `${VAR}` in a URL is expanded from the
environment so that passwords stay out of job files and the database.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain_cli.errors import DataError
from retrain_cli.settings import redact_text, redact_url

if TYPE_CHECKING:
    import pandas as pd


def describe(source: dict[str, str]) -> str:
    """A printable name of the source, without secrets."""
    return source["path"] if "path" in source else redact_url(source["url"])


def read_frame(
    source: dict[str, str], role: str, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Load `columns` (default: all) of one source; raise `DataError` naming what is wrong."""
    if "path" in source:
        frame = _read_file(Path(source["path"]), role, columns)
    else:
        frame = _read_query(source["url"], source["query"], role)
        _require_columns(frame.columns, columns, f"{role} query")
        if columns is not None:
            frame = frame[list(columns)]
    if frame.empty:
        raise DataError(f"{role} data {describe(source)} is empty")
    return frame


def file_source(path: Path | str) -> dict[str, str]:
    return {"path": str(Path(path).expanduser().resolve())}


def _read_file(path: Path, role: str, columns: Sequence[str] | None) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{role} data {path}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            _require_columns(pq.read_schema(path).names, columns, f"{role} data {path}")
            selected = list(columns) if columns is not None else None
            table = pq.read_table(path, columns=selected)
            # one block per column, built on Arrow's buffers where it can (no full copy);
            # self_destruct frees each Arrow column once converted
            return table.to_pandas(split_blocks=True)
        header = pd.read_csv(path, nrows=0).columns
        _require_columns(header, columns, f"{role} data {path}")
        return pd.read_csv(path, usecols=list(columns) if columns is not None else None)
    except DataError:
        raise
    except Exception as exc:  # pyarrow, pandas and OS errors: one line naming the file
        raise DataError(f"{role} data {path}: cannot read: {_first_line(exc)}") from exc


def _read_query(url: str, query: str, role: str) -> pd.DataFrame:
    import pandas as pd
    from sqlalchemy import create_engine, text

    expanded = os.path.expandvars(url)
    try:
        engine = create_engine(expanded)
        try:
            with engine.connect() as conn:
                return pd.read_sql(text(query), conn)
        finally:
            engine.dispose()
    except Exception as exc:
        reason = redact_text(_first_line(exc), expanded)
        raise DataError(f"{role} query on {redact_url(url)} failed: {reason}") from exc


def _require_columns(present: Any, wanted: Sequence[str] | None, what: str) -> None:
    if wanted is None:
        return
    missing = [c for c in wanted if c not in set(present)]
    if missing:
        raise DataError(f"{what} has no column {', '.join(map(repr, missing))}")


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__
