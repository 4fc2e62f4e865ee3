"""tools/tflite_compare.py's own logic, fast: the TFLM arena it reads from tflite-micro, the
rows it flags as behind onnx2tf, and its section's shape (onnx2tf itself is not run here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from tflite_tiny import int8_conv

pytest.importorskip("tflite_micro")
TOOL = Path(__file__).resolve().parents[2] / "tools" / "tflite_compare.py"
_spec = importlib.util.spec_from_file_location("tflite_compare", TOOL)
tc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tc)


def test_tflm_arena_of_a_tiny_conv_is_its_two_activations():
    """1x8x8x4 int8 in and out, both live during the one CONV_2D: 256 + 256 bytes."""
    arena = tc.tflm_arena(int8_conv())
    assert arena["tensors"] == 2 * 8 * 8 * 4
    assert arena["total"] > arena["tensors"]  # plus the interpreter's persistent data


def _row(model="m", **edgec):
    stats = {"ops": 10, "transposes": 0, "bytes": 1000, "nnapi_12": 8, "gpu": 10}
    theirs = dict(stats, transposes=1, bytes=1200)
    return {"model": model, "edgec": dict(stats, **edgec), "edgec_s": 1.0, "onnx2tf": theirs,
            "onnx2tf_s": 2.0}


def test_behind_lists_only_rows_where_edgec_is_worse():
    assert tc._behind([_row()]) == []
    assert tc._behind([_row(bytes=1300)]) == ["m: file size 1,300 vs 1,200"]
    # NNAPI: refused operators count, not the share (one more QUANTIZE is not a loss)
    assert tc._behind([_row(ops=11, nnapi_12=9, gpu=11)]) == ["m: operators 11 vs 10"]
    assert tc._behind([_row(nnapi_12=7)]) == ["m: NNAPI 1.2 ops 7 vs 8"]


def test_section_has_markers_and_the_failure_reason():
    row = dict(_row(), onnx2tf_mode="per-tensor",
               onnx2tf_error="ValueError: quantized_dimension bad.Tensor 7 has ...",
               tflm_int8={"tensors": 512, "total": 1536}, tflm_fp32={}, c_arena_int8=512,
               c_arena_fp32=2048)
    text = tc.markdown([row], {"cpu": "test cpu", "cores": 2}, "2.6.9", "")
    assert text.startswith(tc.BEGIN) and text.rstrip().endswith(tc.END)
    assert "| m | onnx2tf per-tensor | 2.0 s | 10 | 1 | 1,200 B |" in text
    assert "failed on m (ValueError: quantized_dimension bad)" in text
    assert "| m | 512 B | 512 B / 1,536 B |" in text
