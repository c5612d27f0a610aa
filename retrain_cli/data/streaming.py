"""A window in pieces, never whole: its record batches for one streaming pass (`iter_batches`),
and the partitions that a cluster's tasks read one each (`partitions`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from retrain_cli.data.sources import (
    guarded,
    is_dataset,
    is_parquet,
    parquet_dataset,
    parquet_file,
    read_query,
    reading,
    require_columns,
)
from retrain_cli.jobs.spec import DataSource
from retrain_cli.store.objects import filesystem as store
from retrain_cli.store.objects import is_url

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

T = TypeVar("T")
BATCH_ROWS = 1 << 17  # rows per streamed record batch (Arrow's own default)


def iter_batches(
    source: DataSource, role: str, columns: Sequence[str], numeric: Sequence[str] = ()
) -> Iterator[pa.RecordBatch]:
    """The window's `columns` in record batches of at most `BATCH_ROWS` rows: Parquet row groups
    one after another (a dataset file by file), CSV and SQL in chunks. CSV columns in `numeric`
    are parsed as numbers and the others as text, in every chunk alike."""
    import pyarrow as pa

    parts = partitions(source, role, columns)
    if parts is not None:
        for part in parts:
            yield from partition_batches(part, role, columns)
        return
    for chunk in _guarded_chunks(source, role, columns, numeric):
        yield pa.RecordBatch.from_pandas(chunk, preserve_index=False)


class Partition(NamedTuple):
    """A piece of a Parquet window that one task reads: a file of a dataset (with its hive
    partition values), or some row groups of one file."""

    path: str
    keys: dict[str, pa.Scalar]
    row_groups: list[int] | None


def partitions(source: DataSource, role: str, columns: Sequence[str]) -> list[Partition] | None:
    """A Parquet window's files (of a dataset) or row groups (of one file); None for CSV and
    SQL, which are read in chunks instead."""
    if not is_parquet(source):
        return None
    path = str(source.path)
    # an object's partition names its store (`s3://...`): a cluster's worker reads it there
    url = store(path)[0].unstrip_protocol if is_url(path) else str
    if is_dataset(source):
        dataset = parquet_dataset(source, role, columns)
        return [
            Partition(url(fragment.path), _partition_keys(fragment, dataset.schema), None)
            for fragment in dataset.get_fragments()
        ]
    parquet = guarded(path, role, lambda: parquet_file(path, role, columns))
    return [Partition(path, {}, [group]) for group in range(parquet.num_row_groups)]


def partition_batches(
    part: Partition, role: str, columns: Sequence[str]
) -> Iterator[pa.RecordBatch]:
    """One partition's batches, one row group decoded at a time, its hive partition values
    added as constant columns (`pyarrow.dataset`'s scanner would read ahead across files)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = part.path
    names = list(columns)
    stored = [name for name in names if name not in part.keys]

    def batches() -> Iterator[pa.RecordBatch]:
        remote = is_url(path)
        if remote:
            fs, inner = store(path)
            opened: Any = fs.open(inner, "rb")
        else:
            opened = path
        # from a store, each row group's column chunks in a few coalesced range requests
        # (pyarrow's pre-buffering), not one request per buffer
        parquet = pq.ParquetFile(opened, pre_buffer=remote, buffer_size=1 << 20)
        for batch in parquet.iter_batches(
            batch_size=BATCH_ROWS, columns=stored, row_groups=part.row_groups
        ):
            if not part.keys:
                yield batch
                continue
            arrays = [
                pa.repeat(part.keys[name], batch.num_rows)
                if name in part.keys
                else batch.column(name)
                for name in names
            ]
            yield pa.RecordBatch.from_arrays(arrays, names=names)

    yield from _guarded_iter(path, role, batches())


def partition_column(part: Partition, name: str, role: str = "reference") -> pa.Array:
    """One column of one partition, whole (a task on a cluster worker)."""
    import pyarrow as pa

    chunks = [batch.column(0) for batch in partition_batches(part, role, [name])]
    return pa.concat_arrays(chunks) if chunks else pa.array([])


def _partition_keys(fragment: Any, schema: pa.Schema) -> dict[str, pa.Scalar]:
    import pyarrow as pa
    import pyarrow.dataset as ds

    keys = ds.get_partition_keys(fragment.partition_expression)
    return {name: pa.scalar(value, schema.field(name).type) for name, value in keys.items()}


def _guarded_chunks(
    source: DataSource, role: str, columns: Sequence[str], numeric: Sequence[str]
) -> Iterator[pd.DataFrame]:
    import pandas as pd

    if source.path is None:
        yield from (frame[list(columns)] for frame in _query_chunks(source, role, columns))
        return
    path = source.path
    types = {name: "float64" if name in numeric else "str" for name in columns}

    def open_chunks() -> Iterator[pd.DataFrame]:
        require_columns(pd.read_csv(path, nrows=0).columns, columns, f"{role} data {path}")
        return iter(pd.read_csv(path, usecols=list(columns), dtype=types, chunksize=BATCH_ROWS))

    yield from _guarded_iter(path, role, guarded(path, role, open_chunks))


def _guarded_iter(path: str, role: str, items: Iterator[T]) -> Iterator[T]:
    """`reading` for each step of a reader that fails as it goes."""
    end = object()
    while (item := reading(path, role, lambda: next(items, end))) is not end:
        yield item  # type: ignore[misc]


def _query_chunks(source: DataSource, role: str, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
    frame = read_query(source.url or "", source.query or "", role)
    require_columns(frame.columns, columns, f"{role} query")
    for start in range(0, len(frame), BATCH_ROWS):
        yield frame.iloc[start : start + BATCH_ROWS]
