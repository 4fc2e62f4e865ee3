"""Conv and ConvTranspose: generated C against onnxruntime (onnx.reference where onnxruntime
refuses a case), every padding mode, strides, dilations, groups, depthwise, 1-D, no bias, and
ConvTranspose's output_shape / output_padding / fused epilogue."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import check_against_ort, compile_model_proto, make_model, ort_run, run_c
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from edgec.compiler import CompileOptions, compile_graph
from edgec.errors import UnsupportedError
from edgec.frontend.onnx import import_model
from edgec.interp import run_graph
from edgec.workbench.compare import compare
from edgec.workbench.verify import run_compiled


def _rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _conv_model(op, x_shape, w_shape, bias=True, seed=0, **attrs):
    """A single-node model with constant weights (and bias); returns (model, x)."""
    m = w_shape[0] if op == "Conv" else w_shape[1] * attrs.get("group", 1)
    inits = {"w": _rand(w_shape, seed + 1)}
    if bias:
        inits["b"] = _rand((m,), seed + 2)
    node = helper.make_node(op, ["x", *inits], ["y"], **attrs)
    model = make_model([node], {"x": ("float32", x_shape)}, {"y": ("float32", None)}, inits)
    return model, _rand(x_shape, seed)


def _with_and_without_bias(op, x_shape, w_shape, seed=0, **attrs):
    """One model with two nodes of the same geometry: `y` with a bias, `y_nobias` without."""
    model, x = _conv_model(op, x_shape, w_shape, seed=seed, **attrs)
    model.graph.node.append(helper.make_node(op, ["x", "w"], ["y_nobias"], **attrs))
    model.graph.output.append(helper.make_tensor_value_info("y_nobias", TensorProto.FLOAT, None))
    return model, x


CONV_CASES = {
    "plain": ((1, 3, 7, 6), (4, 3, 3, 3), {}),
    "same_upper_stride2": ((1, 3, 7, 6), (4, 3, 3, 3),
                           {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    "same_lower_even_kernel": ((1, 3, 7, 6), (4, 3, 4, 2),
                               {"auto_pad": "SAME_LOWER", "strides": [2, 1]}),
    "valid": ((1, 3, 7, 6), (4, 3, 3, 2), {"auto_pad": "VALID", "strides": [1, 2]}),
    "dilated_asymmetric_pads": ((1, 3, 9, 8), (4, 3, 3, 3), {"dilations": [2, 3],
                                                                 "pads": [2, 1, 0, 3]}),
    "strided_padded": ((2, 3, 9, 8), (5, 3, 3, 3), {"strides": [2, 3], "pads": [1, 1, 1, 1]}),
    "groups": ((1, 4, 6, 6), (6, 2, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),
    "depthwise": ((1, 4, 6, 6), (4, 1, 3, 3),
                  {"group": 4, "pads": [1, 1, 1, 1], "strides": [2, 2]}),
    "depthwise_multiplier": ((1, 4, 6, 6), (8, 1, 3, 3), {"group": 4, "pads": [0, 1, 1, 0]}),
    "pointwise": ((2, 8, 4, 4), (5, 8, 1, 1), {}),
    "1d": ((2, 3, 10), (5, 3, 3), {"strides": [2], "pads": [1, 2], "dilations": [2]}),
    "1d_depthwise_same": ((2, 3, 10), (6, 1, 3), {"group": 3, "auto_pad": "SAME_LOWER"}),
}


@pytest.mark.parametrize("name", list(CONV_CASES))
def test_conv_matches_onnxruntime(name):
    x_shape, w_shape, attrs = CONV_CASES[name]
    model, x = _with_and_without_bias("Conv", x_shape, w_shape, **attrs)
    check_against_ort(model, {"x": x})


@pytest.mark.parametrize("mode", ["SAME_UPPER", "SAME_LOWER"])
def test_conv_same_padding_with_dilations_matches_onnx_reference(mode):
    """onnxruntime refuses auto_pad SAME with dilations; onnx.reference follows the spec."""
    model, x = _conv_model("Conv", (1, 2, 7, 6), (3, 2, 3, 2), auto_pad=mode, dilations=[2, 3],
                           strides=[2, 1])
    ref = ReferenceEvaluator(model).run(None, {"x": x})[0]
    c = compare("y", run_c(model, {"x": x})["y"], ref)
    assert c.ok, c


@pytest.mark.parametrize("name", ["dilated_asymmetric_pads", "depthwise_multiplier", "1d"])
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_conv_under_sanitizers(name, cc):
    x_shape, w_shape, attrs = CONV_CASES[name]
    model, x = _conv_model("Conv", x_shape, w_shape, seed=3, **attrs)
    check_against_ort(model, {"x": x}, sanitize=True, cc=cc)


# ------------------------------------------------------------------------------ ConvTranspose
CT_CASES = {
    "stride2": ((1, 4, 5, 4), (4, 3, 3, 3), {"strides": [2, 2]}),
    "pads_output_padding": ((1, 4, 5, 4), (4, 3, 3, 2),
                            {"strides": [2, 3], "pads": [1, 0, 0, 1], "output_padding": [1, 2]}),
    "groups": ((1, 4, 5, 4), (4, 2, 3, 2), {"group": 2, "strides": [2, 1], "pads": [1, 0, 1, 0]}),
    "depthwise": ((1, 4, 3, 3), (4, 1, 3, 3),
                  {"group": 4, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "depthwise_multiplier": ((1, 3, 4, 3), (3, 2, 2, 2), {"group": 3, "strides": [2, 2]}),
    "dilated": ((1, 2, 4, 5), (2, 3, 3, 2), {"dilations": [2, 3], "strides": [1, 2]}),
    "same_upper": ((1, 2, 4, 5), (2, 3, 3, 4), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    "same_lower": ((1, 2, 4, 5), (2, 3, 3, 4), {"strides": [2, 3], "auto_pad": "SAME_LOWER"}),
    "valid": ((1, 2, 4, 5), (2, 3, 3, 3), {"strides": [2, 2], "auto_pad": "VALID"}),
    "output_shape_smaller": ((1, 2, 4, 4), (2, 3, 3, 3), {"strides": [2, 2],
                                                             "output_shape": [7, 8]}),
    "output_shape_larger": ((1, 2, 4, 4), (2, 3, 3, 3), {"strides": [2, 2],
                                                            "output_shape": [10, 9]}),
    "output_shape_with_padding": ((1, 2, 4, 4), (2, 3, 3, 3),
                                  {"strides": [2, 2], "output_shape": [8, 7],
                                       "output_padding": [1, 1]}),
    "batch2_stride1": ((2, 3, 4, 4), (3, 5, 3, 3), {"pads": [1, 1, 1, 1]}),
    "1d": ((2, 3, 6), (3, 2, 4), {"strides": [2], "pads": [1, 2]}),
    "1d_same_upper": ((2, 3, 6), (3, 2, 4), {"strides": [2], "auto_pad": "SAME_UPPER"}),
    "1d_output_shape": ((2, 3, 6), (3, 2, 3), {"strides": [3], "dilations": [2],
                                                   "output_shape": [17]}),
}


@pytest.mark.parametrize("name", list(CT_CASES))
def test_conv_transpose_matches_onnxruntime(name):
    x_shape, w_shape, attrs = CT_CASES[name]
    model, x = _with_and_without_bias("ConvTranspose", x_shape, w_shape, seed=5, **attrs)
    check_against_ort(model, {"x": x})


@pytest.mark.parametrize("name", ["pads_output_padding", "depthwise_multiplier", "1d"])
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_conv_transpose_under_sanitizers(name, cc):
    x_shape, w_shape, attrs = CT_CASES[name]
    model, x = _conv_model("ConvTranspose", x_shape, w_shape, seed=7, **attrs)
    check_against_ort(model, {"x": x}, sanitize=True, cc=cc)


def test_conv_transpose_canonical_form():
    """output_shape and auto_pad become explicit pads and output_padding at import."""
    model, _ = _conv_model("ConvTranspose", (1, 2, 4, 4), (2, 3, 3, 3), strides=[2, 2],
                           output_shape=[10, 7])
    a = import_model(model).nodes[0].attrs
    assert a["auto_pad"] == "NOTSET" and "output_shape" not in a
    assert a["pads"] == [0, 1, 0, 1] and a["output_padding"] == [1, 0]


def test_conv_transpose_relu_is_fused_by_the_pipeline():
    x_shape, w_shape, attrs = CT_CASES["groups"]
    model, x = _conv_model("ConvTranspose", x_shape, w_shape, seed=9, **attrs)
    model.graph.node[0].output[0] = "ct"
    model.graph.node.append(helper.make_node("Relu", ["ct"], ["y"]))
    check_against_ort(model, {"x": x})
    ops = [(n.op, n.attrs.get("activation")) for n in compile_model_proto(model).graph.nodes]
    assert ("ConvTranspose", "relu") in ops and ("Relu", None) not in ops, ops


def test_conv_transpose_epilogue_kernel_with_residual_and_prelu():
    """The epilogue facet, set by hand in the IR: ConvTranspose(x, w, b, residual) with a
    per-channel PReLU, against onnxruntime running ConvTranspose -> Add -> PRelu."""
    x_shape, w_shape, attrs = CT_CASES["pads_output_padding"]
    model, x = _conv_model("ConvTranspose", x_shape, w_shape, seed=11, **attrs)
    y_shape = ort_run(model, {"x": x})["y"].shape
    slope = _rand((y_shape[1], 1, 1), 12)
    graph = model.graph
    graph.node[0].output[0] = "ct"
    graph.node.extend([helper.make_node("Add", ["ct", "r"], ["s"]),
                       helper.make_node("PRelu", ["s", "slope"], ["y"])])
    graph.initializer.append(numpy_helper.from_array(slope, "slope"))
    graph.input.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, y_shape))
    feeds = {"x": x, "r": _rand(y_shape, 13)}

    g = import_model(model)
    ct, add, prelu = g.nodes
    ct.inputs = [*ct.inputs, add.input(1)]
    ct.attrs.update(activation="prelu", act_slope=[float(v) for v in slope.reshape(-1)])
    g.replace_output_keep_name(prelu.output, ct.output)
    g.remove_dead()
    assert [n.op for n in g.nodes] == ["ConvTranspose"]
    result = compile_graph(g, CompileOptions(), model_name="test")
    with tempfile.TemporaryDirectory() as tmp:
        got = run_compiled(result, [feeds], Path(tmp), sanitize=True)[0]["y"]
    c = compare("y", got, ort_run(model, feeds)["y"])
    assert c.ok, c


@pytest.mark.parametrize("op,w_shape,attrs,message", [
    ("Conv", (3, 2, 2, 3, 2), {"strides": [2, 1, 1], "pads": [1, 0, 1, 0, 1, 0]},
     "3-D convolution"),
    ("ConvTranspose", (2, 2, 2, 3, 2), {"strides": [2, 1, 2], "pads": [1, 0, 0, 0, 1, 1],
                                            "output_padding": [1, 0, 0]},
     "3-D transposed convolution"),
])
def test_3d_convolutions_have_a_reference_but_no_c_kernel(op, w_shape, attrs, message):
    model, x = _conv_model(op, (1, 2, 3, 4, 3), w_shape, **attrs)
    got = run_graph(import_model(model), {"x": x})["y"]
    assert compare("y", got, ort_run(model, {"x": x})["y"]).ok
    with pytest.raises(UnsupportedError, match=message):
        compile_model_proto(model)
