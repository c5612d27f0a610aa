"""Reference profiles: the profile mode of `drift check` against the exact mode, streaming in
bounded batches, the stored profile's round trip and checksum, datasets, and mismatches."""

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.compute import local
from retrain_cli.core.errors import DataError, JobSpecError
from retrain_cli.data import profile as profiles
from retrain_cli.data import sources, streaming
from retrain_cli.data import summary as window_summary
from retrain_cli.data.columns import Columns
from retrain_cli.data.sources import file_source
from retrain_cli.db.models import AutoRetrainingJob, ModelDriftMonitoring
from retrain_cli.drift import compare, profile_check, profile_store
from retrain_cli.drift.compare import DriftSettings, Outputs
from retrain_cli.jobs.files import validate_job
from retrain_cli.statistics import drift
from tests.conftest import Cli
from tests.helpers import published, training_frame, window, write_job, write_training_job

SessionFactory = Callable[[], AbstractContextManager[Session]]
BINNED = ("psi", "kl", "js", "hellinger", "chi2_stat", "chi2_pvalue")
ORDERED = ("ks_stat", "wasserstein")


def _frame(kind: str, n: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    if kind == "ties":
        x = rng.integers(0, 5, n).astype(float) + (shift > 0)
    elif kind == "heavy_tails":
        x = rng.standard_t(1.5, n) * (1 + shift)
    elif kind == "missing":
        x = rng.normal(shift, 1, n)
        x[rng.random(n) < 0.3] = np.nan
    else:
        x = rng.normal(shift, 1, n)
    colours = ["red", "green", "blue", "violet"] if shift > 0.5 else ["red", "green", "blue"]
    return pd.DataFrame({"x": x, "colour": rng.choice(colours, n)})


def _both_modes(
    reference: pd.DataFrame, current: pd.DataFrame, batch_rows: int = 97
) -> tuple[compare.DriftResult, compare.DriftResult, window_summary.WindowSummary]:
    columns = Columns(features=None)
    settings = DriftSettings(threshold=0.2, all_statistics=True)
    ref, cur = pa.Table.from_pandas(reference), pa.Table.from_pandas(current)
    exact = compare.compare_windows(ref, cur, columns, settings, model="m", job=None, now=NOW)
    profile = local.profile_table(ref, columns, settings.bins, "reference window")
    summary = window_summary.WindowSummary(profile, ["x", "colour"], ordered=True)
    for batch in cur.to_batches(max_chunksize=batch_rows):
        summary.add(batch)
    assert summary.peak_rows == min(batch_rows, len(current))
    approx = profile_check.summary_result(
        summary, Outputs(), settings, model="m", job=None, now=NOW
    )
    return exact, approx, summary


NOW = pd.Timestamp("2026-06-01T12:00:00Z").to_pydatetime()
CASES = [
    (kind, shift)
    for kind in ("normal", "ties", "heavy_tails", "missing")
    for shift in (0.0, 0.1, 1.0)
]


@pytest.mark.parametrize(("kind", "shift"), CASES)
def test_binned_statistics_and_decisions_equal_the_exact_mode(kind: str, shift: float) -> None:
    exact, approx, _ = _both_modes(_frame(kind, 4000, 1, 0.0), _frame(kind, 3000, 2, shift))
    assert approx.drifted == exact.drifted and approx.drift_share == exact.drift_share
    for e, p in zip(exact.features, approx.features, strict=True):
        assert (p.feature, p.drifted, p.n_reference, p.n_current) == (
            e.feature,
            e.drifted,
            e.n_reference,
            e.n_current,
        )
        assert (p.missing_rate_ref, p.missing_rate_cur) == (e.missing_rate_ref, e.missing_rate_cur)
        for name in BINNED:
            if name in e.metrics:
                assert p.metrics[name] == pytest.approx(e.metrics[name], rel=0, abs=1e-12), name
        assert p.histogram == e.histogram
        assert p.metrics.get("new_categories") == e.metrics.get("new_categories")


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "shift"), CASES)
def test_ks_and_wasserstein_are_within_the_stated_bound(kind: str, shift: float) -> None:
    exact, approx, _ = _both_modes(
        _frame(kind, 60_000, 1, 0.0), _frame(kind, 50_000, 2, shift), batch_rows=4096
    )
    e, p = exact.features[0], approx.features[0]
    bound = p.metrics["approximate"]
    assert 0 < bound["ks_stat"] < 0.005  # both sketches compacted: about 0.19% each
    for name in ORDERED:
        assert abs(p.metrics[name] - e.metrics[name]) <= bound[name], name
    pvalue = drift.ks_asymptotic_pvalue(p.metrics["ks_stat"], p.n_reference, p.n_current)
    assert p.metrics["ks_pvalue"] == pvalue


