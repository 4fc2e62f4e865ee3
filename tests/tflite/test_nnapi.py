"""NNAPI delegate rules (codegen/tflite/nnapi.py): each rule tripped by a tiny .tflite built
here with the schema object API, and its twin with the one offending feature fixed accepted.

The rules come from TFLite's nnapi_delegate.cc Validate(); the models are real flatbuffers
(the accepted twins are also loaded by LiteRT's interpreter where LiteRT has the kernel).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tflite_tiny import int8_conv, one_op, options

from edgec.codegen.tflite.compat import compat_sections, compat_text, require_nnapi_level
from edgec.codegen.tflite.compat_view import read_ops
from edgec.codegen.tflite.gpu import GPU_RULES
from edgec.codegen.tflite.nnapi import RULES, refusals
from edgec.errors import EdgecError, ModelLoadError, UnsupportedError

schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
Act = schema.ActivationFunctionType


def f32(shape, **kw):
    """A float32 tensor spec."""
    return {"shape": shape, **kw}


def q8(shape, dtype="int8", scale=0.1, zp=0, **kw):
    """A quantised tensor spec."""
    return {"shape": shape, "dtype": dtype, "scale": scale, "zero_point": zp, **kw}


def const(shape, values, dtype="int32"):
    """A constant tensor spec."""
    return {"shape": shape, "dtype": dtype, "data": values}


def add(act=Act.NONE, dtype="float32"):
    spec = f32([1, 4]) if dtype == "float32" else {"shape": [1, 4], "dtype": dtype}
    return one_op("ADD", [spec, spec], [spec], options("AddOptions",
                                                      fusedActivationFunction=act))


def avg_pool(window):
    return one_op("AVERAGE_POOL_2D", [q8([1, 20, 20, 2])], [q8([1, 1, 1, 2])],
                  options("Pool2DOptions", padding=schema.Padding.VALID, strideW=1,
                          strideH=1, filterWidth=window, filterHeight=window), version=2)


def softmax(shape, dtype="float32"):
    spec = {"shape": shape, "dtype": dtype}
    if dtype == "int8":
        spec.update(scale=1 / 256, zero_point=-128)
    return one_op("SOFTMAX", [spec], [spec], options("SoftmaxOptions", beta=1.0),
                  version=2 if dtype == "int8" else 1)


def fc(keep=False, out_dtype="float32"):
    dt = out_dtype
    x = f32([2, 4]) if dt == "float32" else q8([2, 4], dtype=dt, scale=0.1)
    w = const([3, 4], np.ones((3, 4)), "float32" if dt == "float32" else "int8")
    if dt != "float32":
        w.update(scale=0.1, zero_point=0)
    b = const([3], np.zeros(3), "float32" if dt == "float32" else "int32")
    y = f32([2, 3]) if dt == "float32" else q8([2, 3], dtype=dt, scale=0.2)
    return one_op("FULLY_CONNECTED", [x, w, b], [y],
                  options("FullyConnectedOptions", keepNumDims=keep))


def reshape(shape_const=True):
    shape = const([2], [2, 8]) if shape_const else {"shape": [2], "dtype": "int32"}
    return one_op("RESHAPE", [f32([4, 4]), shape], [f32([2, 8])])


def resize(out_hw=(8, 8), size_const=True, rank=4, align=False):
    in_shape = [1, 4, 4, 3] if rank == 4 else [4, 4, 3]
    size = const([2], list(out_hw)) if size_const else {"shape": [2], "dtype": "int32"}
    return one_op("RESIZE_BILINEAR", [f32(in_shape), size], [f32([1, *out_hw, 3])],
                  options("ResizeBilinearOptions", alignCorners=align))


def concat(act=Act.NONE, scales=(0.1, 0.1)):
    ins = [q8([1, 2], dtype="uint8", scale=s, zp=128) for s in scales]
    return one_op("CONCATENATION", ins, [q8([1, 4], dtype="uint8", scale=0.1, zp=128)],
                  options("ConcatenationOptions", axis=1, fusedActivationFunction=act))


def pad(n_inputs=2):
    ins = [f32([1, 2, 2, 1]), const([4, 2], np.ones((4, 2)))][:max(n_inputs, 1)]
    if n_inputs == 3:
        ins.append(const([], [0.0], "float32"))
    return one_op("PADV2" if n_inputs == 3 else "PAD", ins, [f32([3, 4, 4, 3])])


def transpose(perm_const=True):
    perm = const([2], [1, 0]) if perm_const else {"shape": [2], "dtype": "int32"}
    return one_op("TRANSPOSE", [f32([2, 3]), perm], [f32([3, 2])])


def mean(out_shape):
    return one_op("MEAN", [f32([1, 4, 4, 3]), const([2], [1, 2])], [f32(out_shape)],
                  options("ReducerOptions", keepDims=len(out_shape) == 4))


def quantize(out_dtype="int8", out_scale=0.1, in_spec=None):
    return one_op("QUANTIZE", [in_spec or f32([1, 4])],
                  [q8([1, 4], dtype=out_dtype, scale=out_scale,
                      zp=128 if out_dtype == "uint8" else 0)])


def dequantize(zp):
    return one_op("DEQUANTIZE", [q8([1, 4], zp=zp)], [f32([1, 4])], version=2)


def prelu():
    return one_op("PRELU", [f32([1, 4]), const([4], np.ones(4), "float32")], [f32([1, 4])])


def gather_nd():
    return one_op("GATHER_ND", [f32([4, 3]), const([2, 1], [[0], [2]])], [f32([2, 3])])


def hybrid_conv(weights="int8"):
    w = const([2, 1, 1, 2], np.ones((2, 1, 1, 2)), weights)
    if weights == "int8":
        w.update(scale=0.1, zero_point=0)
    return one_op("CONV_2D", [f32([1, 2, 2, 2]), w, const([2], np.zeros(2), "float32")],
                  [f32([1, 2, 2, 2])], options("Conv2DOptions", strideW=1, strideH=1,
                                               dilationWFactor=1, dilationHFactor=1),
                  version=2 if weights == "int8" else 1)


def conv_version(version):
    m = int8_conv()
    ops = schema.ModelT.InitFromPackedBuf(m, 0)
    ops.operatorCodes[0].version = version
    import flatbuffers
    b = flatbuffers.Builder(1024)
    b.Finish(ops.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def cast(out_dtype):
    out = f32([1, 4]) if out_dtype == "float32" else {"shape": [1, 4], "dtype": out_dtype}
    if out_dtype in ("int8", "uint8"):
        out.update(scale=0.1)
    return one_op("CAST", [f32([1, 4])], [out])


def gather(scalar_positions):
    pos = const([], [1]) if scalar_positions else const([2], [0, 2])
    return one_op("GATHER", [f32([4, 3]), pos], [f32([3] if scalar_positions else [2, 3])],
                  options("GatherOptions", axis=0))


# rule name -> (API level, model that trips it, model fixed in that one respect)
CASES = {
    "unmapped-op": (30, gather_nd, lambda: transpose()),
    "op-version": (30, lambda: conv_version(6), lambda: conv_version(5)),
    "op-needs-newer-nnapi": (28, prelu, lambda: pad()),
    "input-type": (28, lambda: int8_conv(per_channel=False),
                   lambda: int8_conv(per_channel=False, dtype="uint8")),
    "hybrid-before-1.2": (28, hybrid_conv, lambda: hybrid_conv("float32")),
    "per-channel-before-1.2": (28, lambda: int8_conv(dtype="uint8", per_channel=True),
                               lambda: int8_conv(dtype="uint8", per_channel=False)),
    "uint8-scales-1.0": (28, lambda: int8_conv(dtype="uint8", per_channel=False,
                                               in_scale=0.5, w_scale=0.5, out_scale=0.1),
                         lambda: int8_conv(dtype="uint8", per_channel=False)),
    "missing-bias": (30, lambda: int8_conv(bias=False), lambda: int8_conv()),
    "dilation-before-1.2": (28, lambda: int8_conv(dtype="uint8", per_channel=False,
                                                  dilation=2),
                            lambda: int8_conv(dtype="uint8", per_channel=False)),
    "avg-pool-window": (30, lambda: avg_pool(17), lambda: avg_pool(16)),
    "fused-activation": (30, lambda: add(Act.TANH), lambda: add(Act.RELU6)),
    "int32-activation": (30, lambda: add(Act.RELU, "int32"), lambda: add(dtype="int32")),
    "rank-over-4": (30, lambda: softmax([1, 1, 2, 2, 4]), lambda: softmax([1, 2, 2, 4])),
    "fc-keep-num-dims": (29, lambda: fc(keep=True), lambda: fc()),
    "fc-int16-output": (30, lambda: fc(out_dtype="int16"), lambda: fc(out_dtype="int8")),
    "softmax-rank-before-1.2": (28, lambda: softmax([1, 2, 4]), lambda: softmax([2, 4])),
    "softmax-output-type": (30, lambda: softmax([2, 4], "int16"),
                            lambda: softmax([2, 4], "int8")),
    "reshape-shape-const": (30, lambda: reshape(False), lambda: reshape()),
    "resize-size-const": (30, lambda: resize(size_const=False), lambda: resize()),
    "resize-rank": (30, lambda: resize(rank=3), lambda: resize()),
    "resize-square-before-1.2": (28, lambda: resize((4, 8)), lambda: resize((8, 8))),
    "resize-align-corners": (29, lambda: resize(align=True), lambda: resize()),
    "concat-activation": (30, lambda: concat(Act.RELU), lambda: concat()),
    "concat-mixed-quant-before-1.2": (28, lambda: concat(scales=(0.1, 0.2)),
                                      lambda: concat()),
    "pad-inputs": (30, lambda: pad(1), lambda: pad()),
    "pad-value-before-1.2": (28, lambda: pad(3), lambda: pad()),
    "transpose-perm-const": (30, lambda: transpose(False), lambda: transpose()),
    "mean-scalar-output": (30, lambda: mean([]), lambda: mean([1, 1, 1, 3])),
    "quantize-int8-output": (29, lambda: quantize("int8"), lambda: quantize("uint8")),
    "quantize-scale": (30, lambda: quantize(out_scale=0.0), lambda: quantize()),
    "quantize-input-type": (30, lambda: quantize(in_spec={"shape": [1, 4],
                                                          "dtype": "int32"}),
                            lambda: quantize(in_spec=q8([1, 4], scale=0.2))),
    "dequantize-int8-asymmetric-1.2": (29, lambda: dequantize(5), lambda: dequantize(0)),
    "cast-output-type": (29, lambda: cast("int8"), lambda: cast("int32")),
    "gather-positions": (29, lambda: gather(True), lambda: gather(False)),
}


def test_every_rule_has_a_case():
    """No rule goes untested: the table above names each registered rule once."""
    assert sorted(CASES) == sorted(r.name for r in RULES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_trips_and_twin_passes(name):
    level, trips, passes = CASES[name]
    (bad,) = read_ops(trips())
    assert name in [r.name for r in refusals(bad, level)]
    (good,) = read_ops(passes())
    assert refusals(good, level) == [], [r.name for r in refusals(good, level)]


def test_rule_reasons_are_one_line():
    for r in RULES:
        assert r.reason and "\n" not in r.reason and len(r.reason) < 100, r.name


@pytest.mark.parametrize("name", ["missing-bias", "avg-pool-window", "fused-activation",
                                  "input-type", "dilation-before-1.2", "quantize-int8-output"])
def test_accepted_twins_run_in_litert(name):
    """The accepted models are real TFLite: LiteRT allocates and runs them."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=CASES[name][2]())
    it.allocate_tensors()
    it.invoke()


