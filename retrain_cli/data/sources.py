"""Read a job's data sources: Parquet, CSV, or an SQL query against any SQLAlchemy URL.

A source (`jobspec.DataSource`) is a file path, a Parquet dataset (a directory, hive-partitioned or
not, or a glob of Parquet files, read with `pyarrow.dataset`), or an SQL query against a SQLAlchemy
URL; `${VAR}` in a URL is expanded from the environment so that passwords stay out of job files and
the database. A window is read whole here (`read_table`, `read_frame`), or streamed in record
batches by `streaming`.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from retrain_cli.core.errors import DataError
from retrain_cli.core.redaction import check_url, redact_url, remember, scrub
from retrain_cli.db.session import with_default_driver
from retrain_cli.jobs.spec import GLOB_CHARS, DataSource
from retrain_cli.store.objects import filesystem as store
from retrain_cli.store.objects import is_url

T = TypeVar("T")

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq


def describe(source: DataSource) -> str:
    """A printable name of the source, without secrets."""
    return _shown(source.path) if source.path is not None else redact_url(source.url or "")


def read_frame(source: DataSource, role: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Load `columns` (default: all) of one source; raise `DataError` naming what is wrong."""
    if is_parquet(source):
        # one block per column, built on Arrow's buffers where it can (no full copy)
        return read_table(source, role, columns).to_pandas(split_blocks=True)
    return _nonempty(_read_with_pandas(source, role, columns), source, role)


def read_table(source: DataSource, role: str, columns: Sequence[str] | None = None) -> pa.Table:
    """`read_frame` as an Arrow table: Parquet is never converted to a pandas frame."""
    if is_parquet(source):
        path = str(source.path)
        if is_dataset(source):
            dataset = parquet_dataset(source, role, columns)
            table = guarded(path, role, lambda: dataset.to_table(columns=_listed(columns)))
        else:
            table = guarded(path, role, lambda: _read_parquet(path, role, columns))
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


def column_types(source: DataSource, role: str) -> dict[str, pa.DataType | None] | None:
    """The window's columns without reading its rows: Parquet with their types, CSV by its
    header (types unknown); None for a query."""
    if is_parquet(source):
        path = str(source.path)
        schema = (
            parquet_dataset(source, role).schema
            if is_dataset(source)
            else guarded(path, role, lambda: parquet_file(path, role, None)).schema_arrow
        )
        return {name: schema.field(name).type for name in schema.names}
    if source.path is None:
        return None
    import pandas as pd

    path = source.path
    header = guarded(path, role, lambda: pd.read_csv(path, nrows=0).columns)
    return dict.fromkeys(map(str, header))


def row_count(source: DataSource, role: str) -> int | None:
    """The window's rows from Parquet metadata (no data read); None for CSV and SQL."""
    if not is_parquet(source):
        return None
    path = str(source.path)
    if not is_dataset(source):
        return int(guarded(path, role, lambda: parquet_file(path, role, None).metadata.num_rows))
    dataset = parquet_dataset(source, role)
    return int(guarded(path, role, dataset.count_rows))


def is_dataset(source: DataSource) -> bool:
    """A directory or a glob of Parquet files rather than one file."""
    path = source.path
    if path is None:
        return False
    if is_url(path):  # an object store has no directories to ask about: a prefix ends in '/'
        return bool(GLOB_CHARS.search(path)) or path.endswith("/")
    return bool(GLOB_CHARS.search(path)) or Path(path).is_dir()


def parquet_dataset(
    source: DataSource, role: str, columns: Sequence[str] | None = None
) -> ds.Dataset:
    """A Parquet file or dataset: a directory (hive partitions become columns; files whose
    names start with '.' or '_' are skipped) or the files a glob matches, in name order."""
    import pyarrow.dataset as ds

    path = str(source.path)
    fs, inner = store(path) if is_url(path) else (None, path)
    target: str | list[str] = inner
    if GLOB_CHARS.search(path):
        if fs is None:
            target = sorted(p for p in glob.glob(path) if Path(p).is_file())
        else:
            found = reading(path, role, lambda: fs.glob(inner, detail=True))
            target = sorted(p for p, info in found.items() if info.get("type") == "file")
        if not target:
            raise DataError(f"{role} data {path}: no file matches")
    where = path if fs is not None else target[0] if isinstance(target, list) else target
    dataset = guarded(
        where,
        role,
        lambda: ds.dataset(target, format="parquet", partitioning="hive", filesystem=fs),
    )
    if not dataset.files:
        raise DataError(f"{role} data {path}: no Parquet files")
    _require_unique(dataset.schema.names, f"{role} data {path}")
    require_columns(dataset.schema.names, columns, f"{role} data {path}")
    return dataset


