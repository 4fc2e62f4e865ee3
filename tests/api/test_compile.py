"""edgec.compile without building C: what it returns, that the command line writes the same
bytes, calibration from Python data, and one clear edgec error for each kind of bad input."""

from __future__ import annotations

import filecmp
import json

import numpy as np
import onnx
import pytest

import edgec
from edgec.cli import main
from edgec.errors import (
    DataError,
    EdgecError,
    ModelLoadError,
    ShapeError,
    TargetError,
    UnsupportedError,
)
from edgec.frontend.torch import unsupported_torch_op
from tests.api.conftest import DIGITS, DIGITS_CALIB


def test_compiled_holds_files_and_report(tmp_path):
    compiled = edgec.compile(DIGITS, "generic-fp32")
    report = json.loads(compiled.files["report.json"])
    assert compiled.report.as_dict() == report
    assert compiled.report.arena_bytes == report["arena_bytes"] > 0
    assert compiled.report.macs == report["macs"] > 0
    assert [i["name"] for i in compiled.report.inputs] == ["x"]
    assert compiled.report.calibration is None
    assert {"digits_cnn.h", "digits_cnn.c", "report.json"} <= set(compiled.files)
    out = compiled.write(tmp_path / "out")
    for name, text in compiled.files.items():
        assert (out / name).read_text() == text
    assert (out / ".edgec_output.json").exists()


def test_notebook_tables_escape_and_show_the_plan():
    compiled = edgec.compile(DIGITS, "generic-fp32")
    html = compiled._repr_html_()
    assert "generic-fp32" in html and "<svg" in html and f"{compiled.report.arena_bytes:,}" in html
    text = str(compiled.report.__rich__())  # plain text when rich is not installed
    assert "arena_bytes" in text or hasattr(compiled.report.__rich__(), "columns")



