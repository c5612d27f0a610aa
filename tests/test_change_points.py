"""Change points: since when the error level changed, by river's ADWIN and Page-Hinkley."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.db.models import ModelPerformanceTracking
from retrain_cli.performance import change_points
from retrain_cli.statistics import tasks
from tests.conftest import Cli
from tests.helpers import write_job

pytest.importorskip("river")

SessionFactory = Callable[[], AbstractContextManager[Session]]
CHANGE = 3000
# the largest delays seen over 20 streams, with margin: ADWIN 103 rows, Page-Hinkley 332
WITHIN = {"adwin": 200, "page_hinkley": 500}


def scored(n: int, change: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores whose error grows at row `change` (mean squared error about 0.08
    before, 0.27 after)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.5).astype(float)
    noise = np.where(np.arange(n) < change, 0.25, 0.45)
    away = np.where(labels == 1, -1, 1) * rng.random(n) * noise * 2
    return labels, np.clip(labels + away, 0, 1)


@pytest.mark.parametrize("method", ["adwin", "page_hinkley"])
@pytest.mark.parametrize("seed", range(5))
def test_one_change_is_found_soon_after_it_and_never_before(method: str, seed: int) -> None:
    labels, scores = scored(6000, CHANGE, seed)
    found = change_points.change_points(tasks.row_losses("binary", labels, scores), method, {})
    assert found and CHANGE <= found[0].index <= CHANGE + WITHIN[method]
    assert found[0].before is not None and found[0].before < 0.12
    assert found[0].after is not None and found[0].after > 0.2


@pytest.mark.parametrize("method", ["adwin", "page_hinkley"])
def test_streams_without_a_change_raise_no_alarm(method: str) -> None:
    alarms = 0
    for seed in range(20):
        labels, scores = scored(6000, 10**9, 100 + seed)
        alarms += len(change_points.detect(tasks.row_losses("binary", labels, scores), method, {}))
    assert alarms == 0


def setup(cli: Cli, folder: Path, **spec: Any) -> pd.DataFrame:
    labels, scores = scored(6000, CHANGE, seed=7)
    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2026-01-01", periods=6000, freq="min", tz="UTC"),
            "y": labels,
            "score": scores,
        }
    )
    frame.sample(frac=1.0, random_state=0).to_parquet(folder / "preds.parquet")  # any order
    job = write_job(
        folder,
        "j1",
        data={"train": "t.parquet", "predictions": "preds.parquet"},
        performance={"change_points": spec},
    )
    assert cli("jobs", "apply", "-f", str(job)).exit_code == 0
    return frame


@pytest.mark.parametrize("method", ["adwin", "page_hinkley"])
def test_perf_check_says_since_when_the_error_level_changed(
    cli: Cli, tmp_path: Path, session: SessionFactory, method: str
) -> None:
    frame = setup(cli, tmp_path, method=method)
    result = cli("perf", "check", "j1", "--json")
    assert result.exit_code in (0, 3), result.output
    (checked,) = json.loads(result.stdout)["results"]
    first = checked["change_points"][0]
    changed = frame["ts"].iloc[CHANGE]
    at = pd.Timestamp(first["at"])
    assert changed <= at <= changed + pd.Timedelta(minutes=WITHIN[method])
    with session() as s:
        rows = s.scalars(
            select(ModelPerformanceTracking).where(
                ModelPerformanceTracking.metric == f"change_point:{method}"
            )
        ).all()
    assert min(r.window_start for r in rows if r.window_start) == at.to_pydatetime()
    assert not any(r.is_primary for r in rows)
    text = cli("perf", "check", "j1").stdout
    assert f"change point ({method}): the error level changed at {at:%Y-%m-%d %H:%M}" in text


def test_without_river_a_job_asking_for_change_points_says_how_to_install_it(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session: SessionFactory
) -> None:
    setup(cli, tmp_path, method="adwin")
    monkeypatch.setitem(sys.modules, "river", None)  # what an install without it sees
    result = cli("perf", "check", "j1")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: j1: change points use river: pip install 'retrain-cli[monitoring]'"
    )
    with session() as s:
        assert s.scalars(select(ModelPerformanceTracking)).first() is None


def test_adwin_takes_no_page_hinkley_parameters(cli: Cli, tmp_path: Path) -> None:
    job = write_job(tmp_path, "j1", performance={"change_points": {"threshold": 20}})
    result = cli("jobs", "apply", "-f", str(job))
    assert result.exit_code == 1
    assert "adwin takes delta only" in result.stderr
