"""What `edgec verify` prints on stdout: the outputs table (fp32 and int8 forms), the compile
summary and the PASS/FAIL line, and the per-layer table of `edgec verify --per-layer`. Names
from the model pass through `edgec.console.visible`, so a newline or an escape sequence in an
output name cannot break the table or forge a line.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from edgec.console import visible
from edgec.console.tables import align_rows, fmt_err, fmt_snr, shorten, table


def model_name(path: str) -> str:
    """The model file's name, printable on one line."""
    return visible(Path(path).name, limit=120)


def print_report_summary(report: dict) -> None:
    """One line of the compile report: kernels, MACs, weights and arena."""
    if not report:
        return
    if report.get("backend") == "coreml":  # no C arena: CoreML plans its own memory
        unit = "layers" if report.get("format") == "neuralnetwork" else "MIL ops"
        print(f"  compiled: {report['kernels']} {unit}, {report['macs']:,} MACs, weights "
              f"{report['weights_bytes']:,} B, {report['format']} for "
              f"{report['deployment_target']}+")
        return
    print(f"  compiled: {report['kernels']} kernels, {report['macs']:,} MACs, weights "
          f"{report['weights_bytes']:,} B, arena {report['arena_bytes']:,} B (lower bound "
          f"{report['arena_lower_bound_bytes']:,} B)")


def _fp32_row(o, snr_floors: dict) -> tuple[str, ...]:
    """One output of an fp32 verify: errors, its band (edgec/workbench/verify.py: max(8 x
    onnxruntime's optimised-vs-unoptimised spread, rtol x max |ref|, 1e-7), shown relative
    to the output's largest magnitude), SNR and status."""
    band = "-" if o.band_rel is None else fmt_err(o.band_rel, missing="inf")
    spread = "-" if o.ort_spread_rel is None else fmt_err(o.ort_spread_rel, missing="inf")
    status = "ok" if o.ok else "MISMATCH"
    if o.name in snr_floors:  # fp16 weights, coreml fp16/int8 (docs/coreml.md, tflite.md)
        status += f" (SNR floor {snr_floors[o.name]:.1f} dB)"
    elif o.band_rel is not None:
        status += (f" (err {o.max_rel_err:.1e} {'within' if o.ok else 'outside'} band "
                   f"{o.band_rel:.1e})")
    return (visible(o.name, limit=80), fmt_err(o.max_abs_err, missing="inf"),
            fmt_err(o.max_rel_err, missing="inf"), band, spread,
            "inf" if math.isinf(o.snr_db) else f"{o.snr_db:.1f}", status)


def _int8_row(o) -> tuple[str, ...]:
    """One output of an int8 verify: C against the int8 reference bit for bit, errors
    against fp32."""
    return (visible(o.name, limit=80), f"{o.mismatched}/{o.numel}",
            fmt_err(o.max_abs_err, missing="inf"),
            "inf" if math.isinf(o.snr_db) else f"{o.snr_db:.1f}",
            ("bit-exact" if o.mismatched == 0 else "ok (fp32 tol)") if o.ok else "MISMATCH")


FP32_HEADER = ("output", "max abs err", "max rel err", "band", "ort self-spread", "SNR dB",
               "status")
INT8_HEADER = ("output", "differing", "max abs err vs fp32", "SNR dB vs fp32", "status")


def print_verify(args, res, final: bool | None = None) -> None:
    """The outputs table of `edgec verify` (fp32: within each output's band of onnxruntime;
    int8: bit-exact against the int8 reference), the compile summary and PASS/FAIL."""
    if res.exact:
        rows = [INT8_HEADER, *(_int8_row(o) for o in res.outputs)]
        against = "C vs the int8 reference interpreter, errors vs onnxruntime fp32"
    else:
        floors = res.report.get("snr_floor_db", {})
        rows = [FP32_HEADER, *(_fp32_row(o, floors) for o in res.outputs)]
        against = f"band = max(8 x ort self-spread, rtol {args.rtol:g}, 1e-7 abs)"
    print(f"edgec verify: {model_name(args.model)} on {res.target} "
          f"({res.samples} sample{'s' if res.samples != 1 else ''}; {against})")
    for line in align_rows(rows, indent="  ", strip=False):
        print(line)
    print_report_summary(res.report)
    print("edgec verify: " + ("PASS" if (res.ok if final is None else final) else "FAIL"))


def _layer_label(e, width: int = 36) -> str:
    fused = len(e.source_nodes) - 1
    suffix = f" (+{fused} fused)" if fused > 0 else ""
    return shorten(e.layer_name, width - len(suffix)) + suffix


def per_layer_text(res, model_name: str) -> str:
    """The per-layer table of `edgec verify --per-layer`, first divergence marked."""
    first = res.first_divergent
    int8 = res.verify.exact
    if int8:
        header = ["step", "layer", "op", "tensor", "shape", "differing", "SNR dB vs fp32",
                  "status"]
    else:
        header = ["step", "layer", "op", "tensor", "shape", "max abs err", "max rel err",
                  "SNR dB", "status"]
    rows = []
    for r in res.layers:
        e = r.entry
        shape = "x".join(map(str, e.source_shape or e.shape)) or "scalar"
        if r is first:
            status = "DIVERGES"
        elif not r.ok:
            status = "mismatch"
        elif not r.compared:
            status = "not compared"
        else:
            status = "ok"
        cells = [str(e.step), _layer_label(e), e.op, shorten(e.key, 36), shape]
        if int8:
            if not r.compared:
                differing = "-"
            elif np.dtype(e.dtype).kind == "f":  # a float island: compared within rtol
                differing = f"rel {fmt_err(r.max_rel_err)}"
            else:
                differing = f"{r.mismatched}/{r.numel}"
            cells += [differing, fmt_snr(r.fp32_snr_db), status]
        else:
            cells += [fmt_err(r.max_abs_err) if r.compared else "-",
                      fmt_err(r.max_rel_err) if r.compared else "-",
                      fmt_snr(r.snr_db) if r.compared else "-", status]
        rows.append(cells)
    head = (f"edgec verify --per-layer: {model_name} on {res.verify.target}: "
            f"{len(res.layers)} tensors dumped; reference: {res.reference}"
            + ("" if int8 else f", rtol {res.rtol:g}"))
    lines = [head, table(header, rows, right={0, 5, 6, 7} if not int8 else {0, 5, 6},
                         status_col=len(header) - 1)]
    if res.crash:
        lines.append(f"the debug build stopped: {res.crash}")
    if first is not None:
        e = first.entry
        why = first.note or (f"{first.mismatched} of {first.numel} elements differ"
                             if int8 and np.dtype(e.dtype).kind != "f"
                             else f"max rel err {fmt_err(first.max_rel_err)} > {res.rtol:g}")
        lines.append(f"first divergence: step {e.step}, layer {e.layer_name} ({e.op}, tensor "
                     f"{e.key}): {why}")
    elif res.layers:
        lines.append("every layer matches its reference")
    return "\n".join(lines)
