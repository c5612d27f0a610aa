"""Objects in a store named by URL (`s3://bucket/prefix/...`), through fsspec: its file system
(s3fs, gcsfs, adlfs), one-PUT writes, reads and listings, and the claim of a prefix by one
database.

Credentials come from the store's own standard chain (for S3: the environment, the shared config
and credentials files, the instance or pod role); `AWS_ENDPOINT_URL` points S3 at another server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from retrain_cli.core.errors import ConfigError, ConflictError, RetrainError
from retrain_cli.core.paths import is_url as is_url  # asked here by the data and the report
from retrain_cli.core.redaction import scrub

T = TypeVar("T")
PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs"}
OWNER = "owner.json"
CREATE_ONLY = {"s3", "s3a"}  # stores whose client writes with If-None-Match (s3fs mode="create")
CHUNK = 1 << 20


class StoreError(RetrainError):
    """A store could not be read or written: one line naming the URL, never its credentials."""


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of `url`, and the path in it."""
    scheme = url.split("://", 1)[0].lower()
    try:
        import fsspec

        return fsspec.core.url_to_fs(url)  # type: ignore[no-any-return]
    except ImportError as exc:
        package = PACKAGES.get(scheme, f"fsspec's {scheme} package")
        raise ConfigError(f"{url}: {scheme}:// needs {package} (pip install {package})") from exc
    except ValueError as exc:
        raise ConfigError(f"{url}: {scrub(first_line(exc))}") from exc


def join(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}"


def guarded(url: str, action: str, work: Callable[[], T]) -> T:
    try:
        return work()
    except RetrainError:
        raise
    except Exception as exc:  # the store's client: a refusal, an unreachable endpoint
        raise StoreError(f"cannot {action} {url}: {scrub(first_line(exc))}") from exc


def put_text(url: str, text: str) -> None:
    """Write one object in one PUT: a reader sees the old object or the new one, never a part."""
    fs, path = filesystem(url)
    guarded(url, "write", lambda: fs.pipe_file(path, text.encode("utf-8")))


def get_text(url: str) -> str | None:
    """The object's text, or None when there is none."""
    fs, path = filesystem(url)

    def read() -> str | None:
        try:
            data: bytes = fs.cat_file(path)
        except FileNotFoundError:
            return None
        return data.decode("utf-8")

    return guarded(url, "read", read)


def put_once(url: str, local: Path | None = None, data: bytes | None = None) -> None:
    """Write a new object from a file or bytes, never over one that exists: create-only where
    the store's client honours it (S3's `If-None-Match: *`, also for a multipart upload's
    completion), and checked before the write everywhere. An existing object is a
    ConflictError; the caller verifies what it wrote afterwards."""
    fs, path = filesystem(url)
    conditional = {"mode": "create"} if CREATE_ONLY & set(_protocols(fs)) else {}

    def put() -> None:
        if fs.exists(path):
            raise FileExistsError(path)
        if local is not None:
            fs.put_file(str(local), path, **conditional)
        else:
            fs.pipe_file(path, data, **conditional)

    try:
        guarded(url, "write", put)
    except StoreError as exc:
        if isinstance(exc.__cause__, FileExistsError):
            raise ConflictError(f"{url} exists: a published object is never overwritten") from exc
        raise


def get_bytes(url: str) -> bytes:
    """The object's bytes; a missing object is a StoreError naming it."""
    fs, path = filesystem(url)
    return guarded(url, "read", lambda: bytes(fs.cat_file(path)))


def sha256(url: str, copy_to: Path | None = None) -> str:
    """The sha256 of the object's bytes as the store serves them now; with `copy_to`, they are
    also written there, to a new private file, in the same read."""
    fs, path = filesystem(url)

    def read() -> str:
        digest = hashlib.sha256()
        with contextlib.ExitStack() as stack:
            source = stack.enter_context(fs.open(path, "rb"))
            target = stack.enter_context(open(copy_to, "xb")) if copy_to else None
            if copy_to is not None:
                copy_to.chmod(0o600)
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                if target is not None:
                    target.write(chunk)
        return digest.hexdigest()

    return guarded(url, "read", read)


def folders(prefix: str) -> set[str]:
    """The names of the folders (common prefixes) directly under `prefix`."""
    return {_name(e) for e in _listing(prefix) if e["type"] == "directory"}


def names(prefix: str, suffix: str) -> set[str]:
    """The names under `prefix` ending in `suffix`, without it, from one listing."""
    found = (_name(e) for e in _listing(prefix))
    return {name.removesuffix(suffix) for name in found if name.endswith(suffix)}


def keys(prefix: str) -> list[str]:
    """Every object under `prefix`, at any depth, by its name below it."""
    fs, path = filesystem(prefix)
    root = path.rstrip("/") + "/"

    def found() -> list[str]:
        fs.invalidate_cache(path)
        return sorted(str(key)[len(root) :] for key in fs.find(path) if str(key).startswith(root))

    return guarded(prefix, "list", found)


def _listing(prefix: str) -> list[dict[str, Any]]:
    fs, path = filesystem(prefix)

    def listed() -> list[dict[str, Any]]:
        fs.invalidate_cache(path)
        try:
            return list(fs.ls(path, detail=True))
        except FileNotFoundError:
            return []

    return guarded(prefix, "list", listed)


def _name(entry: dict[str, Any]) -> str:
    return str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]


def remove(prefix: str) -> None:
    """Remove every object under `prefix` (none is no error)."""
    fs, path = filesystem(prefix)

    def rm() -> None:
        with contextlib.suppress(FileNotFoundError):
            fs.rm(path, recursive=True)
        fs.invalidate_cache(path)

    guarded(prefix, "remove", rm)


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def claim_prefix(prefix: str, registry: str, database: str) -> None:
    """Record `registry` as the owner of `prefix` when it has none, and refuse any other: two
    databases never share one store's documents (as they never share a RETRAIN_HOME). A store
    has no link to create a mark whole and once, so the mark is read again after it is
    written: of two first commands racing, the one whose mark was overwritten stops."""
    mark = join(prefix, OWNER)
    owner = _owner(mark)
    if owner is None:
        put_text(mark, json.dumps({"registry": registry, "database": database}, sort_keys=True))
        owner = _owner(mark)
    if owner is None or owner.get("registry") != registry:
        named = "unknown" if owner is None else owner.get("database", "unknown")
        raise ConfigError(
            f"{prefix} belongs to another database ({named}), not to {database} (registry "
            f"{registry[:12]}): give each database its own prefix, or remove {mark} if that "
            "database is gone"
        )


def _owner(mark: str) -> dict[str, Any] | None:
    text = get_text(mark)
    if text is None:
        return None
    try:
        owner = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"cannot read {mark}, which names the database owning it") from exc
    return owner if isinstance(owner, dict) else None


def first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__
