"""edgec's internal int8 ops: generated C bit-identical to the int8 reference interpreter, and
the reference checked against float computations (within 1 LSB) and hand-worked cases.

Graphs are built directly in the IR (channels-last, as the quantize pass emits them); each
test compiles one graph holding several variants and builds it with a few compiler setups.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import have

from edgec import qmath
from edgec.workbench import toolchain
from edgec.compiler import CompileOptions, compile_graph, write_output
from edgec.interp import run_graph
from edgec.ir import DType, Graph, TensorType
from edgec.ops.int8_scheme import (
    activation_range,
    average_pool_attrs,
    lookup_table,
    qadd_attrs,
    qmul_attrs,
    requant_attrs,
)
from edgec.ops.quantized import lookup_table_for_op
from edgec.ops.quantized_pool import rounding_divide

RNG = np.random.default_rng(7)
CLANG = pytest.mark.skipif(not have("clang"), reason="clang missing")


# ------------------------------------------------------------------------------ helpers
def new_graph(inputs: dict[str, tuple]) -> tuple[Graph, dict]:
    """A graph with int8 inputs; returns it and random int8 feeds."""
    g = Graph("q")
    feeds = {}
    for name, shape in inputs.items():
        g.add_input(name, TensorType(shape, DType.INT8))
        feeds[name] = RNG.integers(-128, 128, shape).astype(np.int8)
    return g, feeds


def add(g: Graph, op: str, inputs, **attrs):
    """Add a node and make its output a graph output."""
    node = g.add_node(op, inputs, attrs=attrs, name=f"{op.lower()}_{len(g.nodes)}")
    g.outputs.append(node.output)
    return node


def build_and_run(result, feeds: dict, cc: str | None = None, opt: str | None = None,
                  sanitize: bool = False, extra: tuple = ()) -> dict:
    """Build the compiled graph with the given compiler setup and run it once."""
    with tempfile.TemporaryDirectory(prefix="edgec-q-") as tmp:
        out = write_output(result.files, Path(tmp) / "out")
        flags = tuple(extra) + ((opt,) if opt else ())
        exe = toolchain.build(out, result.target, cc=cc, sanitize=sanitize, extra_cflags=flags)
        g = result.graph
        ins = [feeds[v.name] for v in g.inputs]
        outs, _ = toolchain.run(exe, result.target, ins, [(v.shape, v.dtype.np)
                                                          for v in g.outputs])
        return {v.name: o for v, o in zip(g.outputs, outs)}


def check_bit_exact(g: Graph, feeds: dict, setups=((None, None, False),)) -> dict:
    """Compile `g` once; every build setup (cc, -O, sanitize) must equal the interpreter."""
    g.meta["output_names"] = [v.name for v in g.outputs]
    want = run_graph(g, feeds)
    result = compile_graph(g.clone(), CompileOptions(target="generic-fp32"), model_name="q")
    for cc, opt, sanitize in setups:
        got = build_and_run(result, feeds, cc, opt, sanitize)
        for name, ref in want.items():
            assert got[name].dtype == ref.dtype and got[name].shape == ref.shape, name
            diff = np.count_nonzero(got[name] != ref)
            assert diff == 0, f"{name} ({cc}, {opt}, sanitize={sanitize}): {diff} differ"
    return want


def spread(values: np.ndarray) -> bool:
    """True when outputs are not mostly saturated (the test exercises real values)."""
    return np.mean((values > -128) & (values < 127)) > 0.8


def conv_real(x, w, bias, x_scale, x_zp, w_scale, stride, pad, dil, group):
    """Float64 convolution of dequantised NHWC data (the real-valued meaning of QConv)."""
    from edgec.ops.conv import conv_nchw

    xr = (np.moveaxis(x, -1, 1).astype(np.float64) - x_zp) * x_scale
    wr = w.astype(np.float64) * w_scale.reshape(-1, 1, 1, 1)
    y = conv_nchw(xr, wr, bias * x_scale * w_scale, stride, dil, pad, group)
    return np.moveaxis(y, 1, -1)


# ------------------------------------------------------------------------------ QConv
CONV_CASES = [  # name, C, M, kernel, stride, pad, dilation, group, x_zp, per_channel, act
    ("pointwise", 16, 24, 1, 1, 0, 1, 1, -5, True, "none"),
    ("depthwise_pad_zp", 16, 16, 3, 1, 1, 1, 16, 9, True, "relu"),
    ("depthwise_stride2_zp0", 16, 16, 3, 2, 1, 1, 16, 0, True, "none"),
    ("depthwise_wide_block", 80, 80, 3, 1, 1, 1, 80, -20, True, "none"),
    ("general_stride_pad", 16, 8, 3, 2, 1, 1, 1, 3, True, "clip"),
    ("general_grouped_dilated", 16, 12, 3, 1, 2, 2, 4, -1, False, "none"),
    ("strided_1x1", 16, 8, 1, 2, 0, 1, 1, 11, True, "none"),
    ("depth_multiplier_2", 16, 32, 3, 1, 1, 1, 16, 4, True, "relu"),
]


def make_conv_graph(cases, h=7, w=6):
    """One graph with a QConv per case on a shared NHWC input (per-case channel counts)."""
    g = Graph("q")
    feeds, meta = {}, {}
    x_scale, y_scale = 0.05, 0.08
    for name, c, m, k, s, p, d, grp, x_zp, per_ch, act in cases:
        x = g.add_input(f"x_{name}", TensorType((1, h, w, c), DType.INT8))
        feeds[x.name] = RNG.integers(-128, 128, (1, h, w, c)).astype(np.int8)
        wt = RNG.integers(-127, 128, (m, c // grp, k, k)).astype(np.int8)
        w_scale = RNG.uniform(0.5, 1.5, m) * 0.6 / np.sqrt(wt[0].size) / 127 / x_scale * y_scale
        if not per_ch:
            w_scale = np.full(m, w_scale[0])
        bias = RNG.integers(-3000, 3000, m).astype(np.int32)
        y_zp = -7
        lo, hi = activation_range(act, y_scale, y_zp, -1.0, 4.0)
        real = x_scale * w_scale / y_scale
        node = add(g, "QConv", [x, g.const(wt, "w"), g.const(bias, "b")], layout="NHWC",
                   kernel_shape=[k, k], strides=[s, s], pads=[p] * 4, dilations=[d, d],
                   group=grp, x_zero_point=x_zp, y_zero_point=y_zp, act_min=lo, act_max=hi,
                   x_scale=x_scale, y_scale=y_scale, w_scale=list(w_scale),
                   **requant_attrs(real if per_ch else real[:1]))
        meta[node.output.name] = (feeds[x.name], wt, bias, x_scale, x_zp, w_scale, s, p, d, grp,
                                  y_scale, y_zp, lo, hi)
    return g, feeds, meta


def test_qconv_kernels_bit_exact_and_within_one_lsb_of_float():
    g, feeds, meta = make_conv_graph(CONV_CASES)
    want = check_bit_exact(g, feeds, setups=[(None, "-O0", False), ("gcc", "-O3", False)])
    for name, (x, wt, bias, xs, xzp, ws, s, p, d, grp, ys, yzp, lo, hi) in meta.items():
        real = conv_real(x, wt, bias, xs, xzp, ws, [s, s], [p] * 4, [d, d], grp)
        expect = np.clip(np.rint(real / ys) + yzp, lo, hi)
        got = want[name].astype(np.int64)
        assert np.max(np.abs(got - expect)) <= 1, name
        assert np.mean(got == expect) > 0.95, name
        assert spread(got) or lo > -128, name


@CLANG
def test_qconv_clang_and_sanitizers():
    g, feeds, _ = make_conv_graph(CONV_CASES[:2] + CONV_CASES[4:6], h=5, w=5)
    check_bit_exact(g, feeds, setups=[("clang", "-O3", False), ("clang", None, True),
                                      ("gcc", None, True)])


def test_qconv_1d_and_nchw_reference():
    g, feeds = new_graph({"x": (1, 9, 4)})  # NWC, 1-D
    wt = RNG.integers(-127, 128, (6, 4, 3)).astype(np.int8)
    add(g, "QConv", [g.inputs[0], g.const(wt, "w")], layout="NHWC", pads=[1, 0], strides=[2],
        x_zero_point=2, y_zero_point=1, **requant_attrs([0.004] * 6))
    want = check_bit_exact(g, feeds)
    # The same convolution in channels-first layout gives the transposed result.
    g2 = Graph("nchw")
    x = g2.add_input("x", TensorType((1, 4, 9), DType.INT8))
    n = g2.add_node("QConv", [x, g2.const(wt, "w")], attrs=dict(
        pads=[1, 0], strides=[2], x_zero_point=2, y_zero_point=1, **requant_attrs([0.004] * 6)))
    g2.outputs.append(n.output)
    ref = run_graph(g2, {"x": np.ascontiguousarray(np.moveaxis(feeds["x"], -1, 1))})
    assert np.array_equal(np.moveaxis(next(iter(ref.values())), 1, -1), next(iter(want.values())))


def test_qconv_hand_worked():
    # One pixel x = [3, -2], x_zp = 1, w = [2, 5], multiplier 0.5, y_zp = 3:
    # bias 17: acc = 17 + (3 - 1) * 2 + (-2 - 1) * 5 = 6 -> 3, + 3 = 6;
    # bias 18: acc = 7 -> 3.5 rounds up to 4 (TFLite's ties upwards) -> 7;
    # bias 4: acc = -7 -> -3.5 rounds up to -3 -> 0.
    for bias, expect in ((17, 6), (18, 7), (4, 0)):
        g = Graph("hand")
        x = g.add_input("x", TensorType((1, 1, 1, 2), DType.INT8))
        w = g.const(np.array([[[[2]], [[5]]]], np.int8), "w")
        b = g.const(np.array([bias], np.int32), "b")
        n = g.add_node("QConv", [x, w, b], attrs=dict(layout="NHWC", x_zero_point=1,
                                                       y_zero_point=3, **requant_attrs([0.5])))
        g.outputs.append(n.output)
        y = run_graph(g, {"x": np.array([3, -2], np.int8).reshape(1, 1, 1, 2)})
        assert next(iter(y.values())).reshape(-1).tolist() == [expect]
    y = check_bit_exact(g, {"x": np.array([3, -2], np.int8).reshape(1, 1, 1, 2)})
    assert next(iter(y.values())).reshape(-1).tolist() == [0]


def test_qconv_refuses_possible_int32_overflow():
    from edgec.errors import UnsupportedError

    g, _ = new_graph({"x": (1, 1, 1, 140000)})
    wt = np.full((1, 140000, 1, 1), 127, np.int8)
    add(g, "QConv", [g.inputs[0], g.const(wt, "w")], layout="NHWC", **requant_attrs([1e-6]))
    with pytest.raises(UnsupportedError, match="overflow"):
        compile_graph(g, CompileOptions(target="generic-fp32"))


# ------------------------------------------------------------------------------ QGemm, QMatMul
def test_qgemm_and_qmatmul_bit_exact():
    g, feeds = new_graph({"x2": (3, 40), "x3": (2, 3, 40), "a": (2, 3, 5, 7), "b": (3, 7, 4)})
    w = RNG.integers(-127, 128, (10, 40)).astype(np.int8)
    bias = RNG.integers(-5000, 5000, 10).astype(np.int32)
    x2, x3, a, b = g.inputs
    add(g, "QGemm", [x2, g.const(w, "w"), g.const(bias, "b")], x_zero_point=-4, y_zero_point=2,
        **requant_attrs(RNG.uniform(0.0005, 0.001, 10)))
    add(g, "QGemm", [x3, g.const(w, "w")], x_zero_point=0, y_zero_point=-1, act_min=-1,
        **requant_attrs([0.0008]))
    add(g, "QMatMul", [a, b], a_zero_point=3, b_zero_point=-2, y_zero_point=5,
        **requant_attrs([0.002]))
    want = check_bit_exact(g, feeds, setups=[(None, "-O0", False), ("gcc", "-O3", False)])
    # Independent check of QGemm: the real-valued product requantised, within 1 LSB.
    at = g.nodes[0].attrs
    ratios = np.array([m * 2.0 ** (s - 31) for m, s in zip(at["multiplier"], at["shift"])])
    real = (feeds["x2"].astype(np.float64) + 4) @ w.T.astype(np.float64) + bias
    expect = np.clip(np.rint(real * ratios) + 2, -128, 127)
    got = want[g.outputs[0].name].astype(np.int64)
    assert np.max(np.abs(got - expect)) <= 1 and spread(got)
    real_mm = np.matmul(feeds["a"].astype(np.float64) - 3, feeds["b"].astype(np.float64) + 2)
    got_mm = want[g.outputs[2].name].astype(np.int64)
    assert np.max(np.abs(got_mm - np.clip(np.rint(real_mm * 0.002) + 5, -128, 127))) <= 1


@CLANG
def test_qgemm_clang_sanitized():
    g, feeds = new_graph({"x": (4, 33)})
    w = RNG.integers(-127, 128, (9, 33)).astype(np.int8)
    add(g, "QGemm", [g.inputs[0], g.const(w, "w")], x_zero_point=7,
        **requant_attrs(RNG.uniform(0.002, 0.004, 9)))
    check_bit_exact(g, feeds, setups=[("clang", None, True)])


# ------------------------------------------------------------------------------ QAdd, QMul
def test_qadd_qmul_broadcast_bit_exact_and_real_valued():
    g, feeds = new_graph({"a": (2, 3, 4, 8), "b": (4, 1), "c": (2, 3, 4, 8)})
    a, b, c = g.inputs
    sa, sb, sc, sy = 0.05, 0.11, 0.07, 0.09
    add(g, "QAdd", [a, b], a_zero_point=-3, b_zero_point=10, y_zero_point=4,
        **qadd_attrs(sa, sb, sy))
    add(g, "QAdd", [a, c], a_zero_point=-3, b_zero_point=-128, y_zero_point=-128,
        act_min=-128, **qadd_attrs(sa, sc, sy))
    add(g, "QMul", [a, b], a_zero_point=-3, b_zero_point=10, y_zero_point=1,
        **qmul_attrs(sa, sb, 0.25))
    want = check_bit_exact(g, feeds, setups=[(None, "-O0", False), ("gcc", "-O3", False)])
    fa = (feeds["a"].astype(np.float64) + 3) * sa
    fb = (feeds["b"].astype(np.float64) - 10) * sb
    fc = (feeds["c"].astype(np.float64) + 128) * sc
    expect = [np.clip(np.rint((fa + fb) / sy) + 4, -128, 127),
              np.clip(np.rint((fa + fc) / sy) - 128, -128, 127),
              np.clip(np.rint(fa * fb / 0.25) + 1, -128, 127)]
    for v, e in zip(g.outputs, expect):
        got = want[v.name].astype(np.int64)
        assert np.max(np.abs(got - e)) <= 1, v.name
        assert np.mean(got == e) > 0.97, v.name


def test_qadd_hand_worked():
    # Equal scales 0.5 everywhere, zero points 0: 3 + 4 = 7 exactly, -3 + -4 = -7.
    g, _ = new_graph({"a": (2,), "b": (2,)})
    add(g, "QAdd", list(g.inputs), **qadd_attrs(0.5, 0.5, 0.5))
    y = check_bit_exact(g, {"a": np.array([3, -3], np.int8), "b": np.array([4, -4], np.int8)})
    assert next(iter(y.values())).tolist() == [7, -7]


@CLANG
def test_qbinary_clang_sanitized():
    g, feeds = new_graph({"a": (3, 5), "b": (5,)})
    add(g, "QAdd", list(g.inputs), a_zero_point=1, b_zero_point=-1, **qadd_attrs(0.1, 0.3, 0.2))
    add(g, "QMul", list(g.inputs), a_zero_point=1, b_zero_point=-1, **qmul_attrs(0.1, 0.3, 0.2))
    check_bit_exact(g, feeds, setups=[("clang", None, True), ("gcc", None, True)])


# ------------------------------------------------------------------------------ pools
POOL_CASES = [  # kernel, stride, pads, ceil_mode, count_include_pad, mode
    ([3, 3], [2, 2], [1, 1, 1, 1], 0, 0, "requantize"),
    ([3, 3], [2, 2], [1, 1, 1, 1], 1, 1, "requantize"),
    ([2, 3], [1, 2], [0, 1, 0, 1], 1, 0, "divide"),
    ([3, 3], [1, 1], [1, 1, 1, 1], 0, 1, "divide"),
    ([2, 2], [2, 2], [0, 0, 0, 0], 0, 0, "divide"),
]


def test_qaverage_pools_bit_exact_and_real_valued():
    g, feeds = new_graph({"x": (1, 7, 8, 70)})
    x = g.inputs[0]
    xs, xzp = 0.04, -6
    ys, yzp = 0.03, 3
    for k, s, p, ceil, incl, mode in POOL_CASES:
        quant = average_pool_attrs(xs, ys, k[0] * k[1]) if mode == "requantize" else \
            {"mode": "divide", "x_scale": xs, "y_scale": xs}
        add(g, "QAveragePool", [x], kernel_shape=k, strides=s, pads=p, ceil_mode=ceil,
            count_include_pad=incl, layout="NHWC", x_zero_point=xzp,
            y_zero_point=yzp if mode == "requantize" else xzp, **quant)
    add(g, "QGlobalAveragePool", [x], layout="NHWC", x_zero_point=xzp, y_zero_point=yzp,
        **average_pool_attrs(xs, ys, 56))
    add(g, "QGlobalAveragePool", [x], layout="NHWC", x_zero_point=xzp, y_zero_point=xzp,
        mode="divide")
    gsingle = average_pool_attrs(xs, ys, 56)
    gsingle["multiplier"], gsingle["shift"] = gsingle["multiplier"][-1:], gsingle["shift"][-1:]
    add(g, "QGlobalAveragePool", [x], layout="NHWC", x_zero_point=xzp, y_zero_point=yzp,
        act_min=yzp, **gsingle)
    want = check_bit_exact(g, feeds, setups=[(None, "-O0", False), ("gcc", "-O3", False)])
    # Independent check against onnxruntime's float AveragePool on the dequantised data.
    from helpers import make_model, ort_run
    from onnx import helper

    xr = (np.moveaxis(feeds["x"], -1, 1).astype(np.float32) - xzp) * np.float32(xs)
    for (k, s, p, ceil, incl, mode), v in zip(POOL_CASES, g.outputs):
        node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=k, strides=s, pads=p,
                                ceil_mode=ceil, count_include_pad=incl)
        got = np.moveaxis(want[v.name], -1, 1).astype(np.int64)
        model = make_model([node], {"x": ("float32", xr.shape)}, {"y": ("float32", got.shape)})
        mean = ort_run(model, {"x": xr})["y"].astype(np.float64)
        if mode == "requantize":
            expect = np.clip(np.rint(mean / ys) + yzp, -128, 127)
            assert np.max(np.abs(got - expect)) <= 1
        else:  # TFLite: the mean of the raw values, rounded half away from zero
            raw = mean / xs + xzp  # exact multiples of 1/count up to float32 noise
            expect = np.clip(np.sign(raw) * np.floor(np.abs(raw) + 0.5 + 1e-4), -128, 127)
            assert np.array_equal(got, expect)
    gmean = ((feeds["x"].astype(np.float64) - xzp) * xs).mean(axis=(1, 2))
    g_out = [want[v.name].reshape(gmean.shape).astype(np.int64) for v in g.outputs[-3:]]
    assert np.max(np.abs(g_out[0] - np.clip(np.rint(gmean / ys) + yzp, -128, 127))) <= 1
    assert np.array_equal(g_out[2], np.maximum(g_out[0], yzp))
    sums = (feeds["x"].astype(np.int64)).sum(axis=(1, 2))
    assert np.array_equal(g_out[1], np.clip(rounding_divide(sums, 56), -128, 127))


def test_rounding_divide_hand_worked():
    assert rounding_divide(np.array([5, -5, 4, -4, 7, -7]), 2).tolist() == [3, -3, 2, -2, 4, -4]


@CLANG
def test_qpools_clang_sanitized():
    g, feeds = new_graph({"x": (1, 5, 5, 6)})
    add(g, "QAveragePool", [g.inputs[0]], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
        layout="NHWC", x_zero_point=2, **average_pool_attrs(0.1, 0.1, 9))
    add(g, "QGlobalAveragePool", [g.inputs[0]], layout="NHWC", x_zero_point=2, y_zero_point=2,
        mode="divide")
    check_bit_exact(g, feeds, setups=[("clang", None, True), ("gcc", None, True)])


# ------------------------------------------------------------------------------ unary maps
def test_qlookup_and_qrequantize():
    g, feeds = new_graph({"x": (3, 100)})
    feeds["x"][0, :] = np.arange(-128, 128)[:100]
    feeds["x"][1, :] = np.arange(-128, 128)[156:]
    x = g.inputs[0]
    xs, xzp, ys, yzp = 0.06, 5, 1 / 256, -128
    sig = lookup_table_for_op("Sigmoid", {}, xs, xzp, ys, yzp)
    add(g, "QLookup", [x], table=sig, function="Sigmoid")
    leaky = lookup_table_for_op("LeakyRelu", {"alpha": 0.2}, xs, xzp, 0.05, -20)
    add(g, "QLookup", [x], table=leaky, function="LeakyRelu")
    add(g, "QRequantize", [x], x_zero_point=xzp, y_zero_point=-9, **requant_attrs([xs / 0.02]))
    add(g, "QRequantize", [x], x_zero_point=xzp, y_zero_point=-9, **requant_attrs([1.0]))
    want = check_bit_exact(g, feeds, setups=[(None, "-O0", False), ("gcc", "-O3", False)])
    real = (feeds["x"].astype(np.float64) - xzp) * xs
    y_sig = want[g.outputs[0].name].astype(np.int64)
    expect = np.clip(np.rint(1 / (1 + np.exp(-real)) / ys) + yzp, -128, 127)
    assert np.max(np.abs(y_sig - expect)) <= 1  # float32 evaluation of f may differ by 1 LSB
    y_rq = want[g.outputs[2].name].astype(np.int64)
    assert np.max(np.abs(y_rq - np.clip(np.rint(real / 0.02) - 9, -128, 127))) <= 1
    y_same = want[g.outputs[3].name].astype(np.int64)
    assert np.array_equal(y_same, np.clip(feeds["x"].astype(np.int64) - xzp - 9, -128, 127))


def test_lookup_table_is_exact_by_construction():
    table = lookup_table(np.tanh, 0.02, 0, 1 / 128, 0)
    q = np.arange(-128, 128)
    want = qmath.quantize_float(np.tanh(np.float32(0.02) * q.astype(np.float32)), 1 / 128, 0)
    assert table == want.tolist()
    assert activation_range("relu", 0.1, -5) == (-5, 127)
    assert activation_range("clip", 0.1, -5, 0.0, 6.0) == (-5, 55)


@CLANG
def test_qunary_clang_sanitized_in_place():
    g, feeds = new_graph({"x": (4, 16)})
    x = g.inputs[0]
    n = g.add_node("QLookup", [x], attrs={"table": list(range(-128, 128))[::-1]})
    m = g.add_node("QRequantize", [n.output], attrs={"x_zero_point": 1, **requant_attrs([0.7])})
    g.outputs.append(m.output)
    check_bit_exact(g, feeds, setups=[("clang", None, True), ("gcc", "-O3", False)])


# ------------------------------------------------------------------------------ int8 data ops
def test_same_as_input_ops_run_on_int8():
    """Ops that keep the input's scale (QuantRule.SAME_AS_INPUT) compile for int8 data."""
    from helpers import make_model, ort_run, run_c
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    x = RNG.integers(-128, 128, (1, 4, 6, 6)).astype(np.int8)
    cases = [  # op, extra inputs (name -> data), attributes, output shape
        ("MaxPool", {}, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1] * 4},
         (1, 4, 3, 3)),
        ("GlobalMaxPool", {}, {}, (1, 4, 1, 1)),
        ("Concat", {}, {"axis": 1}, (1, 8, 6, 6)),
        ("Slice", {"st": [1], "en": [5], "ax": [2], "sp": [2]}, {}, (1, 4, 2, 6)),
        ("Pad", {"pads": [0, 0, 1, 1, 0, 0, 1, 1], "cv": np.int8(-5)}, {}, (1, 4, 8, 8)),
        ("Resize", {"": None, "sc": np.array([1, 1, 2, 2], np.float32)}, {"mode": "nearest"},
         (1, 4, 12, 12)),
        ("ReduceMax", {}, {"axes": [2, 3]}, (1, 4, 1, 1)),
        ("ReduceMin", {}, {"axes": [1]}, (1, 1, 6, 6)),
        ("Transpose", {}, {"perm": [0, 2, 3, 1]}, (1, 6, 6, 4)),
        ("Reshape", {"sh": [1, -1]}, {}, (1, 144)),
        ("DepthToSpace", {}, {"blocksize": 2}, (1, 1, 12, 12)),
        ("SpaceToDepth", {}, {"blocksize": 2}, (1, 16, 3, 3)),
        ("Gather", {"ind": [3, 0]}, {"axis": 1}, (1, 2, 6, 6)),
        ("Clip", {"lo": np.int8(-3), "hi": np.int8(50)}, {}, (1, 4, 6, 6)),
        ("Relu", {}, {}, (1, 4, 6, 6)),
    ]
    nodes, outputs, inits = [], {}, {}
    for i, (op, extra, attrs, shape) in enumerate(cases):
        names = ["x"] + (["x"] if op == "Concat" else [])
        for key, data in extra.items():
            names.append(f"{key}{i}" if key else "")
            if key:
                inits[f"{key}{i}"] = np.asarray(data)
        nodes.append(helper.make_node(op, names, [f"y_{op}"], **attrs))
        outputs[f"y_{op}"] = ("int8", shape)
    model = make_model(nodes, {"x": ("int8", x.shape)}, outputs, inits, opset=13)
    got = run_c(model, {"x": x})
    want = dict(zip(outputs, ReferenceEvaluator(model).run(None, {"x": x})))
    for name in outputs:
        assert got[name].dtype == np.int8 and np.array_equal(got[name], want[name]), name
    ort_ok = [n for n in nodes if n.op_type not in ("GlobalMaxPool", "Relu")]  # no int8 kernel
    ort_model = make_model(ort_ok, {"x": ("int8", x.shape)},
                           {n.output[0]: outputs[n.output[0]] for n in ort_ok}, inits, opset=13)
    for name, ref in ort_run(ort_model, {"x": x}).items():
        assert np.array_equal(got[name], ref), name
