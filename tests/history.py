"""A generated history in the tables, for the report's tests: a model whose features drift and
whose metric falls in the last third of the period, with retrains (one failing), three versions,
a promotion and a rollback."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from retrain_cli.db.models import (
    AutoRetrainingJob,
    ModelDriftMonitoring,
    ModelPerformanceTracking,
    ModelVersionEvent,
    ModelVersionManagement,
    RetrainingJobHistory,
)

FAILURE = "training data has 3 rows, fewer than 30 <and> one more line"


def seed_history(
    s: Session,
    job: AutoRetrainingJob,
    now: datetime,
    *,
    days: int = 30,
    features: tuple[str, ...] = ("f0", "f1", "colour"),
    every: timedelta = timedelta(hours=6),
    seed: int = 0,
) -> None:
    rng = random.Random(seed)
    start = now - timedelta(days=days)
    broken = start + (now - start) * 2 / 3
    at, check = start + every, 0
    while at <= now:
        late = at >= broken
        check += 1
        drifted = 0
        for i, feature in enumerate(features):
            psi = rng.uniform(0.0, 0.08) + (0.3 + 0.1 * i if late else 0.0)
            drifted += psi >= 0.2
            s.add(_drift(job, at, check, "feature", feature, "psi", psi, 0.2, psi >= 0.2))
        p_value = rng.uniform(1e-6, 1e-3) if late else rng.uniform(0.2, 0.9)
        s.add(_drift(job, at, check, "prediction", "score", "ks_pvalue", p_value, 0.05, late))
        share = drifted / len(features)
        dataset = _drift(job, at, check, "dataset", None, "psi", share, 0.2, share >= 0.5)
        dataset.drift_share = share
        dataset.metrics = {"required_share": 0.5, "mode": "exact"}
        s.add(dataset)
        auc = rng.uniform(0.86, 0.9) - (0.12 if late else 0.0)
        s.add(
            ModelPerformanceTracking(
                check_id=f"p{check}",
                job_id=job.id,
                model_name=job.model_name,
                version=1,
                checked_at=at,
                metric="auc",
                value=auc,
                threshold=0.8,
                baseline=0.88,
                is_primary=True,
                degraded=auc < 0.8,
                n_samples=1000,
                n_dropped=0,
            )
        )
        at += every
    versions = [_version(job, n, start + timedelta(days=n)) for n in (1, 2, 3)]
    s.add_all(versions)
    s.flush()
    runs = []
    for n in range(days):
        started = start + timedelta(days=n, hours=2)
        failed = n == days - 2
        ran = RetrainingJobHistory(
            job_id=job.id,
            trigger="drift" if started >= broken else "scheduled",
            trigger_detail="drift share 0.67" if started >= broken else None,
            status="failed" if failed else "succeeded",
            host="h",
            pid=1,
            started_at=started,
            finished_at=started + timedelta(seconds=30 + n),
            duration_s=30.0 + n,
            error=FAILURE if failed else None,
        )
        runs.append(ran)
    for version, ran in zip(versions, runs[1:4], strict=True):
        ran.version_id = version.id
        ran.promoted = version.version == 2
        ran.gate = {
            "decision": "promote" if version.version != 3 else "hold",
            "reasons": [f"challenger auc 0.9{version.version} beats the champion"],
            "values": {"challenger": 0.9 + version.version / 100},
        }
    s.add_all(runs)
    versions[0].status, versions[0].retired_at = "retired", start + timedelta(days=5)
    versions[1].status, versions[1].promoted_at = "active", start + timedelta(days=5)
    versions[2].status = "registered"
    s.add_all(
        [
            _event(job, "promote", None, 1, start + timedelta(days=1), "cron"),
            _event(job, "promote", 1, 3, start + timedelta(days=4), "cron"),
            _event(job, "rollback", 3, 1, start + timedelta(days=4, hours=12), "alice"),
            _event(job, "promote", 1, 2, start + timedelta(days=5), "cron"),
        ]
    )
    job.last_run_at, job.last_run_status = runs[-1].started_at, runs[-1].status


def _drift(
    job: AutoRetrainingJob,
    at: datetime,
    check: int,
    scope: str,
    feature: str | None,
    method: str,
    statistic: float,
    threshold: float,
    drifted: bool,
) -> ModelDriftMonitoring:
    return ModelDriftMonitoring(
        check_id=f"d{check}",
        job_id=job.id,
        model_name=job.model_name,
        checked_at=at,
        scope=scope,
        feature=feature,
        kind="numeric" if feature else None,
        method=method,
        statistic=statistic,
        threshold=threshold,
        drifted=drifted,
        n_reference=1000,
        n_current=1000,
        metrics={},
    )


def _version(job: AutoRetrainingJob, number: int, at: datetime) -> ModelVersionManagement:
    return ModelVersionManagement(
        model_name=job.model_name,
        version=number,
        model_type=job.model_type,
        job_id=job.id,
        status="registered",
        artifact_path=f"/models/{number}",
        sha256="0" * 64,
        size_bytes=1,
        strategy="full",
        parent_version=number - 1 or None,
        metrics={"auc": 0.9},
        hyperparameters={},
        data_fingerprint={},
        created_at=at,
    )


def _event(
    job: AutoRetrainingJob, event: str, old: int | None, new: int, at: datetime, actor: str
) -> ModelVersionEvent:
    return ModelVersionEvent(
        model_name=job.model_name,
        event=event,
        from_version=old,
        to_version=new,
        actor=actor,
        reason=f"{event} to v{new}",
        job_id=job.id,
        at=at,
    )
