"""One database per RETRAIN_HOME: the first command records the database that owns the home, and
a command against another database is refused with one line, before it changes anything."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import inspect

from retrain_cli.core import ownership
from retrain_cli.core.errors import ConfigError
from retrain_cli.core.redaction import redact_url
from retrain_cli.db.session import make_engine
from tests.conftest import Cli


def _other_database(tmp_path: Path) -> str:
    """A second initialised database, made from its own home."""
    return f"sqlite:///{tmp_path / 'other' / 'retrain.db'}"


def _init_elsewhere(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAIN_HOME", str(tmp_path / "other"))
    assert Cli(url)("db", "init").exit_code == 0
    monkeypatch.setenv("RETRAIN_HOME", str(tmp_path / "home"))


def test_the_first_command_records_its_database_as_the_owner(cli: Cli, home: Path) -> None:
    assert cli("jobs", "list").exit_code == 0
    mark = home / "owner.json"
    owner = json.loads(mark.read_text())
    assert re.fullmatch(r"[0-9a-f]{32}", owner["registry"])
    assert owner["database"] == redact_url(str(cli.database_url))
    assert oct(mark.stat().st_mode & 0o777) == "0o600"
    assert cli("jobs", "list").exit_code == 0  # the owner itself goes on


def test_a_second_database_sharing_the_home_is_refused_and_changes_nothing(
    cli: Cli, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("jobs", "list").exit_code == 0  # the home is the test database's
    before = sorted(p.name for p in home.iterdir())
    serving = home / "serving" / "fraud.json"
    serving.parent.mkdir(parents=True)
    serving.write_text('{"model": "fraud", "version": 2}')
    other = _other_database(tmp_path)
    _init_elsewhere(other, tmp_path, monkeypatch)
    for args in (("jobs", "due"), ("jobs", "list"), ("stats",), ("db", "init")):
        result = Cli(other)(*args)
        assert result.exit_code == 1, (args, result.output)
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"Error: {home} belongs to another database (")
        assert "give each database its own RETRAIN_HOME" in line
    assert serving.read_text() == '{"model": "fraud", "version": 2}'
    assert sorted(p.name for p in home.iterdir()) == sorted([*before, "serving"])


def test_db_init_of_a_new_database_on_an_owned_home_creates_no_table(
    cli: Cli, home: Path, tmp_path: Path
) -> None:
    assert cli("jobs", "list").exit_code == 0
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = Cli(fresh)("db", "init")
    assert result.exit_code == 1 and "belongs to another database" in result.stderr
    engine = make_engine(fresh)
    try:
        assert inspect(engine).get_table_names() == []  # the schema was rolled back
    finally:
        engine.dispose()


def test_a_locks_dir_outside_the_home_is_claimed_too(
    cli: Cli, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locks = tmp_path / "shared-locks"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(f"locks_dir: {locks}\n")
    assert cli("jobs", "list").exit_code == 0
    assert (locks / "owner.json").is_file()
    other_home = tmp_path / "home2"
    other_home.mkdir()
    (other_home / "config.yaml").write_text(f"locks_dir: {locks}\n")
    other = _other_database(tmp_path)
    _init_elsewhere(other, tmp_path, monkeypatch)
    monkeypatch.setenv("RETRAIN_HOME", str(other_home))
    result = Cli(other)("jobs", "list")
    assert result.exit_code == 1 and f"Error: {locks} belongs to another database" in result.stderr


def test_a_claimed_directory_refuses_another_registry_and_keeps_no_temporary_file(
    tmp_path: Path,
) -> None:
    ownership.claim(tmp_path, "a" * 32, "sqlite:///a.db")
    ownership.claim(tmp_path, "a" * 32, "sqlite:///a.db")
    with pytest.raises(ConfigError, match="belongs to another database"):
        ownership.claim(tmp_path, "b" * 32, "sqlite:///b.db")
    assert [p.name for p in tmp_path.iterdir()] == ["owner.json"]  # no temporary file left


def test_a_garbled_owner_mark_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "owner.json").write_text("[1, 2")
    with pytest.raises(ConfigError, match="which names the database owning it"):
        ownership.claim(tmp_path, "a" * 32, "sqlite:///a.db")
