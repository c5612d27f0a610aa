"""One database per RETRAIN_HOME: the home records the registry id of the database that owns it,
and a command run against another database is refused before it touches anything there.

What a database owns on this host (serving documents, locks and slots, logs, the report) is
mutable, so two databases sharing it would overwrite each other's decisions: one's `jobs due`
tick would rewrite the serving document the other's promotion wrote. The artifacts directory is
not claimed: every file in it is named by its digest and never overwritten, and a directory a
killed run left is removed only by its own host and database, so databases may share one. A
store's prefix is claimed (`cli.runtime.claim_home`, `store.objects.claim_prefix`): a
registration sweeps every version prefix its database has no row for.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from retrain_cli.core import paths
from retrain_cli.core.errors import ConfigError
from retrain_cli.core.private import FILE_MODE, private_dir

if TYPE_CHECKING:
    from retrain_cli.core.settings import Settings


def claim_home(settings: Settings, registry: str, *, write: bool = True) -> None:
    """`claim` (or, without `write`, only `check`) each directory the settings' database owns:
    the home, and a locks or logs directory outside it."""
    for directory in settings.owned_dirs:
        (claim if write else check)(directory, registry, settings.safe_database_url)


def claim(directory: Path, registry: str, database: str) -> None:
    """Record `registry` as the owner of `directory` when it has none; refuse any other.

    `database` (a URL without its password) is written beside the id, to name the owner in the
    refusal. The mark appears whole or not at all (a hard link of a complete file), so racing
    first commands agree on one owner."""
    mark = paths.owner_mark(directory)
    if not mark.is_file():
        private_dir(directory)
        _link_new(mark, {"registry": registry, "database": database})
    check(directory, registry, database)


def check(directory: Path, registry: str, database: str) -> None:
    """Refuse `registry` when another database owns `directory`; write nothing."""
    mark = paths.owner_mark(directory)
    if not mark.is_file():
        return
    owner = _read(mark)
    if owner.get("registry") != registry:
        raise ConfigError(
            f"{directory} belongs to another database ({owner.get('database', 'unknown')}, "
            f"registry {str(owner.get('registry'))[:12]}), not to {database} (registry "
            f"{registry[:12]}): give each database its own RETRAIN_HOME, or remove {mark} "
            "if that database is gone"
        )


def _link_new(mark: Path, document: dict[str, str]) -> None:
    tmp = mark.with_name(f".{mark.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process claimed it first
            os.link(tmp, mark)
    finally:
        tmp.unlink(missing_ok=True)


def _read(mark: Path) -> dict[str, str]:
    try:
        owner = json.loads(mark.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {mark}, which names the database owning it: {exc}") from exc
    if not isinstance(owner, dict):
        raise ConfigError(f"{mark} does not name the database owning its directory")
    return owner
