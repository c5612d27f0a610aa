"""Safe rollouts end to end: a serving layer reads `serving/<model>.json`, splits generated traffic
by its weights, writes predictions with `model_version` and delayed labels; `perf check` and
`jobs due` run on a simulated clock. On both backends."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.db.models import (
    ModelPerformanceTracking,
    ModelVersionEvent,
    ModelVersionManagement,
)
from retrain_cli.db.session import make_engine, session_scope
from retrain_cli.versions.rollouts import moves as rollout_moves
from retrain_cli.versions.rollouts import state as rollouts
from tests.conftest import Cli
from tests.helpers import published, write_training_job

SessionFactory = Callable[[], AbstractContextManager[Session]]
MODEL = "j1-model"
TICK = timedelta(hours=6)
ROWS_PER_TICK = 1500
LABEL_DELAY = timedelta(hours=2)  # outcomes of the newest rows have not arrived yet
ANALYSIS = {"max_drop": 0.02, "min_samples": 300, "confidence": 0.95, "resamples": 400}


class ServingLayer:
    """What a team's model server does with the contract: read the document (checking each
    version's manifest digest), route each request to a version by weight, score it (a stand-in
    scorer of a given quality per version), and log the prediction with `model_version`; a shadow
    candidate's score goes beside the champion's."""

    def __init__(self, home: Path, folder: Path, quality: dict[int, float]) -> None:
        self.document = home / "serving" / f"{MODEL}.json"
        self.predictions = folder / "predictions.parquet"
        self.quality = quality
        self.rng = np.random.default_rng(7)
        self.served: list[dict[int, float]] = []

    def weights(self) -> dict[int, float]:
        document = json.loads(self.document.read_text())
        for version in document["versions"]:
            manifest = Path(version["manifest"]).read_bytes()
            assert hashlib.sha256(manifest).hexdigest() == version["sha256"]
        return {v["version"]: v["weight"] for v in document["versions"]}

    def serve(self, start: datetime, end: datetime) -> None:
        document = json.loads(self.document.read_text())
        weights = self.weights()
        self.served.append(weights)
        shadow = [v["version"] for v in document["versions"] if v["role"] == "shadow"]
        versions = list(weights)
        n = ROWS_PER_TICK
        times = pd.date_range(start, end, periods=n + 1, inclusive="left")
        labels = (self.rng.random(n) < 0.3).astype(float)
        chosen = self.rng.choice(versions, size=n, p=[weights[v] for v in versions])
        frame = pd.DataFrame(
            {
                "ts": times,
                "y": labels,
                "score": [self._score(v, y) for v, y in zip(chosen, labels, strict=True)],
                "model_version": chosen.astype(np.int64),
            }
        )
        if shadow:
            frame["shadow_score"] = [self._score(shadow[0], y) for y in labels]
        self._append(frame)

    def label_until(self, until: datetime) -> None:
        """Outcomes arrive LABEL_DELAY after the prediction: newer rows have none yet."""
        frame = pd.read_parquet(self.predictions)
        frame.loc[frame["ts"] > until - LABEL_DELAY, "y"] = np.nan
        frame.to_parquet(self.predictions)

    def _score(self, version: int, label: float) -> float:
        logit = self.quality[version] * (2 * label - 1) + self.rng.normal(0, 1)
        return float(1 / (1 + np.exp(-logit)))

    def _append(self, frame: pd.DataFrame) -> None:
        if self.predictions.exists():
            old = pd.read_parquet(self.predictions)
            frame = pd.concat([old, frame], ignore_index=True)
        frame.to_parquet(self.predictions)


def apply_job(cli: Cli, folder: Path, rollout: dict[str, Any], **fields: Any) -> None:
    path = write_training_job(
        folder,
        strategy="full",
        gate={"allow_ties": True},  # the second version, trained on the same data, ties
        rollout=rollout,
        data={"train": "train.parquet", "predictions": "predictions.parquet"},
        **fields,
    )
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0


def retrain(cli: Cli) -> dict[str, Any]:
    result = cli("retrain", "j1", "--force", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def tick(cli: Cli, layer: ServingLayer, now: datetime) -> str:
    """One period of the simulated clock: traffic, outcomes, a check (quiet, as cron runs it)
    and a `jobs due`; what the check said on stderr."""
    layer.serve(now - TICK, now)
    layer.label_until(now)
    check = cli("perf", "check", "j1", "--now", now.isoformat(), "-q")
    assert check.exit_code in (0, 3), check.stderr
    assert check.stdout == ""
    due = cli("jobs", "due", "--now", now.isoformat(), "--json")
    assert due.exit_code == 0, due.stderr
    return check.stderr


def run_until(
    cli: Cli, layer: ServingLayer, session: SessionFactory, now: datetime, version: int, status: str
) -> None:
    """Tick the simulated clock until `version` has `status` (at most three days)."""
    for _ in range(12):
        now += TICK
        tick(cli, layer, now)
        if statuses(session)[version] == status:
            return


def events(session: SessionFactory) -> list[tuple[str, int | None, int, float | None]]:
    with session() as s:
        rows = s.scalars(select(ModelVersionEvent).order_by(ModelVersionEvent.id))
        return [(e.event, e.from_version, e.to_version, e.to_weight) for e in rows]


def statuses(session: SessionFactory) -> dict[int, str]:
    with session() as s:
        return {v.version: v.status for v in s.scalars(select(ModelVersionManagement))}


def start_of_rollout(cli: Cli, folder: Path, rollout: dict[str, Any], **fields: Any) -> datetime:
    apply_job(cli, folder, rollout, **fields)
    assert retrain(cli)["gate"]["decision"] == "promote"  # no champion: promoted at once
    second = retrain(cli)
    assert second["gate"]["decision"] == "candidate", second["gate"]
    return datetime.now(UTC)


def a_worse_champion_in_its_bake(cli: Cli, folder: Path, home: Path, **fields: Any) -> ServingLayer:
    """v1 with two days of live record, then a worse v2 promoted at once into a 3-day bake."""
    bake = {"bake_after_promote": "3d", "analysis": ANALYSIS, "failure_limit": 1}
    apply_job(cli, folder, bake, **fields)
    assert retrain(cli)["gate"]["decision"] == "promote"
    layer = ServingLayer(home, folder, {1: 1.2, 2: 0.1})
    start = datetime.now(UTC) - timedelta(days=2)
    for k in range(8):  # the first champion's live record, before the second is promoted
        layer.serve(start + k * TICK, start + (k + 1) * TICK)
    assert retrain(cli)["gate"]["decision"] == "promote"  # no rollout mode: at once
    return layer


CANARY = {
    "mode": "canary",
    "steps": [{"weight": 0.1, "bake": "1d"}, {"weight": 0.5, "bake": "1d"}],
    "analysis": ANALYSIS,
    "failure_limit": 2,
}


@pytest.mark.slow
def test_a_good_canary_walks_10_then_50_then_100_percent(
    cli: Cli, tmp_path: Path, home: Path, session: SessionFactory
) -> None:
    now = start_of_rollout(cli, tmp_path, CANARY)
    layer = ServingLayer(home, tmp_path, {1: 1.0, 2: 1.6})
    assert layer.weights() == {1: 0.9, 2: 0.1}
    said = ""
    for _ in range(14):
        now += TICK
        said += tick(cli, layer, now)
    # the quiet checks that moved the rollout said so on stderr, its promotion included
    assert "j1-model: step v1 -> v2 (10% -> 50%)" in said
    assert "j1-model: promote v1 -> v2 (50% -> 100%)" in said
    walked = [weights.get(2) for weights in layer.served]
    assert walked[0] == 0.1 and 0.5 in walked and layer.weights() == {2: 1.0}
    assert [w for w in walked if w is not None] == sorted(w for w in walked if w is not None)
    assert events(session) == [
        ("promote", None, 1, None),
        ("candidate", 1, 2, 0.1),
        ("step", 1, 2, 0.5),
        ("promote", 1, 2, 1.0),
    ]
    assert statuses(session) == {1: "retired", 2: "active"}
    with session() as s:
        step = s.scalar(select(ModelVersionEvent).where(ModelVersionEvent.event == "step"))
        assert step is not None and step.actor == "rollout" and step.details is not None
        assert step.details["verdict"] == "pass" and step.details["low"] >= -0.02
    listing = json.loads(cli("versions", "list", MODEL, "--json").stdout)
    assert [e["to_weight"] for e in listing["events"]] == [None, 0.1, 0.5, 1.0]
    moments = [datetime.fromisoformat(e["at"]) for e in listing["events"]]
    served_at = []
    for moment in moments[1:]:
        then = cli("versions", "list", MODEL, "--at", moment.isoformat(), "--json")
        document = json.loads(then.stdout)
        served_at.append((document["active_at"], document["candidate_at"]))
    assert served_at == [
        (1, {"version": 2, "weight": 0.1}),
        (1, {"version": 2, "weight": 0.5}),
        (2, None),
    ]


@pytest.mark.slow
def test_a_bad_canary_is_aborted_at_the_failure_limit(
    cli: Cli,
    tmp_path: Path,
    home: Path,
    session: SessionFactory,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    now = start_of_rollout(cli, tmp_path, CANARY, notify=[{"webhook": url}])
    layer = ServingLayer(home, tmp_path, {1: 1.2, 2: 0.1})
    run_until(cli, layer, session, now, 2, "retired")
    assert statuses(session) == {1: "active", 2: "retired"}
    assert layer.weights() == {1: 1.0}
    with session() as s:
        failed = s.scalars(
            select(ModelPerformanceTracking).where(ModelPerformanceTracking.degraded.is_(True))
        ).all()
        abort = s.scalar(select(ModelVersionEvent).where(ModelVersionEvent.event == "abort"))
    assert len([r for r in failed if r.metric == "rollout:auc"]) == 2
    assert abort is not None and abort.reason is not None and "2 failed analyses" in abort.reason
    assert (abort.from_weight, abort.to_weight) == (0.1, 0.0)
    assert 0.5 not in [w.get(2) for w in layer.served]  # it never got past its first step
    told = [json.loads(r["body"]) for r in received]
    assert [t["event"] for t in told if t["event"].startswith("rollout")] == [
        "rollout_step",  # the candidate started
        "rollout_aborted",
    ]
    assert "2 failed analyses" in told[-1]["summary"] and told[-1]["details"]["verdict"] == "fail"


@pytest.mark.slow
def test_a_shadow_candidate_is_judged_on_the_same_rows_then_promoted(
    cli: Cli, tmp_path: Path, home: Path, session: SessionFactory
) -> None:
    shadow = {"mode": "shadow", "steps": [{"bake": "1d"}], "analysis": ANALYSIS}
    now = start_of_rollout(cli, tmp_path, shadow)
    layer = ServingLayer(home, tmp_path, {1: 1.0, 2: 1.3})
    assert layer.weights() == {1: 1.0, 2: 0.0}
    document = json.loads(layer.document.read_text())
    assert [v["role"] for v in document["versions"]] == ["champion", "shadow"]
    for _ in range(8):
        now += TICK
        tick(cli, layer, now)
    assert statuses(session) == {1: "retired", 2: "active"}
    with session() as s:
        promoted = s.scalars(
            select(ModelVersionEvent).where(ModelVersionEvent.event == "promote")
        ).all()[-1]
    assert promoted.details is not None and promoted.details["paired"] is True


@pytest.mark.slow
def test_an_ab_split_holds_its_weight_until_decided(
    cli: Cli, tmp_path: Path, home: Path, session: SessionFactory
) -> None:
    split = {"mode": "ab", "steps": [{"weight": 0.5, "bake": "2d"}], "analysis": ANALYSIS}
    now = start_of_rollout(cli, tmp_path, split)
    layer = ServingLayer(home, tmp_path, {1: 1.0, 2: 1.4})
    run_until(cli, layer, session, now, 2, "active")
    assert {w.get(2) for w in layer.served} == {0.5}  # never another split before the decision
    assert len(layer.served) >= 8  # not before its two days
    assert events(session)[1:] == [("candidate", 1, 2, 0.5), ("promote", 1, 2, 1.0)]


@pytest.mark.slow
def test_a_promoted_model_that_degrades_in_its_bake_is_rolled_back(
    cli: Cli,
    tmp_path: Path,
    home: Path,
    session: SessionFactory,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    layer = a_worse_champion_in_its_bake(cli, tmp_path, home, notify=[{"webhook": url}])
    assert layer.weights() == {2: 1.0}
    run_until(cli, layer, session, datetime.now(UTC), 1, "active")
    assert statuses(session) == {1: "active", 2: "retired"}
    assert layer.weights() == {1: 1.0}
    (event, frm, to, _) = events(session)[-1]
    assert (event, frm, to) == ("rollback", 2, 1)
    with session() as s:
        rollback = s.scalars(select(ModelVersionEvent)).all()[-1]
    assert rollback.actor == "rollout" and "failed its bake" in (rollback.reason or "")
    told = [json.loads(r["body"]) for r in received]
    assert [t["event"] for t in told][-1] == "rollback"
    assert "failed its bake" in told[-1]["summary"]


@pytest.mark.slow
def test_a_rollback_to_a_tampered_version_is_refused_and_said_and_the_check_still_recorded(
    cli: Cli, tmp_path: Path, home: Path, session: SessionFactory
) -> None:
    layer = a_worse_champion_in_its_bake(cli, tmp_path, home)
    with (published(home, MODEL, 1) / "model.txt").open("a") as model_file:
        model_file.write("tampered\n")
    now = datetime.now(UTC) + TICK
    layer.serve(now - TICK, now)
    check = cli("perf", "check", "j1", "--now", now.isoformat())
    assert check.exit_code in (0, 3), check.stderr
    assert "the rollout cannot move: preflight of j1-model v1 failed" in check.stdout
    due = cli("jobs", "due", "--now", now.isoformat())
    assert due.exit_code == 1 and f"Error: {MODEL}: rollout: preflight" in due.stderr
    assert statuses(session) == {1: "retired", 2: "active"}  # no switch to a broken champion
    with session() as s:
        analyses = s.scalars(
            select(ModelPerformanceTracking).where(ModelPerformanceTracking.metric == "rollout:auc")
        ).all()
    assert [a.degraded for a in analyses] == [True]


@pytest.mark.slow
def test_operators_abort_or_promote_now_and_are_recorded(
    cli: Cli, tmp_path: Path, home: Path, session: SessionFactory
) -> None:
    start_of_rollout(cli, tmp_path, CANARY)
    waiting = cli("versions", "rollout", MODEL)
    assert waiting.exit_code == 0, waiting.stderr
    assert f"{MODEL}: nothing to move now: no analysis of v2 since step 1 began" in waiting.stdout
    result = cli("versions", "rollout", MODEL, "--promote-now", "--actor", "ana", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["serving"]["versions"][0]["weight"] == 1.0
    assert statuses(session) == {1: "retired", 2: "active"}
    assert events(session)[-1] == ("promote", 1, 2, 1.0)
    again = cli("versions", "rollout", MODEL, "--abort")
    assert again.exit_code != 0 and "no rollout or bake" in again.stderr


@pytest.mark.slow
def test_a_candidate_whose_files_changed_is_aborted_not_promoted(
    cli: Cli, tmp_path: Path, home: Path, session: SessionFactory
) -> None:
    start_of_rollout(cli, tmp_path, CANARY)
    with (published(home, MODEL, 2) / "model.txt").open("a") as model_file:
        model_file.write("tampered\n")
    result = cli("versions", "rollout", MODEL, "--promote-now", "--json")
    assert result.exit_code == 1, result.stderr  # the asked promotion did not happen
    assert result.stderr.startswith(f"Error: {MODEL}: v2 was not promoted: preflight of")
    (move,) = json.loads(result.stdout)["moves"]  # the abort itself is recorded and shown
    assert move["event"] == "abort" and "preflight of j1-model v2 failed" in move["reason"]
    assert statuses(session) == {1: "active", 2: "retired"}


@pytest.mark.slow
def test_an_operators_abort_during_a_bake_rolls_back_at_once(
    cli: Cli, tmp_path: Path, home: Path, session: SessionFactory
) -> None:
    a_worse_champion_in_its_bake(cli, tmp_path, home)
    result = cli("versions", "rollout", MODEL, "--abort", "--actor", "ana", "--reason", "pages")
    assert result.exit_code == 0, result.stderr
    assert statuses(session) == {1: "active", 2: "retired"}
    with session() as s:
        rollback = s.scalars(select(ModelVersionEvent).order_by(ModelVersionEvent.id)).all()[-1]
    assert (rollback.event, rollback.actor, rollback.reason) == ("rollback", "ana", "pages")


@pytest.mark.slow
def test_two_hosts_advancing_one_rollout_make_one_step(
    cli: Cli, tmp_path: Path, home: Path, db_url: str, session: SessionFactory
) -> None:
    """The second waits on the model's lock, then finds the step made."""
    start_of_rollout(cli, tmp_path, CANARY)
    with session() as s:
        rollout = rollouts.current(s, MODEL)
        assert rollout is not None
        passed = {"verdict": "pass", "reason": "passed"}
        s.add(_analysis(rollout.candidate, rollout.step_since, passed, degraded=False))
    later = datetime.now(UTC) + timedelta(days=2)
    engine = make_engine(db_url)
    moved: list[list[rollouts.Move]] = []
    first_moved = threading.Event()

    def second_host() -> None:
        first_moved.wait()
        with session_scope(engine) as s:
            moved.append(rollout_moves.advance(s, MODEL, later))

    thread = threading.Thread(target=second_host)
    thread.start()
    with session_scope(engine) as s:
        moved.append(rollout_moves.advance(s, MODEL, later))
        first_moved.set()
        thread.join(timeout=0.5)
        assert thread.is_alive()  # blocked on the lock until this transaction commits
    thread.join(timeout=30)
    engine.dispose()
    assert [len(m) for m in moved] == [1, 0]
    assert [e[0] for e in events(session)].count("step") == 1


