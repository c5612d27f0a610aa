"""The typed job spec: every field of a job file, checked (reading the files: `job_files`).

Every default lives here, once; those of `auto_retraining_config` (schedule, thresholds, strategy)
stay None and are resolved per model type when the job is used (`jobs.effective_job`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from retrain_cli.choices import (
    BOUNDED_METRICS,
    TRADING_METRICS,
    Compute,
    Device,
    DriftMethod,
    DriftMode,
    DriftReference,
    Metric,
    ModelType,
    Strategy,
    Trigger,
)
from retrain_cli.errors import ConfigError
from retrain_cli.fields import (
    MAX_FIELD_CHARS,
    NotifyTarget,
    Seconds,
    Spec,
    Text,
)
from retrain_cli.redaction import check_url, remember

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
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
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


class MultivariateSpec(Spec):
    """A domain classifier told to separate the windows (`multivariate.py`)."""

    method: Literal["domain_classifier"] = "domain_classifier"
    max_auc: Annotated[Number, Field(gt=0.5, le=1)] = 0.6  # above it: drift
    sample: Annotated[StrictInt, Field(ge=100)] = 50_000  # rows drawn from each window
    folds: Annotated[StrictInt, Field(ge=2, le=20)] = 5
    confidence: Annotated[Number, Field(gt=0, lt=1)] = 0.95  # of the AUC's interval


class DriftSpec(Spec):
    method: DriftMethod = DriftMethod.PSI
    alpha: Annotated[Number, Field(gt=0, le=1)] = 0.05
    drift_share: Annotated[Number, Field(gt=0, le=1)] = 0.5
    bins: Annotated[StrictInt, Field(ge=2)] = 10
    max_missing_rate_change: Annotated[Number, Field(ge=0, le=1)] = 0.1
    # fewer values than this in either window: the column's statistic is NULL, with the reason
    min_samples: Annotated[StrictInt, Field(ge=1)] = 30
    # the order statistics (KS, Wasserstein) sort every numeric column: computed when the
    # method needs them, for every column when asked
    all_statistics: StrictBool = False
    mode: DriftMode = DriftMode.AUTO
    reference: DriftReference = DriftReference.WINDOW
    # auto: a window with more rows than this (by its Parquet metadata) is checked by profile
    exact_max_rows: Annotated[StrictInt, Field(ge=1)] = 5_000_000
    multivariate: MultivariateSpec | None = None  # also a domain classifier, part of the verdict

    @model_validator(mode="after")
    def _profile_for_training(self) -> DriftSpec:
        if self.reference is DriftReference.TRAINING and self.mode is DriftMode.EXACT:
            raise ValueError("reference: training is checked by profile, not in mode exact")
        return self


class ChangePointSpec(Spec):
    """river's change detector on the per-row loss (`change_points.py`); unset parameters
    take river's defaults."""

    method: Literal["adwin", "page_hinkley"] = "adwin"
    delta: Annotated[Number, Field(gt=0, lt=1)] | None = None
    threshold: Annotated[Number, Field(gt=0)] | None = None  # page_hinkley's lambda
    min_instances: Annotated[StrictInt, Field(ge=1)] | None = None  # page_hinkley's

    @model_validator(mode="after")
    def _parameters_of_the_method(self) -> ChangePointSpec:
        if self.method == "adwin" and (self.threshold or self.min_instances):
            raise ValueError("adwin takes delta only (threshold and min_instances: page_hinkley)")
        return self

    def parameters(self) -> dict[str, Any]:
        named = {"delta": self.delta, "threshold": self.threshold}
        named["min_instances"] = self.min_instances
        return {k: v for k, v in named.items() if v is not None}


class PerformanceSpec(Spec):
    window: Seconds | None = None
    min_samples: Annotated[StrictInt, Field(ge=1)] = 30
    max_relative_drop: Annotated[Number, Field(ge=0, le=1)] = 0.1
    decision_threshold: Annotated[Number, Field(ge=0, le=1)] = 0.5
    periods_per_year: Annotated[Number, Field(gt=0)] = 252.0
    risk_free: Number = 0.0
    # estimate the metrics of the window's unlabelled rows (CBPE, docs/performance.md)
    estimate: StrictBool = False
    estimated_triggers: StrictBool = False  # an estimated degradation triggers a retrain
    change_points: ChangePointSpec | None = None  # where the error level changed (river)


class GateSpec(Spec):
    min_improvement: Number = 0.0
    min_samples: Annotated[StrictInt, Field(ge=1)] = 30
    allow_ties: StrictBool = False  # promote a challenger that only equals the champion


class RolloutStep(Spec):
    """Serve the candidate this share of traffic for at least `bake` (and until its analysis
    passes)."""

    weight: Annotated[Number, Field(ge=0, lt=1)] = 0.0
    bake: Seconds = 0


class AnalysisSpec(Spec):
    """How a candidate (or a promoted version in its bake) is judged against the champion on live
    outcomes (`rollout_analysis.py`): a bootstrap interval of the metric's difference."""

    metric: Metric | None = None  # default: the job's primary metric
    max_drop: Annotated[Number, Field(ge=0, le=1)] = 0.01
    min_samples: Annotated[StrictInt, Field(ge=10)] = 500  # labelled rows of each version
    confidence: Annotated[Number, Field(gt=0, lt=1)] = 0.95
    resamples: Annotated[StrictInt, Field(ge=100, le=100_000)] = 2000
    # each version's labelled rows past this: a uniform sample of them (benchmarks.md)
    max_rows: Annotated[StrictInt, Field(ge=1000)] = 100_000

    @model_validator(mode="after")
    def _sample_holds_enough(self) -> AnalysisSpec:
        if self.max_rows < self.min_samples:
            raise ValueError("max_rows must be at least min_samples")
        return self


class RolloutSpec(Spec):
    """Safe rollouts (docs/rollouts.md): a gate-passing version becomes a candidate served at
    each step's weight (shadow: scored beside the champion, weight 0) until its analysis has
    passed every step; without `mode` a version is promoted at once, as without a policy."""

    mode: Literal["shadow", "canary", "ab"] | None = None
    steps: list[RolloutStep] = Field(default_factory=list)
    analysis: AnalysisSpec = AnalysisSpec()
    failure_limit: Annotated[StrictInt, Field(ge=1)] = 1  # failed analyses before an abort
    bake_after_promote: Seconds | None = None  # rolled back while it fails its analysis
    # the predictions' columns: which version served the row, and the shadow candidate's score
    version_column: Text = "model_version"
    shadow_score_column: Text = "shadow_score"

    @model_validator(mode="after")
    def _steps_of_the_mode(self) -> RolloutSpec:
        weights = [step.weight for step in self.steps]
        if self.mode is None and self.steps:
            raise ValueError("steps need a mode (shadow, canary or ab)")
        if self.mode is not None and not self.steps:
            raise ValueError(f"mode {self.mode} needs at least one step")
        if self.mode == "shadow" and any(weights):
            raise ValueError("a shadow candidate serves no traffic: its steps have weight 0")
        if self.mode == "canary" and not (
            weights[0] > 0 and all(a < b for a, b in pairwise(weights))
        ):
            raise ValueError("canary step weights must be above 0 and increase")
        if self.mode == "ab" and (len(weights) != 1 or weights[0] <= 0):
            raise ValueError("an A/B rollout has one step with the candidate's share above 0")
        return self


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
    retry_backoff: Seconds = 1800
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
