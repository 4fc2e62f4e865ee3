"""int8 Sigmoid and Tanh as TFLite computes them: fixed output scales and TFLite's table.

TFLite's int8 LOGISTIC and TANH (LiteRT's reference and generic kernels) build a 256-entry
table when the model is prepared (PopulateLookupTable in kernels/activations.cc):

    x      = float32(x_scale) * float32(q - x_zero_point)           (float32 multiply)
    t      = 1.0f / (1.0f + expf(-x))   or   tanhf(x)                (float32)
    table  = clamp(round_half_away(t * (1 / y_scale)) + y_zero_point)

with the output fixed to scale 1/256, zero point -128 (LOGISTIC) and 1/128, 0 (TANH).
`tflite_table` evaluates that formula with expf and tanhf correctly rounded (float64 values
from edgec.detmath, rounded once to float32), the same on every host. edgec's ordinary
lookup tables round the float64 function once and ties to even, with calibrated output
scales; those cannot be a LOGISTIC / TANH.

With `--tflite-activations` (QuantOptions.tflite_activations) standalone and fused Sigmoid
and Tanh in int8 graphs write TFLite's output parameters and table into their QLookup, and
the TFLite back-end (codegen/tflite/ops_int8.py) emits LOGISTIC / TANH wherever a QLookup's
table equals `tflite_table` of its parameters (the NNAPI and GPU delegates take those; they
refuse the CAST + GATHER form of other tables). Measured (tests/ops/test_tflite_activations
.py): over 1,000 input scales the formula equals LiteRT's tables entry for entry; TensorFlow
Lite Micro computes int8 LOGISTIC in fixed point instead and differs from LiteRT on about 2
entries in 100,000 (TANH: none seen).
"""

from __future__ import annotations

import numpy as np

from edgec.detmath import deterministic_math
from edgec.ir import DType, Node, QuantParams, Value
from edgec.ops.int8_facet import Lookup, scale_of, zero_point_of

# function (lower case, as QLookup's "function" names it) -> (TFLite builtin, y scale, y zp)
FIXED_OUTPUT = {"sigmoid": ("LOGISTIC", 1.0 / 256.0, -128), "tanh": ("TANH", 1.0 / 128.0, 0)}


def tflite_builtin(function: str) -> str | None:
    """LOGISTIC / TANH for a Sigmoid / Tanh function name (any case), else None."""
    entry = FIXED_OUTPUT.get(str(function).lower())
    return entry[0] if entry else None


def fixed_output_params(function: str) -> QuantParams:
    """TFLite's fixed int8 output parameters of Sigmoid (1/256, -128) or Tanh (1/128, 0)."""
    _, scale, zero_point = FIXED_OUTPUT[str(function).lower()]
    return QuantParams(np.float32(scale), zero_point, None, DType.INT8)


def tflite_table(function: str, x_scale: float, x_zero_point: int) -> list[int]:
    """TFLite's int8 LOGISTIC / TANH table (index q + 128) for this input quantisation."""
    _, y_scale, y_zero_point = FIXED_OUTPUT[str(function).lower()]
    q = np.arange(-128, 128)
    x = np.float32(x_scale) * (q - x_zero_point).astype(np.float32)
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"), deterministic_math():
        if str(function).lower() == "sigmoid":
            e = np.exp(-x64).astype(np.float32)  # expf, correctly rounded
            t = np.float32(1.0) / (np.float32(1.0) + e)
        else:
            t = np.tanh(x64).astype(np.float32)  # tanhf, correctly rounded
    r = t.astype(np.float32) * np.float32(1.0 / np.float32(y_scale))
    rounded = np.sign(r) * np.floor(np.abs(r) + np.float32(0.5))  # std::round: ties away
    return [int(v) for v in np.clip(rounded + y_zero_point, -128, 127)]


def wants_tflite_table(quantizer, function: str) -> bool:
    """True when `--tflite-activations` is on and `function` is Sigmoid or Tanh."""
    return bool(getattr(quantizer.opts, "tflite_activations", False)) and \
        tflite_builtin(function) is not None


class TfliteActivationLookup(Lookup):
    """Sigmoid / Tanh: edgec's lookup table, or with `--tflite-activations` TFLite's table
    and fixed output parameters (registered with the quantizer's `forced` when planned)."""

    def plan(self, op, node: Node, quantizer) -> str | None:
        """A lookup table; TFLite's output parameters when the option asks for them."""
        kind = super().plan(op, node, quantizer)
        if kind is not None and wants_tflite_table(quantizer, node.op):
            quantizer.forced[node.output.name] = fixed_output_params(node.op)
        return kind

    def quantize(self, op, node: Node, quantizer) -> Value:
        """QLookup with TFLite's table (option on) or edgec's (off)."""
        if not wants_tflite_table(quantizer, node.op):
            return super().quantize(op, node, quantizer)
        xq = quantizer.int8_of(node.input(0), node)
        xp, yp = xq.quant, fixed_output_params(node.op)
        xs, xzp = scale_of(xp), zero_point_of(xp)
        quantizer.record(node, "QLookup", xp, yp)
        return quantizer.emit(node, "QLookup", [xq], {
            "table": tflite_table(node.op, xs, xzp), "function": node.op, "x_scale": xs,
            "x_zero_point": xzp, "y_scale": scale_of(yp), "y_zero_point": zero_point_of(yp)},
            yp)


TFLITE_ACTIVATION_LOOKUP = TfliteActivationLookup("lookup")
