"""Fusion passes: Before/After structure and numbers against onnxruntime."""

import numpy as np
import pytest
from helpers import check_against_ort, make_model
from onnx import helper

from edgec.frontend.onnx import import_model
from edgec.passes import PassManager

RNG = np.random.default_rng(7)


def _w(*shape, scale=0.3):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def run_passes(model, names):
    g = import_model(model)
    PassManager(list(names), verify_each=True).run(g)
    return g


def ops_of(g):
    return [n.op for n in g.nodes]


def conv_act_model(act_nodes, out="y"):
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1])] + act_nodes
    return make_model(nodes, {"x": ("float32", (1, 4, 6, 6))}, {out: ("float32", (1, 8, 6, 6))},
                      {"w": _w(8, 4, 3, 3), "b": _w(8), "slope": _w(8, 1, 1),
                       "lo": np.array(0, np.float32), "hi": np.array(6, np.float32)})


@pytest.mark.parametrize("act_nodes,expected", [
    ([helper.make_node("Relu", ["c"], ["y"])], "relu"),
    ([helper.make_node("Clip", ["c", "lo", "hi"], ["y"])], "clip"),
    ([helper.make_node("LeakyRelu", ["c"], ["y"], alpha=0.2)], "leaky_relu"),
    ([helper.make_node("PRelu", ["c", "slope"], ["y"])], "prelu"),
    ([helper.make_node("HardSwish", ["c"], ["y"])], "hardswish"),
    ([helper.make_node("HardSigmoid", ["c"], ["y"], alpha=0.25, beta=0.4)], "hardsigmoid"),
    ([helper.make_node("Sigmoid", ["c"], ["y"])], "sigmoid"),
    ([helper.make_node("Tanh", ["c"], ["y"])], "tanh"),
    ([helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node("Mul", ["c", "s"], ["y"])],
     "silu"),
])
def test_activation_fuses_into_conv(act_nodes, expected):
    model = conv_act_model(act_nodes)
    g = run_passes(model, ["canonicalize", "fuse-activation"])
    assert ops_of(g) == ["Conv"]
    assert g.nodes[0].attrs["activation"] == expected
    x = RNG.standard_normal((1, 4, 6, 6)).astype(np.float32)
    check_against_ort(model, {"x": x})
    check_against_ort(model, {"x": x}, target="x86_64-fp32")


def test_activation_not_fused_when_output_has_two_users():
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Add", ["c", "r"], ["y"])]
    model = make_model(nodes, {"x": ("float32", (1, 4, 6, 6))}, {"y": ("float32", (1, 8, 6, 6))},
                       {"w": _w(8, 4, 3, 3), "b": _w(8)})
    g = run_passes(model, ["fuse-activation"])
    assert ops_of(g) == ["Conv", "Relu", "Add"]


def test_residual_then_relu_is_one_kernel():
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "x"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    model = make_model(nodes, {"x": ("float32", (1, 8, 5, 5))}, {"y": ("float32", (1, 8, 5, 5))},
                       {"w": _w(8, 8, 3, 3), "b": _w(8)})
    g = run_passes(model, ["fuse-residual", "fuse-activation"])
    assert ops_of(g) == ["Conv"]
    conv = g.nodes[0]
    assert conv.input(3) is g.inputs[0] and conv.attrs["activation"] == "relu"
    x = RNG.standard_normal((1, 8, 5, 5)).astype(np.float32)
    check_against_ort(model, {"x": x}, sanitize=True)


def test_gemm_residual_and_matmul_bias():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["g"]),
             helper.make_node("Add", ["g", "x"], ["y"])]
    model = make_model(nodes, {"x": ("float32", (3, 16))}, {"y": ("float32", (3, 16))},
                       {"w": _w(16, 16), "b": _w(16)})
    g = run_passes(model, ["matmul-to-gemm", "fuse-residual"])
    assert ops_of(g) == ["Gemm"]
    check_against_ort(model, {"x": RNG.standard_normal((3, 16)).astype(np.float32)})


def test_matmul_bias_on_3d_input_becomes_gemm_between_views():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["b", "m"], ["y"])]
    model = make_model(nodes, {"x": ("float32", (2, 5, 8))}, {"y": ("float32", (2, 5, 4))},
                       {"w": _w(8, 4), "b": _w(4)})
    g = run_passes(model, ["matmul-to-gemm", "canonicalize"])
    assert ops_of(g) == ["Reshape", "Gemm", "Reshape"]
    check_against_ort(model, {"x": RNG.standard_normal((2, 5, 8)).astype(np.float32)})


def test_per_channel_mul_add_fold_into_conv():
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"]),
             helper.make_node("Mul", ["c", "s"], ["m"]), helper.make_node("Add", ["t", "m"], ["y"])]
    model = make_model(nodes, {"x": ("float32", (1, 3, 5, 5))}, {"y": ("float32", (1, 6, 5, 5))},
                       {"w": _w(6, 3, 1, 1), "b": _w(6), "s": _w(1, 6, 1, 1), "t": _w(6, 1, 1)})
    g = run_passes(model, ["fold-scale-shift"])
    assert ops_of(g) == ["Conv"]
    check_against_ort(model, {"x": RNG.standard_normal((1, 3, 5, 5)).astype(np.float32)})


def test_scale_varying_over_space_is_not_folded():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Mul", ["c", "s"], ["y"])]
    model = make_model(nodes, {"x": ("float32", (1, 3, 4, 4))}, {"y": ("float32", (1, 6, 4, 4))},
                       {"w": _w(6, 3, 1, 1), "s": _w(1, 1, 4, 4)})
    g = run_passes(model, ["fold-scale-shift"])
    assert ops_of(g) == ["Conv", "Mul"]
