"""`jobs backfill`: drift and performance checks over past windows of a job's data, recorded with
their window bounds, once each however often it runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from retrain_cli.db.models import ModelDriftMonitoring, ModelPerformanceTracking
from retrain_cli.drift.compare import compare_windows
from retrain_cli.drift.rows import add_drift_check
from retrain_cli.ops.backfill import windows
from tests.conftest import Cli
from tests.helpers import window, write_job

NOW = "2026-03-01T12:00:00Z"
Scope = Callable[[], AbstractContextManager[Session]]


def _job(cli: Cli, folder: Path, **fields: object) -> None:
    """40 days of rows every 5 minutes; the last 10 drift; the predictions are the scored
    current rows."""
    folder.mkdir(parents=True, exist_ok=True)
    window(n=800, seed=1).to_parquet(folder / "ref.parquet")
    calm = window(n=288 * 30, seed=2)
    moved = window(n=288 * 10 + 144, shift=1.5, seed=3)
    current = pd.concat([calm, moved], ignore_index=True)
    current["ts"] = pd.date_range("2026-01-20", periods=len(current), freq="5min", tz="UTC")
    current.to_parquet(folder / "cur.parquet")
    current.to_parquet(folder / "preds.parquet")
    data = {
        "train": "ref.parquet",
        "reference": "ref.parquet",
        "current": "cur.parquet",
        "predictions": "preds.parquet",
    }
    fields.setdefault("data", data)
    path = write_job(folder, "j1", features=["f0", "f1", "colour"], **fields)
    result = cli("jobs", "apply", "-f", str(path))
    assert result.exit_code == 0, result.output


def _counts(session: Scope) -> tuple[int, int]:
    with session() as s:
        drift = s.scalar(
            select(func.count()).where(
                ModelDriftMonitoring.backfilled, ModelDriftMonitoring.scope == "dataset"
            )
        )
        perf = s.scalar(
            select(func.count()).where(
                ModelPerformanceTracking.backfilled, ModelPerformanceTracking.is_primary
            )
        )
    return drift or 0, perf or 0


def test_a_backfill_of_30_daily_windows_records_30_checks_once_however_often_it_runs(
    cli: Cli, session: Scope, tmp_path: Path
) -> None:
    _job(cli, tmp_path, thresholds={"performance": 0.7})
    args = ("jobs", "backfill", "j1", "--since", "30d", "--every", "1d", "--now", NOW, "--json")
    first = cli(*args)
    assert first.exit_code == 0, first.output
    document = json.loads(first.output)
    spans = document["windows"]
    assert len(spans) == 30 and spans[0]["start"].startswith("2026-01-30T00:00:00")
    assert spans[-1]["end"].startswith("2026-03-01T00:00:00")  # the day still running is not
    assert [w["drift"]["outcome"] for w in spans[:18]] == ["ok"] * 18
    assert {w["drift"]["outcome"] for w in spans[-10:]} == {"drifted"}
    assert {w["performance"]["outcome"] for w in spans} <= {"ok", "degraded"}
    assert _counts(session) == (30, 30)

    due = json.loads(cli("jobs", "due", "--now", NOW, "--json").output)
    assert due["due"] == []  # a backfilled window is history, not a trigger

    again = json.loads(cli(*args).output)
    assert {w["drift"]["outcome"] for w in again["windows"]} == {"recorded"}
    assert {w["performance"]["outcome"] for w in again["windows"]} == {"recorded"}
    longer = json.loads(cli(*args[:4], "42d", *args[5:]).output)
    assert [w["drift"]["outcome"] for w in longer["windows"][:5]] == ["no rows"] * 2 + ["ok"] * 3
    assert _counts(session) == (40, 40)  # only the ten new windows with rows

    with session() as s:
        first_day = s.scalars(
            select(ModelDriftMonitoring)
            .where(ModelDriftMonitoring.backfilled, ModelDriftMonitoring.scope == "dataset")
            .order_by(ModelDriftMonitoring.window_start)
        ).first()
        assert first_day is not None
        assert first_day.window_start == datetime(2026, 1, 20, tzinfo=UTC)
        assert first_day.checked_at == first_day.window_end == datetime(2026, 1, 21, tzinfo=UTC)
        assert first_day.n_current == 288  # the day's rows, not the whole current file
        s.execute(update(ModelDriftMonitoring).values(backfilled=False))
    live = json.loads(cli("jobs", "due", "--now", NOW, "--json").output)
    assert "drift" in json.dumps(live["due"])  # the same rows, had cron recorded them


def test_the_unique_key_admits_one_backfilled_verdict_per_job_and_window(
    cli: Cli, session: Scope, tmp_path: Path
) -> None:
    import pyarrow as pa

    from retrain_cli.drift.check import columns_for, settings_for
    from retrain_cli.jobs.store import effective_job, get_job, load_configs

    _job(cli, tmp_path)
    span = (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 2, tzinfo=UTC))
    reference, current = (pa.Table.from_pandas(window(n=200, seed=s)) for s in (1, 2))
    with session() as s:
        job = effective_job(get_job(s, "j1"), load_configs(s))
        for _ in range(2):
            found = compare_windows(
                reference,
                current,
                columns_for(job),
                settings_for(job),
                model=job.model,
                job=job.name,
                now=span[1],
            )
            add_drift_check(s, found, job.id)  # cron's checks: no key, any number
        add_drift_check(s, found, job.id, backfilled=span)
        with pytest.raises(IntegrityError), s.begin_nested():
            add_drift_check(s, found, job.id, backfilled=span)


def test_backfill_refuses_a_job_without_a_time_column_and_a_typo_sized_range(
    cli: Cli, tmp_path: Path
) -> None:
    _job(cli, tmp_path, time_column=None)
    result = cli("jobs", "backfill", "j1", "--now", NOW)
    assert result.exit_code == 1 and "no time_column" in result.output
    _job(cli, tmp_path / "b")
    typo = cli("jobs", "backfill", "j1", "--since", "365d", "--every", "1s", "--now", NOW)
    assert typo.exit_code == 2 and "at most 10000" in typo.output
    bad = cli("jobs", "backfill", "j1", "--every", "daily")
    assert bad.exit_code == 2 and "not a duration" in bad.output


def test_windows_are_aligned_and_only_ended_ones_are_checked() -> None:
    hours = windows(
        datetime(2026, 1, 1, 0, 30, tzinfo=UTC),
        datetime(2026, 1, 1, 3, 10, tzinfo=UTC),
        timedelta(hours=1),
    )
    assert [(a.hour, b.hour) for a, b in hours] == [(0, 1), (1, 2), (2, 3)]
    assert (
        windows(
            datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), timedelta(days=1)
        )
        == []
    )
