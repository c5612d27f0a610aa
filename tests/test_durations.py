from datetime import UTC, datetime, timedelta

import pytest

from retrain_cli.core.durations import parse_duration, parse_instant


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("30d", 2_592_000), ("2w", 1_209_600), (60, 60)],
)
def test_parse_duration(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "1y", "-1h", "0s", "h", True])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)  # type: ignore[arg-type]


def test_parse_instant_keeps_offsets_and_defaults_to_utc() -> None:
    assert parse_instant("2026-03-29T01:30:00+01:00") == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert parse_instant("2026-03-29T01:30:00Z") == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
