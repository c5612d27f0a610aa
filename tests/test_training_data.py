"""The training data's fingerprint: the same data, the same digest, in any process."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from retrain_cli.data.training import fingerprint

FRAME = """
import numpy as np, pandas as pd
frame = pd.DataFrame({
    "ts": pd.date_range("2025-01-01", periods=6, freq="h", tz="UTC"),
    "x": np.linspace(-1.0, 1.0, 6),
    "small": np.arange(6, dtype=np.int8),
    "flag": pd.array([True, None, False, True, None, False], dtype="boolean"),
    "count": pd.array([1, None, 3, 4, 5, None], dtype="Int64"),
    "segment": pd.Categorical(list("abcabc")),
    "name": ["u", "v", "w", "u", "v", "w"],
    "y": [0, 1, 0, 1, 1, 0],
})
"""


def make_frame() -> pd.DataFrame:
    scope: dict[str, pd.DataFrame] = {}
    exec(FRAME, scope)  # the same source builds the frame in the child process
    return scope["frame"]


@pytest.mark.slow
def test_the_same_data_has_the_same_digest_in_another_process() -> None:
    child = FRAME + (
        "import json\nfrom retrain_cli.data.training import fingerprint\n"
        "print(json.dumps(fingerprint(frame, 'ts')))"
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == fingerprint(make_frame(), "ts")


@pytest.mark.parametrize("column", ["x", "small", "flag", "count", "segment", "name", "y"])
def test_one_changed_value_changes_the_digest(column: str) -> None:
    frame = make_frame()
    changed = frame.copy()
    changed.loc[0, column] = frame.loc[1, column] if column != "flag" else False
    assert fingerprint(changed, "ts")["sha256"] != fingerprint(frame, "ts")["sha256"]


def test_it_reports_rows_and_time_range() -> None:
    result = fingerprint(make_frame(), "ts")
    assert result["rows"] == 6
    assert (result["time_min"], result["time_max"]) == (
        "2025-01-01 00:00:00+00:00",
        "2025-01-01 05:00:00+00:00",
    )
    assert len(result["sha256"]) == 64 and set(result["sha256"]) <= set("0123456789abcdef")


def test_the_fingerprint_needs_no_linux_only_call(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    expected = fingerprint(frame, None)
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # as on macOS
    assert fingerprint(frame, None) == expected


def test_text_timestamps_order_by_time_not_as_text() -> None:
    from retrain_cli.data.training import time_order

    text = pd.Series(["2026-01-10 00:00", "2026-1-9 00:00", "2026-02-01T00:00Z"])
    order = time_order(text, "ts")
    assert list(text.sort_values(key=lambda _: order, kind="stable")) == [
        "2026-1-9 00:00",
        "2026-01-10 00:00",
        "2026-02-01T00:00Z",
    ]  # as text, "2026-1-9" would sort last


def test_a_time_column_with_text_that_is_no_timestamp_is_an_error() -> None:
    from retrain_cli.core.errors import DataError
    from retrain_cli.data.training import time_order

    with pytest.raises(DataError, match="time column 'ts' has 2 values that are not timestamps"):
        time_order(pd.Series(["2026-01-10", "soon", None, "later"]), "ts")
