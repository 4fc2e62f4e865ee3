"""Gather and GatherElements with runtime indices outside the axis: edgec defines them (a
negative index counts from the end, then the index is clamped into the axis; the C must not
read outside the data, onnxruntime stops with an error). The reference interpreter follows
the same rule, so int8 calibration on such indices (seeded random integers 0..9 when no data
is given) works instead of stopping with an internal error, and the C agrees with numpy's
clamped take."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from edgec.compiler import CompileOptions, compile_graph
from edgec.frontend.onnx import import_model
from edgec.interp import run_graph
from edgec.workbench.verify import run_compiled


def _gather_model(op: str, idx_shape: list[int]):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8])
    idx = helper.make_tensor_value_info("idx", TensorProto.INT64, idx_shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node(op, ["r", "idx"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "g", [x, idx], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_gather_reference_clamps_like_the_c():
    g = import_model(_gather_model("Gather", [3]), name="g")
    x = np.arange(32, dtype=np.float32).reshape(1, 4, 8)
    idx = np.array([9, -1, -7], np.int64)  # past the end, from the end, before the start
    (y,) = run_graph(g, {"x": x, "idx": idx}).values()
    want = x[:, [3, 3, 0], :]  # 9 -> 3 (clamped), -1 -> 3, -7 -> -3 -> 0 (clamped)
    np.testing.assert_array_equal(y, want)


def test_gather_elements_reference_clamps_like_the_c():
    g = import_model(_gather_model("GatherElements", [1, 2, 8]), name="g")
    x = np.arange(32, dtype=np.float32).reshape(1, 4, 8)
    idx = np.full((1, 2, 8), 5, np.int64)
    idx[0, 1] = -9
    (y,) = run_graph(g, {"x": x, "idx": idx}).values()
    np.testing.assert_array_equal(y[0, 0], x[0, 3])  # 5 -> 3
    np.testing.assert_array_equal(y[0, 1], x[0, 0])  # -9 -> -5 -> 0


def test_generated_c_clamps_like_the_reference(tmp_path):
    g = import_model(_gather_model("Gather", [3]), name="g")
    res = compile_graph(g, CompileOptions(target="generic-fp32"), model_name="g")
    x = np.arange(32, dtype=np.float32).reshape(1, 4, 8)
    feeds = {"x": x, "idx": np.array([9, -1, -7], np.int64)}
    (got,) = run_compiled(res, [feeds], tmp_path)[0].values()
    np.testing.assert_array_equal(got, x[:, [3, 3, 0], :])


def test_int8_compile_with_runtime_gather_indices_calibrates():
    g = import_model(_gather_model("Gather", [2]), name="g")
    res = compile_graph(g, CompileOptions(target="generic-int8"), model_name="g")
    assert "g.c" in res.files and res.report["quantization"]["calibration"]["samples"] > 0
