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
