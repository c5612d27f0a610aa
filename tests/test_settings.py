from pathlib import Path

import pytest

from retrain_cli.core.errors import ConfigError
from retrain_cli.core.redaction import redact_url, remember, scrub
from retrain_cli.core.settings import load_settings


def test_default_database_is_sqlite_file_in_retrain_home(tmp_path: Path) -> None:
    settings = load_settings(env={"RETRAIN_HOME": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'retrain.db'}"
    assert settings.artifacts_dir == tmp_path / "artifacts"
    assert settings.locks_dir == tmp_path / "locks"
    assert settings.logs_dir == tmp_path / "logs"


def test_home_follows_xdg_data_home(tmp_path: Path) -> None:
    settings = load_settings(env={"XDG_DATA_HOME": str(tmp_path)})
    assert settings.home == tmp_path / "retrain-cli"


def test_url_precedence_flag_then_env_then_config_then_default(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("database_url: sqlite:///from-config.db\n")
    env = {"RETRAIN_HOME": str(tmp_path)}
    assert load_settings(env=env).database_url == "sqlite:///from-config.db"
    env["RETRAIN_DATABASE_URL"] = "sqlite:///from-env.db"
    assert load_settings(env=env).database_url == "sqlite:///from-env.db"
    assert load_settings("sqlite:///from-flag.db", env=env).database_url == "sqlite:///from-flag.db"


def test_config_file_moves_directories(tmp_path: Path) -> None:
    config = tmp_path / "elsewhere.yaml"
    config.write_text(f"artifacts_dir: {tmp_path / 'a'}\nlocks_dir: {tmp_path / 'l'}\n")
    settings = load_settings(env={"RETRAIN_HOME": str(tmp_path), "RETRAIN_CONFIG": str(config)})
    assert settings.artifacts_dir == tmp_path / "a"
    assert settings.locks_dir == tmp_path / "l"
    assert settings.config_path == config


@pytest.mark.parametrize(
    ("given", "store", "folder"),
    [
        ("s3://bucket/prod/", "s3://bucket/prod", "cache/artifacts"),  # this host's copies
        ("gs://bucket/prod", "gs://bucket/prod", "cache/artifacts"),
        ("file:///srv/artifacts", None, "/srv/artifacts"),  # a folder: rename still works
        ("/srv/artifacts", None, "/srv/artifacts"),
    ],
)
def test_artifacts_dir_may_be_a_stores_prefix(
    tmp_path: Path, given: str, store: str | None, folder: str
) -> None:
    (tmp_path / "config.yaml").write_text(f"artifacts_dir: {given}\n")
    settings = load_settings(env={"RETRAIN_HOME": str(tmp_path)})
    assert settings.artifacts_store == store
    assert settings.artifacts_dir == tmp_path / folder
    assert settings.artifacts_root == (store or folder)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("databse_url: x\n", "databse_url: unknown field"),
        ("- a\n- b\n", "must hold a mapping"),
        ("a: [\n", "cannot read config file"),
        (
            "max_concurrent_retrains: 0\n",
            "max_concurrent_retrains: Input should be greater than or equal to 1",
        ),
        ("max_concurrent_retrains: 200000\n", "less than or equal to 256"),
        ("semaphore: magic\n", "semaphore: 'magic' is not one of 'auto', 'file' or 'database'"),
        ("lease_ttl: soon\n", "lease_ttl: not a duration"),
    ],
)
def test_bad_config_file_is_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "config.yaml").write_text(content)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(env={"RETRAIN_HOME": str(tmp_path)})


def test_missing_config_named_by_env_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a file"):
        load_settings(env={"RETRAIN_CONFIG": str(tmp_path / "nope.yaml")})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg2://app:s3cr%40t@db:5432/ml",
            "postgresql+psycopg2://app:***@db:5432/ml",
        ),
        ("postgresql://app@db/ml", "postgresql://app@db/ml"),
        ("sqlite:////var/lib/retrain.db", "sqlite:////var/lib/retrain.db"),
    ],
)
def test_redact_url_masks_only_the_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_a_remembered_password_is_scrubbed_from_any_text() -> None:
    remember("postgresql://app:hunter2%20x@db/ml")
    assert scrub('password "hunter2 x" rejected; url app:hunter2%20x@db') == (
        'password "***" rejected; url app:***@db'
    )


def test_a_variable_reference_is_not_a_password() -> None:
    assert redact_url("postgresql://app:${PW}@db/ml") == "postgresql://app:${PW}@db/ml"


def test_lease_and_heartbeat_keep_fractions_of_a_second(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("lease_ttl: 2\nheartbeat_interval: 0.5\n")
    settings = load_settings(env={"RETRAIN_HOME": str(tmp_path)})
    assert (settings.lease_ttl_s, settings.heartbeat_s) == (2.0, 0.5)
