"""A drift check's result as rows of `model_drift_monitoring`: one per feature, one for the
score column, the dataset-level verdict and the domain classifier's (docs/storage.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from retrain_cli.core.choices import DOMAIN_CLASSIFIER
from retrain_cli.core.serialize import jsonable
from retrain_cli.db.models import ModelDriftMonitoring
from retrain_cli.drift.compare import ColumnDrift, DriftResult

NO_SHARE = "too_few_values: no feature had enough values in both windows"


def add_drift_check(
    session: Session,
    result: DriftResult,
    job_id: int | None,
    backfilled: tuple[datetime, datetime] | None = None,
) -> None:
    """One row per feature, one for the score column, one dataset-level verdict and, with a
    domain classifier, its dataset-level row. `backfilled`: the past window the check covered
    (`jobs backfill`); the unique key admits one dataset verdict per job and window."""
    check: dict[str, Any] = {
        "check_id": result.check_id,
        "job_id": job_id,
        "model_name": result.model,
        "checked_at": result.checked_at,
    }
    if backfilled is not None:
        check.update(window_start=backfilled[0], window_end=backfilled[1], backfilled=True)

    def row(column: ColumnDrift, scope: str) -> ModelDriftMonitoring:
        return ModelDriftMonitoring(
            **check,
            scope=scope,
            feature=column.feature,
            kind=column.kind,
            method=column.method,
            statistic=column.statistic,
            threshold=column.threshold,
            drifted=column.drifted,
            n_reference=column.n_reference,
            n_current=column.n_current,
            missing_rate_ref=column.missing_rate_ref,
            missing_rate_cur=column.missing_rate_cur,
            metrics=jsonable(
                column.metrics
                if column.importance is None
                else {**column.metrics, "importance": column.importance}
            ),
        )

    rows = [row(c, "feature") for c in result.features]
    rows += [row(c, "prediction") for c in result.predictions]
    if result.target is not None:
        rows.append(row(result.target, "target"))
    n_drifted = sum(c.drifted for c in result.features)
    rows.append(
        ModelDriftMonitoring(
            **check,
            scope="dataset",
            method=result.decision_method,
            statistic=result.drift_share,
            threshold=result.threshold,
            drifted=result.drifted,
            drift_share=result.drift_share,
            n_reference=result.n_reference,
            n_current=result.n_current,
            metrics={
                "mode": result.mode,
                "compute": result.compute,
                **({"compute_note": result.compute_note} if result.compute_note else {}),
                **({"profile": result.profile} if result.profile is not None else {}),
                "n_features": len(result.features),
                "required_share": result.required_share,
                "n_drifted": n_drifted,
                "drifted_features": [c.feature for c in result.features if c.drifted],
                "prediction_drifted": any(c.drifted for c in result.predictions),
                "weighting": result.weighting,
                **(
                    {"weighted_share": result.weighted_share}
                    if result.weighted_share is not None
                    else {}
                ),
                **({"weighting_note": result.weighting_note} if result.weighting_note else {}),
                **({"target_drifted": result.target.drifted} if result.target else {}),
                "dead_features": result.dead_features,
                **(
                    {"contract_violations": len(result.contract)}
                    if result.contract is not None
                    else {}
                ),
                **({"reason": reason} if (reason := result.reason()) else {}),
                **({"undefined": NO_SHARE} if result.drift_share is None else {}),
            },
        )
    )
    rows += [
        ModelDriftMonitoring(
            **check,
            scope="contract",
            feature=broken.column,
            method=broken.rule,
            statistic=broken.observed,
            threshold=broken.limit if broken.limit is not None else 0.0,  # 0: none may fail
            drifted=True,
            n_reference=0,
            n_current=result.n_current,
            metrics={"message": broken.message},
        )
        for broken in result.contract or []
    ]
    found = result.multivariate
    if found is not None:
        rows.append(
            ModelDriftMonitoring(
                **check,
                scope="dataset",
                method=DOMAIN_CLASSIFIER,
                statistic=found.auc,
                threshold=found.max_auc,
                drifted=found.drifted,
                n_reference=found.n_reference,
                n_current=found.n_current,
                metrics=jsonable(
                    {
                        "ci": [found.ci_low, found.ci_high],
                        "folds": found.folds,
                        "fold_aucs": found.fold_aucs,
                        "top_features": found.top_features,
                        **({"undefined": found.reason} if found.reason else {}),
                    }
                ),
            )
        )
    session.add_all(rows)
    session.flush()
