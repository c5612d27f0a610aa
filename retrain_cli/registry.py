"""Model versions: which one is active, and (later) register, promote and roll back."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.db.models import ModelVersionManagement


def active_version(session: Session, model: str) -> ModelVersionManagement | None:
    """The model's active version, if it has one (the database allows at most one)."""
    return session.scalar(
        select(ModelVersionManagement).where(
            ModelVersionManagement.model_name == model,
            ModelVersionManagement.status == "active",
        )
    )
