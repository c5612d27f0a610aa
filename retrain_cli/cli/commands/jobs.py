"""`retrain-cli jobs`: declare jobs from YAML and look at them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from retrain_cli.cli.completion import job_names
from retrain_cli.cli.options import Command, DatabaseUrl, Group, Json, Now, Quiet
from retrain_cli.cli.output import Output, echo, table
from retrain_cli.cli.runtime import open_session
from retrain_cli.core.durations import utcnow

app = typer.Typer(
    cls=Group, help="Declare, inspect, enable and trigger retraining jobs.", no_args_is_help=True
)

JobName = Annotated[
    str,
    typer.Argument(help="The job's name.", show_default=False, autocompletion=job_names),
]


@app.command("apply", cls=Command)
def apply(
    files: Annotated[
        list[Path],
        typer.Option(
            "--file",
            "-f",
            help="Job YAML file (repeatable).",
            show_default=False,
            metavar="FILE",
        ),
    ],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Say what would be created or changed, field by field; write nothing."
        ),
    ] = False,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Create or update jobs from YAML files, by name; all are validated before any is written.

    Example: retrain-cli jobs apply -f jobs/fraud.yaml -f jobs/churn.yaml --dry-run

    Every field of a job file, with its default: docs/job-files.md.
    """
    from retrain_cli.core.errors import JobSpecError
    from retrain_cli.jobs import store as library
    from retrain_cli.jobs.files import load_job_files
    from retrain_cli.trainers.families import check_hyperparameters

    loaded = load_job_files(files)
    for path, specs in loaded:
        for spec in specs:
            try:
                check_hyperparameters(spec)
            except JobSpecError as exc:
                raise JobSpecError(f"{path}: {exc}") from None
    with open_session(database_url) as (_, session):
        outcomes = library.apply_files(session, loaded, utcnow(), dry_run=dry_run)
    document: dict[str, Any] = {"jobs": outcomes}
    if dry_run:
        document["dry_run"] = True
    Output(as_json, quiet).emit(document, lambda c: _render_applied(c, outcomes, dry_run))


def _render_applied(console: Any, outcomes: list[Any], dry_run: bool) -> None:
    verb = {"created": "would create", "updated": "would update", "unchanged": "unchanged"}
    width = 12 if dry_run else 9
    for o in outcomes:
        console.print(f"{verb[o.action] if dry_run else o.action:>{width}}  {o.job}", markup=False)
        for change in o.changes:
            console.print(
                f"{'':>{width + 2}}{change.field}: {change.before!r} -> {change.after!r}",
                markup=False,
            )
    if dry_run:
        console.print("(dry run: nothing written)")


@app.command("list", cls=Command)
def list_(database_url: DatabaseUrl = None, as_json: Json = False, quiet: Quiet = False) -> None:
    """List every job with its effective schedule and last run.

    Example: retrain-cli jobs list --json
    """
    from retrain_cli.jobs import store as library

    with open_session(database_url) as (_, session):
        configs = library.load_configs(session)
        rows = [
            {
                "job": job.name,
                "model": job.model_name,
                "type": job.model_type,
                "enabled": job.enabled,
                "schedule": library.effective_job(job, configs).schedule,
                "timezone": job.timezone,
                "priority": job.priority,
                "last_run_at": job.last_run_at,
                "last_run_status": job.last_run_status,
            }
            for job in library.list_jobs(session)
        ]
    Output(as_json, quiet).emit(
        {"jobs": rows},
        lambda c: c.print(table(None, list(rows[0]) if rows else ["job"], _values(rows))),
    )


@app.command("show", cls=Command)
def show(
    name: JobName, database_url: DatabaseUrl = None, as_json: Json = False, quiet: Quiet = False
) -> None:
    """Show one job: its effective settings and the spec it was applied with.

    Example: retrain-cli jobs show fraud-lgbm
    """
    from retrain_cli.core.redaction import redact_urls
    from retrain_cli.jobs import store as library

    with open_session(database_url) as (_, session):
        job = library.get_job(session, name)
        effective = library.effective_job(job, library.load_configs(session))
        document = {
            **{
                k: v
                for k, v in vars(effective).items()
                if k not in ("document", "spec", "type_hyperparameters")
            },
            "hyperparameters": effective.hyperparameters,
            "timeout_s": job.timeout_s,
            "triggers": job.triggers,
            "source_file": job.source_file,
            "manual_requested_at": job.manual_requested_at,
            "last_run_at": job.last_run_at,
            "last_run_status": job.last_run_status,
            "spec": job.spec,
        }
        document = redact_urls(document)
    Output(as_json, quiet).emit(document, lambda c: c.print(_as_yaml(document), markup=False))


_DURATIONS = {"max_model_age_s", "timeout_s", "timeout", "retry_backoff", "max_model_age", "window"}


