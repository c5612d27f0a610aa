"""Where retrain-cli keeps its state, and which database it talks to.

Precedence for the database URL: `--database-url` > `RETRAIN_DATABASE_URL` > `database_url` in the
config file > the SQLite file `$RETRAIN_HOME/retrain.db`.

`RETRAIN_HOME` defaults to `$XDG_DATA_HOME/retrain-cli` (`~/.local/share/retrain-cli`). The config
file is `RETRAIN_CONFIG`, else `$RETRAIN_HOME/config.yaml` when present.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrain_cli.errors import ConfigError

CONFIG_KEYS = frozenset(
    {
        "database_url",
        "artifacts_dir",
        "locks_dir",
        "logs_dir",
        "max_concurrent_retrains",
        "metrics",
        "notifications",
        "semaphore",
        "lease_ttl",
        "heartbeat_interval",
    }
)
SEMAPHORE_MODES = ("auto", "file", "database")
DEFAULT_MAX_CONCURRENT_RETRAINS = 3


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one command run."""

    home: Path
    database_url: str
    artifacts_dir: Path
    locks_dir: Path
    logs_dir: Path
    max_concurrent_retrains: int = DEFAULT_MAX_CONCURRENT_RETRAINS
    config_path: Path | None = None
    metrics_dir: Path | None = None
    notifications: dict[str, Any] = field(default_factory=dict)
    semaphore: str = "auto"
    lease_ttl_s: float = 60.0
    heartbeat_s: float = 15.0

    @property
    def database_slots(self) -> bool:
        """Whether retrain slots are also claimed in the database (across hosts): `auto` means
        on PostgreSQL, where several hosts can share one database; SQLite means one host."""
        if self.semaphore == "auto":
            return self.database_url.startswith("postgresql")
        return self.semaphore == "database"

    @property
    def safe_database_url(self) -> str:
        """The database URL with any password masked, for messages and logs."""
        return redact_url(self.database_url)


def default_home(env: Mapping[str, str]) -> Path:
    """`RETRAIN_HOME`, else `$XDG_DATA_HOME/retrain-cli`, else `~/.local/share/retrain-cli`."""
    if env.get("RETRAIN_HOME"):
        return Path(env["RETRAIN_HOME"]).expanduser()
    xdg = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg).expanduser() / "retrain-cli"


def load_settings(
    database_url: str | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Resolve the settings from the flag, the environment and the config file."""
    env = os.environ if env is None else env
    home = default_home(env)
    config_path = _config_path(home, env)
    config = _read_config(config_path) if config_path else {}

    url = database_url or env.get("RETRAIN_DATABASE_URL") or config.get("database_url")
    if not url:
        url = f"sqlite:///{home / 'retrain.db'}"
    max_slots = config.get("max_concurrent_retrains", DEFAULT_MAX_CONCURRENT_RETRAINS)
    if not isinstance(max_slots, int) or isinstance(max_slots, bool) or max_slots < 1:
        raise ConfigError(f"{config_path}: max_concurrent_retrains must be a positive integer")
    return Settings(
        home=home,
        database_url=str(url),
        artifacts_dir=_dir(config, "artifacts_dir", home / "artifacts"),
        locks_dir=_dir(config, "locks_dir", home / "locks"),
        logs_dir=_dir(config, "logs_dir", home / "logs"),
        max_concurrent_retrains=max_slots,
        config_path=config_path,
        metrics_dir=_metrics_dir(config, env),
        notifications=_mapping(config, "notifications", config_path),
        semaphore=_semaphore(config, config_path),
        lease_ttl_s=_seconds(config, "lease_ttl", 60.0, config_path),
        heartbeat_s=_seconds(config, "heartbeat_interval", 15.0, config_path),
    )


def _config_path(home: Path, env: Mapping[str, str]) -> Path | None:
    if env.get("RETRAIN_CONFIG"):
        path = Path(env["RETRAIN_CONFIG"]).expanduser()
        if not path.is_file():
            raise ConfigError(f"RETRAIN_CONFIG points to {path}, which is not a file")
        return path
    default = home / "config.yaml"
    return default if default.is_file() else None


def _read_config(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {path}: {_first_line(exc)}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    unknown = sorted(set(data) - CONFIG_KEYS)
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(CONFIG_KEYS))}"
        )
    return data


def _semaphore(config: Mapping[str, Any], path: Path | None) -> str:
    mode = str(config.get("semaphore", "auto"))
    if mode not in SEMAPHORE_MODES:
        raise ConfigError(
            f"config file {path}: semaphore must be one of {', '.join(SEMAPHORE_MODES)}"
        )
    return mode


def _seconds(config: Mapping[str, Any], key: str, default: float, path: Path | None) -> float:
    from retrain_cli.durations import parse_duration

    if key not in config:
        return default
    try:
        return parse_duration(config[key]).total_seconds()
    except ValueError as exc:
        raise ConfigError(f"config file {path}: {key}: {exc}") from exc


def _metrics_dir(config: Mapping[str, Any], env: Mapping[str, str]) -> Path | None:
    """`RETRAIN_METRICS_DIR`, else `metrics.textfile_dir` in the config file, else none."""
    if env.get("RETRAIN_METRICS_DIR"):
        return Path(env["RETRAIN_METRICS_DIR"]).expanduser()
    value = (config.get("metrics") or {}).get("textfile_dir")
    return Path(str(value)).expanduser() if value else None


def _mapping(config: Mapping[str, Any], key: str, path: Path | None) -> dict[str, Any]:
    value = config.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"config file {path}: {key} must be a mapping")
    return dict(value)


def _dir(config: Mapping[str, Any], key: str, default: Path) -> Path:
    value = config.get(key)
    return Path(str(value)).expanduser() if value else default


_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<at>@)")


def redact_url(url: str) -> str:
    """Mask the password of a database URL: `postgresql://u:***@host/db`."""
    return _PASSWORD_IN_URL.sub(lambda m: f"{m['head']}***{m['at']}", url)


def redact_text(text: str, url: str) -> str:
    """Remove the password of `url` wherever it appears in `text` (driver messages echo it)."""
    match = _PASSWORD_IN_URL.search(url)
    text = redact_url(text)
    if match and match["pw"]:
        text = text.replace(match["pw"], "***")
    return text


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
