"""int4 weights (W4A8, `--weight-bits 4`): the generated C of generic-int8 and x86_64-int8
is bit-exact with the int8 reference interpreter on ResNet-8 and the digits CNN, the
weights shrink, the digits CNN keeps its accuracy against onnxruntime fp32, and misuse of
the flags is one line with exit code 2. (arm64: tests/arm64/test_int4_weights_arm64.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO

from edgec.compiler import CompileOptions, compile_model
from edgec.workbench.verify import verify_model


def int4_layers(result) -> dict[str, str]:
    """{layer: kernel} of the layers whose C stores int4 weights."""
    return {r["node"]: r["kernel"] for r in result.report["weight_bits"]["int4_layers"]}


@pytest.mark.parametrize("target", ["generic-int8", "x86_64-int8"])
@pytest.mark.parametrize("model", ["resnet8", "digits_cnn"])
def test_int4_c_is_bit_exact_with_the_reference(zoo_dir, model, target):
    res = verify_model(zoo_dir / f"{model}.onnx", CompileOptions(target=target, weight_bits=4),
                       seed=3)
    assert res.ok and res.exact, [o.as_dict() for o in res.outputs]
    # against onnxruntime fp32: int4 costs accuracy, a wrong nibble order costs everything
    # (measured: resnet8 13.7 dB on random inputs, its int8 build 35 dB)
    assert min(o.snr_db for o in res.outputs) > 8.0, [o.as_dict() for o in res.outputs]


def test_int4_kernels_and_weight_bytes(zoo_dir):
    path = zoo_dir / "resnet8.onnx"
    fp32 = compile_model(path, CompileOptions(target="generic-fp32")).report["weights_bytes"]
    for target, kernel in (("generic-int8", None), ("x86_64-int8", "x86-q4gemm"),
                           ("x86_64-int8-vnni", "x86-q4gemm")):
        res = compile_model(path, CompileOptions(target=target, weight_bits=4))
        layers = int4_layers(res)
        assert len(layers) == 10, layers  # 9 convolutions and the classifier
        if kernel:
            assert set(layers.values()) == {kernel}
        else:  # the stem and the 3x3 convolutions: q4conv; the classifier: q4gemm
            assert set(layers.values()) == {"q4conv", "q4gemm"}
        q = [n for n in res.graph.nodes if n.op in ("QConv", "QGemm")]
        assert all(n.attrs["weight_bits"] == 4 and np.abs(n.input(1).data).max() <= 7
                   for n in q)
        section = res.report["weight_bits"]
        if target == "generic-int8":  # rows of ceil(K / 2) bytes: half of fp32's 4 per weight
            rows = [(n.input(1).shape[0], n.input(1).data.size // n.input(1).shape[0])
                    for n in q]
            assert section["int4_bytes"] == sum(m * -(-k // 2) for m, k in rows)
        assert sum(section["bytes_by_bits"].values()) == res.report["weights_bytes"]
        assert res.report["weights_bytes"] <= 0.15 * fp32, (target, res.report["weights_bytes"])
    c = compile_model(path, CompileOptions(target="generic-int8", weight_bits=4)).files
    assert "edgec_q4.h" in c and "edgec_q4_dot(" in c["resnet8.c"]


def test_depthwise_keeps_int8_weights(zoo_dir):
    res = compile_model(zoo_dir / "dscnn.onnx", CompileOptions(target="generic-int8",
                                                               weight_bits=4))
    bits = {n.name: n.attrs["weight_bits"] for n in res.graph.nodes if n.op == "QConv"}
    depthwise = {n.name for n in res.graph.nodes if n.op == "QConv" and n.attrs["group"] > 1}
    assert depthwise and all(bits[n] == 8 for n in depthwise)
    assert all(b == 4 for n, b in bits.items() if n not in depthwise)


def test_digits_int4_accuracy_through_the_c(zoo_dir):
    """Within 1 point of fp32 (onnxruntime) on the 540 test images (measured: fp32 99.26 %,
    int4 99.44 %)."""
    spec = __import__("importlib.util").util.spec_from_file_location(
        "int4_bench", REPO / "tools" / "int4_bench.py")
    tool = __import__("importlib.util").util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    acc = tool.digits_accuracy()
    assert acc["samples"] == 540
    assert acc["fp32"] - acc["int4"] <= 1.0, acc


def test_mixed_int8_int4_respects_the_budget(zoo_dir):
    path = zoo_dir / "digits_cnn.onnx"
    calib = str(zoo_dir / "digits_calib.npz")
    all4 = compile_model(path, CompileOptions(target="generic-int8", weight_bits=4,
                                              calib=calib)).report["weights_bytes"]
    budget = all4 + 3000  # room for the smaller layers at int8, not for the largest
    res = compile_model(path, CompileOptions(target="generic-int8", weight_bits=4, calib=calib,
                                             auto_mixed_precision=True,
                                             weights_budget=budget))
    amp = res.report["quantization"]["auto_mixed_precision"]
    assert amp["int8_weight_layers"] and amp["int4_layers"], amp
    assert amp["weights_bytes_estimate"] <= budget
    assert res.report["weights_bytes"] <= budget, res.report["weights_bytes"]
    bits = {n.meta.get("source_name", n.name): n.attrs["weight_bits"] for n in res.graph.nodes
            if n.op in ("QConv", "QGemm")}
    assert {k for k, v in bits.items() if v == 8} == set(amp["int8_weight_layers"])


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgec.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300, check=False, cwd=REPO)


@pytest.mark.parametrize("flags, message", [
    (["-t", "generic-fp32", "--weight-bits", "4"], "--weight-bits 4 needs an int8 target"),
    (["-t", "generic-int8", "--weight-bits", "3"], "--weight-bits takes 4 or 8, not 3"),
    (["-t", "generic-int8", "--weight-bits", "4", "--quant", "dynamic"],
     "--weight-bits 4 needs static quantisation"),
    (["-t", "generic-int8", "--weights-budget", "9000"],
     "--weights-budget needs --weight-bits 4 and --auto-mixed-precision"),
    (["-t", "generic-int8", "--weight-bits", "4", "--auto-mixed-precision",
      "--weights-budget", "0"], "--weights-budget takes a positive number of bytes"),
    (["-t", "generic-int8", "--weights", "int4"], "int4 weights are --weight-bits 4"),
])
def test_flag_misuse_is_one_line(zoo_dir, tmp_path, flags, message):
    proc = _cli("compile", zoo_dir / "digits_cnn.onnx", "-o", tmp_path / "out", *flags)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("edgec: error: ") and message in lines[0], lines[0]


def test_int4_combines_with_external_weights(zoo_dir, tmp_path):
    proc = _cli("compile", zoo_dir / "digits_cnn.onnx", "-o", tmp_path / "out", "-t",
                "generic-int8", "--weight-bits", "4", "--weights", "external")
    assert proc.returncode == 0, proc.stderr
    blob = (tmp_path / "out" / "digits_cnn.weights").stat().st_size
    int8 = compile_model(zoo_dir / "digits_cnn.onnx", CompileOptions(
        target="generic-int8", weights="external")).report
    # the file aligns every array (86,017 B for 19,947 B of int8 data; int4: 76,545 B)
    assert blob == json.loads((tmp_path / "out" / "report.json").read_text())[
        "weights_file"]["bytes"] < int8["weights_file"]["bytes"]


@pytest.mark.parametrize("target_snr, promoted", [(0.0, 0), (1000.0, 4)])
def test_mixed_without_budget_stops_at_the_target_snr(zoo_dir, target_snr, promoted):
    """Without --weights-budget, layers move to int8 weights (most sensitive first) until the
    output SNR reaches --target-snr: none for 0 dB, all four for an unreachable 1000 dB."""
    res = compile_model(zoo_dir / "digits_cnn.onnx", CompileOptions(
        target="generic-int8", weight_bits=4, calib=str(zoo_dir / "digits_calib.npz"),
        auto_mixed_precision=True, target_snr=target_snr))
    amp = res.report["quantization"]["auto_mixed_precision"]
    assert len(amp["int8_weight_layers"]) == promoted, amp
    order = sorted(amp["sensitivity_db"], key=lambda n: amp["sensitivity_db"][n])
    assert amp["int8_weight_layers"] == order[:promoted]
    assert len(amp["history"]) == promoted + 1


def test_int4_layers_split_over_threads(zoo_dir):
    options = CompileOptions(target="x86_64-int8", weight_bits=4, threads=2)
    res = verify_model(zoo_dir / "resnet8.onnx", options, seed=4)
    assert res.ok and res.exact, [o.as_dict() for o in res.outputs]
    # the 9 int4 convolutions at least (which other layers split is threads.py's rule)
    assert compile_model(zoo_dir / "resnet8.onnx", options).report["threads"][
        "split_layers"] >= 9


def test_fallback_int8_variant_takes_int4_weights(zoo_dir):
    """--fallback int8 --weight-bits 4 on an fp32 target: the fp32 build is unchanged, its
    int8 twin stores int4 weights."""
    path = zoo_dir / "digits_cnn.onnx"
    reports = [compile_model(path, CompileOptions(target="generic-fp32", fallback="int8",
                                                  weight_bits=bits)).report["fallback"]
               for bits in (8, 4)]
    assert reports[0]["fp32"] == reports[1]["fp32"]
    assert reports[1]["int8"]["weights_bytes"] < 0.6 * reports[0]["int8"]["weights_bytes"]


@pytest.mark.skipif("avx512_vnni" not in Path("/proc/cpuinfo").read_text(),
                    reason="the host has no AVX-512 VNNI")
def test_int4_on_the_vnni_target_is_bit_exact(zoo_dir):
    """x86_64-int8-vnni runs int4 layers with the AVX2 int4 tiles (its vpdpbusd kernels are
    int8-only): still bit-exact."""
    res = verify_model(zoo_dir / "resnet8.onnx",
                       CompileOptions(target="x86_64-int8-vnni", weight_bits=4), seed=5)
    assert res.ok and res.exact, [o.as_dict() for o in res.outputs]


def test_int4_export_agrees_with_onnxruntime(zoo_dir, tmp_path):
    """onnxruntime running the int4 build as QDQ ONNX (`edgec export-qdq`: int4 values in
    int8 tensors with their own scales, float ops between Q and DQ) agrees with the C
    within 1 LSB on every digits logit (measured: 100 %, 16 inputs)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("int8_accuracy",
                                                  REPO / "tools" / "int8_accuracy.py")
    t = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(t)
    from edgec.frontend.onnx import load_onnx
    from edgec.quant.qdq_export import qdq_model
    from edgec.workbench.verify import run_compiled

    path = zoo_dir / "digits_cnn.onnx"
    g = load_onnx(path)
    calib = t.model_inputs(g, "digits_cnn", 32, seed=1)
    evals = t.model_inputs(g, "digits_cnn", 16, seed=2)
    res = compile_model(path, CompileOptions(target="generic-int8", calib_samples=calib,
                                             weight_bits=4))
    got = np.concatenate([o["logits"].ravel() for o in run_compiled(res, evals, tmp_path)])
    exported = qdq_model(res.graph)
    ort = np.concatenate([t.ort_session_outputs(exported, e, optimize=False)["logits"].ravel()
                          for e in evals])
    lsb = t.output_lsb(res.graph)
    assert np.all(np.abs(ort - got) <= lsb * (1 + 1e-4)), np.abs(ort - got).max() / lsb
