"""numpy's kernels on AMD Zen 4: AVX2, chosen before numpy loads, unless the user chose."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from retrain_cli.cpu import (
    AVX512_TARGETS,
    DISABLE,
    ENABLE,
    choose_numpy_kernels,
    prefers_avx2_sort,
)


def cpu_entry(vendor: str, family: int, flags: str) -> str:
    return (
        f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: 17\n"
        f"flags\t\t: fpu sse2 avx avx2 {flags}\n"
    )


ZEN4 = cpu_entry("AuthenticAMD", 25, "avx512f avx512dq avx512_vbmi2")


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        pytest.param(ZEN4, True, id="zen4"),
        pytest.param(cpu_entry("AuthenticAMD", 25, ""), False, id="zen3-no-avx512"),
        pytest.param(cpu_entry("AuthenticAMD", 26, "avx512f"), False, id="zen5"),
        pytest.param(cpu_entry("GenuineIntel", 6, "avx512f"), False, id="intel-avx512"),
        pytest.param("", False, id="nothing-known"),
    ],
)
def test_only_zen4_prefers_the_avx2_sort(cpuinfo: str, expected: bool) -> None:
    assert prefers_avx2_sort(cpuinfo) is expected


def test_the_choice_is_left_alone_once_numpy_is_loaded(tmp_path: Path) -> None:
    import numpy  # noqa: F401  (loaded in this process, as in any test)

    (tmp_path / "cpuinfo").write_text(ZEN4)
    environ: dict[str, str] = {}
    choose_numpy_kernels(environ, tmp_path / "cpuinfo")
    assert environ == {}


def test_no_cpuinfo_means_no_change(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    choose_numpy_kernels(environ, tmp_path / "missing")
    assert environ == {}


# A fresh interpreter: choose, then load numpy (warnings as errors: numpy warns about a name it
# does not know) and report what it dispatches.
PROBE = """
import json, os, sys
from pathlib import Path
from retrain_cli.cpu import choose_numpy_kernels
choose_numpy_kernels(cpuinfo=Path(sys.argv[1]))
import numpy
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
print(json.dumps({"variable": os.environ.get("NPY_DISABLE_CPU_FEATURES"),
                  "dispatch": list(__cpu_dispatch__), "features": __cpu_features__}))
"""


def probe(tmp_path: Path, cpuinfo: str, **environ: str) -> dict[str, object]:
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    env = {k: v for k, v in os.environ.items() if k not in {DISABLE, ENABLE}}
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", PROBE, str(tmp_path / "cpuinfo")],
        env={**env, **environ},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stderr == ""
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_on_zen4_numpy_loads_without_its_avx512_kernels(tmp_path: Path) -> None:
    result = probe(tmp_path, ZEN4)
    assert result["variable"] == AVX512_TARGETS
    dispatch = result["dispatch"]
    assert isinstance(dispatch, list)
    assert set(AVX512_TARGETS.split()) <= set(dispatch), "numpy renamed its dispatch targets"
    features = result["features"]
    assert isinstance(features, dict)
    assert not any(features[name] for name in AVX512_TARGETS.split())


def test_elsewhere_numpy_keeps_its_choice(tmp_path: Path) -> None:
    assert probe(tmp_path, cpu_entry("GenuineIntel", 6, "avx512f"))["variable"] is None


@pytest.mark.parametrize("variable", [DISABLE, ENABLE])
def test_a_users_own_numpy_setting_wins(tmp_path: Path, variable: str) -> None:
    result = probe(tmp_path, ZEN4, **{variable: ""})
    assert result["variable"] == ("" if variable == DISABLE else None)
