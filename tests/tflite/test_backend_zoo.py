"""TFLite back-end on the zoo: every model converts, the file's structure is what TFLite's
rules ask for, fp32 matches onnxruntime, int8 matches edgec's integer reference bit for bit
(or the measured difference is recorded), LiteRT and tflite-micro agree.
"""

from __future__ import annotations

import json
import math

import flatbuffers  # noqa: F401 (the reader below needs it)
import numpy as np
import pytest

from edgec.compiler import CompileOptions, compile_model
from edgec.interp import run_graph
from edgec.workbench.compare import compare, onnxruntime_outputs, random_inputs

pytest.importorskip("ai_edge_litert.interpreter")
from ai_edge_litert import schema_py_generated as schema  # noqa: E402

from edgec.codegen.tflite import builtin_name, read_model  # noqa: E402
from edgec.workbench.tflite_layers import layer_differences  # noqa: E402
from edgec.codegen.tflite.runner import run_compiled, tflm_available  # noqa: E402

SLOW = pytest.mark.slow  # MobileNetV2: ~20 s to calibrate and quantise
ZOO_NAMES = ["digits_cnn", "dscnn", "resnet8", "mobilenetv2", "mobilenetv2_trained"]
ZOO = [pytest.param(n, marks=[SLOW]) if n.startswith("mobilenetv2") else n for n in ZOO_NAMES]
_CACHE: dict = {}

# TFLite's version table (tensorflow/lite/tools/versioning/op_version.cc) for what the zoo
# uses, written out by hand as the independent expectation.
INT8_VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "ADD": 2,
                 "MEAN": 2, "MAX_POOL_2D": 2, "PAD": 2, "DEQUANTIZE": 2, "QUANTIZE": 1,
                 "RESHAPE": 1, "SLICE": 2, "SOFTMAX": 1}


def compiled(zoo_dir, name: str, target: str, **options):
    """CompileResult of a zoo model (once per session and option set)."""
    key = (name, target, tuple(sorted(options.items())))
    if key not in _CACHE:
        _CACHE[key] = compile_model(zoo_dir / f"{name}.onnx",
                                    CompileOptions(target=target, **options))
    return _CACHE[key]


def ops_and_versions(data: bytes) -> list[tuple[str, int]]:
    """(builtin name, version) of every operator of subgraph 0."""
    model = read_model(data)
    codes = model.operatorCodes
    return [(builtin_name(codes[op.opcodeIndex].builtinCode), codes[op.opcodeIndex].version)
            for op in model.subgraphs[0].operators]


def buffer_offsets(data: bytes) -> list[tuple[int, int]]:
    """(byte offset, length) of every non-empty buffer, read with the flatbuffer reader."""
    model = schema.Model.GetRootAs(data, 0)
    out = []
    for i in range(model.BuffersLength()):
        buf = model.Buffers(i)
        if buf.DataLength():
            tab = buf._tab
            out.append((tab.Vector(tab.Offset(4)), buf.DataLength()))
    return out


@pytest.mark.parametrize("name", ZOO)
def test_int8_file_structure(zoo_dir, name):
    """Opcodes and versions by TFLite's table, no TRANSPOSE, per-channel int8 weights, deduped
    16-byte aligned buffers, the ONNX I/O names in the signature, edgec_info metadata."""
    result = compiled(zoo_dir, name, "tflite-int8")
    data = result.files["model.tflite"]
    assert data[4:8] == b"TFL3"
    ops = ops_and_versions(data)
    assert "TRANSPOSE" not in {op for op, _ in ops}
    for op, version in ops:
        if op == "SOFTMAX" or op == "RESHAPE":
            continue  # float island / any type: version 1
        assert version == INT8_VERSIONS[op], (op, version)
    model = read_model(data)
    sg = model.subgraphs[0]
    for op in sg.operators:
        kind = builtin_name(model.operatorCodes[op.opcodeIndex].builtinCode)
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            w = sg.tensors[op.inputs[1]]
            channels = w.shape[3] if kind == "DEPTHWISE_CONV_2D" else w.shape[0]
            assert w.type == schema.TensorType.INT8
            assert len(w.quantization.scale) == channels  # per-channel
            assert not np.any(w.quantization.zeroPoint)  # symmetric
            assert w.quantization.quantizedDimension == (3 if kind == "DEPTHWISE_CONV_2D" else 0)
            assert sg.tensors[op.inputs[2]].type == schema.TensorType.INT32
    blobs = [bytes(b.data) for b in model.buffers if b.data is not None and len(b.data)]
    assert len(blobs) == len(set(blobs))  # deduplicated
    assert all(offset % 16 == 0 for offset, _ in buffer_offsets(data))
    g = result.graph
    sig = model.signatureDefs[0]
    assert [m.name.decode() for m in sig.inputs] == list(g.meta.get("input_names") or
                                                        [v.name for v in g.inputs])
    assert [m.name.decode() for m in sig.outputs] == list(g.meta.get("output_names") or
                                                         [v.name for v in g.outputs])
    meta = {m.name.decode(): m.buffer for m in model.metadata}
    info = json.loads(bytes(model.buffers[meta["edgec_info"]].data).decode())
    assert info["target"] == "tflite-int8" and info["calibration"]["method"] == "minmax"
    assert "edgec_version" in info