def source_fingerprint(source: DataSource, role: str) -> dict[str, Any]:
    """What says a window has changed without reading it: each file's name, size and
    modification time; for a query, its URL (without secrets) and a digest of its text."""
    if source.path is None:
        digest = hashlib.sha256((source.query or "").encode()).hexdigest()
        return {"url": redact_url(source.url or ""), "query_sha256": digest}
    if is_url(source.path):
        fs, inner = store(source.path)
        names = parquet_dataset(source, role).files if is_dataset(source) else [inner]
        infos: list[dict[str, Any]] = [
            reading(source.path, role, partial(fs.info, n)) for n in names
        ]
        # an object's ETag changes with its content; LastModified where a store has no ETag
        stamps = [str(i.get("ETag") or i.get("LastModified") or i.get("mtime")) for i in infos]
        return {
            "path": source.path,
            "files": [[n, i.get("size"), t] for n, i, t in zip(names, infos, stamps, strict=True)],
        }
    if is_dataset(source):
        files = [Path(f) for f in parquet_dataset(source, role).files]
    else:
        files = [Path(source.path)]
    stats = []
    for file in files:
        stat = guarded(file, role, file.stat)
        stats.append([str(file), stat.st_size, stat.st_mtime_ns])
    return {"path": source.path, "files": stats}


def _listed(columns: Sequence[str] | None) -> list[str] | None:
    return list(columns) if columns is not None else None


def file_source(path: Path | str) -> DataSource:
    if isinstance(path, str) and is_url(path):
        return DataSource(path=path)
    return DataSource(path=str(Path(path).expanduser().resolve()))


def is_parquet(source: DataSource) -> bool:
    if source.path is None:
        return False
    suffix = PurePosixPath(source.path).suffix.lower()
    return suffix in (".parquet", ".pq") or is_dataset(source)


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
        frame = read_query(source.url or "", source.query or "", role)
        require_columns(frame.columns, columns, f"{role} query")
        return frame[list(columns)] if columns is not None else frame
    path = source.path
    return guarded(path, role, lambda: _read_csv(path, role, columns))


def guarded(path: Path | str, role: str, read: Callable[[], T]) -> T:
    """Run `read`, turning a missing file and any reader's error into one `DataError` line."""
    where = str(path)
    if is_url(where):
        fs, inner = store(where)
        found = GLOB_CHARS.search(where) or reading(where, role, lambda: fs.exists(inner))
    else:
        found = Path(where).is_file() or Path(where).is_dir() or GLOB_CHARS.search(where)
    if not found:
        raise DataError(f"{role} data {_shown(where)}: no such file")
    return reading(where, role, read)


def reading(where: Path | str, role: str, read: Callable[[], T]) -> T:
    """Run `read`, turning any reader's error into one `DataError` line naming the file (an
    object store's error without its credentials)."""
    try:
        return read()
    except DataError:
        raise
    except Exception as exc:  # pyarrow, pandas, OS and object-store errors
        reason = scrub(_first_line(exc))
        raise DataError(f"{role} data {_shown(where)}: cannot read: {reason}") from exc


def _shown(where: Path | str) -> str:
    """A path as it is, a store's URL without a password it may carry."""
    return redact_url(str(where)) if is_url(str(where)) else str(where)


def _read_parquet(path: str, role: str, columns: Sequence[str] | None) -> pa.Table:
    """The file memory-mapped: Arrow decodes straight from the page cache instead of first
    copying every column chunk. `ParquetFile`, not `read_table`: that one imports
    `pyarrow.dataset` and pandas."""
    parquet = parquet_file(path, role, columns)
    return parquet.read(columns=list(columns) if columns is not None else None)


def parquet_file(path: Path | str, role: str, columns: Sequence[str] | None) -> pq.ParquetFile:
    """A local file memory-mapped; an object opened through fsspec, read by ranges."""
    import pyarrow.parquet as pq

    if is_url(str(path)):
        fs, inner = store(str(path))
        parquet = pq.ParquetFile(fs.open(inner, "rb"), pre_buffer=True)
    else:
        parquet = pq.ParquetFile(path, memory_map=True)
    _require_unique(parquet.schema_arrow.names, f"{role} data {path}")
    require_columns(parquet.schema_arrow.names, columns, f"{role} data {path}")
    return parquet


def _read_csv(path: str, role: str, columns: Sequence[str] | None) -> pd.DataFrame:
    import pandas as pd

    require_columns(pd.read_csv(path, nrows=0).columns, columns, f"{role} data {path}")
    return pd.read_csv(path, usecols=list(columns) if columns is not None else None)


def read_query(url: str, query: str, role: str) -> pd.DataFrame:
    import pandas as pd
    from sqlalchemy import create_engine, text

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


def require_columns(present: Any, wanted: Sequence[str] | None, what: str) -> None:
    if wanted is None:
        return
    missing = [c for c in wanted if c not in set(present)]
    if missing:
        raise DataError(f"{what} has no column {', '.join(map(repr, missing))}")


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__
