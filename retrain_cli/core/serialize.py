"""JSON-safe values: ISO times, and no NaN or infinity (PostgreSQL JSONB rejects them)."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from pathlib import Path
from typing import Any


def jsonable(value: Any) -> Any:
    """A copy of `value` made of dict, list, str, int, float, bool and None only. An object
    with a `document()` method is written as that document, another dataclass field by field.

    >>> jsonable({"auc": float("nan"), "at": datetime(2026, 1, 1)})
    {'auc': None, 'at': '2026-01-01T00:00:00'}
    """
    if hasattr(value, "document") and not isinstance(value, type):  # its own JSON document
        return jsonable(value.document())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")
