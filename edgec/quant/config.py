"""What the quantize pass is told (stored in `g.meta["quant"]` by the compile driver)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .calibrate import Calibration

QUANT_MODES = ("static", "dynamic")
__all__ = ["QUANT_MODES", "QuantOptions"]


@dataclass
class QuantOptions:
    """Options of the quantize pass.

    keep_float: node names or op types that stay float32 (a "float island": Dequantize
    before, Quantize after). mode "static": int8 activations from calibration; "dynamic":
    int8 weights of Gemm/MatMul, activations quantised at run time (no calibration).
    """

    calibration: Calibration | None = None
    keep_float: tuple[str, ...] = ()
    mode: str = "static"
    # Filled by the pass: per-layer records for report.json and `edgec report`.
    layers: list[dict] = field(default_factory=list)
    # float value name -> name of the int8 value that replaced it (per-layer SNR, export).
    value_map: dict[str, str] = field(default_factory=dict)

    def keeps_float(self, node_name: str, op: str) -> bool:
        """True when `--keep-float` names this node or its op type."""
        return node_name in self.keep_float or op in self.keep_float
