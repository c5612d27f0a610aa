"""The closed sets of values that job files, flags and tables share, each defined once.

Plain enums (no pydantic), so that the CLI lists them in `--help` and the fast commands import
nothing heavy.
"""

from __future__ import annotations

from enum import StrEnum


class ModelType(StrEnum):
    LIGHTGBM = "lightgbm"
    LSTM = "lstm"
    TRANSFORMER = "transformer"
    ENSEMBLE = "ensemble"


class Strategy(StrEnum):
    INCREMENTAL = "incremental"
    FULL = "full"


class Trigger(StrEnum):
    SCHEDULED = "scheduled"
    DRIFT = "drift"
    PERFORMANCE = "performance"
    AGE = "age"
    MANUAL = "manual"


class DriftMethod(StrEnum):
    PSI = "psi"
    JS = "js"
    WASSERSTEIN_NORM = "wasserstein_norm"
    KS_PVALUE = "ks_pvalue"
    CHI2_PVALUE = "chi2_pvalue"


class RolloutMode(StrEnum):
    SHADOW = "shadow"  # scored beside the champion, serving no traffic
    CANARY = "canary"  # a growing share of traffic
    AB = "ab"  # one fixed share of traffic


class RunStatus(StrEnum):
    """A retrain's row in `retraining_job_history`."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    ABANDONED = "abandoned"


class VersionStatus(StrEnum):
    """A version's row in `model_version_management`."""

    REGISTERED = "registered"
    CANDIDATE = "candidate"  # in a rollout
    ACTIVE = "active"  # the champion
    RETIRED = "retired"


class RowKind(StrEnum):
    """What a row of `model_performance_tracking` records."""

    CHECKED = "checked"  # a metric of labelled predictions, judged when primary
    ESTIMATED = "estimated"  # estimated without labels (CBPE)
    REALIZED = "realized"  # the labelled value of an earlier estimate's window
    CALIBRATION = "calibration"  # an estimate's calibration (Brier score)
    CHANGE_POINT = "change_point"  # a change point in the per-row loss
    ROLLOUT = "rollout"  # a rollout's comparison of the candidate with the champion


DOMAIN_CLASSIFIER = "domain_classifier"  # the method of a drift check's multivariate row


class DriftMode(StrEnum):
    """How a drift check reads its reference: the whole window, or a stored profile of it."""

    EXACT = "exact"
    PROFILE = "profile"
    AUTO = "auto"  # exact while both windows are small enough, a profile beyond


class DriftReference(StrEnum):
    """What a drift check compares the current window with."""

    WINDOW = "window"  # the job's data.reference
    TRAINING = "training"  # the active version's training data, profiled when it registered


class Compute(StrEnum):
    """Where a job's heavy work runs."""

    LOCAL = "local"
    DASK = "dask"  # the Dask cluster of the config file's `dask.scheduler`


class Metric(StrEnum):
    """The metrics a job can judge by: bounded classification metrics, then trading ones."""

    AUC = "auc"
    PRECISION = "precision"
    RECALL = "recall"
    F1 = "f1"
    ACCURACY = "accuracy"
    SHARPE = "sharpe"
    SORTINO = "sortino"
    TOTAL_RETURN = "total_return"
    WIN_RATE = "win_rate"
    MAX_DRAWDOWN = "max_drawdown"


BOUNDED_METRICS = frozenset(
    {Metric.AUC, Metric.PRECISION, Metric.RECALL, Metric.F1, Metric.ACCURACY}
)
TRADING_METRICS = frozenset(set(Metric) - BOUNDED_METRICS)


class Device(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """The values of an enum as plain strings, in declaration order."""
    return tuple(member.value for member in enum)
