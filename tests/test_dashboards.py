"""dashboards/: the alert rules checked and unit-tested by promtool on the textfile that the
pipeline itself writes, and the Grafana dashboard's queries valid PromQL over metrics that
exist."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.db.models import (
    AutoRetrainingJob,
    ModelDriftMonitoring,
    ModelPerformanceTracking,
    RetrainingJobHistory,
)
from retrain_cli.ops.metrics_export import write_metrics
from tests.conftest import Cli, require_program
from tests.helpers import write_job

DASHBOARDS = Path(__file__).resolve().parent.parent / "dashboards"
ALERTS = DASHBOARDS / "alerts.yml"
GRAFANA = DASHBOARDS / "grafana.json"
SessionFactory = Callable[[], AbstractContextManager[Session]]
# promtool's unit tests start their clock at the Unix epoch: the history happens then too
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOW = EPOCH + timedelta(hours=3)


@pytest.mark.slow
def test_the_alert_rules_pass_promtool_check() -> None:
    promtool = require_program("promtool", "prometheus")
    result = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


def pipeline_textfile(cli: Cli, session: SessionFactory, tmp_path: Path) -> str:
    """Three hourly jobs: `fresh` succeeded 30 minutes ago, `stale` 2.5 hours ago (over twice
    its hourly schedule), `failing` three times in a row since its last success; `stale`'s
    model drifted, `failing`'s degraded. The textfile written for them at NOW."""
    for name in ("fresh", "stale", "failing"):
        path = write_job(tmp_path, name, schedule="0 * * * *")
        assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    runs = {
        "fresh": [("succeeded", 150)],
        "stale": [("succeeded", 30)],
        "failing": [("succeeded", 100), ("failed", 120), ("abandoned", 140), ("failed", 160)],
    }
    with session() as s:
        jobs = {j.name: j for j in s.scalars(select(AutoRetrainingJob))}
        for name, done in runs.items():
            for status, minute in done:
                at = EPOCH + timedelta(minutes=minute)
                s.add(
                    RetrainingJobHistory(
                        job_id=jobs[name].id,
                        trigger="scheduled",
                        status=status,
                        host="h",
                        pid=1,
                        started_at=at - timedelta(seconds=20),
                        finished_at=at,
                        duration_s=20.0,
                    )
                )
            jobs[name].last_run_at, jobs[name].last_run_status = at, status
        s.add(
            ModelDriftMonitoring(
                check_id="d",
                job_id=jobs["stale"].id,
                model_name="stale-model",
                checked_at=NOW,
                scope="dataset",
                method="psi",
                statistic=0.75,
                threshold=0.2,
                drifted=True,
                drift_share=0.75,
                n_reference=100,
                n_current=100,
                metrics={},
            )
        )
        s.add(
            ModelPerformanceTracking(
                check_id="p",
                job_id=jobs["failing"].id,
                model_name="failing-model",
                checked_at=NOW,
                metric="auc",
                value=0.6,
                threshold=0.7,
                is_primary=True,
                degraded=True,
                n_samples=500,
                n_dropped=0,
            )
        )
    with session() as s:
        path = write_metrics(s, tmp_path / "textfile", NOW, slots_in_use=1)
    return path.read_text()


def series_of(textfile: str) -> list[dict[str, str]]:
    """Each sample of the textfile as a promtool input series, constant for four hours."""
    series = []
    for family in text_string_to_metric_families(textfile):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            series.append({"series": f"{sample.name}{{{labels}}}", "values": f"{sample.value}x240"})
    return series


@pytest.mark.slow
def test_the_alerts_fire_on_the_pipelines_own_metrics(
    cli: Cli, session: SessionFactory, tmp_path: Path
) -> None:
    promtool = require_program("promtool", "prometheus")
    textfile = pipeline_textfile(cli, session, tmp_path)

    def fired(name: str, at: str, *alerts: dict[str, dict[str, str]]) -> dict[str, object]:
        return {"alertname": name, "eval_time": at, "exp_alerts": list(alerts)}

    def alert(severity: str, summary: str, **labels: str) -> dict[str, dict[str, str]]:
        return {
            "exp_labels": {"severity": severity, **labels},
            "exp_annotations": {"summary": summary},
        }

    tests = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series_of(textfile),
                "alert_rule_test": [
                    # stale succeeded at 00:30: past 2 x 1h at 02:30, firing 10 minutes later
                    fired("RetrainJobNotSucceeding", "2h30m"),
                    fired(
                        "RetrainJobNotSucceeding",
                        "3h",
                        alert(
                            "warning",
                            "retrain job stale has not succeeded for twice its schedule's "
                            "longest gap",
                            retrain_job="stale",
                        ),
                    ),
                    fired(
                        "RetrainJobFailing",
                        "1m",
                        alert(
                            "warning",
                            "retrain job failing failed 3 times in a row",
                            retrain_job="failing",
                        ),
                    ),
                    fired("RetrainModelDrift", "1h"),
                    fired(
                        "RetrainModelDrift",
                        "3h",
                        alert(
                            "warning", "model stale-model has drifted for 2h", model="stale-model"
                        ),
                    ),
                    fired(
                        "RetrainModelDegraded",
                        "3h",
                        alert(
                            "critical",
                            "model failing-model: auc degraded for 2h",
                            model="failing-model",
                            metric="auc",
                        ),
                    ),
                    # the file was written at 03:00: stale only after 05:00
                    fired("RetrainMetricsStale", "3h59m"),
                ],
            }
        ],
    }
    path = tmp_path / "alerts_test.yml"
    path.write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def dashboard_queries() -> list[str]:
    dashboard = json.loads(GRAFANA.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queries += [a["expr"] for a in dashboard["annotations"]["list"]]
    return queries


def test_the_dashboard_has_job_and_model_variables_and_a_panel_per_textfile_metric(
    cli: Cli, session: SessionFactory, tmp_path: Path
) -> None:
    dashboard = json.loads(GRAFANA.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["job"]["query"]["query"].endswith(", retrain_job)")
    assert variables["model"]["query"]["query"].endswith(", model)")
    written = {
        f.name for f in text_string_to_metric_families(pipeline_textfile(cli, session, tmp_path))
    }
    queried = {m for q in dashboard_queries() for m in re.findall(r"\bretrain_[a-z_]+", q)}
    queried -= {"retrain_job"}  # the label
    assert queried == written, (queried - written, written - queried)
    assert all(p["description"] for p in dashboard["panels"])


@pytest.mark.slow
@pytest.mark.parametrize("variable", ["$job", "$model"])
def test_the_dashboard_queries_are_valid_promql(tmp_path: Path, variable: str) -> None:
    """promtool parses each query as a recording rule, Grafana's variables as `.*`."""
    promtool = require_program("promtool", "prometheus")
    queries = [q for q in dashboard_queries() if variable in q or "$" not in q]
    rules = [
        {"record": f"retrain:dashboard_query_{i}", "expr": q.replace(variable, ".*")}
        for i, q in enumerate(queries)
    ]
    assert all("$" not in r["expr"] for r in rules)
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
