"""ONNX TopK (edgec/ops/topk.py): values and indices of the generated C against onnxruntime,
exactly, with many ties (equal values keep input order); K folded from shape arithmetic; K
computed from data refused with the input named (and no --input-shape advice)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import have, run_c
from onnx import TensorProto, helper, numpy_helper

from edgec.errors import ConstantInputRequired, ShapeError
from edgec.frontend.onnx import import_model
from edgec.interp import run_graph
from edgec.workbench.compare import onnxruntime_outputs

ARM64 = have("aarch64-linux-gnu-gcc") and have("qemu-aarch64")
ELEM = {np.float32: TensorProto.FLOAT, np.int32: TensorProto.INT32}


def _model(shape, k_nodes, k_name, axis, largest, out_shape, dtype=np.float32, inits=()):
    topk = helper.make_node("TopK", ["x", k_name], ["values", "indices"], axis=axis,
                            largest=largest, name="topk0")
    g = helper.make_graph(
        [*k_nodes, topk], "topk", [helper.make_tensor_value_info("x", ELEM[dtype], shape)],
        [helper.make_tensor_value_info("values", ELEM[dtype], out_shape),
         helper.make_tensor_value_info("indices", TensorProto.INT64, out_shape)],
        list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("dtype,axis,largest", [(np.float32, 1, 1), (np.float32, -1, 0),
                                                (np.int32, 1, 0)])
def test_topk_equals_onnxruntime_with_ties(dtype, axis, largest):
    """Values from -4..4 (ties everywhere): values and indices bit for bit equal to
    onnxruntime's on generic, x86_64 (float32) and arm64 (QEMU), and the reference's."""
    x = np.random.default_rng(5).integers(-4, 5, (2, 9, 5)).astype(dtype)
    k = 4
    out = list(x.shape)
    out[axis] = k
    model = _model(x.shape, [], "k", axis, largest, out, dtype,
                   [numpy_helper.from_array(np.array([k], np.int64), "k")])
    want = onnxruntime_outputs(model, {"x": x}, optimize=False)
    ref = run_graph(import_model(model), {"x": x})
    assert np.array_equal(ref["values"], want["values"])
    assert np.array_equal(ref["indices"], want["indices"])
    targets = ["generic-fp32"] + (["x86_64-fp32"] if dtype is np.float32 else []) + \
        (["arm64-fp32"] if ARM64 and axis == 1 else [])
    for target in targets:
        got = run_c(model, {"x": x}, target)
        assert got["values"].dtype == dtype and np.array_equal(got["values"], want["values"])
        assert np.array_equal(got["indices"], want["indices"]), target


def test_topk_with_k_computed_from_the_input_shape_folds():
    """K = Shape(x)[1] / 3 (a computed K, as exporters write it) folds at import."""
    x = np.random.default_rng(6).standard_normal((2, 12)).astype(np.float32)
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "one"], ["width"], axis=0),
             helper.make_node("Div", ["width", "three"], ["k"])]
    inits = [numpy_helper.from_array(np.array([1], np.int64), "one"),
             numpy_helper.from_array(np.array([3], np.int64), "three")]
    model = _model(x.shape, nodes, "k", 1, 1, (2, 4), inits=inits)
    want = onnxruntime_outputs(model, {"x": x}, optimize=False)
    got = run_c(model, {"x": x}, "generic-fp32")
    assert np.array_equal(got["values"], want["values"])
    assert np.array_equal(got["indices"], want["indices"])


def test_topk_with_k_from_data_is_refused_accurately():
    """K read from a data input cannot fold: the error says the output shape depends on it
    and names the input, and does not suggest --input-shape."""
    topk = helper.make_node("TopK", ["x", "kin"], ["values", "indices"], name="topk0")
    g = helper.make_graph([topk], "topk", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, 6)),
        helper.make_tensor_value_info("kin", TensorProto.INT64, (1,))],
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, (2, "k")),
         helper.make_tensor_value_info("indices", TensorProto.INT64, (2, "k"))])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ConstantInputRequired) as e:
        import_model(model)
    msg = str(e.value)
    assert "topk0" in msg and "shape of its outputs" in msg and "'kin'" in msg
    assert "--input-shape" not in msg


def test_topk_k_larger_than_the_axis_is_refused():
    model = _model((2, 3), [], "k", 1, 1, (2, 5),
                   inits=[numpy_helper.from_array(np.array([5], np.int64), "k")])
    with pytest.raises(ShapeError, match="K=5 is outside 1..3"):
        import_model(model)
