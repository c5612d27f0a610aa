"""The root `retrain-cli` app and its one error boundary."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from typing import Annotated, Any

import typer
from typer.exceptions import TyperException

from retrain_cli import __version__
from retrain_cli.cli.options import Command, Group
from retrain_cli.cli.output import close_log, echo, open_log
from retrain_cli.core import paths
from retrain_cli.core.errors import RetrainError

DEBUG_KEY = "retrain_cli.debug"
# click's exception classes, whichever click typer runs on (its own copy since typer 0.24)
ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)
ClickUsageError: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)
CYCLE = ["db", "jobs", "drift", "perf", "retrain", "runs", "versions", "stats", "report", "doctor"]


class ErrorBoundary(Group):
    """Turn library errors into one `Error: ...` line on stderr and their exit code (the
    README's table).

    With `--debug` the exception propagates with its traceback instead.
    """

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Click's usage errors (a missing argument, a bad option value, a mistyped command)
        as one `Error:` line with the hint, exit 2, not typer's boxed panel."""
        forward = {"args": args, "prog_name": prog_name, "complete_var": complete_var, **kwargs}
        if not standalone_mode:
            return super().main(standalone_mode=False, **forward)
        try:
            code = super().main(standalone_mode=False, **forward)
        except ClickException as exc:
            echo(f"Error: {usage_line(exc)}", err=True)
            sys.exit(getattr(exc, "exit_code", 2))
        except typer.Abort:
            echo("Error: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)  # a typer.Exit's code, else success

    def list_commands(self, ctx: Any) -> list[str]:
        """In the order of the cron cycle, not of registration."""
        return sorted(super().list_commands(ctx), key=lambda name: CYCLE.index(name))

    def invoke(self, ctx: Any) -> Any:
        code = 1
        with warnings.catch_warnings(record=True) as caught:
            try:
                result = self._invoke(ctx)
                code = 0
                return result
            except (typer.Exit, TyperException) as exc:
                code = exc.exit_code
                raise
            finally:
                _log_warnings(caught, ctx.invoked_subcommand, shown=bool(ctx.meta.get(DEBUG_KEY)))
                close_log(code)

    def _invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException, BrokenPipeError):
            raise
        except RetrainError as exc:
            if ctx.meta.get(DEBUG_KEY):
                raise
            echo(f"Error: {_one_line(str(exc))}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except Exception as exc:
            if ctx.meta.get(DEBUG_KEY):
                raise
            echo(
                f"Error: unexpected {type(exc).__name__}: {_one_line(str(exc))} "
                "(rerun with --debug for the traceback)",
                err=True,
            )
            raise typer.Exit(1) from None


def _log_warnings(
    caught: list[warnings.WarningMessage], command: str | None, *, shown: bool
) -> None:
    """Library warnings (pandas, PyTorch) go to `logs/warnings.log`, not between a command's
    output and its one error line; `--debug` shows them."""
    if not caught:
        return
    lines = [
        f"{w.category.__name__}: {_one_line(str(w.message))} ({w.filename}:{w.lineno})"
        for w in caught
    ]
    if shown:
        echo("\n".join(lines), err=True)
        return
    with contextlib.suppress(Exception):  # a warning must never fail the command
        from retrain_cli.core.durations import utcnow
        from retrain_cli.core.private import append_line
        from retrain_cli.core.settings import load_settings

        log = paths.log_file(load_settings().logs_dir, "warnings.log")
        for line in lines:
            append_line(log, f"{utcnow().isoformat()} {command}: {line}")


def usage_line(exc: Any) -> str:
    """`No such command 'shwo'. Did you mean 'show'?`, then where the forms are listed."""
    message = _one_line(exc.format_message()).rstrip(".")
    context = getattr(exc, "ctx", None)
    if isinstance(exc, ClickUsageError) and context is not None:
        message = f"{message} (see `{context.command_path} --help`)"
    return message[:1].lower() + message[1:] if message[1:2].islower() else message


def _one_line(message: str) -> str:
    return " ".join(message.split()) or "no details"


app = typer.Typer(
    cls=ErrorBoundary,
    name="retrain-cli",
    help="Keep production models healthy from cron: drift and performance checks, retraining, "
    "versions. Exit codes: 0 ok, 1 error, 2 usage, 3 needs attention, 75 busy.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion for bash, zsh, fish and PowerShell
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # a docstring's wrapped lines read as one paragraph
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"retrain-cli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    log: Annotated[
        str | None,
        typer.Option(
            "--log",
            envvar="RETRAIN_LOG",
            metavar="FILE",
            help="Also append each message on stderr, and a failing exit code, to FILE (a bare "
            "name: in $RETRAIN_HOME/logs); rotated at 10 MB. For cron hosts without syslog.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Keep production models healthy from cron."""
    ctx.meta[DEBUG_KEY] = debug
    if log:
        from pathlib import Path

        from retrain_cli.core.settings import load_settings

        path = Path(log).expanduser()
        where = paths.log_file(load_settings().logs_dir, str(path))
        open_log(where, ctx.invoked_subcommand or "retrain-cli")


def _register() -> None:
    from retrain_cli.cli.commands import (
        db,
        doctor,
        drift,
        due,
        jobs,
        perf,
        report,
        retrain,
        runs,
        stats,
        versions,
    )

    app.add_typer(db.app, name="db")
    jobs.app.command("due", cls=Command)(due.due)  # the scheduler's tick, last in `jobs`
    app.add_typer(jobs.app, name="jobs")
    app.add_typer(drift.app, name="drift")
    app.add_typer(perf.app, name="perf")
    app.add_typer(versions.app, name="versions")
    app.command("retrain", cls=Command)(retrain.retrain)
    app.add_typer(runs.app, name="runs")
    app.command("stats", cls=Command)(stats.stats)
    app.command("report", cls=Command)(report.report)
    app.command("doctor", cls=Command)(doctor.doctor)


_register()


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="retrain-cli", args=sys.argv[1:])
    except BrokenPipeError:
        # the reader went away (`| head`): what Python's signal docs advise, so that the
        # interpreter's last flush does not complain about it
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
