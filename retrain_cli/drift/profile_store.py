"""Where profiles live: JSON files under the artifacts directory, their sha256 in the tables.

- A job's profile of its reference window: `<artifacts>/<model>/profiles/<job>-<sha16>.json`
  (the same key under a store's prefix, written create-only),
  recorded in `auto_retraining_jobs.reference_profile` (path, sha256, the fingerprint of the
  window's files and of the job's bins and features it was built for, rows, built_at). It
  describes the job's reference window, which the job row declares, and it is replaced when
  that window changes: one per job, on the job's row.
- A version's profile of its training data: `profile.json` in the version's directory, listed
  with its sha256 in the manifest whose own digest is `model_version_management.sha256`. It
  describes what that version learned from, and is as immutable as the version; a store's
  version is read from this host's verified copy (`store.remote.local_directory`).

A file is never overwritten (its name holds its digest); a missing or altered file fails its
checksum with one line.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from retrain_cli.core import paths
from retrain_cli.core.durations import utcnow
from retrain_cli.core.errors import ConflictError, DataError
from retrain_cli.core.private import private_dir
from retrain_cli.data.profile import Profile
from retrain_cli.db.models import AutoRetrainingJob
from retrain_cli.store import artifacts, objects, remote
from retrain_cli.versions import registry

TRAINING_FILE = "profile.json"


def encode(profile: Profile) -> bytes:
    return profile.model_dump_json().encode("utf-8")


def write_reference(root: str, model: str, job: str, profile: Profile) -> tuple[str, str]:
    """Store a job's reference profile under `root`, a folder or a store's prefix; returns
    where it is and its sha256."""
    data = encode(profile)
    digest = hashlib.sha256(data).hexdigest()
    if paths.is_url(root):
        url = paths.reference_profile_key(root, model, job, digest)
        with contextlib.suppress(ConflictError):  # the same content under the same name
            objects.put_once(url, data=data)
        return url, digest
    path = paths.reference_profile(Path(root), model, job, digest)
    private_dir(path.parent)
    if not path.is_file():  # the same content under the same name otherwise
        artifacts.write_atomic(path, data)
    return str(path), digest


def read(location: str, sha256: str, rebuild_hint: str) -> Profile:
    """A stored profile (a file, or a store's object), checked against its recorded digest."""
    try:
        data = (
            objects.get_bytes(location) if paths.is_url(location) else Path(location).read_bytes()
        )
    except OSError as exc:
        raise DataError(
            f"profile {location} is unreadable ({exc.strerror}): {rebuild_hint}"
        ) from exc
    except objects.StoreError as exc:
        raise DataError(f"{exc}: {rebuild_hint}") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise DataError(
            f"profile {location}: sha256 does not match the recorded one: {rebuild_hint}"
        )
    try:
        return Profile.model_validate_json(data)
    except ValidationError as exc:
        raise DataError(
            f"profile {location} is not a profile this version reads: {rebuild_hint}"
        ) from exc


def recorded_reference(session: Session, job_id: int) -> dict[str, Any] | None:
    row = session.get(AutoRetrainingJob, job_id)
    return row.reference_profile if row is not None else None


def record_reference(
    session: Session, job_id: int, path: str, sha256: str, profile: Profile, source: Any
) -> dict[str, Any]:
    """Point the job at its new reference profile (the old file stays for other readers)."""
    row = session.get(AutoRetrainingJob, job_id)
    assert row is not None
    recorded = {
        "path": path,
        "sha256": sha256,
        "source": source,
        "rows": profile.rows,
        "built_at": utcnow().isoformat(),
    }
    row.reference_profile = recorded
    session.flush()
    return recorded


def training(session: Session, model: str, cache: Path) -> tuple[Profile, dict[str, Any]]:
    """The active version's training profile, checked through the version's manifest (a
    store's version from this host's verified copy in `cache`)."""
    version = registry.active_version(session, model)
    if version is None:
        raise DataError(f"model {model!r} has no active version to take the training profile of")
    label = f"{model} v{version.version}"
    directory = remote.local_directory(version.artifact_path, version.sha256, cache, label)
    manifest = artifacts.verify_manifest(directory, version.sha256)
    entry = manifest["files"].get(TRAINING_FILE)
    if entry is None:
        raise DataError(
            f"{label} was registered without a training profile: retrain it, or check against "
            "drift.reference: window"
        )
    hint = f"{label}'s files were altered"
    profile = read(str(directory / TRAINING_FILE), entry["sha256"], hint)
    return profile, {
        "path": f"{remote.parent(version.artifact_path)}/{TRAINING_FILE}",
        "sha256": entry["sha256"],
        "version": version.version,
    }
