"""`edgec golden record/check` (edgec/golden/): the acceptance scenario on a copy of a zoo
model, regressions without a model change, JUnit XML, JSON, skips and the case layout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import ZOO_DIR
from onnx import numpy_helper

from edgec.cli import main
from edgec.compiler import CompileOptions
from edgec.errors import EdgecError
from edgec.golden import check_cases, find_cases, read_case, record_case
from edgec.golden.manifest import MANIFEST, manifest_json
from edgec.golden.options import options_from_json, options_to_json
from edgec.targets import _TARGETS, Target

INNER_CONV = "/stages/stages.1/conv1/conv1.0/Conv"


def scale_conv_weight(path: Path, node_name: str, factor: float) -> None:
    """Multiply the first output channel of `node_name`'s weight tensor by `factor`."""
    model = onnx.load(path)
    weight = next(n.input[1] for n in model.graph.node if n.name == node_name)
    for init in model.graph.initializer:
        if init.name == weight:
            w = numpy_helper.to_array(init).copy()
            w[0] *= factor
            init.CopyFrom(numpy_helper.from_array(w, weight))
    onnx.save(model, path)


def check_json(capsys, *args) -> tuple[int, list[dict]]:
    """Run `edgec golden check ... --json`; (exit code, cases)."""
    code = main(["golden", "check", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out)["cases"]


def test_changed_inner_conv_weight_is_model_changed_and_located(tmp_path, capsys):
    """Acceptance: record with --per-layer on two targets; change one weight tensor of an
    inner convolution -> exit 1, model-changed, the first divergent layer is that conv;
    restore the file -> the check passes. The JUnit XML parses, one testcase per pair."""
    model = tmp_path / "resnet8.onnx"
    shutil.copy(ZOO_DIR / "resnet8.onnx", model)
    pristine = model.read_bytes()
    golden = tmp_path / "golden"
    assert main(["golden", "record", str(model), "-t", "generic-fp32,generic-int8",
                 "-d", str(golden), "--per-layer"]) == 0
    assert "2 of 2 targets recorded" in capsys.readouterr().out

    scale_conv_weight(model, INNER_CONV, 1.5)
    junit = tmp_path / "report" / "golden.xml"
    code, cases = check_json(capsys, golden, "--junit", junit)
    assert code == 1
    assert [(c["target"], c["status"]) for c in cases] == [
        ("generic-fp32", "model-changed"), ("generic-int8", "model-changed")]
    for c in cases:
        assert c["first_divergent_layer"] == INNER_CONV, c
        assert c["max_abs_err"] > 0
    root = ET.parse(junit).getroot()
    testcases = root.findall(".//testcase")
    assert [(t.get("classname"), t.get("name")) for t in testcases] == [
        ("golden.resnet8", "generic-fp32"), ("golden.resnet8", "generic-int8")]
    assert all(t.find("failure").get("type") == "model-changed" for t in testcases)
    assert root.get("tests") == "2" and root.get("failures") == "2"

    assert main(["golden", "check", str(golden)]) == 1
    text = capsys.readouterr().out
    assert "model-changed" in text and INNER_CONV in text and "FAIL" in text

    model.write_bytes(pristine)
    code, cases = check_json(capsys, golden, "--junit", junit)
    assert code == 0 and [c["status"] for c in cases] == ["pass", "pass"]
    assert all(c["first_divergent_layer"] is None for c in cases)
    assert ET.parse(junit).getroot().get("failures") == "0"


@pytest.fixture(scope="module")
def dscnn_case(tmp_path_factory):
    """DS-CNN recorded for generic-fp32 with --per-layer (2 samples from one .npz)."""
    root = tmp_path_factory.mktemp("dscnn-golden")
    x = np.random.default_rng(7).standard_normal((2, 1, 49, 10)).astype(np.float32)
    np.savez(root / "x.npz", input=x)
    case_dir, rows = record_case(ZOO_DIR / "dscnn.onnx", ["generic-fp32"], root / "golden",
                                 inputs_path=str(root / "x.npz"), per_layer=True)
    assert [r.status for r in rows] == ["recorded"]
    return case_dir


def fresh_copy(case_dir: Path, tmp_path: Path) -> Path:
    """A copy of a case whose model path still resolves (same depth below a sibling)."""
    dst = tmp_path / "golden" / case_dir.name
    shutil.copytree(case_dir, dst)
    case = read_case(dst)
    case.manifest["model"]["path"] = str(ZOO_DIR / "dscnn.onnx")
    (dst / MANIFEST).write_text(manifest_json(case.manifest) + "\n")
    return dst


def test_case_layout_and_manifest(dscnn_case):
    case = read_case(dscnn_case)
    m = case.manifest
    assert m["format"] == "edgec-golden/1" and m["case"] == "dscnn"
    assert m["inputs"]["samples"] == 2 and m["inputs"]["tensors"][0]["shape"] == [2, 1, 49, 10]
    assert case.model_path == (ZOO_DIR / "dscnn.onnx").resolve()
    entry = m["targets"]["generic-fp32"]
    assert entry["tolerance"] == {"rtol": 1e-4} and entry["cflags"] == ["-O2"]
    assert entry["outputs"][0]["compare"] == "rtol"
    assert np.load(dscnn_case / entry["outputs"][0]["file"]).shape == (2, 12)
    names = [t["name"] for t in m["per_layer"]["tensors"]]
    assert "/features/features.0/features.0.2/Relu_output_0" in names
    text = (dscnn_case / MANIFEST).read_text()
    assert '"shape": [2, 1, 49, 10]' in text  # short lists on one line: small diffs


def test_changed_outputs_are_a_regression_and_layers_locate_it(dscnn_case, tmp_path,
                                                                capsys):
    case_dir = fresh_copy(dscnn_case, tmp_path)
    m = read_case(case_dir).manifest
    out = case_dir / m["targets"]["generic-fp32"]["outputs"][0]["file"]
    np.save(out, np.load(out) * np.float32(1.01))
    layer = next(t for t in m["per_layer"]["tensors"]
                 if t["name"] == "/features/features.4/features.4.2/Relu_output_0")
    np.save(case_dir / layer["file"], np.load(case_dir / layer["file"]) + np.float32(0.5))
    code, cases = check_json(capsys, case_dir)
    assert code == 1 and cases[0]["status"] == "regression"
    assert cases[0]["first_divergent_layer"] == "/features/features.4/features.4.0/Conv"
    assert "max rel err" in cases[0]["message"]


def test_missing_toolchain_is_skipped_and_unknown_target_an_error(dscnn_case, tmp_path,
                                                                  monkeypatch):
    case_dir = fresh_copy(dscnn_case, tmp_path)
    case = read_case(case_dir)
    fake = Target(name="test-no-compiler", description="a target whose compiler is missing",
                  cc="edgec-no-such-cc", apt_packages=("gcc-nothing",))
    monkeypatch.setitem(_TARGETS, fake.name, fake)
    case.manifest["targets"]["test-no-compiler"] = case.manifest["targets"]["generic-fp32"]
    case.manifest["targets"]["test-gone"] = case.manifest["targets"]["generic-fp32"]
    (case_dir / MANIFEST).write_text(manifest_json(case.manifest) + "\n")
    results = check_cases(find_cases([tmp_path / "golden"]), ["test-no-compiler", "test-gone"])
    by = {r.target: r for r in results}
    assert by["test-no-compiler"].status == "skipped" and not by["test-no-compiler"].failed
    assert "not installed" in by["test-no-compiler"].message
    assert by["test-gone"].status == "error" and "unknown target" in by["test-gone"].message
    assert "flags changed since recording: cc" in " ".join(by["test-no-compiler"].notes)


def test_record_extends_a_case_and_refuses_foreign_directories(dscnn_case, tmp_path):
    case_dir = fresh_copy(dscnn_case, tmp_path)
    x = np.load(case_dir / "inputs" / "input.npy")
    np.savez(tmp_path / "x.npz", input=x)
    _, rows = record_case(ZOO_DIR / "dscnn.onnx", ["x86_64-fp32"], tmp_path / "golden",
                          inputs_path=str(tmp_path / "x.npz"))
    assert [r.status for r in rows] == ["recorded"]
    assert read_case(case_dir).targets == ["generic-fp32", "x86_64-fp32"]
    assert read_case(case_dir).manifest["per_layer"] is not None  # kept from the first record
    foreign = tmp_path / "foreign"
    (foreign / "dscnn").mkdir(parents=True)
    (foreign / "dscnn" / "notes.txt").write_text("mine")
    with pytest.raises(EdgecError, match="not a golden case"):
        record_case(ZOO_DIR / "dscnn.onnx", ["generic-fp32"], foreign)
    assert (foreign / "dscnn" / "notes.txt").exists()


def test_options_round_trip_through_the_manifest(tmp_path):
    calib = tmp_path / "data" / "calib.npz"
    opts = CompileOptions(target="generic-int8", input_shapes={"x": (1, 3, 8, 8)},
                          calib=str(calib), calib_method="percentile", keep_float=("Softmax",))
    case_dir = tmp_path / "cases" / "m"
    case_dir.mkdir(parents=True)
    data = options_to_json(opts, case_dir)
    assert data["calib"] == "../../data/calib.npz" and data["keep_float"] == ["Softmax"]
    assert "target" not in data and "verify_each" not in data
    back = options_from_json(json.loads(json.dumps(data)), case_dir, "generic-int8")
    assert back.input_shapes == {"x": (1, 3, 8, 8)} and back.keep_float == ("Softmax",)
    assert Path(back.calib) == calib.resolve() and back.calib_method == "percentile"


def test_cli_usage_errors(tmp_path, capsys):
    assert main(["golden", "check", str(tmp_path)]) == 2
    assert "holds no golden case" in capsys.readouterr().err
    assert main(["golden", "record", str(ZOO_DIR / "dscnn.onnx"), "-t", "nope",
                 "-d", str(tmp_path)]) == 2
    assert "unknown target 'nope'" in capsys.readouterr().err
    assert main(["golden", "record", str(ZOO_DIR / "dscnn.onnx")]) == 2
    assert "edgec golden record --help" in capsys.readouterr().err


def test_pytest_plugin_reports_a_regression_like_the_check(dscnn_case, tmp_path):
    """Through the plugin a failing case fails its item with the check's explanation (no
    Python traceback), and --edgec-golden-targets filters the items."""
    case_dir = fresh_copy(dscnn_case, tmp_path)
    m = read_case(case_dir).manifest
    out = case_dir / m["targets"]["generic-fp32"]["outputs"][0]["file"]
    np.save(out, np.load(out) * np.float32(1.01))
    base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
            "-p", "no:benchmark", "-o", "addopts=", "-q"]
    run = subprocess.run([*base, str(tmp_path / "golden")], cwd=tmp_path,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "edgec golden check: dscnn on generic-fp32: regression" in run.stdout
    assert "max rel err" in run.stdout and "Traceback" not in run.stdout
    none = subprocess.run([*base, "--edgec-golden-targets", "x86_64-fp32",
                           str(tmp_path / "golden")], cwd=tmp_path, capture_output=True,
                          text=True, check=False)
    assert none.returncode == 5, none.stdout  # no tests collected


def test_a_crash_inside_edgec_is_an_error_of_that_pair_only(dscnn_case, monkeypatch):
    import edgec.golden.check as check

    def broken(*args, **kwargs):
        raise RuntimeError("template blew up\nsecond line")

    monkeypatch.setattr(check, "compile_model", broken)
    [result] = check_cases([read_case(dscnn_case)])
    assert result.status == "error" and result.failed
    assert result.message == ("internal error: RuntimeError: template blew up "
                              "(please report it)")
