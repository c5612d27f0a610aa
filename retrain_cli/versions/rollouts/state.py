"""Safe rollouts: a candidate served beside the champion step by step and judged on live
outcomes (the judging: `rollout_checks`; the moves: `rollout_moves`), and a bake after each
promotion that rolls a failing champion back. This module reads and starts a rollout.

Stateless and cron-driven: the state is the version rows (`candidate`, `active`), the events of
`model_version_events` (each step with its weights and analysis) and the analyses recorded by
`perf check` (`model_performance_tracking` rows named `rollout:<metric>`). Each move is made in the
caller's transaction under the model's lock, as promotions are, and decided again from what is
committed: two hosts advancing one rollout at once make one step (docs/rollouts.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.core.choices import RolloutMode, VersionStatus
from retrain_cli.core.errors import ConflictError
from retrain_cli.core.notify import Event
from retrain_cli.core.serialize import jsonable
from retrain_cli.db.models import (
    AutoRetrainingJob,
    ModelVersionEvent,
    ModelVersionManagement,
)
from retrain_cli.versions import changes, registry

if TYPE_CHECKING:
    from retrain_cli.jobs.sections import RolloutSpec

ACTOR = "rollout"  # who moves a rollout on a `jobs due` tick or a `perf check`
STEP_EVENTS = ("candidate", "step")


@dataclass(frozen=True)
class Rollout:
    """A candidate in rollout: its current step (0-based) and weight, since when."""

    model: str
    candidate: int
    mode: RolloutMode
    step: int
    steps: int
    weight: float
    since: datetime  # became the candidate
    step_since: datetime
    job_id: int | None

    def summary(self) -> dict[str, Any]:
        """As `stats` shows it (steps counted from 1)."""
        return {
            "candidate": self.candidate,
            "mode": self.mode,
            "step": self.step + 1,
            "steps": self.steps,
            "weight": self.weight,
            "since": self.since,
            "step_since": self.step_since,
        }


@dataclass(frozen=True)
class Move:
    """One committed change of a rollout or a bake, for the output and the notifications."""

    model: str
    event: str  # candidate | step | promote | abort | rollback
    from_version: int | None
    to_version: int
    from_weight: float | None
    to_weight: float | None
    actor: str
    reason: str
    at: datetime
    job: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        weights = ""
        if self.from_weight is not None and self.to_weight is not None:
            weights = f" ({self.from_weight:.0%} -> {self.to_weight:.0%})"
        return (
            f"{self.model}: {self.event} v{self.from_version} -> v{self.to_version}{weights} "
            f"by {self.actor}: {self.reason}"
        )

    def events(self) -> list[Event]:
        kind = {
            "promote": "version_promoted",
            "rollback": "rollback",
            "abort": "rollout_aborted",
        }.get(self.event, "rollout_step")
        details = {
            "from": self.from_version,
            "to": self.to_version,
            "from_weight": self.from_weight,
            "to_weight": self.to_weight,
            "reason": self.reason,
            **self.details,
        }
        return [Event(kind, self.describe(), self.at, self.job, self.model, details)]


def current(session: Session, model: str) -> Rollout | None:
    """The model's rollout in progress, from its candidate row and the candidate's events."""
    candidate = session.scalar(
        select(ModelVersionManagement).where(
            ModelVersionManagement.model_name == model,
            ModelVersionManagement.status == VersionStatus.CANDIDATE,
        )
    )
    if candidate is None:
        return None
    event = ModelVersionEvent
    steps = list(
        session.scalars(
            select(event)
            .where(
                event.model_name == model,
                event.to_version == candidate.version,
                event.event.in_(STEP_EVENTS),
            )
            .order_by(event.at, event.id)
        )
    )
    if not steps:  # a candidate row no rollout started (edited by hand): it serves nothing
        return Rollout(
            model,
            candidate.version,
            RolloutMode.SHADOW,
            0,
            1,
            0.0,
            candidate.created_at,
            candidate.created_at,
            candidate.job_id,
        )
    first, last = steps[0], steps[-1]
    details = first.details or {}
    return Rollout(
        model=model,
        candidate=candidate.version,
        mode=RolloutMode(details.get("mode", RolloutMode.CANARY)),
        step=len(steps) - 1,
        steps=int(details.get("steps", len(steps))),
        weight=float(last.to_weight or 0.0),
        since=first.at,
        step_since=last.at,
        job_id=candidate.job_id,
    )


def in_progress(session: Session) -> dict[str, Rollout]:
    """Every rollout in progress, by model."""
    version = ModelVersionManagement
    models = session.scalars(
        select(version.model_name).where(version.status == VersionStatus.CANDIDATE)
    )
    return {model: rollout for model in models if (rollout := current(session, model))}


def candidate_at(session: Session, model: str, at: datetime) -> tuple[int, float] | None:
    """The candidate in rollout at `at` and its weight then, from the events."""
    event = ModelVersionEvent
    last = session.scalar(
        select(event)
        .where(event.model_name == model, event.at <= at, event.event.in_((*STEP_EVENTS, "abort")))
        .order_by(event.at.desc(), event.id.desc())
        .limit(1)
    )
    if last is None or last.event == "abort":
        return None
    promoted = session.scalar(
        select(event.id).where(
            event.model_name == model,
            event.event == "promote",
            event.to_version == last.to_version,
            event.at >= last.at,
            event.at <= at,
        )
    )
    return None if promoted is not None else (last.to_version, float(last.to_weight or 0.0))


def start(
    session: Session,
    policy: RolloutSpec,
    version: ModelVersionManagement,
    champion: int | None,
    now: datetime,
    *,
    reason: str,
    job_id: int | None,
    run_id: int | None,
) -> Move:
    """Make a gate-passing `version` the candidate at the first step's weight (call under the
    model's lock). A rollout already in progress keeps going: the new version stays registered."""
    model = version.model_name
    running = current(session, model)
    if running is not None:
        raise ConflictError(
            f"v{running.candidate} is in rollout: v{version.version} stays registered "
            f"(`versions rollout {model} --abort` ends that rollout)"
        )
    assert policy.mode is not None
    weight = policy.steps[0].weight
    version.status = VersionStatus.CANDIDATE
    details = {"mode": policy.mode, "step": 1, "steps": len(policy.steps)}
    move = Move(model, "candidate", champion, version.version, 0.0, weight, ACTOR, reason, now)
    return record(session, replace(move, details=details), job_id=job_id, run_id=run_id)


