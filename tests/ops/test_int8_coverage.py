"""int8 forms of Gelu (a lookup table), Div by a constant (QMul with the reciprocal folded into
the requantisation) and Resize (nearest on the int8 codes): in a Conv -> op int8 build no
float node is left, the C equals the int8 reference interpreter on every int8 target, and the
int8 model computes the float model (SNR against onnxruntime fp32, an independent reference).
Resize linear becomes QResize (Q10 weights); cubic stays float with its reason."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import int8_c_target_params
from onnx import TensorProto, helper, numpy_helper

from edgec.compiler import CompileOptions, compile_model
from edgec.errors import UnsupportedError
from edgec.interp import run_graph
from edgec.ops.int8_scheme import requant_attrs
from edgec.workbench.compare import compare_outputs, onnxruntime_outputs, random_inputs
from edgec.workbench.verify import run_compiled

TARGETS = int8_c_target_params("arm64-int8")
SHAPE = (1, 3, 12, 12)
C = 8


def _model(tail) -> onnx.ModelProto:
    """x -> Conv(3 -> 8, 3x3) -> the nodes `tail(const, nodes)` adds, ending in 'y'."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def const(name, arr, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype), name))
        return name

    w = rng.standard_normal((C, SHAPE[1], 3, 3)) / np.sqrt(27)
    nodes.append(helper.make_node("Conv", ["x", const("w", w), const("b", rng.uniform(-.3, .3, C))],
                                  ["c"], pads=[1, 1, 1, 1]))
    out_shape = tail(const, nodes)
    graph = helper.make_graph(
        nodes, "cov", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    onnx.checker.check_model(model)
    return model


def chain(const, nodes) -> list[int]:
    """Gelu (erf) -> Conv -> Gelu (tanh) -> Div by a scalar -> Div per channel (negative
    divisors too) -> Resize nearest (asymmetric, floor) -> Resize nearest (half_pixel,
    round_prefer_ceil, x1.5)."""
    rng = np.random.default_rng(1)
    nodes.append(helper.make_node("Gelu", ["c"], ["g0"]))
    w = rng.standard_normal((C, C, 3, 3)) / np.sqrt(9 * C)
    nodes.append(helper.make_node("Conv", ["g0", const("w1", w), const("b1", np.zeros(C))],
                                  ["c1"], pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("Gelu", ["c1"], ["g1"], approximate="tanh"))
    nodes.append(helper.make_node("Div", ["g1", const("k0", 3.7)], ["d0"]))
    k1 = np.array([0.3, -1.5, 2.0, 7.0, -0.45, 1.0, 0.9, 5.5]).reshape(1, C, 1, 1)
    nodes.append(helper.make_node("Div", ["d0", const("k1", k1)], ["d1"]))
    nodes.append(helper.make_node("Resize", ["d1", "", const("s0", [1, 1, 2, 2])], ["r0"],
                                  mode="nearest", coordinate_transformation_mode="asymmetric",
                                  nearest_mode="floor"))
    nodes.append(helper.make_node("Resize", ["r0", "", const("s1", [1, 1, 1.5, 1.5])], ["y"],
                                  mode="nearest", coordinate_transformation_mode="half_pixel",
                                  nearest_mode="round_prefer_ceil"))
    return [1, C, 36, 36]


def linear(const, nodes) -> list[int]:
    """Conv -> Resize linear (half_pixel, x2)."""
    nodes.append(helper.make_node("Resize", ["c", "", const("s0", [1, 1, 2, 2])], ["y"],
                                  mode="linear", coordinate_transformation_mode="half_pixel"))
    return [1, C, 24, 24]


def linear3(const, nodes) -> list[int]:
    """Conv -> Resize linear align_corners to 17x30 (sizes) -> Resize linear asymmetric
    down to 9x11 -> Resize linear pytorch_half_pixel x1.5 (antialias off)."""
    nodes.append(helper.make_node("Resize", ["c", "", "", const("z0", [1, C, 17, 30], np.int64)],
                                  ["r0"], mode="linear",
                                  coordinate_transformation_mode="align_corners"))
    nodes.append(helper.make_node("Resize", ["r0", "", "", const("z1", [1, C, 9, 11], np.int64)],
                                  ["r1"], mode="linear",
                                  coordinate_transformation_mode="asymmetric"))
    nodes.append(helper.make_node("Resize", ["r1", "", const("s2", [1, 1, 1.5, 1.5])], ["y"],
                                  mode="linear",
                                  coordinate_transformation_mode="pytorch_half_pixel"))
    return [1, C, 13, 16]


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cov")
    out = {}
    for name, tail in (("chain", chain), ("linear", linear), ("linear3", linear3)):
        out[name] = root / f"{name}.onnx"
        onnx.save(_model(tail), out[name])
    return out


def _compile(path: Path, target: str):
    calib = [{"x": np.random.default_rng(s).standard_normal(SHAPE).astype(np.float32)}
             for s in range(1, 9)]
    return compile_model(path, CompileOptions(target=target, calib_samples=calib))


def test_no_float_node_left(paths):
    result = _compile(paths["chain"], "generic-int8")
    q = result.report["quantization"]
    assert q["float_nodes"] == [], q.get("float_node_reasons")
    ops = [n.op for n in result.graph.nodes]
    assert ops.count("QLookup") == 2 and ops.count("QMul") == 2 and ops.count("Resize") == 2, ops
    assert "Gelu" not in ops and "Div" not in ops, ops
    assert ops.count("DequantizeLinear") == 1, ops  # the graph output only


def test_div_multiplier_folds_the_reciprocal_in_float64(paths):
    """The scalar Div's QMul multiplies by +-127 and requantises by x_scale / (127 k y_scale),
    derived in float64 (not from a rounded 1/k)."""
    result = _compile(paths["chain"], "generic-int8")
    qmul = next(n for n in result.graph.nodes if n.op == "QMul")
    a = qmul.attrs
    assert np.all(qmul.inputs[1].data == 127)
    want = requant_attrs([np.float64(a["a_scale"]) / (127 * np.float64(np.float32(3.7))
                                                      * np.float64(a["y_scale"]))])
    assert (a["multiplier"], a["shift"]) == (want["multiplier"][0], want["shift"][0])
    errors = sorted(layer["divisor_code_error"] for layer in
                    result.report["quantization"]["layers"] if "divisor_code_error" in layer)
    assert errors[0] == 0.0 and 0.05 < errors[1] < 0.1, errors  # per channel: 127 * 0.3 / 7


def cubic(const, nodes) -> list[int]:
    """Conv -> Resize cubic (x2)."""
    nodes.append(helper.make_node("Resize", ["c", "", const("s0", [1, 1, 2, 2])], ["y"],
                                  mode="cubic"))
    return [1, C, 24, 24]


def test_resize_cubic_stays_float_with_reason(tmp_path):
    path = tmp_path / "cubic.onnx"
    onnx.save(_model(cubic), path)
    q = _compile(path, "generic-int8").report["quantization"]
    reasons = {r["op"]: r["reason"] for r in q["float_node_reasons"]}
    assert "Resize" in reasons and "mode 'cubic' has no int8 form" in reasons["Resize"], q


def test_resize_linear_is_qresize(paths):
    result = _compile(paths["linear"], "generic-int8")
    assert result.report["quantization"]["float_nodes"] == []
    assert "QResize" in [n.op for n in result.graph.nodes]


@pytest.mark.parametrize("model", ["chain", "linear", "linear3"])
@pytest.mark.parametrize("target", TARGETS)
def test_bit_exact_on_every_int8_target_and_snr(paths, target, model):
    """C == the int8 reference on the target; the int8 output against onnxruntime fp32."""
    result = _compile(paths[model], target)
    assert result.report["quantization"]["float_nodes"] == []
    samples = [random_inputs(result.source_graph, seed) for seed in (11, 12)]
    with tempfile.TemporaryDirectory(prefix="edgec-cov-") as tmp:
        compiled = run_compiled(result, samples, Path(tmp))
    res = compare_outputs(result, paths[model], samples, compiled)
    assert res.ok, [(o.name, o.mismatched) for o in res.outputs]
    ref = onnxruntime_outputs(paths[model], samples[0])["y"].astype(np.float64)
    snr = 10 * np.log10(np.sum(ref ** 2) / np.sum((compiled[0]["y"] - ref) ** 2))
    print(f"{model} on {target}: SNR vs onnxruntime fp32 {snr:.1f} dB")
    assert snr > 25.0


def tflite_tail(const, nodes) -> list[int]:
    """Gelu -> Div by a scalar -> Div per channel -> Resize nearest (asymmetric, floor: TFLite's
    RESIZE_NEAREST_NEIGHBOR)."""
    nodes.append(helper.make_node("Gelu", ["c"], ["g0"]))
    nodes.append(helper.make_node("Div", ["g0", const("k0", -2.5)], ["d0"]))
    k1 = np.array([0.3, -1.5, 2.0, 7.0, -0.45, 1.0, 0.9, 5.5]).reshape(1, C, 1, 1)
    nodes.append(helper.make_node("Div", ["d0", const("k1", k1)], ["d1"]))
    nodes.append(helper.make_node("Resize", ["d1", "", const("s0", [1, 1, 2, 2])], ["y"],
                                  mode="nearest", coordinate_transformation_mode="asymmetric",
                                  nearest_mode="floor"))
    return [1, C, 24, 24]


def test_tflite_maps_them_bit_exact_with_tflite_activations(tmp_path):
    """tflite-int8 with --tflite-activations: Gelu as edgec's table (CAST + ADD + GATHER),
    Div as MUL with TFLite's multiplier, Resize as RESIZE_NEAREST_NEIGHBOR; LiteRT equals
    the int8 reference bit for bit. Without the option the exact Div fold is refused."""
    pytest.importorskip("ai_edge_litert.interpreter")
    from edgec.codegen.tflite.compat import compat_sections, tflite_bytes
    from edgec.codegen.tflite.runner import run_compiled as run_tflite

    path = tmp_path / "tfl.onnx"
    onnx.save(_model(tflite_tail), path)
    calib = [{"x": np.random.default_rng(s).standard_normal(SHAPE).astype(np.float32)}
             for s in range(1, 9)]
    result = compile_model(path, CompileOptions(target="tflite-int8", calib_samples=calib,
                                                tflite_activations=True))
    assert result.report["quantization"]["float_nodes"] == []
    ops = [row["op"] for row in compat_sections(tflite_bytes(result.files),
                                                analyzer=False)["nnapi"]["ops"]]
    assert ops.count("MUL") == 2 and "RESIZE_NEAREST_NEIGHBOR" in ops and "GATHER" in ops
    assert "DIV" not in ops, ops
    for seed in (0, 1):
        feeds = random_inputs(result.source_graph, seed=seed)
        got = run_tflite(result, [feeds])[0]["y"]
        assert np.array_equal(got, run_graph(result.graph, feeds)["y"].reshape(got.shape))
    with pytest.raises(UnsupportedError, match="--tflite-activations"):
        compile_model(path, CompileOptions(target="tflite-int8", calib_samples=calib))


@pytest.mark.parametrize(("ctm", "out_hw"), [("half_pixel", (13, 7)), ("align_corners", (16, 9)),
                                              ("asymmetric", (5, 4)),
                                              ("pytorch_half_pixel", (1, 10))])
def test_qresize_within_one_code_of_onnxruntime_linear(ctm, out_hw):
    """QResize's integers (Q10 weights, one rounding) against onnxruntime's float linear
    Resize of the same int8 codes, rounded: within one code everywhere."""
    import onnxruntime as ort

    from edgec.ir import DType, Graph, TensorType

    shape = (1, 6, 5, 3)  # NHWC codes
    x = np.random.default_rng(5).integers(-128, 128, shape).astype(np.int8)
    sizes = np.array([1, out_hw[0], out_hw[1], 3], np.int64)
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear",
                            coordinate_transformation_mode=ctm)
    graph = helper.make_graph(
        [node], "r", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(sizes, "sizes")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x.astype(np.float32)})[0]
    g = Graph("q")
    xv = g.add_input("x", TensorType(shape, DType.INT8))
    scales = [float(np.float32(s) / np.float32(n)) for s, n in zip(sizes, shape)]
    attrs = {"mode": "linear", "coordinate_transformation_mode": ctm,
             "sizes": [int(s) for s in sizes], "scales": scales}
    qnode = g.add_node("QResize", [xv], attrs=attrs, name="qr")
    g.outputs.append(qnode.output)
    got = run_graph(g, {"x": x})[qnode.output.name].astype(np.int32)
    assert got.shape == want.shape
    assert np.max(np.abs(got - np.rint(want))) <= 1


