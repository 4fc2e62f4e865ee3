"""int8 ReduceMean (QReduceMean, TFLite's int8 MEAN arithmetic) in int8 builds: no float node
left, the generated C equal to the int8 reference on generic-int8, x86_64-int8 and arm64-int8
(qemu-aarch64), the int8 result close to onnxruntime's float model (SNR), and the .tflite
MEAN giving the same bits in LiteRT."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import compile_model_proto, make_model, ort_run
from onnx import helper

from edgec.interp import run_graph
from edgec.workbench.verify import run_compiled

INT8_TARGETS = ["generic-int8", "x86_64-int8", "arm64-int8"]
HAVE_ARM64 = all(map(shutil.which, ("aarch64-linux-gnu-gcc", "qemu-aarch64")))
SNR_FLOOR_DB = 30.0  # int8 activations: ~40 dB typical; a wrong multiplier gives < 10 dB


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """Signal-to-noise ratio of `got` against `ref` in dB."""
    noise = np.sum((ref.astype(np.float64) - got) ** 2)
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / max(noise, 1e-30)))


def conv_reduce_mean(axes, keepdims: int, opset: int, shape=(2, 3, 9, 7), seed: int = 0):
    """Conv(3 -> 8, 3x3) -> ReduceMean(axes, keepdims): axes as attribute (opset 13) or as a
    constant input (opset 18). Returns the model and a feed."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((8, shape[1], 3, 3)) * 0.3).astype(np.float32)
    b = (rng.standard_normal(8) * 0.2 + 0.3).astype(np.float32)
    conv = helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1])
    inits = {"w": w, "b": b}
    if opset >= 18:
        inits["axes"] = np.asarray(axes, np.int64)
        mean = helper.make_node("ReduceMean", ["c", "axes"], ["y"], keepdims=keepdims)
    else:
        mean = helper.make_node("ReduceMean", ["c"], ["y"], axes=list(axes), keepdims=keepdims)
    out_shape = [1 if (d in [a % 4 for a in axes]) else n
                 for d, n in enumerate((shape[0], 8, *shape[2:]))]
    if not keepdims:
        out_shape = [n for d, n in enumerate((shape[0], 8, *shape[2:]))
                     if d not in [a % 4 for a in axes]]
    model = make_model([conv, mean], {"x": (np.float32, shape)}, {"y": (np.float32, out_shape)},
                       inits, opset=opset)
    onnx.checker.check_model(model)
    return model, {"x": rng.standard_normal(shape).astype(np.float32)}


def calib_for(feeds: dict, count: int = 8, seed: int = 1) -> list[dict]:
    """Calibration samples drawn like the feed."""
    rng = np.random.default_rng(seed)
    return [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in feeds.items()}
            for _ in range(count)]


MEAN_CASES = [((2, 3), 1, 13), ((2, 3), 0, 18), ((1,), 1, 13), ((-1,), 0, 18),
              ((1, 3), 1, 18), ((0, 2), 0, 13), ((0, 1, 2, 3), 0, 18)]
MEAN_IDS = ["hw-keep-13", "hw-drop-18", "c-keep-13", "w-drop-18", "cw-keep-18", "nh-drop-13",
            "all-drop-18"]


@pytest.mark.parametrize("axes, keepdims, opset", MEAN_CASES, ids=MEAN_IDS)
def test_reduce_mean_int8_c_equals_reference_and_onnxruntime(axes, keepdims, opset):
    model, feeds = conv_reduce_mean(axes, keepdims, opset)
    want = ort_run(model, feeds)["y"]
    ref = None
    for target in INT8_TARGETS:
        if target.startswith("arm64") and not HAVE_ARM64:
            continue
        result = compile_model_proto(model, target, calib_samples=calib_for(feeds))
        ops = [n.op for n in result.graph.nodes]
        assert "QReduceMean" in ops and "ReduceMean" not in ops, ops
        assert not result.report["quantization"]["float_node_reasons"]
        if ref is None:
            ref = run_graph(result.graph, feeds)
            assert snr_db(want, ref["y"]) > SNR_FLOOR_DB, snr_db(want, ref["y"])
        with tempfile.TemporaryDirectory(prefix="edgec-qmean-") as tmp:
            got = run_compiled(result, [feeds], Path(tmp))[0]
        for name, value in ref.items():
            assert np.array_equal(got[name], value), (target, name)


@pytest.mark.parametrize("axes, keepdims, opset", MEAN_CASES, ids=MEAN_IDS)
def test_reduce_mean_tflite_int8_is_mean_and_litert_equals_reference(axes, keepdims, opset):
    """tflite-int8 writes QReduceMean as MEAN; LiteRT's MEAN on edgec's int8 input gives the
    int8 reference's bits (tflite_layers.layer_differences runs each layer on LiteRT)."""
    pytest.importorskip("ai_edge_litert.interpreter")
    from edgec.codegen.tflite import builtin_name, read_model

    from edgec.workbench.tflite_layers import layer_differences

    model, feeds = conv_reduce_mean(axes, keepdims, opset)
    result = compile_model_proto(model, "tflite-int8", calib_samples=calib_for(feeds))
    tfl = read_model(result.files["model.tflite"])
    ops = [builtin_name(tfl.operatorCodes[op.opcodeIndex].builtinCode)
           for op in tfl.subgraphs[0].operators]
    assert "MEAN" in ops, ops
    rows = layer_differences(result, feeds)
    means = [r for r in rows if r["op"] == "QReduceMean"]
    assert means, rows
    for r in rows:
        assert r["differing"] == 0, r


