"""Versions and profiles in an object store (`artifacts_dir: s3://...`), against a real
S3-protocol server on 127.0.0.1 (moto's): hosts that share a database and a bucket, no folder;
create-only objects, the manifest last, verification before registration, sweeping of what a
refused upload left, preflight from the store, and this host's verified copies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Cli, as_another_database
from tests.helpers import StoreGate, training_frame, write_training_job

pytestmark = pytest.mark.slow
MODEL = "j-model"


def _fs() -> Any:
    import s3fs

    return s3fs.S3FileSystem()


def _homes(tmp_path: Path, store: str, *names: str) -> None:
    for name in names:
        (tmp_path / name).mkdir()
        config = {"artifacts_dir": store, "serving": {"store": f"{store}/serving/"}}
        (tmp_path / name / "config.yaml").write_text(yaml.safe_dump(config))


def _on(cli: Cli, monkeypatch: pytest.MonkeyPatch, home: Path) -> Any:
    def run(*args: str, code: int | tuple[int, ...] = 0) -> Any:
        monkeypatch.setenv("RETRAIN_HOME", str(home))
        monkeypatch.setenv("RETRAIN_DATABASE_URL", str(cli.database_url))
        result = cli(*args, url=False)
        codes = code if isinstance(code, tuple) else (code,)
        assert result.exit_code in codes, result.output
        return result

    return run


def _versions(store: str) -> set[str]:
    """The version prefixes under the model's key."""
    fs = _fs()
    fs.invalidate_cache()
    found = fs.ls(f"{store[5:]}/{MODEL}", detail=True)
    return {e["name"].rsplit("/", 1)[-1] for e in found if e["type"] == "directory"} - {"profiles"}


def _recorded(cli: Cli, run: Any) -> dict[int, str]:
    listed = json.loads(run("versions", "list", MODEL, "--json").output)["versions"]
    return {v["version"]: v["artifact"] for v in listed}


def _job(tmp_path: Path, **fields: Any) -> Path:
    folder = tmp_path / "jobs"
    folder.mkdir(exist_ok=True)
    training_frame(400, seed=3).drop(columns=["y"]).to_parquet(folder / "cur.parquet")
    data = {"train": "train.parquet", "current": "cur.parquet"}
    return write_training_job(folder, "j", data=data, **fields)


