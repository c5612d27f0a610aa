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
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from retrain_cli.core.choices import (
    BOUNDED_METRICS,
    DEFAULT_METRIC,
    DEFAULT_TRIGGERS,
    ESTIMABLE_METRICS,
    TRADING_METRICS,
    Compute,
    Device,
    Metric,
    ModelType,
    Strategy,
    Task,
    Trigger,
    task_metrics,
)
from retrain_cli.core.errors import ConfigError
from retrain_cli.core.fields import MAX_FIELD_CHARS, NotifyTarget, Number, Seconds, Spec, Text
from retrain_cli.core.redaction import check_url, remember
from retrain_cli.jobs.defaults import RETRY_BACKOFF_S
from retrain_cli.jobs.sections import (
    DriftSpec,
    GateSpec,
    PerformanceSpec,
    RolloutSpec,
    SchemaSpec,
)
from retrain_cli.store.objects import is_url

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
# LightGBM's objectives (and their aliases) that fit each task: the gate and the checks judge
# probabilities of the outcome or of each class, or predicted values
OBJECTIVES = {
    Task.BINARY: ("binary", "cross_entropy", "xentropy"),
    Task.MULTICLASS: ("multiclass", "softmax"),
    Task.REGRESSION: (
        *("regression", "regression_l2", "l2", "mean_squared_error", "mse", "huber"),
        *("quantile", "poisson", "tweedie", "regression_l1", "l1", "mae"),
    ),
}
LOSSES = ("mse", "huber")  # a sequence model's regression loss
MAX_CLASSES = 100
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


def _class_name(value: Any) -> Any:
    # YAML reads `classes: [0, 1, 2]` as numbers: a class is named by its text
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