def gemm_layer_norm(shape, axis: int, bias: bool = True, seed: int = 0, epsilon: float = 1e-5):
    """MatMul(C -> C) -> LayerNormalization(axis) with constant Scale and B (opset 17)."""
    rng = np.random.default_rng(seed)
    c = shape[-1]
    w = (rng.standard_normal((c, c)) * 0.4).astype(np.float32)
    norm_shape = shape[axis:]
    inits = {"w": w, "scale": (rng.standard_normal(norm_shape) * 0.5 + 1).astype(np.float32)}
    ins = ["m", "scale"]
    if bias:
        inits["b"] = (rng.standard_normal(norm_shape) * 0.3).astype(np.float32)
        ins.append("b")
    mm = helper.make_node("MatMul", ["x", "w"], ["m"])
    ln = helper.make_node("LayerNormalization", ins, ["y"], axis=axis, epsilon=epsilon)
    model = make_model([mm, ln], {"x": (np.float32, shape)}, {"y": (np.float32, shape)},
                       inits, opset=17)
    onnx.checker.check_model(model)
    return model, ln_input(shape, 100)


def ln_input(shape, seed: int) -> dict:
    """A LayerNorm test input: normal values plus a ramp along the last axis."""
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal(shape).astype(np.float32) +
            np.linspace(-1, 1, shape[-1], dtype=np.float32)}


NORM_CASES = [((4, 10, 32), -1, True), ((2, 6, 48), -1, False), ((3, 5, 8), 1, True),
              ((2, 16), -1, True)]
NORM_IDS = ["last-32", "last-48-no-bias", "last-two-axes", "rank2"]


@pytest.mark.parametrize("shape, axis, bias", NORM_CASES, ids=NORM_IDS)
def test_layer_norm_int8_c_equals_reference_and_onnxruntime(shape, axis, bias):
    model, feeds = gemm_layer_norm(shape, axis, bias)
    want = ort_run(model, feeds)["y"]
    # the feed is among the calibration samples: the SNR then measures the int8 arithmetic
    # (output steps), not a calibration range the feed exceeds (one clipped outlier of
    # 5.07 -> 4.28 alone takes last-48-no-bias from ~37 dB to 29 dB)
    calib = [ln_input(shape, seed) for seed in range(8)] + [feeds]
    ref = None
    for target in INT8_TARGETS:
        if target.startswith("arm64") and not HAVE_ARM64:
            continue
        result = compile_model_proto(model, target, calib_samples=calib)
        ops = [n.op for n in result.graph.nodes]
        assert "QLayerNorm" in ops and "LayerNormalization" not in ops, ops
        assert not result.report["quantization"]["float_node_reasons"]
        if ref is None:
            ref = run_graph(result.graph, feeds)
            assert snr_db(want, ref["y"]) > SNR_FLOOR_DB, snr_db(want, ref["y"])
        with tempfile.TemporaryDirectory(prefix="edgec-qln-") as tmp:
            got = run_compiled(result, [feeds], Path(tmp))[0]
        for name, value in ref.items():
            assert np.array_equal(got[name], value), (target, name)


def test_layer_norm_tflite_int8_is_refused_in_one_line():
    """TFLite has no int8 layer normalisation and edgec's .tflite writer no float one: the
    int8 build is refused with one line naming the node and what to do."""
    from edgec.errors import UnsupportedError

    model, feeds = gemm_layer_norm((2, 4, 16), -1)
    with pytest.raises(UnsupportedError) as err:
        compile_model_proto(model, "tflite-int8", calib_samples=[feeds])
    msg = str(err.value)
    assert "\n" not in msg and "QLayerNorm" in msg and "C target" in msg, msg


