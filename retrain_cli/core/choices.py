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
    DATA_QUALITY = "data_quality"  # the current window broke the job's data contract


# a job's triggers unless it lists them: data_quality is turned on by listing it
DEFAULT_TRIGGERS: tuple[Trigger, ...] = tuple(t for t in Trigger if t is not Trigger.DATA_QUALITY)


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
    CANCELLED = "cancelled"


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


class DriftWeighting(StrEnum):
    """How a drift check's verdict counts its drifted features."""

    SHARE = "share"  # the share of drifted features
    IMPORTANCE = "importance"  # the active version's importance they carry


class DriftReference(StrEnum):
    """What a drift check compares the current window with."""

    WINDOW = "window"  # the job's data.reference
    TRAINING = "training"  # the active version's training data, profiled when it registered


class Compute(StrEnum):
    """Where a job's heavy work runs."""

    LOCAL = "local"
    DASK = "dask"  # the Dask cluster of the config file's `dask.scheduler`


class Task(StrEnum):
    """What a job's model predicts (docs/job-files.md, "Choose your task")."""

    BINARY = "binary"  # a 0/1 outcome, scored by its probability
    MULTICLASS = "multiclass"  # one of the job's classes, scored by a probability per class
    REGRESSION = "regression"  # a number


class Metric(StrEnum):
    """The metrics a job can judge by, grouped by task, then the trading ones."""

    AUC = "auc"
    PRECISION = "precision"
    RECALL = "recall"
    F1 = "f1"
    ACCURACY = "accuracy"
    LOG_LOSS = "log_loss"
    AUC_OVR = "auc_ovr"
    F1_MACRO = "f1_macro"
    F1_WEIGHTED = "f1_weighted"
    PRECISION_MACRO = "precision_macro"
    RECALL_MACRO = "recall_macro"
    RMSE = "rmse"
    MAE = "mae"
    MAPE = "mape"
    R2 = "r2"
    MEDIAN_AE = "median_ae"
    PINBALL = "pinball"
    SHARPE = "sharpe"
    SORTINO = "sortino"
    TOTAL_RETURN = "total_return"
    WIN_RATE = "win_rate"
    MAX_DRAWDOWN = "max_drawdown"
    IC = "ic"
    HIT_RATE = "hit_rate"


# the losses and errors, of every task (the gate, thresholds, triggers and rollout analyses
# compare these the other way round: a threshold is a ceiling)
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mape", "median_ae", "pinball"})


def better(metric: str) -> str:
    """Which way the metric improves: "lower" for an error or a loss, else "higher".

    >>> better("rmse"), better("auc")
    ('lower', 'higher')
    """
    return "lower" if metric in LOWER_IS_BETTER else "higher"


# the metrics of each task's predictions and labels
TASK_METRICS: dict[Task, frozenset[Metric]] = {
    Task.BINARY: frozenset(
        {Metric.AUC, Metric.PRECISION, Metric.RECALL, Metric.F1, Metric.ACCURACY, Metric.LOG_LOSS}
    ),
    Task.MULTICLASS: frozenset(
        {Metric.ACCURACY, Metric.F1_MACRO, Metric.F1_WEIGHTED, Metric.PRECISION_MACRO}
        | {Metric.RECALL_MACRO, Metric.LOG_LOSS, Metric.AUC_OVR}
    ),
    Task.REGRESSION: frozenset(
        {Metric.RMSE, Metric.MAE, Metric.MAPE, Metric.R2, Metric.MEDIAN_AE, Metric.PINBALL}
    ),
}
# the metrics of a strategy's returns (a job's return_column): a binary job goes long at or above
# its decision threshold; a regression job predicts returns, long when positive, short when
# negative; `ic` and `hit_rate` compare the predicted returns with the realized ones
STRATEGY_METRICS = frozenset(
    {Metric.SHARPE, Metric.SORTINO, Metric.TOTAL_RETURN, Metric.WIN_RATE, Metric.MAX_DRAWDOWN}
)
FORECAST_METRICS = frozenset({Metric.IC, Metric.HIT_RATE})
TRADING_METRICS = STRATEGY_METRICS | FORECAST_METRICS
# values in [0, 1]: a threshold outside that range is a mistake
BOUNDED_METRICS = frozenset(
    {Metric.AUC, Metric.PRECISION, Metric.RECALL, Metric.F1, Metric.ACCURACY, Metric.AUC_OVR}
    | {Metric.F1_MACRO, Metric.F1_WEIGHTED, Metric.PRECISION_MACRO, Metric.RECALL_MACRO}
    | {Metric.WIN_RATE, Metric.HIT_RATE}
)
# what each task can estimate on unlabelled rows (CBPE for the classifiers, DLE for regression)
ESTIMABLE_METRICS: dict[Task, frozenset[Metric]] = {
    Task.BINARY: frozenset(
        {Metric.AUC, Metric.PRECISION, Metric.RECALL, Metric.F1, Metric.ACCURACY}
    ),
    Task.MULTICLASS: frozenset(
        {Metric.ACCURACY, Metric.F1_MACRO, Metric.PRECISION_MACRO, Metric.RECALL_MACRO}
        | {Metric.AUC_OVR}
    ),
    Task.REGRESSION: frozenset({Metric.RMSE, Metric.MAE}),
}
# a job's primary metric when it names none (with a return column: sharpe)
# (r2 is scale-free, so that `auto_retraining_config` can hold a default threshold for it)
DEFAULT_METRIC = {
    Task.BINARY: Metric.AUC,
    Task.MULTICLASS: Metric.AUC_OVR,
    Task.REGRESSION: Metric.R2,
}


def task_metrics(task: Task, trading: bool) -> frozenset[Metric]:
    """The metrics a job of `task` can judge by; `trading`: it has a return column."""
    if not trading or task is Task.MULTICLASS:
        return TASK_METRICS[task]
    forecast = FORECAST_METRICS if task is Task.REGRESSION else frozenset()
    return TASK_METRICS[task] | STRATEGY_METRICS | forecast


class Device(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """The values of an enum as plain strings, in declaration order."""
    return tuple(member.value for member in enum)
