"""Where profiles live: JSON files under the artifacts directory, their sha256 in the tables.

- A job's profile of its reference window: `<artifacts>/<model>/profiles/<job>-<sha16>.json`,
  recorded in `auto_retraining_jobs.reference_profile` (path, sha256, the fingerprint of the
  window's files and of the job's bins and features it was built for, rows, built_at). It
  describes the job's reference window, which the job row declares, and it is replaced when
  that window changes: one per job, on the job's row.
- A version's profile of its training data: `profile.json` in the version's directory, listed
  with its sha256 in the manifest whose own digest is `model_version_management.sha256`. It
  describes what that version learned from, and is as immutable as the version.

A file is never overwritten (its name holds its digest); a missing or altered file fails its
checksum with one line.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from retrain_cli.core import paths
from retrain_cli.core.durations import utcnow
from retrain_cli.core.errors import DataError
from retrain_cli.core.private import private_dir
from retrain_cli.data.profile import Profile
from retrain_cli.db.models import AutoRetrainingJob
from retrain_cli.store import artifacts
from retrain_cli.versions import registry

TRAINING_FILE = "profile.json"


def encode(profile: Profile) -> bytes:
    return profile.model_dump_json().encode("utf-8")


def write_reference(root: Path, model: str, job: str, profile: Profile) -> tuple[Path, str]:
    """Store a job's reference profile; returns its path and sha256."""
    data = encode(profile)
    digest = hashlib.sha256(data).hexdigest()
    path = paths.reference_profile(root, model, job, digest)
    private_dir(path.parent)
    if not path.is_file():  # the same content under the same name otherwise
        artifacts.write_atomic(path, data)
    return path, digest


def read(path: Path, sha256: str, rebuild_hint: str) -> Profile:
    """A stored profile, checked against its recorded digest."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"profile {path} is unreadable ({exc.strerror}): {rebuild_hint}") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise DataError(f"profile {path}: sha256 does not match the recorded one: {rebuild_hint}")
    try:
        return Profile.model_validate_json(data)
    except ValidationError as exc:
        raise DataError(
            f"profile {path} is not a profile this version reads: {rebuild_hint}"
        ) from exc


def recorded_reference(session: Session, job_id: int) -> dict[str, Any] | None:
    row = session.get(AutoRetrainingJob, job_id)
    return row.reference_profile if row is not None else None


def record_reference(
    session: Session, job_id: int, path: Path, sha256: str, profile: Profile, source: Any
) -> dict[str, Any]:
    """Point the job at its new reference profile (the old file stays for other readers)."""
    row = session.get(AutoRetrainingJob, job_id)
    assert row is not None
    recorded = {
        "path": str(path),
        "sha256": sha256,
        "source": source,
        "rows": profile.rows,
        "built_at": utcnow().isoformat(),
    }
    row.reference_profile = recorded
    session.flush()
    return recorded


def training(session: Session, model: str) -> tuple[Profile, dict[str, Any]]:
    """The active version's training profile, checked through the version's manifest."""
    version = registry.active_version(session, model)
    if version is None:
        raise DataError(f"model {model!r} has no active version to take the training profile of")
    label = f"{model} v{version.version}"
    directory = Path(version.artifact_path).parent
    artifacts.require_reachable(directory / artifacts.MANIFEST, label)
    manifest = artifacts.verify_manifest(directory, version.sha256)
    entry = manifest["files"].get(TRAINING_FILE)
    if entry is None:
        raise DataError(
            f"{label} was registered without a training profile: retrain it, or check against "
            "drift.reference: window"
        )
    hint = f"{label}'s files were altered"
    profile = read(directory / TRAINING_FILE, entry["sha256"], hint)
    return profile, {
        "path": str(directory / TRAINING_FILE),
        "sha256": entry["sha256"],
        "version": version.version,
    }
