"""The serving contract: which versions of a model to serve, at which weights.

retrain-cli does not serve models; it publishes the decision. The document is built from the
version rows and their events alone (the same facts give the same bytes), printed by `versions
serving`, and written to `$RETRAIN_HOME/serving/<model>.json` after every change (and again by
the `jobs due` ticks of the following day), whole or not at all (docs/rollouts.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from retrain_cli.core import paths
from retrain_cli.core.choices import RolloutMode, VersionStatus
from retrain_cli.core.private import private_dir, write_private_text
from retrain_cli.core.serialize import jsonable
from retrain_cli.db.models import ModelVersionEvent, ModelVersionManagement
from retrain_cli.db.session import session_scope
from retrain_cli.store import objects, remote
from retrain_cli.versions import registry
from retrain_cli.versions.changes import changed
from retrain_cli.versions.rollouts import state as rollouts

RECHECKED = timedelta(days=1)  # a tick rewrites the documents of models changed this recently


def recheck(session: Session, home: Path, now: datetime, store: str | None = None) -> None:
    """Note the models in a rollout, with a version event in the last RECHECKED, or without a
    document yet: a `jobs due` tick rewrites theirs, so a host that died between its commit and
    its write is corrected by the next tick, and a new host or an upgraded install gets every
    document, without reading 10,000 unchanged documents every five minutes."""
    event, version = ModelVersionEvent, ModelVersionManagement
    recent = session.scalars(select(event.model_name).where(event.at >= now - RECHECKED).distinct())
    served = session.scalars(
        select(version.model_name)
        .where(version.status.in_((VersionStatus.ACTIVE, VersionStatus.CANDIDATE)))
        .distinct()
    )
    # a pod's home is new every time: with a store, the store says what is published
    missing = set(served) - (objects.names(store, ".json") if store else _documents(home))
    rolling = session.scalars(
        select(version.model_name).where(version.status == VersionStatus.CANDIDATE)
    )
    for model in {*recent, *missing, *rolling}:
        changed(session, model)


def document(session: Session, model: str) -> dict[str, Any]:
    """The versions to serve: the champion, and a rollout's candidate with its share of traffic
    (a shadow candidate: weight 0, scored beside the champion on every row)."""
    version = ModelVersionManagement
    rows = list(
        session.scalars(
            select(version)
            .where(
                version.model_name == model,
                version.status.in_((VersionStatus.ACTIVE, VersionStatus.CANDIDATE)),
            )
            .order_by(version.version)
        )
    )
    if not rows and not session.scalar(select(func.count()).where(version.model_name == model)):
        raise registry.no_such_model(session, model)
    rollout = rollouts.current(session, model)
    candidate_weight = rollout.weight if rollout else 0.0
    served = []
    for row in rows:
        if row.status == VersionStatus.ACTIVE:
            role, weight = "champion", 1.0 - candidate_weight
        else:
            role = "shadow" if rollout and rollout.mode is RolloutMode.SHADOW else "candidate"
            weight = candidate_weight
        served.append(
            {
                "version": row.version,
                "role": role,
                "weight": weight,
                "model_type": row.model_type,
                "directory": remote.parent(row.artifact_path),  # a store's prefix, or a folder
                "manifest": row.artifact_path,
                "sha256": row.sha256,
            }
        )
    updated = session.scalar(
        select(func.max(ModelVersionEvent.at)).where(ModelVersionEvent.model_name == model)
    )
    return {
        "model": model,
        "updated_at": updated,
        "rollout": None
        if rollout is None
        else {
            "mode": rollout.mode,
            "step": rollout.step + 1,
            "steps": rollout.steps,
            "step_since": rollout.step_since,
        },
        "versions": served,
    }


def _documents(home: Path) -> set[str]:
    """The models with a document, from one listing (not a path check per model: a tick with
    10,000 served models would spend a second on them)."""
    try:
        names = os.listdir(paths.serving_dir(home))
    except FileNotFoundError:
        return set()
    return {name.removesuffix(".json") for name in names if name.endswith(".json")}


def encode(served: dict[str, Any]) -> str:
    return json.dumps(jsonable(served), indent=2, sort_keys=True) + "\n"


def write(session: Session, home: Path, model: str) -> str | None:
    """Write the model's document where it differs from the file: its text when written."""
    text = encode(document(session, model))
    path = paths.serving_document(home, model)
    try:
        if path.read_text(encoding="utf-8") == text:
            return None
    except FileNotFoundError:
        pass
    private_dir(path.parent)
    write_private_text(path, text)
    return text


def publish(
    engine: Engine, home: Path, models: Iterable[str], store: str | None = None
) -> list[str]:
    """Write the documents of `models` after the change committed, and with a `store` put each
    one that changed (or that the store lacks) there too, in one PUT; returns the models whose
    document changed."""
    wanted = sorted(set(models))
    published = objects.names(store, ".json") if store and wanted else set()
    changed_models = []
    with session_scope(engine, check_schema=False) as session:
        for model in wanted:
            text = write(session, home, model)
            if text is not None:
                changed_models.append(model)
            if store and (text is not None or model not in published):
                objects.put_text(
                    store_document(store, model), text or encode(document(session, model))
                )
    return changed_models


def store_document(store: str, model: str) -> str:
    """Where a model's document is published in the store (the model's name, checked as for a
    directory, keeps it inside the prefix)."""
    return objects.join(store, paths.serving_document(Path("/"), model).name)
