"""QSoftmax (edgec/ops/quantized_softmax.py, softmax_fixed_point.py): TFLite's int8 SOFTMAX.

- the reference equals LiteRT's SOFTMAX (reference kernels) bit for bit on the inputs given
  to it, over input scales from 2^-25 to 300 (the multiplier capped at 2^31 - 1), betas and
  rows of 1 to 511 elements (ties, flat rows, extremes), and TFLite Micro's on a subset;
- `--int8-softmax` turns a last-axis Softmax of an int8 graph into QSoftmax (scale 1/256,
  zero point -128), and leaves it float without the option;
- the generated C equals the reference bit for bit (toolchain), and each QSoftmax of a
  tflite-int8 file equals LiteRT's SOFTMAX on LiteRT's own inputs.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from edgec.codegen.tflite.runner import tflm_available
from onnx import TensorProto, helper

from edgec.compiler import CompileOptions, compile_model
from edgec.interp import run_graph
from edgec.ops.softmax_fixed_point import MAX_ROW, int8_softmax, softmax_params
from edgec.workbench.compare import compare_outputs
from edgec.workbench.verify import run_compiled

SCALES = [2.0**-25, 1e-4, 0.003, 0.02, 0.0625, 0.1, 0.37, 1.0, 7.0, 300.0]
BETAS = [1.0, 0.5, 2.0, 0.3]
LENGTHS = [1, 2, 12, 100, 256, MAX_ROW]


def _rows(rng, n: int) -> np.ndarray:
    """8 rows of n int8 values: random, a flat row, a max tie, extremes, a narrow spread."""
    x = rng.integers(-128, 128, (8, n))
    x[1] = 7
    x[2, : max(1, n // 2)] = 127
    x[3] = np.where(np.arange(n) % 2, -128, 127)
    x[4] = rng.integers(-3, 3, n)
    return x.astype(np.int8)


def _tiny_softmax(shape, x_scale: float, x_zp: int, beta: float) -> bytes:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tflite"))
    from tflite_tiny import TinyModel, options

    m = TinyModel()
    x = m.tensor("x", list(shape), "int8", x_scale, x_zp)
    y = m.tensor("y", list(shape), "int8", 1 / 256, -128)
    m.op("SOFTMAX", [x], [y], options("SoftmaxOptions", beta=beta), version=2)
    return m.pack([x], [y])


def _litert(model: bytes, xq: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=model, num_threads=1,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], xq)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


@pytest.mark.parametrize("beta", BETAS)
def test_reference_equals_litert_softmax_bit_for_bit(beta):
    pytest.importorskip("ai_edge_litert.interpreter")
    rng = np.random.default_rng(int(beta * 10))
    compared = 0
    for x_scale in SCALES:
        params = softmax_params(beta, x_scale)
        if params is None:  # TFLite's Prepare refuses beta * scale * 2^26 <= 1 (it aborts)
            assert beta * x_scale * 2**26 <= 1
            continue
        for n in LENGTHS:
            xq = _rows(rng, n)
            want = _litert(_tiny_softmax(xq.shape, x_scale, -5, beta), xq)
            got = int8_softmax(xq, *params)
            assert np.array_equal(got, want), (x_scale, n, int(np.sum(got != want)))
            compared += got.size
    assert compared > 30_000


def test_reference_equals_tflite_micro():
    if not tflm_available():
        pytest.skip("needs tflite-micro")
    from tflite_micro.python.tflite_micro import runtime

    rng = np.random.default_rng(5)
    for x_scale, beta, n in [(0.1, 1.0, 12), (0.0625, 0.5, MAX_ROW), (300.0, 1.0, 10),
                             (0.003, 2.0, 100)]:
        xq = _rows(rng, n)
        interp = runtime.Interpreter.from_bytes(_tiny_softmax(xq.shape, x_scale, 3, beta),
                                                arena_size=1 << 16)
        interp.set_input(xq, 0)
        interp.invoke()
        want = np.array(interp.get_output(0))
        assert np.array_equal(int8_softmax(xq, *softmax_params(beta, x_scale)), want)


def test_prepare_parameters():
    """TFLite's Prepare: multiplier and shift of beta * scale * 2^26, capped at 2^31 - 1;
    diff_min = -floor(31 * 2^26 / 2^shift); None where TFLite refuses the scale."""
    assert softmax_params(1.0, 1 / 16) == (2**30, 23, -248)  # 2^22 = 2^30 * 2^(23 - 31)
    assert softmax_params(1.0, 300.0) == (2**31 - 1, 31, 0)  # capped: only the max survives
    assert softmax_params(1.0, 2.0**-26) is None
    assert softmax_params(1.0, 2.0**-25) == (2**30, 2, -(31 * 2**24))


def softmax_model(rows: dict[str, tuple[int, int]]) -> onnx.ModelProto:
    """One Softmax(axis=-1) per input name -> (rows, length)."""
    nodes = [helper.make_node("Softmax", [n], [n + "_p"], axis=-1) for n in rows]
    graph = helper.make_graph(
        nodes, "softmaxes",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in rows.items()],
        [helper.make_tensor_value_info(n + "_p", TensorProto.FLOAT, list(s))
         for n, s in rows.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


# input -> (shape, magnitude of its data): scales from ~1e-3 to ~40 (capped multiplier)
SOFTMAXES = {"a": ((4, 1), 1.0), "b": ((3, 7), 0.05), "c": ((2, 100), 3.0),
             "d": ((2, MAX_ROW), 0.5), "e": ((2, 10), 5000.0), "f": ((3, 1000), 1.0)}


def _samples(seed: int, count: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{n: (rng.standard_normal(s) * mag).astype(np.float32)
             for n, (s, mag) in SOFTMAXES.items()} for _ in range(count)]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("qsoftmax") / "softmaxes.onnx"
    onnx.save(softmax_model({n: s for n, (s, _) in SOFTMAXES.items()}), path)
    return path


def _compile(path: Path, target: str, int8_softmax: bool = True, **kw):
    return compile_model(path, CompileOptions(target=target, calib_samples=_samples(1, 4),
                                              int8_softmax=int8_softmax, **kw))


def test_option_turns_last_axis_softmax_into_qsoftmax(model_path):
    on = _compile(model_path, "generic-int8")
    qs = [n for n in on.graph.nodes if n.op == "QSoftmax"]
    assert len(qs) == 5  # "f" has rows of 1000 > 511: stays float
    assert [n.op for n in on.graph.nodes].count("Softmax") == 1
    for node in qs:
        q = node.outputs[0].quant
        assert float(q.scale[0]) == 1 / 256 and int(q.zero_point[0]) == -128
    layers = {r["op"] for r in on.report["quantization"]["layers"]}
    assert "QSoftmax" in layers
    off = _compile(model_path, "generic-int8", int8_softmax=False)
    assert [n.op for n in off.graph.nodes].count("Softmax") == 6
    assert "QSoftmax" not in [n.op for n in off.graph.nodes]


def test_generated_c_equals_reference_bit_for_bit(model_path):
    result = _compile(model_path, "generic-int8")
    samples = _samples(7, 3)
    samples[0]["d"][0] = 0.0  # a flat long row
    with tempfile.TemporaryDirectory(prefix="edgec-qsoftmax-") as tmp:
        compiled = run_compiled(result, samples, Path(tmp))
    res = compare_outputs(result, model_path, samples, compiled)
    assert res.ok, [(o.name, o.mismatched) for o in res.outputs]
    for sample, out in zip(samples, compiled):  # the integer outputs, exactly
        ref = run_graph(result.graph, sample)
        for n in "abcde":
            assert np.array_equal(out[n + "_p"], ref[n + "_p"])
            assert np.array_equal(out[n + "_p"] * 256, np.round(out[n + "_p"] * 256))


def test_tflite_softmax_layers_equal_reference_on_litert_inputs(model_path):
    pytest.importorskip("ai_edge_litert.interpreter")
    from edgec.codegen.tflite.backend import MODEL_FILE
    from edgec.codegen.tflite.flatbuf import builtin_name, read_model

    from edgec.workbench.tflite_layers import layer_differences

    result = _compile(model_path, "tflite-int8")
    model = read_model(result.files[MODEL_FILE])
    sub = model.subgraphs[0]
    kinds = [builtin_name(model.operatorCodes[op.opcodeIndex].builtinCode)
             for op in sub.operators]
    assert kinds.count("SOFTMAX") == 6
    checked = 0
    for seed in (3, 4):
        rows = [r for r in layer_differences(result, _samples(seed, 1)[0])
                if r["op"] == "QSoftmax"]
        assert len(rows) == 5 and all(r["differing"] == 0 for r in rows), rows
        checked += sum(r["size"] for r in rows)
    assert checked == 2 * (4 + 21 + 200 + 2 * MAX_ROW + 20)


def test_qdq_export_runs_in_onnxruntime_within_one_lsb(model_path):
    """export-qdq writes QSoftmax as DQ -> Softmax -> Q(1/256, -128); onnxruntime's float
    softmax lands within one LSB of the integer kernel."""
    from edgec.quant.qdq_export import qdq_model
    from edgec.workbench.compare import onnxruntime_outputs

    result = _compile(model_path, "generic-int8")
    model = qdq_model(result.graph)
    assert [n.op_type for n in model.graph.node].count("Softmax") == 6
    sample = _samples(9, 1)[0]
    ort = onnxruntime_outputs(model, sample)
    ref = run_graph(result.graph, sample)
    for n in "abcde":
        assert np.max(np.abs(ort[n + "_p"] - ref[n + "_p"])) <= 1 / 256 + 1e-7


def test_cli_flag(model_path, tmp_path):
    """`edgec compile --int8-softmax` reaches the quantize pass (int8 SOFTMAX outputs)."""
    pytest.importorskip("ai_edge_litert.schema_py_generated")
    from edgec.codegen.tflite.flatbuf import read_model

    from edgec import cli

    out = tmp_path / "out"
    assert cli.main(["compile", str(model_path), "-t", "tflite-int8", "--int8-softmax",
                     "--tflite-io", "int8", "-o", str(out)]) == 0
    sub = read_model((out / "model.tflite").read_bytes()).subgraphs[0]
    scales = [sub.tensors[i].quantization.scale[0] for i in sub.outputs[:5]]
    assert scales == [1 / 256] * 5  # "f" (rows of 1000) stays a float Softmax
    assert sub.tensors[sub.outputs[5]].quantization is None
