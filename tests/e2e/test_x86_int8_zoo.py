"""x86_64-int8 (AVX2 int8 kernels) and x86_64-int8-vnni (AVX-512 VNNI, when this host has
it) on the model zoo: the generated C is bit-exact with edgec's int8 reference interpreter
(outputs after a float island, e.g. a final Softmax, within fp32 tolerance), and every QConv
runs an x86 kernel."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from edgec.workbench.machine import machine_info
from edgec.compiler import CompileOptions, compile_model
from edgec.frontend.onnx import load_onnx
from edgec.workbench.compare import compare_outputs, random_inputs
from edgec.workbench.verify import run_compiled

MODELS = ["resnet8", "dscnn", "digits_cnn", pytest.param("mobilenetv2", marks=pytest.mark.slow)]
TARGETS = ["x86_64-int8", pytest.param("x86_64-int8-vnni", marks=pytest.mark.skipif(
    "avx512_vnni" not in machine_info()["flags"], reason="this host has no AVX-512 VNNI"))]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("model", MODELS)
def test_zoo_int8_x86_is_bit_exact(zoo_dir, model, target):
    path = zoo_dir / f"{model}.onnx"
    g = load_onnx(path)
    calib = [random_inputs(g, seed) for seed in range(1, 5)]
    result = compile_model(path, CompileOptions(target=target, calib_samples=calib))
    text = result.files[f"{result.report['prefix']}.c"]
    bodies = [chunk.split("\n}\n", 1)[0] for chunk in text.split("/* QConv '")[1:]]
    assert bodies and all("edgec_q8_" in body for body in bodies)
    samples = [random_inputs(result.source_graph, 7)]
    with tempfile.TemporaryDirectory(prefix="edgec-x86-zoo-") as tmp:
        compiled = run_compiled(result, samples, Path(tmp))
    res = compare_outputs(result, path, samples, compiled)
    assert res.ok, [(o.name, o.mismatched) for o in res.outputs]
