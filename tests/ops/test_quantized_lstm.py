"""QLSTM, QGRU and QRNN, the hybrid int8 LSTM, GRU and RNN (int8 X and weights, float32
state): the generated C equals the int8 reference bit for bit on every int8 target, the float32
exp/sigmoid/tanh of edgec/ops/float32_math.py equal their C transcription bit for bit and
are accurate, the int8 outputs stay close to onnxruntime's float LSTM / GRU (SNR), and the
streaming pattern works (state fed back between calls)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import compile_model_proto, ort_run, run_compiled
from test_recurrent import recurrent_model

from edgec.interp import run_graph
from edgec.ops.float32_math import sigmoid32, tanh32

INT8_TARGETS = ["generic-int8", "x86_64-int8", "arm64-int8", "arm64-int8-base"]
RUNTIME = Path(__file__).resolve().parents[2] / "codegen" / "c" / "runtime"
HAVE_ARM64 = all(map(shutil.which, ("aarch64-linux-gnu-gcc", "qemu-aarch64")))


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """Signal-to-noise ratio of `got` against `ref` in dB."""
    noise = np.sum((ref.astype(np.float64) - got) ** 2)
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / max(noise, 1e-30)))


def calib_for(feeds: dict, count: int = 6, seed: int = 1) -> list[dict]:
    """Calibration samples shaped like `feeds` (float inputs redrawn, others kept)."""
    rng = np.random.default_rng(seed)
    return [{k: rng.standard_normal(v.shape).astype(np.float32) if v.dtype == np.float32
             else v for k, v in feeds.items()} for _ in range(count)]


def _math_inputs() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-40, 40, 40001), rng.standard_normal(20000) * 3,
                        rng.standard_normal(5000) * 0.05, [0.0, -0.0, 0.0625, -0.0625, 15, 30]])
    return x.astype(np.float32)


def test_float32_math_accuracy():
    x = _math_inputs()
    x64 = x.astype(np.float64)
    assert np.max(np.abs(sigmoid32(x) - 1 / (1 + np.exp(-x64)))) < 2e-7
    t64 = np.tanh(x64)
    rel = np.abs(tanh32(x) - t64) / np.maximum(np.abs(t64), 1e-30)
    assert np.max(rel) < 5e-7
    assert sigmoid32(x).dtype == np.float32 and tanh32(x).dtype == np.float32


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_float32_math_c_equals_numpy_bit_for_bit(arch, tmp_path):
    """edgec_f32_math.h built with -ffp-contract=off (gcc, and clang on x86_64)."""
    if arch == "arm64" and not HAVE_ARM64:
        pytest.skip("needs gcc-aarch64-linux-gnu and qemu-user")
    x = _math_inputs()
    (tmp_path / "x.bin").write_bytes(x.tobytes())
    (tmp_path / "m.c").write_text(
        '#include <stdio.h>\n#include "edgec_f32_math.h"\n'
        "int main(int argc, char **argv) {\n    FILE *f = fopen(argv[1], \"rb\");\n"
        "    FILE *o = fopen(argv[2], \"wb\");\n    float v, r[2];\n"
        "    (void)argc;\n    while (fread(&v, 4, 1, f) == 1) {\n"
        "        r[0] = edgec_sigmoid32(v);\n        r[1] = edgec_tanh32(v);\n"
        "        fwrite(r, 4, 2, o);\n    }\n    fclose(f);\n    fclose(o);\n    return 0;\n}\n")
    compilers = [["aarch64-linux-gnu-gcc", "-static"]] if arch == "arm64" else \
        [["gcc"]] + ([["clang"]] if shutil.which("clang") else [])
    for cc in compilers:
        exe = tmp_path / "m"
        subprocess.run([*cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror",
                        "-ffp-contract=off", f"-I{RUNTIME}", str(tmp_path / "m.c"), "-o",
                        str(exe), "-lm"], check=True)
        run = ["qemu-aarch64", str(exe)] if arch == "arm64" else [str(exe)]
        subprocess.run([*run, str(tmp_path / "x.bin"), str(tmp_path / "y.bin")], check=True)
        got = np.frombuffer((tmp_path / "y.bin").read_bytes(), np.float32).reshape(-1, 2)
        assert np.array_equal(got[:, 0].view(np.uint32), sigmoid32(x).view(np.uint32)), cc
        assert np.array_equal(got[:, 1].view(np.uint32), tanh32(x).view(np.uint32)), cc


CASES = [
    ("LSTM", {"direction": "bidirectional", "clip": 0.9}),
    ("LSTM", {"direction": "reverse", "input_forget": 1, "peep": False}),
    ("LSTM", {"init": False, "lens": False}),
    ("LSTM", {"layout": 1, "lens": False, "direction": "bidirectional"}),
    ("GRU", {"direction": "bidirectional", "clip": 0.9}),
    ("GRU", {"direction": "reverse", "linear_before_reset": 1}),
    ("GRU", {"init": False, "lens": False, "linear_before_reset": 1, "layout": 1}),
    ("RNN", {"direction": "bidirectional", "clip": 0.9}),
    ("RNN", {"init": False, "layout": 1, "lens": False}),
]
CASE_IDS = ["lstm-bidir-peep-clip", "lstm-reverse-coupled", "lstm-no-init", "lstm-layout1",
            "gru-bidir-clip", "gru-reverse-lbr", "gru-no-init-lbr-layout1", "rnn-bidir-clip",
            "rnn-no-init-layout1"]
Q_OPS = {"LSTM": "QLSTM", "GRU": "QGRU", "RNN": "QRNN"}


@pytest.mark.parametrize("op, kw", CASES, ids=CASE_IDS)
def test_c_equals_int8_reference_on_every_int8_target(op, kw):
    model, feeds = recurrent_model(op, seq=12, batch=3, inp=8, hidden=12, r_scale=0.3, **kw)
    ref = None
    for target in INT8_TARGETS:
        if target.startswith("arm64") and not HAVE_ARM64:
            continue
        result = compile_model_proto(model, target, calib_samples=calib_for(feeds))
        assert Q_OPS[op] in [n.op for n in result.graph.nodes]
        assert not result.report["quantization"]["float_node_reasons"]
        if ref is None:
            ref = run_graph(result.graph, feeds)
        with tempfile.TemporaryDirectory(prefix="edgec-qlstm-") as tmp:
            got = run_compiled(result, [feeds], Path(tmp))[0]
        for name, value in ref.items():
            assert np.array_equal(got[name], value), (target, name)


@pytest.mark.parametrize("op, kw", [CASES[0], CASES[4]], ids=["lstm", "gru"])
def test_hybrid_kernels_under_sanitizers(op, kw):
    """ASan/UBSan on the portable QLSTM / QGRU kernels, still equal to the reference."""
    model, feeds = recurrent_model(op, seq=12, batch=3, inp=8, hidden=12, r_scale=0.3, **kw)
    result = compile_model_proto(model, "generic-int8", calib_samples=calib_for(feeds))
    with tempfile.TemporaryDirectory(prefix="edgec-qlstm-") as tmp:
        got = run_compiled(result, [feeds], Path(tmp), sanitize=True)[0]
    for name, value in run_graph(result.graph, feeds).items():
        assert np.array_equal(got[name], value), name


@pytest.mark.parametrize("lbr", [0, 1])
def test_gru_int8_close_to_onnxruntime_float(lbr):
    """SNR of QGRU's outputs against onnxruntime's float GRU (docs/int8.md quotes them)."""
    model, feeds = recurrent_model("GRU", seq=50, batch=2, inp=16, hidden=32, lens=False,
                                   r_scale=0.2, direction="bidirectional", seed=7,
                                   linear_before_reset=lbr)
    result = compile_model_proto(model, "generic-int8", calib_samples=calib_for(feeds, 8))
    got = run_graph(result.graph, feeds)
    ref = ort_run(model, feeds)
    snrs = {k: snr_db(ref[k], got[k]) for k in ("Y", "Y_h")}
    assert min(snrs.values()) > 28, snrs


def test_rnn_int8_close_to_onnxruntime_float():
    """SNR of QRNN's outputs against onnxruntime's float RNN (docs/int8.md quotes them)."""
    model, feeds = recurrent_model("RNN", seq=50, batch=2, inp=16, hidden=32, lens=False,
                                   r_scale=0.1, direction="bidirectional", seed=7)
    result = compile_model_proto(model, "generic-int8", calib_samples=calib_for(feeds, 8))
    got = run_graph(result.graph, feeds)
    ref = ort_run(model, feeds)
    snrs = {k: snr_db(ref[k], got[k]) for k in ("Y", "Y_h")}
    assert min(snrs.values()) > 28, snrs


def test_int8_close_to_onnxruntime_float():
    """SNR of the int8 outputs against onnxruntime's float LSTM on the same model (the
    figures docs/int8.md quotes: Y 35.2 dB, Y_h 33.3 dB, Y_c 36.3 dB)."""
    model, feeds = recurrent_model("LSTM", seq=50, batch=2, inp=16, hidden=32, lens=False,
                                   r_scale=0.2, direction="bidirectional", seed=7)
    result = compile_model_proto(model, "generic-int8", calib_samples=calib_for(feeds, 8))
    got = run_graph(result.graph, feeds)
    ref = ort_run(model, feeds)
    snrs = {k: snr_db(ref[k], got[k]) for k in ("Y", "Y_h", "Y_c")}
    assert min(snrs.values()) > 28, snrs


def test_streaming_state_fed_back():
    """Ten calls of 10 steps, each fed the previous call's float Y_h / Y_c: the C equals the
    int8 reference doing the same, and stays close to onnxruntime's 100 steps at once."""
    whole, feeds = recurrent_model("LSTM", seq=100, batch=1, inp=8, hidden=16, lens=False,
                                   seed=3, r_scale=0.2)
    chunk, _ = recurrent_model("LSTM", seq=10, batch=1, inp=8, hidden=16, lens=False, seed=3,
                               r_scale=0.2)
    calib = [{"X": feeds["X"][10 * k:10 * (k + 1)], "h0": feeds["h0"], "c0": feeds["c0"]}
             for k in range(10)]
    result = compile_model_proto(chunk, "generic-int8", calib_samples=calib)
    state = {"h0": feeds["h0"], "c0": feeds["c0"]}
    ref_state = dict(state)
    ys = []
    for k in range(10):
        x = feeds["X"][10 * k:10 * (k + 1)]
        with tempfile.TemporaryDirectory(prefix="edgec-qlstm-") as tmp:
            out = run_compiled(result, [{"X": x, **state}], Path(tmp))[0]
        ref = run_graph(result.graph, {"X": x, **ref_state})
        for name in ("Y", "Y_h", "Y_c"):
            assert np.array_equal(out[name], ref[name]), (k, name)
        ys.append(out["Y"])
        state = {"h0": out["Y_h"], "c0": out["Y_c"]}
        ref_state = {"h0": ref["Y_h"], "c0": ref["Y_c"]}
    whole_ref = ort_run(whole, feeds)
    assert snr_db(whole_ref["Y"], np.concatenate(ys)) > 28
    assert snr_db(whole_ref["Y_h"], state["h0"]) > 28


