"""One performance check's result: the judged metrics, an estimate, realized values, change
points and a rollout's analysis, and what operators are told of it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from retrain_cli.core.notify import Event

if TYPE_CHECKING:
    from retrain_cli.performance.change_points import ChangePoint
    from retrain_cli.performance.estimates import EstimatedResult, Realized
    from retrain_cli.versions.rollouts.checks import Analysis
    from retrain_cli.versions.rollouts.state import Move


@dataclass
class PerfResult:
    job: str | None
    model: str
    version: int | None
    checked_at: datetime
    degraded: bool | None
    primary_metric: str
    metrics: dict[str, float | None]
    reasons: dict[str, str]
    n_samples: int
    n_dropped: int
    threshold: float | None
    baseline: float | None
    judgement: list[str]
    window_start: datetime | None = None
    window_end: datetime | None = None
    estimate: EstimatedResult | None = None  # with `performance.estimate`
    change_points: list[ChangePoint] = field(default_factory=list)  # with `change_points`
    realized: list[Realized] = field(default_factory=list)  # earlier estimates now labelled
    analysis: Analysis | None = None  # a rollout's candidate (or a bake) against the champion
    moves: list[Move] = field(default_factory=list)  # what the analysis moved, committed
    rollout_error: str | None = None  # why the rollout could not move (`jobs due` says it too)
    check_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def flagged(self) -> bool:
        """Degraded, realized or estimated: a finding (exit 3)."""
        return bool(self.degraded or (self.estimate and self.estimate.degraded))

    def events(self) -> list[Event]:
        """What operators are told after the check is recorded."""
        events = []
        who = self.job or self.model
        details = {"metrics": self.metrics, "version": self.version}
        if self.degraded:
            summary = f"{self.primary_metric} of {who} degraded: " + "; ".join(self.judgement)
            events.append(
                Event(
                    "performance_degraded", summary, self.checked_at, self.job, self.model, details
                )
            )
        if self.estimate is not None and self.estimate.degraded:
            summary = f"estimated {self.primary_metric} of {who} degraded: " + "; ".join(
                self.estimate.judgement
            )
            details = {"estimated": self.estimate.metrics, "version": self.version}
            events.append(
                Event(
                    "performance_degraded", summary, self.checked_at, self.job, self.model, details
                )
            )
        return events + [event for move in self.moves for event in move.events()]
