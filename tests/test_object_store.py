"""Data sources in an object store: `s3://` Parquet files, directories and globs, read through
fsspec (s3fs) from a real S3-protocol server on 127.0.0.1 (moto's), streamed as local ones are,
and by a Dask cluster's workers directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import Cli, as_another_database, require_distributed
from tests.helpers import training_frame, window, write_job

pytestmark = pytest.mark.slow


def _upload(frame: Any, url: str) -> None:
    frame.to_parquet(url, index=False)


def _windows(prefix: str, local: Path) -> None:
    """The same windows in the bucket and on disk: a reference file, a current hive dataset."""
    local.mkdir(parents=True, exist_ok=True)
    reference = window(3000, seed=1)
    current = window(3000, seed=2, shift=0.4)
    current["day"] = np.repeat(np.arange(3), 1000)
    _upload(reference, f"{prefix}/ref.parquet")
    reference.to_parquet(local / "ref.parquet", index=False)
    for day in range(3):
        part = current[current["day"] == day].drop(columns=["day"])
        _upload(part, f"{prefix}/cur/day={day}/part.parquet")
        (local / "cur" / f"day={day}").mkdir(parents=True, exist_ok=True)
        part.to_parquet(local / "cur" / f"day={day}" / "part.parquet", index=False)


def _apply(cli: Cli, folder: Path, name: str, data: dict[str, str], **fields: Any) -> None:
    spec = write_job(folder, name, data=data, features=["f0", "f1", "colour"], **fields)
    result = cli("jobs", "apply", "-f", str(spec))
    assert result.exit_code == 0, result.output


def _statistics(result: dict[str, Any]) -> list[tuple[str, float | None]]:
    return [(c["feature"], c["statistic"]) for c in result["features"]]


@pytest.mark.parametrize("mode", ["exact", "profile"])
def test_a_drift_check_reads_the_bucket_as_it_reads_the_disk(
    cli: Cli, bucket: str, tmp_path: Path, mode: str
) -> None:
    _windows(bucket, tmp_path / "local")
    there = {"train": f"{bucket}/ref.parquet", "reference": f"{bucket}/ref.parquet"}
    here = {"train": "local/ref.parquet", "reference": "local/ref.parquet"}
    _apply(cli, tmp_path, "bucket", {**there, "current": f"{bucket}/cur/"}, drift={"mode": mode})
    _apply(cli, tmp_path, "disk", {**here, "current": "local/cur/"}, drift={"mode": mode})
    checked = cli("drift", "check", "bucket", "disk", "--json")
    assert checked.exit_code in (0, 3), checked.output
    remote, local = json.loads(checked.output)["results"]
    assert remote["n_current"] == local["n_current"] == 3000
    assert _statistics(remote) == _statistics(local)
    assert remote["drifted"] == local["drifted"]


def test_a_retrain_and_a_contract_read_the_training_data_from_the_bucket(
    cli: Cli, bucket: str, tmp_path: Path
) -> None:
    frame = training_frame(n=800)
    pq.write_table(pa.Table.from_pandas(frame), f"{bucket[5:]}/a.parquet", filesystem=_fs())
    _upload(frame.tail(400), f"{bucket}/b.parquet")
    contract = {"min_rows": 1000, "columns": {"f0": {"type": "number", "max_missing": 0.0}}}
    spec = write_job(
        tmp_path,
        "remote",
        data={"train": f"{bucket}/*.parquet"},  # a glob: both files, in name order
        hyperparameters={"num_boost_round": 20, "num_threads": 1},
        thresholds={"performance": 0.6},
        schema=contract,
    )
    assert cli("jobs", "apply", "-f", str(spec)).exit_code == 0
    trained = cli("retrain", "remote", "--json")
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.output)["status"] == "succeeded"
    inferred = cli("jobs", "schema", "remote", "--json")
    assert json.loads(inferred.output)["schema"]["columns"]["f0"]["type"] == "number"
    again = cli("retrain", "remote", "--json")  # the objects' ETags say nothing changed
    assert json.loads(again.output)["status"] == "skipped"


def test_a_missing_object_and_an_unreachable_store_are_one_line_naming_the_url(
    cli: Cli, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s3fs

    _upload(window(200), f"{bucket}/ref.parquet")
    data = {"train": f"{bucket}/ref.parquet", "reference": f"{bucket}/ref.parquet"}
    _apply(cli, tmp_path, "gone", {**data, "current": f"{bucket}/missing.parquet"})
    missing = cli("drift", "check", "gone")
    assert missing.exit_code == 1
    assert missing.output.strip() == (
        f"Error: gone: current data {bucket}/missing.parquet: no such file"
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        unreachable = cli("drift", "check", "gone")
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
    assert unreachable.exit_code == 1
    lines = unreachable.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: gone: reference data {bucket}/")
    assert "s3cr3t-never-printed" not in unreachable.output


def test_the_cluster_reads_the_bucket_directly(
    cli: Cli, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_distributed()
    from distributed import LocalCluster

    _windows(bucket, tmp_path / "local")
    data = {"train": f"{bucket}/ref.parquet", "reference": f"{bucket}/ref.parquet"}
    drift = {"mode": "profile"}
    _apply(cli, tmp_path, "here", {**data, "current": f"{bucket}/cur/"}, drift=drift)
    _apply(
        cli, tmp_path, "there", {**data, "current": f"{bucket}/cur/"}, drift=drift, compute="dask"
    )
    # the workers start after the environment points S3 at the test server: they read it too
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        monkeypatch.setenv("RETRAIN_DASK_SCHEDULER", cluster.scheduler_address)
        checked = cli("drift", "check", "here", "there", "--json")
    assert checked.exit_code in (0, 3), checked.output
    here, there = json.loads(checked.output)["results"]
    assert (here["compute"], there["compute"]) == ("local", "dask")
    assert _statistics(here) == _statistics(there)


def _fs() -> Any:
    import s3fs

    return s3fs.S3FileSystem()


def _serving_document(store: str, model: str) -> dict[str, Any]:
    """The document as the serving snippet of docs/rollouts.md reads it."""
    import fsspec

    with fsspec.open(f"{store.rstrip('/')}/{model}.json") as f:
        return json.load(f)  # type: ignore[no-any-return]


def test_serving_documents_are_published_to_the_bucket_for_hosts_without_a_shared_home(
    cli: Cli, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import write_training_job

    store = f"{bucket}/serving/"
    shared = tmp_path / "artifacts"
    for host in ("a", "b"):
        (tmp_path / host).mkdir()
        (tmp_path / host / "config.yaml").write_text(f"artifacts_dir: {shared}\n")
    monkeypatch.setenv("RETRAIN_SERVING_STORE", store)

    def on(host: str, *args: str) -> Any:
        monkeypatch.setenv("RETRAIN_HOME", str(tmp_path / host))
        result = cli(*args)
        assert result.exit_code == 0, result.output
        return result

    job = write_training_job(tmp_path / "jobs", "j", thresholds={"performance": 0.5})
    on("a", "jobs", "apply", "-f", str(job))
    on("a", "retrain", "j")
    assert [v["version"] for v in _serving_document(store, "j-model")["versions"]] == [1]
    on("a", "retrain", "j", "--force", "--no-promote")
    on("b", "versions", "promote", "j-model", "2", "--reason", "from host b")
    assert [v["version"] for v in _serving_document(store, "j-model")["versions"]] == [2]
    on("b", "versions", "rollback", "j-model")
    assert [v["version"] for v in _serving_document(store, "j-model")["versions"]] == [1]
    shown = on("b", "versions", "serving", "j-model")
    assert f"{store}j-model.json" in shown.output
    local = json.loads((tmp_path / "b" / "serving" / "j-model.json").read_text())
    assert local == _serving_document(store, "j-model")  # the same document in both places

    import s3fs

    s3fs.S3FileSystem().rm(f"{store[5:]}j-model.json")
    on("a", "jobs", "due")  # a tick puts what the store lacks
    assert [v["version"] for v in _serving_document(store, "j-model")["versions"]] == [1]

    refused = as_another_database(cli, tmp_path / "other", monkeypatch)
    assert refused.exit_code == 1
    assert f"{store} belongs to another database" in refused.output


def test_the_report_is_published_to_a_bucket_prefix_the_database_claims(
    cli: Cli, bucket: str, tmp_path: Path, session: Any, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s3fs

    from tests.test_report import HOSTILE, NOW, seeded

    seeded(cli, session, tmp_path, "fraud", hostile=True)
    out = f"{bucket}/report/"
    result = cli("report", "--out", out, "--now", NOW.isoformat(), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["index"] == f"{bucket}/report/index.html"
    fs = s3fs.S3FileSystem()
    stored = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{bucket[5:]}/report", detail=False))
    pages = sorted(Path(p).name for p in document["pages"].values())
    assert stored == sorted(["index.html", "owner.json", *pages])
    assert all(p.startswith(f"{bucket}/report/") for p in document["pages"].values())
    assert HOSTILE not in stored  # a name with `../` and markup stays inside the prefix
    index = fs.cat_file(f"{bucket[5:]}/report/index.html").decode()
    assert "retrain-cli report" in index and "fraud-model" in index

    refused = as_another_database(cli, tmp_path / "other-home", monkeypatch, "report", "--out", out)
    assert refused.exit_code == 1 and "belongs to another database" in refused.output


def test_store_options_in_the_config_file_reach_the_store_and_their_secrets_are_never_printed(
    cli: Cli,
    bucket: str,
    s3_server: str,
    tmp_path: Path,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fsspec.config
    import s3fs

    _upload(window(300), f"{bucket}/ref.parquet")
    _upload(window(300, seed=2), f"{bucket}/cur.parquet")
    data = {
        "train": f"{bucket}/ref.parquet",
        "reference": f"{bucket}/ref.parquet",
        "current": f"{bucket}/cur.parquet",
    }
    _apply(cli, tmp_path, "configured", data)
    monkeypatch.setattr(fsspec.config, "conf", {})  # what the config file sets, for this test
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    secret = "config-file-s3cr3t"

    def configure(endpoint: str) -> None:
        s3fs.S3FileSystem.clear_instance_cache()
        options = {"endpoint_url": endpoint, "key": "config-key-id", "secret": secret}
        options["config_kwargs"] = {"retries": {"max_attempts": 1}}
        (home / "config.yaml").write_text(json.dumps({"storage_options": {"s3": options}}))

    configure(s3_server)
    checked = cli("drift", "check", "configured")
    assert checked.exit_code in (0, 3), checked.output
    configure("http://127.0.0.1:9")  # nothing listens there
    failed = cli("drift", "check", "configured", "--debug")
    assert failed.exit_code != 0
    assert secret not in failed.output and secret not in str(failed.exception)
    s3fs.S3FileSystem.clear_instance_cache()