def test_notebook_tables_escape_model_names():
    from onnx import TensorProto, helper

    name = "<script>alert(1)</script>"
    graph = helper.make_graph([helper.make_node("Relu", [name], ["y"])], "g",
                              [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    compiled = edgec.compile(model, "generic-fp32")
    assert compiled.report.inputs[0]["name"] == name
    assert "<script>" not in compiled._repr_html_()
    assert "&lt;script&gt;" in compiled.report._repr_html_()


def test_cli_and_api_write_identical_folders(tmp_path):
    """One code path: `edgec compile` and edgec.compile(...).write() give the same bytes."""
    cli_dir, api_dir = tmp_path / "cli", tmp_path / "api"
    assert main(["compile", str(DIGITS), "-t", "x86_64-int8", "--calib", str(DIGITS_CALIB),
                 "-o", str(cli_dir)]) == 0
    edgec.compile(str(DIGITS), "x86_64-int8", calib=str(DIGITS_CALIB), output_dir=api_dir)
    names = sorted(p.name for p in cli_dir.iterdir())
    assert names == sorted(p.name for p in api_dir.iterdir())
    _, mismatch, errors = filecmp.cmpfiles(cli_dir, api_dir, names, shallow=False)
    assert mismatch == [] and not errors  # byte-identical, report.json included


def test_modelproto_compiles_like_its_file():
    from_file = edgec.compile(DIGITS, "generic-fp32")
    from_proto = edgec.compile(onnx.load(DIGITS), "generic-fp32", name="digits_cnn")
    assert from_proto.files == from_file.files  # same name, same bytes: same sha256 too


def test_calibration_from_python_data_matches_the_file(digits_calib):
    """Arrays, a dict, a list of batches, a generator and a DataLoader calibrate exactly like
    the .npz: the same samples give the same int8 code."""
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    want = edgec.compile(DIGITS, "generic-int8", calib=DIGITS_CALIB)
    labels = torch.zeros(len(digits_calib), dtype=torch.long)
    loader = DataLoader(TensorDataset(torch.from_numpy(digits_calib), labels), batch_size=32)
    sources = [digits_calib, {"x": digits_calib},
               [{"x": digits_calib[i:i + 50]} for i in range(0, 200, 50)],
               ({"x": digits_calib[i:i + 1]} for i in range(200)), loader]
    for calib in sources:
        got = edgec.compile(DIGITS, "generic-int8", calib=calib)
        assert got.calibration["samples"] == 200
        assert {k: v for k, v in got.files.items() if k != "report.json"} == \
            {k: v for k, v in want.files.items() if k != "report.json"}


@pytest.mark.parametrize("call, error, words", [
    (lambda: edgec.compile("missing.onnx"), ModelLoadError, "does not exist"),
    (lambda: edgec.compile(42), ModelLoadError, "torch.nn.Module"),
    (lambda: edgec.compile(onnx.ModelProto()), ModelLoadError, "not an ONNX model"),
    (lambda: edgec.compile(DIGITS, "z80-int8"), TargetError, "z80-int8"),
    (lambda: edgec.compile(DIGITS, "generic-fp32", colour="red"), EdgecError, "colour"),
    (lambda: edgec.compile(DIGITS, "generic-int8", calib=np.zeros((4, 3))), DataError, "4x3"),
    (lambda: edgec.compile(DIGITS, "generic-int8", calib={"y": np.zeros((1, 1, 8, 8))}),
     DataError, "lacks input"),
    (lambda: edgec.compile(DIGITS, "generic-int8", calib=[]), DataError, "empty"),
    (lambda: edgec.compile(DIGITS, "generic-int8", calib=3.5), DataError, "float"),
    (lambda: edgec.compile(DIGITS, input_shapes={"x": (1, -1)}), ShapeError, "positive"),
    (lambda: edgec.compile(DIGITS, seed="a"), EdgecError, "seed takes an integer"),
    (lambda: edgec.compile(DIGITS, "generic-int8", calib_percentile="x"), EdgecError,
     "a number"),
    (lambda: edgec.compile(DIGITS, tflite_io="uint8"), EdgecError, "float, int8"),
    (lambda: edgec.compile(DIGITS, limits={"bogus": 1}), EdgecError, "bogus"),
    (lambda: edgec.compile(DIGITS, example_inputs=np.zeros(3)), EdgecError, "torch"),
    (lambda: edgec.compile(DIGITS).run(None), DataError, "needs inputs"),
    (lambda: edgec.compile(DIGITS).verify(np.zeros((3, 3))), DataError, "3x3"),
    (lambda: edgec.compile(DIGITS).run({"nope": np.zeros(1)}), DataError, "has shape 1"),
])
def test_bad_input_is_one_edgec_error(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value) and "\n" not in str(info.value)


def test_torch_module_needs_fitting_example_inputs(torch_model):
    import torch

    with pytest.raises(EdgecError, match="example_inputs"):
        edgec.compile(torch_model, "generic-fp32")
    with pytest.raises(DataError, match="TinyNet fails on example_inputs of shape 1x3x8x8"):
        edgec.compile(torch_model, example_inputs=torch.zeros(1, 3, 8, 8))
    with pytest.raises(EdgecError, match="example_inputs.0. is a str"):
        edgec.compile(torch_model, example_inputs=("x",))


def test_unsupported_torch_op_is_named():
    torch = pytest.importorskip("torch")

    class Svd(torch.nn.Module):
        def forward(self, x):
            return torch.linalg.svd(x)[1]

    with pytest.raises(UnsupportedError, match="aten::linalg_svd"):
        edgec.compile(Svd(), example_inputs=torch.zeros(1, 4, 4), exporter="legacy")
    dynamo = ("<class 'torch.onnx._internal.exporter._errors.DispatchError'>: No ONNX "
              "function found for <OpOverload(op='aten._linalg_svd', overload='default')>")
    assert unsupported_torch_op(dynamo) == "aten::_linalg_svd"


def test_torch_module_compiles_and_keeps_its_mode(torch_model, torch_compiled):
    assert torch_model.training is False
    assert torch_compiled.report.inputs[0]["shape"] == [1, 1, 8, 8]
    assert torch_compiled.report.outputs[0]["shape"] == [1, 10]
    assert "Conv" in torch_compiled.report.ops and "BatchNormalization" not in \
        torch_compiled.report.ops  # BatchNorm folded


def test_import_edgec_loads_nothing_heavy():
    """`import edgec` stays instant: the API, onnx, torch, onnxruntime and jinja2 load on use."""
    import subprocess
    import sys

    code = ("import sys, time; t = time.perf_counter(); import edgec; "
            "print(time.perf_counter() - t); "
            "print(' '.join(m for m in ('onnx', 'torch', 'onnxruntime', 'jinja2', 'edgec.api') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert float(out[0]) < 0.5
    assert out[1:] in ([], [""])
    assert callable(edgec.compile) and issubclass(edgec.DataError, edgec.EdgecError)


def test_quiet_false_warns_and_output_dir_is_checked_first(tmp_path):
    with pytest.warns(edgec.EdgecWarning, match="random"):
        edgec.compile(DIGITS, "generic-int8", quiet=False)  # no calib: seeded random data
    (tmp_path / "mine.txt").write_text("not edgec's")
    with pytest.raises(EdgecError, match="mine.txt"):
        edgec.compile(DIGITS, "generic-fp32", output_dir=tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "not edgec's"


def test_legacy_fallback_is_a_warning_and_silent(capfd):
    """Data-dependent Python stops dynamo; the legacy tracer takes over, and the user is told
    that the branch taken by example_inputs is frozen into the model."""
    torch = pytest.importorskip("torch")

    class Branchy(torch.nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x - 1

    compiled = edgec.compile(Branchy(), example_inputs=torch.ones(1, 4))
    assert compiled.report.ops == {"Mul": 1}  # the traced branch
    assert any("legacy exporter traced it" in w for w in compiled.warnings)
    out, err = capfd.readouterr()
    assert "graph" not in out + err and "Warning" not in out + err  # quiet: nothing printed
