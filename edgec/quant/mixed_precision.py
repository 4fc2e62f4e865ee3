"""Automatic mixed precision: keep the most quantisation-sensitive layers in float32.

Sensitivity of a layer = the SNR of the model's outputs (against the fp32 graph, on a few
calibration samples) when only that layer is quantised. The search starts from the fully
quantised graph; while the output SNR is below the target it moves the most sensitive
remaining layer (lowest SNR) to float32 and measures again. Each measurement quantises a
copy of the fp32 graph with the same calibration and runs it with the reference interpreter
(float convolutions through calibration's fast float32 kernels).
"""

from __future__ import annotations

import math

import numpy as np

from edgec.console.progress import Progress
from edgec.ir import Graph
from edgec.quant.calibrate import Calibration, run_fast, snr_db
from edgec.quant.config import QuantOptions

SENSITIVITY_SAMPLES = 4
COMPUTE_OPS = ("Conv", "Gemm", "MatMul", "Add", "Mul", "AveragePool", "GlobalAveragePool")


def quantized_copy(float_graph: Graph, cal: Calibration, keep_float: tuple[str, ...]) -> Graph:
    """float_graph quantised with `keep_float` (quantize pass only, no cleanup)."""
    from edgec.passes.quantize import Quantizer
    from edgec.passes.registry import QuantRecord

    g = float_graph.clone()
    Quantizer(g, QuantOptions(cal, tuple(keep_float)), QuantRecord()).run()
    return g


def output_snr(float_graph: Graph, g: Graph, samples, refs) -> float:
    """The worst output SNR (dB) of `g` against the fp32 outputs `refs` over `samples`."""
    worst = math.inf
    outs = [run_fast(g, s) for s in samples]
    for name in refs[0]:
        ref = np.concatenate([r[name].reshape(-1) for r in refs])
        got = np.concatenate([o[name].reshape(-1) for o in outs])
        worst = min(worst, snr_db(ref, got))
    return worst


def candidate_layers(float_graph: Graph, cal: Calibration, keep_float) -> list[str]:
    """Names of the nodes the quantize pass would turn into int8 compute ops."""
    from edgec.passes.quantize import Quantizer
    from edgec.passes.registry import QuantRecord

    q = Quantizer(float_graph, QuantOptions(cal, tuple(keep_float)), QuantRecord())
    return [n.name for n in float_graph.nodes if q.is_compute(n)]


def choose_float_layers(float_graph: Graph, cal: Calibration, samples, target_snr: float,
                        keep_float: tuple[str, ...] = (), progress: bool | None = None
                        ) -> tuple[list[str], dict]:
    """Layers to keep in float32 so that the output SNR reaches `target_snr` dB.

    Returns (layer names, a report dict with the per-layer sensitivities and the SNRs).
    """
    samples = samples[:SENSITIVITY_SAMPLES]
    refs = [run_fast(float_graph, s) for s in samples]
    layers = candidate_layers(float_graph, cal, keep_float)
    sensitivity: dict[str, float] = {}
    with Progress("mixed precision: layer sensitivity", len(layers), enabled=progress) as bar:
        for name in layers:
            others = tuple(keep_float) + tuple(n for n in layers if n != name)
            g = quantized_copy(float_graph, cal, others)
            sensitivity[name] = output_snr(float_graph, g, samples, refs)
            bar.advance()
    chosen: list[str] = []
    order = sorted(layers, key=lambda n: sensitivity[n])
    snr = output_snr(float_graph, quantized_copy(float_graph, cal, tuple(keep_float)), samples,
                     refs)
    history = [{"float_layers": 0, "snr_db": _finite(snr)}]
    for name in order:
        if snr >= target_snr:
            break
        chosen.append(name)
        g = quantized_copy(float_graph, cal, tuple(keep_float) + tuple(chosen))
        snr = output_snr(float_graph, g, samples, refs)
        history.append({"float_layers": len(chosen), "snr_db": _finite(snr), "added": name})
    report = {"target_snr_db": target_snr, "reached": bool(snr >= target_snr),
              "output_snr_db": _finite(snr), "float_layers": chosen,
              "sensitivity_db": {n: _finite(v) for n, v in sensitivity.items()},
              "history": history, "samples": len(samples)}
    return chosen, report


def _finite(x: float) -> float | None:
    return None if math.isinf(x) or math.isnan(x) else round(float(x), 3)
