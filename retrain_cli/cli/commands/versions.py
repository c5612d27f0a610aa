"""`retrain-cli versions`: list, promote, roll back and retire model versions."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from retrain_cli.cli.completion import model_names
from retrain_cli.cli.options import Command, DatabaseUrl, Group, Json, Now, Quiet, parse_time
from retrain_cli.cli.output import Output, table
from retrain_cli.cli.runtime import notify, open_session
from retrain_cli.core.choices import VersionStatus, better
from retrain_cli.core.durations import utcnow
from retrain_cli.core.settings import Settings

if TYPE_CHECKING:
    from retrain_cli.versions import registry

app = typer.Typer(
    cls=Group, help="List, promote, roll back and retire model versions.", no_args_is_help=True
)
Model = Annotated[
    str,
    typer.Argument(help="The model's name.", show_default=False, autocompletion=model_names),
]
Version = Annotated[int, typer.Argument(help="Version number.", show_default=False)]
Reason = Annotated[str | None, typer.Option(help="Why, for the audit log.", show_default=False)]
Actor = Annotated[str | None, typer.Option(help="Who (default: the OS user).", show_default=False)]


@app.command("list", cls=Command)
def list_(
    model: Model,
    at: Annotated[
        datetime | None,
        typer.Option(
            "--at",
            help="Also say which version was active at this ISO 8601 time.",
            parser=parse_time,
            metavar="ISO8601",
            show_default=False,
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """List MODEL's versions, its active one, and its promotion history.

    Example: retrain-cli versions list fraud --at 2026-11-01T00:00Z
    """
    from retrain_cli.versions import registry
    from retrain_cli.versions.rollouts import state as rollouts

    with open_session(database_url) as (_, session):
        listed = registry.list_versions(session, model)
        versions = [_row(v) for v in listed]
        metric = registry.judged_by(session, listed)
        history = [_event(e) for e in registry.events(session, model)]
        active_then = registry.active_at(session, model, at) if at else None
        candidate_then = rollouts.candidate_at(session, model, at) if at else None
    document: dict[str, Any] = {
        "model": model,
        "metric": metric,  # the metric the table shows: the newest version's job's
        "versions": versions,
        "events": history,
    }
    if at:
        document["at"], document["active_at"] = at, active_then
        document["candidate_at"] = (
            {"version": candidate_then[0], "weight": candidate_then[1]} if candidate_then else None
        )
    Output(as_json, quiet).emit(document, lambda c: _render(c, document))


@app.command("promote", cls=Command)
def promote(
    model: Model,
    version: Version,
    reason: Reason = None,
    expect_current: Annotated[
        int | None,
        typer.Option(
            help="Only if this version is active now (compare-and-swap).", show_default=False
        ),
    ] = None,
    actor: Actor = None,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Make VERSION active after a preflight (checksums, load, score a sample), in one
    transaction that retires the active version.

    Example: retrain-cli versions promote fraud 7 --expect-current 6 --reason "canary passed"
    """
    from retrain_cli.versions import registry

    with open_session(database_url) as (settings, session):
        switch = registry.promote(
            session,
            model,
            version,
            reason=reason,
            expect_current=expect_current,
            actor=actor,
        )
    _done(Output(as_json, quiet), switch, settings)


