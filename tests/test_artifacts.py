from pathlib import Path

import pytest

from retrain_cli.core import paths
from retrain_cli.core.errors import ConfigError, DataError
from retrain_cli.store import artifacts


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
