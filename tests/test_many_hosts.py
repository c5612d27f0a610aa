"""Several cron hosts on one PostgreSQL: a global slot limit with leases and fencing.

Each "host" is a separate RETRAIN_HOME (its own lock directory) and separate processes, all on
one database. Set RETRAIN_RACE_ROUNDS to change the number of rounds of the admission race.
"""

import json
import os
import signal
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
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from retrain_cli.db.models import AutoRetrainingJob, ModelVersionManagement, RetrainingJobHistory
from retrain_cli.db.schema import init_database
from retrain_cli.db.session import make_engine, session_scope
from tests.helpers import StoreGate, training_frame, write_training_job
from tests.helpers import retrain_cli as cli

SLOW = {"num_boost_round": 8000, "num_threads": 1, "num_leaves": 63, "min_data_in_leaf": 1}
ENDLESS = {**SLOW, "num_boost_round": 10_000_000}
ROUNDS = int(os.environ.get("RETRAIN_RACE_ROUNDS", "4"))  # 13 s each; more for a soak


@pytest.fixture
def pg(new_pg_database: Callable[[], str]) -> str:
    url = new_pg_database()
    engine = make_engine(url)
    init_database(engine, datetime.now(UTC))
    engine.dispose()
    return url


def host(tmp_path: Path, name: str, url: str, **config: Any) -> dict[str, str]:
    home = tmp_path / name
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(yaml.safe_dump({"semaphore": "database", **config}))
    return {**os.environ, "RETRAIN_HOME": str(home), "RETRAIN_DATABASE_URL": url}


