"""Files and directories that only their owner can read: the state of retrain-cli holds models,
database rows, and logs whose webhook URLs carry tokens."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO

from retrain_cli.core.redaction import scrub

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """`path`, created 0700 when missing, with every missing parent 0700 too (`mkdir -p` would
    make those 0755); an existing directory keeps the mode its owner chose."""
    if not path.is_dir():
        for directory in reversed([path, *path.parents]):
            if not directory.is_dir():
                with contextlib.suppress(FileExistsError):
                    directory.mkdir(mode=DIR_MODE)
    return path


def create_private(path: Path) -> None:
    """Create `path` empty and 0600 unless it exists (SQLite then opens it as a new database)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


def open_private_append(path: Path) -> BinaryIO:
    """`path` opened for appending bytes, created 0600 when missing."""
    private_dir(path.parent)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE), "ab")


LOG_MAX_BYTES = 10 << 20
LOG_KEEP = 3


def append_rotating(path: Path, line: str) -> None:
    """`append_line`, first moving a log past LOG_MAX_BYTES to `.1` (`.1` to `.2`, and so on,
    keeping LOG_KEEP old files)."""
    try:
        full = path.stat().st_size >= LOG_MAX_BYTES
    except FileNotFoundError:
        full = False
    if full:
        for index in range(LOG_KEEP - 1, 0, -1):
            older = path.with_name(f"{path.name}.{index}")
            if older.exists():
                os.replace(older, path.with_name(f"{path.name}.{index + 1}"))
        os.replace(path, path.with_name(f"{path.name}.1"))
    append_line(path, line)


def append_line(path: Path, line: str) -> None:
    """Append one line (passwords scrubbed: logs are output too)."""

    with open_private_append(path) as handle:
        handle.write(scrub(line).encode("utf-8") + b"\n")


def write_private_text(path: Path, text: str) -> None:
    """Write `path` whole or not at all: a 0600 temp file beside it, flushed to disk, renamed
    into place (removed if anything fails), and the rename flushed too: after a power cut the
    file is the old one or the new one, never empty."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename into it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