def test_sketches_that_hold_every_value_give_the_exact_statistics() -> None:
    exact, approx, _ = _both_modes(_frame("ties", 900, 1, 0.0), _frame("normal", 800, 2, 0.3))
    e, p = exact.features[0], approx.features[0]
    assert p.metrics["approximate"]["ks_stat"] == 0.0
    assert p.metrics["ks_stat"] == pytest.approx(e.metrics["ks_stat"], abs=1e-12)
    assert p.metrics["wasserstein"] == pytest.approx(e.metrics["wasserstein"], abs=1e-12)


def test_rare_categories_beyond_the_cap_share_one_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profiles, "MAX_CATEGORIES", 3)
    reference = pd.DataFrame({"c": list("aaaabbbccd"), "x": np.arange(10.0)})
    profile = local.profile_table(
        pa.Table.from_pandas(reference), Columns(features=["c"]), 10, "reference window"
    )
    column = profile.columns["c"]
    assert isinstance(column, profiles.CategoricalColumn)
    assert (column.counts, column.other) == ({"a": 4, "b": 3, "c": 2}, 1)
    summary = window_summary.WindowSummary(profile, ["c"], ordered=False)
    summary.add(pa.RecordBatch.from_pandas(pd.DataFrame({"c": list("abdeee")})))
    _, histogram = summary.compare("c")
    assert histogram.labels == [profiles.OTHER, "a", "b", "c"]
    assert histogram.current == pytest.approx([4 / 6, 1 / 6, 1 / 6, 0.0])


@pytest.mark.parametrize("layout", ["file", "dataset"])
def test_a_window_in_many_small_row_groups_is_held_a_bounded_number_of_rows_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    monkeypatch.setattr(streaming, "BATCH_ROWS", 64)
    table = pa.Table.from_pandas(_frame("normal", 10_000, 3, 0.0))
    (tmp_path / "cur").mkdir()
    for part in range(2):
        half = table.slice(part * 5000, 5000)
        pq.write_table(half, tmp_path / "cur" / f"{part}.parquet", row_group_size=50)
    pq.write_table(table, tmp_path / "cur.parquet", row_group_size=50)
    source = file_source(tmp_path / ("cur.parquet" if layout == "file" else "cur"))
    held = [b.num_rows for b in streaming.iter_batches(source, "current", ["x", "colour"])]
    assert sum(held) == 10_000 and max(held) <= 64


def _setup(folder: Path, cli: Cli, name: str = "j1", **fields: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "ref.parquet").exists():
        window(3000, seed=1).to_parquet(folder / "ref.parquet")
        window(3000, seed=2, shift=0.4).to_parquet(folder / "cur.parquet")
    result = cli("jobs", "apply", "-f", str(write_job(folder, name, **fields)))
    assert result.exit_code == 0, result.stderr


def _checked(cli: Cli, *names: str) -> list[dict[str, object]]:
    result = cli("drift", "check", *names, "--json")
    assert result.exit_code in (0, 3), result.stderr
    checked: list[dict[str, object]] = json.loads(result.stdout)["results"]
    return checked