def test_hosts_share_versions_through_a_bucket_with_no_shared_folder(
    cli: Cli, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = f"{bucket}/artifacts"
    _homes(tmp_path, store, "a", "b", "c")
    a, b, c = (_on(cli, monkeypatch, tmp_path / h) for h in "abc")
    a("jobs", "apply", "-f", str(_job(tmp_path, drift={"reference": "training"})))
    a("retrain", "j")
    a("retrain", "j", "--force", "--no-promote")
    recorded = _recorded(cli, a)
    assert set(recorded) == {1, 2}
    assert all(p.startswith(f"{store}/{MODEL}/") for p in recorded.values())
    assert _versions(store) == {p.rsplit("/", 2)[-2] for p in recorded.values()}
    listed = {p.rsplit("/", 1)[-1] for p in _fs().ls(recorded[2].rsplit("/", 1)[0])}
    assert {"manifest.json", "metadata.json", "profile.json"} <= listed
    assert not (tmp_path / "a" / "artifacts").exists()  # nothing published on a's disk
    assert f"{store} reachable" in a("doctor", code=(0, 1)).output

    b("versions", "promote", MODEL, "2", "--reason", "from host b")  # preflight from the bucket
    serving = json.loads(_fs().cat_file(f"{store[5:]}/serving/{MODEL}.json"))
    assert [(v["version"], v["directory"]) for v in serving["versions"]] == [
        (2, recorded[2].rsplit("/", 1)[0])
    ]
    b("versions", "rollback", MODEL)
    b("drift", "check", "j", code=(0, 3))  # v1's training profile, through b's copy
    cached = tmp_path / "b" / "cache" / "artifacts" / MODEL
    assert sorted(p.name for p in cached.iterdir()) == [recorded[1].rsplit("/", 2)[-2]]

    # v1's model in the bucket altered: b scores the champion from its verified copy, and the
    # preflight of a promotion, which reads the store, refuses v1; a host without a copy stops
    v1 = recorded[1].rsplit("/", 1)[0]
    model_file = json.loads(_fs().cat_file(recorded[1]))["primary"]
    _fs().pipe_file(f"{v1}/{model_file}", b"tampered")
    trained = json.loads(b("retrain", "j", "--force", "--no-promote", "--json").output)
    assert trained["gate"]["values"].get("champion") is not None, trained["gate"]
    fresh = c("retrain", "j", "--force", code=1)
    assert "sha256 does not match" in fresh.output and len(fresh.output.splitlines()) == 1
    b("versions", "promote", MODEL, "2")
    refused = b("versions", "rollback", MODEL, code=1)
    assert "sha256 does not match" in refused.output and len(refused.output.splitlines()) == 1
    listed = json.loads(b("versions", "list", MODEL, "--json").output)["versions"]
    assert [v["version"] for v in listed if v["active"]] == [2]


def test_an_upload_the_store_refuses_midway_registers_nothing_and_is_swept_later(
    cli: Cli, bucket: str, store_gate: StoreGate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = f"{bucket}/artifacts"
    _homes(tmp_path, store, "a")
    a = _on(cli, monkeypatch, tmp_path / "a")
    a("jobs", "apply", "-f", str(_job(tmp_path)))
    a("retrain", "j")
    store_gate.refuse, store_gate.after = f"/{MODEL}/2-", 1  # the first object goes through
    failed = a("retrain", "j", "--force", code=1)
    assert f"cannot write {store}/{MODEL}/2-" in failed.output
    assert len(failed.output.splitlines()) == 1 and "s3cr3t" not in failed.output
    assert set(_recorded(cli, a)) == {1}
    left = _versions(store) - {_recorded(cli, a)[1].rsplit("/", 2)[-2]}
    assert len(left) == 1 and next(iter(left)).startswith("2-")
    (leftover,) = left
    objects = _fs().ls(f"{store[5:]}/{MODEL}/{leftover}")
    assert len(objects) == 1 and not objects[0].endswith("manifest.json")  # manifest last

    store_gate.refuse = None
    a("retrain", "j", "--force")
    recorded = _recorded(cli, a)
    assert set(recorded) == {1, 2}
    assert _versions(store) == {p.rsplit("/", 2)[-2] for p in recorded.values()}
    assert leftover not in _versions(store)
    runs = json.loads(a("runs", "list", "--json").output)["runs"]
    assert sorted(r["status"] for r in runs) == ["failed", "succeeded", "succeeded"]


def test_a_published_object_is_never_overwritten(bucket: str) -> None:
    from retrain_cli.core.errors import ConflictError
    from retrain_cli.store import objects

    url = f"{bucket}/once/manifest.json"
    objects.put_once(url, data=b"first")
    with pytest.raises(ConflictError, match="never overwritten"):
        objects.put_once(url, data=b"second")
    # the server itself honours create-only writes, not only the check before them
    with pytest.raises(FileExistsError):
        _fs().pipe_file(url, b"second", mode="create")
    assert objects.get_bytes(url) == b"first"


def test_a_reference_profile_is_kept_in_the_bucket_and_checked_when_read(
    cli: Cli, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = f"{bucket}/artifacts"
    _homes(tmp_path, store, "a")
    a = _on(cli, monkeypatch, tmp_path / "a")
    job = _job(tmp_path, drift={"mode": "profile"})
    training_frame(400, seed=4).drop(columns=["y"]).to_parquet(job.parent / "ref.parquet")
    spec = yaml.safe_load(job.read_text())
    spec["data"]["reference"] = "ref.parquet"
    job.write_text(yaml.safe_dump(spec))
    a("jobs", "apply", "-f", str(job))
    built = json.loads(a("drift", "profile", "j", "--json").output)
    (profiled,) = built["results"]
    assert profiled["path"].startswith(f"{store}/{MODEL}/profiles/j-")
    a("drift", "check", "j", code=(0, 3))
    _fs().pipe_file(profiled["path"], b"{}")
    broken = a("drift", "check", "j", code=1)
    assert "sha256 does not match" in broken.output


def test_a_second_database_is_refused_the_prefix_of_the_first(
    cli: Cli, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = f"{bucket}/artifacts"
    _homes(tmp_path, store, "a", "other")
    _on(cli, monkeypatch, tmp_path / "a")("jobs", "list")  # the first command claims it
    refused = as_another_database(cli, tmp_path / "other", monkeypatch)
    assert refused.exit_code == 1
    assert f"{store} belongs to another database" in refused.output


def test_an_ensembles_members_travel_with_it_through_the_bucket(
    cli: Cli, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import SMALL_SEQUENCE, lagged_frame

    store = f"{bucket}/artifacts"
    _homes(tmp_path, store, "a", "b")
    a, b = (_on(cli, monkeypatch, tmp_path / h) for h in "ab")
    job = write_training_job(
        tmp_path / "jobs",
        "j",
        frame=lagged_frame(),
        type="ensemble",
        strategy="incremental",
        members=["lightgbm", "lstm"],
        hyperparameters={**SMALL_SEQUENCE, "num_boost_round": 20},
        thresholds={"performance": 0.5},
        gate={"min_improvement": -1.0},
    )
    a("jobs", "apply", "-f", str(job))
    a("retrain", "j")
    trained = json.loads(b("retrain", "j", "--force", "--json").output)  # from b's copy of v1
    assert trained["version"]["version"] == 2 and trained["promoted"], trained
    v2 = trained["version"]["artifact"]
    listed = json.loads(_fs().cat_file(f"{v2}/ensemble.json"))["members"]
    assert [m["reused"] for m in listed] == [True, True]
    for member in listed:  # each member's own manifest and files are in the bucket
        assert _fs().exists(f"{v2}/{member['path']}/manifest.json")
    a("versions", "rollback", MODEL)  # preflight on a: v1 downloaded whole, members and all


def test_the_documented_bucket_serving_process_serves_a_rollouts_versions_from_the_bucket(
    cli: Cli, bucket: str, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    from tests.test_rollouts import ANALYSIS, MODEL, start_of_rollout

    store = f"{bucket}/artifacts"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(yaml.safe_dump({"artifacts_dir": store}))
    monkeypatch.setenv("RETRAIN_SERVING_STORE", f"{bucket}/serving/")
    monkeypatch.setenv("SERVING_CACHE", str(tmp_path / "serving-cache"))
    start_of_rollout(
        cli, tmp_path, {"mode": "shadow", "steps": [{"bake": "1d"}], "analysis": ANALYSIS}
    )
    text = (Path(__file__).resolve().parent.parent / "docs" / "rollouts.md").read_text()
    serving, bucket_serving = text.split("```python\n")[1:3]
    namespace: dict[str, Any] = {}
    for code in (serving, bucket_serving):  # the bucket's `load` replaces the folder's
        exec(compile(code.split("```", 1)[0], "docs/rollouts.md", "exec"), namespace)
    loaded = namespace["load"](MODEL)
    assert [v["role"] for v, _ in loaded] == ["champion", "shadow"]
    assert all(v["directory"].startswith(f"{store}/{MODEL}/") for v, _ in loaded)
    cached = tmp_path / "serving-cache" / MODEL
    rows = pd.read_parquet(next(cached.iterdir()) / "sample.parquet").head(40)
    scored = namespace["predict"](loaded, rows)
    assert (scored["model_version"] == 1).all()
    assert scored["score"].between(0, 1).all() and scored["shadow_score"].between(0, 1).all()