ClassName = Annotated[Text, BeforeValidator(_class_name)]


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
        if is_url(self.path):
            remember(str(self.path))  # a store's URL may carry a secret: never printed
        if self.url is not None:
            for url in (self.url, os.path.expandvars(self.url)):
                remember(url)
            try:
                check_url(self.url, "url")
            except ConfigError as exc:
                raise ValueError(str(exc).removeprefix("url ")) from None
        return self

    def resolved(self, base_dir: Path) -> DataSource:
        if self.path is None or is_url(self.path):  # an object store's URL, as given
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
    task: Task = Task.BINARY
    target: Text
    # multiclass: the classes in order, and each one's probability column (default
    # `<score_column>_<class>`)
    classes: Annotated[list[ClassName], AfterValidator(_unique)] | None = None
    class_columns: dict[ClassName, Text] | None = None
    time_column: Text | None = None
    features: Names | None = None
    categorical: Names = Field(default_factory=list)
    score_column: Text = "score"
    return_column: Text | None = None
    thresholds: Thresholds = Thresholds()
    primary_metric: Metric  # default: sharpe with a return_column, else the task's (auc, ...)
    strategy: Strategy | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    members: list[ModelType | Member] = Field(default_factory=list)
    device: Device = Device.AUTO
    compute: Compute = Compute.LOCAL
    holdout_fraction: Annotated[Number, Field(gt=0, le=0.9)] = 0.2
    timeout: Seconds = 3600
    max_model_age: Seconds | None = None
    retry_backoff: Seconds = RETRY_BACKOFF_S
    triggers: list[Trigger] = Field(default_factory=lambda: list(DEFAULT_TRIGGERS))
    drift: DriftSpec = DriftSpec()
    performance: PerformanceSpec = PerformanceSpec()
    gate: GateSpec = GateSpec()
    rollout: RolloutSpec | None = None
    notify: list[NotifyTarget] = Field(default_factory=list)
    # `schema:` in the file (a BaseModel attribute has that name): the data contract
    contract: SchemaSpec | None = Field(None, alias="schema")

    @model_validator(mode="before")
    @classmethod
    def _default_metric(cls, value: Any) -> Any:
        if isinstance(value, Mapping) and value.get("primary_metric") is None:
            try:
                task = Task(value.get("task", Task.BINARY))
            except ValueError:
                return value  # the field's own check names the choices
            trading = value.get("return_column") and task is not Task.MULTICLASS
            metric = Metric.SHARPE if trading else DEFAULT_METRIC[task]
            return {**value, "primary_metric": metric}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> JobSpec:
        self._check_task()
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
        if self.contract and self.contract.freshness is not None and not self.time_column:
            raise ValueError("schema.freshness needs the job's time_column")
        estimable = ESTIMABLE_METRICS[self.task]
        if self.performance.estimate and self.primary_metric not in estimable:
            raise ValueError(
                f"performance.estimate: {self.primary_metric} cannot be estimated without labels "
                f"({_listed(estimable)} can)"
            )
        if self.rollout is not None and self.analysis_metric not in TASK_METRICS_OF_ROWS[self.task]:
            raise ValueError(
                f"rollout.analysis.metric: {self.analysis_metric} is not judged per row of "
                f"outcomes ({_listed(TASK_METRICS_OF_ROWS[self.task])})"
            )
        if self.members and self.type is not ModelType.ENSEMBLE:
            raise ValueError("members: only an ensemble job has members")
        _check_hyperparameters("hyperparameters", self.hyperparameters, self.task)
        for member in self.members:
            if (member.type if isinstance(member, Member) else member) is ModelType.ENSEMBLE:
                raise ValueError("members: a member is lightgbm, lstm or transformer, not ensemble")
            if isinstance(member, Member):
                _check_hyperparameters(f"members.{member.type}", member.hyperparameters, self.task)
        return self

    def _check_task(self) -> None:
        task = self.task
        allowed = task_metrics(task, trading=True)  # a missing return column is named below
        if self.primary_metric not in allowed:
            raise ValueError(
                f"primary_metric: {self.primary_metric} does not judge a {task} job (choose one "
                f"of {_listed(task_metrics(task, trading=bool(self.return_column)))})"
            )
        if task is Task.MULTICLASS:
            if not self.classes or len(self.classes) < 3:
                raise ValueError(
                    "classes: a multiclass job lists its classes, at least 3 (two classes: "
                    "task binary)"
                )
            if len(self.classes) > MAX_CLASSES:
                raise ValueError(f"classes: at most {MAX_CLASSES}")
            unknown = sorted(set(self.class_columns or {}) - set(self.classes))
            if unknown:
                raise ValueError(f"class_columns: {', '.join(unknown)} is not one of the classes")
            columns = list(self.probability_columns.values())
            if len(set(columns)) != len(columns):
                raise ValueError("class_columns: two classes share a column")
        elif self.classes is not None or self.class_columns is not None:
            raise ValueError(f"classes: only a multiclass job has classes, not a {task} job")
        judged = [("primary_metric", self.primary_metric)]
        if self.rollout is not None:
            judged.append(("rollout.analysis.metric", self.analysis_metric))
        for where, metric in judged:
            if metric is Metric.PINBALL and _objective(self) != "quantile":
                raise ValueError(
                    f"{where}: pinball judges a quantile forecast (objective: quantile)"
                )

    @property
    def probability_columns(self) -> dict[str, str]:
        """A multiclass job's probability column of each class, in class order."""
        named = self.class_columns or {}
        return {c: named.get(c, f"{self.score_column}_{c}") for c in self.classes or []}

    @property
    def quantile(self) -> float | None:
        """The level of a quantile forecast (LightGBM's `alpha`, 0.9 by default)."""
        if _objective(self) != "quantile":
            return None
        return float(self.hyperparameters.get("alpha", 0.9))

    @property
    def analysis_metric(self) -> Metric:
        """The metric a rollout's analysis judges."""
        chosen = self.rollout.analysis.metric if self.rollout else None
        return chosen or self.primary_metric

    @property
    def special_columns(self) -> set[str]:
        """The target, time, score, return and class probability columns (never features)."""
        named = (self.target, self.time_column, self.score_column, self.return_column)
        return {c for c in named if c} | set(self.probability_columns.values())

    def stored(self) -> dict[str, Any]:
        """The JSON document kept in the database."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)

    @classmethod
    def from_stored(cls, document: Mapping[str, Any]) -> JobSpec:
        """The spec of a stored document (older documents spell defaults as nulls)."""
        return cls.model_validate({k: v for k, v in document.items() if v is not None})


# the metrics a rollout's analysis judges on each version's labelled rows
TASK_METRICS_OF_ROWS = {
    Task.BINARY: frozenset(
        {Metric.AUC, Metric.PRECISION, Metric.RECALL, Metric.F1, Metric.ACCURACY}
    ),
    Task.MULTICLASS: frozenset(
        {Metric.ACCURACY, Metric.F1_MACRO, Metric.F1_WEIGHTED, Metric.PRECISION_MACRO}
        | {Metric.RECALL_MACRO, Metric.LOG_LOSS, Metric.AUC_OVR}
    ),
    Task.REGRESSION: frozenset(
        {Metric.RMSE, Metric.MAE, Metric.MAPE, Metric.R2, Metric.MEDIAN_AE, Metric.PINBALL}
    ),
}


def _listed(metrics: frozenset[Metric]) -> str:
    return ", ".join(sorted(metrics))


def _objective(spec: JobSpec) -> str | None:
    objective = spec.hyperparameters.get("objective")
    return str(objective) if objective is not None else None


def _check_hyperparameters(where: str, values: Mapping[str, Any], task: Task) -> None:
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
        if name == "objective" and value not in OBJECTIVES[task]:
            raise ValueError(
                f"{where}.objective: {value!r} does not fit a {task} job "
                f"(use one of {', '.join(OBJECTIVES[task])})"
            )
        if name == "loss" and value not in LOSSES:
            raise ValueError(f"{where}.loss: {value!r} is not one of {', '.join(LOSSES)}")
        if name == "loss" and task is not Task.REGRESSION:
            raise ValueError(f"{where}.loss: a {task} model's loss is its task's (no choice)")
        if name in ("task", "num_class"):
            raise ValueError(f"{where}.{name}: set by the job's task and classes")
