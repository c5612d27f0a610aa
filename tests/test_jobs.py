import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from retrain_cli.db.models import AutoRetrainingJob
from tests.conftest import EXAMPLES, Cli
from tests.helpers import write_job


def example_files() -> list[str]:
    args = []
    for path in sorted((EXAMPLES / "jobs").glob("*.yaml")):
        args += ["-f", str(path)]
    return args


def job_rows(cli: Cli) -> list[dict[str, object]]:
    result = cli("jobs", "list", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["jobs"]


def test_apply_every_example_creates_one_job_each(cli: Cli) -> None:
    result = cli("jobs", "apply", *example_files(), "--json")
    assert result.exit_code == 0, result.stderr
    actions = {o["job"]: o["action"] for o in json.loads(result.stdout)["jobs"]}
    assert actions == dict.fromkeys(
        ["alpha-ensemble", "churn-transformer", "demand-lstm", "fraud-lgbm", "risk-lgbm"], "created"
    )
    types = {row["job"]: row["type"] for row in job_rows(cli)}
    assert types["demand-lstm"] == "lstm" and types["alpha-ensemble"] == "ensemble"


def test_apply_is_idempotent_and_updates_by_name(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "fraud.yaml"
    shutil.copy(EXAMPLES / "jobs" / "fraud-lgbm.yaml", path)
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    again = cli("jobs", "apply", "-f", str(path), "--json")
    assert json.loads(again.stdout)["jobs"] == [
        {"job": "fraud-lgbm", "action": "unchanged", "changes": []}
    ]

    spec = yaml.safe_load(path.read_text())
    spec["priority"] = 99
    path.write_text(yaml.safe_dump(spec))
    updated = cli("jobs", "apply", "-f", str(path), "--json")
    assert json.loads(updated.stdout)["jobs"] == [
        {
            "job": "fraud-lgbm",
            "action": "updated",
            "changes": [{"field": "priority", "before": 10, "after": 99}],
        }
    ]
    assert [r["priority"] for r in job_rows(cli)] == [99]


def test_effective_schedule_comes_from_the_type_config(cli: Cli) -> None:
    cli("jobs", "apply", "-f", str(EXAMPLES / "jobs" / "demand-lstm.yaml"))
    shown = json.loads(cli("jobs", "show", "demand-lstm", "--json").stdout)
    assert shown["schedule"] == "0 3 * * *"  # the lstm default; the file names none
    assert shown["drift_threshold"] == 0.30
    assert shown["hyperparameters"]["sequence_length"] == 16  # job value over the default
    assert shown["hyperparameters"]["num_layers"] == 1  # default kept


def test_show_prints_the_job_as_yaml_with_durations_as_written(cli: Cli) -> None:
    cli("jobs", "apply", "-f", str(EXAMPLES / "jobs" / "fraud-lgbm.yaml"))
    shown = cli("jobs", "show", "fraud-lgbm").stdout
    settings, applied = shown.split("# the job file as applied from ")
    effective = yaml.safe_load(settings)
    assert effective["timeout"] == "1h" and effective["max_model_age"] == "30d"
    assert effective["hyperparameters"]["num_boost_round"] == 200
    spec = yaml.safe_load(applied.split("\n", 1)[1])
    assert (
        spec["data"]["train"]["path"].endswith("train.parquet") and spec["retry_backoff"] == "30m"
    )


def test_one_name_in_two_files_of_one_apply_is_an_error(cli: Cli, tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    result = cli(
        "jobs", "apply", "-f", str(write_job(first, "same")), "-f", str(write_job(second, "same"))
    )
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: {second / 'same.yaml'}: job 'same' is also declared in"
    )
    assert "same" not in cli("jobs", "list", "--json").stdout


def test_a_bad_file_among_several_applies_nothing(cli: Cli, db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: broken\nmodel: m\ntype: lightgbm\ndata: {train: t.csv}\n"
        "target: y\nschedule: '99 * * * *'\n"
    )
    result = cli("jobs", "apply", *example_files(), "-f", str(bad))
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(bad) in lines[0] and "job 'broken'" in lines[0] and "schedule" in lines[0]
    assert job_rows(cli) == []


def test_enable_disable_and_manual_trigger(cli: Cli, session) -> None:  # type: ignore[no-untyped-def]
    cli("jobs", "apply", "-f", str(EXAMPLES / "jobs" / "fraud-lgbm.yaml"))
    assert cli("jobs", "disable", "fraud-lgbm").exit_code == 0
    assert job_rows(cli)[0]["enabled"] is False
    assert cli("jobs", "enable", "fraud-lgbm").exit_code == 0
    assert cli("jobs", "trigger", "fraud-lgbm", "--reason", "new labels").exit_code == 0
    with session() as s:
        job = s.scalars(select(AutoRetrainingJob)).one()
        assert job.enabled is True
        assert job.manual_reason == "new labels" and job.manual_requested_at is not None
        assert s.scalar(select(func.count()).select_from(AutoRetrainingJob)) == 1


def test_unknown_job_is_exit_1_with_a_hint(cli: Cli) -> None:
    result = cli("jobs", "show", "nope")
    assert result.exit_code == 1
    assert result.stderr == "Error: no job named 'nope' (see `retrain-cli jobs list`)\n"


def test_delete_refuses_a_running_job_and_needs_purge_for_one_with_history(
    cli: Cli, tmp_path: Path, session: Any
) -> None:
    from sqlalchemy import func, select

    from retrain_cli.core.durations import utcnow
    from retrain_cli.db.models import AutoRetrainingJob, RetrainingJobHistory

    for name in ("fresh", "used"):
        assert cli("jobs", "apply", "-f", str(write_job(tmp_path, name))).exit_code == 0
    assert cli("jobs", "delete", "fresh").exit_code == 0  # no history: nothing to lose
    with session() as s:
        used = s.scalar(select(AutoRetrainingJob).where(AutoRetrainingJob.name == "used"))
        run = RetrainingJobHistory(
            job_id=used.id, trigger="manual", status="running", host="h", pid=1, started_at=utcnow()
        )
        s.add(run)
    refused = cli("jobs", "delete", "used", "--purge")
    assert refused.exit_code == 1 and "is running (run" in refused.stderr
    with session() as s:
        s.get(RetrainingJobHistory, run.id).status = "succeeded"
    refused = cli("jobs", "delete", "used")
    assert refused.exit_code == 1 and "has 1 runs" in refused.stderr and "--purge" in refused.stderr
    deleted = cli("jobs", "delete", "used", "--purge", "--json")
    assert deleted.exit_code == 0
    assert json.loads(deleted.stdout) == {"job": "used", "model": "used-model", "runs_removed": 1}
    with session() as s:
        assert s.scalar(select(func.count()).select_from(RetrainingJobHistory)) == 0
    assert job_rows(cli) == []
    assert cli("jobs", "delete", "nope").exit_code == 1


BAD_LIGHTGBM = {
    "not a number": ({"max_depth": "abc"}, 'Parameter max_depth should be of type int, got "abc"'),
    "negative": ({"min_data_in_leaf": -3}, "Check failed: (min_data_in_leaf) >= (0)"),
    "not a fraction": ({"bagging_fraction": 7}, "Check failed: (bagging_fraction) <= (1.0)"),
}


@pytest.mark.parametrize(("hyperparameters", "said"), BAD_LIGHTGBM.values(), ids=BAD_LIGHTGBM)
@pytest.mark.parametrize("where", ["job", "ensemble member"])
def test_lightgbm_parameters_lightgbm_refuses_are_refused_at_apply_not_at_retrain(
    cli: Cli, tmp_path: Path, hyperparameters: dict[str, Any], said: str, where: str
) -> None:
    if where == "job":
        path = write_job(tmp_path, "bad", hyperparameters=hyperparameters)
        field = "hyperparameters"
    else:
        member = {"type": "lightgbm", "hyperparameters": hyperparameters}
        path = write_job(tmp_path, "bad", type="ensemble", members=[member, "lstm"])
        field = "members.lightgbm.hyperparameters"
    result = cli("jobs", "apply", "-f", str(path))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {path}: job 'bad': {field}: LightGBM refuses them: {said}\n"
    assert json.loads(cli("jobs", "list", "--json").stdout)["jobs"] == []
    good = write_job(tmp_path, "good", hyperparameters={"max_depth": 6, "bagging_fraction": 0.8})
    assert cli("jobs", "apply", "-f", str(good)).exit_code == 0


def test_apply_dry_run_says_what_would_change_field_by_field_and_writes_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "fraud.yaml"
    shutil.copy(EXAMPLES / "jobs" / "fraud-lgbm.yaml", path)
    planned = cli("jobs", "apply", "-f", str(path), "--dry-run", "--json")
    assert planned.exit_code == 0, planned.stderr
    document = json.loads(planned.stdout)
    assert document["dry_run"] is True
    assert [(j["job"], j["action"]) for j in document["jobs"]] == [("fraud-lgbm", "created")]
    assert job_rows(cli) == []  # nothing written

    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    before = json.loads(cli("jobs", "show", "fraud-lgbm", "--json").stdout)
    spec = yaml.safe_load(path.read_text())
    spec["priority"] = 99
    spec["drift"] = {"weighting": "importance"}
    path.write_text(yaml.safe_dump(spec))
    planned = cli("jobs", "apply", "-f", str(path), "--dry-run", "--json")
    (job,) = json.loads(planned.stdout)["jobs"]
    assert job["action"] == "updated"
    changes = {c["field"]: (c["before"], c["after"]) for c in job["changes"]}
    assert changes["priority"] == (10, 99)
    assert changes["drift.weighting"] == ("share", "importance")
    assert json.loads(cli("jobs", "show", "fraud-lgbm", "--json").stdout) == before
    text = cli("jobs", "apply", "-f", str(path), "--dry-run").stdout
    assert "would update  fraud-lgbm" in text and "priority: 10 -> 99" in text
    assert "(dry run: nothing written)" in text
