"""Job files: the typed job spec, and reading a YAML file into validated specs.

A file holds one job (a mapping) or several (`jobs: [...]`). Every error names the file, the job and
the field, e.g. `jobs.yaml: job 'fraud-lgbm': schedule: invalid cron expression '61 * * * *'`.
Relative data paths are resolved against the file's folder, so a job works from any directory.
Every default lives here, once; those of `auto_retraining_config` (schedule, thresholds, strategy)
stay None and are resolved per model type when the job is used (`jobs.effective_job`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
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
from retrain_cli.errors import ConfigError, JobSpecError
from retrain_cli.fields import (
    MAX_FIELD_CHARS,
    NotifyTarget,
    Seconds,
    Spec,
    Text,
    first_problem,
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
MAX_JOB_FILE_BYTES = 1 << 20
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

    @model_validator(mode="after")
    def _profile_for_training(self) -> DriftSpec:
        if self.reference is DriftReference.TRAINING and self.mode is DriftMode.EXACT:
            raise ValueError("reference: training is checked by profile, not in mode exact")
        return self


class PerformanceSpec(Spec):
    window: Seconds | None = None
    min_samples: Annotated[StrictInt, Field(ge=1)] = 30
    max_relative_drop: Annotated[Number, Field(ge=0, le=1)] = 0.1
    decision_threshold: Annotated[Number, Field(ge=0, le=1)] = 0.5
    periods_per_year: Annotated[Number, Field(gt=0)] = 252.0
    risk_free: Number = 0.0


class GateSpec(Spec):
    min_improvement: Number = 0.0
    min_samples: Annotated[StrictInt, Field(ge=1)] = 30
    allow_ties: StrictBool = False  # promote a challenger that only equals the champion


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


def load_job_file(path: Path) -> list[JobSpec]:
    """Read and validate every job in `path`; raise `JobSpecError` on the first problem.

    A job file is small and plain: at most MAX_JOB_FILE_BYTES, no YAML aliases (a few hundred
    bytes of them expand to gigabytes) and no key given twice in one mapping.
    """
    import yaml

    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_JOB_FILE_BYTES + 1)
        if len(raw) > MAX_JOB_FILE_BYTES:
            raise JobSpecError(
                f"{path}: larger than a job file may be ({MAX_JOB_FILE_BYTES} bytes)"
            )
        document = yaml.load(raw.decode("utf-8"), Loader=_strict_loader())
    except FileNotFoundError as exc:
        raise JobSpecError(f"{path}: no such job file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise JobSpecError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise JobSpecError(f"{path}: malformed YAML{where}: {problem}") from exc
    if isinstance(document, Mapping) and set(document) == {"jobs"}:
        raw_jobs = document["jobs"]
        if not isinstance(raw_jobs, list) or not raw_jobs:
            raise JobSpecError(f"{path}: 'jobs' must be a non-empty list of job mappings")
    elif isinstance(document, Mapping):
        raw_jobs = [document]
    else:
        raise JobSpecError(f"{path}: expected a job mapping or 'jobs: [...]'")

    specs: list[JobSpec] = []
    for index, raw in enumerate(raw_jobs):
        spec = validate_job(raw, base_dir=path.resolve().parent, source=str(path), index=index + 1)
        if any(s.name == spec.name for s in specs):
            raise JobSpecError(f"{path}: job '{spec.name}' is declared twice")
        specs.append(spec)
    return specs


def load_job_files(paths: Sequence[Path]) -> list[tuple[Path, list[JobSpec]]]:
    """Every file's jobs, validated; a job name declared in two of the files is an error."""
    loaded = [(path, load_job_file(path)) for path in paths]
    seen: dict[str, Path] = {}
    for path, specs in loaded:
        for spec in specs:
            first = seen.setdefault(spec.name, path)
            if first != path:
                raise JobSpecError(f"{path}: job '{spec.name}' is also declared in {first}")
    return loaded


def _strict_loader() -> type:
    """yaml.SafeLoader, refusing aliases and keys given twice."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None, None, "aliases (*name) are not allowed in job files", mark
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is given twice", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def validate_job(raw: Any, *, base_dir: Path, source: str, index: int = 1) -> JobSpec:
    """The validated spec of one job mapping, its file paths made absolute; or `JobSpecError`."""
    name = raw.get("name") if isinstance(raw, Mapping) else None
    where = (
        f"{source}: job '{name}'" if isinstance(name, str) and name else f"{source}: job #{index}"
    )
    if not isinstance(raw, Mapping):
        raise JobSpecError(f"{where}: a job must be a mapping of fields")
    present = {str(k): v for k, v in raw.items() if v is not None}
    try:
        spec = JobSpec.model_validate(present)
    except ValidationError as exc:
        raise JobSpecError(f"{where}: {first_problem(exc)}") from None
    data = {
        role: source.resolved(base_dir)
        for role, source in spec.data
        if isinstance(source, DataSource)
    }
    return spec.model_copy(update={"data": DataSources(**data)})
