from collections.abc import Iterator
from pathlib import Path

import pytest

from retrain_cli.core import paths
from retrain_cli.core.errors import ConfigError, ConflictError, DataError
from retrain_cli.store import artifacts, remote


@pytest.mark.parametrize("name", ["..", "../etc", "a/b", "/abs", ".hidden", "", "x" * 129])
def test_model_names_cannot_escape_the_artifact_directory(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError):
        paths.model_dir(tmp_path, name)


def test_write_atomic_leaves_no_temp_files(tmp_path: Path) -> None:
    artifacts.write_atomic(tmp_path / "f.bin", b"one")
    artifacts.write_atomic(tmp_path / "f.bin", b"two")
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    assert (tmp_path / "f.bin").read_bytes() == b"two"


def test_manifest_digest_verifies_every_file(tmp_path: Path) -> None:
    (tmp_path / "model.txt").write_text("trees")
    (tmp_path / "metadata.json").write_text("{}")
    digest = artifacts.sha256_file(artifacts.write_manifest(tmp_path, "model.txt", {}))
    manifest = artifacts.verify(tmp_path, digest)
    assert set(manifest["files"]) == {"model.txt", "metadata.json"}

    (tmp_path / "model.txt").write_text("tampered")
    with pytest.raises(DataError, match=r"model\.txt is missing or its sha256 does not match"):
        artifacts.verify(tmp_path, digest)
    with pytest.raises(DataError, match="does not match the registered digest"):
        artifacts.verify(tmp_path, "0" * 64)


def test_the_artifact_directories_a_version_creates_are_private(tmp_path: Path) -> None:
    """`artifacts/` and `artifacts/<model>/` name the models: 0700 like the version itself,
    not the 0755 that `mkdir -p` gives parents."""
    root = tmp_path / "new" / "artifacts"
    staging = artifacts.staging_dir(root, "fraud")
    for directory in (tmp_path / "new", root, root / "fraud", staging):
        assert directory.stat().st_mode & 0o777 == 0o700, directory


def test_a_document_written_whole_is_on_disk_before_its_rename_and_the_rename_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The serving documents and the report's pages: without the fsyncs a power cut after the
    rename can leave an empty file where the decision was."""
    import os

    from retrain_cli.core import private

    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append("fsync dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync file")
        real_fsync(fd)

    def replace(src: str, dst: Path) -> None:
        calls.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    private.write_private_text(tmp_path / "fraud.json", "{}\n")
    assert calls == ["fsync file", "rename", "fsync dir"]
    assert (tmp_path / "fraud.json").read_text() == "{}\n"


# A store's versions (`store.remote`), on fsspec's in-memory file system: the same code as for
# s3:// without a server (tests/test_artifact_store.py runs it against an S3 server).


@pytest.fixture
def memory_store() -> Iterator[str]:
    import uuid

    import fsspec

    prefix = f"memory://artifacts-{uuid.uuid4().hex}"
    yield prefix
    fsspec.filesystem("memory").rm(prefix[len("memory://") :], recursive=True)


def _staged(tmp_path: Path) -> tuple[Path, str]:
    staging = tmp_path / "staging"
    staging.mkdir()
    member = staging / "members" / "0-lightgbm"  # an ensemble's member, with its own manifest
    member.mkdir(parents=True)
    (member / "model.txt").write_text("member trees")
    artifacts.write_manifest(member, "model.txt", {})
    (staging / "model.txt").write_text("trees")
    (staging / "metadata.json").write_text("{}")
    manifest = artifacts.write_manifest(staging, "model.txt", {})
    return staging, artifacts.sha256_file(manifest)


@pytest.fixture
def uploaded(tmp_path: Path, memory_store: str) -> tuple[Path, str, str]:
    """A staged version uploaded to the store: its staging folder, digest and prefix."""
    staging, digest = _staged(tmp_path)
    prefix = paths.version_key(memory_store, "m", 1, digest)
    remote.upload(staging, prefix)
    return staging, digest, prefix


def test_an_uploaded_version_verifies_and_is_fetched_once_into_the_cache(
    tmp_path: Path, uploaded: tuple[Path, str, str]
) -> None:
    staging, digest, prefix = uploaded
    remote.verify(staging, prefix)
    with pytest.raises(ConflictError, match="never overwritten"):
        remote.upload(staging, prefix)
    cache = tmp_path / "cache"
    here = remote.local_directory(f"{prefix}/manifest.json", digest, cache, "m v1")
    assert here == cache / "m" / prefix.rsplit("/", 1)[-1]
    assert here.stat().st_mode & 0o777 == 0o700  # this host's copy is private
    assert (here / "model.txt").read_text() == "trees"
    assert (here / "members" / "0-lightgbm" / "model.txt").read_text() == "member trees"
    (here / "manifest.json").write_text("{}")  # an altered copy is fetched again
    assert remote.local_directory(f"{prefix}/manifest.json", digest, cache, "m v1") == here
    artifacts.verify(here, digest)


def test_an_altered_object_fails_verification_and_the_preflights_fetch(
    uploaded: tuple[Path, str, str],
) -> None:
    from retrain_cli.store import objects

    staging, digest, prefix = uploaded
    fs, path = objects.filesystem(f"{prefix}/model.txt")
    fs.pipe_file(path, b"other trees")
    with pytest.raises(DataError, match=r"model\.txt: the store holds other bytes"):
        remote.verify(staging, prefix)
    with (
        pytest.raises(DataError, match=r"failed their check: .*model\.txt: sha256 does not match"),
        remote.fetched(f"{prefix}/manifest.json", digest, "m v1"),
    ):
        pass
    objects.remove(f"{prefix}/metadata.json")
    with (
        pytest.raises(DataError, match=r"metadata\.json is missing: the manifest lists it"),
        remote.fetched(f"{prefix}/manifest.json", digest, "m v1"),
    ):
        pass


def test_the_sweep_removes_unrecorded_versions_up_to_the_registering_one(
    memory_store: str,
) -> None:
    from retrain_cli.store import objects

    digest = "0123456789abcdef" * 4
    names = [paths.version_name(n, digest) for n in (1, 2, 3)]
    for name in names:
        objects.put_once(f"{memory_store}/m/{name}/model.txt", data=b"x")
    objects.put_once(f"{memory_store}/m/profiles/j-0123456789abcdef.json", data=b"{}")
    removed = remote.sweep(memory_store, "m", recorded={names[0]}, up_to=2)
    assert removed == [f"{memory_store}/m/{names[1]}"]  # 3 may be an upload in flight
    assert objects.folders(f"{memory_store}/m") == {names[0], names[2], "profiles"}