def in_bake(
    session: Session,
    policy: RolloutSpec,
    active: ModelVersionManagement | None,
    now: datetime,
) -> tuple[int, int] | None:
    """(champion, previous champion) while the champion's bake runs."""
    if active is None or policy.bake_after_promote is None or active.promoted_at is None:
        return None
    if now >= active.promoted_at + timedelta(seconds=policy.bake_after_promote):
        return None
    previous = registry.previous_champion(session, active.model_name, active.version)
    return None if previous is None else (active.version, previous)


def models_to_advance(session: Session, now: datetime) -> list[str]:
    """The models with a candidate, or whose champion may still be in its bake."""
    version, job = ModelVersionManagement, AutoRetrainingJob
    candidates = session.scalars(
        select(version.model_name).where(version.status == VersionStatus.CANDIDATE)
    )
    bakes = session.execute(
        select(
            version.model_name,
            version.promoted_at,
            job.spec[("rollout", "bake_after_promote")].as_integer(),
        )
        .join(job, version.job_id == job.id)
        .where(version.status == VersionStatus.ACTIVE)
    )
    baking = [
        model
        for model, promoted_at, bake in bakes
        if bake and promoted_at is not None and now < promoted_at + timedelta(seconds=bake)
    ]
    return sorted({*candidates, *baking})


def record(
    session: Session, move: Move, *, job_id: int | None = None, run_id: int | None = None
) -> Move:
    """Append the move's `model_version_events` row, timed under the model's lock (the caller
    holds it) as every audit event is: see `registry.event_time`."""
    move = replace(move, at=registry.event_time(session, move.model, move.at))
    session.add(
        ModelVersionEvent(
            model_name=move.model,
            event=move.event,
            from_version=move.from_version,
            to_version=move.to_version,
            from_weight=move.from_weight,
            to_weight=move.to_weight,
            actor=move.actor,
            reason=move.reason,
            job_id=job_id,
            run_id=run_id,
            at=move.at,
            details=jsonable(move.details) or None,
        )
    )
    session.flush()
    changes.changed(session, move.model)
    return move
