"""arm64 acceptance: every zoo model and the int8 conformance cases on every arm64 target,
MobileNetV2's instruction budget on arm64-int8, and the README's verify command."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import REPO

from edgec.compiler import CompileOptions
from edgec.workbench.verify import verify_model

ARM64_TARGETS = ("arm64-fp32", "arm64-int8", "arm64-int8-i8mm", "arm64-int8-base")
INT8_ONNX_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
                 "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"}


def test_readme_verify_command_prints_the_report(zoo_dir):
    """`edgec verify golden/models/digits_cnn.onnx -t arm64-int8`: compile, cross-build, run
    under qemu, compare bit for bit, print the report."""
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "verify",
                           str(zoo_dir / "digits_cnn.onnx"), "-t", "arm64-int8"],
                          capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "on arm64-int8" in proc.stdout and "bit-exact" in proc.stdout
    assert proc.stdout.rstrip().endswith("edgec verify: PASS")


@pytest.mark.parametrize("model", ["digits_cnn", "dscnn", "resnet8"])
def test_i8mm_zoo_bit_exact(zoo_dir, model):
    """arm64-int8-i8mm (SMMLA GEMMs, SDOT depthwise) under qemu -cpu max: bit-exact with the
    int8 reference interpreter on the small zoo models."""
    res = verify_model(zoo_dir / f"{model}.onnx", CompileOptions(target="arm64-int8-i8mm"))
    assert res.ok and res.exact, [(o.name, o.max_rel_err, o.mismatched) for o in res.outputs]


@pytest.mark.slow
@pytest.mark.parametrize("target", ARM64_TARGETS)
@pytest.mark.parametrize("model", ["digits_cnn", "dscnn", "resnet8", "mobilenetv2",
                                   "mobilenetv2_trained"])
def test_zoo_model_verifies(zoo_dir, model, target):
    res = verify_model(zoo_dir / f"{model}.onnx", CompileOptions(target=target))
    # int8: bit-exact with the int8 reference (outputs of a float island such as a final
    # Softmax: within the fp32 tolerance); fp32: within 1e-4 of onnxruntime
    assert res.ok, [(o.name, o.max_rel_err, o.mismatched) for o in res.outputs]
    assert res.exact == (target != "arm64-fp32")


@pytest.mark.slow
@pytest.mark.parametrize("target", ARM64_TARGETS)
def test_int8_conformance_cases(target, monkeypatch):
    """The ONNX backend cases of the quantisation operators pass when built for arm64."""
    sys.path.insert(0, str(REPO / "tools"))
    import conformance

    monkeypatch.setattr(conformance, "TARGET", target)
    cases = [c for c in conformance.claimed_cases()
             if conformance.op_under_test(c) in INT8_ONNX_OPS]
    assert len(cases) >= 20
    failed = [(r.case, r.status, r.detail) for r in map(conformance.run_case, cases)
              if r.status != conformance.PASSED]
    assert not failed


@pytest.mark.slow
def test_mobilenetv2_instruction_budget(zoo_dir):
    """arm64-int8: <= 0.25 executed instructions per MAC, <= 1/3 of the portable C build
    (same compiler, flags and emulator), and instruction counts repeat exactly."""
    from edgec.workbench.bench import bench_inputs, calibration_inputs, compile_for_bench
    from edgec.frontend.onnx import load_onnx
    from edgec.workbench.instr_count import count_model, portable_twin

    path = zoo_dir / "mobilenetv2.onnx"
    g = load_onnx(path, {})
    feeds, calib = bench_inputs(g), calibration_inputs(g, count=4)
    counts = {}
    with tempfile.TemporaryDirectory(prefix="edgec-mnv2-") as tmp:
        for name in ("arm64-int8", portable_twin("arm64-int8").name):
            result, _ = compile_for_bench(path, name, calib)
            counts[name] = count_model(result, feeds, Path(tmp) / name)
        again = count_model(result, feeds, Path(tmp) / "again")
    neon, portable = counts["arm64-int8"], counts["arm64-int8-portable"]
    assert neon["instructions_per_mac"] <= 0.25
    assert neon["instructions"] <= portable["instructions"] / 3
    assert again == portable
