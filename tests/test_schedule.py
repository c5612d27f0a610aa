"""The due logic at fixed instants: pure, table-driven."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from retrain_cli.scheduling.schedule import JobState, evaluate, last_fire, next_fire

T0 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)  # a Wednesday
ALL = frozenset({"scheduled", "drift", "performance", "age", "manual"})
BASE = JobState(
    job="j",
    model="m",
    priority=0,
    schedule="0 2 * * *",
    timezone="UTC",
    triggers=ALL,
    created_at=T0 - timedelta(days=30),
    last_run_at=T0 - timedelta(hours=6),
    last_run_status="succeeded",
)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("change", "now", "state", "triggers"),
    [
        ({}, T0, "not_due", []),  # ran at 06:00, after today's 02:00 fire
        ({"last_run_at": T0 - 12 * H}, T0, "due", ["scheduled"]),  # ran at 00:00
        ({"last_run_at": None}, T0, "due", ["scheduled"]),  # never ran: since creation
        ({"last_run_at": None, "created_at": T0 - 9 * H}, T0, "not_due", []),
        ({"drift_at": T0 - H, "drift_detail": "share 0.8"}, T0, "due", ["drift"]),
        ({"drift_at": T0 - 7 * H, "drift_detail": "share 0.8"}, T0, "not_due", []),  # before run
        ({"drift_at": T0 - H, "drift_detail": None}, T0, "not_due", []),  # newest says no drift
        ({"degraded_at": T0 - H, "degraded_detail": "auc 0.6"}, T0, "due", ["performance"]),
        (
            {"active_created_at": T0 - timedelta(days=31), "max_model_age_s": 30 * 86400},
            T0,
            "due",
            ["age"],
        ),
        (
            {"active_created_at": T0 - timedelta(days=29), "max_model_age_s": 30 * 86400},
            T0,
            "not_due",
            [],
        ),
        ({"manual_requested_at": T0 - H, "manual_reason": "new labels"}, T0, "due", ["manual"]),
        ({"manual_requested_at": T0 - 8 * H}, T0, "not_due", []),  # asked before the last run
        (
            {
                "last_run_at": T0 - 12 * H,
                "manual_requested_at": T0 - H,
                "drift_at": T0 - H,
                "drift_detail": "d",
                "degraded_at": T0 - H,
                "degraded_detail": "p",
                "active_created_at": T0 - timedelta(days=99),
                "max_model_age_s": 86400,
            },
            T0,
            "due",
            ["manual", "drift", "performance", "age", "scheduled"],
        ),
        (
            {
                "last_run_at": T0 - 12 * H,
                "drift_at": T0 - H,
                "drift_detail": "d",
                "triggers": frozenset({"drift"}),
            },
            T0,
            "due",
            ["drift"],
        ),  # scheduled not enabled
        ({"last_run_at": T0 - 12 * H, "triggers": frozenset({"manual"})}, T0, "not_due", []),
        ({"last_run_status": "running", "manual_requested_at": T0 - H}, T0, "running", []),
        (
            {
                "last_run_at": T0 - 12 * H,
                "last_run_status": "failed",
                "last_finished_at": T0 - 10 * 60 * timedelta(seconds=1),
            },
            T0,
            "backoff",
            [],
        ),
        (
            {"last_run_at": T0 - 12 * H, "last_run_status": "failed", "last_finished_at": T0 - H},
            T0,
            "due",
            ["scheduled"],
        ),  # backoff (30 min) over
        (
            {
                "last_run_at": T0 - 12 * H,
                "last_run_status": "abandoned",
                "last_finished_at": T0 - 5 * 60 * timedelta(seconds=1),
            },
            T0,
            "backoff",
            [],
        ),
    ],
    ids=[
        "ran after fire",
        "scheduled",
        "never ran",
        "created after fire",
        "drift",
        "drift before run",
        "newest not drifted",
        "performance",
        "age",
        "young",
        "manual",
        "manual before run",
        "all together",
        "only drift enabled",
        "only manual enabled",
        "running",
        "failed in backoff",
        "failed after backoff",
        "abandoned in backoff",
    ],
)
def test_due(change: dict, now: datetime, state: str, triggers: list[str]) -> None:  # type: ignore[type-arg]
    verdict = evaluate(replace(BASE, **change), now)
    assert verdict.state == state
    assert [r.trigger for r in verdict.reasons] == triggers


def test_a_three_day_outage_coalesces_into_one_run() -> None:
    job = replace(BASE, schedule="0 * * * *", last_run_at=T0 - timedelta(days=3))
    verdict = evaluate(job, T0 + timedelta(minutes=7))
    assert [r.trigger for r in verdict.reasons] == ["scheduled"]
    assert "2026-06-10T12:00:00+00:00" in verdict.reasons[0].detail  # only the latest fire
    assert not evaluate(
        replace(job, last_run_at=T0 + timedelta(minutes=7)), T0 + timedelta(minutes=30)
    ).is_due


def test_time_zones_other_than_utc() -> None:
    assert last_fire("0 9 * * *", "Asia/Tokyo", T0) == datetime(2026, 6, 10, 0, 0, tzinfo=UTC)
    assert next_fire("0 9 * * 1-5", "America/New_York", T0) == datetime(
        2026, 6, 10, 13, 0, tzinfo=UTC
    )  # 08:00 EDT now: 09:00 EDT is still ahead today


def simulate(schedule: str, zone: str, start: datetime, hours: int) -> list[datetime]:
    """Tick every minute, running the job whenever it is due; return the run instants."""
    job = replace(
        BASE,
        schedule=schedule,
        timezone=zone,
        last_run_at=start,
        created_at=start - timedelta(days=1),
    )
    runs = []
    now = start
    while now < start + timedelta(hours=hours):
        if evaluate(job, now).is_due:
            runs.append(now)
            job = replace(job, last_run_at=now)
        now += timedelta(minutes=1)
    return runs


@pytest.mark.parametrize(
    ("zone", "transition_day"),
    [
        ("Europe/London", "2026-03-29"),
        ("Europe/London", "2026-10-25"),
        ("America/New_York", "2026-03-08"),
        ("America/New_York", "2026-11-01"),
    ],
    ids=["London spring", "London fall", "New York spring", "New York fall"],
)
@pytest.mark.parametrize("local_time", ["01:30", "02:30", "03:00"])
def test_dst_neither_skips_nor_doubles_a_daily_run(
    zone: str, transition_day: str, local_time: str
) -> None:
    hour, minute = map(int, local_time.split(":"))
    day = datetime.fromisoformat(transition_day).replace(tzinfo=ZoneInfo(zone))
    start = (day - timedelta(days=1)).astimezone(UTC)
    runs = simulate(f"{minute} {hour} * * *", zone, start, hours=72)
    local_days = [r.astimezone(ZoneInfo(zone)).date() for r in runs]
    assert len(local_days) == len(set(local_days)) == 3, runs


def test_an_hourly_job_runs_a_repeated_wall_clock_hour_once() -> None:
    start = datetime(2026, 10, 24, 22, 30, tzinfo=UTC)  # 23:30 BST
    runs = simulate("0 * * * *", "Europe/London", start, hours=5)
    local = [r.astimezone(ZoneInfo("Europe/London")).strftime("%H:%M %Z") for r in runs]
    assert local == ["00:00 BST", "01:00 BST", "02:00 GMT", "03:00 GMT"]


@pytest.mark.parametrize("schedule", ["*/15 * * * *", "0 * * * *", "0 2 * * *", "30 4 * * 1-5"])
@pytest.mark.parametrize("zone", ["UTC", "Europe/London"])
def test_a_scheduled_job_is_due_since_the_first_fire_time_after_its_last_run(
    schedule: str, zone: str
) -> None:
    now = datetime(2026, 3, 30, 12, 0, tzinfo=UTC)  # the day after London's spring forward
    for hours_ago in (0.5, 1, 5, 26, 49, 75):
        last_run = now - timedelta(hours=hours_ago, minutes=7)
        job = replace(BASE, schedule=schedule, timezone=zone, last_run_at=last_run)
        verdict = evaluate(job, now)
        if verdict.is_due:
            assert verdict.due_since == next_fire(schedule, zone, last_run), hours_ago
