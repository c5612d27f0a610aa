"""`jobs due` reading the six tables, and `--run` starting real detached retrains."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from retrain_cli.db.models import (
    AutoRetrainingJob,
    ModelDriftMonitoring,
    ModelPerformanceTracking,
    RetrainingJobHistory,
)
from retrain_cli.training.slots import FileSlots
from tests.conftest import Cli
from tests.helpers import write_training_job

SessionFactory = Callable[[], AbstractContextManager[Session]]
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def add_job(cli: Cli, folder: Path, name: str, **fields: object) -> None:
    path = write_training_job(folder / name, name, **fields)
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0


def set_job(session: SessionFactory, name: str, **values: object) -> None:
    with session() as s:
        s.execute(update(AutoRetrainingJob).where(AutoRetrainingJob.name == name).values(**values))


def due(cli: Cli, now: datetime = NOW) -> dict:  # type: ignore[type-arg]
    result = cli("jobs", "due", "--now", now.isoformat(), "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_due_reads_every_trigger_from_the_tables(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    for name in ("sched", "drifted", "degraded", "quiet", "off", "busy"):
        add_job(cli, tmp_path, name, schedule="0 2 * * *", priority=len(name))
    set_job(session, "off", enabled=False)
    for name in ("drifted", "degraded", "quiet", "busy", "off"):
        set_job(session, name, created_at=NOW - timedelta(hours=1))  # after today's 02:00 fire
    set_job(session, "sched", created_at=NOW - timedelta(days=2))
    with session() as s:
        jobs = {j.name: j for j in s.scalars(select(AutoRetrainingJob))}
        s.add(
            ModelDriftMonitoring(
                check_id="c1",
                job_id=jobs["drifted"].id,
                model_name="drifted-model",
                checked_at=NOW - timedelta(minutes=10),
                scope="dataset",
                method="psi",
                statistic=0.7,
                threshold=0.25,
                drifted=True,
                drift_share=0.7,
                n_reference=10,
                n_current=10,
                metrics={},
            )
        )
        s.add(
            ModelPerformanceTracking(
                check_id="c2",
                job_id=jobs["degraded"].id,
                model_name="degraded-model",
                version=None,
                checked_at=NOW - timedelta(minutes=5),
                metric="auc",
                value=0.61,
                threshold=0.8,
                is_primary=True,
                degraded=True,
                n_samples=100,
                n_dropped=0,
            )
        )
        s.add(
            RetrainingJobHistory(
                job_id=jobs["busy"].id,
                trigger="manual",
                status="running",
                host="elsewhere",
                pid=1,
                started_at=datetime.now(UTC),  # the sweep reads the real clock
                heartbeat_at=datetime.now(UTC),
            )
        )
        jobs["busy"].last_run_at, jobs["busy"].last_run_status = NOW, "running"
    document = due(cli)
    reasons = {d["job"]: [r["trigger"] for r in d["reasons"]] for d in document["due"]}
    assert reasons == {"drifted": ["drift"], "degraded": ["performance"], "sched": ["scheduled"]}
    # "sched" has been due since yesterday's fire time, longer than max_wait (1h): it goes
    # first; the others by priority
    assert [d["job"] for d in document["due"]] == ["sched", "degraded", "drifted"]
    assert document["due"][0]["due_since"].startswith(
        (NOW - timedelta(days=1)).strftime("%Y-%m-%dT02:00")
    )
    assert [r["job"] for r in document["running"]] == ["busy"]
    assert document["not_due"] == 1  # "quiet"; "off" is disabled and not counted
    assert "drift share 0.70" in document["due"][2]["reasons"][0]["detail"]


def test_manual_trigger_makes_a_job_due_until_it_runs(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    add_job(cli, tmp_path, "j1")
    set_job(session, "j1", created_at=NOW)
    assert due(cli, NOW + timedelta(minutes=1))["due"] == []
    assert cli("jobs", "trigger", "j1", "--reason", "labels fixed").exit_code == 0
    (entry,) = due(cli, datetime.now(UTC) + timedelta(seconds=1))["due"]
    assert entry["reasons"][0] == {"trigger": "manual", "detail": "labels fixed"}


def test_a_failed_job_waits_for_its_retry_backoff(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    add_job(cli, tmp_path, "j1", retry_backoff="1h")
    with session() as s:
        job = s.scalars(select(AutoRetrainingJob)).one()
        job.created_at = NOW - timedelta(days=3)
        job.last_run_at, job.last_run_status = NOW - timedelta(days=2), "failed"
        s.add(
            RetrainingJobHistory(
                job_id=job.id,
                trigger="scheduled",
                status="failed",
                host="h",
                pid=1,
                started_at=NOW - timedelta(days=2),
                finished_at=NOW - timedelta(minutes=20),
            )
        )
    document = due(cli)
    assert document["due"] == [] and [b["job"] for b in document["backoff"]] == ["j1"]
    assert [d["job"] for d in due(cli, NOW + timedelta(minutes=41))["due"]] == ["j1"]


def test_a_job_whose_schedule_never_fires_is_reported_and_the_others_still_decided(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    add_job(cli, tmp_path, "good", schedule="0 2 * * *")
    add_job(cli, tmp_path, "broken", schedule="0 2 * * *")
    set_job(session, "good", created_at=NOW - timedelta(days=2))
    set_job(session, "broken", schedule="* * 31 2 *")  # stored before apply rejected it
    result = cli("jobs", "due", "--now", NOW.isoformat(), "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert [d["job"] for d in document["due"]] == ["good"]
    assert document["errors"] == [{"job": "broken", "error": "schedule '* * 31 2 *' never fires"}]
    assert result.stderr == "Error: broken: schedule '* * 31 2 *' never fires\n"
    stats = cli("stats", "--json")
    assert stats.exit_code == 0, stats.stderr
    fires = {j["job"]: j["next_fire"] for j in json.loads(stats.stdout)["jobs"]}
    assert fires["broken"] is None and fires["good"] is not None


def test_a_schedule_that_never_fires_is_refused_at_apply(cli: Cli, tmp_path: Path) -> None:
    path = write_training_job(tmp_path, "never", schedule="* * 31 2 *")
    result = cli("jobs", "apply", "-f", str(path))
    assert result.exit_code == 1
    assert "schedule: cron expression '* * 31 2 *' never fires" in result.stderr
    leap_day = write_training_job(tmp_path / "leap", "leap", schedule="0 0 29 2 *")
    assert cli("jobs", "apply", "-f", str(leap_day)).exit_code == 0


def wait_for_runs(session: SessionFactory, count: int, timeout: float = 120) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session() as s:
            rows = list(
                s.execute(
                    select(AutoRetrainingJob.name, RetrainingJobHistory.status).join(
                        AutoRetrainingJob
                    )
                )
            )
        if len(rows) >= count and all(status != "running" for _, status in rows):
            return sorted(name for name, _ in rows)
        time.sleep(0.3)
    raise AssertionError(f"runs did not finish: {rows}")


@pytest.mark.slow
def test_run_starts_one_process_per_free_slot_highest_priority_first(
    cli: Cli, db_url: str, tmp_path: Path, session: SessionFactory, home: Path
) -> None:
    for priority in range(5):
        add_job(cli, tmp_path, f"p{priority}", priority=priority)
    assert all(cli("jobs", "trigger", f"p{p}").exit_code == 0 for p in range(5))
    semaphore = FileSlots(home / "locks", 3)
    held = semaphore.acquire("someone-else", 0)  # one slot busy: two are free
    try:
        started = subprocess.run(
            [sys.executable, "-m", "retrain_cli", "jobs", "due", "--run", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={**os.environ, "RETRAIN_DATABASE_URL": db_url},
        )
        document = json.loads(started.stdout)
        assert [s["job"] for s in document["started"]] == ["p4", "p3"]
        assert [(w["job"], w["why"]) for w in document["waiting"]] == [
            (f"p{p}", "no free slot (1 of 3 in use, 2 started by this tick)") for p in (2, 1, 0)
        ]
        assert all(s["trigger"] == "manual" for s in document["started"])
        assert wait_for_runs(session, 2) == ["p3", "p4"]
    finally:
        held.release()
    captured = (home / "logs").glob("*/*.log")
    logs = sorted(p.parent.name for p in captured if not p.name.startswith("run-"))
    assert logs == ["p3", "p4"]
    assert sorted(p.parent.name for p in (home / "logs").glob("*/run-*.log")) == ["p3", "p4"]
    with session() as s:
        assert {r.status for r in s.scalars(select(RetrainingJobHistory))} == {"succeeded"}
    # the rest stay due for the next tick
    assert [d["job"] for d in due(cli, datetime.now(UTC))["due"]] == ["p2", "p1", "p0"]


def _tick(cli: Cli, session: SessionFactory, now: datetime, slots: int = 3) -> list[str]:
    """One cron tick, simulated: the jobs `jobs due --run` would start in the free slots, each
    recorded as a run that started now and succeeded within the tick."""
    started = [entry["job"] for entry in due(cli, now)["due"][:slots]]
    with session() as s:
        for job in s.scalars(select(AutoRetrainingJob).where(AutoRetrainingJob.name.in_(started))):
            s.add(
                RetrainingJobHistory(
                    job_id=job.id,
                    trigger="scheduled",
                    status="succeeded",
                    host="sim",
                    pid=1,
                    started_at=now,
                    finished_at=now + timedelta(minutes=1),
                )
            )
            job.last_run_at, job.last_run_status = now, "succeeded"
    return started


@pytest.mark.parametrize(("max_wait", "starts_at_tick"), [("1h", 12), ("52w", None)])
def test_a_low_priority_job_is_not_starved_by_higher_priority_ones(
    cli: Cli,
    tmp_path: Path,
    session: SessionFactory,
    home: Path,
    max_wait: str,
    starts_at_tick: int | None,
) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(f"max_wait: {max_wait}\n")
    for name, priority in (("hi1", 10), ("hi2", 10), ("hi3", 10), ("lo", 0)):
        add_job(cli, tmp_path, name, schedule="*/5 * * * *", priority=priority)
        set_job(session, name, created_at=NOW - timedelta(minutes=1))
    ticks = [_tick(cli, session, NOW + timedelta(minutes=5 * k)) for k in range(14)]
    lo_ticks = [k for k, started in enumerate(ticks) if "lo" in started]
    if starts_at_tick is None:  # strict priority: the three always win the three slots
        assert lo_ticks == []
        end = NOW + timedelta(minutes=5 * 14)
        stats = json.loads(cli("stats", "--now", end.isoformat(), "--json").stdout)
        waiting = {j["job"]: j["waiting_s"] for j in stats["jobs"]}
        assert waiting["lo"] == (end - NOW).total_seconds()  # due since its first fire time
    else:  # due since NOW, it goes first once it has waited max_wait: 12 ticks of 5 minutes
        assert lo_ticks[0] == starts_at_tick and ticks[starts_at_tick][0] == "lo"


@pytest.mark.slow
def test_run_and_wait_returns_once_the_started_retrains_ended_and_fails_with_one(
    cli: Cli, db_url: str, tmp_path: Path, session: SessionFactory
) -> None:
    add_job(cli, tmp_path, "good")
    add_job(cli, tmp_path, "broken", data={"train": "missing.parquet"})
    assert all(cli("jobs", "trigger", name).exit_code == 0 for name in ("good", "broken"))
    waited = subprocess.run(
        [sys.executable, "-m", "retrain_cli", "jobs", "due", "--run", "--wait", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "RETRAIN_DATABASE_URL": db_url},
    )
    assert waited.returncode == 1
    ended = {s["job"]: s["exit_code"] for s in json.loads(waited.stdout)["started"]}
    assert ended == {"good": 0, "broken": 1}
    assert waited.stderr.startswith("Error: broken: the retrain failed (its log: ")
    with session() as s:  # nothing left running when the command returned
        statuses = {r.status for r in s.scalars(select(RetrainingJobHistory))}
    assert statuses == {"succeeded", "failed"}
    refused = cli("jobs", "due", "--wait")
    assert refused.exit_code == 2 and "--wait needs --run" in refused.output
