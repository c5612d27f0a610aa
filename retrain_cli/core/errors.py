"""The errors retrain-cli raises, each carrying the exit code the CLI turns it into.

    RetrainError                 exit 1, the base: bad input or a failed operation
    ├── ConfigError              the settings or config file are wrong
    ├── JobSpecError             a job file is invalid (names the file, job and field)
    ├── NotFoundError            a job, model or version does not exist
    ├── DataError                a data source is missing, unreadable or has the wrong shape
    ├── DatabaseError            the database is unreachable or not initialised
    ├── ConflictError            the state changed under us (compare-and-swap failed)
    ├── NotAvailableError        the capability is not built into this release
    ├── UsageError               exit 2: the arguments do not form a command (as click's own)
    └── BusyError                exit 75: no retrain slot free, or the job is already running

The CLI boundary (`retrain_cli.cli.app`) prints `Error: <message>` on one stderr line and exits
with `exit_code`; library code raises these and never calls `sys.exit`.
"""

from __future__ import annotations

from collections.abc import Iterable

EX_TEMPFAIL = 75


class RetrainError(Exception):
    """Base class; the message is one line that says what is wrong and how to fix it."""

    exit_code = 1


class ConfigError(RetrainError):
    """The settings, environment or config file are invalid."""


class JobSpecError(RetrainError):
    """A job file failed validation; nothing was applied."""


class NotFoundError(RetrainError):
    """A named job, model or version does not exist."""


class DataError(RetrainError):
    """A data source is missing, unreadable, empty or has the wrong columns."""


class DatabaseError(RetrainError):
    """The database cannot be reached, or its schema is missing or out of date."""


class ConflictError(RetrainError):
    """The state changed since the caller looked (for example `--expect-current`)."""


class NotAvailableError(RetrainError):
    """The requested capability is not part of this release yet."""


class UsageError(RetrainError):
    """The command line is wrong (a missing or conflicting argument); nothing was done."""

    exit_code = 2


class BusyError(RetrainError):
    """Try again later: no retrain slot is free, or the job is already running."""

    exit_code = EX_TEMPFAIL


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (a library's multi-line text folded), or its type."""
    return " ".join(str(exc).split()) or type(exc).__name__


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`; did you mean 'x'?` naming the known names closest to a mistyped one, or ``."""
    from difflib import get_close_matches

    close = get_close_matches(name, list(known), n=3)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
