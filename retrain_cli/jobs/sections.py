"""The job spec's sections for monitoring, the gate and rollouts: `drift`, `performance`,
`gate` and `rollout` (the job itself and its data: `jobspec`)."""

from __future__ import annotations

from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StrictBool, StrictInt, model_validator

from retrain_cli.core.choices import (
    DriftMethod,
    DriftMode,
    DriftReference,
    DriftWeighting,
    Metric,
    RolloutMode,
    Task,
)
from retrain_cli.core.fields import Number, Seconds, Spec, Text


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
    # share: the share of drifted features reaches drift_share; importance: the share of the
    # active version's importance they carry does (docs/drift.md)
    weighting: DriftWeighting = DriftWeighting.SHARE
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
    max_drop: Annotated[Number, Field(ge=0)] = 0.01  # in the metric's units
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

    mode: RolloutMode | None = None
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
        if self.mode is RolloutMode.SHADOW and any(weights):
            raise ValueError("a shadow candidate serves no traffic: its steps have weight 0")
        if self.mode is RolloutMode.CANARY and not (
            weights[0] > 0 and all(a < b for a, b in pairwise(weights))
        ):
            raise ValueError("canary step weights must be above 0 and increase")
        if self.mode is RolloutMode.AB and (len(weights) != 1 or weights[0] <= 0):
            raise ValueError("an A/B rollout has one step with the candidate's share above 0")
        return self


class PerfSettings(PerformanceSpec):
    """A job's `performance` section, its primary metric and that metric's threshold, its task
    and (a quantile forecast) its quantile."""

    primary_metric: Metric
    threshold: float | None
    task: Task = Task.BINARY
    quantile: float | None = None


def _text(value: Any) -> Any:
    """A category as text: YAML reads `DE`, `1` and `yes` as three types."""
    return value if isinstance(value, str) else str(value)


class ColumnType(StrEnum):
    """A column's kind in a data contract: what its values must be."""

    INTEGER = "integer"
    NUMBER = "number"  # integer or floating point
    STRING = "string"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"


class ColumnContract(Spec):
    """One column's rules: its type, its range or categories, how many values may be missing,
    whether its values identify a row."""

    type: ColumnType | None = None
    min: Number | None = None
    max: Number | None = None
    categories: list[Annotated[str, BeforeValidator(_text)]] | None = None
    max_missing: Annotated[Number, Field(ge=0, le=1)] | None = None  # a share of the rows
    unique: StrictBool = False
    required: StrictBool = True  # the column must be present

    @model_validator(mode="after")
    def _consistent(self) -> ColumnContract:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        numeric = (None, ColumnType.INTEGER, ColumnType.NUMBER)
        if (self.min is not None or self.max is not None) and self.type not in numeric:
            raise ValueError(f"min and max are for numeric columns, not {self.type}")
        if self.categories is not None and self.type not in (None, ColumnType.STRING):
            raise ValueError(f"categories are for string columns, not {self.type}")
        return self


class SchemaSpec(Spec):
    """A job's data contract (`schema:`), checked before training on `data.train` and by each
    drift check on `data.current` (docs/job-files.md, "Data contracts")."""

    columns: dict[Annotated[str, Field(min_length=1)], ColumnContract] = Field(default_factory=dict)
    min_rows: Annotated[StrictInt, Field(ge=1)] | None = None
    freshness: Seconds | None = None  # the newest time_column value is at most this old