def test_tflite_refuses_qresize_in_one_line_and_keep_float_compiles(paths):
    """QResize's arithmetic is not TFLite's: the tflite back-end says so; --keep-float
    Resize leaves a float RESIZE_BILINEAR between DEQUANTIZE and QUANTIZE."""
    pytest.importorskip("ai_edge_litert.interpreter")
    calib = [{"x": np.random.default_rng(s).standard_normal(SHAPE).astype(np.float32)}
             for s in range(1, 9)]
    with pytest.raises(UnsupportedError, match="--keep-float Resize"):
        compile_model(paths["linear"], CompileOptions(target="tflite-int8", calib_samples=calib))
    result = compile_model(paths["linear"], CompileOptions(
        target="tflite-int8", calib_samples=calib, keep_float=("Resize",)))
    assert "Resize" in [n.op for n in result.graph.nodes]


NEAREST_CASES = [(ctm, nm) for ctm in ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                                       "align_corners", "asymmetric", "tf_half_pixel_for_nn")
                 for nm in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")]


@pytest.mark.parametrize(("ctm", "nm"), NEAREST_CASES)
def test_nearest_on_int8_codes_equals_onnxruntime_exactly(ctm, nm):
    """Resize nearest on int8 codes (what an int8 build runs) equals onnxruntime's Resize of
    the same codes as floats, every coordinate transform and nearest mode, up and down.
    Sizes avoid source coordinates that are exact halves in float32 (there onnxruntime's
    rounding depends on how its compiler evaluated the coordinate: tests/ops/test_resize)."""
    import onnxruntime as ort

    from edgec.ir import DType, Graph, TensorType

    shape = (1, 2, 7, 5)
    x = np.random.default_rng(6).integers(-128, 128, shape).astype(np.int8)
    for out_hw in ((17, 8), (3, 3)):
        sizes = np.array([1, 2, *out_hw], np.int64)
        node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="nearest",
                                coordinate_transformation_mode=ctm, nearest_mode=nm)
        graph = helper.make_graph(
            [node], "r", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
            [numpy_helper.from_array(sizes, "sizes")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
        sess = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        want = sess.run(None, {"x": x.astype(np.float32)})[0]
        g = Graph("q")
        xv = g.add_input("x", TensorType(shape, DType.INT8))
        scales = [float(np.float32(s) / np.float32(n)) for s, n in zip(sizes, shape)]
        attrs = {"mode": "nearest", "coordinate_transformation_mode": ctm, "nearest_mode": nm,
                 "sizes": [int(s) for s in sizes], "scales": scales}
        rnode = g.add_node("Resize", [xv], attrs=attrs, name="r")
        g.outputs.append(rnode.output)
        got = run_graph(g, {"x": x})[rnode.output.name]
        assert got.dtype == np.int8 and np.array_equal(got.astype(np.float32), want), out_hw


def test_upsample_linear_is_qresize_and_bit_exact(tmp_path):
    """Upsample (opset 9, linear) takes the same int8 form: QResize, C == the reference."""
    rng = np.random.default_rng(4)
    inits = [numpy_helper.from_array((rng.standard_normal((4, 3, 3, 3)) / 5).astype(np.float32),
                                     "w"),
             numpy_helper.from_array(np.array([1, 1, 2, 3], np.float32), "s")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Upsample", ["c", "s"], ["y"], mode="linear")]
    graph = helper.make_graph(
        nodes, "u", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 12, 15])], inits)
    path = tmp_path / "up.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)]), path)
    calib = [{"x": np.random.default_rng(s).standard_normal((1, 3, 6, 5)).astype(np.float32)}
             for s in range(4)]
    result = compile_model(path, CompileOptions(target="generic-int8", calib_samples=calib))
    assert result.report["quantization"]["float_nodes"] == []
    assert "QResize" in [n.op for n in result.graph.nodes]
    samples = [random_inputs(result.source_graph, 1)]
    compiled = run_compiled(result, samples, tmp_path / "o")
    res = compare_outputs(result, path, samples, compiled)
    assert res.ok, [(o.name, o.mismatched) for o in res.outputs]
