"""The arena below the layer-by-layer bound (`--memory-budget`, issue 20), written into
docs/benchmarks.md between the row-bands markers (the rest of the file is kept).

For each zoo model and precision: edgec's arena without the flag (the lower bound of a
layer-by-layer schedule), with the flag, and TensorFlow Lite Micro's arena measured in the
same run (tools/memory_report.py: edgec's .tflite in the tflite-micro interpreter, same
calibration); the fused chains, their line buffers and the extra MACs. MobileNetV2 is built
with the issue's budgets (0.25x TFLM's int8 arena, 0.3x its fp32 arena); the small models
with a budget of 1 byte, i.e. as low as fusion goes. The outputs of the fused build are
checked in the same run: int8 bit for bit against the unfused build's C, fp32 against
onnxruntime. The cost of running fused is counted, not timed (this host is shared): guest
instructions per inference on arm64-int8 under qemu-aarch64 (edgec/workbench/instr_count.py),
unfused and fused.

Usage: python tools/row_bands_report.py [--write docs/benchmarks.md] [--no-count]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "golden" / "models"
sys.path.insert(0, str(REPO / "tools"))
BEGIN, END = "<!-- row-bands:begin -->", "<!-- row-bands:end -->"
MODELS = [("mobilenetv2", "MobileNetV2 1.0 224"), ("resnet8", "ResNet-8"), ("dscnn", "DS-CNN")]
ISSUE_SHARE = {"int8": 0.25, "fp32": 0.3}  # of TFLM's arena, for MobileNetV2


def _options(model: str, target: str, budget: int | None):
    from edgec.compiler import CompileOptions

    opts = CompileOptions(target=target, memory_budget=budget)
    if "int8" in target:  # the calibration tools/memory_report.py uses for TFLM too
        opts.calib_samples = _calibration(model)
    return opts


def _calibration(model: str) -> list[dict]:
    import onnx

    proto = onnx.load(str(ZOO / f"{model}.onnx"), load_external_data=False)
    vi = proto.graph.input[0]
    shape = tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
    rng = np.random.default_rng(1)
    return [{vi.name: rng.standard_normal(shape).astype(np.float32)} for _ in range(8)]


def _outputs(result, feeds: dict) -> dict:
    from edgec.workbench.verify import run_compiled

    with tempfile.TemporaryDirectory(prefix="edgec-bands-") as tmp:
        return run_compiled(result, [feeds], Path(tmp))[0]


def _instructions(result, feeds: dict) -> int:
    from edgec.workbench.compare import harness_io
    from edgec.workbench.instr_count import count_instructions
    from edgec.workbench.verify import build_result

    with tempfile.TemporaryDirectory(prefix="edgec-bands-") as tmp:
        exe = build_result(result, Path(tmp))
        ins, specs = harness_io(result.graph, feeds)
        count, _ = count_instructions(exe, result.target, result.report["prefix"], ins, specs)
    return count.per_inference


def measure(model: str, precision: str, count: bool) -> dict:
    """One row: arenas, TFLM's, the fused chains and the checks of the fused build."""
    from memory_report import measure as memory_row

    from edgec.compiler import compile_model
    from edgec.quant import random_calibration_inputs
    from edgec.workbench.compare import compare, onnxruntime_outputs

    target = f"generic-{precision}"
    tflm = memory_row(model, target)["tflm_bytes"]
    budget = int(ISSUE_SHARE[precision] * tflm) if model == "mobilenetv2" else 1
    path = ZOO / f"{model}.onnx"
    plain = compile_model(path, _options(model, target, None))
    fused = compile_model(path, _options(model, target, budget))
    rb = fused.report["row_bands"]
    feeds = random_calibration_inputs(plain.source_graph, 1, seed=7)[0]
    got = _outputs(fused, feeds)
    if precision == "int8":
        want = _outputs(plain, feeds)
        check = "bit-exact" if all(np.array_equal(got[k], want[k]) for k in want) else "DIFFERS"
    else:
        ref = onnxruntime_outputs(str(path), feeds)
        err = max(compare(k, got[k], np.asarray(v)).max_rel_err for k, v in ref.items())
        check = f"max rel err {err:.1e} vs onnxruntime"
    row = {"model": model, "precision": precision, "budget": budget, "tflm": tflm,
           "before": rb["arena_before_bytes"], "after": fused.report["arena_bytes"],
           "chains": len(rb["regions"]), "layers": sum(len(r["layers"]) for r in rb["regions"]),
           "buffers": sum(r["window_bytes"] for r in rb["regions"]),
           "extra_macs": rb["extra_macs"], "macs": fused.report["macs"], "check": check,
           "in_place": bool(rb["in_place_quantize"])}
    if count and precision == "int8":
        row["instr"] = [_instructions(compile_model(path, _options(model, "arm64-int8", b)),
                                      feeds) for b in (None, budget)]
    return row


