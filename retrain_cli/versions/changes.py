"""Which models' serving documents a session changed, to be rewritten once it commits."""

from __future__ import annotations

from sqlalchemy.orm import Session

CHANGED = "retrain_cli.serving.changed"  # session.info key: the models whose serving changed


def changed(session: Session, model: str) -> None:
    """Note that `model`'s document is to be rewritten once the session commits."""
    session.info.setdefault(CHANGED, set()).add(model)


def to_publish(session: Session) -> list[str]:
    """The models noted by `changed`."""
    return sorted(session.info.get(CHANGED, set()))
