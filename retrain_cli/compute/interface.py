"""The work that may run here or on a Dask cluster, and the choice of where.

`Backend` is implemented twice: `local.LocalBackend` here, `retrain_cli.cluster.backend` on Dask.
A `Placement` picks one per job and says why a job that asked for the cluster runs here; the
command line makes the one that knows the cluster (`retrain_cli.cluster.placement`), and the
library's callers (a retrain, a drift check, a profile build) only ever call these methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

if TYPE_CHECKING:
    from datetime import datetime

    from retrain_cli.data.columns import Columns
    from retrain_cli.data.contracts import Violation
    from retrain_cli.data.profile import Profile
    from retrain_cli.data.summary import WindowSummary
    from retrain_cli.data.training import Prepared
    from retrain_cli.jobs.sections import SchemaSpec
    from retrain_cli.jobs.spec import DataSource
    from retrain_cli.jobs.store import EffectiveJob
    from retrain_cli.trainers.base import Trainer, TrainingContext


RowsT = TypeVar("RowsT")  # the training rows a backend prepares and trains on


class Backend(Protocol[RowsT]):
    where: str  # "local" or "dask", as results and `--json` say

    def prepare_training(self, job: EffectiveJob) -> Prepared[RowsT]:
        """The job's training rows checked, ordered by time and split (`data.training`)."""
        ...

    def fit(
        self,
        trainer: Trainer,
        prepared: Prepared[RowsT],
        context: TrainingContext,
        init_from: Path | None,
    ) -> None:
        """Train `trainer` on the rows `prepare_training` made."""
        ...

    def profile_training(self, prepared: Prepared[RowsT], bins: int) -> Profile:
        """The profile of the training rows, built where they are."""
        ...

    def profile(self, source: DataSource, columns: Columns, bins: int) -> Profile:
        """The profile of a reference window."""
        ...

    def count(self, source: DataSource, summary: WindowSummary, numeric: list[str]) -> str:
        """Count the current window into `summary`; return where it was counted."""
        ...

    def check_contract(
        self,
        source: DataSource,
        role: str,
        contract: SchemaSpec,
        time_column: str | None,
        now: datetime,
    ) -> list[Violation]:
        """The rules of a job's data contract the window breaks (`data.contracts`)."""
        ...


class Placed(NamedTuple):
    backend: Backend[Any]
    note: str | None  # why a `compute: dask` job's work runs here


class Placement(Protocol):
    """Where each job's work runs."""

    def for_training(self, job: EffectiveJob, trainer: Trainer) -> Placed: ...

    def for_drift(self, job: EffectiveJob) -> Placed: ...

    def for_profile(self, job: EffectiveJob, source: DataSource) -> Placed: ...
