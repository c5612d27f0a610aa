"""The challenger against the champion: both scored on the same hold-out, then the gate."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from retrain_cli.core.errors import one_line
from retrain_cli.core.serialize import jsonable
from retrain_cli.data.training import Prepared
from retrain_cli.db.models import ModelVersionManagement
from retrain_cli.jobs.store import EffectiveJob
from retrain_cli.statistics import performance, tasks
from retrain_cli.store import artifacts, remote
from retrain_cli.trainers.families import load_trainer
from retrain_cli.training import gate


@dataclass(frozen=True)
class Champion:
    """The model's active version when the run loaded its data."""

    version: int
    id: int
    sha256: str
    artifact: str  # its recorded manifest: a local path or a store's URL
    type: str
    task: str = "binary"
    directory: Path | None = None  # its files on this host, once `on_this_host` found them

    @classmethod
    def of(cls, version: ModelVersionManagement) -> Champion:
        return cls(
            version.version,
            version.id,
            version.sha256,
            version.artifact_path,
            version.model_type,
            version.task,
        )

    def on_this_host(self, model: str, cache: Path) -> Champion:
        """The champion with its files here: its folder, or this host's verified copy of a
        store's (downloaded the first time); one clear line when they cannot be reached."""
        label = f"{model} v{self.version}"
        where = remote.local_directory(self.artifact, self.sha256, cache, label)
        return replace(self, directory=where)

    def verified(self) -> tuple[Path, dict[str, Any]]:
        """Its directory and manifest, after checking every file against the recorded sha256."""
        assert self.directory is not None, "on_this_host first"
        return self.directory, artifacts.verify(self.directory, self.sha256)


def scoring(job: EffectiveJob, min_samples: int) -> tasks.Scoring:
    """How the job's predictions are judged (`statistics.tasks`)."""
    spec = job.spec
    section = spec.performance
    return tasks.Scoring(
        task=str(spec.task),
        threshold=section.decision_threshold,
        quantile=spec.quantile,
        min_samples=min_samples,
        periods_per_year=section.periods_per_year,
        risk_free=section.risk_free,
    )


def holdout_metrics(
    job: EffectiveJob, prepared: Prepared[Any], scores: Any
) -> performance.Evaluation:
    """Metrics over the hold-out rows the model scored (a sequence model leaves the first
    `sequence_length - 1` rows unscored); `n_samples` says how many. The train data's return
    column is the asset's return: the strategy's returns are derived from it
    (`tasks.strategy_returns`)."""
    import numpy as np

    scored = np.isfinite(scores).reshape(len(scores), -1).all(axis=1)
    returns = prepared.holdout_returns
    return tasks.evaluate(
        scoring(job, job.spec.gate.min_samples),
        prepared.holdout.target[scored],
        scores[scored],
        returns[scored] if returns is not None else None,
    )


def champion_metric(
    job: EffectiveJob, prepared: Prepared[Any], champion: Champion | None
) -> tuple[float | None, str | None]:
    """The champion's primary metric on the same hold-out, or why it has none."""
    if champion is None:
        return None, None
    if champion.task != job.spec.task:
        return None, f"champion v{champion.version} predicts a {champion.task} task: not compared"
    try:
        directory, manifest = champion.verified()
        trainer = load_trainer(champion.type, directory, manifest)
        scores = trainer.predict(prepared.holdout.features)
    except Exception as exc:
        return None, f"champion v{champion.version} could not be evaluated: {one_line(exc)}"
    evaluation = holdout_metrics(job, prepared, scores)
    return evaluation.values.get(job.primary_metric), None


def decide(
    job: EffectiveJob,
    metrics: performance.Evaluation,
    champion: tuple[float | None, str | None],
    *,
    may_promote: bool,
) -> gate.GateDecision:
    """The gate's decision with the job's settings; `may_promote=False` (`--no-promote`) holds."""
    champion_value, champion_note = champion
    decision = gate.decide(
        job.primary_metric,
        metrics.values.get(job.primary_metric),
        champion_value,
        threshold=job.performance_threshold,
        min_improvement=job.spec.gate.min_improvement,
        n_holdout=metrics.n_samples,
        min_samples=job.spec.gate.min_samples,
        allow_ties=job.spec.gate.allow_ties,
    )
    notes = [champion_note] if champion_note else []
    if decision.promote and not may_promote:
        return gate.GateDecision(False, [*decision.reasons, "held: --no-promote"], decision.values)
    return gate.GateDecision(decision.promote, [*notes, *decision.reasons], decision.values)


def nothing_to_learn(
    job: EffectiveJob, prepared: Prepared[Any], active: ModelVersionManagement | None
) -> str | None:
    """Why a retrain would learn nothing: the active version was trained by the same family on
    the same data (by fingerprint) with the same hyperparameters."""

    if active is None or (active.model_type, active.task) != (job.type, job.spec.task):
        return None
    same_data = active.data_fingerprint == jsonable(prepared.fingerprint)
    if not same_data or active.hyperparameters != jsonable(job.hyperparameters):
        return None
    return (
        f"nothing to learn: {job.model} v{active.version}, the active version, was trained on "
        "the same data with the same hyperparameters (--force retrains anyway)"
    )


def continues_from(job: EffectiveJob, champion: Champion | None) -> bool:
    """An incremental run starts from the champion of its own model family."""
    return (
        job.strategy == "incremental"
        and champion is not None
        and (champion.type, champion.task) == (job.type, job.spec.task)
    )
