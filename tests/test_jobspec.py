import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain_cli.core.errors import JobSpecError
from retrain_cli.jobs.files import load_job_file
from retrain_cli.jobs.spec import JobSpec
from tests.conftest import EXAMPLES

MINIMAL = {
    "name": "j1",
    "model": "m1",
    "type": "lightgbm",
    "data": {"train": "t.parquet"},
    "target": "y",
}


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(document) if not isinstance(document, str) else document)
    return path


@pytest.mark.parametrize("path", sorted((EXAMPLES / "jobs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_job_is_valid(path: Path) -> None:
    (spec,) = load_job_file(path)
    assert spec.name == path.stem


def test_examples_cover_every_model_family() -> None:
    types = {load_job_file(p)[0].type for p in (EXAMPLES / "jobs").glob("*.yaml")}
    assert types == {"lightgbm", "lstm", "transformer", "ensemble"}


def test_minimal_job_gets_defaults_and_absolute_paths(tmp_path: Path) -> None:
    (spec,) = load_job_file(write(tmp_path, MINIMAL))
    assert spec.data.train.path == str(tmp_path / "t.parquet")
    assert spec.triggers == ["scheduled", "drift", "performance", "age", "manual"]
    assert spec.primary_metric == "auc"
    assert spec.timezone == "UTC"
    assert spec.schedule is None  # resolved from auto_retraining_config at use
    assert (spec.timeout, spec.retry_backoff, spec.gate.min_samples) == (3600, 1800, 30)


def test_a_stored_spec_reads_back_equal(tmp_path: Path) -> None:
    (spec,) = load_job_file(write(tmp_path, {**MINIMAL, "timeout": "2h", "members": []}))
    assert JobSpec.from_stored(spec.stored()) == spec
    assert spec.stored()["timeout"] == 7200


def test_trading_job_defaults_to_sharpe(tmp_path: Path) -> None:
    (spec,) = load_job_file(write(tmp_path, {**MINIMAL, "return_column": "ret"}))
    assert spec.primary_metric == "sharpe"


def test_jobs_list_form_and_sql_source(tmp_path: Path) -> None:
    second = {
        **MINIMAL,
        "name": "j2",
        "data": {"train": {"url": "sqlite:///x.db", "query": "select 1"}},
    }
    specs = load_job_file(write(tmp_path, {"jobs": [MINIMAL, second]}))
    assert [s.name for s in specs] == ["j1", "j2"]
    assert (specs[1].data.train.url, specs[1].data.train.query) == ("sqlite:///x.db", "select 1")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "job 'j1': colour: unknown field"),
        ({"type": "xgboost"}, "job 'j1': type: 'xgboost' is not one of"),
        ({"enabled": "yes"}, "enabled: Input should be a valid boolean"),
        ({"target": "  "}, "target: String should have at least 1 character"),
        ({"notify": [{"pager": "x"}]}, "notify.pager: unknown field"),
        ({"holdout_fraction": 1}, "holdout_fraction: Input should be less than or equal to 0.9"),
        ({"schedule": "61 * * * *"}, "job 'j1': schedule: invalid cron expression '61 * * * *'"),
        ({"schedule": "* * * * * *"}, "schedule: invalid cron expression"),
        ({"timezone": "Mars/Olympus"}, "timezone: unknown time zone"),
        ({"thresholds": {"drift": -0.1}}, "thresholds.drift: Input should be greater than 0"),
        ({"thresholds": {"performance": 1.5}}, "thresholds.performance: 1.5 is outside [0, 1]"),
        ({"thresholds": {"drift": float("nan")}}, "thresholds.drift: Input should be a finite"),
        ({"data": {}}, "data.train: is required"),
        ({"data": {"train": "t.xlsx"}}, "is not a .parquet or .csv file"),
        ({"data": {"train": "t.csv", "live": "x.csv"}}, "data.live: unknown field"),
        ({"name": "../etc"}, "name: '../etc' must be"),
        ({"model": "a/b"}, "model: 'a/b' must be"),
        ({"timeout": "soon"}, "timeout: not a duration"),
        ({"triggers": ["cosmic-ray"]}, "triggers: 'cosmic-ray' is not one of"),
        ({"primary_metric": "sharpe"}, "primary_metric: sharpe needs a return_column"),
        ({"features": ["y"]}, "features: y is the target"),
        ({"members": ["lstm"]}, "members: only an ensemble job has members"),
        ({"description": "x" * 70_000}, "description: String should have at most 65536"),
        (
            {"hyperparameters": {"note": "x" * 70_000}},
            "hyperparameters: longer than 65536 characters as JSON",
        ),
        ({"type": "ensemble", "members": ["ensemble"]}, "members: a member is lightgbm, lstm"),
        (
            {"type": "ensemble", "members": [{"type": "ensemble"}]},
            "members: a member is lightgbm, lstm or transformer, not ensemble",
        ),
        (
            {"data": {"train": {"url": "postgresql://u:p@ss@db/x", "query": "q"}}},
            "data.train: postgresql://u:***@db/x: the password holds an '@'",
        ),
        ({"drift": {"method": "magic"}}, "drift.method: 'magic' is not one of"),
        ({"priority": "high"}, "priority: Input should be a valid integer"),
        ({"priority": 10**26}, "priority: Input should be less than or equal to 1000000"),
        ({"hyperparameters": {"num_boost_round": -5}}, "hyperparameters.num_boost_round: -5 is"),
        ({"hyperparameters": {"num_leaves": 7.5}}, "num_leaves: expected a whole number"),
        (
            {"hyperparameters": {"learning_rate": "fast"}},
            "hyperparameters.learning_rate: expected a positive number, got 'fast'",
        ),
        (
            {"hyperparameters": {"objective": "regression"}},
            "hyperparameters.objective: 'regression' does not fit a binary job",
        ),
        (
            {
                "type": "ensemble",
                "members": [{"type": "lstm", "hyperparameters": {"batch_size": 0}}],
            },
            "members.lstm.batch_size: 0 is too small",
        ),
    ],
)
def test_invalid_field_is_named_with_file_and_job(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = write(tmp_path, {**MINIMAL, **change})
    with pytest.raises(JobSpecError) as info:
        load_job_file(path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("name: [unclosed\n", "malformed YAML at line"),
        ("- just\n- a list\n", "expected a job mapping"),
        ({"jobs": []}, "'jobs' must be a non-empty list"),
        ({"jobs": [MINIMAL, copy.deepcopy(MINIMAL)]}, "job 'j1' is declared twice"),
        ({k: v for k, v in MINIMAL.items() if k != "target"}, "job 'j1': target: is required"),
    ],
)
def test_malformed_file_is_one_clear_error(tmp_path: Path, document: Any, message: str) -> None:
    with pytest.raises(JobSpecError, match=None) as info:
        load_job_file(write(tmp_path, document))
    assert message in str(info.value)


