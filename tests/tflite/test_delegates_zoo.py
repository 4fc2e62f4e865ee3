"""Issue 14 acceptance on the zoo: edgec's tflite-int8 files against the NNAPI and GPU
delegate rules (codegen/tflite/nnapi.py, gpu.py), and the CLI hooks `edgec report --nnapi`
and `edgec compile --nnapi-level`.
"""

from __future__ import annotations

import json
import re

import pytest

from edgec import cli
from edgec.codegen.tflite.compat import compat_sections, tflite_bytes
from edgec.compiler import CompileOptions, compile_model

pytest.importorskip("ai_edge_litert.schema_py_generated")

ZOO = ["digits_cnn", "dscnn", "resnet8",
       pytest.param("mobilenetv2", marks=pytest.mark.slow)]  # mobilenetv2: ~16 s to compile
FLOAT_SOFTMAX = {"dscnn", "resnet8"}  # int8 logits -> DEQUANTIZE -> float SOFTMAX
_SECTIONS: dict[tuple[str, str, bool], dict] = {}


def sections(zoo_dir, name: str, io: str = "float", int8_softmax: bool = False) -> dict:
    """compat_sections of the zoo model's tflite-int8 file (compiled once per session)."""
    key = (name, io, int8_softmax)
    if key not in _SECTIONS:
        options = CompileOptions(target="tflite-int8", tflite_io=io, int8_softmax=int8_softmax)
        result = compile_model(zoo_dir / f"{name}.onnx", options)
        _SECTIONS[key] = compat_sections(tflite_bytes(result.files))
    return _SECTIONS[key]


@pytest.mark.parametrize("name", ZOO)
def test_zoo_gpu_accepted_no_transpose_nnapi_13(zoo_dir, name):
    """Every operator GPU-accepted, no TRANSPOSE, and NNAPI 1.3 / feature level 5+ take all."""
    s = sections(zoo_dir, name)
    ops = [row["op"] for row in s["nnapi"]["ops"]]
    assert "TRANSPOSE" not in ops
    assert s["gpu"]["accepted"] == s["gpu"]["operators"] == len(ops)
    assert s["nnapi"]["accepted"]["30"] == s["nnapi"]["accepted"]["31"] == len(ops)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_nnapi_12_refuses_only_the_float_io_conversions(zoo_dir, name):
    """NNAPI 1.2 takes every compute operator; with float model I/O it refuses the input
    QUANTIZE (int8 output needs 1.3) and the output DEQUANTIZE (asymmetric int8 needs 1.3)."""
    rows = sections(zoo_dir, name)["nnapi"]["ops"]
    refused = {row["op"]: [x["rule"] for x in row["refused_by"]["29"]]
               for row in rows if not row["accepted"]["29"]}
    assert refused == {"QUANTIZE": ["quantize-int8-output"],
                       "DEQUANTIZE": ["dequantize-int8-asymmetric-1.2"]}
    assert rows[0]["op"] == "QUANTIZE" and rows[-1]["op"] in ("DEQUANTIZE", "SOFTMAX")


@pytest.mark.parametrize("name", ZOO)
def test_zoo_int8_io_gpu_and_nnapi(zoo_dir, name):
    """--tflite-io int8: GPU and NNAPI 1.3 take everything; NNAPI 1.2 everything but, where a
    float Softmax follows the int8 logits, that DEQUANTIZE (asymmetric int8 needs 1.3)."""
    s = sections(zoo_dir, name, "int8")
    rows = s["nnapi"]["ops"]
    assert s["gpu"]["accepted"] == s["nnapi"]["accepted"]["30"] == len(rows)
    assert "QUANTIZE" not in [row["op"] for row in rows]
    refused = [(i, row["op"], [x["rule"] for x in row["refused_by"]["29"]])
               for i, row in enumerate(rows) if not row["accepted"]["29"]]
    if name in FLOAT_SOFTMAX:
        (i, op, rules), = refused
        assert (op, rules) == ("DEQUANTIZE", ["dequantize-int8-asymmetric-1.2"])
        assert rows[i + 1]["op"] == "SOFTMAX"
    else:
        assert refused == []


@pytest.mark.parametrize("name", sorted(FLOAT_SOFTMAX))
def test_zoo_int8_io_nnapi_12_takes_everything(zoo_dir, name):
    """--tflite-io int8 --int8-softmax: the Softmax is an int8 SOFTMAX (no DEQUANTIZE left),
    and NNAPI 1.2, 1.3 and the GPU delegate take every operator."""
    s = sections(zoo_dir, name, "int8", int8_softmax=True)
    ops = [row["op"] for row in s["nnapi"]["ops"]]
    assert ops[-1] == "SOFTMAX" and "DEQUANTIZE" not in ops and "QUANTIZE" not in ops
    assert s["nnapi"]["accepted"]["29"] == s["nnapi"]["accepted"]["30"] == len(ops)
    assert s["gpu"]["accepted"] == len(ops)


def test_report_nnapi_prints_table_and_json_sections(zoo_dir, capfd):
    model = str(zoo_dir / "digits_cnn.onnx")
    assert cli.main(["report", model, "-t", "tflite-int8", "--nnapi", "--json"]) == 0
    report = json.loads(capfd.readouterr().out)
    n = report["nnapi"]["operators"]
    assert n == len(report["nnapi"]["ops"]) == report["gpu"]["accepted"]
    assert report["nnapi"]["accepted"]["29"] == n - 2  # float I/O: QUANTIZE, DEQUANTIZE
    assert cli.main(["report", model, "-t", "tflite-int8", "--nnapi"]) == 0
    out = capfd.readouterr().out
    accepted = report["nnapi"]["accepted"]
    assert (f"NNAPI delegate accepts: API 27 (NNAPI 1.0) {accepted['27']}/{n}, API 28 (NNAPI "
            f"1.1) {accepted['28']}/{n}, API 29 (NNAPI 1.2) {n - 2}/{n}, API 30 (NNAPI 1.3) "
            f"{n}/{n}, API 31 (feature level 5+) {n}/{n}; GPU delegate {n}/{n}") in out
    assert re.search(r"#\d+ CONV_2D: API 27, 28: input-type, per-channel-before-1.2", out)


def test_report_nnapi_on_a_c_target_is_one_line(zoo_dir, capfd):
    code = cli.main(["report", str(zoo_dir / "digits_cnn.onnx"), "-t", "generic-int8",
                     "--nnapi"])
    err = capfd.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("edgec: error: NNAPI/GPU compatibility needs a TFLite target")


def test_compile_nnapi_level_27_names_ops_and_writes_nothing(zoo_dir, tmp_path, capfd):
    out = tmp_path / "out"
    code = cli.main(["compile", str(zoo_dir / "digits_cnn.onnx"), "-t", "tflite-int8",
                     "--nnapi-level", "27", "-o", str(out)])
    err = [ln for ln in capfd.readouterr().err.splitlines() if "error" in ln]
    assert code == 2 and len(err) == 1 and not out.exists()
    assert "API level 27 (NNAPI 1.0) refuses" in err[0]
    assert re.search(r"#\d+ CONV_2D \(input-type, per-channel-before-1.2\)", err[0])
    assert cli.main(["compile", str(zoo_dir / "digits_cnn.onnx"), "-t", "tflite-int8",
                     "--nnapi-level", "30", "-o", str(out)]) == 0
    assert (out / "model.tflite").exists()
