"""The retrain semaphore, in-process and with real concurrent `retrain-cli` processes."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.core.errors import BusyError
from retrain_cli.db.models import ModelVersionManagement, RetrainingJobHistory
from retrain_cli.training.slots import FileSlots
from tests.conftest import Cli
from tests.helpers import training_frame, write_training_job

SessionFactory = Callable[[], AbstractContextManager[Session]]
SLOW_TRAINING = {"num_boost_round": 1500, "num_threads": 1, "num_leaves": 63, "min_data_in_leaf": 1}


def test_slots_are_shared_and_freed(tmp_path: Path) -> None:
    semaphore = FileSlots(tmp_path / "locks", 2)
    first, second = semaphore.acquire("a", 0), semaphore.acquire("b", 0)
    assert {first.slot, second.slot} == {0, 1} and semaphore.slots_in_use() == 2
    with pytest.raises(BusyError, match="all 2 retrain slots are busy"):
        semaphore.acquire("c", 0)
    first.release()
    third = semaphore.acquire("c", 0)
    assert third.slot == first.slot
    second.release()
    third.release()


def test_waiting_gives_up_at_the_timeout(tmp_path: Path) -> None:
    clock = iter(range(100))
    semaphore = FileSlots(tmp_path, 1, clock=lambda: next(clock), sleep=lambda s: None)
    held = semaphore.acquire("a", 0)
    with pytest.raises(BusyError, match=r"waited 5s"):
        semaphore.acquire("b", 5)
    held.release()


def test_the_same_job_never_holds_two_slots(tmp_path: Path) -> None:
    semaphore = FileSlots(tmp_path, 3)
    held = semaphore.acquire("a", 0)
    with pytest.raises(BusyError, match=rf"job 'a' is already running \(held by pid {os.getpid()}"):
        semaphore.acquire("a", 0)
    held.release()


def spawn(db_url: str, job: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "retrain_cli", "retrain", job, "--quiet", "--database-url", db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


@pytest.mark.slow
def test_six_processes_never_run_more_than_three_at_once(
    cli: Cli, db_url: str, tmp_path: Path, session: SessionFactory
) -> None:
    for i in range(6):
        path = write_training_job(tmp_path / f"j{i}", f"j{i}", hyperparameters=SLOW_TRAINING)
        assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    processes = [spawn(db_url, f"j{i}") for i in range(6)]
    errors = [p.communicate(timeout=180)[1].decode() for p in processes]
    codes = [p.returncode for p in processes]
    assert set(codes) <= {0, 75}, errors
    with session() as s:
        rows = list(s.scalars(select(RetrainingJobHistory)))
    succeeded = [r for r in rows if r.status == "succeeded"]
    skipped = [r for r in rows if r.status == "skipped"]
    assert len(rows) == 6 and len(succeeded) + len(skipped) == 6  # none lost, none running
    assert len(succeeded) == codes.count(0) >= 1 and len(skipped) == codes.count(75)
    assert all("slots are busy" in (r.error or "") for r in skipped)
    assert max_overlap([(r.started_at, r.finished_at) for r in succeeded]) <= 3  # type: ignore[misc]


@pytest.mark.slow
def test_sigkill_frees_the_slot_and_the_next_command_marks_the_run_abandoned(
    cli: Cli, db_url: str, tmp_path: Path, session: SessionFactory, home: Path
) -> None:
    assert cli("jobs", "apply", "-f", str(write_training_job(tmp_path))).exit_code == 0
    assert cli("retrain", "j1").exit_code == 0  # an active version to protect
    slow = {**SLOW_TRAINING, "num_boost_round": 1_000_000}
    path = write_training_job(
        tmp_path, frame=training_frame(seed=1), hyperparameters=slow, strategy="full"
    )
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    process = spawn(db_url, "j1")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with session() as s:
            running = s.scalar(
                select(RetrainingJobHistory).where(RetrainingJobHistory.status == "running")
            )
        if running is not None:
            break
        time.sleep(0.2)
    assert running is not None and running.pid == process.pid
    time.sleep(1.0)  # well into training
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL

    lease = FileSlots(home / "locks", 3).acquire("j1", 0)  # slot and job lock free at once
    lease.release()
    assert cli("jobs", "list").exit_code == 0  # any later command sweeps
    with session() as s:
        row = s.get(RetrainingJobHistory, running.id)
        assert row is not None and row.status == "abandoned" and "died" in (row.error or "")
        versions = list(s.scalars(select(ModelVersionManagement)))
    assert [(v.version, v.status) for v in versions] == [(1, "active")]
    assert not list((home / "artifacts" / "j1-model").glob("2-*"))


def test_lock_files_and_their_directory_are_private(tmp_path: Path) -> None:
    locks = tmp_path / "state" / "locks"
    lease = FileSlots(locks, 2).acquire("fraud-lgbm", 0)
    try:
        assert {p.stat().st_mode & 0o777 for p in locks.iterdir()} == {0o600}
        assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
        assert locks.stat().st_mode & 0o777 == 0o700
    finally:
        lease.release()
