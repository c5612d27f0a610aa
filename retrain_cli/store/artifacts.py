"""Model artifacts on disk: safe paths, atomic writes, sha256 checksums, manifests.

A version's files live in `<artifacts>/<model>/<version>-<digest>/`, `<digest>` being the start of
its manifest's sha256: two databases that share one artifacts directory (dev and prod on one host)
never choose the same place, and nothing is ever published onto an existing directory. The files
are written into a private staging directory first and renamed into place when the version is
registered, so a reader never sees half a version. A model of several files records one digest:
that of `manifest.json`, which lists every other file with its own sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from retrain_cli.core import paths
from retrain_cli.core.errors import ConflictError, DataError
from retrain_cli.core.private import fsync_dir, private_dir
from retrain_cli.core.processes import pid_alive

_HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())  # no '-': it separates name parts
MANIFEST = "manifest.json"
_STAGING_NAME = re.compile(r"(?P<host>[^-]+)-(?P<pid>\d+)-[0-9a-f]{32}")
CHUNK = 1 << 20
UNREGISTERED = ".unregistered"  # in a published directory until its version row is committed


def staging_dir(root: Path, model: str) -> Path:
    """A fresh private directory to write a version's files into before it is registered.

    Its name says which process on which host made it, so that the staging directories of
    killed runs are removed here, by the next run of the model on the same host.
    """
    path = paths.staging_dir(root, model, _HOST, os.getpid(), uuid.uuid4().hex)
    remove_stale_staging(path.parent)
    private_dir(path.parent)  # artifacts/ and artifacts/<model>/ too: model names are private
    path.mkdir(mode=0o700)
    return path


def remove_stale_staging(parent: Path) -> list[Path]:
    """Remove the staging directories under `parent` whose process on this host is gone."""
    removed = []
    for path in parent.glob(f"{paths.STAGING_PREFIX}*") if parent.is_dir() else []:
        named = _STAGING_NAME.fullmatch(path.name.removeprefix(paths.STAGING_PREFIX))
        if named is None:  # predates host and pid in the name: stale once older than any run
            stale = time.time() - path.stat().st_mtime > 7 * 86400
        else:
            stale = named["host"] == _HOST and not pid_alive(int(named["pid"]))
        if stale:
            discard(path)
            removed.append(path)
    return removed


def require_reachable(manifest: Path, label: str) -> None:
    """One clear line when a version's files are not where it was registered (a host with its
    own RETRAIN_HOME cannot see the versions another host trained)."""
    if not manifest.is_file():
        raise DataError(
            f"{label}'s files are not reachable from {socket.gethostname()} at {manifest.parent}: "
            "every host that retrains, promotes or rolls back a model must share one "
            "artifacts_dir (see docs/many-hosts.md)"
        )


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory, fsync, then rename over `path`."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_json(path: Path, document: Any) -> None:
    write_atomic(path, json.dumps(document, indent=2, sort_keys=True).encode("utf-8"))


def sha256_file(path: Path, *, sync: bool = False) -> str:
    """The file's sha256; with `sync`, its data is also flushed to disk first."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if sync:
            os.fsync(handle.fileno())
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(directory: Path, primary: str, extra: dict[str, Any]) -> Path:
    """`manifest.json` listing every file in `directory` with its sha256 and size. Each file is
    fsynced as it is hashed (trainers write theirs in place), so that once the directory is
    renamed into place every file it lists is on disk."""
    files = {
        p.name: {"sha256": sha256_file(p, sync=True), "size": p.stat().st_size}
        for p in sorted(directory.iterdir())
        if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
    }
    fsync_dir(directory)
    path = directory / MANIFEST
    write_json(path, {**extra, "primary": primary, "files": files})
    return path


def verify(directory: Path, expected_sha256: str) -> dict[str, Any]:
    """Check the manifest's digest and every file it lists; return the manifest."""
    manifest = verify_manifest(directory, expected_sha256)
    for name, entry in manifest["files"].items():
        member = directory / name
        if not member.is_file() or sha256_file(member) != entry["sha256"]:
            raise DataError(f"artifact file {member} is missing or its sha256 does not match")
    return manifest


def verify_manifest(directory: Path, expected_sha256: str) -> dict[str, Any]:
    """The manifest, checked against the registered digest (the files it lists are not)."""
    path = directory / MANIFEST
    if not path.is_file():
        raise DataError(f"artifact {directory} has no {MANIFEST}")
    if sha256_file(path) != expected_sha256:
        raise DataError(f"artifact {path}: sha256 does not match the registered digest")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


def publish(staging: Path, target: Path, database: str) -> None:
    """Rename a staged version into place, never onto anything that exists. Until the version
    row commits, the directory holds a marker naming this process and `database` (a key without
    secrets), so that a run killed in between leaves nothing the next run does not remove."""
    if target.exists():
        raise ConflictError(f"{target} already exists: a published artifact is never overwritten")
    write_json(staging / UNREGISTERED, {"host": _HOST, "pid": os.getpid(), "database": database})
    os.rename(staging, target)
    fsync_dir(target.parent)


def registered(target: Path) -> None:
    """The version row committed: drop the marker (a leftover marker is harmless)."""
    with contextlib.suppress(OSError):
        (target / UNREGISTERED).unlink()


def remove_unregistered(parent: Path, database: str, recorded: set[str]) -> list[Path]:
    """Remove the published directories under `parent` whose run (on this host, for
    `database`) died before its version row committed; `recorded` names the directories that
    `database` has rows for, whose markers only outlived the commit."""
    removed = []
    for marker in parent.glob(f"*/{UNREGISTERED}") if parent.is_dir() else []:
        try:
            owner = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if owner.get("host") != _HOST or owner.get("database") != database:
            continue
        if pid_alive(int(owner.get("pid", 0))):
            continue
        if marker.parent.name in recorded:
            registered(marker.parent)
        else:
            discard(marker.parent)
            removed.append(marker.parent)
    return removed


def discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
