"""Choices about the CPU that must be made before numpy loads (it reads them once, at import).

numpy picks its fastest kernels at import time. On AMD Zen 4 it picks the AVX-512 sort
(x86-simd-sort), which that CPU runs several times slower than the AVX2 one: the compress-store
instruction the sort is built on is microcoded there (numpy/x86-simd-sort#6). Measured on a
Zen 4 EPYC with numpy 2.4: `np.sort` of 1M float64 54 ms with AVX-512, 9 ms with AVX2;
`np.argsort` 79 ms and 30 ms. AVX2 costs exp, log and tanh about 3 ms more per million values;
drift checks and rank metrics sort millions of values and compute few exponentials.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

DISABLE = "NPY_DISABLE_CPU_FEATURES"
ENABLE = "NPY_ENABLE_CPU_FEATURES"
# numpy >= 2.4 names its AVX-512 dispatch targets X86_V4, AVX512_ICL and AVX512_SPR.
AVX512_TARGETS = "X86_V4 AVX512_ICL AVX512_SPR"
ZEN3_ZEN4_FAMILY = 0x19  # Zen 3 has no AVX-512; Zen 5 (0x1A) runs the AVX-512 sort well


def prefers_avx2_sort(cpuinfo: str) -> bool:
    """Whether this CPU, described by the first entry of /proc/cpuinfo, is an AMD Zen 4: AVX-512
    capable, and slow at numpy's AVX-512 sort."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return (
        fields.get("vendor_id") == "AuthenticAMD"
        and fields.get("cpu family") == str(ZEN3_ZEN4_FAMILY)
        and "avx512f" in fields.get("flags", "").split()
    )


def choose_numpy_kernels(
    environ: MutableMapping[str, str] | None = None, cpuinfo: Path = Path("/proc/cpuinfo")
) -> None:
    """On a Zen 4, have numpy use its AVX2 kernels in this process and its children.

    Leaves everything as it is when numpy is already imported (too late, and not ours to
    change); see `numpy_setting` for the rest.
    """
    environ = os.environ if environ is None else environ
    if "numpy" in sys.modules:
        return
    value = numpy_setting(environ, cpuinfo)
    if value is not None:
        environ[DISABLE] = value


def numpy_setting(environ: Mapping[str, str], cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The NPY_DISABLE_CPU_FEATURES value this CPU wants, or None: when the user set either
    NPY_*_CPU_FEATURES variable, or on any CPU but a Zen 4."""
    if DISABLE in environ or ENABLE in environ:
        return None
    try:
        with cpuinfo.open(encoding="ascii", errors="replace") as file:
            first_cpu = file.read(16384).split("\n\n", 1)[0]  # the kernel writes it on demand
    except OSError:  # not Linux, or no /proc
        return None
    return AVX512_TARGETS if prefers_avx2_sort(first_cpu) else None
