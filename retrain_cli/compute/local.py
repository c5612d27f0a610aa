"""The work of a `Backend`, done here: training rows read whole, windows streamed in record batches
(their columns counted on a thread pool), profiles built one column at a time."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from retrain_cli.compute.interface import Placed
from retrain_cli.core.errors import DataError
from retrain_cli.core.threads import usable_cores
from retrain_cli.data import contracts, sources, streaming
from retrain_cli.data import profile as profiles
from retrain_cli.data.columns import Columns, column_kind
from retrain_cli.data.training import Prepared, TrainingData, prepare

if TYPE_CHECKING:
    from datetime import datetime

    import pyarrow as pa
    import pyarrow.dataset as ds

    from retrain_cli.data.contracts import Violation
    from retrain_cli.data.profile import Profile
    from retrain_cli.data.summary import WindowSummary
    from retrain_cli.jobs.sections import SchemaSpec
    from retrain_cli.jobs.spec import DataSource
    from retrain_cli.jobs.store import EffectiveJob
    from retrain_cli.trainers.base import Trainer, TrainingContext


class LocalBackend:
    where = "local"

    def prepare_training(self, job: EffectiveJob) -> Prepared[TrainingData]:
        return prepare(job)

    def fit(
        self,
        trainer: Trainer,
        prepared: Prepared[TrainingData],
        context: TrainingContext,
        init_from: Path | None,
    ) -> None:
        trainer.fit(prepared.train, context, init_from)

    def profile_training(self, prepared: Prepared[TrainingData], bins: int) -> Profile:
        import pyarrow as pa

        table = pa.Table.from_pandas(prepared.train.features, preserve_index=False)
        columns = Columns(features=prepared.features, categorical=prepared.categorical)
        return profile_table(table, columns, bins, "training data")

    def profile(self, source: DataSource, columns: Columns, bins: int) -> Profile:
        """A Parquet file or dataset one column at a time, a CSV file or query whole."""
        if not sources.is_parquet(source):
            table = sources.read_table(source, "reference")
            return profile_table(table, columns, bins, "reference window")
        dataset = sources.parquet_dataset(source, "reference")
        kinds, rows = reference_layout(dataset, source, columns)
        return profiles.build(
            lambda name: dataset.to_table(columns=[name]).column(0),
            kinds,
            bins,
            rows,
            "reference window",
        )

    def count(self, source: DataSource, summary: WindowSummary, numeric: list[str]) -> str:
        with ThreadPoolExecutor(max_workers=usable_cores()) as pool:
            for batch in streaming.iter_batches(source, "current", summary.names, numeric):
                summary.add(batch, pool)
        return self.where

    def check_contract(
        self,
        source: DataSource,
        role: str,
        contract: SchemaSpec,
        time_column: str | None,
        now: datetime,
    ) -> list[Violation]:
        return contracts.check(source, role, contract, time_column, now)


LOCAL = LocalBackend()


class LocalPlacement:
    """Every job's work here: what the library does when no cluster is given."""

    def for_training(self, job: EffectiveJob, trainer: Trainer) -> Placed:
        return Placed(LOCAL, None)

    def for_drift(self, job: EffectiveJob) -> Placed:
        return Placed(LOCAL, None)

    def for_profile(self, job: EffectiveJob, source: DataSource) -> Placed:
        return Placed(LOCAL, None)


def reference_layout(
    dataset: ds.Dataset, source: DataSource, columns: Columns
) -> tuple[dict[str, str], int]:
    """The kind of each column to profile in a Parquet reference window, and its rows."""
    names = profiled_names(dataset.schema.names, columns)
    kinds = {name: column_kind(dataset.schema.field(name).type, name, columns) for name in names}
    rows = dataset.count_rows()
    if rows == 0:
        raise DataError(f"reference data {sources.describe(source)} is empty")
    return kinds, rows


def profile_table(table: pa.Table, columns: Columns, bins: int, built_from: str) -> Profile:
    names = profiled_names(table.column_names, columns)
    kinds = {name: column_kind(table.schema.field(name).type, name, columns) for name in names}
    return profiles.build(table.column, kinds, bins, table.num_rows, built_from)


def profiled_names(present: Sequence[str], columns: Columns) -> list[str]:
    """The features of a reference window, and its prediction and target columns when it has
    them."""
    if columns.features is not None:
        names = list(columns.features)
        missing = [name for name in names if name not in present]
        if missing:
            raise DataError(f"feature {missing[0]!r} is missing from the reference window")
    else:
        skip = {*columns.excluded, *columns.outputs}
        names = [c for c in present if c not in skip]
    if not names:
        raise DataError("no feature columns to compare")
    names += [c for c in columns.outputs if c in present and c not in names]
    return names
