"""GPU delegate compatibility of a .tflite model's operators.

LiteRT's model analyzer (`ai_edge_litert._pywrap_analyzer_wrapper.ModelAnalyzer(model,
False, True)`, what `tf.lite.experimental.Analyzer.analyze(gpu_compatibility=True)` calls)
prints a GPU verdict, but in the ai-edge-litert 2.3.0 wheel its check is compiled out: it
calls a model with a custom op or a GATHER_ND "compatible with GPU delegate" (tested in
tests/tflite/test_gpu.py). So edgec applies the GPU delegate's published rules itself and
reports the analyzer's verdict beside them.

Source of the rules: TensorFlow Lite's tensorflow/lite/tools/versioning/gpu_compatibility.cc,
`CheckGpuDelegateCompatibility(const OpSignature&)` (the checks moved there from the GPU
delegate's model_builder.cc) with its helpers CheckInputsOutputs, CheckInputsConstsOutputs,
CheckConvoultionInputOutput, CheckPooling2DGpuDelegateCompatibility,
CheckDepthwiseConvGpuDelegateCompatibility and IsActivationSupported. Facts read there, code
edgec's own. "Runtime inputs" are inputs that are neither constant nor omitted.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from edgec.codegen.tflite.compat_view import OpView

POOLS = ("AVERAGE_POOL_2D", "MAX_POOL_2D")
CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")
UNARY = ("ABS", "COS", "ELU", "EXP", "FLOOR", "GELU", "LOG", "LOGISTIC", "NEG", "RSQRT",
         "SIGN", "SIN", "SQRT", "SQUARE", "TANH")
BINARY = ("DIV", "EQUAL", "FLOOR_DIV", "FLOOR_MOD", "GREATER", "GREATER_EQUAL",
          "LOGICAL_AND", "LESS", "LESS_EQUAL", "MAXIMUM", "MINIMUM", "NOT_EQUAL", "POW",
          "SQUARED_DIFFERENCE", "SUB")
ONE_RUNTIME_INPUT = ("HARD_SWISH", "QUANTIZE", "RESHAPE", "TILE", "TRANSPOSE",
                     "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "PAD", "PADV2",
                     "MIRROR_PAD", "SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "CAST")
# Operators CheckGpuDelegateCompatibility has a case for; any other builtin is refused.
GPU_OPS = set(POOLS + CONVS + UNARY + BINARY + ONE_RUNTIME_INPUT) | {
    "ADD", "ADD_N", "BATCH_MATMUL", "CONCATENATION", "CUMSUM", "DENSIFY", "DEQUANTIZE",
    "FULLY_CONNECTED", "GATHER", "LSTM", "MEAN", "MUL", "ONE_HOT", "PACK", "RELU_N1_TO_1",
    "PRELU", "SELECT", "SELECT_V2", "SLICE", "SOFTMAX", "SPLIT", "SPLIT_V", "STRIDED_SLICE",
    "TRANSPOSE_CONV", "RELU", "RELU6", "LEAKY_RELU", "REDUCE_MAX", "REDUCE_MIN",
    "REDUCE_PROD", "SUM"}
GPU_CUSTOM_OPS = {"Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D",
                  "Resampler"}
GPU_ACTIVATIONS = {"NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH"}  # not SIGN_BIT
GPU_CASTS = (({"BOOL"}, {"FLOAT16", "FLOAT32"}), ({"FLOAT16", "FLOAT32"}, {"BOOL"}),
             ({"FLOAT32", "INT32"}, {"FLOAT32", "INT32"}))  # (from, to) pairs it converts


@dataclass(frozen=True)
class GpuRule:
    """One refusal rule of the GPU delegate: name, one-line reason, ops it applies to."""

    name: str
    reason: str
    ops: tuple[str, ...]  # empty: every operator
    refuses: Callable[[OpView], bool]


GPU_RULES: list[GpuRule] = []


def gpu_rule(name: str, reason: str, *ops: str):
    """Register `refuses(op) -> bool` as the GPU rule `name` for `ops` (none: all)."""
    def register(fn: Callable[[OpView], bool]) -> Callable[[OpView], bool]:
        if any(r.name == name for r in GPU_RULES):
            raise ValueError(f"GPU rule {name!r} registered twice")
        GPU_RULES.append(GpuRule(name, reason, tuple(ops), fn))
        return fn
    return register


def runtime_inputs(op: OpView) -> int:
    """Inputs that are neither constant nor omitted."""
    return sum(1 for t in op.inputs if t is not None and not t.is_const)


def const_inputs(op: OpView) -> int:
    """Constant inputs."""
    return sum(1 for t in op.inputs if t is not None and t.is_const)


@gpu_rule("unsupported-op", "the GPU delegate has no kernel for this operator")
def _unsupported_op(op: OpView) -> bool:
    if op.code.startswith("CUSTOM:"):
        return op.code[len("CUSTOM:"):] not in GPU_CUSTOM_OPS
    return op.code not in GPU_OPS


@gpu_rule("two-inputs", "ADD and MUL take exactly two input tensors", "ADD", "MUL")
def _two_inputs(op: OpView) -> bool:
    return len(op.inputs) != 2


@gpu_rule("one-runtime-input", "the operator takes one non-constant input (its other "
                               "inputs constant) and one output", *ONE_RUNTIME_INPUT, *POOLS)
def _one_runtime_input(op: OpView) -> bool:
    return runtime_inputs(op) != 1 or len(op.outputs) != 1


@gpu_rule("unary-inputs", "an elementwise unary op takes one non-constant input", *UNARY)
def _unary_inputs(op: OpView) -> bool:
    return runtime_inputs(op) != 1 or const_inputs(op) != 0 or len(op.outputs) != 1


@gpu_rule("binary-inputs", "an elementwise binary op takes two inputs, at most one constant",
          *BINARY)
def _binary_inputs(op: OpView) -> bool:
    shapes = (runtime_inputs(op), const_inputs(op))
    return shapes not in ((2, 0), (1, 1)) or len(op.outputs) != 1


@gpu_rule("conv-inputs", "a convolution takes one or two non-constant inputs and one output",
          *CONVS, "TRANSPOSE_CONV")
def _conv_inputs(op: OpView) -> bool:
    return runtime_inputs(op) > 2 or len(op.outputs) != 1 or len(op.inputs) < 2


@gpu_rule("stride-dilation", "strides, dilations and pooling windows must be positive",
          *CONVS, *POOLS)
def _stride_dilation(op: OpView) -> bool:
    fields = ("strideW", "strideH", "dilationWFactor", "dilationHFactor", "filterWidth",
              "filterHeight")
    return any(op.option(f, 1) is not None and op.option(f, 1) <= 0 for f in fields)


@gpu_rule("fused-activation", "fused SIGN_BIT activation is not supported",
          *CONVS, *POOLS, "MUL", "SUB", "DIV")
def _fused_activation(op: OpView) -> bool:
    return op.activation not in GPU_ACTIVATIONS


@gpu_rule("depthwise-shapes", "DEPTHWISE_CONV_2D needs 4-D tensors, output channels = input "
                              "channels x multiplier and multiplier 1 unless one input "
                              "channel", "DEPTHWISE_CONV_2D")
def _depthwise_shapes(op: OpView) -> bool:
    x, w, y = op.input(0), op.input(1), op.outputs[0]
    if x is None or w is None or x.rank != 4 or w.rank != 4 or y.rank != 4:
        return True
    mult = op.option("depthMultiplier", 1) or 1
    b = op.input(2)
    bias_ok = b is None or int(_prod(b.shape)) == y.shape[3]
    return (x.shape[0] != y.shape[0] or w.shape[3] != y.shape[3]
            or y.shape[3] != x.shape[3] * mult or not bias_ok
            or (mult != 1 and x.shape[3] != 1))


@gpu_rule("fc-weights", "FULLY_CONNECTED needs default weights format, a non-constant input, "
                        "at most two runtime inputs and keep_num_dims only at equal rank",
          "FULLY_CONNECTED")
def _fc_weights(op: OpView) -> bool:
    x, y = op.input(0), op.outputs[0]
    keep_bad = bool(op.option("keepNumDims", False)) and x is not None and x.rank != y.rank
    return ((op.option("weightsFormat", 0) or 0) != 0 or runtime_inputs(op) > 2
            or x is None or x.is_const or keep_bad)


@gpu_rule("mean-axes", "MEAN needs one non-constant input and constant int32 axes", "MEAN")
def _mean_axes(op: OpView) -> bool:
    axes = op.input(1)
    return (runtime_inputs(op) != 1 or const_inputs(op) != 1 or axes is None
            or not axes.is_const or axes.type != "INT32")


@gpu_rule("mul-broadcast", "MUL needs one input not smaller than the other in every "
                           "dimension", "MUL")
def _mul_broadcast(op: OpView) -> bool:
    a, b = op.input(0), op.input(1)
    if a is None or b is None or a.rank != b.rank:
        return False
    a_smaller = any(p < q for p, q in zip(a.shape, b.shape))
    b_smaller = any(q < p for p, q in zip(a.shape, b.shape))
    return a_smaller and b_smaller


@gpu_rule("dequantize-int16", "DEQUANTIZE of int16 is not supported", "DEQUANTIZE")
def _dequantize_int16(op: OpView) -> bool:
    x = op.input(0)
    return len(op.inputs) != 1 or len(op.outputs) != 1 or (x is not None and x.type == "INT16")


@gpu_rule("softmax-beta", "SOFTMAX needs beta == 1", "SOFTMAX")
def _softmax_beta(op: OpView) -> bool:
    return (op.option("beta", 1.0) or 0.0) != 1.0


@gpu_rule("pad-shape", "PAD paddings must be a 4x2 or 3x2 tensor", "PAD", "PADV2",
          "MIRROR_PAD")
def _pad_shape(op: OpView) -> bool:
    pads = op.input(1)
    return pads is None or pads.rank != 2 or pads.shape[0] not in (3, 4) or pads.shape[1] != 2


@gpu_rule("resize-flags", "RESIZE_BILINEAR cannot take both align_corners and "
                          "half_pixel_centers", "RESIZE_BILINEAR")
def _resize_flags(op: OpView) -> bool:
    return bool(op.option("alignCorners", False)) and bool(op.option("halfPixelCenters", False))


@gpu_rule("slice-rank", "SLICE / STRIDED_SLICE take 3-D or 4-D input with all index inputs",
          "SLICE", "STRIDED_SLICE")
def _slice_rank(op: OpView) -> bool:
    x = op.input(0)
    need = 3 if op.code == "SLICE" else 4
    masks = any(op.option(m, 0) for m in ("ellipsisMask", "newAxisMask", "shrinkAxisMask"))
    return len(op.inputs) < need or x is None or x.rank not in (3, 4) or masks


@gpu_rule("gather-indices", "GATHER needs 1-D int32 indices and a non-int32 input", "GATHER")
def _gather_indices(op: OpView) -> bool:
    x, idx = op.input(0), op.input(1)
    return x is None or idx is None or x.type == "INT32" or idx.rank != 1 or idx.type != "INT32"


@gpu_rule("cast-types", "CAST only bool <-> float and between float32 and int32 (no int8)",
          "CAST")
def _cast_types(op: OpView) -> bool:
    x = op.input(0)
    src, dst = (x.type if x is not None else "NONE"), op.outputs[0].type
    return not any(src in ins and dst in outs for ins, outs in GPU_CASTS)


def _prod(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def gpu_refusals(op: OpView) -> list[GpuRule]:
    """The GPU rules that refuse `op` (empty: the GPU delegate accepts it)."""
    if _unsupported_op(op):
        return [GPU_RULES[0]]
    return [r for r in GPU_RULES[1:] if (not r.ops or op.code in r.ops) and r.refuses(op)]


ANALYZER_SCRIPT = """
import sys
from ai_edge_litert import _pywrap_analyzer_wrapper as analyzer
sys.stdout.write(analyzer.ModelAnalyzer(sys.stdin.buffer.read(), False, True))
"""


def litert_analyzer_verdict(data: bytes) -> dict:
    """LiteRT's own analyzer on `data` with GPU compatibility: {'available', 'compatible',
    'warnings'} (warnings: its 'GPU COMPATIBILITY WARNING' lines). It runs in a child process:
    the C++ analyzer crashes the process on some malformed files."""
    if importlib.util.find_spec("ai_edge_litert") is None:
        return {"available": False, "compatible": None, "warnings": []}
    try:
        proc = subprocess.run([sys.executable, "-c", ANALYZER_SCRIPT], input=bytes(data),
                              capture_output=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        return {"available": True, "compatible": None, "warnings": [], "error": "timed out"}
    if proc.returncode != 0:
        return {"available": True, "compatible": None, "warnings": [],
                "error": f"the analyzer failed (exit code {proc.returncode})"}
    text = proc.stdout.decode("utf-8", "replace")
    warnings = [ln.strip() for ln in text.splitlines() if "GPU COMPATIBILITY WARNING" in ln]
    compatible = "looks compatible with GPU delegate" in text and not warnings
    return {"available": True, "compatible": compatible, "warnings": warnings}
