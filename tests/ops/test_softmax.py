"""Softmax, LogSoftmax, Hardmax: generated C against onnxruntime for both opset semantics
(coerce-to-2-D before 13, one axis from 13), numerical stability, layout facet."""

import numpy as np
import pytest
from helpers import check_against_ort, compile_model_proto, make_model
from onnx import helper

from edgec.errors import ShapeError, UnsupportedError
from edgec.frontend.onnx import import_model
from edgec.ops import get_op

SHAPE = (2, 3, 4, 5)
AXES = [None, 0, 1, 2, -1, -3]


def softmax_model(op: str, opset: int, shape=SHAPE, axes=AXES):
    """One model with one output per axis variant of `op`."""
    nodes, outs = [], {}
    for i, axis in enumerate(axes):
        attrs = {} if axis is None else {"axis": axis}
        nodes.append(helper.make_node(op, ["x"], [f"y{i}"], **attrs))
        outs[f"y{i}"] = ("float32", shape)
    return make_model(nodes, {"x": ("float32", shape)}, outs, opset=opset)


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_axis_variants_match_onnxruntime(op, opset):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(SHAPE) * 4).astype(np.float32)
    if op == "Hardmax":
        x = np.round(x)  # ties: the first maximum wins
    check_against_ort(softmax_model(op, opset), {"x": x})


def test_large_inputs_are_stable_sanitized_and_clang():
    x = np.array([[1000.0, 1001.0, 1002.0, -1000.0], [-3e4, 3e4, 0.0, 1.0],
                  [88.0, 89.0, 90.0, 91.0]], np.float32)
    for op in ("Softmax", "LogSoftmax"):
        model = softmax_model(op, 13, x.shape, [-1, 0])
        check_against_ort(model, {"x": x}, sanitize=True)
        check_against_ort(model, {"x": x}, cc="clang")


def test_canonical_axes():
    g11 = import_model(softmax_model("Softmax", 11, axes=[None, -2]))
    g13 = import_model(softmax_model("LogSoftmax", 13, axes=[None, 1]))
    assert [n.attrs["axes"] for n in g11.nodes] == [[1, 2, 3], [2, 3]]
    assert [n.attrs["axes"] for n in g13.nodes] == [[3], [1]]
    with pytest.raises(ShapeError, match="axis 4 is out of range for rank 4 in Softmax"):
        import_model(softmax_model("Softmax", 13, axes=[4]))
    int_model = make_model([helper.make_node("Softmax", ["x"], ["y"])],
                           {"x": ("int32", (2, 3))}, {"y": ("int32", (2, 3))}, opset=13)
    with pytest.raises(UnsupportedError, match="Softmax node .*element type int32"):
        import_model(int_model)


def test_sink_transpose_remaps_axes():
    class N:
        def __init__(self, attrs):
            self.attrs = attrs

    perm = [0, 3, 1, 2]
    assert get_op("Softmax").sink_transpose(N({"axes": [1]}), perm) == {"axes": [3]}
    assert get_op("LogSoftmax").sink_transpose(N({"axes": [1, 2, 3]}), perm) == {
        "axes": [1, 2, 3]}
    assert get_op("Hardmax").sink_transpose(N({"axes": [1, 2]}), perm) is None


@pytest.mark.parametrize("op,opset", [("Softmax", 13), ("LogSoftmax", 11)])
def test_channel_softmax_between_convs_stays_channels_last(op, opset):
    """Conv -> Softmax over channels -> Conv: the softmax runs on the NHWC tensor (axis 3, a
    contiguous row) and no Transpose is left between the convolutions."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 3, 5, 6)).astype(np.float32)
    w1 = (rng.standard_normal((4, 3, 3, 3)) * 0.5).astype(np.float32)
    w2 = (rng.standard_normal((2, 4, 1, 1)) * 0.5).astype(np.float32)
    model = make_model(
        [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
         helper.make_node(op, ["a"], ["s"], axis=1),
         helper.make_node("Conv", ["s", "w2"], ["y"])],
        {"x": ("float32", x.shape)}, {"y": ("float32", (1, 2, 5, 6))}, {"w1": w1, "w2": w2},
        opset=opset)
    g = compile_model_proto(model).graph
    ops = [n.op for n in g.nodes]
    assert ops == ["Conv", op, "Conv", "Transpose"], ops  # the first conv reads NCHW input
    assert g.nodes[1].attrs["axes"] == ([3] if opset >= 13 else [1, 2, 3])
    check_against_ort(model, {"x": x})