@pytest.mark.parametrize("name", ZOO)
def test_fp32_matches_onnxruntime(zoo_dir, name):
    """tflite-fp32 in LiteRT against onnxruntime, within `edgec verify`'s band."""
    result = compiled(zoo_dir, name, "tflite-fp32")
    assert "TRANSPOSE" not in {op for op, _ in ops_and_versions(result.files["model.tflite"])}
    feeds = random_inputs(result.source_graph, seed=1)
    got = run_compiled(result, [feeds])[0]
    ref = onnxruntime_outputs(zoo_dir / f"{name}.onnx", feeds)
    unopt = onnxruntime_outputs(zoo_dir / f"{name}.onnx", feeds, optimize=False)
    for out_name, value in got.items():
        r = np.asarray(ref[out_name]).reshape(value.shape)
        c = compare(out_name, value, r, ref_unoptimized=np.asarray(unopt[out_name]))
        assert c.ok, (out_name, c.max_abs_err, c.band_rel)


def _int8_outputs_vs_reference(result, seed: int) -> tuple[int, int]:
    """(differing, total) int8 values feeding the graph's float outputs (or the int8 outputs)
    of LiteRT against edgec's integer reference interpreter."""
    g = result.graph
    feeds = random_inputs(result.source_graph, seed=seed)
    got = run_compiled(result, [feeds])[0]
    want = run_graph(g, feeds)
    out_names = g.meta.get("output_names") or [v.name for v in g.outputs]
    differing = total = 0
    for out_name, v in zip(out_names, g.outputs):
        a, b = np.asarray(got[out_name]), np.asarray(want[out_name]).reshape(got[out_name].shape)
        exact = v.producer is not None and v.producer.op == "DequantizeLinear" or \
            not v.dtype.is_float
        if exact:
            differing += int(np.count_nonzero(a != b))
        else:  # a float island after the int8 part (Softmax): its own float rounding
            differing += int(not compare(out_name, a, b, rtol=1e-5).ok) * a.size
        total += a.size
    return differing, total


@pytest.mark.parametrize("name", ZOO)
def test_int8_litert_bit_exact_with_edgec_reference(zoo_dir, name):
    """LiteRT's int8 outputs (reference kernels) equal edgec's int8 reference (and so its C)
    on 2 seeds: edgec requantises with TFLite's double rounding and TFLite's multipliers."""
    result = compiled(zoo_dir, name, "tflite-int8")
    for seed in (0, 1):
        differing, total = _int8_outputs_vs_reference(result, seed)
        assert differing == 0, f"{differing} of {total} outputs differ (seed {seed})"


def test_int8_io_file_takes_and_returns_int8(zoo_dir):
    """--tflite-io int8: no QUANTIZE/DEQUANTIZE, int8 I/O tensors with the graph's scales, and
    LiteRT still bit-exact with the reference (digits_cnn)."""
    result = compiled(zoo_dir, "digits_cnn", "tflite-int8", tflite_io="int8")
    data = result.files["model.tflite"]
    assert not {"QUANTIZE", "DEQUANTIZE"} & {op for op, _ in ops_and_versions(data)}
    sg = read_model(data).subgraphs[0]
    for index in list(sg.inputs) + list(sg.outputs):
        assert sg.tensors[index].type == schema.TensorType.INT8
        assert len(sg.tensors[index].quantization.scale) == 1
    q_in = next(n for n in result.graph.nodes if n.op == "QuantizeLinear").outputs[0].quant
    t_in = sg.tensors[sg.inputs[0]].quantization
    assert math.isclose(t_in.scale[0], float(q_in.scale[0]), rel_tol=0, abs_tol=0)
    assert t_in.zeroPoint[0] == int(q_in.zero_point[0])
    assert _int8_outputs_vs_reference(result, 0)[0] == 0