def markdown(rows: list[dict]) -> str:
    """The row-bands section."""
    lines = [
        BEGIN,
        "## Activation arena below the layer-by-layer bound (`--memory-budget`)",
        "",
        "Written by `python tools/row_bands_report.py --write docs/benchmarks.md`. *unfused* is",
        "the arena without the flag (the lower bound of a layer-by-layer schedule, the *Activation",
        "arena* section); *fused* the arena with `--memory-budget` (chains of conv layers run row by",
        "row with line buffers, docs/memory.md): MobileNetV2 with the issue's budgets (0.25x",
        "TFLM's int8 arena, 0.3x its fp32 arena), the small models with 1 B (as low as fusion",
        "goes). *TFLM* is measured in this run as in that section. Every row of every",
        "intermediate is computed once: the extra MACs are 0. The fused build's outputs are",
        "checked in the same run (int8: against the unfused build's C; fp32: onnxruntime).",
        "*arm64-int8 instructions* are guest instructions per inference under qemu-aarch64",
        "(deterministic; wall time on this shared host is noise), unfused -> fused: the cost",
        "of the per-row calls and of sliding the line buffers (memmove).",
        "",
        ("| model | precision | budget B | unfused B | fused B | fused / TFLM | TFLM B | "
         "chains (layers) | line buffers B | extra MACs | check | arm64-int8 instructions |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        instr = "-"
        if r.get("instr"):
            a, b = r["instr"]
            instr = f"{a:,} -> {b:,} ({100 * (b - a) / a:+.1f} %)"
        lines.append(
            f"| {r['label']} | {r['precision']} | {r['budget']:,} | {r['before']:,} | "
            f"{r['after']:,} | {r['after'] / r['tflm']:.2f} | {r['tflm']:,} | "
            f"{r['chains']} ({r['layers']}) | {r['buffers']:,} | {r['extra_macs']:,} | "
            f"{r['check']} | {instr} |")
    in_place = [f"{r['label']} {r['precision']}" for r in rows if r["in_place"]]
    if in_place:
        lines += ["", f"Quantised in place ({', '.join(in_place)}): the model's QuantizeLinear",
                  "writes the int8 image over the float input it has read, and the planner",
                  "frees the rest of the float buffer (docs/memory.md)."]
    lines.append(END)
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """Entry point."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--write", metavar="MD", help="write the section into this markdown file")
    ap.add_argument("--no-count", action="store_true", help="skip the arm64 instruction counts")
    args = ap.parse_args(argv)
    rows = []
    for model, label in MODELS:
        for precision in ("fp32", "int8"):
            rows.append({"label": label, **measure(model, precision, not args.no_count)})
            print(f"{model:12s} {precision} {rows[-1]['before']:>10,} -> "
                  f"{rows[-1]['after']:>10,} B  {rows[-1]['check']}", file=sys.stderr)
    section = markdown(rows)
    if args.write:
        from edgec.markdown import replace_section

        replace_section(Path(args.write), BEGIN, END, section)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
