"""The profile mode of a drift check: a current window compared with a profile, streamed once and
counted by a `Backend` (here in record batches, or one Parquet file or row group per task on a
Dask cluster). Results and decisions are `drift.compare`'s.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from retrain_cli.compute.interface import Backend
from retrain_cli.compute.local import LOCAL
from retrain_cli.core.choices import DriftMode
from retrain_cli.core.errors import DataError
from retrain_cli.data import sources
from retrain_cli.data import summary as window_summary
from retrain_cli.data.columns import Columns, column_kind
from retrain_cli.drift.compare import (
    DriftResult,
    DriftSettings,
    Outputs,
    decide_column,
    importing_scipy,
    result_of,
)
from retrain_cli.jobs.spec import DataSource
from retrain_cli.statistics import drift

if TYPE_CHECKING:
    import pyarrow as pa

    from retrain_cli.data.profile import Profile


def compare_with_profile(
    profile: Profile,
    described: dict[str, Any],
    current_source: DataSource,
    columns: Columns,
    settings: DriftSettings,
    hint: str,
    *,
    model: str,
    job: str | None,
    now: datetime,
    backend: Backend[Any] = LOCAL,
) -> DriftResult:
    """Drift of the current window against a profile, streaming the window once (nothing
    recorded), counted by `backend`: here in record batches, or on a Dask cluster. `hint` says
    how to make a profile that fits the job again."""
    present = sources.column_types(current_source, "current")
    features = _profile_features(profile, columns, present, hint)

    def counted(name: str) -> bool:
        return name in profile.columns and (present is None or name in present)

    scores = [s for s in columns.scores if counted(s)]
    target = columns.target if columns.target and counted(columns.target) else None
    names = [*features, *scores, *([target] if target else [])]
    kinds = {name: profile.columns[name].kind for name in names}
    for name in names:
        arrow_type = present.get(name) if present is not None else None
        if arrow_type is not None and str(arrow_type) != "null":
            kind = column_kind(arrow_type, name, columns)
            if kind != kinds[name]:
                raise DataError(
                    f"feature {name!r} is {kinds[name]} in the profile but {kind} in the "
                    f"current window: {hint}"
                )
    ordered = settings.all_statistics or settings.method in drift.ORDERED_STATISTICS
    summary = window_summary.WindowSummary(profile, names, ordered=ordered)
    numeric = [name for name in names if kinds[name] == "numeric"]
    with importing_scipy():
        where = backend.count(current_source, summary, numeric)
    if summary.rows == 0:
        raise DataError(f"current data {sources.describe(current_source)} is empty")
    if target is not None and summary.missing[target] == summary.rows:
        summary.names.remove(target)  # no label has arrived: nothing to compare
        target = None
    result = summary_result(
        summary, Outputs(len(scores), target is not None), settings, model=model, job=job, now=now
    )
    result.profile = {**described, **(result.profile or {})}
    result.compute = where
    return result


def summary_result(
    summary: window_summary.WindowSummary,
    outputs: Outputs,
    settings: DriftSettings,
    *,
    model: str,
    job: str | None,
    now: datetime,
) -> DriftResult:
    """The verdict on a streamed current window: each of its columns (the predictions' and the
    target's last, as `outputs` says) decided against the profile it was counted with."""
    profile = summary.profile
    compared = []
    for name in summary.names:
        reference = profile.columns[name]
        compared.append(
            decide_column(
                name,
                reference.kind,
                settings,
                (reference.n, summary.n(name)),
                (reference.missing / reference.rows, summary.missing[name] / summary.rows),
                partial(summary.compare, name),
            )
        )
    result = result_of(
        compared, outputs, settings, (profile.rows, summary.rows), model=model, job=job, now=now
    )
    result.mode = DriftMode.PROFILE
    result.profile = {
        "built_from": profile.built_from,
        "kll_k": profile.kll_k,
        "rank_error": profile.rank_error,
        "max_categories": profile.max_categories,
        "peak_batch_rows": summary.peak_rows,
    }
    return result


def _profile_features(
    profile: Profile,
    columns: Columns,
    present: dict[str, pa.DataType | None] | None,
    hint: str,
) -> list[str]:
    """The features to compare: the job's, or the profile's; each one in the profile and in the
    current window, and (without a feature list) no column of the window the profile lacks."""
    skip = {*columns.excluded, *columns.outputs}
    names = (
        list(columns.features)
        if columns.features is not None
        else [c for c in profile.columns if c not in skip]
    )
    for name in names:
        if name not in profile.columns:
            raise DataError(
                f"feature {name!r} is not in the profile ({profile.built_from}): {hint}"
            )
        if present is not None and name not in present:
            raise DataError(f"feature {name!r} is missing from the current window")
    if columns.features is None and present is not None:
        added = [c for c in present if c not in profile.columns and c not in skip]
        if added:
            raise DataError(
                f"column {added[0]!r} of the current window is not in the profile "
                f"({profile.built_from}): {hint}, or list the job's features"
            )
    if not names:
        raise DataError("no feature columns to compare")
    return names
