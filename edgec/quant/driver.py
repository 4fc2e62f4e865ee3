"""int8 orchestration of the compile driver (edgec.compiler.compile_graph calls it).

After the target's float pipeline: calibrate (or note that the model is pre-quantised, or
that the mode is dynamic), optionally choose float layers (--auto-mixed-precision), run the
target's quantisation pipeline, and describe the result for report.json: mode, calibration
method and data, per-layer scales and per-layer SNR against fp32.
"""

from __future__ import annotations

import math

import numpy as np

from edgec.errors import DataError, EdgecError
from edgec.interp import run_graph
from edgec.ir import Graph, Node
from edgec.ops import get_op
from edgec.quant.calibrate import (
    RANDOM_WARNING,
    calibrate,
    load_calibration_inputs,
    random_calibration_inputs,
    split_samples,
)
from edgec.quant.config import QUANT_MODES, QuantOptions

SNR_SAMPLES = 2


def _float_nodes(g: Graph) -> list[Node]:
    """The nodes of an int8 build computing float32 (Quantize/DequantizeLinear aside)."""
    return [n for n in g.nodes if n.op not in ("QuantizeLinear", "DequantizeLinear")
            and all(v.dtype.is_float for v in n.outputs)]


def float_reason(node: Node, record, qopts: QuantOptions) -> str:
    """Why `node` is float32 in the int8 build: the quantize pass's record, else the mode's
    rule (dynamic) or a node a later pass made."""
    if node.name in record.float_reasons:
        return record.float_reasons[node.name]
    if qopts.keeps_float(node.name, node.op):
        return "--keep-float names it"
    if qopts.mode == "dynamic":
        return "dynamic quantisation makes only Gemm/MatMul layers with constant weights int8"
    return "made float by a pass after quantisation (no int8 plan for it)"


def check_keep_float(g: Graph, names) -> None:
    """EdgecError when a --keep-float entry names neither a node nor an op of the graph."""
    nodes = {n.name for n in g.nodes}
    ops = {n.op for n in g.nodes}
    for name in names:
        if name not in nodes and name not in ops:
            raise EdgecError(f"--keep-float '{name}' names no node or op of the model (after "
                             "fusion; see 'edgec report' or --dump-ir for the node names)")


def calibration_samples(g: Graph, options) -> tuple[list, str, list[str]]:
    """(samples, source description, warnings) for the options' calibration data."""
    if options.calib_samples is not None:
        return list(options.calib_samples), "in-memory samples", []
    if options.calib_batches is not None:  # Python data (edgec.compile): N samples per batch
        samples = [s for i, batch in enumerate(options.calib_batches)
                   for s in split_samples(g, batch, f"calibration batch {i}")]
        if not samples:
            raise DataError("the calibration data holds no samples")
        return samples[:options.calib_limit] if options.calib_limit else samples, \
            "in-memory data", []
    if options.calib:
        samples = load_calibration_inputs(g, options.calib, options.preprocess,
                                          options.calib_limit)
        return samples, str(options.calib), []
    return random_calibration_inputs(g, seed=options.seed), "seeded random N(0, 1)", \
        [RANDOM_WARNING]


def layer_snrs(float_graph: Graph, g: Graph, value_map: dict, samples) -> dict[str, float]:
    """SNR (dB) of every int8 value against its fp32 value, on a few samples."""
    names = {}
    for fname, qname in value_map.items():
        v = g.values.get(qname)
        if v is not None and v.quant is not None and not v.is_const:
            names[fname] = v
    if not names:
        return {}
    sums: dict[str, list[float]] = {n: [0.0, 0.0] for n in names}
    for s in samples[:SNR_SAMPLES]:
        with np.errstate(all="ignore"):  # data near float32's limits overflows in float
            ref = run_graph(float_graph, s, keep_all=True)
        got = run_graph(g, s, keep_all=True)
        for fname, v in names.items():
            if fname not in ref or v.name not in got:
                continue
            p = v.quant
            deq = (got[v.name].astype(np.float64) - float(p.zero_point[0])) * float(p.scale[0])
            r = ref[fname].astype(np.float64)
            sums[fname][0] += float(np.sum(r * r))
            sums[fname][1] += float(np.sum((deq - r) ** 2))
    out = {}
    for fname, (signal, noise) in sums.items():
        if noise == 0:
            out[fname] = math.inf
        elif signal > 0:
            out[fname] = 10.0 * math.log10(signal / noise)
    return out


