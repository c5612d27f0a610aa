"""`runs list/show/cancel`: the retraining history as operators read it, and cancelling a
running retrain from any host (the running process reads the request with its heartbeat)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.core.choices import RunStatus
from retrain_cli.db.models import AutoRetrainingJob, ModelVersionManagement, RetrainingJobHistory
from retrain_cli.training.runlog import path_of
from retrain_cli.training.slots.database import Beat, beat
from tests.conftest import Cli
from tests.helpers import retrain_cli as _cli
from tests.helpers import training_frame, write_training_job

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
Scope = Callable[[], AbstractContextManager[Session]]


def _job(cli: Cli, folder: Path, name: str) -> None:
    result = cli("jobs", "apply", "-f", str(write_training_job(folder, name)))
    assert result.exit_code == 0, result.output


def _run(session: Scope, job: str, status: str, started: datetime, **fields: Any) -> int:
    with session() as s:
        job_id = s.scalar(select(AutoRetrainingJob.id).where(AutoRetrainingJob.name == job))
        assert job_id is not None
        finished = None if status == RunStatus.RUNNING else started + timedelta(seconds=30)
        run = RetrainingJobHistory(
            job_id=job_id,
            trigger="manual",
            status=status,
            host="host-a",
            pid=os.getpid(),
            started_at=started,
            heartbeat_at=started,
            finished_at=finished,
            duration_s=None if finished is None else 30.0,
            **fields,
        )
        s.add(run)
        s.flush()
        return run.id


def test_runs_list_filters_by_job_status_and_period_newest_first(
    cli: Cli, session: Scope, tmp_path: Path
) -> None:
    _job(cli, tmp_path / "a", "a")
    _job(cli, tmp_path / "b", "b")
    old = _run(session, "a", "succeeded", datetime.now(UTC) - timedelta(days=10))
    failed = _run(session, "a", "failed", datetime.now(UTC) - timedelta(hours=2), error="boom")
    other = _run(session, "b", "succeeded", datetime.now(UTC) - timedelta(hours=1))

    every = json.loads(cli("runs", "list", "--json").output)["runs"]
    assert [r["id"] for r in every] == [other, failed, old]
    of_a = json.loads(cli("runs", "list", "--job", "a", "--since", "7d", "--json").output)
    assert [r["id"] for r in of_a["runs"]] == [failed]
    failures = json.loads(cli("runs", "list", "--status", "failed", "--json").output)["runs"]
    assert [(r["id"], r["error"]) for r in failures] == [(failed, "boom")]
    table = cli("runs", "list", "--limit", "1")
    assert table.exit_code == 0 and str(other) in table.output and "boom" not in table.output
    bad = cli("runs", "list", "--since", "soon")
    assert bad.exit_code == 2 and "not a duration" in bad.output


def test_runs_show_says_phases_gate_and_error_and_where_the_log_is(
    cli: Cli, session: Scope, tmp_path: Path, home: Path
) -> None:
    _job(cli, tmp_path / "a", "a")
    gate = {"decision": "reject", "reasons": ["auc 0.61 < threshold 0.7"]}
    run_id = _run(
        session,
        "a",
        "succeeded",
        NOW,
        phases={"load": 0.5, "train": 12.25},
        gate=gate,
        trigger_detail="new labels",
    )
    shown = cli("runs", "show", str(run_id))
    assert shown.exit_code == 0, shown.output
    assert "train 12.2s" in shown.output and "auc 0.61 < threshold 0.7" in shown.output
    assert "manual (new labels)" in shown.output
    document = json.loads(cli("runs", "show", str(run_id), "--json").output)
    assert document["phases"] == {"load": 0.5, "train": 12.25} and document["gate"] == gate

    missing = cli("runs", "show", str(run_id), "--log")
    assert missing.exit_code == 1 and "ran on host-a" in missing.output
    log = path_of(home / "logs", "a", run_id)
    log.parent.mkdir(parents=True)
    log.write_text("2026-12-01T12:00:00+00:00 warning: UserWarning: something\n")
    assert "UserWarning: something" in cli("runs", "show", str(run_id), "--log").output
    nothing = cli("runs", "show", "999999")
    assert nothing.exit_code == 1 and "no run 999999" in nothing.output


def test_cancel_is_recorded_on_a_running_run_once_and_refused_on_a_finished_one(
    cli: Cli, session: Scope, tmp_path: Path
) -> None:
    _job(cli, tmp_path / "a", "a")
    _job(cli, tmp_path / "b", "b")
    running = _run(session, "a", "running", datetime.now(UTC))
    finished = _run(session, "b", "succeeded", NOW)

    asked = cli("runs", "cancel", str(running), "--actor", "ops-alice", "--json")
    assert asked.exit_code == 0, asked.output
    assert json.loads(asked.output)["cancelled_by"] == "ops-alice"
    again = cli("runs", "cancel", str(running), "--actor", "ops-bob")
    assert again.exit_code == 0 and "ops-alice" in again.output  # the first request stands
    with session() as s:
        assert beat(s, running, datetime.now(UTC)) is Beat.CANCELLED
        row = s.get(RetrainingJobHistory, running)
        assert row is not None and row.status == "running" and row.cancelled_by == "ops-alice"
        assert beat(s, finished, NOW) is Beat.LOST

    refused = cli("runs", "cancel", str(finished))
    assert refused.exit_code == 1
    assert f"run {finished} is not running (succeeded)" in refused.output
    waited = cli("runs", "cancel", str(running), "--wait", "0.2")
    assert waited.exit_code == 1 and "has not stopped within 0.2s" in waited.output


def _host(tmp_path: Path, name: str, url: str, **config: Any) -> dict[str, str]:
    home = tmp_path / name
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(yaml.safe_dump(config))
    return {**os.environ, "RETRAIN_HOME": str(home), "RETRAIN_DATABASE_URL": url}


@pytest.mark.slow
def test_a_run_cancelled_from_another_host_stops_during_training_and_registers_nothing(
    empty_db_url: str, tmp_path: Path
) -> None:
    heartbeat = 1.0
    config: dict[str, Any] = {"heartbeat_interval": heartbeat, "max_concurrent_retrains": 1}
    if empty_db_url.startswith("postgresql"):
        config["semaphore"] = "database"
    a = _host(tmp_path, "a", empty_db_url, **config)
    b = _host(tmp_path, "b", empty_db_url, **config)
    assert _cli(a, "db", "init").returncode == 0
    endless = {"num_boost_round": 10_000_000, "num_threads": 1, "num_leaves": 63}
    path = write_training_job(
        tmp_path / "jobs", "long", frame=training_frame(n=3000), hyperparameters=endless
    )
    assert _cli(a, "jobs", "apply", "-f", str(path)).returncode == 0
    holder = subprocess.Popen(
        [sys.executable, "-m", "retrain_cli", "retrain", "long", "--json"],
        env=a,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        run_id = _wait_for_training(tmp_path / "a", holder)
        cancelled = _cli(b, "runs", "cancel", str(run_id), "--actor", "ops-b", "--wait", "60")
        assert cancelled.returncode == 0, cancelled.stderr
        assert f"run {run_id} of long: cancelled" in cancelled.stdout
        holder.communicate(timeout=60)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate()
    assert holder.returncode == 1
    shown = json.loads(_cli(b, "runs", "show", str(run_id), "--json").stdout)
    assert shown["status"] == "cancelled" and shown["cancelled_by"] == "ops-b"
    assert shown["version"] is None and "train" in shown["phases"]
    requested = datetime.fromisoformat(shown["cancel_requested_at"])
    stopped = datetime.fromisoformat(shown["finished_at"])
    assert (stopped - requested).total_seconds() < 2 * heartbeat  # the bound, measured
    log = _cli(a, "runs", "show", str(run_id), "--log")
    assert log.returncode == 0 and "cancelled" in log.stdout
    elsewhere = _cli(b, "runs", "show", str(run_id), "--log")
    assert elsewhere.returncode == 1 and "has no log here" in elsewhere.stderr
    from retrain_cli.db.session import make_engine, session_scope

    engine = make_engine(empty_db_url)
    with session_scope(engine) as s:
        assert list(s.scalars(select(ModelVersionManagement.id))) == []
        running = select(RetrainingJobHistory.id).where(RetrainingJobHistory.status == "running")
        assert list(s.scalars(running)) == []  # no slot left held
    engine.dispose()


def _wait_for_training(home: Path, holder: subprocess.Popen[str]) -> int:
    """The run's id once its own log says it started training (and a second has passed)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert holder.poll() is None, holder.communicate()
        logs = sorted((home / "logs" / "long").glob("run-*.log"))
        if logs and "training lightgbm" in logs[0].read_text():
            time.sleep(1.0)
            return int(logs[0].stem.removeprefix("run-"))
        time.sleep(0.1)
    raise AssertionError("the retrain never started training")
