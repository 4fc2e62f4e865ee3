"""The benchmarking host: CPU model and SIMD flags, and the measured FMA and AVX2 int8
throughput of one core (the ceiling `edgec bench` reports a share of).

The FMA peak: 10 independent chains of 256-bit FMAs (edgec/workbench/csrc/fma_peak.c), a short
probe after every round of runs, the best probe counts, converted with the assumption that a
core retires FMA_PER_CYCLE FMA instructions of FMA_LANES fp32 lanes per cycle (Zen 3/4,
Haswell and later), which also gives the effective clock. The AVX2 int8 ceiling: 12
independent vpmaddwd + vpaddd chains (MADD_MACS int8 MACs per pair, the inner step of an exact
AVX2 int8 GEMM).
"""

from __future__ import annotations

import ctypes
import os
import platform
import shlex
from pathlib import Path

from edgec.errors import ToolchainError
from edgec.workbench.csources import c_source
from edgec.workbench.toolchain import compile_checked

FMA_LANES = 8  # fp32 lanes of a 256-bit FMA
FMA_PER_CYCLE = 2  # FMA instructions a core retires per cycle (assumption, see docstring)
MADD_MACS = 16  # int8 multiply-accumulates of one 256-bit vpmaddwd (8 lanes x 2 products)


def machine_info() -> dict:
    """CPU model, the SIMD flags that matter here, core count, nominal MHz, OS."""
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "flags": [], "mhz": None, "machine": platform.machine(),
            "os": f"{platform.system()} {platform.release()}"}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and info["cpu"] in ("", platform.machine(), platform.processor()):
            info["cpu"] = value
        elif key == "cpu family":
            info["cpu_family"] = int(value)
        elif key == "model" and "cpu_model" not in info:
            info["cpu_model"] = int(value)
        elif key == "cpu MHz" and info["mhz"] is None:
            info["mhz"] = float(value)
        elif key == "flags" and not info["flags"]:
            have = set(value.split())
            info["flags"] = [f for f in ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f",
                                         "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")
                             if f in have]
    return info


class FmaPeak:
    """The FMA and AVX2 int8 (vpmaddwd + vpaddd) throughput of one core, probed repeatedly
    (the best probe is the peak: on a shared machine a probe can only be slowed down, never
    sped up)."""

    def __init__(self, workdir: Path, cc: str = "cc"):
        self.fn = None
        self.madd_fn = None
        self.best = 0.0
        self.best_madd = 0.0
        if not {"avx2", "fma"} <= set(machine_info()["flags"]):
            return
        src, lib = workdir / "edgec_fma_peak.c", workdir / "libedgec_fma_peak.so"
        src.write_text(c_source("fma_peak.c"))
        try:
            compile_checked([*shlex.split(cc), "-O2", "-mavx2", "-mfma", "-fPIC", "-shared",
                      str(src), "-o", str(lib)], "the FMA peak probe")
        except (ToolchainError, FileNotFoundError):
            return
        dll = ctypes.CDLL(str(lib))
        self.fn, self.madd_fn = dll.edgec_fma_per_second, dll.edgec_madd_per_second
        for fn in (self.fn, self.madd_fn):
            fn.restype, fn.argtypes = ctypes.c_double, [ctypes.c_long]

    def probe(self, iterations: int = 2_000_000) -> None:
        """One short probe of each (~3 ms each)."""
        if self.fn is not None:
            self.best = max(self.best, self.fn(iterations))
            self.best_madd = max(self.best_madd, self.madd_fn(iterations // 2))

    def result(self) -> dict | None:
        """{fma_per_s, peak_gmacs, clock_ghz, int8_avx2_gmacs}, or None without AVX2/FMA or
        a compiler."""
        if self.fn is None or self.best <= 0:
            return None
        return {"fma_per_s": self.best, "peak_gmacs": self.best * FMA_LANES / 1e9,
                "clock_ghz": self.best / FMA_PER_CYCLE / 1e9,
                "int8_avx2_gmacs": self.best_madd * MADD_MACS / 1e9}


def measure_fma_peak(workdir: Path, cc: str = "cc", repeats: int = 20) -> dict | None:
    """Measured FMA throughput of one core: {fma_per_s, peak_gmacs, clock_ghz}; None when
    the host has no AVX2/FMA (or no compiler)."""
    peak = FmaPeak(workdir, cc)
    for _ in range(repeats):
        peak.probe()
    return peak.result()
