"""coreml-int8 --activations int8 (W8A8, iOS17): edgec's calibrated activation scales as
quantize/dequantize pairs; the evaluated package is judged against onnxruntime with a floor
from edgec's own fake-quantised run, and misuse is one line."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from test_coreml_neuralnetwork import small_net

from edgec.cli import main
from edgec.codegen.coreml.options import CoreMLOptions
from edgec.codegen.coreml.program import build_program
from edgec.compiler import CompileOptions, compile_model
from edgec.quant.calibrate import snr_db
from edgec.workbench.compare import onnxruntime_outputs, random_inputs
from edgec.workbench.coreml_verify import run_package, verify_coreml

W8A8 = CompileOptions(target="coreml-int8", coreml=CoreMLOptions(activations="int8"))


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    path = tmp_path_factory.mktemp("w8a8") / "small.onnx"
    onnx.save(small_net(), str(path))
    return path


def test_program_carries_edgecs_activation_scales(net, tmp_path):
    result = compile_model(net, W8A8)
    params = result.coreml.activation_params
    assert result.report["deployment_target"] == "iOS17"
    assert result.report["activations"]["values"] == len(params) >= 8
    assert "random" in result.report["activations"]["warnings"][0]  # no --calib given
    spec = result.coreml.mlmodel.get_spec()
    assert spec.specificationVersion == 8  # iOS17
    # as lowered: one quantize per calibrated activation, with edgec's fp32 scale and zero point
    import coremltools as ct

    prog, *_ = build_program(result.graph, True, ct.target.iOS17, params)
    ops = [op for op in prog.functions["main"].operations if op.op_type == "quantize"]
    assert sorted((float(op.inputs["scale"].val), int(op.inputs["zero_point"].val))
                  for op in ops) == sorted((np.float32(s), z) for s, z in params.values())
    # after coremltools' passes (int8 add fusion, uint8 for zero point -128 ...) pairs remain
    after = [op.op_type for op in result.coreml.mlmodel._mil_program.functions["main"]
             .operations]
    assert after.count("quantize") >= len(params) - 2 and "dequantize" in after
    # int8 activations cost accuracy against onnxruntime, and not more than int8 should
    samples = [random_inputs(result.source_graph, s) for s in range(4)]
    got = np.concatenate([o["y"].ravel() for o in run_package(result, samples, tmp_path)])
    ref = np.concatenate([onnxruntime_outputs(net, s)["y"].ravel() for s in samples])
    assert 20.0 <= snr_db(ref, got) <= 60.0


def test_verify_passes(net):
    res = verify_coreml(net, W8A8)
    floor = res.report["snr_floor_db"]["y"]
    assert res.ok and res.outputs[0].snr_db >= floor > 20.0


@pytest.mark.parametrize("extra, words", [
    (["-t", "coreml-fp16"], "needs target coreml-int8"),
    (["-t", "coreml-int8", "--coreml-target", "iOS16"], "iOS17"),
    (["-t", "coreml-int8", "--coreml-format", "neuralnetwork"], "ML Programs"),
])
def test_misuse_is_one_line(net, tmp_path, capsys, extra, words):
    code = main(["compile", str(net), "--activations", "int8", "-o", str(tmp_path / "o"),
                 *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and words in err, err
