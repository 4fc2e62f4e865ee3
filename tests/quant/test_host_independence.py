"""int8 bits do not depend on the host: calibration, scales, lookup tables and the committed
goldens come out the same when numpy's SIMD dispatch and OpenBLAS's kernel are forced to
other code paths (NPY_DISABLE_CPU_FEATURES, OPENBLAS_CORETYPE), which is what a different
CPU does to them. Also checks edgec.detmath against Python's math and exact integers."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO

from edgec import detmath

MODELS = REPO / "golden" / "models"

# Compiles each model for generic-int8 and prints what decides the int8 bits: every layer's
# scales and zero points, and the generated weights/C (multipliers, tables, int8 weights).
PROBE = r"""
import hashlib, json, sys
from edgec.compiler import CompileOptions, compile_model
out = {}
for path, calib in json.loads(sys.argv[1]):
    res = compile_model(path, CompileOptions(target="generic-int8", calib=calib))
    layers = [{k: v for k, v in layer.items() if k.endswith(("scale", "zero_point", "_min",
               "_max"))} for layer in res.report["quantization"]["layers"]]
    files = {n: hashlib.sha256(t.encode()).hexdigest() for n, t in sorted(res.files.items())
             if n.endswith((".c", ".h")) and isinstance(t, str)}
    out[path] = {"layers": layers, "files": files}
