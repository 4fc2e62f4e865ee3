"""Resize through CoreML where `length_resized` is ambiguous: align_corners (also
tf_crop_and_resize, pytorch_half_pixel at one output) with `scales` that give a fractional
output length. onnxruntime divides by the integer length, onnx.reference and the ONNX node
tests by the fractional one, so the back-end refuses in one line naming the node and the
attribute instead of computing one of the two answers (the node tests counted that as a
mismatch); the same resize given by `sizes` is unambiguous and compiles."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import make_model
from onnx import helper
from onnx.reference import ReferenceEvaluator

from edgec.cli import main
from edgec.compiler import CompileOptions, compile_model
from edgec.ops.resize import fractional_length_conflict
from edgec.workbench.compare import onnxruntime_outputs

X = np.arange(1, 9, dtype=np.float32).reshape(1, 1, 2, 4)


def resize_model(*, scales=None, sizes=None, mode="linear") -> onnx.ModelProto:
    inits = {"roi": np.zeros(0, np.float32)}
    inputs = ["x", "roi"]
    if scales is not None:
        inits["scales"] = np.asarray(scales, np.float32)
        inputs.append("scales")
    else:
        inits["scales"] = np.zeros(0, np.float32)
        inits["sizes"] = np.asarray(sizes, np.int64)
        inputs += ["scales", "sizes"]
    node = helper.make_node("Resize", inputs, ["y"], name="the_resize", mode=mode,
                            coordinate_transformation_mode="align_corners")
    return make_model([node], {"x": ("float32", X.shape)}, {"y": ("float32", (1, 1, 1, 2))},
                      inits, opset=13)


def test_fractional_length_with_align_corners_is_one_line(tmp_path, capsys):
    path = tmp_path / "r.onnx"
    onnx.save(resize_model(scales=[1, 1, 0.6, 0.6]), str(path))
    code = main(["compile", str(path), "-t", "coreml-fp32", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("edgec: error: ")
    assert "'the_resize'" in err and "coordinate_transformation_mode=align_corners" in err
    assert "scales[3]=0.6" in err and "2.4" in err and "sizes" in err
    assert not (tmp_path / "o").exists()


def test_same_resize_by_sizes_compiles_and_matches_both_oracles(tmp_path):
    from edgec.workbench.coreml_verify import run_package

    model = resize_model(sizes=[1, 1, 1, 2])
    path = tmp_path / "r.onnx"
    onnx.save(model, str(path))
    result = compile_model(path, CompileOptions(target="coreml-fp32"))
    got = run_package(result, [{"x": X}], tmp_path / "pkg")[0]["y"]
    np.testing.assert_allclose(got, onnxruntime_outputs(path, {"x": X})["y"], rtol=1e-6)
    np.testing.assert_allclose(got, ReferenceEvaluator(model).run(None, {"x": X})[0],
                               rtol=1e-6)
    np.testing.assert_allclose(got, [[[[1.0, 4.0]]]])


@pytest.mark.parametrize("mode, scale, len_in, len_out, conflict", [
    ("align_corners", 0.6, 4, 2, True),           # 2.4: x_original 3 vs 2.14
    ("align_corners", 0.6, 2, 1, False),          # one output reads position 0 either way
    ("align_corners", 0.5, 4, 2, False),          # integer length
    ("align_corners", np.float32(3) / np.float32(7), 7, 3, False),  # from sizes: 2.9999999
    ("pytorch_half_pixel", 0.35, 4, 1, True),     # 1.4 > 1: the reference uses the formula
    ("pytorch_half_pixel", 0.6, 4, 2, False),     # the length is not used above one output
    ("half_pixel", 0.6, 4, 2, False),
    ("asymmetric", 0.6, 4, 2, False),
])
def test_fractional_length_conflict(mode, scale, len_in, len_out, conflict):
    attrs = {"coordinate_transformation_mode": mode, "scales": [float(scale)],
             "sizes": [len_out], "roi": []}
    width = fractional_length_conflict(attrs, 0, len_in, len_out)
    assert (width is not None) == conflict
    if conflict:
        assert width == pytest.approx(float(np.float32(scale)) * len_in)
