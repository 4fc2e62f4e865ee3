"""NNAPI delegate compatibility: which operators of a .tflite the delegate takes, per level.

Source of the rules: TensorFlow Lite's NNAPI delegate, `NNAPIDelegateKernel::Validate()` in
tensorflow/lite/delegates/nnapi/nnapi_delegate.cc (TF 2.5+, the version with NNAPI 1.3
support), with its helpers ExpectIsFloatOrQuant8Operator, ExpectIsFloatOrUint8Operator,
ExpectIsRestrictedScalesCompliant and IsHybridOperator; plus NNAPI's FuseCode enum
(NeuralNetworksTypes.h: only NONE, RELU, RELU1, RELU6 exist) for fused activations. The
facts were read there; the code here is edgec's own. Every rule is one small function that
returns True when the operator is refused at `level` (the Android API level: 27 = NNAPI 1.0,
28 = 1.1, 29 = 1.2, 30 = 1.3, 31+ = feature level 5+, where Validate adds no new limits).

Assumptions, as the delegate runs by default: no accelerator name is given (so the MUL
version and quantised AVERAGE_POOL_2D window limits of the reference CPU path apply). Signed
int8 activations are accepted before NNAPI 1.3 wherever Validate accepts them: the delegate
then converts them to uint8 with the zero point moved by 128; CONV_2D, DEPTHWISE_CONV_2D and
FULLY_CONNECTED take only float or uint8 inputs before NNAPI 1.2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgec.codegen.tflite.compat_view import OpView

NNAPI_10, NNAPI_11, NNAPI_12, NNAPI_13 = 27, 28, 29, 30
FEATURE_LEVELS = {27: "NNAPI 1.0", 28: "NNAPI 1.1", 29: "NNAPI 1.2", 30: "NNAPI 1.3",
                  31: "feature level 5+"}
QUANT8 = {"UINT8", "INT8"}
FLOAT_OR_QUANT8 = {"FLOAT32"} | QUANT8

# Highest operator version Validate maps (ExpectMaxOpVersion / ExpectOpVersion); None: any.
MAX_VERSION: dict[str, int | None] = {
    "ADD": 2, "MUL": 2, "SUB": 3, "DIV": 1, "AVERAGE_POOL_2D": 2, "MAX_POOL_2D": 2,
    "L2_POOL_2D": 1, "CONV_2D": 5, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 5,
    "HARD_SWISH": None, "SOFTMAX": 2, "RESHAPE": 1, "RESIZE_BILINEAR": 3,
    "RESIZE_NEAREST_NEIGHBOR": 3, "SQUEEZE": 1, "CONCATENATION": 2, "DEQUANTIZE": 2,
    "QUANTIZE": 2, "RELU": 2, "RELU_N1_TO_1": 2, "RELU6": 2, "LOGISTIC": 2, "TANH": 2,
    "PAD": 2, "PADV2": 2, "TRANSPOSE": 2, "MEAN": 2, "LEAKY_RELU": 1, "PRELU": 1,
    "SPACE_TO_DEPTH": 2, "DEPTH_TO_SPACE": None, "STRIDED_SLICE": 2, "SLICE": 2,
    "MAXIMUM": 3, "MINIMUM": 3, "GATHER": 2, "SPLIT": 3, "EXP": 1, "SQRT": 1, "RSQRT": 1,
    "ABS": 1, "LOG": 1, "POW": 1, "SIN": 1, "FLOOR": 1, "ARG_MAX": 2, "ARG_MIN": 2,
    "TRANSPOSE_CONV": 3, "REDUCE_MAX": 2, "REDUCE_MIN": 2, "SUM": 1, "REDUCE_PROD": 1,
    "BATCH_TO_SPACE_ND": 2, "SPACE_TO_BATCH_ND": 2, "L2_NORMALIZATION": 2, "CAST": 1,
}
# First API level at which Validate maps the operator at all (ExpectMinAndroidSdkVersion).
MIN_LEVEL = {
    "DIV": NNAPI_11, "SQUEEZE": NNAPI_11, "PAD": NNAPI_11, "PADV2": NNAPI_11,
    "TRANSPOSE": NNAPI_11, "MEAN": NNAPI_11, "STRIDED_SLICE": NNAPI_11,
    "SPACE_TO_BATCH_ND": NNAPI_11, "BATCH_TO_SPACE_ND": NNAPI_11,
    "RESIZE_NEAREST_NEIGHBOR": NNAPI_12, "LEAKY_RELU": NNAPI_12, "PRELU": NNAPI_12,
    "QUANTIZE": NNAPI_12, "SLICE": NNAPI_12, "MAXIMUM": NNAPI_12, "MINIMUM": NNAPI_12,
    "GATHER": NNAPI_12, "SPLIT": NNAPI_12, "EXP": NNAPI_12, "SQRT": NNAPI_12,
    "RSQRT": NNAPI_12, "ABS": NNAPI_12, "LOG": NNAPI_12, "POW": NNAPI_12, "SIN": NNAPI_12,
    "ARG_MAX": NNAPI_12, "ARG_MIN": NNAPI_12, "TRANSPOSE_CONV": NNAPI_12,
    "REDUCE_MAX": NNAPI_12, "REDUCE_MIN": NNAPI_12, "SUM": NNAPI_12, "REDUCE_PROD": NNAPI_12,
    "CAST": NNAPI_12,
}
# Operators whose options carry a fused activation that becomes an NNAPI FuseCode operand.
FUSED_ACTIVATION_OPS = {"ADD", "MUL", "SUB", "DIV", "CONV_2D", "DEPTHWISE_CONV_2D",
                        "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"}
NNAPI_FUSE_CODES = {"NONE", "RELU", "RELU_N1_TO_1", "RELU6"}
CONVOLUTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


@dataclass(frozen=True)
class Rule:
    """One refusal rule of the delegate: a name, a one-line reason, the ops it applies to."""

    name: str
    reason: str
    ops: tuple[str, ...]  # empty: every operator
    refuses: Callable[[OpView, int], bool]


RULES: list[Rule] = []


def rule(name: str, reason: str, *ops: str):
    """Register `refuses(op, level) -> bool` as the rule `name` for `ops` (none: all)."""
    def register(fn: Callable[[OpView, int], bool]) -> Callable[[OpView, int], bool]:
        if any(r.name == name for r in RULES):
            raise ValueError(f"NNAPI rule {name!r} registered twice")
        RULES.append(Rule(name, reason, tuple(ops), fn))
        return fn
    return register


def _in_type(op: OpView, i: int = 0) -> str:
    t = op.input(i)
    return t.type if t is not None else "NONE"


def _cast_types(level: int) -> set[str]:
    """Element types CAST takes and gives: int8 only from NNAPI 1.3."""
    return {"FLOAT32", "INT32", "UINT8"} | ({"INT8"} if level >= NNAPI_13 else set())


def _accepted_input_types(op: OpView, level: int) -> set[str] | None:
    """The input-0 types Validate accepts for `op` at `level` (None: no type check)."""
    code = op.code
    if code in ("ADD", "MUL"):
        return FLOAT_OR_QUANT8 | ({"INT32"} if level >= NNAPI_13 else set())
    if code == "SUB":
        return (({"FLOAT32"} if level >= NNAPI_11 else set())
                | (QUANT8 if level >= NNAPI_12 else set())
                | ({"INT32"} if level >= NNAPI_13 else set()))
    if code in CONVOLUTIONS and level < NNAPI_12:
        return {"FLOAT32", "UINT8"}
    if code == "TANH":
        return FLOAT_OR_QUANT8 if level >= NNAPI_12 else {"FLOAT32"}
    if code == "MEAN":
        return FLOAT_OR_QUANT8 if level >= NNAPI_12 else {"FLOAT32"}
    if code == "RESIZE_BILINEAR" and level < NNAPI_12:
        return {"FLOAT32"}
    if code in ("PAD", "PADV2") and level < NNAPI_12 and len(op.inputs) < 3:
        return {"FLOAT32"}
    if code == "CONCATENATION":
        return {"FLOAT16"} | FLOAT_OR_QUANT8
    if code == "DEQUANTIZE":
        return QUANT8 if level >= NNAPI_12 else {"UINT8"}
    if code == "CAST":
        return _cast_types(level)
    if code == "GATHER":
        return FLOAT_OR_QUANT8 | {"FLOAT16", "INT32"}
    if code in ("LEAKY_RELU", "PRELU", "SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "REDUCE_MAX",
                "REDUCE_MIN"):
        return FLOAT_OR_QUANT8
    if code in ("EXP", "SQRT", "RSQRT", "ABS", "LOG", "POW", "SIN", "DIV", "SUM",
                "REDUCE_PROD", "L2_POOL_2D"):
        return {"FLOAT32"}
    if code in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "HARD_SWISH", "SOFTMAX", "RESHAPE",
                "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "RELU", "RELU_N1_TO_1",
                "RELU6", "LOGISTIC", "PAD", "PADV2"):
        return FLOAT_OR_QUANT8
    return None


@rule("unmapped-op", "the NNAPI delegate maps no such operator (custom or unknown builtin)")
def _unmapped_op(op: OpView, level: int) -> bool:
    return op.code not in MAX_VERSION


@rule("op-version", "operator version is newer than the NNAPI delegate maps")
def _op_version(op: OpView, level: int) -> bool:
    limit = MAX_VERSION.get(op.code)
    return limit is not None and op.version > limit


@rule("op-needs-newer-nnapi", "NNAPI has this operator only from a later feature level")
def _op_needs_newer_nnapi(op: OpView, level: int) -> bool:
    return level < MIN_LEVEL.get(op.code, NNAPI_10)


@rule("input-type", "input type not accepted at this level (e.g. int8 CONV_2D/FC before "
                    "NNAPI 1.2)")
def _input_type(op: OpView, level: int) -> bool:
    accepted = _accepted_input_types(op, level)
    return accepted is not None and _in_type(op) not in accepted


@rule("hybrid-before-1.2", "float input with quantised weights (hybrid) needs NNAPI 1.2",
      "CONV_2D", "FULLY_CONNECTED")
def _hybrid_before_12(op: OpView, level: int) -> bool:
    return level < NNAPI_12 and _in_type(op) == "FLOAT32" and _in_type(op, 1) in QUANT8


@rule("per-channel-before-1.2", "per-channel quantised filters need NNAPI 1.2", "CONV_2D")
def _per_channel_before_12(op: OpView, level: int) -> bool:
    w = op.input(1)
    return level < NNAPI_12 and w is not None and w.per_channel


@rule("uint8-scales-1.0", "NNAPI 1.0/1.1 need input_scale * filter_scale < output_scale "
                          "for uint8", *CONVOLUTIONS)
def _uint8_scales_10(op: OpView, level: int) -> bool:
    x, w = op.input(0), op.input(1)
    if level >= NNAPI_12 or x is None or w is None or x.type != "UINT8":
        return False
    return not (x.scale * w.scale < op.outputs[0].scale)


@rule("missing-bias", "CONV_2D without a bias input is not mapped", "CONV_2D")
def _missing_bias(op: OpView, level: int) -> bool:
    # Validate counts inputs (TODO b/132950584 there); an omitted (-1) bias is refused too:
    # the delegate's CONV_2D mapping adds no zero bias, unlike its FULLY_CONNECTED mapping.
    return len(op.inputs) != 3 or op.input(2) is None


@rule("dilation-before-1.2", "dilated convolution needs NNAPI 1.2",
      "CONV_2D", "DEPTHWISE_CONV_2D")
def _dilation_before_12(op: OpView, level: int) -> bool:
    dilated = op.option("dilationWFactor", 1) != 1 or op.option("dilationHFactor", 1) != 1
    return level < NNAPI_12 and dilated


@rule("avg-pool-window", "quantised AVERAGE_POOL_2D window over 256 elements overflows "
                         "NNAPI's reference CPU path", "AVERAGE_POOL_2D")
def _avg_pool_window(op: OpView, level: int) -> bool:
    window = (op.option("filterWidth", 1) or 1) * (op.option("filterHeight", 1) or 1)
    return _in_type(op) in QUANT8 and window > 256


@rule("fused-activation", "NNAPI fuses only NONE, RELU, RELU1 and RELU6 (no TANH, SIGN_BIT)",
      *sorted(FUSED_ACTIVATION_OPS))
def _fused_activation(op: OpView, level: int) -> bool:
    return op.activation not in NNAPI_FUSE_CODES


@rule("int32-activation", "int32 ADD/MUL/SUB take no fused activation", "ADD", "MUL", "SUB")
def _int32_activation(op: OpView, level: int) -> bool:
    return _in_type(op) == "INT32" and op.activation != "NONE"


@rule("rank-over-4", "NNAPI takes tensors of rank 4 at most here",
      "SUB", "SOFTMAX", "CONCATENATION")
def _rank_over_4(op: OpView, level: int) -> bool:
    ranked = op.inputs[:2] if op.code == "SUB" else op.inputs[:1]
    return any(t is not None and t.rank > 4 for t in ranked)


@rule("fc-keep-num-dims", "FULLY_CONNECTED with keep_num_dims needs NNAPI 1.3",
      "FULLY_CONNECTED")
def _fc_keep_num_dims(op: OpView, level: int) -> bool:
    return level < NNAPI_13 and bool(op.option("keepNumDims", False))


@rule("fc-int16-output", "FULLY_CONNECTED with an int16 output is not mapped",
      "FULLY_CONNECTED")
def _fc_int16_output(op: OpView, level: int) -> bool:
    return op.outputs[0].type == "INT16"


@rule("softmax-rank-before-1.2", "SOFTMAX before NNAPI 1.2 takes 2-D or 4-D input only",
      "SOFTMAX")
def _softmax_rank_before_12(op: OpView, level: int) -> bool:
    x = op.input(0)
    return level < NNAPI_12 and x is not None and x.rank not in (2, 4)


@rule("softmax-output-type", "SOFTMAX output must be float32, uint8 or int8", "SOFTMAX")
def _softmax_output_type(op: OpView, level: int) -> bool:
    return op.outputs[0].type not in FLOAT_OR_QUANT8


@rule("reshape-shape-const", "RESHAPE needs a constant shape input (or a non-scalar "
                             "new_shape option)", "RESHAPE")
def _reshape_shape_const(op: OpView, level: int) -> bool:
    if len(op.inputs) >= 2:
        shape = op.input(1)
        return shape is None or not shape.is_const
    new_shape = list(op.option("newShape", None) or [])
    return len(new_shape) == 0 or new_shape == [0]


@rule("resize-size-const", "RESIZE needs a constant size input",
      "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR")
def _resize_size_const(op: OpView, level: int) -> bool:
    size = op.input(1)
    return size is None or not size.is_const


@rule("resize-rank", "RESIZE_BILINEAR input must be 4-D", "RESIZE_BILINEAR")
def _resize_rank(op: OpView, level: int) -> bool:
    x = op.input(0)
    return x is not None and x.rank != 4


@rule("resize-square-before-1.2", "before NNAPI 1.2 RESIZE_BILINEAR output needs "
                                  "width == height", "RESIZE_BILINEAR")
def _resize_square_before_12(op: OpView, level: int) -> bool:
    y = op.outputs[0]
    return level < NNAPI_12 and y.rank == 4 and y.shape[1] != y.shape[2]


@rule("resize-align-corners", "align_corners / half_pixel_centers need NNAPI 1.3",
      "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR")
def _resize_align_corners(op: OpView, level: int) -> bool:
    flagged = bool(op.option("alignCorners", False)) or bool(op.option("halfPixelCenters",
                                                                        False))
    return level <= NNAPI_12 and flagged


@rule("concat-activation", "CONCATENATION takes no fused activation", "CONCATENATION")
def _concat_activation(op: OpView, level: int) -> bool:
    return op.activation != "NONE"


@rule("concat-mixed-quant-before-1.2", "before NNAPI 1.2 uint8 CONCATENATION inputs need "
                                       "one scale and zero point", "CONCATENATION")
def _concat_mixed_quant_before_12(op: OpView, level: int) -> bool:
    ins = [t for t in op.inputs if t is not None]
    if level >= NNAPI_12 or not ins or ins[0].type != "UINT8":
        return False
    first = (ins[0].scale, ins[0].zero_point)
    return any((t.scale, t.zero_point) != first for t in ins[1:])


@rule("pad-inputs", "PAD needs its paddings input and a non-empty input tensor",
      "PAD", "PADV2")
def _pad_inputs(op: OpView, level: int) -> bool:
    x = op.input(0)
    return len(op.inputs) < 2 or x is None or 0 in x.shape


@rule("pad-value-before-1.2", "a padding value (PADV2) needs NNAPI 1.2", "PAD", "PADV2")
def _pad_value_before_12(op: OpView, level: int) -> bool:
    return level < NNAPI_12 and len(op.inputs) == 3


@rule("transpose-perm-const", "TRANSPOSE needs a constant permutation", "TRANSPOSE")
def _transpose_perm_const(op: OpView, level: int) -> bool:
    perm = op.input(1)
    return perm is None or not perm.is_const


@rule("mean-scalar-output", "MEAN producing a scalar is not mapped", "MEAN")
def _mean_scalar_output(op: OpView, level: int) -> bool:
    return op.outputs[0].rank == 0


@rule("quantize-int8-output", "QUANTIZE to int8 needs NNAPI 1.3 (uint8 before)", "QUANTIZE")
def _quantize_int8_output(op: OpView, level: int) -> bool:
    out = op.outputs[0].type
    return out not in (QUANT8 if level >= NNAPI_13 else {"UINT8"})


@rule("quantize-scale", "QUANTIZE needs positive scales", "QUANTIZE")
def _quantize_scale(op: OpView, level: int) -> bool:
    x = op.input(0)
    bad_in = x is not None and x.type in QUANT8 and not x.scale > 0
    return bad_in or not op.outputs[0].scale > 0


@rule("quantize-input-type", "QUANTIZE input must be float32 or quantised", "QUANTIZE")
def _quantize_input_type(op: OpView, level: int) -> bool:
    return _in_type(op) not in FLOAT_OR_QUANT8


@rule("dequantize-int8-asymmetric-1.2", "NNAPI 1.2 dequantizes int8 only with zero point 0",
      "DEQUANTIZE")
def _dequantize_int8_asymmetric_12(op: OpView, level: int) -> bool:
    x = op.input(0)
    return level == NNAPI_12 and x is not None and x.type == "INT8" and x.zero_point != 0


@rule("cast-output-type", "CAST gives float32, int32 or uint8 (int8 from NNAPI 1.3)", "CAST")
def _cast_output_type(op: OpView, level: int) -> bool:
    return op.outputs[0].type not in _cast_types(level)


@rule("gather-positions", "GATHER needs int32 positions of rank 1 or more", "GATHER")
def _gather_positions(op: OpView, level: int) -> bool:
    pos = op.input(1)
    return pos is None or pos.type != "INT32" or pos.rank == 0


def refusals(op: OpView, level: int) -> list[Rule]:
    """The rules that refuse `op` at API `level` (empty: the delegate accepts it)."""
    if op.code not in MAX_VERSION:
        return [RULES[0]]
    if op.code == "DEQUANTIZE" and _in_type(op) == "FLOAT16":
        if op.input(0).is_const:
            # fp16 weights: DoPrepare prunes these DEQUANTIZEs (FP16GraphPartitionHelper) and
            # the consumers read the weights as float32; such a model is delegated whole or
            # not at all.
            return []
        if level >= NNAPI_13:
            return []  # Validate accepts fp16 -> fp32 dequantisation of activations outright
    return [r for r in RULES if (not r.ops or op.code in r.ops) and r.refuses(op, level)]
