"""If / Loop / Scan lowered before import (edgec/frontend/control_flow.py): the generated C
against onnxruntime for constant and shape-derived If conditions, a data-dependent If (both
branches and Where), an unrolled Loop with carried and scan outputs, a Scan in both
directions, and clear errors for loops edgec cannot unroll."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import check_against_ort, ort_run, run_c
from onnx import TensorProto, helper, numpy_helper

from edgec.errors import UnsupportedError
from edgec.frontend.control_flow import lower_control_flow
from edgec.frontend.onnx import import_model

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, inits=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "cf", inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _branches():
    """then: y = x * 2 + 1 (a constant of its own); else: y = Relu(x) - 3."""
    then_g = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["t0"]), helper.make_node("Add", ["t0", "one"],
                                                                         ["t_out"])],
        "then", [], [helper.make_tensor_value_info("t_out", F, [2, 3])],
        [numpy_helper.from_array(np.float32(2.0).reshape(()), "two")])
    else_g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["e0"]), helper.make_node("Sub", ["e0", "three"],
                                                                   ["e_out"])],
        "else", [], [helper.make_tensor_value_info("e_out", F, [2, 3])])
    return then_g, else_g


def _if_model(cond_nodes, cond_inputs=()):
    then_g, else_g = _branches()
    nodes = cond_nodes + [helper.make_node("If", ["cond"], ["y"], then_branch=then_g,
                                           else_branch=else_g)]
    inits = [numpy_helper.from_array(np.float32(1.0).reshape(()), "one"),
             numpy_helper.from_array(np.float32(3.0).reshape(()), "three")]
    return _model(nodes, [helper.make_tensor_value_info("x", F, [2, 3]), *cond_inputs],
                  [helper.make_tensor_value_info("y", F, [2, 3])], inits)


def _x():
    return {"x": np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)}


@pytest.mark.parametrize("value", [True, False])
def test_if_on_a_constant_is_the_taken_branch(value):
    model = _if_model([helper.make_node("Constant", [], ["cond"],
                                       value=numpy_helper.from_array(np.array(value)))])
    lowered = lower_control_flow(model)
    assert not any(n.op_type in ("If", "Where") for n in lowered.graph.node)
    check_against_ort(model, _x(), "generic-fp32")


def test_if_on_a_shape_comparison_folds():
    """The wake-word pattern: If(Equal(Gather(Shape(x), 1), 3)) on a fixed input shape."""
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "idx"], ["dim"], axis=0),
             helper.make_node("Equal", ["dim", "want"], ["cond"])]
    model = _if_model(nodes)
    model.graph.initializer.extend([numpy_helper.from_array(np.array(1, np.int64), "idx"),
                                    numpy_helper.from_array(np.array(3, np.int64), "want")])
    lowered = lower_control_flow(model)
    assert not any(n.op_type in ("If", "Where") for n in lowered.graph.node)
    check_against_ort(model, _x(), "generic-fp32")


@pytest.mark.parametrize("value", [True, False])
def test_if_on_input_data_runs_both_branches_and_selects(value):
    model = _if_model([], [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])])
    assert any(n.op_type == "Where" for n in lower_control_flow(model).graph.node)
    check_against_ort(model, {**_x(), "cond": np.array(value)}, "generic-fp32", sanitize=True)


def _loop_model(trip_count=4, cond_from_data=False):
    """Loop: acc = acc * 0.5 + x * i (i the iteration number); scan output acc each step."""
    body_nodes = [
        helper.make_node("Cast", ["i"], ["fi"], to=F),
        helper.make_node("Mul", ["x", "fi"], ["xi"]),
        helper.make_node("Mul", ["acc_in", "half"], ["acc_h"]),
        helper.make_node("Add", ["acc_h", "xi"], ["acc_out"]),
        helper.make_node("Identity", ["acc_out"], ["scan_out"]),
    ]
    if cond_from_data:
        body_nodes.append(helper.make_node("ReduceSum", ["acc_out"], ["s"], keepdims=0))
        body_nodes.append(helper.make_node("Less", ["s", "limit"], ["cond_out"]))
    else:
        body_nodes.append(helper.make_node("Identity", ["cond_in"], ["cond_out"]))
    body = helper.make_graph(
        body_nodes, "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", F, [2, 3])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", F, [2, 3]),
         helper.make_tensor_value_info("scan_out", F, [2, 3])],
        [numpy_helper.from_array(np.float32(0.5).reshape(()), "half"),
         numpy_helper.from_array(np.float32(100.0).reshape(()), "limit")])
    nodes = [helper.make_node("Loop", ["trips", "go", "acc0"], ["acc", "steps"], body=body)]
    inits = [numpy_helper.from_array(np.array(trip_count, np.int64), "trips"),
             numpy_helper.from_array(np.array(True), "go"),
             numpy_helper.from_array(np.zeros((2, 3), np.float32), "acc0")]
    return _model(nodes, [helper.make_tensor_value_info("x", F, [2, 3])],
                  [helper.make_tensor_value_info("acc", F, [2, 3]),
                   helper.make_tensor_value_info("steps", F, [trip_count, 2, 3])], inits)


def test_loop_with_constant_trip_count_is_unrolled():
    model = _loop_model(4)
    assert not any(n.op_type == "Loop" for n in lower_control_flow(model).graph.node)
    check_against_ort(model, _x(), "generic-fp32")


def test_loop_whose_condition_depends_on_data_is_refused_clearly():
    with pytest.raises(UnsupportedError, match="condition is computed in the body"):
        import_model(_loop_model(4, cond_from_data=True), {}, name="t")


@pytest.mark.parametrize("reverse", [0, 1])
def test_scan_is_unrolled(reverse):
    """Scan: running sum over the 5 rows of x (state [3]), rows in order or reversed, and the
    per-step sums stacked."""
    body = helper.make_graph(
        [helper.make_node("Add", ["sum_in", "row"], ["sum_out"]),
         helper.make_node("Identity", ["sum_out"], ["each"])],
        "body",
        [helper.make_tensor_value_info("sum_in", F, [3]),
         helper.make_tensor_value_info("row", F, [3])],
        [helper.make_tensor_value_info("sum_out", F, [3]),
         helper.make_tensor_value_info("each", F, [3])])
    node = helper.make_node("Scan", ["init", "x"], ["total", "sums"], body=body,
                            num_scan_inputs=1, scan_input_directions=[reverse])
    model = _model([node], [helper.make_tensor_value_info("x", F, [5, 3])],
                   [helper.make_tensor_value_info("total", F, [3]),
                    helper.make_tensor_value_info("sums", F, [5, 3])],
                   [numpy_helper.from_array(np.ones(3, np.float32), "init")])
    x = np.arange(15, dtype=np.float32).reshape(5, 3)
    got = run_c(model, {"x": x}, "generic-fp32")
    ref = ort_run(model, {"x": x})
    for name in ("total", "sums"):
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-6, err_msg=name)
