"""Rendering: rich on a terminal, plain text in a pipe, `--json`, and `--quiet` for cron."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

import typer

from retrain_cli.core.redaction import scrub
from retrain_cli.core.serialize import jsonable

if TYPE_CHECKING:
    from rich.console import Console

EXIT_ATTENTION = 3
EXIT_BUSY = 75  # a slot or the job is taken: normal under cron, and silent in the log
PLAIN_WIDTH = 160


@dataclass(frozen=True)
class Output:
    """Where a command's result goes; `quiet` wins over `as_json`."""

    as_json: bool = False
    quiet: bool = False

    def emit(self, document: Any, render: Callable[[Console], None]) -> None:
        """Print `document` as JSON, or call `render` with a console; nothing when quiet."""
        if self.quiet:
            return
        if self.as_json:
            echo(to_json(document, pretty=sys.stdout.isatty()))
            return
        render(console())

    def finish(self, needs_attention: bool, summary: str) -> None:
        """Exit 3 when a finding needs attention; a quiet run says why on one stderr line."""
        if not needs_attention:
            return
        if self.quiet:
            echo(summary, err=True)
        raise typer.Exit(EXIT_ATTENTION)


def finish_checks(
    output: Output,
    outcomes: Sequence[Any],
    render: Callable[[Console, list[Any]], None],
    *,
    flagged: Callable[[Any], bool],
    what: str,
    nothing: str = "no enabled job to check",
) -> None:
    """Emit the results of a per-job check (`drift check`, `perf check`), one stderr line per
    failed job; exit 1 when any job failed, else 3 when any result is flagged. A check with
    no job to check says so (`nothing`), rather than print nothing."""
    from retrain_cli.jobs.store import JobFailure

    results = [o for o in outcomes if not isinstance(o, JobFailure)]
    failures = [o for o in outcomes if isinstance(o, JobFailure)]

    def shown(c: Console) -> None:
        if outcomes:
            render(c, results)
        else:
            c.print(nothing, markup=False)

    output.emit({"results": results, "errors": failures}, shown)
    for failure in failures:
        echo(f"Error: {failure.job}: {failure.error}", err=True)
    if failures:
        raise typer.Exit(1)
    names = [r.job or r.model for r in results if flagged(r)]
    output.finish(bool(names), f"{what}: {', '.join(names)}")


def echo(text: str, *, err: bool = False) -> None:
    """Print one message; this and `console()` are the only ways out, and both scrub passwords.
    A message on stderr also goes to the `--log` file, when there is one."""
    text = scrub(text)
    typer.echo(text, err=err)
    if err and _log is not None:
        _log.write(text)


@dataclass
class _Log:
    """`--log FILE`: the command's stderr messages, appended with the time and command."""

    path: Path
    command: str

    def write(self, text: str) -> None:
        from retrain_cli.core.durations import utcnow
        from retrain_cli.core.private import append_rotating

        try:  # the log is a copy: stderr already has the message
            for line in text.splitlines():
                append_rotating(self.path, f"{utcnow().isoformat()} {self.command}: {line}")
        except OSError:
            pass


_log: _Log | None = None


def open_log(path: Path, command: str) -> None:
    global _log
    _log = _Log(path, command)


def close_log(code: int) -> None:
    """Record a failing exit code (the one thing a pipe to `logger` used to hide), then stop."""
    global _log
    if _log is not None and code not in (0, EXIT_BUSY):
        _log.write(f"exit {code}")
    _log = None


def to_json(document: Any, *, pretty: bool = False) -> str:
    """One JSON document; compact through the C encoder unless a person is reading. NaN and
    infinity become null (they only occur in metrics, so the slow walk is the fallback)."""
    indent = 2 if pretty else None
    try:
        return json.dumps(document, default=_encode, allow_nan=False, indent=indent)
    except ValueError:
        return json.dumps(jsonable(document), allow_nan=False, indent=indent)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return jsonable(value)


def console() -> Console:
    from rich.console import Console

    is_tty = sys.stdout.isatty()
    return Console(
        file=cast("TextIO", _Scrubbed(sys.stdout)),
        highlight=False,
        width=None if is_tty else PLAIN_WIDTH,
        soft_wrap=not is_tty,
    )


class _Scrubbed:
    """A text stream that scrubs passwords from what is written to it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(scrub(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Any:
    """Rows for a person or a program, never cut short. In a pipe: tab-separated lines (a
    header, then one line per row) for `cut`, `awk` and spreadsheets. On a terminal: a table
    when it fits the width, else one block of `column: value` lines per row (like `psql`'s
    expanded mode)."""
    cells = [[" ".join(cell(value).split()) for value in row] for row in rows]
    if not sys.stdout.isatty():
        return _TabSeparated([list(columns), *cells])
    return _Rows(title, list(columns), cells)


@dataclass(frozen=True)
class _TabSeparated:
    lines: list[list[str]]

    def __rich_console__(self, console: Console, options: Any) -> Iterator[Any]:
        from rich.segment import Segment

        for line in self.lines:
            yield Segment("\t".join(line) + "\n")


@dataclass(frozen=True)
class _Rows:
    title: str | None
    columns: list[str]
    cells: list[list[str]]

    def __rich_console__(self, console: Console, options: Any) -> Iterator[Any]:
        from rich import box
        from rich.segment import Segment
        from rich.table import Table

        widths = [
            max([len(name), *(len(row[i]) for row in self.cells)])
            for i, name in enumerate(self.columns)
        ]
        if sum(widths) + 3 * len(widths) <= options.max_width:
            result = Table(title=self.title, box=box.SIMPLE_HEAD, title_justify="left")
            for name in self.columns:
                result.add_column(name, no_wrap=True)
            for row in self.cells:
                result.add_row(*row)
            yield result
            return
        if self.title:
            yield Segment(self.title + "\n")
        import textwrap

        label = max(len(name) for name in self.columns)
        room = max(options.max_width - label - 2, 20)
        for index, row in enumerate(self.cells):
            yield Segment("\n" if index else "")
            for name, value in zip(self.columns, row, strict=True):
                # a long value (a reason) wraps between words, indented, rather than being cut
                lines = textwrap.wrap(value, room, break_on_hyphens=False) or [value]
                yield Segment(f"{name:<{label}}  {lines[0]}\n")
                for more in lines[1:]:
                    yield Segment(f"{'':<{label}}  {more}\n")


def minutes(seconds: float | None) -> str | None:
    """A wait as a duration in whole minutes (`25m`, `2h`), at least a minute."""
    from retrain_cli.core.durations import format_duration

    return None if seconds is None else format_duration(max(60, seconds // 60 * 60))


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return str(value)