@pytest.mark.skipif(not tflm_available(), reason="tflite-micro is not installed")
@pytest.mark.parametrize("name", ["digits_cnn", "dscnn", "resnet8"])
@pytest.mark.parametrize("target", ["tflite-int8", "tflite-fp32"])
def test_tflite_micro_matches_litert(zoo_dir, name, target):
    """The TFLite Micro interpreter gives LiteRT's reference-kernel outputs exactly."""
    result = compiled(zoo_dir, name, target)
    feeds = random_inputs(result.source_graph, seed=2)
    litert = run_compiled(result, [feeds])[0]
    micro = run_compiled(result, [feeds], runtime="tflm")[0]
    for out_name, value in litert.items():
        np.testing.assert_array_equal(micro[out_name].reshape(value.shape), value)


@pytest.mark.parametrize("name", ["digits_cnn", "dscnn", "resnet8"])
def test_int8_layers_on_litert_inputs(zoo_dir, name):
    """Each layer on LiteRT's own inputs: every int8 op (convolutions, fully connected as
    CONV_2D, ADD, MEAN, pools) matches edgec's reference exactly; float islands within float32
    rounding."""
    result = compiled(zoo_dir, name, "tflite-int8")
    rows = [r for seed in (0, 1) for r in
            layer_differences(result, random_inputs(result.source_graph, seed=seed))]
    assert {r["op"] for r in rows} >= {"QConv"}
    for r in rows:
        if r["op"] == "Softmax":
            assert r["max_abs"] <= 1e-6, r
        else:
            assert r["differing"] == 0, r


