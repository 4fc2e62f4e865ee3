"""x86_64 int8 kernels (codegen/c/isa/x86_q8.py, templates ops/x86/q*, header edgec_x86_q8.h)
bit-exact against edgec's int8 reference interpreter on small random layers: pointwise (odd
K, channel tails), general and strided convolutions, channels-first stems, groups, depthwise
(tails, strides, 5x5, dilation), fully connected (GEMV and tiles), QAdd and QuantizeLinear;
gcc and clang, sanitizers on a subset. Every case runs on x86_64-int8 (AVX2, vpmaddwd) and,
when this host has AVX-512 VNNI, on x86_64-int8-vnni (vpdpbusd)."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import make_model
from onnx import helper

from edgec.workbench.machine import machine_info
from edgec.compiler import CompileOptions, compile_graph
from edgec.frontend.onnx import import_model
from edgec.interp import run_graph
from edgec.workbench.compare import random_inputs
from edgec.workbench.verify import run_compiled

HAS_VNNI = "avx512_vnni" in machine_info()["flags"]
TARGETS = ["x86_64-int8", pytest.param("x86_64-int8-vnni", marks=pytest.mark.skipif(
    not HAS_VNNI, reason="this host has no AVX-512 VNNI"))]


def _rand(shape, seed, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def check_bit_exact(model, target, sanitize=False, cc=None, expect_x86=True):
    """Compile for `target` (calibrated on seeded inputs), run the C on other inputs and
    compare every output with the int8 interpreter bit for bit; returns the C text."""
    g = import_model(model, None, name="test")
    calib = [random_inputs(g, seed) for seed in range(4)]
    result = compile_graph(g, CompileOptions(target=target, calib_samples=calib),
                           model_name="test")
    feeds = random_inputs(result.source_graph, 9)
    with tempfile.TemporaryDirectory(prefix="edgec-q8-") as tmp:
        got = run_compiled(result, [feeds], Path(tmp), sanitize=sanitize, cc=cc)[0]
    want = run_graph(result.graph, feeds)
    for name, ref in want.items():
        assert np.array_equal(np.asarray(got[name]), np.asarray(ref)), \
            f"{name}: {int(np.count_nonzero(np.asarray(got[name]) != ref))} values differ"
    text = result.files["test.c"]
    if expect_x86:
        assert "edgec_q8_" in text, "the x86 int8 kernels were not used"
    return text


def conv_model(x_shape, w_shape, seed=0, relu=True, **attrs):
    inits = {"w": _rand(w_shape, seed + 1, 0.3), "b": _rand((w_shape[0],), seed + 2)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c" if relu else "y"], **attrs)]
    if relu:
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    return make_model(nodes, {"x": ("float32", x_shape)}, {"y": ("float32", None)}, inits)


CONV_CASES = {
    "pointwise": ((1, 16, 10, 10), (40, 16, 1, 1), {}),
    "pointwise_odd_k_tail": ((2, 13, 5, 7), (21, 13, 1, 1), {}),
    "pointwise_8_out": ((1, 24, 3, 3), (8, 24, 1, 1), {}),
    "3x3": ((1, 8, 9, 7), (24, 8, 3, 3), {"pads": [1, 1, 1, 1]}),
    "3x3_stride2_stem": ((1, 3, 11, 9), (16, 3, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    "dilated_asym": ((1, 8, 10, 9), (16, 8, 3, 3), {"dilations": [2, 3], "pads": [2, 1, 0, 3]}),
    "tall_kernel_one_channel": ((1, 1, 21, 10), (32, 1, 7, 4), {"strides": [2, 2],
                                                                "pads": [3, 1, 3, 1]}),
    "groups": ((1, 16, 6, 6), (32, 8, 3, 3), {"pads": [1, 1, 1, 1], "group": 2}),
    "depthwise": ((1, 32, 9, 11), (32, 1, 3, 3), {"pads": [1, 1, 1, 1], "group": 32}),
    "depthwise_48": ((1, 48, 5, 6), (48, 1, 3, 3), {"pads": [1, 1, 1, 1], "group": 48}),
    "depthwise_40_stride2": ((1, 40, 7, 6), (40, 1, 3, 3), {"pads": [1, 1, 1, 1], "group": 40,
                                                            "strides": [2, 2]}),
    "depthwise_tail_stride2": ((1, 20, 6, 7), (20, 1, 3, 3), {"pads": [1, 0, 0, 1], "group": 20,
                                                              "strides": [2, 2]}),
    "depthwise_5x5_dilated": ((1, 16, 10, 8), (16, 1, 5, 5), {"pads": [4, 2, 4, 2], "group": 16,
                                                              "dilations": [2, 1]}),
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(CONV_CASES))
def test_qconv_kernels_bit_exact(name, target):
    x_shape, w_shape, attrs = CONV_CASES[name]
    check_bit_exact(conv_model(x_shape, w_shape, seed=len(name), **attrs), target)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("shape", [(1, 37, 70), (1, 64, 12), (1, 40, 200), (3, 20, 21),
                                   (7, 33, 40), (4, 19, 28)])
def test_qgemm_kernels_bit_exact(shape, target):
    m, k, n = shape
    inits = {"B": _rand((k, n), 1), "C": _rand((n,), 2)}
    model = make_model([helper.make_node("Gemm", ["A", "B", "C"], ["y"])],
                       {"A": ("float32", (m, k))}, {"y": ("float32", None)}, inits)
    check_bit_exact(model, target)


@pytest.mark.parametrize("shape", [(1, 8, 5, 3), (1, 3, 2, 1)])
def test_qadd_and_quantize_bit_exact(shape):
    """A residual block: QuantizeLinear (8-wide and scalar tail), QConv, QAdd."""
    c = shape[1]
    inits = {"w": _rand((c, c, 1, 1), 1, 0.3)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Add", ["c", "x"], ["y"])]
    text = check_bit_exact(make_model(nodes, {"x": ("float32", shape)},
                                      {"y": ("float32", None)}, inits), "x86_64-int8")
    assert "edgec_q8_mbqm(a, a_mult" in text or int(np.prod(shape)) < 8


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", ["3x3_stride2_stem", "depthwise_40_stride2",
                                  "pointwise_odd_k_tail"])
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_int8_kernels_under_sanitizers(name, cc, target):
    x_shape, w_shape, attrs = CONV_CASES[name]
    check_bit_exact(conv_model(x_shape, w_shape, seed=3, **attrs), target, sanitize=True, cc=cc)
