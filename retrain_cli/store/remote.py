"""A version's files in an object store (`artifacts_dir: s3://...`), which has no rename.

- Keys: `<store>/<model>/<version>-<digest>/<file>`, as on disk; `<digest>` starts the
  manifest's sha256, which covers every other file's, so a version's keys include its digest.
- Upload: every file, then the manifest last, each create-only (`objects.put_once`): nothing is
  ever written over an object. Then every object is read back and compared with what was
  written; only then is the version's row committed (`training.registration`).
- Sweep: an upload killed or refused midway leaves objects no row points to. The next
  registration of the model, holding the model's lock with its own row flushed, removes every
  version prefix numbered at most its own that no row records: any upload still in flight
  holds that lock or a row of a higher number.
- Reads: preflight downloads and verifies from the store every time (`fetched`); scoring a
  champion and reading a training profile use this host's verified copy
  (`paths.artifact_cache`), fetched once (`local_directory`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from retrain_cli.core import paths
from retrain_cli.core.errors import DataError
from retrain_cli.store import artifacts, objects

_VERSION = re.compile(r"(?P<version>\d+)-[0-9a-f]{16}")


def parent(location: str) -> str:
    """The directory of a recorded artifact path, a store URL's or a local one's."""
    return location.rsplit("/", 1)[0]


def upload(staging: Path, prefix: str) -> None:
    """Put a staged version's files under `prefix`, each create-only, the manifest last."""
    for name in _files(staging):
        objects.put_once(objects.join(prefix, name), local=staging / name)


def verify(staging: Path, prefix: str) -> None:
    """Read every object of the version back from the store and compare it with the staged
    file it was written from."""
    for name in _files(staging):
        url = objects.join(prefix, name)
        if objects.sha256(url) != artifacts.sha256_file(staging / name):
            raise DataError(f"{url}: the store holds other bytes than were written")


def _files(staging: Path) -> list[str]:
    """Every file of a staged version by its path inside it (an ensemble's members are in
    folders, with manifests of their own), the manifest last."""
    found = (p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    named = sorted(n for n in found if n != artifacts.MANIFEST and not n.startswith("."))
    return [*named, artifacts.MANIFEST]


def _manifest(prefix: str, sha256: str) -> bytes:
    """The manifest's bytes, checked against the registered digest."""
    url = objects.join(prefix, artifacts.MANIFEST)
    data = objects.get_bytes(url)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise DataError(f"{url}: sha256 does not match the registered digest")
    return data


def fetch(prefix: str, sha256: str, into: Path) -> dict[str, Any]:
    """Download the version into the empty private directory `into` and check it as it is
    read: the manifest against `sha256`, every file it lists against the manifest (an
    ensemble's members are checked against their own manifests when they are loaded); the
    manifest."""
    data = _manifest(prefix, sha256)
    manifest: dict[str, Any] = json.loads(data)
    listed: dict[str, Any] = manifest["files"]
    names = objects.keys(prefix)
    missing = sorted(set(listed) - set(names))
    if missing:
        raise DataError(f"{objects.join(prefix, missing[0])} is missing: the manifest lists it")
    for name in names:
        if name == artifacts.MANIFEST or any(p in ("", ".", "..") for p in name.split("/")):
            continue  # the manifest as checked; nothing is written outside `into`
        (into / name).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        url = objects.join(prefix, name)
        digest = objects.sha256(url, copy_to=into / name)
        if name in listed and digest != listed[name]["sha256"]:
            raise DataError(f"{url}: sha256 does not match the manifest")
    artifacts.write_atomic(into / artifacts.MANIFEST, data)
    return manifest


@contextlib.contextmanager
def fetched(artifact_path: str, sha256: str, label: str) -> Iterator[Path]:
    """The version's directory, read from where it was recorded: a local one as it is (the
    caller verifies it), a store's downloaded and verified into a private temporary directory."""
    if not objects.is_url(artifact_path):
        artifacts.require_reachable(Path(artifact_path), label)
        yield Path(artifact_path).parent
        return
    with tempfile.TemporaryDirectory(prefix="retrain-fetch-") as directory:
        try:
            fetch(parent(artifact_path), sha256, Path(directory))
        except (DataError, objects.StoreError, OSError) as exc:
            raise DataError(f"{label}'s files in the store failed their check: {exc}") from exc
        yield Path(directory)


def local_directory(artifact_path: str, sha256: str, cache: Path, label: str) -> Path:
    """The version's directory on this host: the recorded one for a local path; for a store,
    this host's copy in `cache`, downloaded and verified the first time it is needed."""
    if not objects.is_url(artifact_path):
        artifacts.require_reachable(Path(artifact_path), label)
        return Path(artifact_path).parent
    prefix = parent(artifact_path)
    model, name = prefix.rsplit("/", 2)[-2:]
    if not _VERSION.fullmatch(name):
        raise DataError(f"{label} is recorded at {prefix}, which is not a version's prefix")
    target = paths.model_dir(cache, model) / name
    manifest = target / artifacts.MANIFEST
    if manifest.is_file() and artifacts.sha256_file(manifest) == sha256:
        return target  # its files are checked by the caller, against this manifest
    artifacts.discard(target)  # an altered copy is fetched again
    staging = artifacts.staging_dir(cache, model)
    try:
        fetch(prefix, sha256, staging)
    except BaseException:
        artifacts.discard(staging)
        raise
    keep(staging, target)
    return target


def keep(staging: Path, target: Path) -> None:
    """Move a verified version into this host's cache; when one is there already (another
    process fetched it), or the move fails, the staged copy is removed."""
    with contextlib.suppress(OSError):
        if not target.exists():
            os.rename(staging, target)
            return
    artifacts.discard(staging)


def sweep(store: str, model: str, recorded: set[str], up_to: int) -> list[str]:
    """Remove the version prefixes of `model` numbered at most `up_to` that no row records
    (call under `registry.lock_active`, with the caller's own row flushed)."""
    removed = []
    for name in sorted(objects.folders(paths.model_key(store, model))):
        numbered = _VERSION.fullmatch(name)
        if numbered is None or name in recorded or int(numbered["version"]) > up_to:
            continue
        prefix = objects.join(paths.model_key(store, model), name)
        objects.remove(prefix)
        removed.append(prefix)
    return removed