@pytest.mark.parametrize("name", ["digits_cnn", "dscnn", "resnet8"])
def test_fp16_weights(zoo_dir, name):
    """tflite-fp16: every conv / fully connected weight is a float16 buffer widened by a
    DEQUANTIZE (version 3), the file is about half the fp32 one, and LiteRT's outputs stay
    within float16's weight rounding of onnxruntime fp32 (SNR >= 50 dB)."""
    half = compiled(zoo_dir, name, "tflite-fp16")
    full = compiled(zoo_dir, name, "tflite-fp32")
    data = half.files["model.tflite"]
    ops = ops_and_versions(data)
    layers = [op for op, _ in ops if op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    assert [v for op, v in ops if op == "DEQUANTIZE"] == [3] * len(layers)
    assert len(data) < 0.6 * len(full.files["model.tflite"])
    feeds = random_inputs(half.source_graph, seed=3)
    got = run_compiled(half, [feeds])[0]
    ref = onnxruntime_outputs(zoo_dir / f"{name}.onnx", feeds)
    for out_name, value in got.items():
        c = compare(out_name, value, np.asarray(ref[out_name]).reshape(value.shape))
        assert c.snr_db >= 50, (out_name, c.snr_db)


def _tflite_mbqm(x, multiplier, shift):
    """TFLite's default MultiplyByQuantizedMultiplier, transcribed from its published
    reference: RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << left, M), right)."""
    x = np.asarray(x, np.int64)
    q = np.asarray(multiplier, np.int64)
    s = np.asarray(shift, np.int64)
    ab = (x << np.maximum(s, 0)) * q
    num = ab + np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    high = np.where(num >= 0, num // (1 << 31), -((-num) // (1 << 31)))  # C++ division
    right = np.maximum(-s, 0)
    mask = (np.int64(1) << right) - 1
    return (high >> right) + ((high & mask) > ((mask >> 1) + (high < 0)))


def test_requantisation_is_tflites(zoo_dir):
    """edgec's QConv/QGemm multipliers are those TFLite derives from the file's float32
    scales, and qmath's arithmetic is TFLite's published double rounding."""
    from edgec import qmath

    result = compiled(zoo_dir, "dscnn", "tflite-int8")
    layers = [n for n in result.graph.nodes if n.op in ("QConv", "QGemm")]
    assert layers
    for node in layers:
        a = node.attrs
        reals = [float(np.float32(a["x_scale"])) * float(np.float32(s)) /
                 float(np.float32(a["y_scale"])) for s in a["w_scale"]]
        mult, shift = qmath.quantize_multipliers(reals)
        assert list(a["multiplier"]) == mult.tolist() and list(a["shift"]) == shift.tolist()
    rng = np.random.default_rng(5)
    acc = rng.integers(-(1 << 26), 1 << 26, 5000)
    mult = rng.integers(1 << 30, 1 << 31, 5000)
    shift = rng.integers(-20, 3, 5000)
    assert np.array_equal(qmath.multiply_by_quantized_multiplier(acc, mult, shift),
                          _tflite_mbqm(acc, mult, shift))


def _gemm_model(path, k: int, n: int, rows: int) -> None:
    """A [rows, k] x [k, n] Gemm with a bias, random weights (seeded)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    w = numpy_helper.from_array(rng.normal(0, 0.1, (n, k)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.1, n).astype(np.float32), "b")
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)
    graph = helper.make_graph([node], "fc", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [rows, k])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [rows, n])], [w, b])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.mark.skipif(not tflm_available(), reason="tflite-micro is not installed")
def test_per_channel_fully_connected_agrees_in_litert_and_tflm(tmp_path):
    """LiteRT's per-channel FULLY_CONNECTED rounds once and TFLite Micro's twice, so edgec
    writes a per-channel fully connected layer as RESHAPE + CONV_2D + RESHAPE: on outputs where
    the two roundings differ (ties of the second rounding, checked to occur here) LiteRT, TFLite
    Micro and edgec's reference still agree."""
    from edgec import qmath

    path = tmp_path / "fc.onnx"
    _gemm_model(path, 96, 512, 16)
    result = compile_model(path, CompileOptions(target="tflite-int8"))
    ops = [op for op, _ in ops_and_versions(result.files["model.tflite"])]
    assert "FULLY_CONNECTED" not in ops and ops.count("CONV_2D") == 1
    node = next(n for n in result.graph.nodes if n.op == "QGemm")
    a = node.attrs
    ties = 0
    for seed in (0, 1):
        feeds = random_inputs(result.source_graph, seed=seed)
        want = run_graph(result.graph, feeds, keep_all=True)
        x = want[node.inputs[0].name].astype(np.int64)
        acc = (x - a["x_zero_point"]) @ node.inputs[1].data.astype(np.int64).T + \
            node.inputs[2].data.astype(np.int64)
        m, s = np.asarray(a["multiplier"]), np.asarray(a["shift"])
        once = (acc * m + (np.int64(1) << (30 - s))) >> (31 - s)
        ties += int(np.count_nonzero(once != qmath.multiply_by_quantized_multiplier(acc, m, s)))
        litert = run_compiled(result, [feeds])[0]["y"]
        micro = run_compiled(result, [feeds], runtime="tflm")[0]["y"]
        np.testing.assert_array_equal(micro.reshape(litert.shape), litert)
        ref = np.asarray(run_graph(result.graph, feeds)["y"]).reshape(litert.shape)
        np.testing.assert_array_equal(litert, ref)
    assert ties > 0  # the layer's accumulators do hit the roundings' disagreement


def test_fp16_weights_verdict(zoo_dir):
    """`edgec verify -t tflite-fp16` judges by the fp16 SNR floor (50 dB against onnxruntime,
    as coreml-fp16), not the float32 band its weight rounding must leave: digits passes with
    the default rtol, and the same outputs with noise at ~40 dB SNR fail."""
    from edgec.workbench.compare import FP16_MIN_SNR_DB, compare_outputs

    half = compiled(zoo_dir, "digits_cnn", "tflite-fp16")
    model = zoo_dir / "digits_cnn.onnx"
    feeds = random_inputs(half.source_graph, seed=5)
    got = run_compiled(half, [feeds])
    res = compare_outputs(half, model, [feeds], got)
    assert res.ok and all(o.band_rel is not None and o.max_rel_err > o.band_rel
                          for o in res.outputs), [o.as_dict() for o in res.outputs]
    assert half.report["snr_floor_db"] == {o.name: FP16_MIN_SNR_DB for o in res.outputs}
    rng = np.random.default_rng(0)
    noisy = [{n: (v + rng.standard_normal(v.shape).astype(np.float32) * 0.01 * np.abs(v).max())
              .astype(np.float32) for n, v in got[0].items()}]
    bad = compare_outputs(half, model, [feeds], noisy)
    assert not bad.ok and all(o.snr_db < FP16_MIN_SNR_DB for o in bad.outputs)
