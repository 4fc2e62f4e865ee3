"""The macOS branch of `edgec verify -t coreml-*` (predict_on_mac) run on Linux, with CoreML's
MLModel replaced by a stand-in that answers `predict` with edgec's own evaluators. It checks
the branch's plumbing (feeds by CoreML name, outputs back by ONNX name, the second verdict
added as '(CoreML predict)'), not CoreML: tests/coreml/test_coreml_package.py's
test_predict_on_mac does that on a Mac. The NeuralNetwork case used to read the .mlmodel as
an ML Program for classifier labels and raised there."""

from __future__ import annotations

from types import SimpleNamespace

import onnx
import pytest
from test_coreml_package import conv_model

from edgec.codegen.coreml.evaluate import evaluate, load_package, load_spec
from edgec.codegen.coreml.evaluate_neuralnetwork import evaluate_spec
from edgec.codegen.coreml.options import CoreMLOptions
from edgec.compiler import CompileOptions
from edgec.workbench import coreml_verify


class StandInMLModel:
    """coremltools.models.MLModel on a Mac, as far as predict_on_mac uses it."""

    def __init__(self, path: str):
        self.nn = path.endswith(".mlmodel")
        self.program = None if self.nn else load_package(path)
        self.spec = load_spec(path) if self.nn else None

    def predict(self, feeds):
        if self.nn:
            return evaluate_spec(self.spec, feeds, True)
        return evaluate(self.program, feeds)


@pytest.mark.parametrize("fmt", ["mlprogram", "neuralnetwork"])
def test_mac_branch_adds_a_predict_verdict(tmp_path, monkeypatch, fmt):
    import coremltools

    monkeypatch.setattr(coreml_verify, "sys", SimpleNamespace(platform="darwin"))
    monkeypatch.setattr(coremltools.models.model, "_MLModelProxy", object)  # CoreML present
    real = coremltools.models.MLModel

    def mlmodel(path, *args, **kwargs):  # conversion and skip_model_load keep the real one
        return real(path, *args, **kwargs) if args or kwargs else StandInMLModel(path)

    monkeypatch.setattr(coremltools.models, "MLModel", mlmodel)
    path = tmp_path / "tiny.onnx"
    onnx.save(conv_model(), str(path))
    res = coreml_verify.verify_coreml(
        path, CompileOptions(target="coreml-fp16", coreml=CoreMLOptions(format=fmt)))
    assert res.ok, [o.__dict__ for o in res.outputs]
    assert [o.name for o in res.outputs] == ["out/y:0", "out/y:0 (CoreML predict)"]
    assert not any("skipped" in w for w in res.warnings)


def test_mac_without_coremls_native_module_skips_with_the_reason(tmp_path, monkeypatch):
    import coremltools

    monkeypatch.setattr(coreml_verify, "sys", SimpleNamespace(platform="darwin"))
    monkeypatch.setattr(coremltools.models.model, "_MLModelProxy", None)
    path = tmp_path / "tiny.onnx"
    onnx.save(conv_model(), str(path))
    res = coreml_verify.verify_coreml(path, CompileOptions(target="coreml-fp32"))
    assert res.ok and len(res.outputs) == 1
    assert any("no native CoreML module" in w for w in res.warnings), res.warnings
