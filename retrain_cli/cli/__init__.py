"""The thin Typer layer: parse arguments, open the session, call one library function, render."""

from __future__ import annotations

import gc


def main() -> None:
    """Console-script entry point (`retrain-cli`, `python -m retrain_cli`)."""
    from retrain_cli.cli.app import main as run

    gc.freeze()  # the CLI's imports live until exit: later collections need not walk them
    run()
