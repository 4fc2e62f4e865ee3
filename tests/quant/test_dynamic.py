"""--quant dynamic: Gemm/MatMul with int8 weights and activations quantised at run time; the C
kernel is bit-identical to the op's reference, and close to onnxruntime fp32."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import compile_model_proto, make_model, ort_run
from onnx import helper

from edgec.interp import run_graph
from edgec.ops.dynamic_quant import dynamic_qparams
from edgec.quant.calibrate import snr_db
from edgec.workbench.verify import run_compiled

RNG = np.random.default_rng(3)


def mlp():
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["h"]),
             helper.make_node("Add", ["h", "b1"], ["h2"]),
             helper.make_node("Relu", ["h2"], ["h3"]),
             helper.make_node("Gemm", ["h3", "W2", "b2"], ["g"], transB=1),
             helper.make_node("MatMul", ["g", "W3"], ["y"])]
    inits = {"W1": RNG.standard_normal((48, 32)).astype(np.float32),
             "b1": RNG.standard_normal(32).astype(np.float32),
             "W2": RNG.standard_normal((16, 32)).astype(np.float32),
             "b2": RNG.standard_normal(16).astype(np.float32),
             "W3": RNG.standard_normal((16, 6)).astype(np.float32)}
    return make_model(nodes, {"x": (np.float32, [8, 48])}, {"y": (np.float32, [8, 6])},
                      inits)


def test_dynamic_qparams_cover_zero_and_the_range():
    s, z = dynamic_qparams(np.array([0.5, 2.0], np.float32))
    assert np.isclose(s, 2.0 / 255) and z == -128
    s, z = dynamic_qparams(np.array([-1.0, 1.0], np.float32))
    assert -1 <= z <= 0
    assert dynamic_qparams(np.zeros(3, np.float32)) == (np.float32(1), -128)


@pytest.mark.parametrize("sanitize,cc", [(False, None), (True, None), (False, "clang")])
def test_dynamic_mlp(sanitize, cc, tmp_path):
    model = mlp()
    result = compile_model_proto(model, "generic-int8", quant="dynamic")
    assert result.report["ops"].get("DynamicQuantGemm") == 3
    assert result.warnings == [] and result.report["quantization"]["mode"] == "dynamic"
    feeds = [{"x": RNG.standard_normal((8, 48)).astype(np.float32) * k} for k in (1, 5)]
    outs = run_compiled(result, feeds, tmp_path, sanitize=sanitize, cc=cc)
    for f, o in zip(feeds, outs):
        assert np.array_equal(o["y"], run_graph(result.graph, f)["y"])
        assert snr_db(ort_run(model, f)["y"], o["y"]) > 25
