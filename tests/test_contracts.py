"""Data contracts (`schema:`): checked on the training data before a retrain trains anything,
and on the current window by each drift check; `jobs schema` proposes one."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.data import contracts
from retrain_cli.data.sources import file_source
from retrain_cli.db.models import (
    ModelDriftMonitoring,
    ModelVersionManagement,
    RetrainingJobHistory,
)
from retrain_cli.jobs.sections import SchemaSpec
from retrain_cli.training.runlog import path_of
from tests.conftest import EXAMPLES, Cli
from tests.helpers import training_frame, window, write_job, write_training_job

NOW = datetime(2026, 3, 1, tzinfo=UTC)
Scope = Callable[[], AbstractContextManager[Session]]
CONTRACT: dict[str, Any] = {
    "min_rows": 100,
    "columns": {
        "f0": {"type": "number", "max_missing": 0.1},
        "f1": {"type": "number", "min": -10, "max": 10},
        "f2": {"type": "number", "max_missing": 0.1},
        "y": {"type": "integer", "categories": None},
    },
}


def _contract(**rules: Any) -> SchemaSpec:
    return SchemaSpec.model_validate({**CONTRACT, **rules})


def test_a_renamed_and_a_60_percent_missing_column_fail_the_retrain_naming_their_rules(
    cli: Cli, session: Scope, tmp_path: Path, home: Path
) -> None:
    frame = training_frame(n=400).rename(columns={"f0": "feature_0"})
    frame.loc[frame.sample(frac=0.6, random_state=0).index, "f2"] = np.nan
    path = write_training_job(tmp_path, "j1", frame=frame, schema=CONTRACT)
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0

    result = cli("retrain", "j1")
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.startswith("Error: training data breaks the job's data contract (2 rule(s))")
    assert "column 'f0' is missing" in line and "column 'f2' is 60.0% missing" in line
    assert len(result.output.strip().splitlines()) == 1
    with session() as s:
        assert list(s.scalars(select(ModelVersionManagement.id))) == []
        run = s.scalars(select(RetrainingJobHistory)).one()
        assert run.status == "failed" and "column 'f0' is missing" in (run.error or "")
        assert "train" not in (run.phases or {})  # failed while loading, before training
    log = path_of(home / "logs", "j1", run.id).read_text()
    assert "data contract: column 'f2' is 60.0% missing, at most 10.0%" in log


def test_a_duplicate_key_split_across_two_batches_is_found(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": np.arange(300), "x": np.ones(300)})
    frame.loc[250, "id"] = 7  # 7 is in the first row group, 250 in the second
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "keys.parquet", row_group_size=200)
    assert pq.ParquetFile(tmp_path / "keys.parquet").num_row_groups == 2
    contract = SchemaSpec.model_validate({"columns": {"id": {"type": "integer", "unique": True}}})

    broken = contracts.check(file_source(tmp_path / "keys.parquet"), "current", contract, None, NOW)
    assert [(v.rule, v.column, v.observed) for v in broken] == [("unique", "id", 1.0)]
    assert "e.g. 7" in broken[0].message


@pytest.mark.parametrize(
    ("rules", "change", "expected"),
    [
        ({}, lambda f: f, []),
        ({}, lambda f: f.assign(f1=f["f1"] * 100), ["range"]),  # a unit changed upstream
        ({}, lambda f: f.head(50), ["min_rows"]),
        ({}, lambda f: f.assign(f0=f["f0"].astype(str)), ["type"]),
        (
            {"columns": {"colour": {"categories": ["red", "green"]}}},
            lambda f: f,
            ["categories"],
        ),
        ({"freshness": "2d"}, lambda f: f, ["freshness"]),  # the newest row is from 2026-01
        ({"columns": {"gone": {"required": False}}}, lambda f: f, []),
    ],
)
def test_each_rule_is_checked_on_the_window(
    tmp_path: Path,
    rules: dict[str, Any],
    change: Callable[[pd.DataFrame], pd.DataFrame],
    expected: list[str],
) -> None:
    frame = change(window(n=400).assign(f2=0.0))
    frame.to_parquet(tmp_path / "w.parquet")
    contract = SchemaSpec.model_validate(
        {
            "min_rows": 100,
            "columns": {"f0": {"type": "number"}, "f1": {"min": -10, "max": 10}},
            **rules,
        }
    )
    broken = contracts.check(file_source(tmp_path / "w.parquet"), "current", contract, "ts", NOW)
    assert [v.rule for v in broken] == expected


def test_a_drift_check_records_a_broken_contract_as_a_finding_and_may_trigger(
    cli: Cli, session: Scope, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAIN_METRICS_DIR", str(tmp_path / "textfile"))
    window(n=400, seed=1).to_parquet(tmp_path / "ref.parquet")
    current = window(n=400, seed=2)
    current.loc[:300, "f1"] = np.nan  # 75% missing, no drift in what is there
    current.to_parquet(tmp_path / "cur.parquet")
    contract = {"columns": {"f1": {"max_missing": 0.1}}}
    for name, triggers in (("quality", ["data_quality"]), ("plain", ["drift"])):
        model = f"{name}-model"
        path = write_job(tmp_path, name, model=model, schema=contract, triggers=triggers)
        assert cli("jobs", "apply", "-f", str(path)).exit_code == 0

    checked = cli("drift", "check", "quality", "plain", "--json")
    assert checked.exit_code == 3, checked.output
    results = json.loads(checked.output)["results"]
    assert [r["contract"][0]["rule"] for r in results] == ["missing", "missing"]
    with session() as s:
        rows = list(
            s.scalars(select(ModelDriftMonitoring).where(ModelDriftMonitoring.scope == "contract"))
        )
    assert sorted((r.model_name, r.feature, r.method) for r in rows) == [
        ("plain-model", "f1", "missing"),
        ("quality-model", "f1", "missing"),
    ]
    due = json.loads(cli("jobs", "due", "--json").output)["due"]
    assert [d["job"] for d in due] == ["quality"]  # data_quality is off unless listed
    assert "data contract" in json.dumps(due)
    shown = cli("drift", "check", "plain")
    assert "data contract broken (1 rule(s))" in shown.output
    stats = json.loads(cli("stats", "--json").output)
    assert {j["job"]: j["contract_breaks"] for j in stats["jobs"]} == {"plain": 2, "quality": 1}
    gauges = (tmp_path / "textfile" / "retrain_cli.prom").read_text()
    assert 'retrain_model_data_contract_violations{model="plain-model"} 1.0' in gauges
    site = json.loads(cli("report", "--out", str(tmp_path / "site"), "--json").output)
    page = Path(site["pages"]["plain-model"]).read_text()
    assert "<h3>Data contract</h3>" in page and "is 75.2% missing, at most 10.0%" in page
    index = (tmp_path / "site" / "index.html").read_text()
    assert "broke 1 rule(s) of the data contract" in index


def test_the_inferred_schema_of_the_walkthroughs_data_accepts_that_data(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("generate_data", EXAMPLES / "generate_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", ["generate_data.py", "--out", str(tmp_path / "data")])
    module.main()
    jobs = sorted((tmp_path / "data").iterdir())
    assert len(jobs) == 5
    for folder in jobs:
        source = file_source(folder / "train.parquet")
        inferred = contracts.infer(source, "training")
        assert inferred.columns, folder.name
        assert contracts.check(source, "training", inferred, None, NOW) == [], folder.name

    fraud = tmp_path / "data" / "fraud"
    path = write_job(fraud, "fraud", data={"train": "train.parquet"}, target="y")
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    printed = cli("jobs", "schema", "fraud")
    assert printed.exit_code == 0, printed.output
    pasted = yaml.safe_load(printed.output)["schema"]
    assert pasted["columns"]["merchant_category"]["type"] == "string"
    again = write_job(fraud, "fraud", data={"train": "train.parquet"}, target="y", schema=pasted)
    assert cli("jobs", "apply", "-f", str(again)).exit_code == 0  # it is a valid `schema:`


def test_counts_of_two_parts_merge_into_the_whole_windows_duplicates_included(
    tmp_path: Path,
) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3, 3, 4, 5, 1, 6], "x": [1.0, None, 3, 4, 5, 6, 7, 8]})
    frame.to_parquet(tmp_path / "w.parquet")
    contract = SchemaSpec.model_validate(
        {"columns": {"id": {"unique": True}, "x": {"max_missing": 0.0, "max": 5}}}
    )
    source = file_source(tmp_path / "w.parquet")
    planned = contracts.plan(source, "current", contract, None)
    table = pa.Table.from_pandas(frame)
    merged = contracts.Totals()
    for part in (table.slice(0, 5), table.slice(5)):
        merged.merge(contracts.count(part.to_batches(), planned))
    whole = contracts.count(table.to_batches(), planned)
    assert (merged.rows, merged.missing, merged.failing) == (
        whole.rows,
        whole.missing,
        whole.failing,
    )
    assert merged.duplicates == whole.duplicates == {"id": 2}  # 3 within a part, 1 across them
    assert contracts.verdicts(planned, merged, contract, NOW) == contracts.verdicts(
        planned, whole, contract, NOW
    )


def test_a_table_only_contract_counts_the_rows_of_a_csv_window(tmp_path: Path) -> None:
    window(n=50).to_csv(tmp_path / "w.csv", index=False)
    contract = SchemaSpec.model_validate({"min_rows": 100})
    broken = contracts.check(file_source(tmp_path / "w.csv"), "current", contract, None, NOW)
    assert [(v.rule, v.observed, v.limit) for v in broken] == [("min_rows", 50.0, 100.0)]
