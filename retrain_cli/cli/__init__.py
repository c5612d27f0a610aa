"""The thin Typer layer: parse arguments, open the session, call one library function, render."""

from __future__ import annotations

import gc


def main() -> None:
    """Console-script entry point (`retrain-cli`, `python -m retrain_cli`).

    The CLI's imports (SQLAlchemy, typer, the ORM models) make a few hundred thousand objects
    that live until the process ends, none of them garbage. With the cyclic collector on, each
    full collection walked them all again: 0.16-0.18 s of a LightGBM retrain went to three of
    them (measured with `gc.callbacks`). So the CLI is imported with the collector off and
    what it made is frozen (`gc.freeze`): later collections look only at what the command
    itself creates, which they still collect.
    """
    gc.disable()
    try:
        from retrain_cli.cli.app import main as run
    finally:
        gc.freeze()
        gc.enable()
    run()
