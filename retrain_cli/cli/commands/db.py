"""`retrain-cli db`: create, upgrade and describe the schema."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from retrain_cli.cli.options import Command, DatabaseUrl, Group, Json, Quiet
from retrain_cli.cli.output import Output
from retrain_cli.core.durations import utcnow
from retrain_cli.core.settings import load_settings

if TYPE_CHECKING:
    from retrain_cli.db.schema import InitResult

app = typer.Typer(cls=Group, help="Create or upgrade the schema.", no_args_is_help=True)


@app.command("init", cls=Command)
def init(database_url: DatabaseUrl = None, as_json: Json = False, quiet: Quiet = False) -> None:
    """Create or upgrade the schema and seed the default configs (idempotent); the home is
    recorded as this database's, and one owned by another database is refused.

    Example: retrain-cli db init
    """
    from retrain_cli.core.ownership import claim_home
    from retrain_cli.db.schema import init_database
    from retrain_cli.db.session import make_engine

    settings = load_settings(database_url)
    engine = make_engine(settings.database_url)

    def refuse_owned(registry: str) -> None:  # before the schema commits: nothing changes
        claim_home(settings, registry, write=False)

    try:
        result = init_database(engine, utcnow(), refuse_owned)
        claim_home(settings, result.registry)
    finally:
        engine.dispose()
    Output(as_json, quiet).emit(result, lambda c: c.print(_describe(result)))


def _describe(result: InitResult) -> str:
    if result.revision_before == result.revision:
        schema = f"schema already at {result.revision}"
    else:
        schema = f"schema {result.revision_before or 'empty'} -> {result.revision}"
    added = ", ".join(result.configs_added) or "none"
    return f"{result.database}: {schema}; default configs added: {added}"


@app.command("sql", cls=Command)
def sql() -> None:
    """Print the PostgreSQL DDL of the schema (what schemas.sql holds).

    Example: retrain-cli db sql > schemas.sql
    """
    from retrain_cli.db.schema import render_postgresql_ddl

    typer.echo(render_postgresql_ddl(), nl=False)
