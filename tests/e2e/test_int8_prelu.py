"""PRelu inside int8 graphs (MediaPipe-style landmark networks: Conv -> PRelu -> Conv ...):
the PRelus become QPRelu (no float island), the C is bit-exact with the int8 reference on
every int8 target, and QPRelu's integers agree with the float PRelu of the dequantised
input (an independent computation) within one LSB."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import int8_c_target_params, tflite_mbqm
from onnx import TensorProto, helper, numpy_helper

from edgec import qmath
from edgec.compiler import CompileOptions, compile_model
from edgec.ir import DType, Graph, TensorType
from edgec.ops import get_op
from edgec.ops.int8_scheme import qprelu_attrs
from edgec.workbench.compare import compare_outputs, onnxruntime_outputs, random_inputs
from edgec.workbench.verify import run_compiled

TARGETS = int8_c_target_params("arm64-int8", "arm64-int8-base")


def landmark_model() -> onnx.ModelProto:
    """Conv -> PRelu (per channel) -> Conv -> PRelu (one negative slope) -> Add (skip) ->
    PRelu (standalone, per channel) -> Conv -> LeakyRelu, 1x3x32x32."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        return name

    def conv(name, x, c_in, c_out, stride=1):
        w = rng.standard_normal((c_out, c_in, 3, 3)) / np.sqrt(9 * c_in)
        nodes.append(helper.make_node("Conv", [x, const(name + "_w", w),
                                               const(name + "_b", rng.standard_normal(c_out) * .1)],
                                      [name], pads=[1, 1, 1, 1], strides=[stride, stride]))
        return name

    c0 = conv("c0", "x", 3, 16)
    nodes.append(helper.make_node("PRelu", [c0, const("s0", rng.uniform(0.05, 0.4, (16, 1, 1)))],
                                  ["p0"]))
    c1 = conv("c1", "p0", 16, 16)
    nodes.append(helper.make_node("PRelu", [c1, const("s1", [-0.25])], ["p1"]))
    nodes.append(helper.make_node("Add", ["p1", "p0"], ["sum"]))
    nodes.append(helper.make_node("PRelu", ["sum", const("s2", rng.uniform(0, 0.3, (16, 1, 1)))],
                                  ["p2"]))
    c2 = conv("c2", "p2", 16, 8, stride=2)
    nodes.append(helper.make_node("LeakyRelu", [c2], ["y"], alpha=0.1))
    graph = helper.make_graph(
        nodes, "landmark", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("prelu") / "landmark.onnx"
    onnx.save(landmark_model(), path)
    return path


def _compile(path: Path, target: str, keep_float: tuple[str, ...] = ()):
    calib = [{"x": np.random.default_rng(s).standard_normal((1, 3, 32, 32)).astype(np.float32)}
             for s in range(1, 9)]
    return compile_model(path, CompileOptions(target=target, calib_samples=calib,
                                              keep_float=keep_float))


def test_prelu_stays_integer(model_path):
    result = _compile(model_path, "generic-int8")
    q = result.report["quantization"]
    assert q["float_nodes"] == []
    ops = [node.op for node in result.graph.nodes]
    assert ops.count("QPRelu") == 3, ops  # two after a QConv, one standalone after QAdd
    assert "PRelu" not in ops and "QuantizeLinear" in ops


@pytest.mark.parametrize("keep_float", [(), ("PRelu",)], ids=["int8", "float-island"])
@pytest.mark.parametrize("target", TARGETS)
def test_prelu_model_is_bit_exact_on_every_int8_target(model_path, target, keep_float):
    """Integer PRelus, and also the standalone PRelu kept float (DequantizeLinear -> float
    PRelu -> QuantizeLinear: elementwise float steps, no contraction, the same division and
    ties-to-even rounding in C as in the reference) give the same bits on every target."""
    result = _compile(model_path, target, keep_float)
    if keep_float:
        assert [n.op for n in result.graph.nodes].count("PRelu") == 1
    samples = [random_inputs(result.source_graph, seed) for seed in (11, 12)]
    with tempfile.TemporaryDirectory(prefix="edgec-prelu-") as tmp:
        compiled = run_compiled(result, samples, Path(tmp))
    res = compare_outputs(result, model_path, samples, compiled)
    assert res.ok, [(o.name, o.mismatched) for o in res.outputs]
    # and the int8 model computes the float model: SNR against onnxruntime fp32
    ref = onnxruntime_outputs(model_path, samples[0])["y"].astype(np.float64)
    noise = np.sum((compiled[0]["y"] - ref) ** 2)
    assert 10 * np.log10(np.sum(ref ** 2) / noise) > 25.0


@pytest.mark.parametrize("alpha", [[0.25], [-0.5], [0.0], [0.01, 0.3, 1.7, -0.2]])
def test_qprelu_matches_float_prelu_of_dequantised_input(alpha):
    """All 256 inputs per channel: within one LSB of quantize(prelu(dequantize(q))) (numpy
    float64, ties to even), and exactly TFLite's PRELU: each side's multiplier applied with
    TFLite's double-rounding MultiplyByQuantizedMultiplier, written out here with Python
    integers (independent of qmath)."""
    x_scale, x_zp, y_scale, y_zp = 0.037, -11, 0.021, 5
    n = len(alpha)
    q = np.repeat(np.arange(-128, 128), n).reshape(256, n).astype(np.int8)
    g = Graph("t")
    x = g.add_input("x", TensorType(q.shape, DType.INT8))
    attrs = qprelu_attrs(alpha, x_scale, x_zp, y_scale, y_zp)
    node = g.add_node("QPRelu", [x], attrs=attrs)
    got = get_op("QPRelu").reference(node, q)[0].astype(np.int64)
    real = (q.astype(np.float64) - x_zp) * x_scale
    quotient = np.where(real >= 0, real, real * np.asarray(alpha)) / y_scale
    want = np.clip(np.rint(quotient) + y_zp, -128, 127)
    assert np.max(np.abs(got - want)) <= 1
    assert np.array_equal(got[q == x_zp], np.full(np.count_nonzero(q == x_zp), y_zp))

    for c in range(n):
        am = attrs["alpha_multiplier"][c % len(attrs["alpha_multiplier"])]
        ash = attrs["alpha_shift"][c % len(attrs["alpha_shift"])]
        sign = attrs["alpha_sign"][c]
        for i in range(256):
            d = int(q[i, c]) - x_zp
            y = tflite_mbqm(d, attrs["multiplier"][0], attrs["shift"][0]) if d >= 0 else \
                tflite_mbqm(d * sign, am, ash)
            assert got[i, c] == min(max(y + y_zp, -128), 127), (c, i)


def test_qprelu_identity_path_is_the_plain_requantisation():
    attrs = qprelu_attrs([0.2], 0.05, 3, 0.08, -7)
    g = Graph("t")
    x = g.add_input("x", TensorType((256,), DType.INT8))
    node = g.add_node("QPRelu", [x], attrs=attrs)
    q = np.arange(-128, 128).astype(np.int8)
    got = get_op("QPRelu").reference(node, q)[0]
    mult, shift = qmath.quantize_multiplier(0.05 / 0.08)
    want = qmath.requantize(q.astype(np.int64) - 3, mult, shift, -7, -128, 127)
    assert np.array_equal(got[q >= 3], want[q >= 3])


def test_export_qdq_of_the_prelu_model_agrees_with_the_int8_c(model_path, tmp_path):
    """The exported QDQ model (DQ -> PRelu -> Q) in onnxruntime, an independent int8
    execution, agrees with edgec's int8 reference within one LSB of the output scale.
    onnxruntime runs it unfused (Q/DQ around float ops): its fused int8 kernels give other
    bits on AVX2-only CPUs (saturating vpmaddubsw) than on VNNI ones (docs/hosts.md)."""
    from edgec.interp import run_graph
    from edgec.quant.qdq_export import qdq_model
    from edgec.workbench.compare import onnxruntime_outputs

    result = _compile(model_path, "generic-int8")
    model = qdq_model(result.graph)
    feeds = random_inputs(result.source_graph, 21)
    got = next(iter(onnxruntime_outputs(model, feeds, optimize=False).values()))
    want = run_graph(result.graph, feeds)["y"]
    dq = result.graph.outputs[0].producer
    assert dq.op == "DequantizeLinear"
    step = float(dq.input(1).data)
    diff = np.abs(got - want)
    # onnxruntime requantises in float (one rounding), edgec as TFLite does (two roundings,
    # docs/int8.md); the final lookup's slope turns a 1-LSB difference at its input into up to
    # 4 LSB (measured: 79 % of the 2,048 outputs equal, the rest 1, 2 or 4 steps). The two
    # executions have the same accuracy against the float model (measured 32.97 vs 32.94 dB):
    # a wrong scale or zero point in the export would cost many dB.
    assert np.max(diff) <= 4.01 * step
    ref = onnxruntime_outputs(model_path, feeds)["y"].astype(np.float64)

    def snr(x):
        return 10 * np.log10(np.sum(ref ** 2) / np.sum((x.reshape(ref.shape) - ref) ** 2))

    assert abs(snr(got) - snr(want)) <= 0.5, (snr(got), snr(want))
