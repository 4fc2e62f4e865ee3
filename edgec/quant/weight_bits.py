"""int4 weights (W4A8, `--weight-bits 4`): option checks and the mixed int8/int4 search.

With `--weight-bits 4` the weights of Conv (not depthwise), Gemm and MatMul layers are
quantised symmetric per output channel to [-7, 7] (scale max|w| / 7); activations stay
int8 and the arithmetic is the int8 one, so the int8 reference interpreter defines the bits.
The C back-end stores those weights two per byte (codegen/c/int4_pack.py).

Mixed precision over bit widths (`--auto-mixed-precision --weight-bits 4`): the sensitivity
of a layer is the output SNR (against fp32, on a few calibration samples) when only that
layer has int4 weights and every other layer int8. Starting from all-int4, the most
sensitive layers move back to int8 weights, most sensitive first:
- with `--weights-budget BYTES`, every layer whose int8 weights still fit the budget (the
  estimate of `estimate_weights_bytes`), in sensitivity order;
- without it, until the output SNR reaches `--target-snr`.
"""

from __future__ import annotations

import math

from edgec.console.progress import Progress
from edgec.errors import EdgecError
from edgec.ir import Graph
from edgec.quant.calibrate import Calibration, run_fast
from edgec.quant.config import QuantOptions
from edgec.quant.mixed_precision import output_snr

WEIGHT_BITS = (4, 8)
SENSITIVITY_SAMPLES = 4
# Per output channel of an int8 layer in the C: int32 bias, int32 multiplier, int8 shift.
CHANNEL_BYTES = 9


def check_weight_bits(options, target) -> None:
    """EdgecError (one line) when `--weight-bits` / `--weights-budget` cannot apply."""
    bits = getattr(options, "weight_bits", 8)
    budget = getattr(options, "weights_budget", None)
    if bits not in WEIGHT_BITS:
        raise EdgecError(f"--weight-bits takes 4 or 8, not {bits}")
    if bits == 4 and not target.is_int8 and getattr(options, "fallback", None) != "int8":
        raise EdgecError(f"--weight-bits 4 needs an int8 target (W4A8), not {target.name}: "
                         "use e.g. generic-int8 (or --fallback int8 for its int8 variant)")
    if bits == 4 and options.quant != "static":
        raise EdgecError("--weight-bits 4 needs static quantisation: drop --quant dynamic")
    if budget is not None:
        if bits != 4 or not options.auto_mixed_precision:
            raise EdgecError("--weights-budget needs --weight-bits 4 and --auto-mixed-precision")
        if budget <= 0:
            raise EdgecError(f"--weights-budget takes a positive number of bytes, not {budget}")


def quantized_copy(float_graph: Graph, cal: Calibration, keep_float, int8_layers,
                   depthwise_int4: bool = False) -> Graph:
    """float_graph quantised with int4 weights except `int8_layers` (quantize pass only;
    `depthwise_int4`: depthwise convolutions too)."""
    from edgec.passes.quantize import Quantizer
    from edgec.passes.registry import QuantRecord

    g = float_graph.clone()
    opts = QuantOptions(cal, tuple(keep_float), weight_bits=4,
                        int8_weight_layers=tuple(int8_layers), int4_depthwise=depthwise_int4)
    Quantizer(g, opts, QuantRecord()).run()
    return g


def int4_layers(g: Graph) -> dict[str, int]:
    """{source layer name: weight count} of the int4 layers of a quantised graph."""
    return {n.meta.get("source_name", n.name): int(n.input(1).data.size) for n in g.nodes
            if n.op in ("QConv", "QGemm") and n.attrs.get("weight_bits", 8) == 4}


def estimate_weights_bytes(g: Graph) -> int:
    """The C's constant bytes of a quantised graph, estimated before code generation: int4
    weights at half a byte (rows rounded up to whole bytes), other constants at their size,
    and CHANNEL_BYTES of requantisation data per output channel of a QConv / QGemm."""
    total = 0
    counted: set[str] = set()
    for n in g.nodes:
        for i, v in enumerate(n.inputs):
            if v is None or not v.is_const or v.name in counted:
                continue
            counted.add(v.name)
            if i == 1 and n.op in ("QConv", "QGemm") and n.attrs.get("weight_bits", 8) == 4:
                rows = v.data.shape[0]
                total += rows * -(-(v.data.size // max(rows, 1)) // 2)
            else:
                total += v.data.nbytes
        if n.op in ("QConv", "QGemm"):
            total += CHANNEL_BYTES * n.input(1).shape[0]
    return total


def choose_int8_weight_layers(float_graph: Graph, cal: Calibration, samples,
                              target_snr: float, budget: int | None,
                              keep_float: tuple[str, ...] = (), progress: bool | None = None
                              ) -> tuple[list[str], dict]:
    """The layers that keep int8 weights in a `--weight-bits 4` build (module docstring);
    returns (layer names, report.json's `auto_mixed_precision` section)."""
    samples = samples[:SENSITIVITY_SAMPLES]
    refs = [run_fast(float_graph, s) for s in samples]
    all4 = quantized_copy(float_graph, cal, keep_float, ())
    sizes = int4_layers(all4)
    layers = list(sizes)

    def snr_of(int8_layers) -> float:
        g = quantized_copy(float_graph, cal, keep_float, int8_layers)
        return output_snr(float_graph, g, samples, refs)

    sensitivity: dict[str, float] = {}
    with Progress("mixed precision: int4 sensitivity", len(layers), enabled=progress) as bar:
        for name in layers:
            sensitivity[name] = snr_of([n for n in layers if n != name])
            bar.advance()
    order = sorted(layers, key=lambda n: sensitivity[n])
    estimate = estimate_weights_bytes(all4)
    chosen: list[str] = []
    snr = snr_of(())
    history = [{"int8_layers": 0, "snr_db": _finite(snr), "weights_bytes_estimate": estimate}]
    for name in order:
        extra = sizes[name] - sizes[name] // 2
        if budget is not None:
            if estimate + extra > budget:
                continue
        elif snr >= target_snr:
            break
        chosen.append(name)
        estimate += extra
        if budget is None:
            snr = snr_of(chosen)
            history.append({"int8_layers": len(chosen), "snr_db": _finite(snr),
                            "added": name, "weights_bytes_estimate": estimate})
    if budget is not None and chosen:
        snr = snr_of(chosen)
        history.append({"int8_layers": len(chosen), "snr_db": _finite(snr),
                        "weights_bytes_estimate": estimate})
    report = {"weight_bits": 4, "weights_budget": budget,
              "target_snr_db": None if budget is not None else target_snr,
              "output_snr_db": _finite(snr), "int8_weight_layers": chosen,
              "int4_layers": [n for n in layers if n not in chosen],
              "sensitivity_db": {n: _finite(v) for n, v in sensitivity.items()},
              "weights_bytes_estimate": estimate, "history": history,
              "samples": len(samples)}
    return chosen, report


def _finite(x: float) -> float | None:
    return None if math.isinf(x) or math.isnan(x) else round(float(x), 3)
