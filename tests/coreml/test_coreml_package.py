"""The .mlpackage itself: it loads in coremltools without a CoreML runtime, carries the model's
names, shapes and edgec's metadata, picks its deployment target from the features used, and
the CLI's errors are one line with exit code 2."""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import pytest
from helpers import make_model
from onnx import helper

from edgec.cli import main
from edgec.codegen.coreml.evaluate import EVALUATORS, evaluate, load_package
from edgec.compiler import CompileOptions, compile_model
from edgec.workbench.compare import onnxruntime_outputs, random_inputs


def conv_model(names=("input.1", "w", "b", "conv out", "out/y:0")) -> onnx.ModelProto:
    x, w, b, mid, y = names
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", [x, w, b], [mid], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", [mid], [y])]
    return make_model(nodes, {x: ("float32", (1, 3, 6, 6))}, {y: ("float32", (1, 4, 6, 6))},
                      {w: rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
                       b: rng.standard_normal(4).astype(np.float32)})


@pytest.fixture
def conv_path(tmp_path):
    path = tmp_path / "tiny.onnx"
    onnx.save(conv_model(), str(path))
    return path


def test_package_loads_and_describes_the_model(conv_path, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compile", str(conv_path), "-t", "coreml-fp16", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["backend"] == "coreml" and report["deployment_target"] == "iOS15"
    import coremltools as ct

    model = ct.models.MLModel(str(out / "tiny.mlpackage"), skip_model_load=True)
    spec = model.get_spec()
    assert spec.WhichOneof("Type") == "mlProgram"
    assert spec.specificationVersion == 6  # iOS15
    (inp,), (outp,) = spec.description.input, spec.description.output
    assert inp.name == "input_1" and outp.name == "out_y_0"  # identifiers of the ONNX names
    assert list(inp.type.multiArrayType.shape) == [1, 3, 6, 6]
    assert list(outp.type.multiArrayType.shape) == [1, 4, 6, 6]
    assert "ONNX 'input.1'" in inp.shortDescription and "1x3x6x6" in inp.shortDescription
    meta = spec.description.metadata.userDefined
    assert meta["edgec.target"] == "coreml-fp16" and meta["edgec.source_model"] == "tiny.onnx"
    assert len(meta["edgec.source_sha256"]) == 64 and "edgec.calibration" in meta
    assert report["inputs"][0]["coreml_name"] == "input_1"


def test_written_package_matches_onnxruntime(conv_path, tmp_path):
    out = tmp_path / "out"
    assert main(["compile", str(conv_path), "-t", "coreml-fp32", "-o", str(out)]) == 0
    prog = load_package(out / "tiny.mlpackage")
    x = np.random.default_rng(1).standard_normal((1, 3, 6, 6)).astype(np.float32)
    got = evaluate(prog, {"input_1": x})["out_y_0"]
    want = onnxruntime_outputs(conv_path, {"input.1": x})["out/y:0"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_recompiling_replaces_the_package_but_not_foreign_files(conv_path, tmp_path, capsys):
    out = tmp_path / "out"
    for target in ("coreml-fp32", "coreml-int8"):
        assert main(["compile", str(conv_path), "-t", target, "-o", str(out)]) == 0
    assert json.loads((out / "report.json").read_text())["target"] == "coreml-int8"
    (out / "tiny.mlpackage" / "mine.txt").write_text("user data")
    capsys.readouterr()
    assert main(["compile", str(conv_path), "-t", "coreml-fp32", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did not write" in err
    assert (out / "tiny.mlpackage" / "mine.txt").read_text() == "user data"


@pytest.mark.parametrize("target,flag,version", [
    ("coreml-fp32", None, 6), ("coreml-int8", None, 7), ("coreml-fp16", "iOS17", 8),
    ("coreml-int8", "macOS14", 8)])
def test_deployment_target(conv_path, target, flag, version):
    result = compile_model(conv_path, CompileOptions(target=target, coreml_target=flag))
    assert result.coreml.mlmodel.get_spec().specificationVersion == version


def test_too_early_deployment_target_is_one_line(conv_path, capsys):
    code = main(["compile", str(conv_path), "-t", "coreml-int8", "--coreml-target", "iOS15",
                 "-o", str(conv_path.parent / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "iOS15 is too early" in err and "iOS16" in err


def test_unsupported_node_is_one_line_naming_it(tmp_path, capsys):
    nodes = [helper.make_node("Hardmax", ["x"], ["y"], name="the_hardmax")]
    path = tmp_path / "hm.onnx"
    onnx.save(make_model(nodes, {"x": ("float32", (2, 5))}, {"y": ("float32", (2, 5))}),
              str(path))
    code = main(["compile", str(path), "-t", "coreml-fp32", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "'the_hardmax' (Hardmax)" in err and err.startswith("edgec: error: ")
    assert not (tmp_path / "o").exists()


HOSTILE = ("*/\n#x ??/", "\\\n\0\"'", "Ω/*//*/", "input", "1 out")


def test_hostile_names_still_give_a_working_package(tmp_path):
    path = tmp_path / "h.onnx"
    onnx.save(conv_model(HOSTILE), str(path))
    result = compile_model(path, CompileOptions(target="coreml-fp32"))
    feeds = random_inputs(result.source_graph, 0)
    from edgec.workbench.coreml_verify import run_package

    got = run_package(result, [feeds], tmp_path / "pkg")[0]
    want = onnxruntime_outputs(path, feeds)
    np.testing.assert_allclose(got["1 out"], want["1 out"], rtol=1e-5, atol=1e-5)
    names = [i["coreml_name"] for i in result.report["inputs"] + result.report["outputs"]]
    assert all(n.isidentifier() and n.isascii() for n in names), names


def test_verify_cli_passes_and_a_wrong_kernel_fails(conv_path, capsys, monkeypatch):
    assert main(["verify", str(conv_path), "-t", "coreml-fp32"]) == 0
    assert "PASS" in capsys.readouterr().out
    real = EVALUATORS["relu"]

    def off_by_a_little(get, op):  # one output element 1e-3 x max|y| off: outside the band
        y = np.array(real(get, op), np.float32)
        y.flat[7] += 1e-3 * np.abs(y).max()
        return y

    monkeypatch.setitem(EVALUATORS, "relu", off_by_a_little)
    assert main(["verify", str(conv_path), "-t", "coreml-fp32"]) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.skipif(sys.platform != "darwin", reason="MLModel.predict needs macOS (CoreML)")
def test_predict_on_mac(conv_path):
    from edgec.workbench.coreml_verify import verify_coreml

    res = verify_coreml(conv_path, CompileOptions(target="coreml-fp16"))
    assert res.ok and any("CoreML predict" in o.name for o in res.outputs)


@pytest.mark.parametrize("argv", [["report"], ["bench"], ["verify", "--per-layer"]])
def test_commands_that_need_c_refuse_coreml_targets(conv_path, capsys, argv):
    code = main([*argv[:1], str(conv_path), "-t", "coreml-fp16", *argv[1:]])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "CoreML target coreml-fp16" in err


def test_same_model_gives_the_same_package_bytes(conv_path):
    one, two = (compile_model(conv_path, CompileOptions(target="coreml-int8")).files
                for _ in range(2))
    package = {k: v for k, v in one.items() if k.startswith("tiny.mlpackage/")}
    assert len(package) == 3 and package == {k: two[k] for k in package}


def test_package_bytes_do_not_depend_on_the_day(conv_path, monkeypatch):
    """coremltools stamps the conversion date into the metadata; edgec drops it."""
    import datetime

    from coremltools.converters import _converters_entry

    class Tomorrow(datetime.date):
        @classmethod
        def today(cls):
            return datetime.date(2031, 1, 2)

    def package(files):
        return {k: v for k, v in files.items() if k.startswith("tiny.mlpackage/")}

    today = package(compile_model(conv_path, CompileOptions(target="coreml-fp16")).files)
    monkeypatch.setattr(_converters_entry, "date", Tomorrow)
    later = package(compile_model(conv_path, CompileOptions(target="coreml-fp16")).files)
    assert len(today) == 3 and today == later


def test_an_input_that_is_also_an_output(tmp_path):
    nodes = [helper.make_node("Sigmoid", ["x"], ["y"])]
    path = tmp_path / "io.onnx"
    onnx.save(make_model(nodes, {"x": ("float32", (2, 3))},
                         {"y": ("float32", (2, 3)), "x": ("float32", (2, 3))}), str(path))
    result = compile_model(path, CompileOptions(target="coreml-fp32"))
    from edgec.workbench.coreml_verify import run_package

    x = np.linspace(-3, 3, 6, dtype=np.float32).reshape(2, 3)
    got = run_package(result, [{"x": x}], tmp_path / "pkg")[0]
    want = onnxruntime_outputs(path, {"x": x})
    np.testing.assert_allclose(got["y"], want["y"], rtol=1e-6)
    np.testing.assert_array_equal(got["x"], x)
