"""Promote, roll back and audit versions; the one-active invariant under a race."""

import json
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.core.errors import ConflictError
from retrain_cli.db.models import ModelVersionEvent, ModelVersionManagement
from retrain_cli.db.session import make_engine, session_scope
from retrain_cli.versions import registry
from tests.conftest import Cli
from tests.helpers import published, register_versions, write_training_job

SessionFactory = Callable[[], AbstractContextManager[Session]]


@pytest.fixture
def three_versions(cli: Cli, tmp_path: Path) -> Cli:
    """Model j1-model with versions 1-3 registered, none active."""
    path = write_training_job(tmp_path, strategy="full")
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    for _ in range(3):
        result = cli("retrain", "j1", "--no-promote")
        assert result.exit_code == 0, result.stderr
    return cli


def state(session: SessionFactory) -> dict[int, str]:
    with session() as s:
        return {v.version: v.status for v in s.scalars(select(ModelVersionManagement))}


@pytest.mark.slow
def test_promote_records_who_when_why(three_versions: Cli, session: SessionFactory) -> None:
    cli = three_versions
    result = cli(
        "versions", "promote", "j1-model", "2", "--reason", "canary ok", "--actor", "ana", "--json"
    )
    assert result.exit_code == 0, result.stderr
    switch = json.loads(result.stdout)
    assert (switch["from_version"], switch["to_version"], switch["actor"]) == (None, 2, "ana")
    assert state(session) == {1: "registered", 2: "active", 3: "registered"}
    assert cli("versions", "promote", "j1-model", "3").exit_code == 0
    assert state(session) == {1: "registered", 2: "retired", 3: "active"}
    with session() as s:
        events = list(s.scalars(select(ModelVersionEvent).order_by(ModelVersionEvent.id)))
    assert [(e.from_version, e.to_version, e.reason) for e in events] == [
        (None, 2, "canary ok"),
        (2, 3, None),
    ]
    assert events[1].actor  # the OS user by default


@pytest.mark.slow
def test_compare_and_swap_changes_nothing_when_the_active_version_differs(
    three_versions: Cli, session: SessionFactory
) -> None:
    cli = three_versions
    assert cli("versions", "promote", "j1-model", "1").exit_code == 0
    result = cli("versions", "promote", "j1-model", "2", "--expect-current", "3")
    assert result.exit_code == 1
    assert result.stderr == "Error: j1-model: v1 is active, not v3; nothing changed\n"
    assert state(session)[1] == "active"
    assert cli("versions", "promote", "j1-model", "2", "--expect-current", "1").exit_code == 0


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["tamper", "delete"])
def test_failed_preflight_changes_nothing(
    three_versions: Cli, session: SessionFactory, home: Path, damage: str
) -> None:
    cli = three_versions
    assert cli("versions", "promote", "j1-model", "1").exit_code == 0
    model_file = published(home, "j1-model", 2) / "model.txt"
    if damage == "tamper":
        model_file.write_text("tree=0\n")
    else:
        model_file.unlink()
    result = cli("versions", "promote", "j1-model", "2")
    assert result.exit_code == 1 and "preflight of j1-model v2 failed" in result.stderr
    assert state(session) == {1: "active", 2: "registered", 3: "registered"}
    with session() as s:
        assert len(list(s.scalars(select(ModelVersionEvent)))) == 1


@pytest.mark.slow
def test_rollback_twice_goes_back_two_champions(
    three_versions: Cli, session: SessionFactory
) -> None:
    cli = three_versions
    for version in ("1", "2", "3"):
        assert cli("versions", "promote", "j1-model", version).exit_code == 0
    result = cli("versions", "rollback", "j1-model", "--reason", "bad canary", "--json")
    assert json.loads(result.stdout)["to_version"] == 2
    assert cli("versions", "rollback", "j1-model").exit_code == 0
    assert state(session)[1] == "active"
    result = cli("versions", "rollback", "j1-model")
    assert result.exit_code == 1 and "has no previous champion" in result.stderr
    assert cli("versions", "rollback", "j1-model", "--to", "3").exit_code == 0
    assert state(session)[3] == "active"


@pytest.mark.slow
def test_list_at_answers_what_was_active_then(three_versions: Cli, session: SessionFactory) -> None:
    cli = three_versions
    assert cli("versions", "promote", "j1-model", "1").exit_code == 0
    assert cli("versions", "promote", "j1-model", "2").exit_code == 0
    with session() as s:  # spread the events out in time
        events = list(s.scalars(select(ModelVersionEvent).order_by(ModelVersionEvent.id)))
        events[0].at = datetime(2026, 1, 1, tzinfo=UTC)
        events[1].at = datetime(2026, 2, 1, tzinfo=UTC)
    answers = {}
    for when in ("2025-12-31T00:00:00Z", "2026-01-15T00:00:00Z", "2026-03-01T00:00:00Z"):
        document = json.loads(cli("versions", "list", "j1-model", "--at", when, "--json").stdout)
        answers[when[:10]] = document["active_at"]
    assert answers == {"2025-12-31": None, "2026-01-15": 1, "2026-03-01": 2}
    listed = json.loads(cli("versions", "list", "j1-model", "--json").stdout)
    assert [v["active"] for v in listed["versions"]] == [False, True, False]


