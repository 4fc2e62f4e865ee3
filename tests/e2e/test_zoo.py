"""The model zoo end to end: every model compiles, builds and matches onnxruntime; the digits
CNN keeps its accuracy through the generated C; the committed files regenerate as docs/zoo.md
promises: byte for byte on one host, same graph and data with weights within a stated
tolerance across hosts (torch's float kernels differ between CPUs).

Models come from tools/make_models.py (see docs/zoo.md); MobileNetV2 is built on first use.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, ZOO_DIR

from edgec.compiler import CompileOptions
from edgec.workbench.verify import verify_model

TOOL = REPO / "tools" / "make_models.py"
SMALL = ["resnet8", "dscnn", "digits_cnn"]
MODELS = [*SMALL, pytest.param("mobilenetv2", marks=pytest.mark.slow)]
TARGETS = ["generic-fp32", "x86_64-fp32"]
RTOL = 1e-4
COMMITTED_FILES = ["resnet8.onnx", "dscnn.onnx", "digits_cnn.onnx", "digits_test.npz",
                   "digits_calib.npz", "kws_lstm.onnx", "kws_test.npz", "kws_calib.npz"]
# torch's scalar kernels instead of this CPU's vector ones: the float paths of another host
OTHER_HOST_ENV = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}


@functools.cache
def load_tool():
    """tools/make_models.py as a module (for its constants and accuracy helper)."""
    spec = importlib.util.spec_from_file_location("make_models", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def describe(res) -> str:
    """One line per output with its errors, for assertion messages."""
    return "; ".join(f"{o.name}: max_rel_err {o.max_rel_err:.3g}, abs {o.max_abs_err:.3g}"
                     for o in res.outputs)


@pytest.mark.slow
def test_trained_mobilenetv2_matches_onnxruntime(zoo_dir, tmp_path):
    """The trained MobileNetV2 converted from nsfwjs (docs/zoo.md): Keras padding as Pad
    nodes, unfolded BatchNormalization, a Gemm head and Softmax, on an image in [0, 1)."""
    np.savez(tmp_path / "x.npz", input=np.random.default_rng(3).random((1, 3, 224, 224),
                                                                     dtype=np.float32))
    res = verify_model(zoo_dir / "mobilenetv2_trained.onnx",
                       CompileOptions(target="x86_64-fp32"), str(tmp_path / "x.npz"), rtol=RTOL)
    assert res.ok, describe(res)
    assert all(o.max_rel_err <= RTOL for o in res.outputs), describe(res)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("model", MODELS)
def test_zoo_model_matches_onnxruntime(zoo_dir, model, target):
    res = verify_model(zoo_dir / f"{model}.onnx", CompileOptions(target=target), rtol=RTOL)
    assert res.ok, describe(res)
    assert all(o.max_rel_err <= RTOL for o in res.outputs), describe(res)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("target", ["x86_64-fp32", "generic-int8"])
def test_zoo_model_under_sanitizers(zoo_dir, model, target):
    """ASan/UBSan with the arena in a heap block of exactly ARENA_BYTES: any access outside
    the memory plan fails; the memory plan itself passes the overlap checker."""
    from edgec.compiler import compile_model
    from edgec.passes.memory_plan import check_no_overlap

    res = verify_model(zoo_dir / f"{model}.onnx", CompileOptions(target=target),
                       rtol=RTOL, sanitize=True, seed=3)
    assert res.ok, describe(res)
    check_no_overlap(compile_model(zoo_dir / f"{model}.onnx", CompileOptions(target=target)).plan)


def test_small_zoo_model_with_clang(zoo_dir):
    res = verify_model(zoo_dir / "resnet8.onnx", CompileOptions(target="generic-fp32"),
                       rtol=RTOL, cc="clang", seed=4)
    assert res.ok, describe(res)


def test_digits_accuracy_through_generated_c(zoo_dir):
    data_path = zoo_dir / "digits_test.npz"
    data = np.load(data_path)
    x, y = data["x"], data["y"]
    assert x.dtype == np.float32 and x.shape[1:] == (1, 8, 8) and y.dtype == np.int64
    res = verify_model(zoo_dir / "digits_cnn.onnx", CompileOptions(target="generic-fp32"),
                       inputs_path=str(data_path), rtol=RTOL)
    assert res.ok, describe(res)
    assert res.samples == len(y)
    logits = res.compiled_outputs["logits"].reshape(len(y), -1)
    c_accuracy = 100.0 * float(np.mean(np.argmax(logits, 1) == y))
    ort_accuracy = load_tool().onnxruntime_accuracy(zoo_dir / "digits_cnn.onnx", x, y)
    assert abs(c_accuracy - ort_accuracy) <= 0.5, (c_accuracy, ort_accuracy)
    assert c_accuracy >= 95.0


@pytest.mark.parametrize("target, tolerance", [("generic-fp32", 0.0), ("generic-int8", 2.0)])
def test_kws_lstm_accuracy_through_generated_c(target, tolerance):
    """The LSTM keyword spotter (docs/zoo.md) through the generated C: fp32 classifies every
    clip as onnxruntime does; int8 (QLSTM + QGemm, no float node) stays within 2 points."""
    tool = load_tool()
    accuracy, reason = tool.edgec_kws_accuracy(ZOO_DIR, target)
    assert accuracy is not None, reason
    data = np.load(ZOO_DIR / "kws_test.npz")
    ort_accuracy = tool.onnxruntime_accuracy(ZOO_DIR / "kws_lstm.onnx", data["x"], data["y"])
    assert abs(accuracy - ort_accuracy) <= tolerance, (accuracy, ort_accuracy)
    assert accuracy >= 90.0


@pytest.mark.slow
def test_kws_lstm_regenerates_same_graph_and_data_on_another_host(tmp_path):
    """docs/zoo.md: on another host's float kernels the KWS model keeps its graph and data
    (its trained weights differ: the training diverges, measured and stated there)."""
    tool = load_tool()
    subprocess.run([sys.executable, str(TOOL), "--out", str(tmp_path), "--only", "kws_lstm"],
                   check=True, capture_output=True, env={**os.environ, **OTHER_HOST_ENV})
    m = tool.ZOO["kws_lstm"]
    assert tool.structure_sha256(tmp_path / m.file) == tool.structure_sha256(ZOO_DIR / m.file)
    for extra in m.extra_files:
        assert sha256(tmp_path / extra) == sha256(ZOO_DIR / extra), f"{extra} differs"


def test_digits_data_files(zoo_dir):
    test = np.load(zoo_dir / "digits_test.npz")
    calib = np.load(zoo_dir / "digits_calib.npz")
    assert sorted(test.files) == ["x", "y"] and sorted(calib.files) == ["x", "y"]
    assert len(test["y"]) == 540  # 30% of sklearn's 1797 digits
    for arrays in (test, calib):
        assert arrays["x"].dtype == np.float32 and arrays["y"].dtype == np.int64
        assert 0.0 <= arrays["x"].min() and arrays["x"].max() <= 1.0
    # The calibration data comes from the training split: no test sample is in it.
    test_rows = {row.tobytes() for row in test["x"].reshape(len(test["x"]), -1)}
    leaked = sum(row.tobytes() in test_rows for row in calib["x"].reshape(len(calib["x"]), -1))
    assert leaked <= 2  # sklearn's digits holds a few exact duplicate images


def test_committed_models_regenerate_on_another_host(tmp_path):
    """docs/zoo.md, Reproducibility: built with other float kernels (torch's scalar ones, as
    on a CPU other than the recording host's), every committed model has the same graph, the
    data files the same bytes and the weights are within the model's weights_rtol."""
    tool = load_tool()
    subprocess.run([sys.executable, str(TOOL), "--out", str(tmp_path), "--only",
                    ",".join(SMALL)], check=True, capture_output=True,
                   env={**os.environ, **OTHER_HOST_ENV})
    for name in SMALL:
        m = tool.ZOO[name]
        new, old = tmp_path / m.file, ZOO_DIR / m.file
        assert tool.structure_sha256(new) == tool.structure_sha256(old), f"{m.file}: graph"
        assert tool.weights_difference(new, old) <= m.weights_rtol, m.file
        for extra in m.extra_files:
            assert sha256(tmp_path / extra) == sha256(ZOO_DIR / extra), f"{extra} differs"


@pytest.mark.slow
def test_zoo_builds_byte_identical_twice_on_one_host(tmp_path):
    """Same host, same torch and onnx: the same bytes (seeds, one thread, deterministic
    algorithms, fixed zip timestamps)."""
    for run in ("a", "b"):
        subprocess.run([sys.executable, str(TOOL), "--out", str(tmp_path / run), "--only",
                        "dscnn"], check=True, capture_output=True)
    assert sha256(tmp_path / "a" / "dscnn.onnx") == sha256(tmp_path / "b" / "dscnn.onnx")


@pytest.mark.slow
def test_mobilenetv2_matches_recorded_graph_and_weights(zoo_dir):
    tool = load_tool()
    path = zoo_dir / "mobilenetv2.onnx"
    assert tool.structure_sha256(path) == tool.EXPECTED_STRUCTURE_SHA256["mobilenetv2.onnx"]
    want = tool.EXPECTED_WEIGHTS_L2["mobilenetv2.onnx"]
    assert abs(tool.weights_l2(path) - want) <= tool.UNTRAINED_WEIGHTS_RTOL * want


def test_zoo_doc_records_current_hashes():
    doc = (REPO / "docs" / "zoo.md").read_text()
    for name in COMMITTED_FILES:
        assert f"{sha256(ZOO_DIR / name)}  {name}" in doc, f"docs/zoo.md: stale hash of {name}"
    want = load_tool().EXPECTED_SHA256["mobilenetv2.onnx"]
    assert f"{want}  mobilenetv2.onnx" in doc
    structure = load_tool().EXPECTED_STRUCTURE_SHA256["mobilenetv2.onnx"]
    assert f"{structure}  mobilenetv2.onnx (graph only)" in doc


def test_zoo_docs_keep_the_trained_mobilenetv2_section(tmp_path):
    """`make_models.py --docs` rewrites its own sections and keeps the hand-written one about
    mobilenetv2_trained.onnx (its numbers come from tools/make_trained_mobilenetv2.py)."""
    tool = load_tool()
    doc = tmp_path / "zoo.md"
    assert tool.kept_section(doc) == ""
    doc.write_text(f"old generated text\n{tool.KEPT_BEGIN}\n## Trained\nfigures\n"
                   f"{tool.KEPT_END}\n")
    kept = tool.kept_section(doc)
    assert kept.strip().startswith(tool.KEPT_BEGIN) and "figures" in kept
    assert "old generated text" not in kept
    assert tool.KEPT_BEGIN in (REPO / "docs" / "zoo.md").read_text()