def test_layer_norm_int8_edge_rows_bit_exact_across_targets():
    """LayerNormalization straight on a graph input: constant rows (zero variance, only
    epsilon), rows at the int8 extremes, outputs that clamp; C == reference on every target,
    and the reference close to onnxruntime where nothing clamps."""
    rng = np.random.default_rng(3)
    shape = (6, 40)
    inits = {"scale": (rng.standard_normal(40) * 2).astype(np.float32),
             "b": (rng.standard_normal(40) * 0.5).astype(np.float32)}
    ln = helper.make_node("LayerNormalization", ["x", "scale", "b"], ["y"], axis=-1,
                          epsilon=1e-3)
    model = make_model([ln], {"x": (np.float32, shape)}, {"y": (np.float32, shape)}, inits,
                       opset=17)
    x = rng.uniform(-4, 4, shape).astype(np.float32)
    x[0] = 1.5  # constant row
    x[1, ::2], x[1, 1::2] = 4.0, -4.0  # the int8 extremes
    x[2] = np.linspace(-4, 4, 40)
    feeds = {"x": x}
    calib = [{"x": rng.uniform(-4, 4, shape).astype(np.float32)} for _ in range(4)]
    ref = None
    for target in INT8_TARGETS:
        if target.startswith("arm64") and not HAVE_ARM64:
            continue
        result = compile_model_proto(model, target, calib_samples=calib)
        assert "QLayerNorm" in [n.op for n in result.graph.nodes]
        if ref is None:
            ref = run_graph(result.graph, feeds)
        with tempfile.TemporaryDirectory(prefix="edgec-qln-") as tmp:
            got = run_compiled(result, [feeds], Path(tmp))[0]
        assert np.array_equal(got["y"], ref["y"]), target
    want = ort_run(model, feeds)["y"]
    assert np.allclose(ref["y"][0], want[0], atol=0.05)  # constant row: y = B
    assert snr_db(want, ref["y"]) > SNR_FLOOR_DB, snr_db(want, ref["y"])


def test_qdq_export_of_reduce_mean_and_layer_norm_runs_in_onnxruntime():
    """export-qdq writes QReduceMean / QLayerNorm as DQ -> ReduceMean / LayerNormalization ->
    Q; onnxruntime's float op on the same int8 input lands within one output step of the
    int8 result."""
    from edgec.quant.qdq_export import qdq_model

    for model, feeds, op in ((*conv_reduce_mean((1, 3), 0, 18), "ReduceMean"),
                             (*gemm_layer_norm((4, 10, 32), -1), "LayerNormalization")):
        result = compile_model_proto(model, "generic-int8", calib_samples=[feeds])
        exported = qdq_model(result.graph)
        assert op in [n.op_type for n in exported.graph.node]
        ort = ort_run(exported, feeds)["y"]
        ref = run_graph(result.graph, feeds)["y"]
        q = next(n for n in result.graph.nodes if n.op in ("QReduceMean", "QLayerNorm"))
        step = q.attrs["y_scale"]
        assert np.max(np.abs(ort - ref)) <= 1.01 * step, (op, np.max(np.abs(ort - ref)), step)


def test_prequantized_qdq_reduce_mean_imports_as_qreduce_mean(tmp_path):
    """DQ -> ReduceMean -> Q of a pre-quantised model becomes QReduceMean between the model's
    scales; onnxruntime (one float rounding) is within one LSB of it (TFLite's two
    roundings), and the C equals the reference."""
    ys = 0.01
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("ReduceMean", ["xd"], ["m"], axes=[1, 3], keepdims=0),
             helper.make_node("QuantizeLinear", ["m", "ys", "yz"], ["mq"]),
             helper.make_node("DequantizeLinear", ["mq", "ys", "yz"], ["y"])]
    inits = {"xs": np.float32(0.03), "xz": np.int8(5), "ys": np.float32(ys),
             "yz": np.int8(-3)}
    model = make_model(nodes, {"x": (np.float32, [2, 4, 5, 6])}, {"y": (np.float32, [2, 5])},
                       inits, opset=13)
    result = compile_model_proto(model, "generic-int8")
    assert [n.op for n in result.graph.nodes] == ["QuantizeLinear", "QReduceMean",
                                                  "DequantizeLinear"]
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 4, 5, 6)).astype(np.float32)}
    ref = run_graph(result.graph, feeds)["y"]
    assert np.max(np.abs(ref - ort_run(model, feeds)["y"])) <= ys * 1.0001
    got = run_compiled(result, [feeds], tmp_path)[0]["y"]
    assert np.array_equal(got, ref)


@pytest.mark.parametrize("row", [16, 48, 768])
def test_layer_norm_int8_arithmetic_is_the_rounded_float64_layer_norm(row):
    """On the same int8 input, QLayerNorm's integer statistics + float32 steps give the
    float64 LayerNormalization rounded to the output grid: measured equal on every element
    (200 random rows each); a code off only where float32 tips a tie is allowed."""
    from edgec.ops.quantized_norm import layer_norm_int8

    rng = np.random.default_rng(row)
    x8 = rng.integers(-128, 128, (200, row)).astype(np.int8)
    xzp, xs, ys, yzp, eps = 3, 0.02, 0.04, -2, 1e-5
    gamma, beta = rng.standard_normal(row) * 0.5 + 1, rng.standard_normal(row) * 0.3
    xf = (x8.astype(np.float64) - xzp) * xs
    yf = (xf - xf.mean(1, keepdims=True)) / np.sqrt(xf.var(1, keepdims=True) + eps) * gamma \
        + beta
    eps_codes = max(round(eps * row * row / (xs * xs)), 1)
    y8 = layer_norm_int8(x8, xzp, eps_codes, (gamma / ys).astype(np.float32),
                         (beta / ys + yzp).astype(np.float32), -128, 127)
    ideal = np.clip(np.rint(yf / ys + yzp), -128, 127)
    assert np.max(np.abs(y8 - ideal)) <= 1 and np.mean(y8 == ideal) >= 0.999
