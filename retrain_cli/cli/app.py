"""The root `retrain-cli` app and its one error boundary."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from retrain_cli import __version__
from retrain_cli.cli.output import echo
from retrain_cli.errors import RetrainError

DEBUG_KEY = "retrain_cli.debug"


class ErrorBoundary(TyperGroup):
    """Turn library errors into one `Error: ...` line on stderr and DESIGN.md's exit code.

    With `--debug` the exception propagates with its traceback instead.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):
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


def _one_line(message: str) -> str:
    return " ".join(message.split()) or "no details"


app = typer.Typer(
    cls=ErrorBoundary,
    name="retrain-cli",
    help="Keep production models healthy from cron: drift and performance checks, retraining, "
    "versions. Exit codes: 0 ok, 1 error, 2 usage, 3 needs attention, 75 busy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
) -> None:
    """Keep production models healthy from cron."""
    ctx.meta[DEBUG_KEY] = debug


def _register() -> None:
    from retrain_cli.cli import db, drift, jobs, perf, retrain, stats, versions

    app.add_typer(db.app, name="db")
    app.add_typer(jobs.app, name="jobs")
    app.add_typer(drift.app, name="drift")
    app.add_typer(perf.app, name="perf")
    app.add_typer(versions.app, name="versions")
    app.command("retrain")(retrain.retrain)
    app.command("stats")(stats.stats)


_register()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="retrain-cli", args=sys.argv[1:])
