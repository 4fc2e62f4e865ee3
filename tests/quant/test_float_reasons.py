"""`edgec report` and report.json name every node left float32 in an int8 build, and why:
asked by --keep-float, no int8 form, Softmax with --no-int8-softmax, a float island of
same-scale ops after such a node, dynamic quantisation."""

from __future__ import annotations

import json

import numpy as np
import onnx
from helpers import compile_model_proto
from onnx import TensorProto, helper, numpy_helper

from edgec.workbench.report import report_dict, report_text

RNG = np.random.default_rng(4)


def _model():
    """Conv -> Relu -> Conv -> Reshape -> Softmax -> Transpose -> LogSoftmax (no int8
    form)."""
    inits = [numpy_helper.from_array(RNG.standard_normal((8, 3, 3, 3)).astype(np.float32), "W"),
             numpy_helper.from_array(RNG.standard_normal((8, 8, 1, 1)).astype(np.float32), "W2"),
             numpy_helper.from_array(np.array([1, 8, 36], np.int64), "shape")]
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c"], ["r"], name="relu1"),
             helper.make_node("Conv", ["r", "W2"], ["c2"], name="conv2"),
             helper.make_node("Reshape", ["c2", "shape"], ["f"], name="flat"),
             helper.make_node("Softmax", ["f"], ["s"], axis=-1, name="softmax"),
             helper.make_node("Transpose", ["s"], ["t"], perm=[0, 2, 1], name="after_softmax"),
             helper.make_node("LogSoftmax", ["t"], ["y"], axis=1, name="logsoftmax")]
    g = helper.make_graph(nodes, "islands",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 6, 6))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 36, 8))],
                          inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _reasons(result) -> dict[str, str]:
    q = result.report["quantization"]
    rows = q["float_node_reasons"]
    assert [r["node"] for r in rows] == q["float_nodes"]  # every float node has its reason
    return {r["node"]: r["reason"] for r in rows}


def test_every_float_node_of_an_int8_build_has_its_reason():
    calib = [{"x": RNG.standard_normal((1, 3, 6, 6)).astype(np.float32)} for _ in range(4)]
    result = compile_model_proto(_model(), "generic-int8", calib_samples=calib,
                                 keep_float=("conv2",), int8_softmax=False)
    why = _reasons(result)
    assert why["conv2"] == "--keep-float names it"
    assert why["flat"] == "float island: reads the output of float node 'conv2' (Conv)"
    assert why["softmax"] == "Softmax stays float (--no-int8-softmax)"
    ops = {r["node"]: r["op"] for r in result.report["quantization"]["float_node_reasons"]}
    log = next(n for n, op in ops.items() if op == "LogSoftmax")
    assert why[log] == "LogSoftmax has no int8 form"
    # the layout pass moved the Transpose below the LogSoftmax: a float island after it
    assert f"float island: reads the output of float node '{log}' (LogSoftmax)" in \
        why.values()
    assert "conv1" not in why and "relu1" not in why  # int8 (QConv with the Relu clamp)
    assert len(why) == 6  # the above and conv2's layout Transpose, in its island
    text = report_text(result)
    assert "float nodes in this int8 build (6):" in text
    assert "Softmax stays float (--no-int8-softmax)" in text
    as_json = json.loads(json.dumps(report_dict(result)))
    assert as_json["quantization"]["float_node_reasons"][0]["reason"]

    # by default (--int8-softmax) the Softmax and the Transpose after it are int8: only the
    # op without an int8 form and its island stay float
    result = compile_model_proto(_model(), "generic-int8", calib_samples=calib)
    rows = result.report["quantization"]["float_node_reasons"]
    assert sorted(r["op"] for r in rows) == ["LogSoftmax", "Transpose"], rows


def test_dynamic_quantisation_says_why_the_rest_is_float():
    result = compile_model_proto(_model(), "generic-int8", quant="dynamic")
    why = _reasons(result)
    assert why and all("dynamic quantisation" in r for r in why.values()), why


def test_a_pre_quantised_model_lists_its_float_nodes(tmp_path):
    """A quantize_dynamic model is pre-quantised: no calibration, and its float nodes are
    listed as such (the fused DynamicQuantizeMatMul has float input and output)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic  # heavy: on use

    inits = [numpy_helper.from_array(RNG.standard_normal((16, 8)).astype(np.float32), "W"),
             numpy_helper.from_array(RNG.standard_normal(8).astype(np.float32), "bias")]
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]),
             helper.make_node("Add", ["m", "bias"], ["a"], name="bias_add"),
             helper.make_node("Relu", ["a"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "mlp",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, (3, 16))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, (3, 8))],
                          inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "f.onnx")
    quantize_dynamic(tmp_path / "f.onnx", tmp_path / "q.onnx", weight_type=QuantType.QInt8)
    result = compile_model_proto(onnx.load(tmp_path / "q.onnx"), "generic-int8")
    assert result.report["quantization"]["mode"] == "prequantized"
    rows = result.report["quantization"]["float_node_reasons"]
    by_op = {r["op"]: r["reason"] for r in rows}
    assert by_op["DynamicQuantizeMatMul"] == "DynamicQuantizeMatMul has no int8 form"
    assert by_op["Relu"] == "left float in the pre-quantised model (no int8 pattern around it)"
