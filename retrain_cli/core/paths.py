"""Where everything retrain-cli writes lives, under RETRAIN_HOME and the artifacts directory: the
one module that names those paths, so that where things live changes in one place.

    artifacts_dir/<model>/<version>-<digest>/   a published version (`store.artifacts`)
    artifacts_dir/<model>/.staging-<host>-<pid>-<token>/   a version being written
    artifacts_dir/<model>/profiles/<job>-<digest>.json     a job's reference profile
    s3://.../<model>/<version>-<digest>/...     the same keys in a store (`store.remote`), whose
                                                versions this host keeps verified copies of in
    RETRAIN_HOME/cache/artifacts/<model>/<version>-<digest>/
    RETRAIN_HOME/serving/<model>.json           a model's serving document
    locks_dir/slot-<n>.lock, job-<job>.lock     host slots
    logs_dir/<job>/<start>-<pid>.log            a retrain started by `jobs due --run`
    logs_dir/<name>.log                         notifications, warnings, metrics, serving, cron
    RETRAIN_HOME/report/                        `report`'s default output
    RETRAIN_HOME/owner.json                     the database that owns the home (and in a
                                                locks_dir or logs_dir outside it)

A name from a job file (a model, a job) is refused when it could leave its directory.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from retrain_cli.core.errors import ConfigError

URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")  # s3://, gs://, az://
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DIGEST_CHARS = 16  # of a digest in a directory or file name
STAGING_PREFIX = ".staging-"
SERVING = "serving"
PROFILES = "profiles"
REPORT = "report"
OWNER = "owner.json"


def is_url(path: str | None) -> bool:
    """A store's URL rather than a local path."""
    return path is not None and bool(URL_SCHEME.match(path))


def safe_name(model: str) -> str:
    """`model`, refused when it could leave a directory (`..`, `/`, absolute paths)."""
    if not _SAFE_NAME.match(model) or model in (".", ".."):
        raise ConfigError(f"model name {model!r} is not safe as a directory name")
    return model


def model_dir(root: Path, model: str) -> Path:
    """`root/model`, refusing names that could leave `root` (`..`, `/`, absolute paths)."""
    safe_name(model)
    base = root.resolve()
    path = (base / model).resolve()
    if not path.is_relative_to(base) or path == base:
        raise ConfigError(f"model name {model!r} escapes the artifact directory")
    return path


def version_dir(root: Path, model: str, version: int, digest: str) -> Path:
    """A published version's directory: its number and its manifest's digest."""
    return model_dir(root, model) / version_name(version, digest)


def version_name(version: int, digest: str) -> str:
    return f"{version}-{digest[:DIGEST_CHARS]}"


def version_key(store: str, model: str, version: int, digest: str) -> str:
    """A published version's prefix in a store: the same names as on disk."""
    return f"{model_key(store, model)}/{version_name(version, digest)}"


def model_key(store: str, model: str) -> str:
    return f"{store.rstrip('/')}/{safe_name(model)}"


def reference_profile_key(store: str, model: str, job: str, digest: str) -> str:
    return f"{model_key(store, model)}/{PROFILES}/{safe_name(job)}-{digest[:DIGEST_CHARS]}.json"


def artifact_cache(home: Path) -> Path:
    """This host's verified copies of the versions in a store, laid out as an artifacts_dir."""
    return home / "cache" / "artifacts"


def staging_dir(root: Path, model: str, host: str, pid: int, token: str) -> Path:
    """A version's files before it is registered, named by the process that writes them."""
    return model_dir(root, model) / f"{STAGING_PREFIX}{host}-{pid}-{token}"


def reference_profile(root: Path, model: str, job: str, digest: str) -> Path:
    return model_dir(root, model) / PROFILES / f"{job}-{digest[:DIGEST_CHARS]}.json"


def serving_dir(home: Path) -> Path:
    return home / SERVING


def serving_document(home: Path, model: str) -> Path:
    """`$RETRAIN_HOME/serving/<model>.json` (a name that could leave the directory is refused)."""
    checked = model_dir(serving_dir(home), model)
    return checked.with_name(f"{checked.name}.json")  # not with_suffix: `fraud.v2` keeps `.v2`


def slot_lock(locks_dir: Path, slot: int) -> Path:
    return locks_dir / f"slot-{slot}.lock"


def job_lock(locks_dir: Path, job: str) -> Path:
    return locks_dir / f"job-{job}.lock"


def job_logs(logs_dir: Path, job: str) -> Path:
    """A job's logs: each run's own (`run-<id>.log`), and what `jobs due --run` captured."""
    return logs_dir / job


def run_log(logs_dir: Path, job: str, started: datetime, pid: int) -> Path:
    """The stdout and stderr of a retrain that `jobs due --run` started."""
    return job_logs(logs_dir, job) / f"{started.strftime('%Y%m%dT%H%M%SZ')}-{pid}.log"


def log_file(logs_dir: Path, name: str) -> Path:
    """One of the command's own logs (`notifications.log`, `warnings.log`, ...), or a path given."""
    return logs_dir / name


def report_dir(home: Path) -> Path:
    return home / REPORT


def owner_mark(directory: Path) -> Path:
    return directory / OWNER
