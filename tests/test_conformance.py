"""ONNX backend node tests, compiled by edgec to C, built, run and compared (see
tools/conformance.py for the claim rule and how a case runs; docs/conformance.md for results).

One test item per claimed case, named after the case. Claimed cases that fail today are listed
in KNOWN_FAILURES with a one-line reason and marked xfail(strict=True): a listed case that
starts passing fails the suite until it leaves the list, and an unlisted failure fails it too.
test_claimed_pass_rate checks the project goal, >= 98% of claimed cases pass, over every
claimed case: it reuses the results the per-case items of this session left in a temp dir and
runs whatever is missing itself (all cases when it runs alone).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import conformance  # noqa: E402

PASS_RATE_GOAL = 0.98

# Reviewed list: case name -> why it fails (one line each). Remove an entry when it passes.
KNOWN_FAILURES: dict[str, str] = {
    **dict.fromkeys([
        "test_training_dropout", "test_training_dropout_mask", "test_training_dropout_default",
        "test_training_dropout_default_mask",
    ], "Dropout in training mode with a non-zero ratio is random: declined"),
    **dict.fromkeys([
        "test_batchnorm_example_training_mode", "test_batchnorm_epsilon_training_mode",
    ], "BatchNormalization in training mode (batch statistics) is declined"),
    "test_convtranspose_3d": "3-D ConvTranspose has no C kernel",
    **dict.fromkeys([
        "test_maxpool_with_argmax_2d_precomputed_pads",
        "test_maxpool_with_argmax_2d_precomputed_strides",
    ], "MaxPool's optional Indices output is not supported"),
    **dict.fromkeys([
        "test_resize_downsample_scales_linear_align_corners",
        "test_resize_downsample_scales_cubic_align_corners",
    ], "Resize align_corners downsampling by scales differs from the ONNX reference"),
}


def _case_params() -> list:
    params = []
    for case in conformance.claimed_cases():
        marks = []
        if case.name in KNOWN_FAILURES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[case.name]))
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory) -> Path:
    """A directory this test session's workers share (results of the per-case items)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # pytest-N/popen-gwK: the parent belongs to this session only
    path = base / "conformance-results"
    path.mkdir(exist_ok=True)
    return path


def _record(results_dir: Path, result: conformance.CaseResult) -> None:
    target = results_dir / f"{result.case}.json"
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"status": result.status, "detail": result.detail}))
    os.replace(tmp, target)  # atomic: the summary never reads half a file


@pytest.mark.parametrize("case", _case_params())
def test_node_case(case, results_dir):
    result = conformance.run_case(case)
    _record(results_dir, result)
    assert result.passed, f"{result.status}: {result.detail}"


# Every case above runs under AddressSanitizer/UBSan (gcc); a few representative ones are
# also built with clang.
CHECKED_BUILD_CASES = [
    "test_conv_with_strides_and_asymmetric_padding", "test_gemm_all_attributes",
    "test_matmul_4d", "test_dropout_default_mask", "test_clip_default_int8_max",
    "test_where_example", "test_transpose_all_permutations_3",
    "test_range_float_type_positive_delta",
]


@pytest.mark.parametrize("cc,sanitize", [("clang", False)], ids=["clang"])
@pytest.mark.parametrize("name", CHECKED_BUILD_CASES)
def test_case_with_sanitizers_and_clang(name, cc, sanitize):
    case = next(c for c in conformance.collect_cases() if c.name == name)
    if case not in conformance.claimed_cases():
        pytest.skip(f"{name} is not claimed")
    result = conformance.run_case(case, sanitize=sanitize, cc=cc)
    assert result.passed, f"{result.status}: {result.detail}"


def test_compare_output_follows_assert_allclose_and_exact_integers():
    f = np.array([1.0, np.nan, 100.0], np.float32)
    assert conformance.compare_output("y", f, f.copy(), 1e-3, 1e-7) is None
    near = f * np.float32(1 + 5e-4)
    assert conformance.compare_output("y", near, f, 1e-3, 1e-7) is None
    off = f + np.float32([0, 0, 1])
    assert "1/3 values differ" in conformance.compare_output("y", off, f, 1e-3, 1e-7)
    assert "element type" in conformance.compare_output("y", f.astype(np.float64), f, 1, 1)
    assert "shape" in conformance.compare_output("y", f[:2], f, 1, 1)
    i = np.array([3, 4], np.int64)
    assert "exact" in conformance.compare_output("y", i + [0, 1], i, 1, 1)


def test_claim_rule_checks_data_types_but_not_index_parameters():
    def case(node, inputs, outputs):
        graph = helper.make_graph([node], "g", inputs, outputs)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        return SimpleNamespace(name="test_synthetic", model=model)

    def vi(name, elem):
        return helper.make_tensor_value_info(name, elem, [2])

    f32, i64, u16 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.UINT16
    equal = case(helper.make_node("Equal", ["a", "b"], ["y"]), [vi("a", f32), vi("b", f32)],
                 [vi("y", TensorProto.BOOL)])  # the bool output is a mask, not data
    assert conformance.claim(equal).claimed
    reshape = case(helper.make_node("Reshape", ["x", "s"], ["y"]), [vi("x", f32), vi("s", i64)],
                   [vi("y", f32)])
    assert conformance.claim(reshape).claimed
    uint16 = case(helper.make_node("Add", ["a", "b"], ["y"]), [vi("a", u16), vi("b", u16)],
                  [vi("y", u16)])
    assert conformance.claim(uint16).reasons == ["Add on uint16 is not supported"]
    missing = case(helper.make_node("Trilu", ["x"], ["y"]), [vi("x", f32)], [vi("y", f32)])
    assert not conformance.claim(missing).claimed


def test_known_failures_are_claimed_cases():
    claimed = {c.name for c in conformance.claimed_cases()}
    stale = sorted(set(KNOWN_FAILURES) - claimed)
    assert not stale, f"KNOWN_FAILURES names cases that are not claimed: {stale}"


def test_claimed_pass_rate(results_dir):
    cases = conformance.claimed_cases()
    assert cases, "no ONNX backend case is claimed"
    statuses: dict[str, str] = {}
    missing = []
    for case in cases:
        path = results_dir / f"{case.name}.json"
        if path.exists():
            statuses[case.name] = json.loads(path.read_text())["status"]
        else:
            missing.append(case)
    # A process pool only when this is the whole run (forking an xdist worker is avoidable).
    jobs = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2
    for result in conformance.run_all(missing, jobs=jobs):
        statuses[result.case] = result.status
    passed = sum(status == conformance.PASSED for status in statuses.values())
    rate = passed / len(cases)
    failed = sorted(name for name, status in statuses.items() if status != conformance.PASSED)
    assert rate >= PASS_RATE_GOAL, (
        f"{passed}/{len(cases)} claimed cases pass ({100 * rate:.1f}%), goal "
        f"{100 * PASS_RATE_GOAL:.0f}%; failing: {', '.join(failed)}"
    )
