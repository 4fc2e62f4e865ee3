"""TFLite back-end, one small model per operator mapping: fp32 against onnxruntime, int8
arithmetic against TFLite's published integer formulas, and the one-line error contract.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import compile_model_proto, make_model, ort_run
from onnx import helper

from edgec import cli
from edgec.interp import run_graph
from edgec.workbench.compare import compare, onnxruntime_outputs

pytest.importorskip("ai_edge_litert.interpreter")
from edgec.codegen.tflite import builtin_name, read_model  # noqa: E402
from edgec.workbench.tflite_layers import layer_differences  # noqa: E402
from edgec.codegen.tflite.runner import quantize_input, run_compiled, run_litert  # noqa: E402

RNG = np.random.default_rng(7)
X = ("float32", [1, 4, 6, 6])


def _ops(result) -> list[str]:
    model = read_model(result.files["model.tflite"])
    return [builtin_name(model.operatorCodes[op.opcodeIndex].builtinCode)
            for op in model.subgraphs[0].operators]


def _check_fp32(model, feeds, expect_ops: list[str]) -> None:
    result = compile_model_proto(model, "tflite-fp32")
    assert _ops(result) == expect_ops
    got = run_compiled(result, [feeds])[0]
    ref = ort_run(model, feeds)
    for name, value in got.items():
        c = compare(name, value, np.asarray(ref[name]).reshape(value.shape), rtol=1e-5)
        assert c.ok, (name, c.max_rel_err)


def _conv(name: str, x: str, y: str, cin: int, cout: int, stride: int = 1, pad: int = 1,
          group: int = 1):
    w = RNG.standard_normal((cout, cin // group, 3, 3)).astype(np.float32) * 0.3
    b = RNG.standard_normal(cout).astype(np.float32) * 0.1
    node = helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [y], name=name,
                            kernel_shape=[3, 3], pads=[pad] * 4, strides=[stride] * 2,
                            group=group)
    return node, {f"{name}_w": w, f"{name}_b": b}


@pytest.mark.parametrize("op, tfl", [("Sigmoid", "LOGISTIC"), ("Tanh", "TANH"),
                                     ("HardSwish", "HARD_SWISH"), ("LeakyRelu", "LEAKY_RELU"),
                                     ("Relu", "RELU")])
def test_fp32_unary(op, tfl):
    """A float unary op after a conv: its builtin (or a fused RELU), same values as ORT."""
    conv, inits = _conv("c", "x", "t", 4, 8)
    act = helper.make_node(op, ["t"], ["y"], name="act")
    model = make_model([conv, act], {"x": X}, {"y": ("float32", [1, 8, 6, 6])}, inits,
                       opset=17 if op != "HardSwish" else 14)
    feeds = {"x": RNG.standard_normal(X[1]).astype(np.float32)}
    result = compile_model_proto(model, "tflite-fp32")
    ops = _ops(result)
    assert ops[0] == "CONV_2D"
    assert tfl in ops or (tfl == "RELU" and ops.count("RELU") == 0)  # Relu fuses into CONV_2D
    got = run_compiled(result, [feeds])[0]["y"]
    ref = ort_run(model, feeds)["y"]
    assert compare("y", got, ref.reshape(got.shape), rtol=1e-5).ok


def test_fp32_residual_add_relu_and_stride2_pad():
    """conv -> conv(stride 2, torch pads 1/1: explicit PAD + VALID) ; add + relu fused."""
    c1, i1 = _conv("c1", "x", "a", 4, 8, stride=2)
    c2, i2 = _conv("c2", "a", "b", 8, 8)
    add = helper.make_node("Add", ["a", "b"], ["s"], name="add")
    relu = helper.make_node("Relu", ["s"], ["y"], name="relu")
    model = make_model([c1, c2, add, relu], {"x": X}, {"y": ("float32", [1, 8, 3, 3])},
                       {**i1, **i2})
    feeds = {"x": RNG.standard_normal(X[1]).astype(np.float32)}
    result = compile_model_proto(model, "tflite-fp32")
    ops = _ops(result)
    assert ops.count("PAD") == 1 and "RELU" not in ops and "ADD" in ops
    got = run_compiled(result, [feeds])[0]["y"]
    assert compare("y", got, ort_run(model, feeds)["y"].reshape(got.shape), rtol=1e-5).ok


def test_fp32_concat_maxpool_softmax_depthwise():
    """Depthwise conv, channel concat, SAME max pool, flatten + softmax."""
    d, i1 = _conv("dw", "x", "a", 4, 4, group=4)
    c, i2 = _conv("c", "x", "b", 4, 4)
    cat = helper.make_node("Concat", ["a", "b"], ["cat"], axis=1, name="cat")
    pool = helper.make_node("MaxPool", ["cat"], ["p"], kernel_shape=[2, 2], strides=[2, 2],
                            name="pool")
    flat = helper.make_node("Flatten", ["p"], ["f"], axis=1, name="flat")
    sm = helper.make_node("Softmax", ["f"], ["y"], axis=-1, name="sm")
    model = make_model([d, c, cat, pool, flat, sm], {"x": X}, {"y": ("float32", [1, 72])},
                       {**i1, **i2})
    feeds = {"x": RNG.standard_normal(X[1]).astype(np.float32)}
    result = compile_model_proto(model, "tflite-fp32")
    ops = _ops(result)
    assert {"DEPTHWISE_CONV_2D", "CONCATENATION", "MAX_POOL_2D", "SOFTMAX"} <= set(ops)
    got = run_compiled(result, [feeds])[0]["y"]
    assert compare("y", got, ort_run(model, feeds)["y"].reshape(got.shape), rtol=1e-5).ok


def _srdhm(a: np.ndarray, b: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul (int64 arrays; C++ division truncates)."""
    ab = a.astype(np.int64) * np.int64(b)
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    num = ab + nudge
    return np.where(num >= 0, num // (1 << 31), -((-num) // (1 << 31)))


def _rounding_divide_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def _quantize_multiplier(real: float) -> tuple[int, int]:
    mantissa, shift = np.frexp(real)
    q = int(np.round(mantissa * (1 << 31)))  # |mantissa| >= 0.5: no tie at .5 of an int
    if q == 1 << 31:
        q, shift = q // 2, shift + 1
    return q, int(shift)


def test_litert_conv_and_edgec_round_twice():
    """The int8 arithmetic, pinned on one CONV_2D: LiteRT equals TFLite's reference formula
    MBQM(x) = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << left, M), right)
    with M from the file's scales, bit for bit, and so does edgec's reference; the
    single-rounding form round(x * M * 2^(shift-31)) differs on some of these outputs."""
    conv, inits = _conv("c", "x", "y", 8, 16)
    model = make_model([conv], {"x": ("float32", [1, 8, 16, 16])},
                       {"y": ("float32", [1, 16, 16, 16])}, inits)
    result = compile_model_proto(model, "tflite-int8", tflite_io="int8")
    assert _ops(result) == ["CONV_2D"]  # NHWC input and output, int8 I/O
    tfl = read_model(result.files["model.tflite"])
    sg = tfl.subgraphs[0]
    conv_op = [op for op in sg.operators
               if builtin_name(tfl.operatorCodes[op.opcodeIndex].builtinCode) == "CONV_2D"][0]
    x_t, w_t, b_t = (sg.tensors[i] for i in conv_op.inputs)
    y_t = sg.tensors[conv_op.outputs[0]]
    w = np.frombuffer(bytes(tfl.buffers[w_t.buffer].data), np.int8).reshape(w_t.shape)
    bias = np.frombuffer(bytes(tfl.buffers[b_t.buffer].data), np.int32)
    feeds = {"x": (RNG.standard_normal((1, 8, 16, 16)) * 1.5).astype(np.float32)}
    xq = quantize_input(feeds["x"].transpose(0, 2, 3, 1), np.int8, x_t.quantization.scale[0],
                        x_t.quantization.zeroPoint[0]).astype(np.int64)
    got = run_litert(result.files["model.tflite"], feeds, ["x"], ["y"],
                     float_outputs=False)["y"].transpose(0, 2, 3, 1)  # back to the file's NHWC
    # the accumulator, straight from the file: SAME 3x3, padding reads the input zero point
    xp = np.pad(xq - x_t.quantization.zeroPoint[0], [(0, 0), (1, 1), (1, 1), (0, 0)])
    acc = np.zeros((1, 16, 16, 16), np.int64) + bias
    for i in range(3):
        for j in range(3):
            acc += np.einsum("nhwc,mc->nhwm", xp[:, i:i + 16, j:j + 16, :],
                             w[:, i, j, :].astype(np.int64))
    twice = np.zeros_like(acc)
    once = np.zeros_like(acc)
    for m in range(16):
        real = float(np.float32(x_t.quantization.scale[0])) * \
            float(np.float32(w_t.quantization.scale[m])) / \
            float(np.float32(y_t.quantization.scale[0]))
        q, shift = _quantize_multiplier(real)
        left, right = max(shift, 0), max(-shift, 0)
        twice[..., m] = _rounding_divide_by_pot(_srdhm(acc[..., m] << left, q), right)
        total = 31 - shift
        once[..., m] = (acc[..., m] * q + (1 << (total - 1))) >> total
    zp = y_t.quantization.zeroPoint[0]
    twice = np.clip(twice + zp, -128, 127)
    once = np.clip(once + zp, -128, 127)
    edgec_int8 = run_graph(result.graph, feeds, keep_all=True)
    y_int8 = next(n for n in result.graph.nodes if n.op == "QConv").outputs[0]
    np.testing.assert_array_equal(got, twice)
    np.testing.assert_array_equal(edgec_int8[y_int8.name].reshape(twice.shape), twice)
    assert np.count_nonzero(twice != once) > 0  # ties of the second rounding exist here


def test_unsupported_op_is_one_line_exit_2(tmp_path, capsys):
    """An op with no TFLite mapping: `edgec compile` exits 2 with one line naming the node."""
    node = helper.make_node("Sin", ["x"], ["y"], name="my_sine")
    model = make_model([node], {"x": ("float32", [1, 4])}, {"y": ("float32", [1, 4])})
    path = tmp_path / "sin.onnx"
    path.write_bytes(model.SerializeToString())
    code = cli.main(["compile", str(path), "-t", "tflite-fp32", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("edgec: error:") and "my_sine" in err[0]
    assert not (tmp_path / "out").exists()


def test_compile_writes_tflite_and_report(tmp_path, capsys):
    """`edgec compile -t tflite-fp32` writes model.tflite (binary) and report.json."""
    conv, inits = _conv("c", "x", "y", 4, 8)
    model = make_model([conv], {"x": X}, {"y": ("float32", [1, 8, 6, 6])}, inits)
    path = tmp_path / "conv.onnx"
    path.write_bytes(model.SerializeToString())
    assert cli.main(["compile", str(path), "-t", "tflite-fp32", "-o", str(tmp_path / "o")]) == 0
    data = (tmp_path / "o" / "model.tflite").read_bytes()
    assert data[4:8] == b"TFL3" and (tmp_path / "o" / "report.json").exists()
    feeds = {"x": RNG.standard_normal(X[1]).astype(np.float32)}
    ref = onnxruntime_outputs(path, feeds)["y"]
    got = run_litert(data, feeds, ["x"], ["y"])["y"]
    assert compare("y", got, ref.reshape(got.shape), rtol=1e-5).ok


@pytest.mark.parametrize("mode, coords", [("nearest", "asymmetric"), ("linear", "half_pixel"),
                                          ("linear", "align_corners")])
def test_fp32_resize(mode, coords):
    """Resize x2 of a conv's output -> RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR, as ORT."""
    conv, inits = _conv("c", "x", "t", 4, 8)
    resize = helper.make_node("Resize", ["t", "", "scales"], ["y"], name="up", mode=mode,
                              coordinate_transformation_mode=coords, nearest_mode="floor")
    inits["scales"] = np.array([1, 1, 2, 2], np.float32)
    model = make_model([conv, resize], {"x": X}, {"y": ("float32", [1, 8, 12, 12])}, inits,
                       opset=13)
    feeds = {"x": RNG.standard_normal(X[1]).astype(np.float32)}
    kind = "RESIZE_NEAREST_NEIGHBOR" if mode == "nearest" else "RESIZE_BILINEAR"
    _check_fp32(model, feeds, ["CONV_2D", kind])


def test_fp32_prelu_fused_and_standalone():
    """PRelu fused after a conv (a trailing PRELU) and after an Add (a PRELU op)."""
    conv, inits = _conv("c", "x", "t", 4, 4)
    p1 = helper.make_node("PRelu", ["t", "s1"], ["u"], name="p1")
    add = helper.make_node("Add", ["u", "x"], ["v"], name="add")
    p2 = helper.make_node("PRelu", ["v", "s2"], ["y"], name="p2")
    inits["s1"] = RNG.random((4, 1, 1)).astype(np.float32)
    inits["s2"] = RNG.random((4, 1, 1)).astype(np.float32)
    model = make_model([conv, p1, add, p2], {"x": X}, {"y": X}, inits)
    feeds = {"x": RNG.standard_normal(X[1]).astype(np.float32)}
    # x feeds the conv and the add: the layout pass keeps the add channels-first, so the
    # model itself needs its two Transposes here
    _check_fp32(model, feeds, ["TRANSPOSE", "CONV_2D", "PRELU", "TRANSPOSE", "ADD", "PRELU"])



def test_int8_mul_concat_requantize_per_layer():
    """int8 MUL of two activations and a Concat of differently scaled inputs (edgec
    requantises one: QUANTIZE int8 -> int8): each layer on LiteRT's inputs equals edgec's
    reference exactly."""
    c1, i1 = _conv("c1", "x", "a", 4, 4)
    c2, i2 = _conv("c2", "x", "b", 4, 4)
    mul = helper.make_node("Mul", ["a", "b"], ["m"], name="mul")
    cat = helper.make_node("Concat", ["m", "a"], ["y"], axis=1, name="cat")
    model = make_model([c1, c2, mul, cat], {"x": X}, {"y": ("float32", [1, 8, 6, 6])},
                       {**i1, **i2})
    result = compile_model_proto(model, "tflite-int8")
    ops = _ops(result)
    assert {"MUL", "CONCATENATION"} <= set(ops)
    rng = np.random.default_rng(5)
    rows = layer_differences(result, {"x": rng.standard_normal(X[1]).astype(np.float32)})
    seen = {r["op"] for r in rows}
    assert {"QMul", "Concat"} <= seen
    for r in rows:
        assert r["differing"] == 0, r
        if r["op"] in ("Concat", "Reshape", "Transpose", "QuantizeLinear"):
            assert r["differing"] == 0, r


def test_cli_verify_per_layer_and_bench(zoo_dir, capsys):
    """`edgec verify -t tflite-int8 --per-layer` tables every layer on LiteRT's inputs (exit 0:
    every layer bit-exact); `edgec bench -t tflite-*` is a one-line error, exit 2."""
    model = str(zoo_dir / "digits_cnn.onnx")
    code = cli.main(["verify", model, "-t", "tflite-int8", "--per-layer"])
    out = capsys.readouterr().out
    assert code == 0 and "MaxPool" in out and "QConv" in out and "edgec verify: PASS" in out
    assert cli.main(["bench", model, "-t", "tflite-fp32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "writes a .tflite" in err[0]


def test_fp32_gemm_alpha_beta_untransposed():
    """Gemm with transB=0, alpha 0.5, beta 2 -> FULLY_CONNECTED with folded constants."""
    rng = np.random.default_rng(9)
    gemm = helper.make_node("Gemm", ["x", "w", "b"], ["y"], alpha=0.5, beta=2.0, name="fc")
    model = make_model([gemm], {"x": ("float32", [2, 16])}, {"y": ("float32", [2, 8])},
                       {"w": rng.standard_normal((16, 8)).astype(np.float32),
                        "b": rng.standard_normal(8).astype(np.float32)})
    feeds = {"x": rng.standard_normal((2, 16)).astype(np.float32)}
    _check_fp32(model, feeds, ["FULLY_CONNECTED"])


def test_int8_io_on_a_float_target_is_one_line_exit_2(zoo_dir, tmp_path, capsys):
    """--tflite-io int8 asks for int8 tensors: on tflite-fp32 a one-line error, exit 2."""
    code = cli.main(["compile", str(zoo_dir / "digits_cnn.onnx"), "-t", "tflite-fp32",
                     "--tflite-io", "int8", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--tflite-io int8 needs" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("op", ["Sigmoid", "Tanh", "HardSwish"])
def test_int8_lookup_is_cast_add_gather_and_exact(op):
    """An int8 activation edgec computes as a 256-entry table: CAST (v3), ADD, GATHER (v2)
    from the same table, so that layer matches edgec's reference bit for bit."""
    conv, inits = _conv("c", "x", "t", 4, 8)
    act = helper.make_node(op, ["t"], ["y"], name="act")
    model = make_model([conv, act], {"x": X}, {"y": ("float32", [1, 8, 6, 6])}, inits,
                       opset=14)
    result = compile_model_proto(model, "tflite-int8")
    assert any(n.op == "QLookup" for n in result.graph.nodes)
    model_t = read_model(result.files["model.tflite"])
    versions = {builtin_name(c.builtinCode): c.version for c in model_t.operatorCodes}
    assert versions["CAST"] == 3 and versions["GATHER"] == 2 and versions["ADD"] == 1
    rng = np.random.default_rng(4)
    rows = layer_differences(result, {"x": rng.standard_normal(X[1]).astype(np.float32)})
    lookups = [r for r in rows if r["op"] == "QLookup"]
    assert lookups and all(r["differing"] == 0 for r in lookups)
