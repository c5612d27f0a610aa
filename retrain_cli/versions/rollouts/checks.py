"""A rollout's analysis on a `perf check`: the candidate against the champion (or, in a bake, the
new champion against the previous one) on the labelled rows each served, judged by
`rollout_analysis` and recorded as a `rollout:<metric>` row that `rollout_moves.advance` reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from retrain_cli.core.choices import RolloutMode
from retrain_cli.core.errors import DataError
from retrain_cli.data import predictions
from retrain_cli.db.tracking import rollout_metric
from retrain_cli.versions import registry
from retrain_cli.versions.rollouts import state as rollouts
from retrain_cli.versions.rollouts.analysis import Rule, compare_paired, compare_unpaired

if TYPE_CHECKING:
    import pandas as pd

    from retrain_cli.data.predictions import PredictionColumns
    from retrain_cli.jobs.sections import RolloutSpec
    from retrain_cli.jobs.spec import JobSpec
    from retrain_cli.jobs.store import EffectiveJob
    from retrain_cli.versions.rollouts.analysis import Comparison, Rule


@dataclass(frozen=True)
class Analysis:
    """One comparison of `version` (a candidate, or a champion in its bake) with `against`."""

    phase: str  # rollout | bake
    version: int
    against: int
    comparison: Comparison
    mode: str
    step: int | None

    def numbers(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "mode": self.mode,
            "step": self.step,
            "version": self.version,
            "against": self.against,
            **self.comparison.numbers(),
        }


def analyse(
    session: Session,
    job: EffectiveJob,
    frame: pd.DataFrame,
    columns: PredictionColumns,
    now: datetime,
) -> Analysis | None:
    """Compare the candidate with the champion on the window's labelled rows (or, during a
    bake, the new champion with the one before it); None when neither is under way."""

    spec = job.spec
    policy = spec.rollout
    if policy is None:
        return None
    rollout = rollouts.current(session, job.model)
    active = registry.active_version(session, job.model)
    rule = _rule(spec, policy)
    window = predictions.window(frame, columns.time, spec.performance.window)
    if rollout is not None and active is not None:
        if rollout.mode is RolloutMode.SHADOW:
            comparison = _paired(window, columns, policy, rule, active.version)
        else:
            comparison = _unpaired(window, columns, policy, rule, active.version, rollout.candidate)
        return Analysis(
            "rollout", rollout.candidate, active.version, comparison, rollout.mode, rollout.step + 1
        )
    baking = rollouts.in_bake(session, policy, active, now)
    if baking is None:
        return None
    champion, previous = baking
    comparison = _unpaired(window, columns, policy, rule, previous, champion)
    return Analysis("bake", champion, previous, comparison, "bake", None)


def _rule(spec: JobSpec, policy: RolloutSpec) -> Rule:

    analysis = policy.analysis
    return Rule(
        metric=str(spec.analysis_metric),
        max_drop=analysis.max_drop,
        min_samples=analysis.min_samples,
        confidence=analysis.confidence,
        resamples=analysis.resamples,
        threshold=spec.performance.decision_threshold,
        max_rows=analysis.max_rows,
        quantile=spec.quantile,
    )


def _served(
    frame: pd.DataFrame, columns: PredictionColumns, policy: RolloutSpec, extra: list[str]
) -> pd.DataFrame:
    needed = [policy.version_column, columns.label, *columns.predicted, *extra]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"a rollout's analysis needs the predictions column {', '.join(map(repr, missing))} "
            "(docs/rollouts.md)"
        )
    return frame.dropna(subset=needed)


def _versions(rows: pd.DataFrame, policy: RolloutSpec) -> Any:

    return predictions.floats(rows[policy.version_column], policy.version_column)


def _paired(
    frame: pd.DataFrame,
    columns: PredictionColumns,
    policy: RolloutSpec,
    rule: Rule,
    champion: int,
) -> Comparison:
    """Shadow: the rows the champion served that also carry the candidate's prediction (a
    multiclass candidate's probabilities in `<shadow_score_column>_<class>`)."""

    shadow = shadow_columns(columns, policy)
    rows = _served(frame, columns, policy, list(shadow.predicted))
    rows = rows[_versions(rows, policy) == champion]
    return compare_paired(
        rule,
        predictions.outcomes(rows, columns),
        predictions.predicted(rows, columns),
        predictions.predicted(rows, shadow),
    )


def shadow_columns(columns: PredictionColumns, policy: RolloutSpec) -> PredictionColumns:
    """Where a shadow candidate's predictions are."""
    from dataclasses import replace

    name = policy.shadow_score_column
    return replace(columns, score=name, probabilities=tuple(f"{name}_{c}" for c in columns.classes))


def _unpaired(
    frame: pd.DataFrame,
    columns: PredictionColumns,
    policy: RolloutSpec,
    rule: Rule,
    champion: int,
    candidate: int,
) -> Comparison:
    """Canary, A/B and bake: each version's metric on the rows it served."""

    rows = _served(frame, columns, policy, [])
    served = _versions(rows, policy)

    def of(version: int) -> tuple[Any, Any]:
        mine = rows[served == version]
        return predictions.outcomes(mine, columns), predictions.predicted(mine, columns)

    return compare_unpaired(rule, of(champion), of(candidate))


def analysis_row(analysis: Analysis) -> dict[str, Any]:
    """The `model_performance_tracking` columns of an analysis (the check adds its own)."""
    comparison = analysis.comparison
    verdict = {"pass": False, "fail": True, "wait": None}[comparison.verdict]
    return {
        "metric": rollout_metric(comparison.metric),
        "version": analysis.version,
        "value": comparison.candidate,
        "baseline": comparison.champion,
        "threshold": None,
        "degraded": verdict,  # a failed analysis; NULL: waiting
        "reason": None if comparison.verdict != "wait" else "waiting",
        "n_samples": comparison.n_candidate,
        "n_dropped": 0,
        "details": analysis.numbers(),
    }