def test_yaml_aliases_are_refused_before_they_expand(tmp_path: Path) -> None:
    bomb = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
    path = write(tmp_path, "l0: &l0 [x]\n" + bomb + "name: j1\n")  # 9^9 leaves if expanded
    with pytest.raises(JobSpecError, match=r"aliases .* are not allowed in job files"):
        load_job_file(path)


def test_a_key_given_twice_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "name: j1\nmodel: m1\nmodel: m2\n")
    with pytest.raises(JobSpecError, match="at line 3: key 'model' is given twice"):
        load_job_file(path)


def test_an_oversized_job_file_fails_at_once(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"# " + b"x" * (50 << 20) + b"\n")  # 50 MB
    with pytest.raises(JobSpecError, match="larger than a job file may be"):
        load_job_file(path)


def test_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JobSpecError, match="no such job file"):
        load_job_file(tmp_path / "absent.yaml")


def test_primary_metric_names_are_the_metrics_performance_computes() -> None:
    from retrain_cli.core import choices
    from retrain_cli.statistics import performance, tasks

    assert set(choices.STRATEGY_METRICS) == set(performance.TRADING_METRICS)
    assert choices.TASK_METRICS[choices.Task.BINARY] == set(tasks.BINARY_METRICS)
    assert choices.TASK_METRICS[choices.Task.MULTICLASS] == set(tasks.MULTICLASS_METRICS)
    assert choices.TASK_METRICS[choices.Task.REGRESSION] == {*tasks.REGRESSION_METRICS, "pinball"}


@pytest.mark.parametrize(
    ("rollout", "message"),
    [
        ({"mode": "canary"}, "needs at least one step"),
        ({"mode": "canary", "steps": [{"weight": 0.5}, {"weight": 0.2}]}, "must be above 0"),
        ({"mode": "shadow", "steps": [{"weight": 0.1}]}, "weight 0"),
        ({"mode": "ab", "steps": [{"weight": 0.5}, {"weight": 0.6}]}, "one step"),
        ({"steps": [{"weight": 0.1}]}, "need a mode"),
        ({"mode": "canary", "steps": [{"weight": 1.0}]}, "less than 1"),
        ({"analysis": {"metric": "sharpe"}}, "not judged per row"),
        ({"analysis": {"min_samples": 5000, "max_rows": 1000}}, "at least min_samples"),
    ],
)
def test_a_rollout_policy_that_cannot_work_is_refused(
    tmp_path: Path, rollout: dict[str, Any], message: str
) -> None:
    with pytest.raises(JobSpecError, match="rollout") as refused:
        load_job_file(write(tmp_path, {**MINIMAL, "rollout": rollout}))
    assert message in str(refused.value)


def test_a_rollout_policy_gets_its_defaults(tmp_path: Path) -> None:
    rollout = {"mode": "shadow", "steps": [{"bake": "2d"}]}
    (spec,) = load_job_file(write(tmp_path, {**MINIMAL, "rollout": rollout}))
    assert spec.rollout is not None and spec.rollout.steps[0].bake == 172800
    assert (spec.rollout.failure_limit, spec.rollout.analysis.min_samples) == (1, 500)
    assert spec.analysis_metric == "auc"
    assert JobSpec.from_stored(spec.stored()) == spec
