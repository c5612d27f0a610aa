"""Compare two windows feature by feature (and the score column), and decide: pure of the
database and the clock.

Both windows are Arrow tables read whole (Parquet is never converted to pandas here); the columns
are compared on a thread pool (Arrow and numpy release the GIL). The result types and the
decision of one column serve the profile mode (`profile_check`) as well.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from retrain_cli.core.choices import DriftMode, DriftWeighting
from retrain_cli.core.errors import DataError
from retrain_cli.core.notify import Event
from retrain_cli.core.threads import usable_cores
from retrain_cli.data.columns import Columns, category_counts, column_kind, numeric_values
from retrain_cli.data.contracts import Violation
from retrain_cli.data.sources import read_table
from retrain_cli.jobs.sections import DriftSpec
from retrain_cli.jobs.spec import DataSource
from retrain_cli.statistics import drift

if TYPE_CHECKING:
    import pyarrow as pa

    from retrain_cli.drift.multivariate import Multivariate

DEAD_FEATURE = "no_values"  # the reason a feature with no current value has no statistic


class DriftSettings(DriftSpec):
    """A job's `drift` section and the threshold of its method (from the job or its type)."""

    threshold: float


@dataclass
class ColumnDrift:
    feature: str
    kind: str
    drifted: bool
    method: str
    statistic: float | None  # None: too few values to say (the reason is in `metrics`)
    threshold: float
    n_reference: int
    n_current: int
    missing_rate_ref: float
    missing_rate_cur: float
    metrics: dict[str, Any]
    histogram: drift.Histogram
    importance: float | None = None  # the active version's share of importance in this feature


@dataclass
class DriftResult:
    job: str | None
    model: str
    checked_at: datetime
    drifted: bool
    drift_share: float | None  # None: no feature had enough values to decide
    required_share: float
    threshold: float
    decision_method: str
    n_reference: int
    n_current: int
    features: list[ColumnDrift]
    predictions: list[ColumnDrift]  # the score's, or each class probability's
    check_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    mode: str = DriftMode.EXACT
    profile: dict[str, Any] | None = None  # the profile a profile-mode check used
    compute: str = "local"  # where the current window was counted
    compute_note: str | None = None  # why a `compute: dask` job ran here
    multivariate: Multivariate | None = None  # with `drift.multivariate`
    target: ColumnDrift | None = None  # once labels arrived in the current window
    weighting: str = DriftWeighting.SHARE  # the rule the verdict used (see `weigh`)
    weighted_share: float | None = None  # the importance the drifted features carry
    weighting_note: str | None = None  # why an `importance` job fell back to the share
    contract: list[Violation] | None = None  # the rules of the job's `schema:` the window broke

    @property
    def findings(self) -> bool:
        """Drift, or a broken data contract: either needs attention (exit 3)."""
        return self.drifted or bool(self.contract)

    def ordered(self) -> list[ColumnDrift]:
        """Every column for a reader: the features by their importance to the active version
        when it recorded one, else the drifted first; then the predictions and the target."""
        weights = any(c.importance is not None for c in self.features)

        def key(c: ColumnDrift) -> tuple[Any, str]:
            return (-(c.importance or 0.0), c.feature) if weights else (not c.drifted, c.feature)

        return [
            *sorted(self.features, key=key),
            *sorted(self.outputs, key=lambda c: (not c.drifted, c.feature)),
        ]

    @property
    def outputs(self) -> list[ColumnDrift]:
        """The predictions' columns and the target's, compared as the features are."""
        return [*self.predictions, *([self.target] if self.target else [])]

    def add_multivariate(self, found: Multivariate) -> None:
        """The domain classifier's verdict is part of the check's."""
        self.multivariate = found
        self.drifted = self.drifted or found.drifted

    @property
    def dead_features(self) -> list[str]:
        """The features with no value left in the current window."""
        return [c.feature for c in self.features if c.n_current == 0]

    def reason(self) -> str | None:
        """What made the check drift, in words (None when it did not): each finding that
        decides the verdict on its own."""
        if not self.drifted:
            return None
        found = []
        if self.dead_features:
            found.append(f"no current values of {', '.join(self.dead_features)}")
        if self.weighting == DriftWeighting.IMPORTANCE:
            if self.weighted_share is not None and self.weighted_share >= self.required_share:
                found.append(
                    f"drift in features carrying {self.weighted_share:.0%} of the model's "
                    "importance"
                )
        elif self.drift_share is not None and self.drift_share >= self.required_share:
            found.append(f"drift share {self.drift_share:.2f}")
        drifted = [c.feature for c in self.predictions if c.drifted]
        if drifted:
            found.append(f"predictions drifted ({', '.join(drifted)})")
        if self.target is not None and self.target.drifted:
            found.append(f"target {self.target.feature} drifted")
        classifier = self.multivariate
        if classifier is not None and classifier.drifted and classifier.auc is not None:
            found.append(f"domain classifier AUC {classifier.auc:.3f}")
        return "; ".join(found) or None

    def events(self) -> list[Event]:
        """What operators are told after the check is recorded."""
        if not self.drifted:
            return []
        drifted = [f.feature for f in self.features if f.drifted]
        summary = f"drift in {self.job or self.model}: {self.reason()}"
        details: dict[str, Any] = {"drift_share": self.drift_share, "drifted": drifted}
        if self.weighted_share is not None:
            details["weighted_share"] = self.weighted_share
        if self.dead_features:
            details["no_current_values"] = self.dead_features
        found = self.multivariate
        if found is not None and found.drifted and found.auc is not None:
            details["domain_classifier_auc"] = found.auc
        return [Event("drift_detected", summary, self.checked_at, self.job, self.model, details)]


