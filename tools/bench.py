"""Side-by-side latency of the zoo models: edgec's generated C vs onnxruntime (and LiteRT),
written into docs/benchmarks.md between the bench markers (the rest of the file is kept).

For each model and precision, `edgec.workbench.bench.bench_model` runs edgec's C (built for
the host target) and onnxruntime in one process, alternating, and reports medians (see
edgec/workbench/bench.py for the method). int8 compares `x86_64-int8` with onnxruntime's own
quantize_static models (QDQ and QOperator, per-channel, u8 activations / s8 weights, same calibration samples); the
faster form is the reference and named in the table.

Usage: python tools/bench.py [--models a,b] [--targets t1,t2] [--runs N] [--write MD] [--json F]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "golden" / "models"
MODELS = ["mobilenetv2", "resnet8", "dscnn", "digits_cnn"]
TARGETS = ["x86_64-fp32", "x86_64-int8"]
VNNI_TARGET = "x86_64-int8-vnni"  # added by default on hosts with AVX-512 VNNI
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def versions() -> dict:
    """Versions of everything that shapes the numbers."""
    import numpy
    import onnx
    import onnxruntime

    import edgec

    cc = subprocess.run(["cc", "--version"], capture_output=True, text=True, check=False).stdout
    out = {"edgec": edgec.__version__, "onnxruntime": onnxruntime.__version__,
           "onnx": onnx.__version__, "numpy": numpy.__version__,
           "python": platform.python_version(), "cc": (cc.splitlines() or ["?"])[0]}
    from importlib.metadata import PackageNotFoundError, version

    try:
        out["ai-edge-litert"] = version("ai-edge-litert")
    except PackageNotFoundError:  # not installed: the LiteRT column says why it is empty
        pass
    return out


def _ms(x) -> str:
    return "—" if x is None else (f"{x:.3f}" if x >= 0.1 else f"{x:.4f}")


def markdown(rows: list[dict], machine: dict, peak: dict | None, vers: dict,
             overhead_ms: float | None) -> str:
    """The bench section of docs/benchmarks.md."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = machine.get("cpu", "?")
    fam = (f" (family {machine['cpu_family']}, model {machine['cpu_model']})"
           if "cpu_family" in machine and "cpu_model" in machine else "")
    lines = [
        BEGIN,
        "## Latency: edgec vs onnxruntime (one core)",
        "",
        "Written by `python tools/bench.py --write docs/benchmarks.md`; do not edit by hand.",
        "",
        (f"Machine: {cpu}{fam}, {machine.get('cores')} cores, flags "
         f"{' '.join(machine.get('flags', []))}, nominal {machine.get('mhz') or '?'} MHz; "
         f"{machine.get('os', '')}. Measured {now}."),
        "Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()) + ".",
    ]
    if peak:
        lines.append(
            f"FMA peak (measured: 10 independent 256-bit FMA chains, the best of short probes "
            f"between the runs): {peak['peak_gmacs']:.1f} GMAC/s fp32, i.e. an effective "
            f"clock of {peak['clock_ghz']:.2f} GHz assuming 2 FMA instructions x 8 fp32 lanes "
            "per cycle (Zen 3/4)."
            + (f" AVX2 int8 ceiling (measured the same way: 12 independent vpmaddwd + vpaddd "
               f"chains, 16 int8 MACs each): {peak['int8_avx2_gmacs']:.1f} GMAC/s."
               if peak.get("int8_avx2_gmacs") else ""))
    lines += [
        "",
        ("Method: one process; edgec's C (built with the target's flags into a shared library, "
         "timed in C around each `<prefix>_run` call) and onnxruntime (1 intra-op and 1 "
         "inter-op thread, ORT_ENABLE_ALL, IOBinding with preallocated buffers, each call timed "
         "from Python) alternate in chunks of 5 runs after 10 warm-up runs; medians over "
         f"{rows[0]['runs'] if rows else '?'} runs each. ")
        + (f"An onnxruntime call costs {overhead_ms * 1000:.1f} us by itself (an Identity "
           "model through the same binding); it is included in its latencies, not subtracted. "
           if overhead_ms is not None else "")
        + "int8: edgec's int8 targets vs onnxruntime's own `quantize_static` models (per-channel, "
        "u8 activations / s8 weights, calibrated on the same 16 seeded N(0, 1) samples); both "
        "the QDQ and the QOperator form run and the faster is the reference (named in the "
        "table). LiteRT: edgec's own .tflite of the model (tflite-fp32, or tflite-int8 "
        "calibrated on the same samples; docs/tflite.md) in LiteRT's default CPU path (XNNPACK "
        "delegate, 1 thread), each invoke timed from Python, in the same alternation. The "
        "machine is shared and noisy: the ratio, measured side by side, is the number to read.",
        "",
        ("| model | precision | edgec ms | onnxruntime ms | ratio edgec / ort | LiteRT ms | "
         "MMACs | edgec GMAC/s | share of peak | edgec compile s |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['precision']} | error: {r['error']} | | | | | | "
                         "| |")
            continue
        ort = r.get("onnxruntime_ms")
        form = r.get("onnxruntime_form", "")
        ort_txt = f"{_ms(ort)} ({form})" if ort is not None else "—"
        share = f"{r['peak_share']:.0%}" if "peak_share" in r else "—"
        lines.append(
            f"| {r['model']} | {r['precision']} ({r['target']}) | {_ms(r['latency_ms'])} | "
            f"{ort_txt} | **{r['ratio']:.2f}** | {r.get('litert', '—')} | "
            f"{r['macs'] / 1e6:.1f} | {r['gmacs']:.1f} | {share} | {r['compile_s']:.2f} |")
    int8 = [r for r in rows if r.get("precision") == "int8" and "error" not in r]
    if int8 and "avx512_vnni" in machine.get("flags", []):
        lines += ["", ("int8 on this host: onnxruntime's int8 kernels may use the CPU's "
                       "AVX-512 VNNI (vpdpbusd, 4 int8 products per 32-bit lane per "
                       "instruction). `x86_64-int8` is AVX2 only (vpmaddwd: 2 products per "
                       "lane, exact without saturation; vpmaddubsw is exact only where every "
                       "weight pair has |w0| + |w1| <= 128, which per-channel weights using the "
                       "full int8 range break, and it still needs a vpmaddwd to widen its int16 "
                       "sums, so it has the same ceiling), so its share of peak is of the AVX2 "
                       "int8 ceiling above; "
                       "`x86_64-int8-vnni` uses vpdpbusd like onnxruntime does.")]
    bounds = [r for r in int8 if "avx2_bound_ms" in r and r.get("onnxruntime_ms")]
    if bounds:
        lines += ["", "Least latency any AVX2 int8 kernel could reach here (MMACs / the AVX2 "
                  "int8 ceiling, nothing else counted) vs onnxruntime's: " + "; ".join(
                      f"{r['model']} {_ms(r['avx2_bound_ms'])} ms vs {_ms(r['onnxruntime_ms'])} "
                      f"ms ({r['avx2_bound_ms'] / r['onnxruntime_ms']:.2f}x)" for r in bounds)
                  + ". Where that ratio is near or above 1, `x86_64-int8` could match onnxruntime's "
                  "VNNI kernels only by running every layer, depthwise and requantisation "
                  "included, at the ceiling of the vpmaddwd inner loop."]
    forms = [r for r in rows if len(r.get("onnxruntime_forms_ms", {})) > 1]
    if forms:
        lines += ["", "onnxruntime int8 forms (median ms, same run as the row; the ratio uses "
                  "the faster): " + "; ".join(
                      f"{r['model']} ({r['target']}): " + ", ".join(
                          f"{k} {_ms(v)}" for k, v in r["onnxruntime_forms_ms"].items())
                      for r in forms) + "."]
    if any(r.get("peak_share", 0) > 1 for r in rows):
        lines += ["", ("MACs are those of the direct convolution; 3x3 layers that run as "
                       "Winograd F(2x2, 3x3) multiply 2.25x less, so a model's GMAC/s can "
                       "exceed the FMA peak.")]
    lines += ["", ("edgec compile s: `edgec compile` in-process (import, passes, memory plan, "
                   "C generation), without int8 calibration; the C compiler's time is not "
                   "included."), END]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace (or append) this tool's marked section of `path`, keeping everything else."""
    from edgec.markdown import replace_section

    replace_section(path, BEGIN, END, section)


def main(argv=None) -> int:
    """Benchmark every model x target and print (and optionally write) the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--targets", help="comma-separated targets (default: "
                    f"{','.join(TARGETS)}, and {VNNI_TARGET} on hosts with AVX-512 VNNI)")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--write", metavar="MD", help="write the section into this markdown file")
    ap.add_argument("--json", metavar="FILE", help="also save the rows as JSON")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from edgec.workbench.bench import bench_model
    from edgec.workbench.machine import machine_info, measure_fma_peak
    from edgec.workbench.runners import ort_call_overhead_ns

    targets = args.targets.split(",") if args.targets else TARGETS + (
        [VNNI_TARGET] if "avx512_vnni" in machine_info()["flags"] else [])
    rows = []
    for model in args.models.split(","):
        for target in targets:
            try:
                row = bench_model(ZOO / f"{model}.onnx", target, runs=args.runs)
            except Exception as e:  # noqa: BLE001 - one failing row must not lose the others
                row = {"model": model, "target": target, "precision": target.split("-")[-1],
                       "error": f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"}
            print(json.dumps(row), flush=True)
            rows.append(row)
    with tempfile.TemporaryDirectory() as tmp:
        peak = measure_fma_peak(Path(tmp))
    best = max((r for r in rows if "fma_peak_gmacs" in r), default=None,
               key=lambda r: r["fma_peak_gmacs"])
    if best is not None and (peak is None or best["fma_peak_gmacs"] > peak["peak_gmacs"]):
        peak = {**(peak or {}), "peak_gmacs": best["fma_peak_gmacs"],
                "clock_ghz": best["clock_ghz_est"]}
    int8_peak = max((r["int8_avx2_peak_gmacs"] for r in rows if "int8_avx2_peak_gmacs" in r),
                    default=0.0)
    if peak is not None and int8_peak > peak.get("int8_avx2_gmacs", 0.0):
        peak["int8_avx2_gmacs"] = int8_peak
    section = markdown(rows, machine_info(), peak, versions(), ort_call_overhead_ns() / 1e6)
    print(section)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    if args.write:
        write_section(Path(args.write), section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
