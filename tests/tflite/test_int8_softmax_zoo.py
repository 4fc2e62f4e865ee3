"""`--int8-softmax` on the zoo models that end in a Softmax (DS-CNN, ResNet-8): the .tflite
ends in an int8 SOFTMAX, and LiteRT (reference kernels), TensorFlow Lite Micro, edgec's int8
reference and edgec's C all give the same bits."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from edgec.codegen.tflite.runner import run_compiled, tflm_available

from edgec.compiler import CompileOptions, compile_model
from edgec.interp import run_graph
from edgec.workbench.compare import compare_outputs, random_inputs
from edgec.workbench.verify import run_compiled as run_c

pytest.importorskip("ai_edge_litert.interpreter")

SOFTMAX_ZOO = ["dscnn", "resnet8"]


def _compile(zoo_dir, name: str, target: str):
    return compile_model(zoo_dir / f"{name}.onnx",
                         CompileOptions(target=target, int8_softmax=True))


@pytest.mark.parametrize("name", SOFTMAX_ZOO)
def test_litert_and_tflm_equal_reference_with_int8_softmax(zoo_dir, name):
    from edgec.workbench.tflite_layers import layer_differences

    result = _compile(zoo_dir, name, "tflite-int8")
    assert [n.op for n in result.graph.nodes][-2:] == ["QSoftmax", "DequantizeLinear"]
    for seed in (0, 1):
        feeds = random_inputs(result.source_graph, seed=seed)
        want = run_graph(result.graph, feeds)
        got = run_compiled(result, [feeds])[0]
        for out_name, value in got.items():  # DEQUANTIZE of int8 probabilities: exact
            assert np.array_equal(value, np.asarray(want[out_name]).reshape(value.shape))
        if tflm_available():
            micro = run_compiled(result, [feeds], runtime="tflm")[0]
            assert all(np.array_equal(micro[k], got[k]) for k in got)
        rows = [r for r in layer_differences(result, feeds) if r["op"] == "QSoftmax"]
        assert len(rows) == 1 and rows[0]["differing"] == 0


def test_generated_c_equals_reference_with_int8_softmax(zoo_dir):
    name = "dscnn"
    result = _compile(zoo_dir, name, "generic-int8")
    assert "QSoftmax" in [n.op for n in result.graph.nodes]
    samples = [random_inputs(result.source_graph, seed=s) for s in (0, 1)]
    with tempfile.TemporaryDirectory(prefix="edgec-qsoftmax-zoo-") as tmp:
        compiled = run_c(result, samples, Path(tmp))
    res = compare_outputs(result, zoo_dir / f"{name}.onnx", samples, compiled)
    assert res.ok, [(o.name, o.mismatched) for o in res.outputs]
    for sample, out in zip(samples, compiled):
        ref = run_graph(result.graph, sample)
        assert all(np.array_equal(out[k], ref[k]) for k in ref)
