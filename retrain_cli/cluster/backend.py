"""The work of a `Backend`, done on a Dask cluster: training rows kept in the workers' memory and
LightGBM trained there (`training`), profiles built there (`profile`), a current window counted
one Parquet file or row group per task. Windows that are not Parquet are read here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain_cli.cluster import profile as cluster_profile
from retrain_cli.cluster import training
from retrain_cli.cluster.client import Cluster, run_all
from retrain_cli.cluster.training import ClusterRows
from retrain_cli.compute.local import LOCAL, reference_layout
from retrain_cli.data import contracts, sources, streaming
from retrain_cli.data.summary import SummaryState, WindowSummary

if TYPE_CHECKING:
    from datetime import datetime

    from retrain_cli.data.columns import Columns
    from retrain_cli.data.contracts import Violation
    from retrain_cli.data.profile import Profile
    from retrain_cli.data.training import Prepared
    from retrain_cli.jobs.sections import SchemaSpec
    from retrain_cli.jobs.spec import DataSource
    from retrain_cli.jobs.store import EffectiveJob
    from retrain_cli.trainers.base import Trainer, TrainingContext


class DaskBackend:
    where = "dask"

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def prepare_training(self, job: EffectiveJob) -> Prepared[ClusterRows]:
        return training.prepare(job, self.cluster.client())

    def fit(
        self,
        trainer: Trainer,
        prepared: Prepared[ClusterRows],
        context: TrainingContext,
        init_from: Path | None,
    ) -> None:
        training.fit(trainer, prepared.train, context, init_from)

    def profile_training(self, prepared: Prepared[ClusterRows], bins: int) -> Profile:
        return training.profile_rows(prepared.train, prepared.categorical, bins)

    def profile(self, source: DataSource, columns: Columns, bins: int) -> Profile:
        if not sources.is_parquet(source):
            return LOCAL.profile(source, columns, bins)
        dataset = sources.parquet_dataset(source, "reference")
        kinds, rows = reference_layout(dataset, source, columns)
        parts = streaming.partitions(source, "reference", list(kinds)) or []
        return cluster_profile.build(
            self.cluster.client(),
            parts,
            streaming.partition_column,
            kinds,
            bins,
            rows,
            "reference window",
        )

    def count(self, source: DataSource, summary: WindowSummary, numeric: list[str]) -> str:
        parts = streaming.partitions(source, "current", summary.names)
        if parts is None:  # CSV and SQL windows are streamed here
            return LOCAL.count(source, summary, numeric)
        for state in run_all(
            self.cluster.client(),
            summarize,
            parts,
            {"profile": summary.profile},
            names=summary.names,
            ordered=summary.ordered,
            role="current",
        ):
            summary.merge(state)
        return self.where

    def check_contract(
        self,
        source: DataSource,
        role: str,
        contract: SchemaSpec,
        time_column: str | None,
        now: datetime,
    ) -> list[Violation]:
        """A Parquet window counted one file or row group per task, the parts' counts merged
        here (key sets too: uniqueness stays exact); other windows are streamed here."""
        planned = contracts.plan(source, role, contract, time_column)
        parts = streaming.partitions(source, role, planned.names) if planned.names else None
        if parts is None:
            return LOCAL.check_contract(source, role, contract, time_column, now)
        totals = contracts.Totals()
        client = self.cluster.client()
        for state in run_all(client, count_contract, parts, {}, planned=planned, role=role):
            totals.merge(state)
        return contracts.verdicts(planned, totals, contract, now)


def count_contract(part: Any, planned: contracts.Plan, role: str) -> contracts.Totals:
    """A task on a cluster worker: one partition of a window counted for a data contract."""
    return contracts.count(streaming.partition_batches(part, role, planned.names), planned)


def summarize(
    part: Any, profile: Profile, names: list[str], ordered: bool, role: str
) -> SummaryState:
    """A task on a cluster worker: one partition of a window, counted against `profile`."""
    summary = WindowSummary(profile, names, ordered=ordered)
    for batch in streaming.partition_batches(part, role, names):
        summary.add(batch)
    return summary.state()
