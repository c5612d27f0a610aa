"""Durations as people write them in job files and flags (`90s`, `15m`, `1h`, `30d`, `2w`), and
the wall seconds of a run's steps."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[smhdw])\s*$")


def parse_duration(text: str | int | float) -> timedelta:
    """Parse `30d`, `1h`, `90s` (or a number of seconds) into a positive timedelta.

    >>> parse_duration("1h")
    datetime.timedelta(seconds=3600)
    >>> parse_duration("2w").days
    14
    """
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _DURATION.match(text)
        if not match:
            raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 1h, 30d, 2w)")
        seconds = float(match["n"]) * _UNITS[match["unit"]]
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {text!r}")
    return timedelta(seconds=seconds)


def format_duration(seconds: float) -> str:
    """Seconds as a job file writes them, in the largest unit that is exact: `1h`, `90m`, `30d`.

    >>> format_duration(5400)
    '90m'
    """
    for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1]):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 time; a time without an offset is taken as UTC.

    >>> parse_instant("2026-03-29T01:30:00")
    datetime.datetime(2026, 3, 29, 1, 30, tzinfo=datetime.timezone.utc)
    """
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 time: {text!r}") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the one clock commands read when no --now is given)."""
    return datetime.now(UTC)


class Phases:
    """Wall seconds per named step, in the order they ran."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds: dict[str, float] = {}
        self._clock = clock

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = self._clock()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + self._clock() - start
