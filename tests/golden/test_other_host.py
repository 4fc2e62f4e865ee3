"""Goldens recorded on one x86_64 host check on another.

The suite's host may have AVX-512 (Zen 4) or AVX2 only (Zen 3); numpy, OpenBLAS, torch/oneDNN
and onnxruntime each pick kernels by the CPU they find. To run edgec as it would run on the
*other* kind of host, these tests start Python under QEMU's user-mode x86_64 emulator with a
named CPU model (`qemu-x86_64 -cpu EPYC-Milan`: AVX2 + FMA, no AVX-512). Every library inside
then sees that CPU's CPUID and takes its AVX2 paths; the C that edgec builds runs natively.

- the committed goldens (recorded on whichever host last regenerated them) check under the
  emulated AVX2-only CPU, on the portable and x86_64 int8 targets;
- a golden recorded under the emulated CPU checks natively (the other direction).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from helpers import REPO

QEMU = shutil.which("qemu-x86_64")
AVX2_ONLY_CPU = "EPYC-Milan"  # Zen 3: AVX2 + FMA, no AVX-512

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(QEMU is None, reason="qemu-x86_64 (Debian qemu-user) is not installed"),
    pytest.mark.skipif(os.uname().machine != "x86_64", reason="emulates another x86_64 host"),
]


def _edgec_on_other_cpu(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    """`edgec ARGS` with Python running under the emulated AVX2-only CPU."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([QEMU, "-cpu", AVX2_ONLY_CPU, sys.executable, "-m", "edgec.cli",
                           *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=False, timeout=1500)


def _no_qemu_noise(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "TCG doesn't support" not in line)


def test_emulated_cpu_lacks_avx512():
    """The emulated CPU really is another kind of host (else the tests below prove nothing)."""
    probe = subprocess.run(
        [QEMU, "-cpu", AVX2_ONLY_CPU, sys.executable, "-c",
         "from numpy._core._multiarray_umath import __cpu_features__ as f;"
         "print(int(f['AVX2']), int(f['AVX512F']))"],
        capture_output=True, text=True, check=True, timeout=300)
    assert probe.stdout.split() == ["1", "0"]


@pytest.mark.parametrize("case, targets", [("digits_cnn", "generic-int8,x86_64-int8"),
                                           ("dscnn", "generic-int8")])
def test_committed_goldens_check_on_an_avx2_only_host(case, targets):
    """(Under emulation Python runs ~10x slower: two cases, the int8 targets whose bits
    depend on calibration; the rest of the cases and targets share this code path.)"""
    res = _edgec_on_other_cpu("golden", "check", str(REPO / "golden" / "cases" / case),
                              "-t", targets)
    assert res.returncode == 0, _no_qemu_noise(res.stdout + res.stderr)


def test_golden_recorded_on_an_avx2_only_host_checks_here(tmp_path):
    model = REPO / "golden" / "models" / "digits_cnn.onnx"
    calib = REPO / "golden" / "models" / "digits_calib.npz"
    inputs = REPO / "golden" / "models" / "digits_test.npz"
    rec = _edgec_on_other_cpu("golden", "record", str(model), "-t", "generic-int8",
                              "--calib", str(calib), "--inputs", str(inputs),
                              "--per-layer", "-d", str(tmp_path))
    assert rec.returncode == 0, _no_qemu_noise(rec.stdout + rec.stderr)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    check = subprocess.run([sys.executable, "-m", "edgec.cli", "golden", "check",
                            str(tmp_path / "digits_cnn")], cwd=REPO, env=env, capture_output=True,
                           text=True, check=False, timeout=900)
    assert check.returncode == 0, check.stdout + check.stderr