def _as_yaml(document: dict[str, Any]) -> str:
    """A job as its user writes it: YAML, durations as `1h` or `30d`, times in UTC."""
    import yaml

    from retrain_cli.core.durations import format_duration

    def readable(key: str, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: readable(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [readable(key, v) for v in value]
        if key in _DURATIONS and isinstance(value, int | float) and not isinstance(value, bool):
            return format_duration(value)
        if isinstance(value, datetime):
            return f"{value:%Y-%m-%d %H:%M:%SZ}"
        return value

    settings = {
        key.removesuffix("_s"): readable(key, value)
        for key, value in document.items()
        if key != "spec"
    }
    applied = yaml.safe_dump(
        readable("spec", document["spec"]), sort_keys=False, allow_unicode=True, width=100
    )
    return (
        "# effective settings: the job file over its model type's defaults\n"
        + yaml.safe_dump(settings, sort_keys=False, allow_unicode=True, width=100)
        + f"# the job file as applied from {document['source_file']}\n"
        + applied
    ).rstrip("\n")


@app.command("enable", cls=Command)
def enable(name: JobName, database_url: DatabaseUrl = None, quiet: Quiet = False) -> None:
    """Enable a job: triggers and `--all` checks consider it again.

    Example: retrain-cli jobs enable fraud-lgbm
    """
    _set_enabled(name, True, database_url, quiet)


@app.command("disable", cls=Command)
def disable(name: JobName, database_url: DatabaseUrl = None, quiet: Quiet = False) -> None:
    """Disable a job: no trigger starts it and `--all` checks skip it.

    Example: retrain-cli jobs disable fraud-lgbm
    """
    _set_enabled(name, False, database_url, quiet)


def _set_enabled(name: str, enabled: bool, database_url: str | None, quiet: bool) -> None:
    from retrain_cli.jobs import store as library

    with open_session(database_url) as (_, session):
        library.set_enabled(session, name, enabled, utcnow())
    Output(quiet=quiet).emit(None, lambda c: c.print(f"{name}: {'en' if enabled else 'dis'}abled"))


@app.command("delete", cls=Command)
def delete(
    name: JobName,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also remove the job's run history.")
    ] = False,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Delete a job that is not running. A job with run history needs --purge, which removes
    that history too; the model's versions, artifacts, drift and performance results stay.

    Example: retrain-cli jobs delete old-fraud --purge
    """
    from retrain_cli.jobs import store as library

    with open_session(database_url) as (_, session):
        deleted = library.delete_job(session, name, purge=purge)
    Output(as_json, quiet).emit(
        deleted,
        lambda c: c.print(
            f"deleted {deleted.job} ({deleted.runs_removed} runs removed; the versions and "
            f"results of model {deleted.model} are kept)"
        ),
    )


@app.command("trigger", cls=Command)
def trigger(
    name: JobName,
    reason: Annotated[str | None, typer.Option(help="Why, for the history.")] = None,
    database_url: DatabaseUrl = None,
    quiet: Quiet = False,
) -> None:
    """Ask for a manual retrain: the job is due at the next `jobs due`.

    Example: retrain-cli jobs trigger fraud-lgbm --reason "labels fixed"
    """
    from retrain_cli.jobs import store as library

    with open_session(database_url) as (_, session):
        library.request_manual_run(session, name, reason, utcnow())
    Output(quiet=quiet).emit(None, lambda c: c.print(f"{name}: manual retrain requested"))


@app.command("schema", cls=Command)
def schema(
    name: JobName, database_url: DatabaseUrl = None, as_json: Json = False, quiet: Quiet = False
) -> None:
    """Infer a data contract from JOB's training data and print it as YAML, a `schema:`
    section to paste into the job file and edit (docs/job-files.md, "Data contracts").

    Example: retrain-cli jobs schema fraud-lgbm >> jobs/fraud.yaml
    """
    import yaml

    from retrain_cli.data import contracts
    from retrain_cli.jobs import store as library

    with open_session(database_url) as (_, session):
        job = library.effective_job(library.get_job(session, name), library.load_configs(session))
    inferred = contracts.infer(job.spec.data.train, "training")
    document = {
        "schema": inferred.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    }
    Output(as_json, quiet).emit(
        document, lambda c: echo(yaml.safe_dump(document, sort_keys=False).rstrip("\n"))
    )


@app.command("backfill", cls=Command)
def backfill(
    name: JobName,
    since: Annotated[
        str, typer.Option(help="How far back the first window starts: 30d, 12w, ...")
    ] = "30d",
    every: Annotated[str, typer.Option(help="Each window's length: 1d, 6h, 1w, ...")] = "1d",
    until: Now = None,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Record the drift and performance checks of JOB's past windows, cut from its
    `data.current` and `data.predictions` by `time_column`, so that a new job has a history
    from day one. Windows already recorded are skipped: running it again records nothing twice.

    Exit 0: done; 1: a window could not be checked (the others are recorded).

    Example: retrain-cli jobs backfill fraud-lgbm --since 90d --every 1d
    """
    from retrain_cli.cli.runtime import claimed_engine, export_metrics
    from retrain_cli.core.durations import parse_duration
    from retrain_cli.core.errors import DataError
    from retrain_cli.core.settings import load_settings
    from retrain_cli.ops.backfill import backfill as run

    try:
        back, step = parse_duration(since), parse_duration(every)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    end = until or utcnow()
    settings = load_settings(database_url)
    engine = claimed_engine(settings)
    try:
        result = run(engine, name, end - back, end, step)  # each window commits on its own
        export_metrics(engine, settings)
    finally:
        engine.dispose()
    Output(as_json, quiet).emit(result, lambda c: _render_backfill(c, result))
    if result.errors:
        raise DataError(f"{len(result.errors)} check(s) failed: {result.errors[0]}")


def _render_backfill(console: Any, result: Any) -> None:
    def shown(checked: Any) -> str:
        value = "" if checked.value is None else f" {checked.value:.3f}"
        return f"{checked.outcome}{value}"

    rows = [
        [
            f"{w.start:%Y-%m-%d %H:%M}",
            f"{w.end:%Y-%m-%d %H:%M}",
            shown(w.drift),
            shown(w.performance),
        ]
        for w in result.windows
    ]
    console.print(
        table(None, ["from", "to", "drift (share)", f"performance ({result.metric})"], rows)
    )
    console.print(
        f"{result.job}: {result.recorded} check(s) recorded over {len(result.windows)} window(s)"
    )


def _values(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [list(row.values()) for row in rows]
