"""edgec.prune_model and edgec.golden_record / golden_check from Python."""

from __future__ import annotations

import json

import numpy as np
import pytest

import edgec
from edgec.errors import EdgecError
from edgec.interp import run_graph
from edgec.workbench.compare import onnxruntime_outputs
from tests.api.conftest import DIGITS


def test_prune_model_from_arrays_compiles_smaller_and_agrees(digits_calib):
    result = edgec.prune_model(DIGITS, ratio=0.25, calib=digits_calib)
    assert result.report["samples"] + result.report["eval_samples"] == 64  # calib_limit
    assert result.report["snr_db_after_recovery"] > result.report["snr_db_before_recovery"]
    full = edgec.compile(DIGITS, "generic-fp32")
    pruned = edgec.compile(result.model, "generic-fp32", name="digits_pruned")
    assert pruned.report.macs < 0.75 * full.report.macs
    x = digits_calib[:1]
    got = run_graph(pruned.result.graph, {"x": x})["logits"]  # edgec's compiled graph
    want = onnxruntime_outputs(result.model, {"x": x})["logits"]  # vs onnxruntime
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_prune_model_refuses_bad_arguments():
    with pytest.raises(EdgecError, match="exactly one"):
        edgec.prune_model(DIGITS)
    with pytest.raises(EdgecError, match="criterion"):
        edgec.prune_model(DIGITS, ratio=0.5, criterion="random")


@pytest.mark.toolchain
def test_golden_record_then_check_catches_a_change(tmp_path, digits_calib):
    case, rows = edgec.golden_record(DIGITS, "generic-int8", tmp_path, inputs=digits_calib[:3],
                                     calib=digits_calib)
    assert [r.status for r in rows] == ["recorded"]
    assert (tmp_path / "digits_cnn.calib.npz").exists()  # Python calibration, replayable
    # the unchanged case passes: docs/api.md's golden example (tests/api/test_docs_api.py)
    manifest = case / "edgec-golden.json"
    data = json.loads(manifest.read_text())
    data["targets"]["generic-int8"]["options"]["calib_method"] = "percentile"  # replay differs
    manifest.write_text(json.dumps(data))
    check = edgec.golden_check(tmp_path)
    assert [r.status for r in check.results] == ["regression"] and not check.ok
    assert "regression" in check._repr_html_()


def test_golden_record_needs_a_model_file(tmp_path):
    import onnx

    with pytest.raises(EdgecError, match="model file"):
        edgec.golden_record(onnx.load(DIGITS), "generic-fp32", tmp_path)


def test_distill_is_the_library_function():
    """edgec.distill is edgec prune --train's distillation (tested in tests/prune)."""
    from edgec.prune.distill import distill

    assert edgec.distill is distill
    assert "distill" in edgec.__all__