@contextlib.contextmanager
def importing_scipy() -> Iterator[None]:
    """Import scipy.stats (the p-values) on a thread while the windows are read: the readers
    release the GIL, the import would otherwise stall the column threads."""
    importer = threading.Thread(target=importlib.import_module, args=("scipy.stats",))
    importer.start()
    try:
        yield
    finally:
        importer.join()


def load_windows(reference: DataSource, current: DataSource) -> tuple[pa.Table, pa.Table]:
    with importing_scipy():
        return read_table(reference, "reference"), read_table(current, "current")


def compare_windows(
    reference: pa.Table,
    current: pa.Table,
    columns: Columns,
    settings: DriftSettings,
    *,
    model: str,
    job: str | None,
    now: datetime,
) -> DriftResult:
    """Drift of every feature, of the predictions' columns and (once labels arrived) of the
    target between two windows (nothing recorded)."""
    features = _feature_names(reference, current, columns)
    tasks = [
        (name, column_kind(reference.schema.field(name).type, name, columns)) for name in features
    ]
    both = set(reference.column_names) & set(current.column_names)
    scores = [s for s in columns.scores if s in both]
    tasks += [(score, "numeric") for score in scores]
    target = columns.target
    labelled = target in both and current.column(target).null_count < current.num_rows
    if target and labelled:
        tasks.append((target, column_kind(reference.schema.field(target).type, target, columns)))
    compared = _compare_columns(reference, current, tasks, settings)
    return result_of(
        compared,
        Outputs(len(scores), bool(target and labelled)),
        settings,
        (reference.num_rows, current.num_rows),
        model=model,
        job=job,
        now=now,
    )


@dataclass(frozen=True)
class Outputs:
    """How many of the compared columns, at the end, are the predictions', and whether the
    target's comes last."""

    scores: int = 0
    target: bool = False


def result_of(
    compared: list[ColumnDrift],
    outputs: Outputs,
    settings: DriftSettings,
    rows: tuple[int, int],
    *,
    model: str,
    job: str | None,
    now: datetime,
) -> DriftResult:
    """The verdict: the share of drifted features, a drifted prediction or target column, or a
    dead feature."""
    target = compared.pop() if outputs.target else None
    predictions = compared[len(compared) - outputs.scores :] if outputs.scores else []
    compared = compared[: len(compared) - outputs.scores]
    decided = [c for c in compared if c.statistic is not None or c.drifted]
    share = sum(c.drifted for c in decided) / len(decided) if decided else None
    return DriftResult(
        job=job,
        model=model,
        checked_at=now,
        drifted=_verdict(share, settings.drift_share, compared, predictions, target),
        drift_share=share,
        required_share=settings.drift_share,
        threshold=settings.threshold,
        decision_method=settings.method,
        n_reference=rows[0],
        n_current=rows[1],
        features=compared,
        predictions=predictions,
        target=target,
        weighting=settings.weighting,
    )


def _verdict(
    share: float | None,
    required: float,
    features: list[ColumnDrift],
    predictions: list[ColumnDrift],
    target: ColumnDrift | None,
) -> bool:
    """Drifted: the (weighted) share of drifted features reaches `required`, a prediction
    column or the target drifted, or a feature is dead (whatever the share)."""
    return (
        (share is not None and share >= required)
        or any(p.drifted for p in predictions)
        or bool(target and target.drifted)
        or any(c.n_current == 0 for c in features)
    )


