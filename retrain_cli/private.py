"""Files and directories that only their owner can read: the state of retrain-cli holds models,
database rows, and logs whose webhook URLs carry tokens."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """`path`, created 0700 when missing (an existing directory keeps the mode its owner chose)."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    return path


def create_private(path: Path) -> None:
    """Create `path` empty and 0600 unless it exists (SQLite then opens it as a new database)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


def open_private_append(path: Path) -> BinaryIO:
    """`path` opened for appending bytes, created 0600 when missing."""
    private_dir(path.parent)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE), "ab")


def append_line(path: Path, line: str) -> None:
    """Append one line (passwords scrubbed: logs are output too)."""
    from retrain_cli.redaction import scrub

    with open_private_append(path) as handle:
        handle.write(scrub(line).encode("utf-8") + b"\n")
