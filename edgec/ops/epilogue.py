"""Fused epilogues: what a Conv/Gemm/MatMul does to each accumulator before storing it.

order: acc = sum + bias; acc += residual (optional 4th input); acc = activation(acc).
Activations: none, relu, clip (min=act_alpha, max=act_beta), leaky_relu (alpha), prelu
(per-channel slopes in act_slope), hardswish, hardsigmoid (alpha, beta), sigmoid, silu, tanh.
The fusion passes set these attributes; the numpy form below and the C forms
(codegen/c/epilogue.py and the vector kernels under codegen/c) must agree, NaN included: every
activation propagates a NaN accumulator (as numpy and onnxruntime do).
"""

from __future__ import annotations

import numpy as np

from edgec.ops.base import Attr

ACTIVATIONS = (
    "none", "relu", "clip", "leaky_relu", "prelu", "hardswish", "hardsigmoid", "sigmoid",
    "silu", "tanh",
)

EPILOGUE_ATTRS = {
    "activation": Attr("str", "none", ACTIVATIONS),
    "act_alpha": Attr("float", 0.0),
    "act_beta": Attr("float", 0.0),
    "act_slope": Attr("floats", ()),
}


def activation_np(y: np.ndarray, attrs: dict, channel_axis: int = -1) -> np.ndarray:
    """Apply the activation named in `attrs` to `y` (float32 semantics)."""
    act = attrs.get("activation", "none")
    alpha = np.float32(attrs.get("act_alpha", 0.0))
    beta = np.float32(attrs.get("act_beta", 0.0))
    y = y.astype(np.float32)
    if act == "none":
        return y
    if act == "relu":
        return np.maximum(y, np.float32(0))
    if act == "clip":
        return np.minimum(np.maximum(y, alpha), beta)
    if act == "leaky_relu":
        return np.where(y >= 0, y, y * alpha)
    if act == "prelu":
        slope = np.asarray(attrs["act_slope"], dtype=np.float32)
        shape = [1] * y.ndim
        shape[channel_axis] = slope.size
        return np.where(y >= 0, y, y * slope.reshape(shape))
    if act == "hardswish":
        return y * np.clip(y * np.float32(1.0 / 6.0) + np.float32(0.5), 0, 1)
    if act == "hardsigmoid":
        return np.clip(alpha * y + beta, 0, 1).astype(np.float32)
    with np.errstate(over="ignore"):
        if act == "sigmoid":
            return (1.0 / (1.0 + np.exp(-y))).astype(np.float32)
        if act == "silu":
            return (y / (1.0 + np.exp(-y))).astype(np.float32)
    if act == "tanh":
        return np.tanh(y)
    raise ValueError(f"unknown activation {act}")


def apply_epilogue_np(y, node, residual=None, channel_axis: int = -1) -> np.ndarray:
    """Residual add (when present) then activation, on a float64 or float32 accumulator."""
    if residual is not None:
        y = y + residual
    return activation_np(np.asarray(y, dtype=np.float32), node.attrs, channel_axis)