print(json.dumps(out, sort_keys=True))
"""


def _feature_env(level: str) -> dict[str, str]:
    """Environment forcing numpy/OpenBLAS onto other code paths than this host's best.

    (Before calibration computed products exactly, "baseline" moved digits_cnn's scales
    by an ulp, as the AVX2-only host of issue #11 did.)
    "default": no forcing (OPENBLAS_CORETYPE removed, so OpenBLAS picks for the CPU);
    "no-top": numpy's highest dispatch targets disabled; "baseline": every numpy dispatch
    target disabled and OpenBLAS on its oldest kernel for the architecture. Only features
    this host has and that are not numpy's baseline are named (numpy rejects others)."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES")}
    available = [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]
    if level == "no-top":
        available = available[len(available) // 2:]
    elif level == "default":
        available = []
    if available:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(available)
    if level == "baseline":
        machine = platform.machine().lower()
        core = {"x86_64": "Prescott", "amd64": "Prescott", "aarch64": "ARMV8",
                "arm64": "ARMV8"}.get(machine)
        if core:
            env["OPENBLAS_CORETYPE"] = core
        # torch/oneDNN too, should anything in the int8 path ever reach for them again
        env.update(ATEN_CPU_CAPABILITY="default", ONEDNN_MAX_CPU_ISA="SSE41")
    return env


def _probe(level: str, cases: list) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(cases)], cwd=REPO,
                          env=_feature_env(level), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_forced_feature_sets_really_change_numpy_paths():
    """The forcing is not a no-op where numpy dispatches: the disabled targets are reported
    as unavailable in the child process."""
    env = _feature_env("baseline")
    names = env.get("NPY_DISABLE_CPU_FEATURES", "").split()
    if not names:
        pytest.skip("numpy dispatches to nothing beyond its baseline on this host")
    code = ("import json; from numpy._core._multiarray_umath import __cpu_features__ as f; "
            f"print(json.dumps([f[n] for n in {names!r}]))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert not any(json.loads(out))


def _lookup_model(path) -> str:
    """Gemm -> Sigmoid -> MatMul -> Tanh -> Softplus -> Gemm -> Softmax: lookup tables built
    from transcendental functions, products, and a float tail."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    inits = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
             for name, shape in (("w0", (64, 48)), ("w1", (48, 40)), ("w2", (40, 10)))]
    nodes = [helper.make_node("Gemm", ["x", "w0"], ["g0"]),
             helper.make_node("Sigmoid", ["g0"], ["s0"]),
             helper.make_node("MatMul", ["s0", "w1"], ["m1"]),
             helper.make_node("Tanh", ["m1"], ["t1"]),
             helper.make_node("Softplus", ["t1"], ["p1"]),
             helper.make_node("Gemm", ["p1", "w2"], ["g2"]),
             helper.make_node("Softmax", ["g2"], ["y"], axis=-1)]
    graph = helper.make_graph(
        nodes, "lookups", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


@pytest.mark.slow
def test_int8_compile_is_identical_under_other_numpy_and_blas_paths(tmp_path):
    cases = [[str(MODELS / "digits_cnn.onnx"), str(MODELS / "digits_calib.npz")],
             [str(MODELS / "dscnn.onnx"), None], [str(MODELS / "resnet8.onnx"), None],
             [_lookup_model(tmp_path / "lookups.onnx"), None]]
    results = {level: _probe(level, cases) for level in ("default", "no-top", "baseline")}
    assert results["default"] == results["no-top"]
    assert results["default"] == results["baseline"]


@pytest.mark.slow
def test_committed_goldens_check_under_a_forced_feature_set():
    """golden/cases, recorded on another host, checks here with numpy and OpenBLAS forced
    to their oldest code paths (int8 targets: bit-exact integer tensors)."""
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "golden", "check",
                           str(REPO / "golden" / "cases"), "-t", "generic-int8", "--json"],
                          cwd=REPO, env=_feature_env("baseline"), capture_output=True,
                          text=True, timeout=900)
    report = json.loads(proc.stdout)
    statuses = {(c["case"], c["target"]): c["status"] for c in report["cases"]}
    assert statuses and all(s == "pass" for s in statuses.values()), (statuses, proc.stderr)


@pytest.mark.slow
def test_golden_recorded_under_one_feature_set_checks_under_another(tmp_path):
    """A golden recorded with numpy/OpenBLAS on their oldest paths (as on an older CPU)
    checks with this host's best paths, and the other way round (digits_cnn: its output is
    a dequantised int8 tensor, compared bit for bit); the mse method exercises the histogram
    search too."""
    cases = {"old": tmp_path / "old", "new": tmp_path / "new"}
    for (record_level, check_level), key in ((("baseline", "default"), "old"),
                                             (("default", "baseline"), "new")):
        rec = subprocess.run(
            [sys.executable, "-m", "edgec.cli", "golden", "record",
             str(MODELS / "digits_cnn.onnx"), "-t", "generic-int8", "-d", str(cases[key]),
             "--calib", str(MODELS / "digits_calib.npz"), "--calib-method", "mse"],
            cwd=REPO, env=_feature_env(record_level), capture_output=True, text=True,
            timeout=600)
        assert rec.returncode == 0, rec.stdout + rec.stderr
        chk = subprocess.run([sys.executable, "-m", "edgec.cli", "golden", "check",
                              str(cases[key]), "--json"], cwd=REPO,
                             env=_feature_env(check_level), capture_output=True, text=True,
                             timeout=600)
        statuses = [c["status"] for c in json.loads(chk.stdout)["cases"]]
        assert statuses == ["pass"], chk.stdout + chk.stderr


# ------------------------------------------------------------------ detmath itself
def test_detmath_functions_match_python_math_within_four_float64_ulps():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.standard_normal(2000) * 8, rng.standard_normal(200) * 1e-7,
                        [0.0, 1e-300, -700.0, 700.0, 0.5, -0.5]])
    for name, ref in (("exp", math.exp), ("expm1", math.expm1), ("tanh", math.tanh)):
        got = getattr(detmath, name)(x)
        want = np.array([ref(v) for v in x])
        ulp = np.spacing(np.abs(want))
        assert np.all(np.abs(got - want) <= 4 * ulp + 1e-320), name
    pos = np.abs(x) + 1e-12
    for name, ref in (("log", math.log), ("log1p", math.log1p)):
        got = getattr(detmath, name)(pos)
        want = np.array([ref(v) for v in pos])
        assert np.all(np.abs(got - want) <= 4 * np.spacing(np.abs(want))), name
    assert detmath.exp(np.float32(1.0)).dtype == np.float32
    assert np.isnan(detmath.log(-1.0)) and detmath.log(0.0) == -np.inf
    assert detmath.exp(1000.0) == np.inf and detmath.exp(-1000.0) == 0.0


def test_exact_matmul_is_exact_on_its_grid_and_order_free():
    """Every partial sum is an integer below 2^53: the product equals the int64 product of
    the grid integers, and any summation order (reversed K) gives the same bits."""
    rng = np.random.default_rng(4)
    a = rng.standard_normal((9, 700)).astype(np.float32)
    b = rng.standard_normal((700, 5)).astype(np.float32)
    y = detmath.exact_matmul(a, b)
    y_rev = detmath.exact_matmul(a[:, ::-1], b[::-1])
    assert np.array_equal(y, y_rev)
    assert np.allclose(y, a.astype(np.float64) @ b, rtol=0, atol=1e-4)
    ai = rng.integers(-1000, 1000, (6, 50))
    bi = rng.integers(-1000, 1000, (50, 4))
    assert np.array_equal(detmath.exact_matmul(ai.astype(np.float64), bi.astype(np.float64)),
                          (ai @ bi).astype(np.float64))


def test_deterministic_math_restores_numpy():
    before = np.exp
    with detmath.deterministic_math():
        assert np.exp is detmath.exp
    assert np.exp is before