def test_a_stored_profile_gives_the_exact_modes_binned_results_on_both_backends(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    _setup(tmp_path, cli, "exact", drift={"mode": "exact", "all_statistics": True})
    _setup(tmp_path, cli, "byprofile", drift={"mode": "profile", "all_statistics": True})
    built = cli("drift", "profile", "byprofile", "--json")
    assert built.exit_code == 0, built.stderr
    (made,) = json.loads(built.stdout)["results"]
    with session() as s:
        job = s.scalars(
            select(AutoRetrainingJob).where(AutoRetrainingJob.name == "byprofile")
        ).one()
        assert job.reference_profile is not None
        assert job.reference_profile["sha256"] == made["sha256"]
        assert job.reference_profile["path"] == made["path"]
    exact, approx = _checked(cli, "exact", "byprofile")
    assert (exact["mode"], approx["mode"]) == ("exact", "profile")
    assert approx["profile"]["built"] is False and approx["profile"]["sha256"] == made["sha256"]
    assert approx["drifted"] == exact["drifted"]
    for e, p in zip(exact["features"], approx["features"], strict=True):  # type: ignore[call-overload]
        assert p["drifted"] == e["drifted"]
        for name in BINNED:
            if name in e["metrics"]:
                assert p["metrics"][name] == pytest.approx(e["metrics"][name], rel=0, abs=1e-12)
    with session() as s:
        dataset = s.scalars(
            select(ModelDriftMonitoring).where(ModelDriftMonitoring.scope == "dataset")
        ).all()
    assert sorted(r.metrics["mode"] for r in dataset) == ["exact", "profile"]


@pytest.mark.slow
def test_a_check_builds_a_missing_profile_and_rebuilds_it_when_the_window_or_job_changes(
    cli: Cli, tmp_path: Path
) -> None:
    _setup(tmp_path, cli, drift={"mode": "profile"})
    (first,) = _checked(cli, "j1")
    (second,) = _checked(cli, "j1")
    assert (first["profile"]["built"], second["profile"]["built"]) == (True, False)  # type: ignore[index]
    window(2000, seed=5).to_parquet(tmp_path / "ref.parquet")
    (third,) = _checked(cli, "j1")
    assert third["profile"]["built"] is True and third["n_reference"] == 2000  # type: ignore[index]
    _setup(tmp_path, cli, drift={"mode": "profile", "bins": 5})
    (rebinned,) = _checked(cli, "j1")
    assert rebinned["profile"]["built"] is True  # type: ignore[index]
    assert len(rebinned["features"][0]["histogram"]["labels"]) == 5  # type: ignore[index]
    _setup(tmp_path, cli, drift={"mode": "profile", "bins": 5}, features=["f0", "colour"])
    (narrowed,) = _checked(cli, "j1")
    assert narrowed["profile"]["built"] is True  # type: ignore[index]
    assert [f["feature"] for f in narrowed["features"]] == ["f0", "colour"]  # type: ignore[index]


@pytest.mark.parametrize("damage", ["tamper", "delete"])
def test_an_altered_or_missing_profile_fails_with_one_line(
    cli: Cli, tmp_path: Path, damage: str
) -> None:
    _setup(tmp_path, cli, drift={"mode": "profile"})
    made = json.loads(cli("drift", "profile", "j1", "--json").stdout)["results"][0]
    path = Path(made["path"])
    if damage == "tamper":
        path.write_text(path.read_text().replace('"rows":3000', '"rows":3001', 1))
    else:
        path.unlink()
    result = cli("drift", "check", "j1")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert "j1" in line and str(path) in line and "drift profile j1" in line


def test_a_column_the_profile_lacks_or_whose_type_changed_is_named(
    cli: Cli, tmp_path: Path
) -> None:
    _setup(tmp_path, cli, drift={"mode": "profile"})
    assert cli("drift", "profile", "j1").exit_code == 0
    current = window(3000, seed=2)
    current.assign(extra=1.0).to_parquet(tmp_path / "cur.parquet")
    added = cli("drift", "check", "j1")
    assert added.exit_code == 1 and "column 'extra'" in added.stderr
    current.assign(f1=current["f1"].astype(str)).to_parquet(tmp_path / "cur.parquet")
    changed = cli("drift", "check", "j1")
    assert changed.exit_code == 1
    assert "'f1' is numeric in the profile but categorical" in changed.stderr


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["hive", "glob", "csv"])
def test_datasets_and_csv_windows_stream_to_the_exact_modes_results(
    cli: Cli, tmp_path: Path, layout: str
) -> None:
    reference, current = window(2000, seed=1), window(2500, seed=2, shift=0.5)
    current["day"] = np.repeat(np.arange(5), 500)
    if layout == "hive":
        pq.write_to_dataset(pa.Table.from_pandas(current), tmp_path / "cur", ["day"])
        data_current = "cur/"
    elif layout == "glob":
        (tmp_path / "parts").mkdir()
        for day, part in current.groupby("day"):
            part.to_parquet(tmp_path / "parts" / f"part-{day}.parquet")
        data_current = "parts/*.parquet"
    else:
        current.to_csv(tmp_path / "cur.csv", index=False)
        data_current = "cur.csv"
    reference.to_parquet(tmp_path / "ref.parquet")
    data = {"train": "ref.parquet", "reference": "ref.parquet", "current": data_current}
    features = ["f0", "f1", "colour"]
    for name, mode in (("e", "exact"), ("p", "profile")):
        _setup(tmp_path, cli, name, data=data, features=features, drift={"mode": mode})
    exact, approx = _checked(cli, "e", "p")
    assert approx["mode"] == "profile" and approx["n_current"] == exact["n_current"] == 2500
    for e, p in zip(exact["features"], approx["features"], strict=True):  # type: ignore[call-overload]
        assert p["metrics"]["psi"] == pytest.approx(e["metrics"]["psi"], rel=0, abs=1e-12)


