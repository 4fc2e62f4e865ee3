"""ONNX backend node tests through coreml-fp32 (tools/coreml_conformance.py): the package's
MIL program, evaluated in numpy, must give each case's expected outputs (onnx's own
reference data, an oracle independent of edgec). A sample of cases of every family; the whole
subset (348 cases, ~4-8 min on 2 cores, too long for the suite) is
`python tools/coreml_conformance.py`, whose last run docs/coreml.md holds. Slow: collecting
the cases alone takes ~30 s."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import coreml_conformance  # noqa: E402

pytestmark = pytest.mark.slow

SAMPLE = (
    "test_conv_with_strides_and_asymmetric_padding", "test_maxpool_2d_ceil",
    "test_averagepool_2d_pads_count_include_pad", "test_globalaveragepool",
    "test_hardswish", "test_prelu_broadcast", "test_clip_default_min", "test_gelu_tanh_2",
    "test_slice_neg_steps", "test_constant_pad", "test_instancenorm_example",
    "test_resize_upsample_scales_linear", "test_resize_upsample_scales_nearest",
    "test_softmax_axis_0", "test_logsoftmax_large_number",
)
# Declined on purpose (one-line UnsupportedError), with the reason the back-end gives.
DECLINED = {
    "test_maxpool_2d_dilations": "dilations",
    "test_unsqueeze_three_axes": "rank <= 5",
    "test_layer_normalization_2d_axis0": "mean/inv-std outputs",
    "test_resize_downsample_scales_linear_align_corners": "fractional length 2.4",
}


@pytest.fixture(scope="module")
def cases():
    wanted = set(SAMPLE) | set(DECLINED)
    found = {c.name: c for c in coreml_conformance.cases_for() if c.name in wanted}
    assert set(found) == wanted, wanted - set(found)
    return found


@pytest.mark.parametrize("name", SAMPLE)
def test_case_passes(cases, name):
    status, detail = coreml_conformance.run_case(cases[name], "coreml-fp32")
    assert status == "passed", detail


@pytest.mark.parametrize("name", sorted(DECLINED))
def test_case_is_declined_in_one_line(cases, name):
    status, detail = coreml_conformance.run_case(cases[name], "coreml-fp32")
    assert status == "declined" and DECLINED[name] in detail and "\n" not in detail

