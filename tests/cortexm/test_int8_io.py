"""`--io int8` (passes/int8_io.py): int8 model inputs and outputs on the int8 C targets.

The edge QuantizeLinear / DequantizeLinear steps disappear from the generated C, the header
and report.json publish each int8 input's and output's scale and zero point, and verify
feeds quantised inputs and compares the int8 outputs bit for bit with the int8 reference
interpreter. Independently of edgec's interpreter: the int8 build's outputs, dequantised
with the published parameters, equal the float-I/O build's outputs exactly (its final
DequantizeLinear is that arithmetic), and the published input parameters are the ones the
float build's QuantizeLinear applies.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from edgec.passes.int8_io import dequantize_output

from edgec.compiler import CompileOptions, compile_model
from edgec.frontend.onnx import load_onnx
from edgec.quant import random_calibration_inputs
from edgec.workbench.compare import random_inputs
from edgec.workbench.verify import run_compiled, verify_result


def compiled(zoo_dir, model: str, target: str, io: str, **options):
    path = zoo_dir / f"{model}.onnx"
    calib = random_calibration_inputs(load_onnx(path), 4, seed=1)
    return path, compile_model(path, CompileOptions(target=target, calib_samples=calib, io=io,
                                                    **options))


@pytest.mark.parametrize("target", ["cortex-m4-int8", "cortex-m55-int8", "generic-int8"])
def test_int8_io_verifies_bit_exact_and_publishes_scales(zoo_dir, tmp_path, target):
    path, res = compiled(zoo_dir, "digits_cnn", target, "int8")
    io = res.report["int8_io"]
    assert set(io["inputs"]) == {"x"} and set(io["outputs"]) == {"logits"}
    assert [t["dtype"] for t in res.report["inputs"] + res.report["outputs"]] == ["int8", "int8"]
    assert "QuantizeLinear" not in res.report["ops"] and "DequantizeLinear" not in res.report["ops"]
    header = res.files["digits_cnn.h"]
    for side, name in (("INPUT", "x"), ("OUTPUT", "logits")):
        p = io[f"{side.lower()}s"][name]
        scale = re.search(rf"#define DIGITS_CNN_{side}_0_SCALE (\S+)f\n", header).group(1)
        assert np.float32(float(scale)) == np.float32(p["scale"])
        assert f"#define DIGITS_CNN_{side}_0_ZERO_POINT {p['zero_point']}\n" in header
    feeds = random_inputs(res.source_graph, 3)
    result = verify_result(res, path, feeds)
    assert result.ok and result.exact
    assert all(o.mismatched == 0 for o in result.outputs)
    assert result.outputs[0].snr_db > 25  # dequantised against onnxruntime fp32


def test_int8_io_outputs_dequantise_to_the_float_io_build(zoo_dir, tmp_path):
    """Two Cortex-M builds of one calibration: float I/O and int8 I/O, same samples."""
    _, plain = compiled(zoo_dir, "digits_cnn", "cortex-m4-int8", "float")
    _, int8 = compiled(zoo_dir, "digits_cnn", "cortex-m4-int8", "int8")
    feeds = [random_inputs(plain.source_graph, seed) for seed in (4, 5)]
    want = run_compiled(plain, feeds, tmp_path / "float")
    got = run_compiled(int8, feeds, tmp_path / "int8")
    p = int8.report["int8_io"]["outputs"]["logits"]
    for w, g in zip(want, got):
        assert g["logits"].dtype == np.int8
        np.testing.assert_array_equal(dequantize_output(g["logits"], **p), w["logits"])
    q = plain.graph.nodes[0]  # the float build's input QuantizeLinear
    assert q.op == "QuantizeLinear"
    assert np.float32(q.input(1).data) == np.float32(int8.report["int8_io"]["inputs"]["x"]["scale"])
    assert int(q.input(2).data) == int8.report["int8_io"]["inputs"]["x"]["zero_point"]


def test_int8_io_keeps_a_final_float_softmax(zoo_dir):
    """DS-CNN ends in a Softmax: int8 by default (TFLite's int8 SOFTMAX), so both its input
    and output turn int8; with --no-int8-softmax the Softmax is float and the output stays
    float."""
    _, res = compiled(zoo_dir, "dscnn", "cortex-m4-int8", "int8")
    assert set(res.report["int8_io"]["inputs"]) == {"input"}
    assert set(res.report["int8_io"]["outputs"]) == {res.report["outputs"][0]["name"]}
    assert res.report["outputs"][0]["dtype"] == "int8"
    assert "QuantizeLinear" not in res.report["ops"] and "DequantizeLinear" not in res.report["ops"]
    _, res = compiled(zoo_dir, "dscnn", "cortex-m4-int8", "int8", int8_softmax=False)
    assert set(res.report["int8_io"]["inputs"]) == {"input"} and not res.report["int8_io"]["outputs"]
    assert res.report["outputs"][0]["dtype"] == "float32"
    assert "QuantizeLinear" not in res.report["ops"] and "DequantizeLinear" in res.report["ops"]


def test_float_io_output_is_unchanged(zoo_dir):
    """Without --io int8 nothing changes: no int8 I/O entries in the report or the header
    (tests/codegen/test_c_hashes.py holds the generated C of every target byte for byte)."""
    _, a = compiled(zoo_dir, "digits_cnn", "cortex-m4-int8", "float")
    assert "int8_io" not in a.report and "_SCALE" not in a.files["digits_cnn.h"]


@pytest.mark.parametrize("target,message", [
    ("generic-fp32", ("edgec: error: --io int8 needs an int8 C target (e.g. cortex-m4-int8, "
                      "generic-int8), not 'generic-fp32'")),
    ("tflite-int8", ("edgec: error: --io int8 is for C targets; for tflite-int8 use "
                     "--tflite-io int8"))])
def test_int8_io_on_a_wrong_target_is_one_line(zoo_dir, tmp_path, target, message):
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "compile",
                           str(Path(zoo_dir) / "digits_cnn.onnx"), "-t", target, "--io", "int8",
                           "-o", str(tmp_path / "out")], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert errors == [message], proc.stderr