def test_feature_levels_of_an_int8_per_channel_conv():
    """int8 per-channel CONV_2D: refused by NNAPI 1.0/1.1, accepted from 1.2 on."""
    sections = compat_sections(int8_conv())
    row = sections["nnapi"]["ops"][0]
    assert row["accepted"] == {"27": False, "28": False, "29": True, "30": True, "31": True}
    assert [x["rule"] for x in row["refused_by"]["27"]] == ["input-type",
                                                           "per-channel-before-1.2"]
    assert sections["gpu"]["ops"][0]["accepted"]
    text = compat_text(sections)
    assert "CONV_2D" in text and "per-channel-before-1.2" in text


def test_require_level_names_the_refused_ops():
    with pytest.raises(UnsupportedError, match=r"API level 27 .* refuses 1 of 1 .*#0 CONV_2D "
                                               r"\(input-type, per-channel-before-1.2\)"):
        require_nnapi_level(int8_conv(), 27)
    require_nnapi_level(int8_conv(), 29)  # accepted: no error
    with pytest.raises(EdgecError, match="starts at API level 27"):
        require_nnapi_level(int8_conv(), 26)


def test_not_a_tflite_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="not a TFLite flatbuffer"):
        read_ops(b"\x08\x00\x00\x00ONNX and then some")


def test_docs_name_every_rule():
    """docs/nnapi.md lists each NNAPI and GPU rule by name."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "nnapi.md").read_text()
    missing = [r.name for r in [*RULES, *GPU_RULES] if f"`{r.name}`" not in text]
    assert missing == []


def test_fp16_dequantize_of_weights_is_pruned_of_activations_needs_13():
    """Constant fp16 -> fp32 DEQUANTIZE (tflite-fp16 weights): the delegate folds it at any
    level; on an activation Validate takes it from NNAPI 1.3."""
    weights = one_op("DEQUANTIZE", [const([2, 2], np.ones((2, 2)), "float16")], [f32([2, 2])])
    (op,) = read_ops(weights)
    assert all(refusals(op, level) == [] for level in (27, 29, 30, 31))
    acts = one_op("DEQUANTIZE", [{"shape": [2, 2], "dtype": "float16"}], [f32([2, 2])])
    (op,) = read_ops(acts)
    assert [r.name for r in refusals(op, 29)] == ["input-type"]
    assert refusals(op, 30) == []
