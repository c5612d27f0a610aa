"""deploy/kubernetes/: every manifest valid, strictly and offline, against the schemas of
Kubernetes 1.33 (kubernetes-validate), its CronJobs the lines of cron.d/retrain-cli, its pods
non-root on a read-only root file system, and its config and job files retrain-cli's own."""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from retrain_cli.core.config_file import parse_config
from retrain_cli.jobs.files import validate_job

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
KUBERNETES = "1.33.0"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, document)
        for path in sorted(DEPLOY.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def _pods() -> list[tuple[str, dict[str, Any]]]:
    """Each pod template: a Job's, or a CronJob's Job's."""
    pods = []
    for _, document in _documents():
        if document["kind"] == "Job":
            pods.append((document["metadata"]["name"], document["spec"]["template"]["spec"]))
        elif document["kind"] == "CronJob":
            template = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            pods.append((document["metadata"]["name"], template))
    return pods


def _config_map(name: str) -> dict[str, str]:
    found = [
        d for _, d in _documents() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name
    ]
    assert len(found) == 1
    data: dict[str, str] = found[0]["data"]
    return data


@pytest.mark.parametrize(
    ("file", "document"), _documents(), ids=lambda v: v if isinstance(v, str) else v["kind"]
)
def test_each_manifest_is_valid_strictly_against_the_kubernetes_schemas(
    file: str, document: dict[str, Any]
) -> None:
    kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_strict_validation_refuses_an_unknown_field() -> None:
    _, cronjob = next((f, d) for f, d in _documents() if d["kind"] == "CronJob")
    typo = copy.deepcopy(cronjob)
    typo["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["arg"] = ["x"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBERNETES, strict=True)


def _cron_lines() -> list[tuple[str, list[str]]]:
    """(schedule, retrain-cli's arguments) of each line of cron.d/retrain-cli."""
    lines = []
    for line in (ROOT / "cron.d" / "retrain-cli").read_text().splitlines():
        fields = line.split()
        if len(fields) < 8 or line.startswith("#") or "=" in fields[0]:
            continue
        command = shlex.split(" ".join(fields[6:]))
        assert command[0] == "retrain-cli"
        lines.append((" ".join(fields[:5]), command[1:]))
    return lines


def test_the_cronjobs_are_the_lines_of_the_cron_file() -> None:
    cronjobs = {
        d["spec"]["schedule"]: d["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][
            0
        ]["args"]
        for _, d in _documents()
        if d["kind"] == "CronJob"
    }
    expected = {}
    for schedule, args in _cron_lines():
        if args[:3] == ["jobs", "due", "--run"]:  # a pod's processes end with it: wait
            args = [*args[:3], "--wait", *args[3:]]
        expected[schedule] = args
    assert len(expected) == 3 and cronjobs == expected


@pytest.mark.parametrize(("name", "pod"), _pods(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_pod_runs_non_root_on_a_read_only_root_with_an_empty_home(
    name: str, pod: dict[str, Any]
) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "retrain-cli"
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in [*pod["containers"], *pod.get("initContainers", [])]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        env = {e["name"]: e["value"] for e in container["env"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts[env["RETRAIN_HOME"]]]
        assert "emptyDir" in volumes[mounts["/tmp"]]
        assert container["envFrom"] == [{"secretRef": {"name": "retrain-cli-database"}}]
        limits, requests = container["resources"]["limits"], container["resources"]["requests"]
        assert set(requests) == {"cpu", "memory"} and set(limits) == {"cpu", "memory"}


def test_the_config_is_retrain_clis_and_the_jobs_due_pod_has_a_core_per_retrain() -> None:
    config = parse_config(yaml.safe_load(_config_map("retrain-cli-config")["config.yaml"]))
    assert config.semaphore == "database"  # the pods share one PostgreSQL, not a disk of locks
    pods = dict(_pods())
    due = pods["retrain-cli-jobs-due"]["containers"][0]["resources"]
    assert due["requests"]["cpu"] == due["limits"]["cpu"] == str(config.max_concurrent_retrains)
    # no pod mounts a shared volume: versions, profiles and serving documents are in a bucket
    assert config.artifacts_dir and config.artifacts_dir.startswith("s3://")
    assert config.serving.store and config.serving.store.startswith("s3://")
    for _, pod in _pods():
        assert all("emptyDir" in v or "configMap" in v for v in pod["volumes"])


def test_the_job_files_of_the_config_map_are_valid_jobs_and_all_applied(tmp_path: Path) -> None:
    jobs = _config_map("retrain-cli-jobs")
    for name, text in jobs.items():
        spec = validate_job(yaml.safe_load(text), base_dir=tmp_path, source=name)
        assert spec.data.train.path is not None and spec.data.train.path.startswith("s3://")
    init = dict(_pods())["retrain-cli-db-init"]
    assert init["initContainers"][0]["args"] == ["db", "init"]
    applied = init["containers"][0]["args"]
    assert applied[:2] == ["jobs", "apply"]
    assert sorted(Path(a).name for a in applied[2:] if a != "-f") == sorted(jobs)


def test_the_image_installs_cpu_pytorch_and_runs_as_the_pods_user() -> None:
    containerfile = (ROOT / "deploy" / "Containerfile").read_text()
    assert re.search(
        r"pip install torch==\S+ --index-url https://download.pytorch.org/whl/cpu", containerfile
    )
    uid = re.search(r"^USER (\d+)", containerfile, re.M)
    assert uid is not None
    assert {pod["securityContext"]["runAsUser"] for _, pod in _pods()} == {int(uid.group(1))}
