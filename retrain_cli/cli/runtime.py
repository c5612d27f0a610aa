"""Open the settings, engine and the one session of a command run; what follows a commit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from retrain_cli.core import paths
from retrain_cli.core.durations import utcnow
from retrain_cli.core.settings import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from retrain_cli.core.notify import Event

# The database and the library load in the functions that use them, not when the command tree
# is built: `--version`, `--help` and completion do not pay for SQLAlchemy's ORM and numpy.


@contextmanager
def open_session(database_url: str | None) -> Iterator[tuple[Settings, Session]]:
    """The command's settings and its session; committed when the block completes.

    First, in a transaction of its own, runs whose process died are marked abandoned: every
    command notices them, not only the next retrain. After the commit, the serving documents of
    the models whose versions changed are rewritten, and the metrics textfile when one is
    configured.
    """
    from retrain_cli.db.session import make_engine, session_scope
    from retrain_cli.training.history import sweep_abandoned
    from retrain_cli.versions.changes import to_publish

    settings = load_settings(database_url)
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            claim_home(settings, session)
            sweep_abandoned(session, utcnow())
        with session_scope(engine, check_schema=False) as session:
            yield settings, session
        publish_serving(engine, settings, to_publish(session))
        export_metrics(engine, settings)
    finally:
        engine.dispose()


def claim_home(settings: Settings, session: Session) -> None:
    """Go on only when this host's directories are the session's database's (`core.ownership`):
    a command against a second database sharing them stops here, before it changes anything."""
    from retrain_cli.core import ownership
    from retrain_cli.db.queries import registry_id

    registry = registry_id(session)
    ownership.claim_home(settings, registry)
    from retrain_cli.store.objects import claim_prefix

    # a store's versions, profiles and documents are one database's too
    for prefix in dict.fromkeys((settings.artifacts_store, settings.serving_store)):
        if prefix:
            claim_prefix(prefix, registry, settings.safe_database_url)


def claimed_engine(settings: Settings) -> Engine:
    """The database's engine, once its home is claimed (see `claim_home`)."""
    from retrain_cli.db.session import make_engine, session_scope

    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            claim_home(settings, session)
    except BaseException:
        engine.dispose()
        raise
    return engine


def export_metrics(engine: Engine, settings: Settings) -> None:
    """Rewrite the node-exporter textfile, if configured; never fails the command."""
    if settings.metrics_dir is None:
        return
    from retrain_cli.db.session import session_scope
    from retrain_cli.ops.metrics_export import write_metrics
    from retrain_cli.training.slots import file_slots

    try:
        in_use = file_slots(settings).slots_in_use()
        with session_scope(engine, check_schema=False) as session:
            write_metrics(session, settings.metrics_dir, utcnow(), in_use)
    except Exception as exc:  # monitoring must not break the pipeline it monitors
        _log(settings, "metrics.log", f"cannot write metrics: {type(exc).__name__}: {exc}")


def publish_serving(engine: Engine, settings: Settings, models: Sequence[str]) -> None:
    """Rewrite the serving documents of `models` after a committed change; never fails the
    command (the next `jobs due` tick writes them again)."""
    if not models:
        return
    from retrain_cli.versions.serving import publish

    try:
        publish(engine, settings.home, models, settings.serving_store)
    except Exception as exc:
        _log(
            settings, "serving.log", f"cannot write serving documents: {type(exc).__name__}: {exc}"
        )


def notify(settings: Settings, events: Sequence[Event]) -> None:
    """Send events to the configured targets and to their jobs' own `notify` targets."""
    if not events:
        return
    from sqlalchemy import select

    from retrain_cli.core.notify import Notifier
    from retrain_cli.db.models import AutoRetrainingJob
    from retrain_cli.db.session import make_engine, session_scope

    names = {e.job for e in events if e.job}
    targets: dict[str, list[dict[str, str]]] = {}
    if names:
        engine = make_engine(settings.database_url)
        try:
            with session_scope(engine, check_schema=False) as session:
                for name, spec in session.execute(
                    select(AutoRetrainingJob.name, AutoRetrainingJob.spec).where(
                        AutoRetrainingJob.name.in_(names)
                    )
                ):
                    targets[name] = list(spec.get("notify") or [])
        except Exception as exc:
            _log(settings, "notifications.log", f"cannot read job targets: {exc}")
        finally:
            engine.dispose()
    if not settings.notifications.get("targets") and not any(targets.values()):
        return
    notifier = Notifier(settings.notifications, settings.logs_dir)
    for event in events:
        notifier.send(event, targets.get(event.job or "", []))


def _log(settings: Settings, name: str, line: str) -> None:
    try:
        from retrain_cli.core.private import append_line

        append_line(
            paths.log_file(settings.logs_dir, name),
            f"{utcnow().isoformat()} {' '.join(line.split())}",
        )
    except OSError:
        pass
