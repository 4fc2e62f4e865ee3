"""coreml-int8 with `--activations int8`: W8A8, edgec's int8 weights and edgec's calibrated
int8 activation scales (iOS17 `quantize` / `dequantize`).

edgec calibrates the graph the CoreML pipeline produced (edgec.quant.calibrate, the same data,
method and percentile flags as the int8 C targets: --calib, --calib-method ...) and turns each
float activation's range into asymmetric int8 parameters with edgec's scheme
(edgec.ops.int8_scheme.params_from_range: scale and zero point with 0.0 exact). The program
then carries every graph input and every node output except the graph outputs through
`quantize` (int8) and `dequantize` with those parameters: the quantize-dequantize pairs
through which CoreML (iOS17+) runs int8 activations, the Neural Engine of A17 Pro / M4 and
later in int8 arithmetic. The weights stay edgec's per-channel int8 weights (int8.py).

Differences from edgec's int8 C targets, which choose some scales by rule: here every
activation has its calibrated range (no fixed Softmax output scale, no shared Concat scale,
no lookup tables), the final outputs stay float, and the fp16 program stores each scale as
fp16.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Graph
from edgec.ops.int8_scheme import params_from_range
from edgec.quant.calibrate import calibrate
from edgec.quant.driver import calibration_samples

INT8_ACTIVATIONS = "int8-activations"


def activation_params(g: Graph, compile_options) -> tuple[dict[str, tuple[float, int]], dict,
                                                          list[str]]:
    """({value name: (scale, zero point)} of every graph input and non-output node output with
    calibration statistics, the calibration summary, warnings)."""
    samples, source, warnings = calibration_samples(g, compile_options)
    cal = calibrate(g, samples, compile_options.calib_method,
                    compile_options.calib_percentile, source=source, progress=False)
    outputs = {v.name for v in g.outputs}
    values = [*g.inputs, *(v for node in g.nodes for v in node.outputs if v is not None)]
    params = {}
    for v in values:
        if v.name in outputs or v.name not in cal.stats or not v.dtype.is_float:
            continue
        lo, hi = cal.range_of(v.name)
        qp = params_from_range(float(np.min(lo)), float(np.max(hi)))
        params[v.name] = (float(np.asarray(qp.scale).reshape(-1)[0]),
                          int(np.asarray(qp.zero_point).reshape(-1)[0]))
    return params, cal.summary(), list(warnings)


def qdq(mb, var, scale: float, zero_point: int, name: str):
    """`var` through quantize (int8) and dequantize with (scale, zero point)."""
    q = mb.quantize(input=var, scale=np.float32(scale), zero_point=np.int8(zero_point),
                    output_dtype="int8", name=name + "_q")
    return mb.dequantize(input=q, scale=np.float32(scale), zero_point=np.int8(zero_point),
                         name=name + "_dq")


def fake_quantized_activation(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """`x` after an int8 round trip (round half to even, clamp to -128..127)."""
    q = np.clip(np.rint(np.asarray(x, np.float32) / np.float32(scale)) + zero_point, -128, 127)
    return ((q - zero_point) * np.float32(scale)).astype(np.float32)
