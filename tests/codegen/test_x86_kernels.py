"""x86_64 AVX2+FMA float32 kernels (codegen/c/isa/x86_f32.py, templates ops/x86/*, header
edgec_x86_f32.h) against onnxruntime on awkward shapes: channel counts that are not multiples
of 8 or 16, 1x1 maps, odd sizes, strides, dilations, groups, depthwise, channels-first input,
fused residual and every activation; Gemm (GEMV, tiles, pooled head) and MatMul (constant
and computed B). gcc and clang; sanitizers on a subset. No timing here."""

import numpy as np
import pytest
from helpers import check_against_ort, compile_model_proto, make_model
from onnx import helper

TARGET = "x86_64-fp32"


def _rand(shape, seed, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _activation(act: str, src: str, dst: str, channels: int, inits: dict) -> list:
    """ONNX nodes applying `act` to src (channels: for PRelu's slope)."""
    if act == "relu":
        return [helper.make_node("Relu", [src], [dst])]
    if act == "relu6":
        inits["lo"], inits["hi"] = np.float32(0.0), np.float32(6.0)
        return [helper.make_node("Clip", [src, "lo", "hi"], [dst])]
    if act == "leaky":
        return [helper.make_node("LeakyRelu", [src], [dst], alpha=0.13)]
    if act == "prelu":
        inits["slope"] = _rand((channels, 1, 1), 99, 0.3)
        return [helper.make_node("PRelu", [src, "slope"], [dst])]
    if act == "hardswish":
        return [helper.make_node("HardSwish", [src], [dst])]
    if act == "hardsigmoid":
        return [helper.make_node("HardSigmoid", [src], [dst], alpha=0.3, beta=0.4)]
    if act in ("sigmoid", "tanh"):
        return [helper.make_node(act.capitalize(), [src], [dst])]
    if act == "silu":
        return [helper.make_node("Sigmoid", [src], ["sig"]),
                helper.make_node("Mul", [src, "sig"], [dst])]
    assert act == "none"
    return [helper.make_node("Identity", [src], [dst])]


def conv_model(x_shape, w_shape, seed=0, act="none", residual=False, nchw_input=False,
               bias=True, **attrs):
    """Conv on channels-last data, optional residual Add and activation. A pointwise Conv
    comes first so that the tested layer reads channels-last data (a Conv reading the
    model's channels-first input takes it as is: nchw_input tests that form)."""
    m = w_shape[0]
    inits = {"w": _rand(w_shape, seed + 1, 0.5)}
    nodes = []
    src = "x"
    if not nchw_input:
        c = x_shape[1]
        inits["w_pre"] = _rand((c, c) + (1,) * (len(x_shape) - 2), seed + 5, 0.5)
        nodes.append(helper.make_node("Conv", ["x", "w_pre"], ["xr"]))
        src = "xr"
    ins = [src, "w"]
    if bias:
        inits["b"] = _rand((m,), seed + 2)
        ins.append("b")
    nodes.append(helper.make_node("Conv", ins, ["c"], **attrs))
    feeds = {"x": _rand(x_shape, seed)}
    inputs = {"x": ("float32", x_shape)}
    pre = "c"
    if residual:
        from helpers import ort_run

        probe = make_model(nodes, inputs, {"c": ("float32", None)}, inits)
        r_shape = ort_run(probe, feeds)["c"].shape
        inputs["r"] = ("float32", r_shape)
        feeds["r"] = _rand(r_shape, seed + 3)
        nodes.append(helper.make_node("Add", ["c", "r"], ["s"]))
        pre = "s"
    nodes += _activation(act, pre, "y", m, inits)
    return make_model(nodes, inputs, {"y": ("float32", None)}, inits), feeds


CONV_CASES = {
    # name: (x shape, w shape, attrs, extra)
    "pointwise_odd_channels": ((1, 13, 5, 7), (21, 13, 1, 1), {}, {}),
    "pointwise_1x1_map": ((2, 24, 1, 1), (40, 24, 1, 1), {}, {}),
    "pointwise_stride2": ((1, 16, 9, 8), (24, 16, 1, 1), {"strides": [2, 2]}, {}),
    "pointwise_9_to_8_channels": ((1, 9, 4, 5), (8, 9, 1, 1), {}, {"bias": False}),
    "3x3_pad": ((1, 16, 9, 7), (24, 16, 3, 3), {"pads": [1, 1, 1, 1]}, {}),
    "3x3_stride2_odd": ((1, 12, 11, 9), (20, 12, 3, 3), {"pads": [1, 1, 1, 1],
                                                         "strides": [2, 2]}, {}),
    "3x3_dilated_asym_pads": ((1, 16, 10, 9), (16, 16, 3, 3), {"dilations": [2, 3],
                                                               "pads": [2, 1, 0, 3]}, {}),
    "winograd_odd_batch2": ((2, 20, 9, 7), (20, 20, 3, 3), {"pads": [0, 1, 1, 0]}, {}),
    "winograd_valid_tails": ((1, 17, 8, 10), (33, 17, 3, 3), {}, {}),
    "5x3_valid": ((1, 5, 9, 8), (40, 5, 5, 3), {}, {}),
    "few_channels_packed": ((1, 1, 21, 10), (36, 1, 7, 4), {"strides": [2, 2],
                                                            "pads": [3, 1, 3, 1]}, {}),
    "groups": ((1, 16, 6, 7), (32, 8, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}, {}),
    "groups_small_fallback": ((1, 8, 5, 5), (8, 2, 3, 3), {"group": 4}, {}),
    "depthwise_tail": ((1, 20, 9, 11), (20, 1, 3, 3), {"group": 20, "pads": [1, 1, 1, 1]}, {}),
    "depthwise_stride2": ((1, 36, 12, 13), (36, 1, 3, 3), {"group": 36, "pads": [0, 1, 1, 0],
                                                           "strides": [2, 2]}, {}),
    "depthwise_5x5_dilated": ((1, 16, 11, 10), (16, 1, 5, 5), {"group": 16, "dilations": [2, 1],
                                                               "pads": [4, 2, 4, 2]}, {}),
    "depthwise_tiny_map": ((1, 8, 2, 3), (8, 1, 3, 3), {"group": 8, "pads": [1, 1, 1, 1]}, {}),
    "stem_nchw_input": ((1, 3, 17, 15), (16, 3, 3, 3), {"strides": [2, 2],
                                                        "pads": [1, 1, 1, 1]},
                        {"nchw_input": True}),
    "stem_one_channel": ((1, 1, 13, 10), (24, 1, 4, 3), {"strides": [2, 1]},
                         {"nchw_input": True}),
    "1d": ((2, 6, 17), (10, 6, 3), {"pads": [1, 1], "strides": [2]}, {}),
}


@pytest.mark.parametrize("name", list(CONV_CASES))
def test_conv_kernels_match_onnxruntime(name):
    x_shape, w_shape, attrs, extra = CONV_CASES[name]
    model, feeds = conv_model(x_shape, w_shape, seed=len(name), **attrs, **extra)
    check_against_ort(model, feeds, target=TARGET)


ACTS = ["relu", "relu6", "leaky", "prelu", "hardswish", "hardsigmoid", "sigmoid", "tanh",
        "silu"]


@pytest.mark.parametrize("act", ACTS)
def test_fused_residual_and_activation(act):
    """Pointwise, 3x3 and depthwise layers with a residual and each activation, one model."""
    inits = {"w_pre": _rand((20, 20, 1, 1), 5, 0.5)}
    nodes = [helper.make_node("Conv", ["x", "w_pre"], ["xr"])]
    x_shape, outs = (1, 20, 7, 6), {}
    feeds = {"x": _rand(x_shape, 1), "r": _rand((1, 20, 7, 6), 2)}
    for i, (w_shape, attrs) in enumerate([((20, 20, 1, 1), {}),
                                          ((20, 20, 3, 3), {"pads": [1, 1, 1, 1]}),
                                          ((20, 1, 3, 3), {"pads": [1, 1, 1, 1],
                                                           "group": 20})]):
        inits[f"w{i}"] = _rand(w_shape, 10 + i, 0.4)
        inits[f"b{i}"] = _rand((20,), 20 + i)
        nodes.append(helper.make_node("Conv", ["xr", f"w{i}", f"b{i}"], [f"c{i}"], **attrs))
        nodes.append(helper.make_node("Add", [f"c{i}", "r"], [f"s{i}"]))
        act_nodes = _activation(act, f"s{i}", f"y{i}", 20, inits)
        for n in act_nodes:  # unique intermediate names per branch (silu's Sigmoid)
            n.output[:] = [o if o.startswith("y") else f"{o}{i}" for o in n.output]
            n.input[:] = [f"{v}{i}" if v == "sig" else v for v in n.input]
        nodes += act_nodes
        outs[f"y{i}"] = ("float32", None)
    model = make_model(nodes, {"x": ("float32", x_shape), "r": ("float32", (1, 20, 7, 6))},
                       outs, inits)
    result = compile_model_proto(model, TARGET)
    convs = [n for n in result.graph.nodes if n.op == "Conv" and len(n.inputs) == 4]
    assert len(convs) == 3, "residual and activation should be fused into the three Convs"
    assert "edgec_f32_tile_store" in result.files["test.c"]
    check_against_ort(model, feeds, target=TARGET)


GEMM_CASES = {
    # name: (M, K, N, transB, C shape or None, activation)
    "gemv_tail_relu": (1, 37, 70, 0, (70,), "relu"),
    "gemv_transB_8_columns": (2, 64, 8, 1, (1, 8), "none"),
    "gemv_no_bias_wide": (1, 19, 200, 0, None, "tanh"),
    "tiles_bias_rows": (7, 20, 21, 0, (7, 21), "none"),
    "tiles_transB_prelu": (13, 33, 40, 1, (40,), "prelu"),
}


@pytest.mark.parametrize("name", list(GEMM_CASES))
def test_gemm_kernels_match_onnxruntime(name):
    m, k, n, tb, c_shape, act = GEMM_CASES[name]
    inits = {"B": _rand((n, k) if tb else (k, n), 1)}
    ins = ["A", "B"]
    if c_shape:
        inits["C"] = _rand(c_shape, 2)
        ins.append("C")
    nodes = [helper.make_node("Gemm", ins, ["g"], transB=tb, alpha=0.7, beta=1.3)]
    nodes += _activation(act, "g", "y", n, inits)
    if act == "prelu":
        inits["slope"] = _rand((n,), 3, 0.3)
    model = make_model(nodes, {"A": ("float32", (m, k))}, {"y": ("float32", None)}, inits)
    check_against_ort(model, {"A": _rand((m, k), 4)}, target=TARGET)


def test_pooled_head_matches_onnxruntime():
    """GlobalAveragePool -> Flatten -> Gemm fuses into one Gemm reading the feature map."""
    inits = {"w": _rand((12, 5, 1, 1), 1), "B": _rand((12, 10), 2), "C": _rand((10,), 3)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("GlobalAveragePool", ["c"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "B", "C"], ["y"])]
    model = make_model(nodes, {"x": ("float32", (1, 5, 7, 3))}, {"y": ("float32", None)}, inits)
    result = compile_model_proto(model, TARGET)
    assert [n.attrs.get("input_pool") for n in result.graph.nodes if n.op == "Gemm"] == ["mean"]
    check_against_ort(model, {"x": _rand((1, 5, 7, 3), 4)}, target=TARGET)


MATMUL_CASES = {
    "const_b_relu": ((3, 5, 20), (20, 37), True, "relu"),
    "runtime_b_broadcast": ((2, 1, 7, 9), (3, 9, 24), False, "none"),
    "runtime_b_tail_sigmoid": ((2, 6, 10), (2, 10, 17), False, "sigmoid"),
    "vector_a": ((9,), (9, 5), True, "none"),
    "vector_b": ((4, 13), (13,), False, "none"),
}


@pytest.mark.parametrize("name", list(MATMUL_CASES))
def test_matmul_kernels_match_onnxruntime(name):
    a_shape, b_shape, b_const, act = MATMUL_CASES[name]
    inits, ins = {}, {"A": ("float32", a_shape)}
    feeds = {"A": _rand(a_shape, 1)}
    b = _rand(b_shape, 2)
    if b_const:
        inits["B"] = b
    else:
        ins["B"] = ("float32", b_shape)
        feeds["B"] = b
    nodes = [helper.make_node("MatMul", ["A", "B"], ["g"])] + _activation(act, "g", "y", 0, {})
    model = make_model(nodes, ins, {"y": ("float32", None)}, inits)
    check_against_ort(model, feeds, target=TARGET)


SANITIZED = ["3x3_dilated_asym_pads", "depthwise_tail", "stem_nchw_input", "few_channels_packed",
             "winograd_odd_batch2"]


@pytest.mark.parametrize("name", SANITIZED)
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_conv_kernels_under_sanitizers(name, cc):
    x_shape, w_shape, attrs, extra = CONV_CASES[name]
    model, feeds = conv_model(x_shape, w_shape, seed=7, act="hardswish", **attrs, **extra)
    check_against_ort(model, feeds, target=TARGET, sanitize=True, cc=cc)


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_gemm_and_matmul_under_sanitizers(cc):
    inits = {"B": _rand((21, 70), 1), "C": _rand((70,), 2), "B2": _rand((70, 19), 3)}
    nodes = [helper.make_node("Gemm", ["A", "B", "C"], ["g"]),
             helper.make_node("Relu", ["g"], ["h"]),
             helper.make_node("MatMul", ["h", "B2"], ["y"])]
    model = make_model(nodes, {"A": ("float32", (3, 21))}, {"y": ("float32", None)}, inits)
    check_against_ort(model, {"A": _rand((3, 21), 4)}, target=TARGET, sanitize=True, cc=cc)


def test_kernel_choice():
    """Which layers take which x86 kernel, and the portable fallback for tiny groups."""
    picks = {}
    for name in ("pointwise_odd_channels", "3x3_pad", "3x3_stride2_odd", "depthwise_tail",
                 "stem_nchw_input", "winograd_valid_tails",
                 "few_channels_packed", "groups_small_fallback"):
        x_shape, w_shape, attrs, extra = CONV_CASES[name]
        model, _ = conv_model(x_shape, w_shape, **attrs, **extra)
        text = compile_model_proto(model, TARGET).files["test.c"]
        text = text.split("/* Conv '")[-1].split("\n}\n", 1)[0]  # the tested (last) layer
        picks[name] = ("winograd" if "vbuf[" in text else
                       "dw" if "__m256 wv[" in text else
                       "packed" if "apack[" in text else
                       "gemm" if "edgec_f32_tile_fma" in text else "portable")
    assert picks == {"pointwise_odd_channels": "gemm", "3x3_pad": "winograd",
                     "depthwise_tail": "dw", "stem_nchw_input": "gemm",
                     "few_channels_packed": "packed", "groups_small_fallback": "portable",
                     "3x3_stride2_odd": "gemm", "winograd_valid_tails": "winograd"}