@pytest.mark.slow
def test_the_active_version_and_the_rollback_target_cannot_be_retired(
    three_versions: Cli, session: SessionFactory
) -> None:
    cli = three_versions
    assert cli("versions", "promote", "j1-model", "1").exit_code == 0
    assert cli("versions", "promote", "j1-model", "2").exit_code == 0
    assert "is active" in cli("versions", "retire", "j1-model", "2").stderr
    assert "is the rollback target" in cli("versions", "retire", "j1-model", "1").stderr
    assert cli("versions", "retire", "j1-model", "3").exit_code == 0
    assert state(session) == {1: "retired", 2: "active", 3: "retired"}


def race(engine, version: int, barrier: threading.Barrier, outcomes: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Promote `version` over v1 on a connection of its own, as soon as the other thread is
    ready too."""
    barrier.wait()
    try:
        with session_scope(engine, check_schema=False) as s:
            registry.promote(s, "j1-model", version, expect_current=1, preflight=False)
        outcomes.append(f"won {version}")
    except ConflictError as exc:
        outcomes.append(f"lost: {exc}")


@pytest.mark.slow
def test_two_racing_promotions_one_wins_cleanly_20_times(
    three_versions: Cli, db_url: str, session: SessionFactory
) -> None:
    engines = [make_engine(db_url), make_engine(db_url)]
    try:
        with session() as s:
            registry.promote(s, "j1-model", 1)
        for round_ in range(20):
            barrier = threading.Barrier(2)
            outcomes: list[str] = []

            threads = [
                threading.Thread(target=race, args=(engines[i], i + 2, barrier, outcomes))
                for i in range(2)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            winners = [o for o in outcomes if o.startswith("won")]
            assert len(winners) == 1, (round_, outcomes)
            assert "is active, not v1; nothing changed" in next(
                o for o in outcomes if o.startswith("lost")
            )
            actives = [v for v, status in state(session).items() if status == "active"]
            assert actives == [int(winners[0].split()[1])]
            with session() as s:
                registry.promote(s, "j1-model", 1, preflight=False)
    finally:
        for engine in engines:
            engine.dispose()


@pytest.mark.slow
def test_promotions_queued_behind_the_lock_leave_exactly_one_champion(
    three_versions: Cli, db_url: str, session: SessionFactory
) -> None:
    """v2 is active. A promotion of v3 and then one of v2 (active when it is read) wait behind a
    lock the test holds; the log of switches replays to the one active version."""
    with session() as s:
        registry.promote(s, "j1-model", 2)
    engines = [make_engine(db_url) for _ in range(3)]
    outcomes: list[str] = []

    def promote(engine: Any, version: int) -> None:
        try:
            with session_scope(engine, check_schema=False) as s:
                registry.promote(s, "j1-model", version)
            outcomes.append(f"promoted v{version}")
        except Exception as exc:
            outcomes.append(f"v{version}: {exc}")

    try:
        with session_scope(engines[0], check_schema=False) as held:
            registry.lock_active(held, "j1-model")
            threads = []
            for engine, version in ((engines[1], 3), (engines[2], 2)):
                threads.append(threading.Thread(target=promote, args=(engine, version)))
                threads[-1].start()
                time.sleep(0.5)  # each reads its target, then waits for the lock
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for engine in engines:
            engine.dispose()
    actives = [v for v, status in state(session).items() if status == "active"]
    assert len(actives) == 1, (state(session), outcomes)
    with session() as s:
        events = list(s.scalars(select(ModelVersionEvent).order_by(ModelVersionEvent.id)))
    replayed = None
    for event in events:
        assert event.from_version == replayed, [(e.from_version, e.to_version) for e in events]
        replayed = event.to_version
    assert replayed == actives[0]


@pytest.mark.slow
def test_a_retrain_promotion_is_audited_with_its_run(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    assert cli("jobs", "apply", "-f", str(write_training_job(tmp_path))).exit_code == 0
    run = json.loads(cli("retrain", "j1", "--json").stdout)
    with session() as s:
        (event,) = s.scalars(select(ModelVersionEvent))
    assert (event.run_id, event.to_version, event.event) == (run["run_id"], 1, "promote")
    assert "meets the threshold" in (event.reason or "")


def test_ten_racing_promotions_leave_an_audit_log_that_replays_to_the_table(
    db_url: str, session: SessionFactory
) -> None:
    """Ten promotions of one model race; whatever order they commit in, the log read by
    (time, id) is one chain of switches, and `--at` after the race names the active version."""
    register_versions(session, "m", 10)
    engines = [make_engine(db_url) for _ in range(10)]
    barrier = threading.Barrier(10)
    failures: list[str] = []

    def promote(engine: Any, version: int) -> None:
        barrier.wait()
        try:
            with session_scope(engine, check_schema=False) as s:
                registry.promote(s, "m", version, preflight=False)
        except Exception as exc:  # reported below, with the others
            failures.append(f"v{version}: {exc}")

    threads = [
        threading.Thread(target=promote, args=(engine, number))
        for number, engine in enumerate(engines, start=1)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        for engine in engines:
            engine.dispose()
    assert failures == []
    with session() as s:
        active = registry.active_version(s, "m")
        chain = registry.events(s, "m")  # by (time, id)
        assert active is not None
        assert registry.active_at(s, "m", datetime.now(UTC)) == active.version
    assert len(chain) == 10
    replayed = None
    for event in chain:
        assert event.from_version == replayed, [(e.from_version, e.to_version) for e in chain]
        replayed = event.to_version
    assert replayed == active.version