def weigh(result: DriftResult, importance: dict[str, Any] | None, why_none: str) -> None:
    """Give each feature the active version's share of importance (`importance`, None when
    there is none: `why_none` says why) and, for a `drift.weighting: importance` job, decide the
    verdict by the share of importance the drifted features carry. Without importance, or with
    all of it 0, such a job falls back to the share of features and says so."""
    if importance is not None:
        for column in result.features:
            column.importance = float(importance.get(column.feature, 0.0))
    if result.weighting != DriftWeighting.IMPORTANCE:
        return
    total = sum(float(v) for v in (importance or {}).values())
    if importance is None or total <= 0:
        reason = why_none if importance is None else "the active version's importance is all 0"
        result.weighting = DriftWeighting.SHARE
        result.weighting_note = f"weighting: importance fell back to share: {reason}"
        return
    result.weighted_share = sum(c.importance or 0.0 for c in result.features if c.drifted) / total
    result.drifted = _verdict(
        result.weighted_share,
        result.required_share,
        result.features,
        result.predictions,
        result.target,
    )


def _compare_columns(
    reference: pa.Table,
    current: pa.Table,
    tasks: list[tuple[str, str]],
    settings: DriftSettings,
) -> list[ColumnDrift]:
    """One column per task, on every core: numpy's sorts release the GIL."""
    workers = max(1, min(len(tasks), usable_cores()))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        compared = [
            pool.submit(_column_drift, reference, current, name, kind, settings)
            for name, kind in tasks
        ]
        return [f.result() for f in compared]


def _feature_names(reference: pa.Table, current: pa.Table, columns: Columns) -> list[str]:
    if columns.features is not None:
        names = list(columns.features)
    else:
        skip = {*columns.excluded, *columns.outputs}
        names = [c for c in reference.column_names if c not in skip]
    for name in names:
        for window, table in (("reference", reference), ("current", current)):
            if name not in table.column_names:
                raise DataError(f"feature {name!r} is missing from the {window} window")
    if not names:
        raise DataError("no feature columns to compare")
    return names


def _column_drift(
    reference: pa.Table, current: pa.Table, name: str, kind: str, settings: DriftSettings
) -> ColumnDrift:
    compute: Callable[[], tuple[dict[str, Any], drift.Histogram]]
    if kind == "numeric":
        ref, missing_ref = numeric_values(reference.column(name), name, "reference")
        cur, missing_cur = numeric_values(current.column(name), name, "current", required=False)
        n_reference, n_current = ref.size, cur.size
        method = drift.decision_method(settings.method, kind)
        ordered = settings.all_statistics or method in drift.ORDERED_STATISTICS
        compute = partial(drift.numeric_drift, ref, cur, settings.bins, ordered=ordered)
    else:
        ref_counts, missing_ref = category_counts(reference.column(name), name, "reference")
        cur_counts, missing_cur = category_counts(
            current.column(name), name, "current", required=False
        )
        n_reference, n_current = sum(ref_counts.values()), sum(cur_counts.values())
        compute = partial(drift.categorical_drift, ref_counts, cur_counts)
    return decide_column(
        name, kind, settings, (n_reference, n_current), (missing_ref, missing_cur), compute
    )


def decide_column(
    name: str,
    kind: str,
    settings: DriftSettings,
    counts: tuple[int, int],
    missing: tuple[float, float],
    compute: Callable[[], tuple[dict[str, Any], drift.Histogram]],
) -> ColumnDrift:
    """One column's verdict from its statistics (`compute`), its value counts in the two
    windows and their missing rates. A feature with no value left in the current window is
    dead upstream: drifted, whatever the thresholds, with no statistic."""
    method = drift.decision_method(settings.method, kind)
    (n_reference, n_current), (missing_ref, missing_cur) = counts, missing
    statistic: float | None = None
    threshold = settings.alpha if method in drift.P_VALUE_METHODS else settings.threshold
    drifted = False
    metrics: dict[str, Any]
    if n_current == 0:
        metrics = {"undefined": f"{DEAD_FEATURE}: every current value is missing"}
        histogram = drift.Histogram([], [], [])
        drifted = True
    elif min(n_reference, n_current) >= settings.min_samples:
        metrics, histogram = compute()
        decision = drift.decide(metrics, method, settings.threshold, settings.alpha)
        statistic, drifted = decision.statistic, decision.drifted
    else:  # a statistic of a handful of values would raise false alarms
        reason = f"too_few_values: {n_reference} reference and {n_current} current values"
        metrics = {"undefined": f"{reason}, needs {settings.min_samples}"}
        histogram = drift.Histogram([], [], [])
    metrics["missing_rate_ref"], metrics["missing_rate_cur"] = missing_ref, missing_cur
    missing_shift = abs(missing_cur - missing_ref) > settings.max_missing_rate_change
    return ColumnDrift(
        feature=name,
        kind=kind,
        drifted=drifted or missing_shift,
        method=method,
        statistic=statistic,
        threshold=threshold,
        n_reference=n_reference,
        n_current=n_current,
        missing_rate_ref=missing_ref,
        missing_rate_cur=missing_cur,
        metrics=metrics,
        histogram=histogram,
    )
