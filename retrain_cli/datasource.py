"""Read a job's data sources: Parquet, CSV, or an SQL query against any SQLAlchemy URL.

A source (`jobspec.DataSource`) is a file path, or an SQL query against a SQLAlchemy URL; `${VAR}`
in a URL is expanded from the environment so that passwords stay out of job files and the database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from retrain_cli.errors import DataError
from retrain_cli.jobspec import DataSource
from retrain_cli.redaction import check_url, redact_url, remember, scrub

T = TypeVar("T")

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def describe(source: DataSource) -> str:
    """A printable name of the source, without secrets."""
    return source.path if source.path is not None else redact_url(source.url or "")


def read_frame(source: DataSource, role: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Load `columns` (default: all) of one source; raise `DataError` naming what is wrong."""
    if _is_parquet(source):
        # one block per column, built on Arrow's buffers where it can (no full copy)
        return read_table(source, role, columns).to_pandas(split_blocks=True)
    return _nonempty(_read_with_pandas(source, role, columns), source, role)


def read_table(source: DataSource, role: str, columns: Sequence[str] | None = None) -> pa.Table:
    """`read_frame` as an Arrow table: Parquet is never converted to a pandas frame."""
    if _is_parquet(source):
        path = Path(str(source.path))
        table = _guarded(path, role, lambda: _read_parquet(path, role, columns))
        return _nonempty(table, source, role)
    import pyarrow as pa

    frame = read_frame(source, role, columns)
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(
            f"{role} data {describe(source)}: {_mixed(frame) or _first_line(exc)}"
        ) from exc


def _mixed(frame: pd.DataFrame) -> str | None:
    """Which columns hold values of more than one type (text and numbers, say)."""
    import pandas as pd

    mixed = [
        str(name)
        for name in frame.columns
        if frame[name].dtype == object
        and pd.api.types.infer_dtype(frame[name], skipna=True).startswith("mixed")
    ]
    if not mixed:
        return None
    return f"column {', '.join(map(repr, mixed))} mixes values of several types (text and numbers)"


def file_source(path: Path | str) -> DataSource:
    return DataSource(path=str(Path(path).expanduser().resolve()))


def _is_parquet(source: DataSource) -> bool:
    return source.path is not None and Path(source.path).suffix.lower() in (".parquet", ".pq")


class _Shaped(Protocol):
    @property
    def shape(self) -> tuple[int, int]: ...


S = TypeVar("S", bound=_Shaped)


def _nonempty(frame: S, source: DataSource, role: str) -> S:
    if 0 in frame.shape:
        raise DataError(f"{role} data {describe(source)} is empty")
    return frame


def _read_with_pandas(source: DataSource, role: str, columns: Sequence[str] | None) -> pd.DataFrame:
    """CSV files and SQL queries."""
    if source.path is None:
        frame = _read_query(source.url or "", source.query or "", role)
        _require_columns(frame.columns, columns, f"{role} query")
        return frame[list(columns)] if columns is not None else frame
    path = Path(source.path)
    return _guarded(path, role, lambda: _read_csv(path, role, columns))


def _guarded(path: Path, role: str, read: Callable[[], T]) -> T:
    """Run `read`, turning a missing file and any reader's error into one `DataError` line."""
    if not path.is_file():
        raise DataError(f"{role} data {path}: no such file")
    try:
        return read()
    except DataError:
        raise
    except Exception as exc:  # pyarrow, pandas and OS errors: one line naming the file
        raise DataError(f"{role} data {path}: cannot read: {_first_line(exc)}") from exc


def _read_parquet(path: Path, role: str, columns: Sequence[str] | None) -> pa.Table:
    """The file memory-mapped: Arrow decodes straight from the page cache instead of first
    copying every column chunk. `ParquetFile`, not `read_table`: that one imports
    `pyarrow.dataset` and pandas."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path, memory_map=True)
    _require_unique(parquet.schema_arrow.names, f"{role} data {path}")
    _require_columns(parquet.schema_arrow.names, columns, f"{role} data {path}")
    return parquet.read(columns=list(columns) if columns is not None else None)


def _read_csv(path: Path, role: str, columns: Sequence[str] | None) -> pd.DataFrame:
    import pandas as pd

    _require_columns(pd.read_csv(path, nrows=0).columns, columns, f"{role} data {path}")
    return pd.read_csv(path, usecols=list(columns) if columns is not None else None)


def _read_query(url: str, query: str, role: str) -> pd.DataFrame:
    import pandas as pd
    from sqlalchemy import create_engine, text

    from retrain_cli.db.session import with_default_driver

    expanded = os.path.expandvars(url)
    remember(expanded)
    parsed = with_default_driver(check_url(expanded, f"{role} data URL"))
    try:
        engine = create_engine(parsed)
        try:
            with engine.connect() as conn:
                return pd.read_sql(text(query), conn)
        finally:
            engine.dispose()
    except Exception as exc:
        reason = scrub(_first_line(exc))
        raise DataError(f"{role} query on {redact_url(url)} failed: {reason}") from exc


def _require_unique(names: Sequence[str], where: str) -> None:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"{where}: column {', '.join(map(repr, repeated))} appears more than once")


def _require_columns(present: Any, wanted: Sequence[str] | None, what: str) -> None:
    if wanted is None:
        return
    missing = [c for c in wanted if c not in set(present)]
    if missing:
        raise DataError(f"{what} has no column {', '.join(map(repr, missing))}")


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__