@app.command("rollback", cls=Command)
def rollback(
    model: Model,
    to: Annotated[
        int | None,
        typer.Option(
            "--to", help="This version instead of the previous champion.", show_default=False
        ),
    ] = None,
    reason: Reason = None,
    actor: Actor = None,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Return MODEL to the version that was champion before the active one (or --to).

    Example: retrain-cli versions rollback fraud --reason "bad release"
    """
    from retrain_cli.versions import registry

    with open_session(database_url) as (settings, session):
        switch = registry.rollback(session, model, to, reason=reason, actor=actor)
    _done(Output(as_json, quiet), switch, settings)


@app.command("serving", cls=Command)
def serving(
    model: Model, database_url: DatabaseUrl = None, as_json: Json = False, quiet: Quiet = False
) -> None:
    """Print the versions to serve and their weights: what $RETRAIN_HOME/serving/MODEL.json
    (and, with `serving.store`, the store's MODEL.json) holds, and where (docs/rollouts.md).

    Example: retrain-cli versions serving fraud --json
    """
    from retrain_cli.core import paths
    from retrain_cli.versions.serving import document, store_document

    with open_session(database_url) as (settings, session):
        served = document(session, model)
    where = [str(paths.serving_document(settings.home, model))]
    if settings.serving_store:
        where.append(store_document(settings.serving_store, model))
    Output(as_json, quiet).emit(served, lambda c: _render_serving(c, served, where))


@app.command("rollout", cls=Command)
def rollout(
    model: Model,
    abort: Annotated[
        bool, typer.Option("--abort", help="Retire the candidate (in a bake: roll back).")
    ] = False,
    promote_now: Annotated[
        bool, typer.Option("--promote-now", help="Promote the candidate without more steps.")
    ] = False,
    now: Now = None,
    reason: Reason = None,
    actor: Actor = None,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Move MODEL's rollout as its analyses allow (what each `jobs due` tick does), or end it by
    hand with --abort or --promote-now; then print what is served.

    Example: retrain-cli versions rollout fraud --abort --reason "complaints from support"
    """
    from retrain_cli.core.errors import ConflictError, UsageError
    from retrain_cli.versions import registry
    from retrain_cli.versions.rollouts import moves as rollout_moves
    from retrain_cli.versions.serving import document

    if abort and promote_now:
        raise UsageError("--abort or --promote-now, not both")
    at = now or utcnow()
    who = actor or registry.os_user()
    why = reason or ("aborted by hand" if abort else "promoted by hand")
    with open_session(database_url) as (settings, session):
        waiting: str | None = None
        if promote_now:
            moves = [rollout_moves.promote_now(session, model, at, who, why)]
        elif abort:
            moves = [rollout_moves.abort_or_roll_back(session, model, at, who, why)]
        else:
            moves, waiting = rollout_moves.advance_or_wait(session, model, at, who)
        served = document(session, model)
    notify(settings, [event for move in moves for event in move.events()])
    result = {"moves": moves, "waiting": waiting, "serving": served}
    Output(as_json, quiet).emit(result, lambda c: _render_rollout(c, moves, waiting, served))
    if promote_now and moves[0].event != "promote":  # the abort is recorded; the ask failed
        raise ConflictError(f"{model}: v{moves[0].to_version} was not promoted: {moves[0].reason}")


def _render_rollout(
    console: Any, moves: list[Any], waiting: str | None, served: dict[str, Any]
) -> None:
    for move in moves:
        console.print(move.describe(), markup=False)
    if not moves:
        console.print(f"{served['model']}: nothing to move now: {waiting}", markup=False)
    _render_serving(console, served)


def _render_serving(console: Any, served: dict[str, Any], where: list[str] | None = None) -> None:
    rollout = served["rollout"]
    if rollout:
        console.print(
            f"{served['model']}: {rollout['mode']} rollout, step {rollout['step']} of "
            f"{rollout['steps']} since {rollout['step_since']:%Y-%m-%d %H:%M:%SZ}"
        )
    console.print(
        table(
            served["model"],
            ["version", "role", "weight", "sha256", "directory"],
            [
                (v["version"], v["role"], f"{v['weight']:.0%}", v["sha256"][:12], v["directory"])
                for v in served["versions"]
            ],
        )
    )
    if where:
        console.print(f"published: {', '.join(where)}", markup=False)


@app.command("retire", cls=Command)
def retire(
    model: Model, version: Version, database_url: DatabaseUrl = None, quiet: Quiet = False
) -> None:
    """Retire VERSION by hand (never the active version or the rollback target).

    Example: retrain-cli versions retire fraud 3
    """
    from retrain_cli.versions import registry

    with open_session(database_url) as (_, session):
        registry.retire(session, model, version, utcnow())
    Output(quiet=quiet).emit(None, lambda c: c.print(f"{model} v{version} retired"))


def _done(output: Output, switch: registry.Switch, settings: Settings) -> None:
    notify(settings, switch.events())
    before = f"v{switch.from_version}" if switch.from_version is not None else "nothing"
    output.emit(
        switch,
        lambda c: c.print(
            f"{switch.model}: {switch.event} {before} -> v{switch.to_version} by {switch.actor}"
            + (f" ({switch.reason})" if switch.reason else "")
        ),
    )


def _weights(before: float | None, after: float | None) -> str | None:
    if before is None or after is None:
        return None
    return f"{before:.0%} -> {after:.0%}"


def _row(v: Any) -> dict[str, Any]:
    return {
        "version": v.version,
        "status": v.status,
        "active": v.status == VersionStatus.ACTIVE,
        "created_at": v.created_at,
        "promoted_at": v.promoted_at,
        "retired_at": v.retired_at,
        "parent": v.parent_version,
        "strategy": v.strategy,
        "task": v.task,
        "sha256": v.sha256,
        "artifact": v.artifact_path,
        "metrics": v.metrics,
        # each feature's share, the largest first (PostgreSQL's JSONB keeps no key order)
        "importance": (
            dict(sorted(v.importance.items(), key=lambda kv: (-kv[1], kv[0])))
            if v.importance is not None
            else None
        ),
    }


def _event(e: Any) -> dict[str, Any]:
    return {
        "at": e.at,
        "event": e.event,
        "from": e.from_version,
        "to": e.to_version,
        "actor": e.actor,
        "reason": e.reason,
        "job_id": e.job_id,
        "run_id": e.run_id,
        "from_weight": e.from_weight,
        "to_weight": e.to_weight,
        "details": e.details,
    }


def _render(console: Any, document: dict[str, Any]) -> None:
    rows = [
        (
            ("* " if v["active"] else "  ") + str(v["version"]),
            v["status"],
            v["created_at"],
            v["metrics"].get(document["metric"]),
            v["parent"],
            v["promoted_at"],
            v["retired_at"],
            v["sha256"][:12],
        )
        for v in document["versions"]
    ]
    console.print(
        table(
            document["model"],
            [
                "version",
                "status",
                "created",
                f"{document['metric']} ({better(document['metric'])} is better)",
                "parent",
                "promoted",
                "retired",
                "sha256",
            ],
            rows,
        )
    )
    if document["events"]:
        console.print(
            table(
                "promotions and rollouts",
                ["at", "event", "from", "to", "weight", "actor", "reason"],
                [
                    (
                        e["at"],
                        e["event"],
                        e["from"],
                        e["to"],
                        _weights(e["from_weight"], e["to_weight"]),
                        e["actor"],
                        e["reason"],
                    )
                    for e in document["events"]
                ],
            )
        )
    if "at" in document:
        active = document["active_at"]
        candidate = document["candidate_at"]
        console.print(
            f"active at {document['at']:%Y-%m-%d %H:%M:%SZ}: "
            + (f"v{active}" if active is not None else "no version")
            + (
                f"; candidate v{candidate['version']} at {candidate['weight']:.0%} of traffic"
                if candidate
                else ""
            )
        )