def snr_by_node(quant: dict | None) -> dict[str, float | None]:
    """Per-layer quantisation SNR (dB; None = identical) by int8 node name, from report.json's
    `quantization` section (empty for float targets). `edgec report` shows it as a column."""
    if not quant:
        return {}
    return {layer["node"]: layer["snr_db"] for layer in quant.get("layers", [])
            if "snr_db" in layer}


def quantize_graph(g: Graph, target, options
                   ) -> tuple[Graph, Graph | None, list[str], dict, dict[str, str]]:
    """Quantise the float-pipelined graph `g` for an int8 target.

    Returns (int8 graph, the fp32 graph it came from, warnings, report section, float value
    name -> int8 value name).
    """
    from edgec.passes import PassManager, PassOptions

    if options.quant not in QUANT_MODES:
        raise EdgecError(f"--quant must be one of {', '.join(QUANT_MODES)}, not "
                         f"'{options.quant}'")
    if g.meta.get("prequantized"):
        report = {"mode": "prequantized",
                  "note": "scales taken from the model (QDQ / QLinear operators)"}
        floats = _float_nodes(g)
        report["float_nodes"] = [n.name for n in floats]
        report["float_node_reasons"] = [{"node": n.name, "op": n.op, "reason": (
            f"{n.op} has no int8 form" if get_op(n.op).quant.role == "float" else
            "left float in the pre-quantised model (no int8 pattern around it)")}
            for n in floats]
        return g, None, [], report, {}
    check_keep_float(g, options.keep_float)
    float_graph = g.clone()
    warnings: list[str] = []
    report: dict = {"mode": options.quant}
    keep = tuple(options.keep_float)
    samples = []
    if options.quant == "dynamic":
        qopts = QuantOptions(None, keep, "dynamic")
    else:
        samples, source, warnings = calibration_samples(g, options)
        cal = calibrate(float_graph, samples, options.calib_method, options.calib_percentile,
                        source)
        report["calibration"] = cal.summary()
        int8_layers: tuple[str, ...] = ()
        bits = getattr(options, "weight_bits", 8)
        if options.auto_mixed_precision and bits == 4:  # int8 / int4 weights per layer
            from edgec.quant.weight_bits import choose_int8_weight_layers

            chosen, amp = choose_int8_weight_layers(
                float_graph, cal, samples, options.target_snr,
                getattr(options, "weights_budget", None), keep)
            int8_layers = tuple(chosen)
            report["auto_mixed_precision"] = amp
        elif options.auto_mixed_precision:
            from edgec.quant.mixed_precision import choose_float_layers

            chosen, amp = choose_float_layers(float_graph, cal, samples, options.target_snr,
                                              keep)
            keep = keep + tuple(chosen)
            report["auto_mixed_precision"] = amp
        qopts = QuantOptions(cal, keep, int8_softmax=options.int8_softmax,
                             tflite_activations=options.tflite_activations,
                             weight_bits=bits, int8_weight_layers=int8_layers)
    pass_options = PassOptions(quant=qopts)
    pm = PassManager(list(target.quant_pipeline), verify_each=options.verify_each,
                     dump_dir=options.dump_ir, disabled=set(options.disabled_passes),
                     options=pass_options)
    g = pm.run(g)
    record = pass_options.quant_record
    report["keep_float"] = list(keep)
    float_nodes = _float_nodes(g)
    report["float_nodes"] = [n.name for n in float_nodes]
    report["float_node_reasons"] = [
        {"node": n.name, "op": n.op, "reason": float_reason(n, record, qopts)}
        for n in float_nodes]
    snrs = layer_snrs(float_graph, g, record.value_map, samples) if samples else {}
    layers = []
    for rec in record.layers:
        row = dict(rec)
        value = rec.get("value")
        if value in snrs:
            row["snr_db"] = None if math.isinf(snrs[value]) else round(snrs[value], 2)
        layers.append(row)
    report["layers"] = layers
    return g, float_graph, warnings, report, record.value_map
