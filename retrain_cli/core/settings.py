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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain_cli.core import paths
from retrain_cli.core.errors import ConfigError
from retrain_cli.core.redaction import redact_url, remember, remember_secret

if TYPE_CHECKING:
    from retrain_cli.core.config_file import ConfigFile


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one command run."""

    home: Path
    database_url: str
    artifacts_dir: Path  # with `artifacts_store`: this host's verified copies and staging
    locks_dir: Path
    logs_dir: Path
    max_concurrent_retrains: int
    config_path: Path | None
    metrics_dir: Path | None
    notifications: dict[str, Any]
    semaphore: str
    lease_ttl_s: float
    heartbeat_s: float
    max_wait_s: float
    dask_scheduler: str | None = None
    dask_timeout_s: float = 10.0
    serving_store: str | None = None  # a store's prefix the serving documents are published to
    artifacts_store: str | None = None  # a store's prefix the versions and profiles live under

    @property
    def artifacts_root(self) -> str:
        """Where versions are published and profiles kept: the store's prefix, or the folder."""
        return self.artifacts_store or str(self.artifacts_dir)

    @property
    def database_slots(self) -> bool:
        """Whether retrain slots are also claimed in the database (across hosts): `auto` means
        on PostgreSQL, where several hosts can share one database; SQLite means one host."""
        if self.semaphore == "auto":
            return self.database_url.startswith("postgresql")
        return self.semaphore == "database"

    @property
    def owned_dirs(self) -> list[Path]:
        """The directories only this database may use: the home, and the locks and logs
        directories where they are configured outside it (see `core.ownership`)."""
        home = self.home.resolve()
        dirs = (self.locks_dir, self.logs_dir)
        outside = [d for d in dirs if not d.resolve().is_relative_to(home)]
        return [self.home, *dict.fromkeys(outside)]

    @property
    def safe_database_url(self) -> str:
        """The database URL with any password masked, for messages and logs."""
        return redact_url(self.database_url)


def default_home(env: Mapping[str, str]) -> Path:
    """`RETRAIN_HOME`, else `$XDG_DATA_HOME/retrain-cli`, else `~/.local/share/retrain-cli` (the
    environment's `HOME`, as cron gives a command its user's)."""
    if env.get("RETRAIN_HOME"):
        return Path(env["RETRAIN_HOME"]).expanduser()
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    xdg = env.get("XDG_DATA_HOME") or str(home / ".local" / "share")
    return Path(xdg).expanduser() / "retrain-cli"


def load_settings(
    database_url: str | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Resolve the settings from the flag, the environment and the config file."""
    env = os.environ if env is None else env
    home = default_home(env)
    config_path = _config_path(home, env)
    config = _read_config(config_path)

    url = database_url or env.get("RETRAIN_DATABASE_URL") or config.database_url
    if not url:
        url = f"sqlite:///{home / 'retrain.db'}"
    remember(str(url))
    metrics_dir = env.get("RETRAIN_METRICS_DIR") or config.metrics.textfile_dir
    if config.storage_options:
        _apply_storage_options(config.storage_options)
    artifacts = _local(config.artifacts_dir)
    store = artifacts if paths.is_url(artifacts) else None
    serving_store = env.get("RETRAIN_SERVING_STORE") or config.serving.store
    for prefix in (store, serving_store):  # a password in a store's URL is never printed
        if prefix:
            remember(prefix)
    return Settings(
        home=home,
        database_url=str(url),
        artifacts_dir=paths.artifact_cache(home) if store else _dir(artifacts, home / "artifacts"),
        artifacts_store=store.rstrip("/") if store else None,
        locks_dir=_dir(config.locks_dir, home / "locks"),
        logs_dir=_dir(config.logs_dir, home / "logs"),
        max_concurrent_retrains=config.max_concurrent_retrains,
        config_path=config_path,
        metrics_dir=Path(metrics_dir).expanduser() if metrics_dir else None,
        notifications=config.notification_settings(),
        semaphore=config.semaphore,
        lease_ttl_s=float(config.lease_ttl),
        heartbeat_s=float(config.heartbeat_interval),
        max_wait_s=float(config.max_wait),
        dask_scheduler=env.get("RETRAIN_DASK_SCHEDULER") or config.dask.scheduler,
        dask_timeout_s=float(config.dask.timeout),
        serving_store=serving_store,
    )


def _apply_storage_options(options: dict[str, dict[str, Any]]) -> None:
    """The config file's store options as fsspec's defaults per protocol (`fsspec.config.conf`,
    fsspec's own place for them): every store URL this process opens gets them, and its string
    values are never printed."""
    import fsspec.config

    for protocol, values in options.items():
        for value in _secrets(values):
            remember_secret(value)
        fsspec.config.conf.setdefault(protocol, {}).update(values)


_SECRET = re.compile(r"secret|key|token|password|credential|sas|signature", re.IGNORECASE)


def _secrets(values: dict[str, Any]) -> list[str]:
    """The string values under keys that name a secret (`key`, `secret`, `token`, ...), at any
    depth (`client_kwargs`, `config_kwargs`)."""
    found = []
    for name, value in values.items():
        if isinstance(value, dict):
            found += _secrets(value)
        elif isinstance(value, str) and _SECRET.search(name):
            found.append(value)
    return found


def _config_path(home: Path, env: Mapping[str, str]) -> Path | None:
    if env.get("RETRAIN_CONFIG"):
        path = Path(env["RETRAIN_CONFIG"]).expanduser()
        if not path.is_file():
            raise ConfigError(f"RETRAIN_CONFIG points to {path}, which is not a file")
        return path
    default = home / "config.yaml"
    return default if default.is_file() else None


def _read_config(path: Path | None) -> ConfigFile:
    """The config file's settings (every default when there is no file)."""
    # here, not at import: the config file's pydantic model loads only when there is a file
    from retrain_cli.core.config_file import ConfigFile, parse_config

    if path is None:
        return ConfigFile()
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {path}: {_first_line(exc)}") from exc
    if data is None:
        return ConfigFile()
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    try:
        return parse_config(data)
    except ValueError as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc


def _local(value: str | None) -> str | None:
    """A `file://` URL is the local path it names: a folder keeps the guarantees of rename."""
    if value and value.lower().startswith("file://"):
        return value[len("file://") :]
    return value


def _dir(value: str | None, default: Path) -> Path:
    return Path(value).expanduser() if value else default


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