def spawn(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "retrain_cli", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def add_jobs(env: dict[str, str], folder: Path, names: list[str], **fields: Any) -> None:
    for name in names:
        path = write_training_job(folder / name, name, **fields)
        result = cli(env, "jobs", "apply", "-f", str(path))
        assert result.returncode == 0, result.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def scope(url: str) -> AbstractContextManager[Session]:
    return session_scope(make_engine(url), check_schema=False)


def wait_for_running(url: str, job: str, timeout: float = 60) -> RetrainingJobHistory:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with scope(url) as s:
            run = s.scalar(
                select(RetrainingJobHistory)
                .join(AutoRetrainingJob)
                .where(AutoRetrainingJob.name == job, RetrainingJobHistory.status == "running")
            )
        if run is not None:
            return run
        time.sleep(0.2)
    raise AssertionError(f"{job} never started")


@pytest.mark.slow
def test_three_hosts_admit_exactly_three_retrains(pg: str, tmp_path: Path) -> None:
    hosts = [host(tmp_path, f"host{i}", pg) for i in range(3)]
    names = [f"j{i}" for i in range(12)]
    add_jobs(hosts[0], tmp_path / "jobs", names, hyperparameters=SLOW)
    for round_ in range(ROUNDS):
        processes = [
            # --force: each round trains again on the same data (admission is what is tested)
            spawn(hosts[i // 4], "retrain", name, "--quiet", "--force")
            for i, name in enumerate(names)
        ]
        errors = [p.communicate(timeout=300)[1] for p in processes]
        codes = sorted(p.returncode for p in processes)
        assert codes == [0] * 3 + [75] * 9, (round_, codes, errors)
        with scope(pg) as s:
            succeeded = s.scalar(
                select(func.count())
                .select_from(RetrainingJobHistory)
                .where(RetrainingJobHistory.status == "succeeded")
            )
        assert succeeded == 3 * (round_ + 1)


@pytest.mark.slow
def test_a_killed_holders_slot_is_claimed_from_another_host(pg: str, tmp_path: Path) -> None:
    config = {"max_concurrent_retrains": 1, "lease_ttl": 3, "heartbeat_interval": 1}
    a, b = host(tmp_path, "a", pg, **config), host(tmp_path, "b", pg, **config)
    add_jobs(a, tmp_path / "jobs", ["stuck"], hyperparameters=ENDLESS)
    add_jobs(a, tmp_path / "jobs", ["next"])
    holder = spawn(a, "retrain", "stuck", "--quiet")
    wait_for_running(pg, "stuck")
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate(timeout=30)
    start = time.monotonic()
    result = cli(b, "retrain", "next", "--wait-timeout", "30")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - start < 3 + 15  # the lease TTL, plus a new process's start-up
    with scope(pg) as s:
        statuses = dict(
            s.execute(
                select(AutoRetrainingJob.name, RetrainingJobHistory.status).join(AutoRetrainingJob)
            ).all()
        )
    assert statuses == {"stuck": "abandoned", "next": "succeeded"}


def freeze_between_transactions(pid: int, url: str) -> None:
    """SIGSTOP a process at a moment when none of its database sessions is inside a
    transaction. Frozen between a statement and its COMMIT (a heartbeat's is a few ms of every
    interval) it would hold that row's lock until it resumed, and every other host would wait
    on it: a fault of its own (docs/many-hosts.md), not the one the caller tests."""
    engine = make_engine(url)
    try:
        for _ in range(100):
            os.kill(pid, signal.SIGSTOP)
            time.sleep(0.1)  # a statement in flight finishes, its session goes idle
            with engine.connect() as conn:
                open_transactions = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            if open_transactions == 0:
                return
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError("the process never paused outside a transaction")


@pytest.mark.slow
def test_a_frozen_holder_stops_itself_and_registers_nothing(pg: str, tmp_path: Path) -> None:
    config = {"max_concurrent_retrains": 1, "lease_ttl": 2, "heartbeat_interval": 0.5}
    a, b = host(tmp_path, "a", pg, **config), host(tmp_path, "b", pg, **config)
    add_jobs(
        a,
        tmp_path / "jobs",
        ["frozen"],
        hyperparameters=SLOW,
        strategy="full",
        frame=training_frame(n=3000),
    )
    add_jobs(a, tmp_path / "jobs", ["other"])
    holder = spawn(a, "retrain", "frozen", "--json")
    run = wait_for_running(pg, "frozen")
    time.sleep(0.5)
    freeze_between_transactions(holder.pid, pg)
    time.sleep(3)  # beyond the 2 s lease
    taken = cli(b, "retrain", "other", "--wait-timeout", "10")  # expires the lease, takes it
    assert taken.returncode == 0, taken.stderr
    resumed = time.monotonic()
    os.kill(holder.pid, signal.SIGCONT)
    _, stderr = holder.communicate(timeout=60)
    assert holder.returncode == 1 and "stopping" in stderr  # lease expired, or taken away
    assert time.monotonic() - resumed < 10
    with scope(pg) as s:
        row = s.get(RetrainingJobHistory, run.id)
        models = list(s.scalars(select(ModelVersionManagement.model_name)))
    assert row is not None and row.status == "abandoned"
    assert models == ["other-model"]  # the frozen run registered nothing


@pytest.mark.slow
def test_a_holder_frozen_inside_its_transaction_costs_its_slot_and_no_one_waits(
    pg: str, tmp_path: Path
) -> None:
    """A host frozen between its heartbeat's UPDATE and the COMMIT keeps its row locked. Another
    host waits on that lock neither to expire the lease nor to claim the slot: the slot counts
    as busy for as long, and the next one is taken."""
    config = {"max_concurrent_retrains": 2, "lease_ttl": 2, "heartbeat_interval": 0.5}
    a, b = host(tmp_path, "a", pg, **config), host(tmp_path, "b", pg, **config)
    add_jobs(a, tmp_path / "jobs", ["frozen"], hyperparameters=ENDLESS)
    add_jobs(a, tmp_path / "jobs", ["other"])
    holder = spawn(a, "retrain", "frozen", "--quiet")
    frozen = wait_for_running(pg, "frozen")
    os.kill(holder.pid, signal.SIGSTOP)
    engine = make_engine(pg)
    try:
        with engine.connect() as inside:  # the frozen host's heartbeat, never committed
            inside.execute(
                update(RetrainingJobHistory)
                .where(RetrainingJobHistory.id == frozen.id)
                .values(heartbeat_at=func.now())
            )
            time.sleep(2.5)  # beyond the lease
            started = time.monotonic()
            other = spawn(b, "retrain", "other", "--quiet", "--wait-timeout", "30")
            _, err = other.communicate(timeout=120)
            waited = time.monotonic() - started
            inside.rollback()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.communicate(timeout=30)
        engine.dispose()
    assert other.returncode == 0, err
    assert waited < 20  # a new process, the 2 s lock timeout on slot 0, and a short training
    with scope(pg) as s:
        slots = dict(
            s.execute(
                select(AutoRetrainingJob.name, RetrainingJobHistory.slot).join(AutoRetrainingJob)
            ).all()
        )
    assert slots == {"frozen": 0, "other": 1}


@pytest.mark.slow
def test_racing_hosts_start_one_run_per_fire_time_after_an_outage(pg: str, tmp_path: Path) -> None:
    hosts = [host(tmp_path, f"h{i}", pg) for i in range(8)]
    add_jobs(hosts[0], tmp_path / "jobs", ["hourly"], schedule="0 * * * *")
    with scope(pg) as s:
        s.execute(
            update(AutoRetrainingJob).values(created_at=datetime.now(UTC) - timedelta(days=3))
        )
    dispatchers = [spawn(env, "jobs", "due", "--run", "--json") for env in hosts]
    started = []
    for process in dispatchers:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        started += [s["pid"] for s in json.loads(out)["started"]]
    assert started  # at least one host started it; the others found it running or started too
    for pid in started:  # detached children: wait for each to exit
        deadline = time.monotonic() + 120
        while _alive(pid):
            assert time.monotonic() < deadline
            time.sleep(0.2)
    with scope(pg) as s:
        rows = list(
            s.execute(select(RetrainingJobHistory.status, RetrainingJobHistory.scheduled_for)).all()
        )
    ran = [fire for status, fire in rows if status != "skipped"]
    assert len(rows) == len(started) and len(ran) == 1, rows  # every start is a row; one ran
    assert ran[0] is not None and ran[0].minute == 0


@pytest.mark.slow
def test_wait_timeout_waits_for_a_slot_held_on_another_host(pg: str, tmp_path: Path) -> None:
    config = {"max_concurrent_retrains": 1}
    a, b = host(tmp_path, "a", pg, **config), host(tmp_path, "b", pg, **config)
    add_jobs(a, tmp_path / "jobs", ["first"], hyperparameters={**SLOW, "num_boost_round": 3000})
    add_jobs(a, tmp_path / "jobs", ["second"])
    holder = spawn(a, "retrain", "first", "--quiet")
    wait_for_running(pg, "first")
    assert cli(b, "retrain", "second").returncode == 75  # no waiting: busy at once
    waited = cli(b, "retrain", "second", "--wait-timeout", "120")
    holder.communicate(timeout=120)
    assert (holder.returncode, waited.returncode) == (0, 0), waited.stderr
    with scope(pg) as s:
        runs = list(
            s.execute(
                select(
                    AutoRetrainingJob.name,
                    RetrainingJobHistory.status,
                    RetrainingJobHistory.started_at,
                    RetrainingJobHistory.finished_at,
                )
                .join(AutoRetrainingJob)
                .where(RetrainingJobHistory.status == "succeeded")
            ).all()
        )
    (first,) = [r for r in runs if r.name == "first"]
    (second,) = [r for r in runs if r.name == "second"]
    assert second.started_at >= first.finished_at  # it waited for the slot, never overlapped


@pytest.mark.slow
def test_a_host_that_cannot_see_a_versions_files_says_so_and_registers_nothing(
    pg: str, tmp_path: Path
) -> None:
    a, b = host(tmp_path, "a", pg), host(tmp_path, "b", pg)
    add_jobs(a, tmp_path, ["j1"])
    assert cli(a, "retrain", "j1").returncode == 0
    assert cli(a, "retrain", "j1", "--no-promote", "--force").returncode == 0  # v2, registered
    on_a = tmp_path / "a" / "artifacts"
    on_a.rename(tmp_path / "a-disk")  # one machine here: hide host a's disk from host b
    for command, version in (
        (["retrain", "j1", "--force"], 1),
        (["versions", "promote", "j1-model", "2"], 2),
    ):
        result = cli(b, *command)
        assert result.returncode == 1
        assert f"j1-model v{version}'s files are not reachable from" in result.stderr
        assert "share one artifacts_dir" in result.stderr and len(result.stderr.splitlines()) == 1
    with scope(pg) as s:
        assert s.scalar(select(func.count()).select_from(ModelVersionManagement)) == 2
        statuses = s.scalars(select(RetrainingJobHistory.status).order_by(RetrainingJobHistory.id))
        assert list(statuses) == ["succeeded", "succeeded", "failed"]
    (tmp_path / "a-disk").rename(on_a)  # now a mount at the same path on every host
    b = host(tmp_path, "b", pg, artifacts_dir=str(on_a))
    result = cli(b, "retrain", "j1", "--json", "--force")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["version"]["version"] == 3


@pytest.mark.slow
def test_hosts_on_one_bucket_with_no_shared_folder_retrain_promote_roll_back_and_serve(
    pg: str, tmp_path: Path, s3_server: str, bucket: str
) -> None:
    """Host A's upload is killed before its manifest: nothing is registered, and host B's
    next registration sweeps what it left. B preflights, rolls back and serves from the
    bucket; the serving snippet of docs/rollouts.md reads the decision there."""
    import fsspec

    store, serving = f"{bucket}/artifacts", f"{bucket}/serving/"
    config = {"artifacts_dir": store, "serving": {"store": serving}, "lease_ttl": 3}
    gate = StoreGate(s3_server)
    try:
        a = {
            **host(tmp_path, "a", pg, heartbeat_interval=1, **config),
            "AWS_ENDPOINT_URL": gate.url,
        }
        b = host(tmp_path, "b", pg, heartbeat_interval=1, **config)
        add_jobs(a, tmp_path / "jobs", ["j1"])
        assert cli(a, "retrain", "j1").returncode == 0
        gate.hold = "/manifest.json"
        killed = spawn(a, "retrain", "j1", "--force", "--quiet")
        assert gate.arrived.wait(120), killed.communicate(timeout=5)
        os.kill(killed.pid, signal.SIGKILL)
        killed.communicate(timeout=30)
    finally:
        gate.close()
    fs = fsspec.filesystem("s3")
    fs.invalidate_cache()
    (leftover,) = [p for p in fs.ls(f"{store[5:]}/j1-model") if p.rsplit("/", 1)[-1][:2] == "2-"]
    assert not fs.exists(f"{leftover}/manifest.json")  # the manifest is written last
    with scope(pg) as s:
        assert s.scalar(select(func.count()).select_from(ModelVersionManagement)) == 1

    result = cli(b, "retrain", "j1", "--force", "--no-promote", "--wait-timeout", "60", "--json")
    assert result.returncode == 0, result.stderr
    fs.invalidate_cache()
    assert not fs.exists(leftover)  # swept by B's registration
    for command in (["versions", "promote", "j1-model", "2"], ["versions", "rollback", "j1-model"]):
        done = cli(b, *command)  # each preflight reads and verifies the version from the bucket
        assert done.returncode == 0, done.stderr
    with fsspec.open(f"{serving.rstrip('/')}/j1-model.json") as f:  # docs/rollouts.md's snippet
        document = json.load(f)
    (served,) = document["versions"]
    assert served["version"] == 1 and served["directory"].startswith(f"{store}/j1-model/1-")
    with scope(pg) as s:
        statuses = s.scalars(select(RetrainingJobHistory.status).order_by(RetrainingJobHistory.id))
        assert list(statuses) == ["succeeded", "abandoned", "succeeded"]
    assert (
        not (tmp_path / "a" / "artifacts").exists() and not (tmp_path / "b" / "artifacts").exists()
    )
