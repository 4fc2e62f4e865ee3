"""fuse-dynamic-quant-matmul: a MatMul quantised by onnxruntime's `quantize_dynamic`
(DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul by xs * b_scale) becomes one
DynamicQuantizeMatMul. Before/After on the graph, the same numbers as the unfused chain in
the reference interpreter, and the generated C against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import compile_model_proto, run_c
from onnx import TensorProto, helper, numpy_helper

from edgec.errors import ConstantInputRequired
from edgec.frontend.onnx import import_model
from edgec.interp import run_graph
from edgec.passes import get_pass
from edgec.workbench.compare import onnxruntime_outputs

RNG = np.random.default_rng(23)


def _dynamic_quantised(tmp_path, per_channel: bool) -> onnx.ModelProto:
    """x [2, 5, 16] -> MatMul W [16, 8] + bias -> Relu -> MatMul W2 [8, 4], through
    quantize_dynamic (both MatMuls read their own DynamicQuantizeLinear)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic  # heavy: on use

    inits = [numpy_helper.from_array(RNG.standard_normal((16, 8)).astype(np.float32), "W"),
             numpy_helper.from_array(RNG.standard_normal(8).astype(np.float32), "bias"),
             numpy_helper.from_array(RNG.standard_normal((8, 4)).astype(np.float32), "W2")]
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]),
             helper.make_node("Add", ["m", "bias"], ["a"]),
             helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("MatMul", ["r", "W2"], ["y"])]
    g = helper.make_graph(nodes, "mlp",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, 5, 16))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, (2, 5, 4))],
                          inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "f.onnx")
    quantize_dynamic(tmp_path / "f.onnx", tmp_path / "q.onnx", weight_type=QuantType.QInt8,
                     per_channel=per_channel)
    return onnx.load(tmp_path / "q.onnx")


@pytest.mark.parametrize("per_channel", [False, True])
def test_dynamic_quantised_matmuls_fuse_and_match(tmp_path, per_channel):
    model = _dynamic_quantised(tmp_path, per_channel)
    x = (RNG.standard_normal((2, 5, 16)) * 1.5).astype(np.float32)
    g = import_model(model)
    before = sorted(n.op for n in g.nodes)
    assert before.count("MatMulInteger") == 2 and before.count("DynamicQuantizeLinear") == 2
    unfused = run_graph(g, {"x": x})["y"]
    assert get_pass("fuse-dynamic-quant-matmul")(g)
    after = sorted(n.op for n in g.nodes)
    assert after == ["Add", "DynamicQuantizeMatMul", "DynamicQuantizeMatMul", "Relu"], after
    fused = run_graph(g, {"x": x})["y"]
    assert np.array_equal(fused, unfused)  # the same float32 operations

    ort = onnxruntime_outputs(model, {"x": x}, optimize=False)["y"]
    got = run_c(model, {"x": x}, "generic-fp32")["y"]
    assert np.array_equal(got, fused)
    # onnxruntime's u8 x s8 GEMM may saturate int16 pair sums on AVX2-only hosts
    # (tests/ops/test_contrib_quant.py): a loose bound, far below the int8 quantisation step
    np.testing.assert_allclose(got, ort, rtol=0, atol=2e-3 * np.abs(ort).max())


def test_unfused_run_time_zero_point_is_refused_in_one_line():
    """A MatMulInteger reading DynamicQuantizeLinear's zero point with no Cast/Mul after it
    cannot fuse: compiling names the node and the run-time zero point."""
    b = numpy_helper.from_array(RNG.integers(-127, 128, (6, 3)).astype(np.int8), "B")
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             helper.make_node("MatMulInteger", ["xq", "B", "xz"], ["y"], name="mmi")]
    g = helper.make_graph(nodes, "t",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, 6))],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, (2, 3))], [b])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ConstantInputRequired, match="mmi.*a_zero_point.*run time"):
        compile_model_proto(model, "generic-fp32")
