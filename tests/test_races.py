"""Racing `db init`s and racing `jobs apply`s: the test holds the turn itself, starts the racer,
sees it wait, commits, and sees the racer succeed on what was committed first. On SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from retrain_cli.core.durations import utcnow
from retrain_cli.db.queries import SCHEMA_LOCK, take_turns
from retrain_cli.db.schema import _upgrade, seed_default_configs
from retrain_cli.db.session import SCHEMA_REVISION, make_engine
from retrain_cli.jobs.files import load_job_files
from retrain_cli.jobs.store import apply_files
from tests.helpers import write_job

pytestmark = pytest.mark.slow
WAITING_S = 3.0  # long enough for the racer to start and reach the database


def _racer(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "retrain_cli", *args, "--json", "--database-url", url],
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(racer: subprocess.Popen[str]) -> dict[str, object]:
    stdout, stderr = racer.communicate(timeout=120)
    assert racer.returncode == 0, stderr
    assert stderr == ""
    document: dict[str, object] = json.loads(stdout)
    return document


def test_racing_db_inits_on_an_empty_database_both_succeed(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            take_turns(conn, SCHEMA_LOCK)
            racer = _racer(empty_db_url, "db", "init")
            time.sleep(WAITING_S)
            assert racer.poll() is None  # waiting for its turn
            _upgrade(conn)
            with Session(bind=conn) as session:
                seed_default_configs(session, utcnow())
                session.flush()
        result = _finish(racer)
    finally:
        engine.dispose()
    assert result["revision_before"] == SCHEMA_REVISION and result["configs_added"] == []


def test_racing_applies_of_a_new_job_both_succeed(db_url: str, tmp_path: Path) -> None:
    path = write_job(tmp_path, "raced")
    engine = make_engine(db_url)
    try:
        with Session(engine) as session:
            apply_files(session, load_job_files([path]), utcnow())  # takes the turn
            racer = _racer(db_url, "jobs", "apply", "-f", str(path))
            time.sleep(WAITING_S)
            assert racer.poll() is None
            session.commit()
        result = _finish(racer)
    finally:
        engine.dispose()
    assert result["jobs"] == [{"job": "raced", "action": "unchanged", "changes": []}]