@pytest.mark.slow
def test_a_new_gate_passing_version_waits_while_a_rollout_runs(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    start_of_rollout(cli, tmp_path, CANARY)
    third = retrain(cli)
    assert third["gate"]["decision"] == "hold"
    assert "v2 is in rollout" in "; ".join(third["gate"]["reasons"])
    assert statuses(session) == {1: "active", 2: "candidate", 3: "registered"}
    refused = cli("versions", "retire", MODEL, "2")
    assert refused.exit_code != 0 and "--abort" in refused.stderr


def _analysis(
    version: int, at: datetime, details: dict[str, Any], *, degraded: bool | None
) -> ModelPerformanceTracking:
    return ModelPerformanceTracking(
        check_id="t",
        model_name=MODEL,
        version=version,
        checked_at=at,
        kind="rollout",
        metric="rollout:auc",
        value=0.8,
        is_primary=False,
        degraded=degraded,
        n_samples=1000,
        n_dropped=0,
        details=details,
    )


@pytest.mark.slow
def test_the_documented_serving_process_serves_the_champion_and_scores_the_shadow(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    shadow = {"mode": "shadow", "steps": [{"bake": "1d"}], "analysis": ANALYSIS}
    start_of_rollout(cli, tmp_path, shadow)
    text = (Path(__file__).resolve().parent.parent / "docs" / "rollouts.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert len([line for line in code.splitlines() if line.strip()]) <= 21
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/rollouts.md", "exec"), namespace)
    loaded = namespace["load"](MODEL)
    assert [v["role"] for v, _ in loaded] == ["champion", "shadow"]
    rows = pd.read_parquet(Path(loaded[0][0]["directory"]) / "sample.parquet").head(40)
    scored = namespace["predict"](loaded, rows)
    assert (scored["model_version"] == 1).all()
    assert scored["score"].between(0, 1).all() and scored["shadow_score"].between(0, 1).all()


@pytest.mark.slow
def test_the_traffic_weight_gauge_exports_the_serving_weights(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    from retrain_cli.ops.metrics_export import FILE_NAME, write_metrics

    start_of_rollout(cli, tmp_path, CANARY)
    with session() as s:
        write_metrics(s, tmp_path, datetime.now(UTC), 0)
    lines = (tmp_path / FILE_NAME).read_text().splitlines()
    weights = sorted(line for line in lines if line.startswith("retrain_model_traffic_weight{"))
    assert weights == [
        f'retrain_model_traffic_weight{{model="{MODEL}",version="1"}} 0.9',
        f'retrain_model_traffic_weight{{model="{MODEL}",version="2"}} 0.1',
    ]
    listed = cli("versions", "serving", MODEL)
    assert listed.exit_code == 0 and "canary rollout, step 1 of 2" in listed.stdout
    missing = cli("versions", "serving", "no-such-model")
    assert missing.exit_code == 1 and "no versions" in missing.stderr


@pytest.mark.slow
def test_a_lost_serving_file_is_written_again_by_the_next_tick_and_only_when_it_differs(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    start_of_rollout(cli, tmp_path, CANARY)
    path = home / "serving" / f"{MODEL}.json"
    printed = json.loads(cli("versions", "serving", MODEL, "--json").stdout)
    assert json.loads(path.read_text()) == printed
    assert path.stat().st_mode & 0o777 == 0o600
    path.unlink()  # as if the host died between its commit and its write
    assert cli("jobs", "due").exit_code == 0
    assert json.loads(path.read_text()) == printed
    written = path.stat().st_mtime_ns
    assert cli("jobs", "due").exit_code == 0
    assert path.stat().st_mtime_ns == written  # the same facts: the file is left alone


@pytest.mark.parametrize("models", [("fraud.v2", "fraud.v3"), ("a.json", "a")])
def test_models_whose_names_differ_after_a_dot_have_their_own_serving_documents(
    home: Path, models: tuple[str, str]
) -> None:
    from retrain_cli.core.paths import serving_document

    documents = [serving_document(home, model) for model in models]
    assert [path.name for path in documents] == [f"{model}.json" for model in models]
    assert documents[0] != documents[1]


@pytest.mark.slow
def test_stats_and_the_reports_overview_show_a_rollout_in_progress(
    cli: Cli, tmp_path: Path
) -> None:
    start_of_rollout(cli, tmp_path, CANARY)
    (job,) = json.loads(cli("stats", "--json").stdout)["jobs"]
    shown = {key: job["rollout"][key] for key in ("candidate", "mode", "step", "steps", "weight")}
    assert shown == {"candidate": 2, "mode": "canary", "step": 1, "steps": 2, "weight": 0.1}
    assert f"rollout of {MODEL}: v2 canary, step 1 of 2 at 10% since" in cli("stats").stdout
    assert cli("report", "--out", str(tmp_path / "site")).exit_code == 0
    assert "v1 (v2 canary 10%)" in (tmp_path / "site" / "index.html").read_text()
