"""GPU delegate rules (codegen/tflite/gpu.py): each rule tripped by a tiny .tflite built here,
its twin with the offending feature fixed accepted; and what LiteRT's own analyzer says.

The rules come from TFLite's tools/versioning/gpu_compatibility.cc.
"""

from __future__ import annotations

import numpy as np
import pytest
from tflite_tiny import int8_conv, one_op, options

from edgec.codegen.tflite.compat import compat_sections
from edgec.codegen.tflite.compat_view import read_ops
from edgec.codegen.tflite.gpu import GPU_RULES, gpu_refusals, litert_analyzer_verdict

schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
Act = schema.ActivationFunctionType


def f32(shape, **kw):
    """A float32 tensor spec."""
    return {"shape": shape, **kw}


def const(shape, values, dtype="int32"):
    """A constant tensor spec."""
    return {"shape": shape, "dtype": dtype, "data": values}


def cf32(shape):
    """A constant float32 tensor of ones."""
    return const(shape, np.ones(shape), "float32")


def conv(stride=1, runtime_weights=False):
    w = f32([2, 1, 1, 2]) if runtime_weights else cf32([2, 1, 1, 2])
    b = f32([2]) if runtime_weights else cf32([2])
    return one_op("CONV_2D", [f32([1, 2, 2, 2]), w, b], [f32([1, 2, 2, 2])],
                  options("Conv2DOptions", strideW=stride, strideH=1, dilationWFactor=1,
                          dilationHFactor=1))


def depthwise(mult):
    return one_op("DEPTHWISE_CONV_2D", [f32([1, 4, 4, 2]), cf32([1, 3, 3, 2 * mult]),
                                        cf32([2 * mult])], [f32([1, 4, 4, 2 * mult])],
                  options("DepthwiseConv2DOptions", strideW=1, strideH=1,
                          depthMultiplier=mult, dilationWFactor=1, dilationHFactor=1))


def add(n_inputs=2):
    return one_op("ADD", [f32([1, 4])] * n_inputs, [f32([1, 4])], options("AddOptions"))


def mul(a=(1, 4, 4), b=(1, 1, 4), act=Act.NONE):
    return one_op("MUL", [f32(list(a)), f32(list(b))], [f32([1, 4, 4])],
                  options("MulOptions", fusedActivationFunction=act))


def reshape(shape_const=True):
    shape = const([2], [2, 8]) if shape_const else {"shape": [2], "dtype": "int32"}
    return one_op("RESHAPE", [f32([4, 4]), shape], [f32([2, 8])])


def tanh(const_input=False):
    return one_op("TANH", [cf32([1, 4]) if const_input else f32([1, 4])], [f32([1, 4])])


def sub(const_a=True):
    a = cf32([1, 4]) if const_a else f32([1, 4])
    return one_op("SUB", [a, cf32([1, 4])], [f32([1, 4])], options("SubOptions"))


def fc(weights_format=0):
    return one_op("FULLY_CONNECTED", [f32([2, 4]), cf32([3, 4]), cf32([3])], [f32([2, 3])],
                  options("FullyConnectedOptions", weightsFormat=weights_format))


def mean(axes_const=True):
    axes = const([2], [1, 2]) if axes_const else {"shape": [2], "dtype": "int32"}
    return one_op("MEAN", [f32([1, 4, 4, 3]), axes], [f32([1, 1, 1, 3])],
                  options("ReducerOptions", keepDims=True))


def dequantize(dtype):
    return one_op("DEQUANTIZE", [{"shape": [1, 4], "dtype": dtype, "scale": 0.1}],
                  [f32([1, 4])], version=2)


def softmax(beta):
    return one_op("SOFTMAX", [f32([1, 4])], [f32([1, 4])], options("SoftmaxOptions",
                                                                    beta=beta))


def pad(rank):
    return one_op("PAD", [f32([2, 2] if rank == 2 else [1, 2, 2, 1]),
                          const([rank, 2], np.ones((rank, 2)))],
                  [f32([4, 4] if rank == 2 else [3, 4, 4, 3])])


def resize(half_pixel):
    return one_op("RESIZE_BILINEAR", [f32([1, 4, 4, 3]), const([2], [8, 8])],
                  [f32([1, 8, 8, 3])], options("ResizeBilinearOptions", alignCorners=True,
                                               halfPixelCenters=half_pixel))


