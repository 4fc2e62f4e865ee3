"""`edgec golden record/check` on CoreML targets: the package's MIL program, evaluated in
numpy, is judged against onnxruntime as `edgec verify` judges it, recorded, and checked again;
a changed output is a regression and a wrong kernel is not recorded."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from edgec.codegen.coreml.evaluate import EVALUATORS
from test_coreml_package import conv_model

from edgec.cli import main
from edgec.workbench.compare import onnxruntime_outputs

TARGETS = "coreml-fp32,coreml-fp16,coreml-int8"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("golden")
    model = tmp_path / "tiny.onnx"
    onnx.save(conv_model(), str(model))
    assert main(["golden", "record", str(model), "-t", TARGETS, "-d",
                 str(tmp_path / "g"), "--json"]) == 0
    return tmp_path / "g" / "tiny"


def _load(case, rel):
    return np.load(case / rel)


def test_record_judges_against_onnxruntime_and_check_passes(recorded, capsys):
    m = json.loads((recorded / "edgec-golden.json").read_text())
    x = _load(recorded, m["inputs"]["tensors"][0]["file"])
    ref = onnxruntime_outputs(recorded.parent.parent / "tiny.onnx", {"input.1": x})["out/y:0"]
    scale = np.abs(ref).max()
    for target, rtol, worst in (("coreml-fp32", 1e-4, 1e-6), ("coreml-fp16", 4e-3, 2e-3),
                                ("coreml-int8", 4e-3, 3e-2)):
        entry = m["targets"][target]
        assert entry["tolerance"]["rtol"] == rtol and entry["backend"] == "coreml"
        got = _load(recorded, entry["outputs"][0]["file"])
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() <= worst * scale, target  # independent: onnxruntime
    assert main(["golden", "check", str(recorded)]) == 0
    out = capsys.readouterr().out
    assert "3 pass -> PASS" in out


def test_changed_output_is_a_regression(recorded, tmp_path, capsys):
    shutil.copytree(recorded.parent.parent, tmp_path / "copy")  # the model travels along
    recorded = tmp_path / "copy" / "g" / "tiny"
    m = json.loads((recorded / "edgec-golden.json").read_text())
    path = recorded / m["targets"]["coreml-fp16"]["outputs"][0]["file"]
    y = np.load(path)
    y.flat[3] += 1e-2 * np.abs(y).max()  # 10 fp16 ulps of the largest value: a regression
    np.save(path, y)
    assert main(["golden", "check", str(recorded), "--json"]) == 1
    rows = {r["target"]: r for r in json.loads(capsys.readouterr().out)["cases"]}
    assert rows["coreml-fp16"]["status"] == "regression"
    assert rows["coreml-fp32"]["status"] == rows["coreml-int8"]["status"] == "pass"
    assert any("no per-layer dump" in n for n in rows["coreml-fp16"]["notes"])


def test_wrong_kernel_is_not_recorded(tmp_path, capsys, monkeypatch):
    model = tmp_path / "tiny.onnx"
    onnx.save(conv_model(), str(model))
    real = EVALUATORS["relu"]

    def off(get, op):  # one element 1e-3 x max|y| off: outside the fp32 band
        y = np.array(real(get, op), np.float32)
        y.flat[7] += 1e-3 * np.abs(y).max()
        return y

    monkeypatch.setitem(EVALUATORS, "relu", off)
    assert main(["golden", "record", str(model), "-t", "coreml-fp32", "-d",
                 str(tmp_path / "g")]) == 1
    out = capsys.readouterr().out
    assert "mismatch" in out and "0 of 1 target recorded" in out
