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


def test_explicit_zero_pad_folds_into_conv():
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], mode="constant"),
             helper.make_node("Conv", ["p", "w", "b"], ["y"])]
    model = make_model(nodes, {"x": ("float32", (1, 3, 6, 6))}, {"y": ("float32", (1, 4, 7, 5))},
                       {"pads": np.array([0, 0, 1, 0, 0, 0, 2, 1], np.int64),
                        "w": _w(4, 3, 3, 3), "b": _w(4)}, opset=13)
    g = run_passes(model, ["fold-pad"])
    assert ops_of(g) == ["Conv"] and g.nodes[0].attrs["pads"] == [1, 0, 2, 1]
    check_against_ort(model, {"x": RNG.standard_normal((1, 3, 6, 6)).astype(np.float32)})


def test_reflect_pad_or_channel_pad_is_not_folded():
    for mode, pads in (("reflect", [0, 0, 1, 1, 0, 0, 1, 1]), ("constant", [0, 1, 0, 0, 0, 0, 0, 0])):
        cin = 3 + (1 if pads[1] else 0)
        nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], mode=mode),
                 helper.make_node("Conv", ["p", "w"], ["y"])]
        out_hw = 6 if pads[2] else 4
        model = make_model(nodes, {"x": ("float32", (1, 3, 6, 6))},
                           {"y": ("float32", (1, 4, out_hw, out_hw))},
                           {"pads": np.array(pads, np.int64), "w": _w(4, cin, 3, 3)}, opset=13)
        g = run_passes(model, ["fold-pad"])
        assert ops_of(g) == ["Pad", "Conv"]


def test_stem_conv_reads_nchw_input_and_head_pool_fuses_into_gemm():
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1)]
    model = make_model(nodes, {"x": ("float32", (1, 3, 9, 9))}, {"y": ("float32", (1, 5))},
                       {"w": _w(8, 3, 3, 3), "b": _w(8), "fw": _w(5, 8), "fb": _w(5)})
    from helpers import compile_model_proto
    res = compile_model_proto(model)
    assert ops_of(res.graph) == ["Conv", "Gemm"]
    assert res.graph.nodes[0].attrs["input_layout"] == "NCHW"
    assert res.graph.nodes[1].attrs["input_pool"] == "mean"
    assert res.report["kernels"] == 2
    x = RNG.standard_normal((1, 3, 9, 9)).astype(np.float32)
    check_against_ort(model, {"x": x}, sanitize=True)
    check_against_ort(model, {"x": x}, target="x86_64-fp32")


def test_views_aliased_by_the_planner_emit_no_kernel():
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Reshape", ["r", "shape"], ["v"]),
             helper.make_node("Sigmoid", ["v"], ["y"])]
    model = make_model(nodes, {"x": ("float32", (2, 6))}, {"y": ("float32", (3, 4))},
                       {"shape": np.array([3, 4], np.int64)})
    from helpers import compile_model_proto
    res = compile_model_proto(model)
    assert res.report["kernels"] == 2
    run_body = res.files["test.c"].split("int test_run")[1].split("int test_infer")[0]
    assert "reshape" not in run_body and "memcpy" not in run_body
    check_against_ort(model, {"x": RNG.standard_normal((2, 6)).astype(np.float32)})