def test_state_feeding_an_int8_head_and_float_reasons():
    """LSTM -> Squeeze(Y_h) -> Gemm: the head runs in int8 on the quantised float state,
    nothing stays float, and the C equals the reference on every int8 target; an LSTM with
    other activations stays float and says why."""
    from onnx import TensorProto, helper, numpy_helper

    model, feeds = recurrent_model("LSTM", seq=20, batch=1, inp=8, hidden=16, lens=False,
                                   r_scale=0.2, seed=4)
    g = model.graph
    rng = np.random.default_rng(2)
    g.initializer.extend([numpy_helper.from_array(np.array([0], np.int64), "axes"),
                          numpy_helper.from_array(rng.standard_normal((5, 16)).astype(
                              np.float32), "fc_w")])
    g.node.extend([helper.make_node("Squeeze", ["Y_h", "axes"], ["h_last"]),
                   helper.make_node("Gemm", ["h_last", "fc_w"], ["logits"], transB=1)])
    g.output.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, None))
    ref = None
    for target in INT8_TARGETS:
        if target.startswith("arm64") and not HAVE_ARM64:
            continue
        result = compile_model_proto(model, target, calib_samples=calib_for(feeds))
        ops = [n.op for n in result.graph.nodes]
        assert "QLSTM" in ops and "QGemm" in ops, ops
        assert not result.report["quantization"]["float_node_reasons"]
        if ref is None:
            ref = run_graph(result.graph, feeds)
            assert snr_db(ort_run(model, feeds)["logits"], ref["logits"]) > 25
        with tempfile.TemporaryDirectory(prefix="edgec-qlstm-") as tmp:
            got = run_compiled(result, [feeds], Path(tmp))[0]
        for name, value in ref.items():
            assert np.array_equal(got[name], value), (target, name)
    relu, feeds = recurrent_model("LSTM", activations=["Sigmoid", "Tanh", "Relu"])
    result = compile_model_proto(relu, "generic-int8", calib_samples=calib_for(feeds))
    reasons = result.report["quantization"]["float_node_reasons"]
    assert any("default activations" in r["reason"] for r in reasons), reasons
