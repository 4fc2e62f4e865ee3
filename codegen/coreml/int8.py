"""coreml-int8 weights: edgec's per-channel symmetric int8 weights as CoreML weight
quantisation (constexpr_affine_dequantize, iOS16+).

The int8 values and scales are exactly those of edgec's int8 C targets
(`edgec.ops.int8_scheme.quantize_weights`: scale = max|w| / 127 per output channel, values
rint(w / scale) in -127..127, zero point 0), so the CoreML package and the int8 C code carry
the same weights. The program computes activations in float (fp16 on the Neural Engine).
"""

from __future__ import annotations

import numpy as np

from edgec.ops.int8_scheme import quantize_weights

INT8_FEATURE = "int8-weights"


def int8_weight(ctx, data: np.ndarray, axis: int, name: str):
    """A constexpr_affine_dequantize Var holding `data` as int8 along output axis `axis`."""
    q, scale = quantize_weights(data, axis)
    ctx.features.add(INT8_FEATURE)
    ctx.int8_weight_bytes += q.size + scale.size * 4
    return ctx.mb.constexpr_affine_dequantize(
        quantized_data=q, zero_point=np.int8(0), scale=scale, axis=axis,
        name=ctx.name(name, "_int8"))


def fake_quantized(data: np.ndarray, axis: int = 0) -> np.ndarray:
    """`data` after an int8 round trip with edgec's weight scheme (for SNR references)."""
    q, scale = quantize_weights(data, axis)
    shape = [1] * data.ndim
    shape[axis] = scale.size
    return (q.astype(np.float32) * scale.reshape(shape)).astype(np.float32)
