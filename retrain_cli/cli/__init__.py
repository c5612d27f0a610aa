"""The thin Typer layer: parse arguments, open the session, call one library function, render."""