@pytest.mark.slow
def test_auto_takes_the_profile_mode_past_exact_max_rows(cli: Cli, tmp_path: Path) -> None:
    _setup(tmp_path, cli, "small", drift={"exact_max_rows": 10_000})
    _setup(tmp_path, cli, "large", drift={"exact_max_rows": 1000})
    small, large = _checked(cli, "small", "large")
    assert (small["mode"], large["mode"]) == ("exact", "profile")


def test_training_reference_is_checked_by_profile_only() -> None:
    job = {
        "name": "j",
        "model": "m",
        "type": "lightgbm",
        "data": {"train": "t.parquet", "current": "c.parquet"},
        "target": "y",
        "drift": {"reference": "training", "mode": "exact"},
    }
    with pytest.raises(JobSpecError, match="reference: training"):
        validate_job(job, base_dir=Path("."), source="j.yaml")


@pytest.mark.slow
def test_drift_against_the_active_versions_training_profile(cli: Cli, tmp_path: Path) -> None:
    spec = write_training_job(
        tmp_path, data={"train": "train.parquet", "current": "cur.parquet"}, features=None
    )
    spec.write_text(spec.read_text() + "drift: {reference: training}\n")
    assert cli("jobs", "apply", "-f", str(spec)).exit_code == 0
    pd.read_parquet(tmp_path / "train.parquet").to_parquet(tmp_path / "cur.parquet")
    before = cli("drift", "check", "j1")
    assert before.exit_code == 1 and "no active version" in before.stderr
    assert cli("retrain", "j1").exit_code == 0
    (checked,) = _checked(cli, "j1")
    assert checked["mode"] == "profile" and checked["profile"]["version"] == 1  # type: ignore[index]
    assert checked["profile"]["built_from"] == "training data"  # type: ignore[index]
    assert checked["drifted"] is False


def test_a_profile_survives_its_json_round_trip() -> None:
    table = pa.Table.from_pandas(_frame("missing", 5000, 1, 0.0))
    built = local.profile_table(table, Columns(features=None), 10, "reference window")
    read = profiles.Profile.model_validate_json(profile_store.encode(built))
    assert read == built
    numeric = read.columns["x"]
    assert isinstance(numeric, profiles.NumericColumn)
    sketch = profiles.sketch_of(numeric)
    assert sketch.n == numeric.n == 5000 - numeric.missing
    assert (sketch.get_min_value(), sketch.get_max_value()) == (numeric.min, numeric.max)


def test_the_html_report_draws_a_profile_checks_histograms(cli: Cli, tmp_path: Path) -> None:
    _setup(tmp_path, cli, drift={"mode": "profile"})
    result = cli("drift", "check", "j1", "--report", str(tmp_path / "drift.html"))
    assert result.exit_code in (0, 3), result.stderr
    report = (tmp_path / "drift.html").read_text()
    # the features, the score and the target (its labels have arrived)
    assert report.count("<svg") == 5 and "<b>f0" in report and "red: reference" in report


@pytest.mark.parametrize(
    ("path", "valid"),
    [("windows/current/", True), ("parts/*.parquet", True), ("cur.csv", True), ("cur.txt", False)],
)
def test_a_window_is_a_file_a_directory_or_a_glob(path: str, valid: bool) -> None:
    job = {
        "name": "j",
        "model": "m",
        "type": "lightgbm",
        "data": {"train": "t.parquet", "current": path},
        "target": "y",
    }
    if valid:
        validate_job(job, base_dir=Path("."), source="j.yaml")
    else:
        with pytest.raises(JobSpecError, match="a directory"):
            validate_job(job, base_dir=Path("."), source="j.yaml")


def test_training_data_reads_from_a_hive_partitioned_directory(tmp_path: Path) -> None:
    frame = window(300, seed=1).assign(day=np.repeat([1, 2, 3], 100))
    pq.write_to_dataset(pa.Table.from_pandas(frame), tmp_path / "train", ["day"])
    read = sources.read_frame(file_source(tmp_path / "train"), "train")
    assert len(read) == 300 and sorted(read["day"].astype(int).unique()) == [1, 2, 3]
    assert read["f0"].sum() == pytest.approx(frame["f0"].sum())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no Parquet files"):
        sources.read_frame(file_source(empty), "train")


@pytest.mark.slow
def test_training_data_the_profile_cannot_summarise_still_registers_a_version(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    empty_feature = training_frame().assign(f2=np.nan)  # LightGBM trains; no bins to cut
    spec = write_training_job(tmp_path, frame=empty_feature)
    assert cli("jobs", "apply", "-f", str(spec)).exit_code == 0
    result = cli("retrain", "j1")
    assert result.exit_code == 0, result.stderr
    assert not (published(home, "j1-model", 1) / "profile.json").exists()
