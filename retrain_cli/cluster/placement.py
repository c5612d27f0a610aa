"""Where each job's work runs: the one place that chooses between here and the Dask cluster.

A job with `compute: dask` sends its work to the cluster when the `dask` extra is installed and
a scheduler is configured; LightGBM on Parquet training data trains there, every other family
and format here; Parquet windows are profiled and counted there. Each result says where its work
ran, and why a `compute: dask` job's ran here (docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from retrain_cli.cluster.backend import DaskBackend
from retrain_cli.cluster.client import Cluster
from retrain_cli.compute.interface import Placed
from retrain_cli.compute.local import LOCAL
from retrain_cli.core import paths
from retrain_cli.data import sources
from retrain_cli.trainers.lightgbm_trainer import LightGBMTrainer

if TYPE_CHECKING:
    from retrain_cli.core.settings import Settings
    from retrain_cli.jobs.spec import DataSource
    from retrain_cli.jobs.store import EffectiveJob
    from retrain_cli.trainers.base import Trainer


@contextmanager
def cluster_placement(settings: Settings) -> Iterator[ClusterPlacement]:
    """The configured cluster's placement, connected on first use and closed with the command."""
    log = paths.log_file(settings.logs_dir, "warnings.log")
    with Cluster(settings.dask_scheduler, settings.dask_timeout_s, log) as cluster:
        yield ClusterPlacement(cluster)


class ClusterPlacement:
    """Where each job's work runs, with the configured cluster at hand."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def _placed(self, job: EffectiveJob) -> Placed:
        on_cluster, note = self.cluster.placement(job.spec.compute)
        return Placed(DaskBackend(on_cluster) if on_cluster else LOCAL, note)

    def for_drift(self, job: EffectiveJob) -> Placed:
        return self._placed(job)

    def for_training(self, job: EffectiveJob, trainer: Trainer) -> Placed:
        placed = self._placed(job)
        if placed.backend is LOCAL:
            return placed
        if not isinstance(trainer, LightGBMTrainer):
            return Placed(
                LOCAL, f"{trainer.name} models train here; LightGBM trains on the cluster"
            )
        if not sources.is_parquet(job.spec.data.train):
            return Placed(LOCAL, "CSV and SQL training data is read and trained on here")
        return placed

    def for_profile(self, job: EffectiveJob, source: DataSource) -> Placed:
        placed = self._placed(job)
        if placed.backend is not LOCAL and not sources.is_parquet(source):
            return Placed(LOCAL, "CSV and SQL windows are profiled here")
        return placed
