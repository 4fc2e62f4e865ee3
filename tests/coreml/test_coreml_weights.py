"""Where the bytes of a coreml-int8 weight file go: per-channel int8 weights and fp16 scales
and biases as payload, one 64-byte record per blob of >= 10 elements, 64-byte alignment
(codegen/coreml/weight_file.py). The payload is what int8 shrinks; the records are not."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import make_model
from onnx import helper

from edgec.compiler import CompileOptions, compile_model

CHANNELS, IN_CHANNELS = 64, 8


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    rng = np.random.default_rng(1)
    w1 = rng.standard_normal((CHANNELS, IN_CHANNELS, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((CHANNELS, CHANNELS, 1, 1)).astype(np.float32)
    b1, b2 = (rng.standard_normal(CHANNELS).astype(np.float32) for _ in range(2))
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["h"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Conv", ["r", "w2", "b2"], ["y"])]
    model = make_model(nodes, {"x": ("float32", (1, IN_CHANNELS, 5, 5))},
                       {"y": ("float32", (1, CHANNELS, 5, 5))},
                       {"w1": w1, "w2": w2, "b1": b1, "b2": b2})
    path = tmp_path_factory.mktemp("weights") / "two_convs.onnx"
    onnx.save(model, str(path))
    return {t: compile_model(path, CompileOptions(target=t)).report
            for t in ("coreml-fp32", "coreml-int8")}


def test_weight_file_bytes_add_up(reports):
    weights = CHANNELS * IN_CHANNELS * 9 + CHANNELS * CHANNELS
    for target, blobs, by_dtype in (
            ("coreml-fp32", 4, {"float32": 4 * (weights + 2 * CHANNELS)}),
            # int8 weights; fp16 per-channel scales and fp16 biases (fp16 compute)
            ("coreml-int8", 6, {"int8": weights, "float16": 2 * 4 * CHANNELS})):
        r = reports[target]
        layout = r["weights_layout"]
        assert layout["blobs"] == blobs and layout["payload_by_dtype"] == by_dtype, target
        assert layout["header_bytes"] == 64 + 64 * blobs
        assert 0 <= layout["padding_bytes"] < 64 * blobs
        assert r["weights_bytes"] == (layout["payload_bytes"] + layout["header_bytes"]
                                      + layout["padding_bytes"])


def test_int8_payload_is_a_quarter_and_overhead_is_per_blob(reports):
    f32, i8 = reports["coreml-fp32"], reports["coreml-int8"]
    payload_ratio = i8["weights_layout"]["payload_bytes"] / f32["weights_layout"]["payload_bytes"]
    assert 0.26 <= payload_ratio <= 0.27  # 8 704 int8 + 512 fp16 vs 8 832 fp32 values
    # on a 35 KB model six 64-byte records (two more than fp32's four: the scales) and the
    # alignment push the file over 0.27x: what DS-CNN shows (docs/coreml.md)
    file_ratio = i8["weights_bytes"] / f32["weights_bytes"]
    assert 0.27 < file_ratio < payload_ratio + 0.015
