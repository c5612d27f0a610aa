"""`retrain-cli report`: a static site built from the tables alone, on both backends."""

from __future__ import annotations

import json
import re
import stat
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.db.models import AutoRetrainingJob, ModelPerformanceTracking
from retrain_cli.ops.report.data import load_history
from retrain_cli.ops.report.model import Axis
from tests.conftest import Cli
from tests.helpers import write_job
from tests.history import FAILURE, seed_history

SessionFactory = Callable[[], AbstractContextManager[Session]]
NOW = datetime(2026, 6, 30, tzinfo=UTC)
HOSTILE = "<script>window.pwned=1</script>/../../x"


def seeded(
    cli: Cli, session: SessionFactory, tmp_path: Path, *names: str, hostile: bool = False
) -> None:
    """Jobs `names` (models `NAME-model`) with 30 days of generated history each; with
    `hostile`, one more whose model and first feature are named with markup and `../`."""
    for name in (*names, *(["evil"] if hostile else [])):
        assert cli("jobs", "apply", "-f", str(write_job(tmp_path, name))).exit_code == 0
    with session() as s:
        for job in s.scalars(select(AutoRetrainingJob)):
            if job.name == "evil":
                job.model_name = HOSTILE  # job files refuse such names; the tables need not
                seed_history(s, job, NOW, features=(HOSTILE, "f1"))
            else:
                seed_history(s, job, NOW)


def report(cli: Cli, out: Path, *args: str) -> dict[str, object]:
    result = cli("report", "--out", str(out), "--now", NOW.isoformat(), "--json", *args)
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_the_report_has_an_index_and_a_page_per_model_with_every_chart(
    cli: Cli, session: SessionFactory, tmp_path: Path
) -> None:
    seeded(cli, session, tmp_path, "fraud", "churn")
    out = tmp_path / "site"
    document = report(cli, out)
    pages = {m: Path(p) for m, p in document["pages"].items()}  # type: ignore[attr-defined]
    assert sorted(pages) == ["churn-model", "fraud-model"]
    index = (out / "index.html").read_text()
    for model, page in pages.items():
        assert page.parent == out
        assert f"href='{page.name}'>{model}</a>" in index
        html = page.read_text()
        # performance, drift share, drift heatmap, runs: each an inline SVG with a label
        labels = re.findall(r'<svg role="img" aria-label="([^"]+)"', html)
        assert labels == [
            "auc over time (higher is better)",
            "drift share over time",
            "drift score per feature",
            "runs: start and duration",
        ]
        failed = re.findall(r"<tr id='run-(\d+)'>", html)
        assert len(failed) == 1 and FAILURE.replace("<", "&lt;").replace(">", "&gt;") in html
        assert f'xlink:href="#run-{failed[0]}"' in html  # the failure's point links to it
        assert "rollback</td><td>v3</td><td>v1</td><td>alice" in html
        assert "challenger auc 0.93 beats the champion" in html
        # nothing to run, nothing to fetch (the http:// in the SVG are XML namespace names)
        assert "<script" not in html
        assert not re.search(r"""(src=|href=["']?https?:|url\((?!#)|@import)""", html)


def test_the_series_are_the_bucket_means_of_the_tables(
    cli: Cli, session: SessionFactory, tmp_path: Path
) -> None:
    """Aggregated in SQL, the same on both backends: each point is its bucket's mean, on the
    bucket's middle; rows outside the period are left out."""
    assert cli("jobs", "apply", "-f", str(write_job(tmp_path, "j1"))).exit_code == 0
    since = NOW - timedelta(days=10)
    axis = Axis.of(since, NOW)
    checks = [since - timedelta(hours=1)] + [since + timedelta(minutes=37 * i) for i in range(390)]
    expected: dict[int, list[float]] = {}
    with session() as s:
        for i, at in enumerate(checks):
            value = 0.5 + (i % 7) / 20
            s.add(
                ModelPerformanceTracking(
                    check_id=f"c{i}",
                    model_name="j1-model",
                    checked_at=at,
                    metric="auc",
                    value=value,
                    threshold=0.6,
                    is_primary=True,
                    degraded=value < 0.6,
                    n_samples=10,
                    n_dropped=0,
                )
            )
            if at >= since:
                bucket = int((at - since).total_seconds()) // axis.width_s
                expected.setdefault(bucket, []).append(value)
    with session() as s:
        history = load_history(s, NOW, since, [], 0).models[0]
    assert history.metric == "auc"
    assert history.realized.times == [axis.at(b) for b in sorted(expected)]
    means = [sum(expected[b]) / len(expected[b]) for b in sorted(expected)]
    assert history.realized.values == pytest.approx(means, rel=1e-12)
    assert history.threshold.values == pytest.approx([0.6] * len(expected))
    assert len(history.degraded_at) == sum(min(v) < 0.6 for v in expected.values())
    assert history.estimated.values == [] and history.change_points == []


