"""int8 Sigmoid / Tanh as TFLite's LOGISTIC / TANH (edgec/ops/tflite_activations.py).

- `tflite_table` equals the table LiteRT builds at load time, entry for entry, over 600 input
  scales (1e-4 to 4) and random zero points, for both functions;
- `--tflite-activations`: fused and standalone Sigmoid / Tanh get TFLite's output parameters
  and table, the .tflite carries LOGISTIC / TANH (no CAST / GATHER), LiteRT's outputs equal
  edgec's reference bit for bit, and NNAPI 1.2 and the GPU delegate take every operator;
  without the option the tables stay edgec's (CAST + ADD + GATHER);
- the generated C equals the reference with the option (toolchain).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.compiler import CompileOptions, compile_model
from edgec.interp import run_graph
from edgec.ops.tflite_activations import tflite_table
from edgec.workbench.compare import random_inputs
from edgec.workbench.verify import run_compiled as run_c

TABLES = [("LOGISTIC", "Sigmoid", 1 / 256, -128), ("TANH", "Tanh", 1 / 128, 0)]


def _one_op(kind: str, x_scale: float, x_zp: int, y_scale: float, y_zp: int) -> bytes:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tflite"))
    from tflite_tiny import TinyModel

    m = TinyModel()
    x = m.tensor("x", [256], "int8", x_scale, x_zp)
    y = m.tensor("y", [256], "int8", y_scale, y_zp)
    m.op(kind, [x], [y], None, version=2)
    return m.pack([x], [y])


@pytest.mark.parametrize(("kind", "function", "y_scale", "y_zp"), TABLES)
def test_table_equals_litert_table_entry_for_entry(kind, function, y_scale, y_zp):
    pytest.importorskip("ai_edge_litert.interpreter")
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    rng = np.random.default_rng(3)
    codes = np.arange(-128, 128).astype(np.int8)
    scales = np.concatenate([np.geomspace(1e-4, 4.0, 450),
                             rng.uniform(0.001, 0.2, 150)]).astype(np.float32)
    for x_scale in scales:
        x_zp = int(rng.integers(-128, 128))
        it = Interpreter(model_content=_one_op(kind, float(x_scale), x_zp, y_scale, y_zp),
                         num_threads=1,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], codes)
        it.invoke()
        litert = it.get_tensor(it.get_output_details()[0]["index"])
        ours = np.asarray(tflite_table(function, float(x_scale), x_zp), np.int8)
        assert np.array_equal(ours, litert), (float(x_scale), x_zp)


def activation_model() -> onnx.ModelProto:
    """Conv -> Sigmoid (fused) -> Conv -> Add(., sigmoid) -> Tanh (standalone)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.standard_normal(s) * .3).astype(np.float32), n)
             for n, s in (("w1", (8, 3, 3, 3)), ("b1", (8,)), ("w2", (8, 8, 3, 3)),
                          ("b2", (8,)))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["c1"], ["s"]),
             helper.make_node("Conv", ["s", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c2", "s"], ["a"]),
             helper.make_node("Tanh", ["a"], ["y"])]
    graph = helper.make_graph(
        nodes, "acts", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("acts") / "acts.onnx"
    onnx.save(activation_model(), path)
    return path


def _compile(path: Path, target: str, on: bool = True, **kw):
    calib = [{"x": np.random.default_rng(s).standard_normal((1, 3, 8, 8)).astype(np.float32)}
             for s in range(4)]
    return compile_model(path, CompileOptions(target=target, calib_samples=calib,
                                              tflite_activations=on, **kw))


def test_tflite_file_has_logistic_and_tanh_and_equals_reference(model_path):
    pytest.importorskip("ai_edge_litert.interpreter")
    from edgec.codegen.tflite.compat import compat_sections, tflite_bytes
    from edgec.codegen.tflite.runner import run_compiled

    result = _compile(model_path, "tflite-int8")
    lookups = [n for n in result.graph.nodes if n.op == "QLookup"]
    assert sorted(n.attrs["function"] for n in lookups) == ["Tanh", "sigmoid"]
    for node in lookups:
        assert float(node.outputs[0].quant.scale[0]) in (1 / 256, 1 / 128)
    for seed in (0, 1):
        feeds = random_inputs(result.source_graph, seed=seed)
        got = run_compiled(result, [feeds])[0]["y"]
        assert np.array_equal(got, run_graph(result.graph, feeds)["y"].reshape(got.shape))
    io8 = _compile(model_path, "tflite-int8", tflite_io="int8")
    s = compat_sections(tflite_bytes(io8.files), analyzer=False)
    ops = [row["op"] for row in s["nnapi"]["ops"]]
    assert "LOGISTIC" in ops and "TANH" in ops and "GATHER" not in ops and "CAST" not in ops
    assert s["nnapi"]["accepted"]["29"] == s["gpu"]["accepted"] == len(ops)
    off = _compile(model_path, "tflite-int8", on=False)
    off_ops = [row["op"] for row in compat_sections(tflite_bytes(off.files),
                                                    analyzer=False)["nnapi"]["ops"]]
    assert off_ops.count("GATHER") == 2 and "LOGISTIC" not in off_ops


def test_generated_c_equals_reference(model_path):
    result = _compile(model_path, "generic-int8")
    samples = [random_inputs(result.source_graph, seed=s) for s in (2, 3)]
    with tempfile.TemporaryDirectory(prefix="edgec-acts-") as tmp:
        compiled = run_c(result, samples, Path(tmp))
    for sample, out in zip(samples, compiled):
        assert np.array_equal(out["y"], run_graph(result.graph, sample)["y"])
