"""What the quantize pass is told: the compile driver passes it to the pass manager as
`PassOptions.quant` (passes/registry.py); the pass reports in `PassOptions.quant_record`."""

from __future__ import annotations

from dataclasses import dataclass

from edgec.quant.calibrate import Calibration

QUANT_MODES = ("static", "dynamic")
__all__ = ["QUANT_MODES", "QuantOptions"]


@dataclass
class QuantOptions:
    """Options of the quantize pass.

    keep_float: node names or op types that stay float32 (a "float island": Dequantize
    before, Quantize after). mode "static": int8 activations from calibration; "dynamic":
    int8 weights of Gemm/MatMul, activations quantised at run time (no calibration).
    int8_softmax: last-axis Softmax becomes QSoftmax, TFLite's int8 SOFTMAX (`--int8-softmax`,
    edgec/ops/quantized_softmax.py); off: it stays float. tflite_activations: Sigmoid and
    Tanh lookups take TFLite's fixed output scales and table (`--tflite-activations`,
    edgec/ops/tflite_activations.py), so .tflite files carry LOGISTIC / TANH.
    weight_bits: 4 stores the weights of Conv/Gemm/MatMul layers as int4 (W4A8, `--weight-bits
    4`; depthwise convolutions stay int8), except the layers named in int8_weight_layers
    (chosen by `--auto-mixed-precision` under a `--weights-budget`); int4_depthwise (library
    only, for tools/int4_bench.py's measurement) gives depthwise convolutions int4 too.
    """

    calibration: Calibration | None = None
    keep_float: tuple[str, ...] = ()
    mode: str = "static"
    int8_softmax: bool = True
    tflite_activations: bool = False
    weight_bits: int = 8
    int8_weight_layers: tuple[str, ...] = ()
    int4_depthwise: bool = False

    def keeps_float(self, node_name: str, op: str) -> bool:
        """True when `--keep-float` names this node or its op type."""
        return node_name in self.keep_float or op in self.keep_float
