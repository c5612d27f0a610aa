"""The typed job spec: every field of a job file, checked (reading the files: `job_files`).

Every default lives here, once; those of `auto_retraining_config` (schedule, thresholds, strategy)
stay None and are resolved per model type when the job is used (`jobs.effective_job`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from retrain_cli.core.choices import (
    BOUNDED_METRICS,
    TRADING_METRICS,
    Compute,
    Device,
    Metric,
    ModelType,
    Strategy,
    Trigger,
)
from retrain_cli.core.errors import ConfigError
from retrain_cli.core.fields import MAX_FIELD_CHARS, NotifyTarget, Number, Seconds, Spec, Text
from retrain_cli.core.redaction import check_url, remember
from retrain_cli.jobs.defaults import RETRY_BACKOFF_S
from retrain_cli.jobs.sections import DriftSpec, GateSpec, PerformanceSpec, RolloutSpec

DATA_SUFFIXES = (".parquet", ".pq", ".csv")
GLOB_CHARS = re.compile(r"[*?\[]")
# The hyperparameters retrain-cli itself reads or whose misuse fails a retrain late: checked at
# apply. Others go to the library as given (LightGBM has hundreds).
_WHOLE = frozenset(
    {"num_boost_round", "num_leaves", "max_epochs", "incremental_epochs", "batch_size"}
    | {"sequence_length", "hidden_size", "num_layers", "d_model", "nhead", "patience"}
    | {"num_threads"}
)
_ZERO_ALLOWED = ("patience", "num_threads")  # num_threads 0: every core
_POSITIVE = ("learning_rate",)
_FRACTIONS = ("dropout", "validation_fraction")
# the gate and the checks judge probabilities of a binary outcome
_PROBABILITY_OBJECTIVES = ("binary", "cross_entropy", "xentropy")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


# --- field types: only cron, time zones, durations and names need code of their own ----------


def _identifier(text: str) -> str:
    if not _NAME.match(text):
        raise ValueError(
            f"{text!r} must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or "
            "digit (it names files and directories)"
        )
    return text


def _cron(text: str) -> str:
    from croniter import CroniterBadDateError, croniter

    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise ValueError(f"invalid cron expression {text!r} (five fields: min hour dom mon dow)")
    try:  # croniter searches a bounded number of years: February 29 fires, February 31 never
        croniter(text, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(f"cron expression {text!r} never fires") from None
    return text


def _timezone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {text!r}") from exc
    return text


def _unique(names: list[str]) -> list[str]:
    if len(set(names)) != len(names):
        raise ValueError("lists a name twice")
    return names


Name = Annotated[Text, AfterValidator(_identifier)]
Cron = Annotated[Text, AfterValidator(_cron)]
TimeZone = Annotated[Text, AfterValidator(_timezone)]
Names = Annotated[list[Text], AfterValidator(_unique)]


class DataSource(Spec):
    """A file (`.parquet`, `.csv`), a Parquet dataset (a directory, hive-partitioned or not, or
    a glob of Parquet files), or an SQL query against any SQLAlchemy URL."""

    path: str | None = None
    url: Text | None = None
    query: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_path(cls, value: Any) -> Any:
        if isinstance(value, str):
            dataset = value.endswith("/") or GLOB_CHARS.search(value)
            if not (dataset or value.lower().endswith(DATA_SUFFIXES)):
                raise ValueError(
                    f"{value!r} is not a .parquet or .csv file, a directory (ending in '/') "
                    "or a glob of Parquet files"
                )
            return {"path": value}
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> DataSource:
        if (self.path is None) == (self.url is None or self.query is None):
            raise ValueError("expected a file path or {url: ..., query: ...}")
        if self.url is not None:
            for url in (self.url, os.path.expandvars(self.url)):
                remember(url)
            try:
                check_url(self.url, "url")
            except ConfigError as exc:
                raise ValueError(str(exc).removeprefix("url ")) from None
        return self

    def resolved(self, base_dir: Path) -> DataSource:
        if self.path is None:
            return self
        return DataSource(path=str((base_dir / Path(self.path).expanduser()).resolve()))


class DataSources(Spec):
    train: DataSource
    reference: DataSource | None = None
    current: DataSource | None = None
    predictions: DataSource | None = None


class Thresholds(Spec):
    drift: Annotated[Number, Field(gt=0)] | None = None
    performance: Number | None = None


class Member(Spec):
    """One member of an ensemble: its type, and optionally its own features and parameters."""

    type: ModelType
    features: Names | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)


class JobSpec(Spec):
    """One job, as declared in YAML and stored (as JSON) in `auto_retraining_jobs.spec`."""

    name: Name
    model: Name
    type: ModelType
    description: Text | None = None
    enabled: StrictBool = True
    schedule: Cron | None = None
    timezone: TimeZone = "UTC"
    priority: Annotated[StrictInt, Field(ge=-1_000_000, le=1_000_000)] = 0
    data: DataSources
    target: Text
    time_column: Text | None = None
    features: Names | None = None
    categorical: Names = Field(default_factory=list)
    score_column: Text = "score"
    return_column: Text | None = None
    thresholds: Thresholds = Thresholds()
    primary_metric: Metric  # default: sharpe with a return_column, else auc
    strategy: Strategy | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    members: list[ModelType | Member] = Field(default_factory=list)
    device: Device = Device.AUTO
    compute: Compute = Compute.LOCAL
    holdout_fraction: Annotated[Number, Field(gt=0, le=0.9)] = 0.2
    timeout: Seconds = 3600
    max_model_age: Seconds | None = None
    retry_backoff: Seconds = RETRY_BACKOFF_S
    triggers: list[Trigger] = Field(default_factory=lambda: list(Trigger))
    drift: DriftSpec = DriftSpec()
    performance: PerformanceSpec = PerformanceSpec()
    gate: GateSpec = GateSpec()
    rollout: RolloutSpec | None = None
    notify: list[NotifyTarget] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _default_metric(cls, value: Any) -> Any:
        if isinstance(value, Mapping) and value.get("primary_metric") is None:
            metric = Metric.SHARPE if value.get("return_column") else Metric.AUC
            return {**value, "primary_metric": metric}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> JobSpec:
        if self.primary_metric in TRADING_METRICS and not self.return_column:
            raise ValueError(f"primary_metric: {self.primary_metric} needs a return_column")
        performance = self.thresholds.performance
        bounded = self.primary_metric in BOUNDED_METRICS
        if performance is not None and bounded and not 0 <= performance <= 1:
            raise ValueError(
                f"thresholds.performance: {performance} is outside [0, 1] for {self.primary_metric}"
            )
        overlap = sorted(set(self.features or []) & self.special_columns)
        if overlap:
            raise ValueError(f"features: {', '.join(overlap)} is the target, time, score or return")
        if self.performance.estimated_triggers and not self.performance.estimate:
            raise ValueError("performance.estimated_triggers needs performance.estimate: true")
        if self.performance.estimate and self.primary_metric not in BOUNDED_METRICS:
            raise ValueError(
                f"performance.estimate: {self.primary_metric} cannot be estimated without labels "
                "(auc, precision, recall, f1 and accuracy can)"
            )
        if self.rollout is not None and self.analysis_metric not in BOUNDED_METRICS:
            raise ValueError(
                f"rollout.analysis.metric: {self.analysis_metric} is not judged per row of "
                "outcomes (auc, precision, recall, f1 or accuracy)"
            )
        if self.members and self.type is not ModelType.ENSEMBLE:
            raise ValueError("members: only an ensemble job has members")
        _check_hyperparameters("hyperparameters", self.hyperparameters)
        for member in self.members:
            if (member.type if isinstance(member, Member) else member) is ModelType.ENSEMBLE:
                raise ValueError("members: a member is lightgbm, lstm or transformer, not ensemble")
            if isinstance(member, Member):
                _check_hyperparameters(f"members.{member.type}", member.hyperparameters)
        return self

    @property
    def analysis_metric(self) -> Metric:
        """The metric a rollout's analysis judges."""
        chosen = self.rollout.analysis.metric if self.rollout else None
        return chosen or self.primary_metric

    @property
    def special_columns(self) -> set[str]:
        """The target, time, score and return columns (never features)."""
        named = (self.target, self.time_column, self.score_column, self.return_column)
        return {c for c in named if c}

    def stored(self) -> dict[str, Any]:
        """The JSON document kept in the database."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_stored(cls, document: Mapping[str, Any]) -> JobSpec:
        """The spec of a stored document (older documents spell defaults as nulls)."""
        return cls.model_validate({k: v for k, v in document.items() if v is not None})


def _check_hyperparameters(where: str, values: Mapping[str, Any]) -> None:
    import json

    if len(json.dumps(values, default=str)) > MAX_FIELD_CHARS:
        raise ValueError(f"{where}: longer than {MAX_FIELD_CHARS} characters as JSON")
    for name, value in values.items():
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if name in _WHOLE and not (isinstance(value, int) and not isinstance(value, bool)):
            raise ValueError(f"{where}.{name}: expected a whole number, got {value!r}")
        if name in _WHOLE and value < (0 if name in _ZERO_ALLOWED else 1):
            raise ValueError(f"{where}.{name}: {value} is too small")
        if name in _POSITIVE and not (number and 0 < value < float("inf")):
            raise ValueError(f"{where}.{name}: expected a positive number, got {value!r}")
        if name in _FRACTIONS and not (number and 0 <= value < 1):
            raise ValueError(f"{where}.{name}: expected a number in [0, 1), got {value!r}")
        if name == "objective" and value not in _PROBABILITY_OBJECTIVES:
            raise ValueError(
                f"{where}.objective: {value!r} does not score probabilities of a 0/1 target "
                f"(use one of {', '.join(_PROBABILITY_OBJECTIVES)})"
            )