def test_estimates_and_change_points_are_drawn_beside_the_realized_metric(
    cli: Cli, session: SessionFactory, tmp_path: Path
) -> None:
    """Estimated primary rows make their own series (not mixed into the realized one), and a
    change point's timestamp is marked; both appear in the page's performance chart."""
    assert cli("jobs", "apply", "-f", str(write_job(tmp_path, "j1"))).exit_code == 0
    at = NOW - timedelta(days=2)
    changed = NOW - timedelta(days=1, hours=3)
    with session() as s:
        for estimated, value in ((False, 0.9), (True, 0.7)):
            s.add(
                ModelPerformanceTracking(
                    check_id="c",
                    model_name="j1-model",
                    kind="estimated" if estimated else "checked",
                    checked_at=at,
                    metric="auc",
                    value=value,
                    is_primary=True,
                    estimated=estimated,
                    n_samples=10,
                    n_dropped=0,
                )
            )
        s.add(
            ModelPerformanceTracking(
                check_id="c",
                model_name="j1-model",
                checked_at=at,
                window_start=changed,
                window_end=changed,
                kind="change_point",
                metric="change_point:adwin",
                value=0.3,
                is_primary=False,
                n_samples=10,
                n_dropped=0,
            )
        )
    with session() as s:
        history = load_history(s, NOW, NOW - timedelta(days=30), [], 0).models[0]
    assert history.realized.values == [0.9] and history.estimated.values == [0.7]
    assert history.change_points == [changed]
    html = Path(report(cli, tmp_path / "site")["pages"]["j1-model"]).read_text()  # type: ignore[index]
    assert "auc, estimated" in html and "error level changed" in html


def test_a_p_value_methods_drift_score_is_alpha_over_its_smallest_p_value(
    cli: Cli, session: SessionFactory, tmp_path: Path
) -> None:
    seeded(cli, session, tmp_path, "j1")
    with session() as s:
        heatmap = load_history(s, NOW, NOW - timedelta(days=30), [], 0).models[0].heatmap
    assert heatmap is not None
    assert heatmap.features == ["colour", "f0", "f1", "score"]
    assert heatmap.methods == ["psi", "psi", "psi", "ks_pvalue"]
    score = heatmap.scores[3]
    # the generated history: p-values in [0.2, 0.9] then in [1e-6, 1e-3], alpha 0.05
    assert max(v for v in score[:50] if v is not None) <= 0.05 / 0.2
    assert min(v for v in score[-20:] if v is not None) >= 0.05 / 1e-3


def test_names_with_markup_are_text_and_pages_stay_in_the_report_directory(
    cli: Cli, session: SessionFactory, tmp_path: Path
) -> None:
    seeded(cli, session, tmp_path, hostile=True)
    out = tmp_path / "site"
    document = report(cli, out)
    files = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert len(files) == 2 and all(len(f.parts) == 1 for f in files)
    page = Path(document["pages"][HOSTILE])  # type: ignore[index]
    html = page.read_text()
    assert "<script" not in html and "<script" not in (out / "index.html").read_text()
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;/../../x" in html  # the title
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;/../../x (psi)" in html  # the heatmap


def test_models_with_open_alerts_come_first(
    cli: Cli, session: SessionFactory, tmp_path: Path
) -> None:
    seeded(cli, session, tmp_path, "a-calm", "z-alarmed")
    with session() as s:
        job = AutoRetrainingJob
        alarmed = s.scalars(select(job).where(job.name == "z-alarmed")).one()
        alarmed.last_run_status = "failed"
    document = report(cli, tmp_path / "site", "--since", "2d")
    alerts = document["alerts"]
    assert list(alerts) == ["z-alarmed-model", "a-calm-model"]  # type: ignore[call-overload]
    assert alerts["z-alarmed-model"] == [  # type: ignore[index]
        "drift in the newest check",
        "performance degraded in the newest check",
        "last run of z-alarmed failed",
    ]
    index = (tmp_path / "site" / "index.html").read_text()
    assert index.index("z-alarmed-model") < index.index("a-calm-model")


def test_model_narrows_the_report_and_an_unknown_model_writes_nothing(
    cli: Cli, session: SessionFactory, tmp_path: Path
) -> None:
    seeded(cli, session, tmp_path, "fraud", "churn")
    document = report(cli, tmp_path / "one", "--model", "fraud-model")
    assert list(document["pages"]) == ["fraud-model"]  # type: ignore[call-overload]
    result = cli("report", "--out", str(tmp_path / "none"), "--model", "nope")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "Error: no such model: nope (known: churn-model, fraud-model)"
    ]
    assert not (tmp_path / "none").exists()


def test_the_report_of_an_empty_database_says_there_is_nothing_yet(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    result = cli("report")
    assert result.exit_code == 0, result.output
    index = home / "report" / "index.html"
    assert "No models yet" in index.read_text()
    assert index.as_uri() in result.stdout


def test_the_report_is_private_and_leaves_no_temporary_file(
    cli: Cli, session: SessionFactory, tmp_path: Path
) -> None:
    seeded(cli, session, tmp_path, "fraud")
    out = tmp_path / "site"
    report(cli, out)
    report(cli, out)  # rewritten in place
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o600}
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


def test_without_matplotlib_the_report_says_how_to_install_it(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session: SessionFactory
) -> None:
    seeded(cli, session, tmp_path, "fraud")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an install without it sees
    result = cli("report", "--out", str(tmp_path / "site"))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: the report draws its charts with matplotlib: pip install 'retrain-cli[report]'"
    )
    assert not (tmp_path / "site").exists()


def test_a_bad_since_is_a_usage_error(cli: Cli) -> None:
    result = cli("report", "--since", "soon")
    assert result.exit_code == 2
    assert "--since" in result.stderr


def test_a_folder_of_other_files_is_refused_and_left_as_it_was(cli: Cli, tmp_path: Path) -> None:
    """`report --out /` once wrote its pages into `/`: a folder that is neither new, empty nor
    an earlier report is refused."""
    out = tmp_path / "documents"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = cli("report", "--out", str(out))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: {out} holds other files and no earlier report: give `--out` a new or empty folder"
    )
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    (out / "notes.txt").unlink()
    assert cli("report", "--out", str(out)).exit_code == 0  # empty: fine
    assert cli("report", "--out", str(out)).exit_code == 0  # an earlier report: rewritten
