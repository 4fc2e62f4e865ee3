"""What `edgec verify` prints on stdout: the outputs table, the compile summary and the
PASS/FAIL line. Names from the model pass through `edgec.console.visible`, so a newline or an
escape sequence in an output name cannot break the table or forge a line.
"""

from __future__ import annotations

import math
from pathlib import Path

from edgec.console import visible


def fmt_err(x: float | None) -> str:
    """An error value for the table: 3 significant digits, 'inf' when absent or infinite."""
    if x is None or (isinstance(x, float) and math.isinf(x)):
        return "inf"
    return f"{x:.3g}"


def model_name(path: str) -> str:
    """The model file's name, printable on one line."""
    return visible(Path(path).name, limit=120)


def print_report_summary(report: dict) -> None:
    """One line of the compile report: kernels, MACs, weights and arena."""
    if not report:
        return
    print(f"  compiled: {report['kernels']} kernels, {report['macs']:,} MACs, weights "
          f"{report['weights_bytes']:,} B, arena {report['arena_bytes']:,} B (lower bound "
          f"{report['arena_lower_bound_bytes']:,} B)")


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))


def print_verify(args, res, final: bool | None = None) -> None:
    """The outputs table of `edgec verify`, the compile summary and its PASS/FAIL line."""
    if res.exact:
        print_int8_verify(args, res, final)
        return
    # band (edgec/workbench/verify.py): max(8 x onnxruntime's optimised-vs-unoptimised spread,
    # rtol x max |ref|, 1e-7), shown relative to the output's largest magnitude
    rows = [("output", "max abs err", "max rel err", "band", "ort self-spread", "SNR dB",
             "status")]
    for o in res.outputs:
        band = "-" if o.band_rel is None else fmt_err(o.band_rel)
        spread = "-" if o.ort_spread_rel is None else fmt_err(o.ort_spread_rel)
        status = "ok" if o.ok else "MISMATCH"
        if o.band_rel is not None:
            status += (f" (err {o.max_rel_err:.1e} {'within' if o.ok else 'outside'} band "
                       f"{o.band_rel:.1e})")
        rows.append((visible(o.name, limit=80), fmt_err(o.max_abs_err),
                     fmt_err(o.max_rel_err), band, spread,
                     "inf" if math.isinf(o.snr_db) else f"{o.snr_db:.1f}", status))
    print(f"edgec verify: {model_name(args.model)} on {res.target} "
          f"({res.samples} sample{'s' if res.samples != 1 else ''}; band = max(8 x ort "
          f"self-spread, rtol {args.rtol:g}, 1e-7 abs))")
    _print_table(rows)
    print_report_summary(res.report)
    print("edgec verify: " + ("PASS" if (res.ok if final is None else final) else "FAIL"))


def print_int8_verify(args, res, final: bool | None = None) -> None:
    """The int8 form: C against the int8 reference bit for bit, errors against fp32."""
    rows = [("output", "differing", "max abs err vs fp32", "SNR dB vs fp32", "status")]
    for o in res.outputs:
        rows.append((visible(o.name, limit=80), f"{o.mismatched}/{o.numel}",
                     fmt_err(o.max_abs_err), "inf" if math.isinf(o.snr_db) else f"{o.snr_db:.1f}",
                     ("bit-exact" if o.mismatched == 0 else "ok (fp32 tol)") if o.ok
                     else "MISMATCH"))
    print(f"edgec verify: {model_name(args.model)} on {res.target} "
          f"({res.samples} sample{'s' if res.samples != 1 else ''}; C vs the int8 reference "
          "interpreter, errors vs onnxruntime fp32)")
    _print_table(rows)
    print_report_summary(res.report)
    print("edgec verify: " + ("PASS" if (res.ok if final is None else final) else "FAIL"))