def slice_op(rank):
    shape = [4, 4] if rank == 2 else [1, 4, 4]
    return one_op("SLICE", [f32(shape), const([rank], [0] * rank), const([rank], [1] * rank)],
                  [f32([1] * rank)])


def gather(idx_shape):
    idx = const(idx_shape, np.zeros(idx_shape))
    return one_op("GATHER", [f32([4, 3]), idx], [f32([*idx_shape, 3])],
                  options("GatherOptions", axis=0))


def cast(in_dtype):
    x = f32([1, 4]) if in_dtype == "float32" else {"shape": [1, 4], "dtype": in_dtype}
    return one_op("CAST", [x], [{"shape": [1, 4], "dtype": "int32"}])


def gather_nd():
    return one_op("GATHER_ND", [f32([4, 3]), const([2, 1], [[0], [2]])], [f32([2, 3])])


CASES = {
    "unsupported-op": (gather_nd, lambda: gather([2])),
    "two-inputs": (lambda: add(1), add),
    "one-runtime-input": (lambda: reshape(False), reshape),
    "unary-inputs": (lambda: tanh(True), tanh),
    "binary-inputs": (sub, lambda: sub(False)),
    "conv-inputs": (lambda: conv(runtime_weights=True), conv),
    "stride-dilation": (lambda: conv(stride=0), conv),
    "fused-activation": (lambda: mul(act=Act.SIGN_BIT), lambda: mul(act=Act.RELU)),
    "depthwise-shapes": (lambda: depthwise(2), lambda: depthwise(1)),
    "fc-weights": (lambda: fc(1), fc),
    "mean-axes": (lambda: mean(False), mean),
    "mul-broadcast": (lambda: mul((1, 4, 1), (1, 1, 4)), mul),
    "dequantize-int16": (lambda: dequantize("int16"), lambda: dequantize("int8")),
    "softmax-beta": (lambda: softmax(2.0), lambda: softmax(1.0)),
    "pad-shape": (lambda: pad(2), lambda: pad(4)),
    "resize-flags": (lambda: resize(True), lambda: resize(False)),
    "slice-rank": (lambda: slice_op(2), lambda: slice_op(3)),
    "gather-indices": (lambda: gather([2, 1]), lambda: gather([2])),
    "cast-types": (lambda: cast("int8"), lambda: cast("float32")),
}


def test_every_rule_has_a_case():
    assert sorted(CASES) == sorted(r.name for r in GPU_RULES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gpu_rule_trips_and_twin_passes(name):
    trips, passes = CASES[name]
    (bad,) = read_ops(trips())
    assert name in [r.name for r in gpu_refusals(bad)]
    (good,) = read_ops(passes())
    assert gpu_refusals(good) == [], [r.name for r in gpu_refusals(good)]


def test_int8_per_channel_conv_is_gpu_compatible():
    section = compat_sections(int8_conv())["gpu"]
    assert section["accepted"] == section["operators"] == 1
    assert section["litert_analyzer"]["available"]
    assert section["litert_analyzer"]["compatible"]


def test_litert_analyzer_misses_what_the_rules_refuse():
    """Canary: ai-edge-litert 2.3.0's analyzer calls GATHER_ND (no GPU kernel) compatible,
    which is why gpu.py applies gpu_compatibility.cc's rules itself. If this fails, the
    wheel's analyzer checks GPU ops again and gpu.py can defer to it."""
    data = gather_nd()
    assert [r.name for r in gpu_refusals(read_ops(data)[0])] == ["unsupported-op"]
    assert litert_analyzer_verdict(data)["compatible"] is True


def test_corrupt_files_give_a_clear_error_or_a_verdict():
    """Damaged .tflite bytes: a ModelLoadError, or sections (the C++ analyzer, which crashes
    on some damaged files, runs in a child process and only reports it)."""
    from edgec.errors import ModelLoadError

    good = bytearray(int8_conv())
    rng = np.random.default_rng(0)
    for i in range(24):
        bad = bytearray(good)
        for _ in range(3):
            bad[8 + int(rng.integers(len(bad) - 8))] = int(rng.integers(256))
        if i % 4 == 0:
            bad = bad[:int(rng.integers(8, len(bad)))]
        try:
            sections = compat_sections(bytes(bad))
        except ModelLoadError:
            continue
        assert sections["gpu"]["litert_analyzer"]["available"]
