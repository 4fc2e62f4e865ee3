"""Operator versions, by TFLite's own rules for the features an operator uses.

Source: tensorflow/lite/tools/versioning/op_version.cc (GetBuiltinOperatorVersion), which
the TFLite converter runs on every operator; a runtime refuses an operator whose version it
does not register, so the version says which kernels (and which NNAPI/GPU delegate rules)
apply. Only the cases edgec can emit are transcribed: each row is (feature test, version),
tried in order, first match wins, else version 1. Types are numpy names ("int8", "float32").
"""

from __future__ import annotations

from typing import Callable

# Recorded as the "min_runtime_version" metadata. TFLite's converter computes it per operator
# version (tensorflow/lite/tools/versioning/runtime_version.cc); edgec writes one fixed floor
# that covers the int8 conv / fully connected / add / pool / mean kernels (1.14-2.0). Newer
# operator versions edgec may emit (CAST 3, RESIZE_* 3) need newer runtimes than it says;
# runtimes check operator versions themselves, not this string.
MIN_RUNTIME_VERSION = "2.0.0"

Rule = tuple[Callable[[list[str], list[str], dict], bool], int]


def _int8_io(i: list[str], o: list[str], f: dict) -> bool:
    return i[0] == "int8" and i[1] == "int8" and o[0] == "int8"


def _int4_filter(i: list[str], o: list[str], f: dict) -> bool:
    return i[0] == "int8" and i[1] == "int4" and o[0] == "int8"


def _in8(i: list[str], o: list[str], f: dict) -> bool:
    return i[0] == "int8"


def _feature(name: str) -> Callable[[list[str], list[str], dict], bool]:
    return lambda i, o, f: bool(f.get(name))


def _rank_over_4(i: list[str], o: list[str], f: dict) -> bool:
    return f.get("rank", 4) > 4


def _broadcast_over_4(i: list[str], o: list[str], f: dict) -> bool:
    return bool(f.get("broadcast")) and f.get("rank", 4) > 4


RULES: dict[str, tuple[Rule, ...]] = {
    # int8 input, int8 filter, int8 output: 3; grouped convolution: 6; int4 filter: 7.
    "CONV_2D": ((_feature("grouped"), 6), (_int4_filter, 7), (_int8_io, 3)),
    # int8: 3; dilation != 1 (float): 2.
    "DEPTHWISE_CONV_2D": ((_int8_io, 3), (_feature("dilated"), 2)),
    # no bias: 6; keep_num_dims: 5; int8: 4.
    "FULLY_CONNECTED": ((_feature("no_bias"), 6), (_feature("keep_num_dims"), 5),
                        (_int8_io, 4)),
    "ADD": ((_in8, 2),),
    "SUB": ((_broadcast_over_4, 3), (_in8, 2)),
    # rescale input1*input2/output >= 1: 3; int8: 2.
    "MUL": ((_feature("rescale_ge_1"), 3), (_in8, 2)),
    "DIV": ((_broadcast_over_4, 2),),
    "MAXIMUM": ((_broadcast_over_4, 3), (_in8, 2)),
    "MINIMUM": ((_broadcast_over_4, 3), (_in8, 2)),
    "AVERAGE_POOL_2D": ((_in8, 2),),
    "MAX_POOL_2D": ((_in8, 2),),
    "MEAN": ((_in8, 2),),
    "SUM": ((_in8, 2),),
    "EXP": ((_in8, 2),),
    "LOG": ((_in8, 2),),
    "ABS": ((_in8, 2),),
    "REDUCE_MAX": ((_in8, 2),),
    "REDUCE_MIN": ((_in8, 2),),
    "REDUCE_PROD": ((_in8, 2),),
    "SOFTMAX": ((_in8, 2),),
    "RELU6": ((_in8, 2),),
    "RELU": ((_in8, 2),),
    "LOGISTIC": ((_in8, 2),),
    "TANH": ((_in8, 2),),
    "CONCATENATION": ((_in8, 2),),
    "PAD": ((_rank_over_4, 4), (_in8, 2)),
    "TRANSPOSE": ((_rank_over_4, 4), (_in8, 2)),
    "SLICE": ((_rank_over_4, 5), (_in8, 2)),
    "RESIZE_BILINEAR": ((_feature("half_pixel_centers"), 3), (_in8, 2)),
    "RESIZE_NEAREST_NEIGHBOR": ((_feature("half_pixel_centers"), 3),
                                (_feature("align_corners"), 3), (_in8, 2)),
    "DEQUANTIZE": ((lambda i, o, f: i[0] == "float16", 3), (_in8, 2)),
    "QUANTIZE": ((_feature("per_channel"), 3),),
    "CAST": ((lambda i, o, f: "int8" in (i[0], o[0]), 3),),
    "GATHER": ((_in8, 2),),
    "RESHAPE": (),
    "HARD_SWISH": (),
    "LEAKY_RELU": (),
    "PRELU": (),
}


def operator_version(kind: str, inputs: list[str], outputs: list[str], **features) -> int:
    """The version TFLite's converter would give `kind` with these input/output element types
    and features (keyword flags such as grouped=True, keep_num_dims=True, rank=5)."""
    for test, version in RULES.get(kind, ()):
        if test(inputs, outputs, features):
            return version
    return 1
