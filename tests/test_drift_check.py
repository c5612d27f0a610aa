import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.db.models import ModelDriftMonitoring
from retrain_cli.jobs.store import EffectiveJob
from tests.conftest import Cli
from tests.helpers import window, write_job

SessionFactory = Callable[[], AbstractContextManager[Session]]
NOW = "2026-06-01T12:00:00Z"


def setup_job(cli: Cli, folder: Path, *, shift: float, name: str = "j1", **fields: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    window(seed=1).to_parquet(folder / "ref.parquet")
    window(seed=2, shift=shift).to_parquet(folder / "cur.parquet")
    result = cli("jobs", "apply", "-f", str(write_job(folder, name, **fields)))
    assert result.exit_code == 0, result.stderr


def rows(session: SessionFactory) -> list[ModelDriftMonitoring]:
    with session() as s:
        return list(s.scalars(select(ModelDriftMonitoring).order_by(ModelDriftMonitoring.id)))


def test_stable_windows_exit_0_and_record_every_column(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    setup_job(cli, tmp_path, shift=0.0)
    result = cli("drift", "check", "j1", "--now", NOW, "--json")
    assert result.exit_code == 0, result.stderr
    (checked,) = json.loads(result.stdout)["results"]
    assert checked["drifted"] is False and checked["checked_at"].startswith("2026-06-01T12:00")
    assert {f["feature"]: f["kind"] for f in checked["features"]} == {
        "f0": "numeric",
        "f1": "numeric",
        "colour": "categorical",
    }
    assert checked["predictions"][0]["feature"] == "score"
    # the labels have arrived in the current window: the target is compared, as a category
    assert checked["target"]["feature"] == "y" and checked["target"]["kind"] == "categorical"
    assert checked["target"]["drifted"] is False
    recorded = rows(session)
    assert [(r.scope, r.feature) for r in recorded] == [
        ("feature", "f0"),
        ("feature", "f1"),
        ("feature", "colour"),
        ("prediction", "score"),
        ("target", "y"),
        ("dataset", None),
    ]
    assert len({r.check_id for r in recorded}) == 1
    assert all(r.job_id is not None and r.model_name == "j1-model" for r in recorded)
    assert recorded[0].metrics["psi"] == pytest.approx(checked["features"][0]["metrics"]["psi"])


def test_shifted_window_exits_3_with_a_drifted_dataset_row(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    setup_job(cli, tmp_path, shift=1.5)
    result = cli("drift", "check", "j1", "--json")
    assert result.exit_code == 3
    (checked,) = json.loads(result.stdout)["results"]
    assert checked["drifted"] is True and checked["drift_share"] >= 2 / 3
    dataset = [r for r in rows(session) if r.scope == "dataset"]
    assert dataset[0].drifted is True and dataset[0].drift_share == checked["drift_share"]


def test_quiet_drift_prints_one_stderr_line_and_exits_3(cli: Cli, tmp_path: Path) -> None:
    setup_job(cli, tmp_path, shift=1.5)
    result = cli("drift", "check", "--all", "--quiet")
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == "drift detected: j1\n"


def test_method_threshold_and_share_come_from_the_job(cli: Cli, tmp_path: Path) -> None:
    setup_job(
        cli, tmp_path, shift=0.0, drift={"method": "ks_pvalue", "alpha": 0.9, "drift_share": 0.3}
    )
    (checked,) = json.loads(cli("drift", "check", "j1", "--json").stdout)["results"]
    methods = {f["feature"]: (f["method"], f["threshold"]) for f in checked["features"]}
    assert methods == {
        "f0": ("ks_pvalue", 0.9),
        "f1": ("ks_pvalue", 0.9),
        "colour": ("chi2_pvalue", 0.9),
    }
    assert checked["required_share"] == 0.3


ORDER_STATISTICS = {"ks_stat", "ks_pvalue", "wasserstein", "wasserstein_norm"}


@pytest.mark.parametrize(
    ("drift", "ordered"),
    [
        ({}, False),  # psi decides: the binned statistics only, nothing sorted
        ({"method": "js"}, False),
        ({"method": "ks_pvalue"}, True),
        ({"method": "wasserstein_norm", "bins": 5}, True),
        ({"all_statistics": True}, True),
    ],
)
def test_order_statistics_are_computed_when_the_method_needs_them_or_all_are_asked(
    cli: Cli, tmp_path: Path, drift: dict[str, object], ordered: bool
) -> None:
    setup_job(cli, tmp_path, shift=0.5, drift=drift)
    (checked,) = json.loads(cli("drift", "check", "j1", "--json").stdout)["results"]
    numeric = [f for f in checked["features"] if f["kind"] == "numeric"]
    for feature in [*numeric, *checked["predictions"]]:
        assert (ORDER_STATISTICS <= set(feature["metrics"])) is ordered, feature["feature"]
        assert {"psi", "kl", "js", "hellinger"} <= set(feature["metrics"])


def test_missing_rate_change_counts_as_drift(cli: Cli, tmp_path: Path) -> None:
    setup_job(cli, tmp_path, shift=0.0, features=["f0", "f1"])
    current = window(seed=2)
    current.loc[: len(current) // 4, "f1"] = np.nan
    current.to_parquet(tmp_path / "cur.parquet")
    (checked,) = json.loads(cli("drift", "check", "j1", "--json").stdout)["results"]
    f1 = next(f for f in checked["features"] if f["feature"] == "f1")
    assert f1["metrics"]["missing_rate_cur"] == pytest.approx(0.25, abs=0.01)
    assert f1["drifted"] is True and f1["n_current"] < 600


def test_new_categories_are_listed(cli: Cli, tmp_path: Path) -> None:
    setup_job(cli, tmp_path, shift=0.0)
    current = window(seed=2)
    current.loc[:50, "colour"] = "purple"
    current.to_parquet(tmp_path / "cur.parquet")
    (checked,) = json.loads(cli("drift", "check", "j1", "--json").stdout)["results"]
    colour = next(f for f in checked["features"] if f["feature"] == "colour")
    assert colour["metrics"]["new_categories"] == ["purple"]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("drop f1 from current", "feature 'f1' is missing from the current window"),
        ("empty current", "current data"),
        ("misspelt target", "target 'label' is not a column of the job's reference, current data"),
        ("no current file", "no such file"),
    ],
)
def test_bad_window_is_exit_1_and_writes_nothing(
    cli: Cli, tmp_path: Path, session: SessionFactory, breakage: str, message: str
) -> None:
    setup_job(cli, tmp_path, shift=0.0, **({"target": "label"} if "target" in breakage else {}))
    current = window(seed=2)
    path = tmp_path / "cur.parquet"
    if breakage == "drop f1 from current":
        current.drop(columns=["f1"]).to_parquet(path)
    elif breakage == "empty current":
        current.head(0).to_parquet(path)
    elif breakage == "misspelt target":  # the label `y` would be checked as a feature
        pass
    else:
        path.unlink()
    result = cli("drift", "check", "j1")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert rows(session) == []


def test_all_reports_a_broken_job_and_still_checks_the_others(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    setup_job(cli, tmp_path / "a", shift=0.0, name="good")
    setup_job(cli, tmp_path / "b", shift=0.0, name="broken")
    (tmp_path / "b" / "cur.parquet").unlink()
    result = cli("drift", "check", "--all", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert [r["job"] for r in document["results"]] == ["good"]
    assert [e["job"] for e in document["errors"]] == ["broken"]
    assert "Error: broken: current data" in result.stderr
    # three features, the score, the target and the verdict of the good job
    assert {r.job_id for r in rows(session)} != set() and len(rows(session)) == 6


def test_a_window_with_a_repeated_column_name_is_one_line_naming_file_and_column(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    setup_job(cli, tmp_path / "a", shift=0.0, name="good")
    setup_job(cli, tmp_path / "b", shift=0.0, name="twice")
    current = pa.Table.from_pandas(window(seed=2), preserve_index=False)
    doubled = current.append_column("f0", current.column("f0"))  # Arrow allows it, pandas not
    pq.write_table(doubled, tmp_path / "b" / "cur.parquet")
    result = cli("drift", "check", "--all", "--json")
    assert result.exit_code == 1
    assert f"Error: twice: current data {tmp_path / 'b' / 'cur.parquet'}: column 'f0' appears " in (
        result.stderr
    )
    assert [r["job"] for r in json.loads(result.stdout)["results"]] == ["good"]
    assert len(rows(session)) == 6


def test_any_error_of_one_job_is_reported_and_the_others_are_still_recorded(
    cli: Cli, tmp_path: Path, session: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrain_cli.drift import check as drift_monitor

    setup_job(cli, tmp_path / "a", shift=0.0, name="good")
    setup_job(cli, tmp_path / "b", shift=0.0, name="surprising")
    real = drift_monitor.evaluate_job

    def evaluate(
        session: Session, root: Path, job: EffectiveJob, *rest: object, **named: object
    ) -> object:
        if job.name == "surprising":  # stands for any library error on one job's data
            raise TypeError("unsupported operand type(s)")
        return real(session, root, job, *rest, **named)  # type: ignore[arg-type]

    monkeypatch.setattr(drift_monitor, "evaluate_job", evaluate)
    result = cli("drift", "check", "--all", "--json")
    assert result.exit_code == 1
    assert "Error: surprising: unexpected TypeError: unsupported operand" in result.stderr
    assert [r["job"] for r in json.loads(result.stdout)["results"]] == ["good"]
    assert len(rows(session)) == 6


def test_all_skips_disabled_jobs_and_jobs_without_windows(cli: Cli, tmp_path: Path) -> None:
    setup_job(cli, tmp_path / "a", shift=0.0, name="off", enabled=False)
    setup_job(cli, tmp_path / "b", shift=0.0, name="trainonly", data={"train": "train.parquet"})
    result = cli("drift", "check", "--all", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["results"] == []


def test_ad_hoc_files_are_recorded_without_a_job(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    window(seed=1).rename(columns={"score": "y_score"}).to_parquet(tmp_path / "r.parquet")
    window(seed=2, shift=1.5).rename(columns={"score": "y_score"}).to_parquet(
        tmp_path / "c.parquet"
    )
    result = cli(
        "drift",
        "check",
        "--model",
        "adhoc",
        "--reference",
        str(tmp_path / "r.parquet"),
        "--current",
        str(tmp_path / "c.parquet"),
        "--json",
    )
    assert result.exit_code == 3, result.stderr
    (checked,) = json.loads(result.stdout)["results"]
    assert checked["job"] is None and checked["predictions"][0]["feature"] == "y_score"
    # the ad hoc defaults exclude ts and y_true, but this file's label is "y": a feature here
    assert {f["feature"] for f in checked["features"]} == {"f0", "f1", "colour", "y"}
    assert {r.job_id for r in rows(session)} == {None}


def test_report_is_a_self_contained_html_file(cli: Cli, tmp_path: Path) -> None:
    setup_job(cli, tmp_path, shift=1.5, features=["f0", "colour"])
    report = tmp_path / "out" / "drift.html"
    assert cli("drift", "check", "j1", "--report", str(report)).exit_code == 3
    text = report.read_text()
    assert (
        text.startswith("<!doctype html>")
        and "<script" not in text
        and "http" not in text.replace("http://www.w3.org/2000/svg", "")
    )
    assert text.count("<svg") == 4  # f0, colour, the score and the target
    assert text.index("<b>f0 (drifted)</b>") < text.index("<b>colour</b>")  # drifted first
    # each histogram says which bin or category each pair of bars is: numeric bins by their
    # edges, categories by name
    charts = {
        name: text[text.index(f"<b>{name}") :].split("</svg>")[0] for name in ("f0", "colour")
    }
    ticks = {
        name: re.findall(r"<title>([^<]*)</title>([^<]*)</text>", chart)
        for name, chart in charts.items()
    }
    assert sorted(full for full, _ in ticks["colour"]) == ["blue", "green", "red"]
    assert ticks["f0"][0][0].startswith("[-inf, ") and ticks["f0"][-1][0].endswith(", inf)")
    assert len(ticks["f0"]) == 10 and all(shown.rstrip("…") in full for full, shown in ticks["f0"])


def test_usage_errors_of_the_forms(cli: Cli) -> None:
    assert cli("drift", "check").exit_code == 2
    assert "name one or more jobs, or pass --all" in cli("drift", "check").stderr
    assert cli("drift", "check", "--model", "m").exit_code == 2


def mixed_window(seed: int) -> pd.DataFrame:
    """Column types that read differently from Parquet (Arrow) and CSV (pandas): nullable
    integers, a bool, a float with NaN listed as categorical, a pandas Categorical with a
    category that never occurs, and strings with nulls."""
    rng = np.random.default_rng(seed)
    n = 400
    ints = pd.array(rng.integers(0, 50, n), dtype="Int64")
    ints[::10] = pd.NA
    grade = rng.choice([1.0, 2.0, 3.0], n)
    grade[::8] = np.nan
    city = pd.Series(rng.choice(["oslo", "rome", "lima"], n), dtype=object)
    city[::5] = None
    return pd.DataFrame(
        {
            "count": ints,
            "flag": rng.random(n) < 0.3,
            "grade": grade,
            "size": pd.Categorical(rng.choice(["s", "m"], n), categories=["s", "m", "xl"]),
            "city": city,
        }
    )


def test_parquet_and_csv_windows_give_the_same_statistics(cli: Cli, tmp_path: Path) -> None:
    checked = {}
    for suffix in ("parquet", "csv"):
        paths = []
        for seed in (1, 2):
            path = tmp_path / f"w{seed}.{suffix}"
            frame = mixed_window(seed)
            frame.to_parquet(path) if suffix == "parquet" else frame.to_csv(path, index=False)
            paths.append(path)
        job = write_job(
            tmp_path,
            f"mixed-{suffix}",
            features=["count", "flag", "grade", "size", "city"],
            categorical=["grade"],
            data={"train": str(paths[0]), "reference": str(paths[0]), "current": str(paths[1])},
        )
        applied = cli("jobs", "apply", "-f", str(job))
        assert applied.exit_code == 0, applied.stderr
        result = cli("drift", "check", f"mixed-{suffix}", "--json")
        assert result.exit_code in (0, 3), result.stderr
        (checked[suffix],) = json.loads(result.stdout)["results"]

    features = {f["feature"]: f for f in checked["parquet"]["features"]}
    assert {name: f["kind"] for name, f in features.items()} == {
        "count": "numeric",
        "flag": "categorical",
        "grade": "categorical",
        "size": "categorical",
        "city": "categorical",
    }
    assert features["count"]["metrics"]["missing_rate_ref"] == pytest.approx(0.1)
    assert features["grade"]["metrics"]["missing_rate_ref"] == pytest.approx(50 / 400)
    assert features["city"]["metrics"]["missing_rate_ref"] == pytest.approx(0.2)
    assert features["flag"]["histogram"]["labels"] == ["False", "True"]
    assert features["grade"]["histogram"]["labels"] == ["1.0", "2.0", "3.0"]
    assert features["size"]["histogram"]["labels"] == ["m", "s"]  # "xl" never occurs
    for csv_feature in checked["csv"]["features"]:
        parquet_feature = features[csv_feature["feature"]]
        for name, value in parquet_feature["metrics"].items():
            assert csv_feature["metrics"][name] == pytest.approx(value, rel=1e-12), name


@pytest.mark.parametrize(
    "chunks",
    [
        [[1.5, None, 3.0, float("nan")]],  # a null and a NaN: both missing
        [[1.0, 2.0], [], [None, 4.0, None]],  # several chunks, one of them empty
        [list(range(30))],  # no validity buffer at all
    ],
    ids=["null-and-nan", "chunked", "no-nulls"],
)
@pytest.mark.parametrize("offset", [0, 3], ids=["whole", "sliced"])
def test_numeric_columns_read_from_arrow_buffers_as_arrow_converts_them(
    chunks: list[list[float | None]], offset: int
) -> None:
    # the drift check reads float64 buffers itself (Arrow's to_numpy imports pandas); sliced
    # arrays start mid-bitmap, which is where a reader of buffers goes wrong
    import pyarrow as pa

    from retrain_cli.data.columns import numeric_values

    padding = [7.0, None, 9.0][:offset]
    column = pa.chunked_array(
        [pa.array(padding + chunk, pa.float64()).slice(offset) for chunk in chunks],
        pa.float64(),
    )
    expected = column.to_numpy()  # Arrow's own conversion: nulls become NaN
    values, missing = numeric_values(column, "x", "reference")
    assert np.array_equal(values, expected[~np.isnan(expected)])
    assert missing == np.isnan(expected).mean()
    ints = pa.chunked_array([pa.array([5, None, 6, 7], pa.int64()).slice(offset // 3)])
    expected_ints = [6.0, 7.0] if offset else [5.0, 6.0, 7.0]
    assert numeric_values(ints, "n", "reference")[0].tolist() == expected_ints


def test_a_window_of_a_few_rows_gives_no_statistic_and_says_why(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    setup_job(cli, tmp_path, shift=0.0, drift={"min_samples": 30})
    window(n=1, seed=3, shift=5.0).to_parquet(tmp_path / "ref.parquet")  # one reference row
    result = cli("drift", "check", "j1", "--json")
    assert result.exit_code == 0, result.stderr  # unknown, not drift
    (checked,) = json.loads(result.stdout)["results"]
    assert checked["drifted"] is False and checked["drift_share"] is None
    for column in [*checked["features"], *checked["predictions"]]:
        assert column["statistic"] is None
        assert column["metrics"]["undefined"] == (
            "too_few_values: 1 reference and 600 current values, needs 30"
        )
    dataset = rows(session)[-1]
    assert dataset.drift_share is None and dataset.metrics["undefined"].startswith("too_few")
    assert "too_few_values" in cli("drift", "check", "j1").stdout


def test_a_failed_check_leaves_the_previous_report_in_place(cli: Cli, tmp_path: Path) -> None:
    setup_job(cli, tmp_path, shift=1.5)
    report = tmp_path / "drift.html"
    assert cli("drift", "check", "j1", "--report", str(report)).exit_code == 3
    before = report.read_text()
    (tmp_path / "cur.parquet").write_bytes(b"not parquet")
    assert cli("drift", "check", "j1", "--report", str(report)).exit_code == 1
    assert report.read_text() == before
    assert [p.name for p in tmp_path.glob(".drift.html.*")] == []


@pytest.mark.slow
def test_a_csv_column_of_mixed_types_is_one_line_and_pandas_warning_goes_to_the_log(
    tmp_path: Path, home: Path, db_url: str
) -> None:
    import os
    import subprocess
    import sys

    window(1000, seed=1).to_csv(tmp_path / "ref.csv", index=False)
    current = window(300_000, seed=2)  # enough rows for pandas to read it in chunks
    current["f0"] = current["f0"].astype(object)
    current.loc[250_000:, "f0"] = "abc"
    current.to_csv(tmp_path / "cur.csv", index=False)
    data = {"train": "ref.csv", "reference": "ref.csv", "current": "cur.csv"}
    job = write_job(tmp_path, "mixed", data=data)
    env = {**os.environ, "RETRAIN_HOME": str(home), "RETRAIN_DATABASE_URL": db_url}
    for args in (["jobs", "apply", "-f", str(job)], ["drift", "check", "mixed"]):
        argv = [sys.executable, "-m", "retrain_cli", *args]
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: mixed: current data {tmp_path / 'cur.csv'}: column 'f0' mixes values of "
        "several types (text and numbers)"
    ]
    assert "DtypeWarning" in (home / "logs" / "warnings.log").read_text()


@pytest.mark.parametrize("mode", ["exact", "profile"])
@pytest.mark.parametrize("categorical", [False, True])
def test_a_dead_feature_is_recorded_as_drift_with_no_statistic_and_exits_3(
    cli: Cli, tmp_path: Path, session: SessionFactory, mode: str, categorical: bool
) -> None:
    """A feature whose every current value is missing (a dead upstream column) is the finding
    that matters most: drifted whatever the share and thresholds, its statistic NULL with the
    reason, its missing rate 1.0."""
    dead = "colour" if categorical else "f1"
    setup_job(
        cli,
        tmp_path,
        shift=0.0,
        features=["f0", "f1", "colour", "f2", "f3"],
        drift={"mode": mode, "drift_share": 0.5, "max_missing_rate_change": 1.0},
    )
    reference, current = window(seed=1), window(seed=2)
    for frame in (reference, current):
        frame["f2"], frame["f3"] = np.arange(len(frame)) % 7, np.arange(len(frame)) % 5
    current[dead] = None
    reference.to_parquet(tmp_path / "ref.parquet")
    current.to_parquet(tmp_path / "cur.parquet")
    result = cli("drift", "check", "j1", "--json")
    assert result.exit_code == 3, result.stderr
    (checked,) = json.loads(result.stdout)["results"]
    assert checked["drifted"] is True and checked["drift_share"] < 0.5
    column = next(f for f in checked["features"] if f["feature"] == dead)
    assert (column["drifted"], column["statistic"], column["n_current"]) == (True, None, 0)
    assert column["metrics"]["missing_rate_cur"] == 1.0
    assert column["metrics"]["undefined"] == "no_values: every current value is missing"
    recorded = {r.feature: r for r in rows(session) if r.scope == "feature"}
    assert recorded[dead].statistic is None and recorded[dead].drifted
    assert recorded[dead].metrics["undefined"].startswith("no_values")
    (dataset,) = [r for r in rows(session) if r.scope == "dataset"]
    assert dataset.drifted and dataset.metrics["dead_features"] == [dead]
    assert dataset.metrics["reason"] == f"no current values of {dead}"
    due = json.loads(cli("jobs", "due", "--json").stdout)
    assert f"no current values of {dead}" in json.dumps(due)
