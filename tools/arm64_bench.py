#!/usr/bin/env python3
"""arm64 instruction counts: every zoo model on every arm64 target, under QEMU.

    python tools/arm64_bench.py [--models a,b] [--targets t1,t2] [--write docs/benchmarks.md]
                                [--json rows.json]

For each model and target, edgec compiles the model (int8: calibrated on the 16 seeded
samples `edgec bench` uses), builds it with the target's cross compiler and runs one
inference under qemu-aarch64 with edgec's TCG counting plugin (edgec/workbench/instr_count.py,
tools/build_tcg_plugin.py): executed guest instructions inside `<prefix>_run` only. The same
model is also built with the portable C kernels and the same compiler, flags and emulator
(the target's "-portable" twin) for the ratio NEON / portable. Counts are deterministic, so
one run is enough. The table goes between the `arm64` markers of docs/benchmarks.md (the
rest of the file is kept).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = ("digits_cnn", "dscnn", "resnet8", "mobilenetv2")
TARGETS = ("arm64-fp32", "arm64-int8", "arm64-int8-i8mm", "arm64-int8-base")
BEGIN, END = "<!-- arm64:begin -->", "<!-- arm64:end -->"
# Acceptance of the arm64 issue, checked on MobileNetV2 / arm64-int8.
MAX_INSTRUCTIONS_PER_MAC = 0.25
MAX_RATIO_TO_PORTABLE = 1 / 3
# Goals of issue 20 (instructions per MAC on MobileNetV2), per target.
ISSUE20_GOALS = {"arm64-int8": 0.13, "arm64-int8-i8mm": 0.09, "arm64-fp32": 0.35}


def measure(model: str, target: str, workdir: Path) -> dict:
    """One table row: the NEON build's and the portable twin's counts."""
    from edgec.workbench.bench import bench_inputs, calibration_inputs, compile_for_bench
    from edgec.frontend.onnx import load_onnx
    from edgec.workbench.instr_count import count_model, portable_twin
    from edgec.targets import get_target

    path = REPO / "golden" / "models" / f"{model}.onnx"
    g = load_onnx(path, {})
    feeds = bench_inputs(g)
    calib = calibration_inputs(g) if get_target(target).is_int8 else None
    row = {"model": model, "target": target}
    for key, name in (("neon", target), ("portable", portable_twin(target).name)):
        result, _ = compile_for_bench(path, name, calib)
        row[key] = count_model(result, feeds, workdir / f"{model}-{name}")
    row["macs"] = row["neon"]["macs"]
    row["ratio"] = row["neon"]["instructions"] / row["portable"]["instructions"]
    return row


def _tool_version(cmd: list[str]) -> str:
    exe = shutil.which(cmd[0])
    if exe is None:
        return "not installed"
    out = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, check=False).stdout
    return (out.strip().splitlines() or ["?"])[0]


def render(rows: list[dict]) -> str:
    """The markdown section."""
    lines = [BEGIN, "## arm64: executed instructions per inference (QEMU TCG plugin)", "",
             ("Written by `python tools/arm64_bench.py --write docs/benchmarks.md`; do not edit "
             "by hand. Emulated wall time means nothing, so the cost is the number of guest "
             "instructions executed inside the model's run function (layers and the libc/libm "
             "calls they make), counted by edgec's QEMU TCG plugin over one inference; counts "
             "are deterministic. *portable C* is the same model built with edgec's portable "
             "kernels by the same compiler with the same flags (`<target>-portable`)."), "",
             (f"{datetime.date.today().isoformat()}; "
              f"{_tool_version(['qemu-aarch64', '--version'])}; "
              f"{_tool_version(['aarch64-linux-gnu-gcc', '--version'])}."), "",
             ("| model | target | MACs | instructions | instructions / MAC | portable C "
             "instructions | NEON / portable |"), "|---|---|---|---|---|---|---|"]
    for r in rows:
        n, p = r["neon"], r["portable"]
        ipm = f"{n['instructions_per_mac']:.3f}" if n["instructions_per_mac"] else "—"
        lines.append(f"| {r['model']} | {r['target']} | {r['macs'] / 1e6:.2f} M | "
                     f"{n['instructions'] / 1e6:.2f} M | {ipm} | "
                     f"{p['instructions'] / 1e6:.2f} M | {r['ratio']:.3f} |")
    mnv2 = next((r for r in rows if r["model"] == "mobilenetv2" and r["target"] == "arm64-int8"),
                None)
    if mnv2 is not None:
        ipm, ratio = mnv2["neon"]["instructions_per_mac"], mnv2["ratio"]
        lines += ["", (f"Acceptance (MobileNetV2, arm64-int8): {ipm:.3f} instructions per MAC "
                  f"(goal <= {MAX_INSTRUCTIONS_PER_MAC}: "
                  f"{'met' if ipm <= MAX_INSTRUCTIONS_PER_MAC else 'NOT met'}); "
                  f"{ratio:.3f} x the portable C build (goal <= 1/3: "
                  f"{'met' if ratio <= MAX_RATIO_TO_PORTABLE else 'NOT met'}).")]
    goals = []
    for target, goal in ISSUE20_GOALS.items():
        row = next((r for r in rows if r["model"] == "mobilenetv2" and r["target"] == target),
                   None)
        if row is not None:
            ipm = row["neon"]["instructions_per_mac"]
            goals.append(f"{target} {ipm:.3f} (goal <= {goal}: "
                         f"{'met' if ipm <= goal else 'NOT met'})")
    if goals:
        lines += ["", "Issue 20 (MobileNetV2, instructions per MAC): " + "; ".join(goals) + "."]
    for r in rows:
        if r["model"] != "mobilenetv2":
            continue
        lines += ["", f"MobileNetV2 on {r['target']}, by layer type (NEON build / portable C):",
                  "", ("| layer type | layers | MACs | instructions | instructions / MAC | "
                  "portable instructions / MAC |"), "|---|---|---|---|---|---|"]
        portable = r["portable"]["instructions_by_layer_type"]
        for kind, t in r["neon"]["instructions_by_layer_type"].items():
            pt = portable.get(kind, {})
            ipm = f"{t['instructions_per_mac']:.3f}" if t["instructions_per_mac"] else "—"
            pipm = f"{pt['instructions_per_mac']:.3f}" if pt.get("instructions_per_mac") \
                else "—"
            lines.append(f"| {kind} | {t['layers']} | {t['macs'] / 1e6:.2f} M | "
                         f"{t['instructions'] / 1e6:.3f} M | {ipm} | {pipm} |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace (or append) this tool's marked section of `path`, keeping everything else."""
    from edgec.markdown import replace_section

    replace_section(path, BEGIN, END, section)


def main(argv: list[str] | None = None) -> int:
    """Count every model x target, print the section, optionally write it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--write", metavar="MD", help="write the section into this markdown file")
    ap.add_argument("--json", metavar="FILE", help="also save the rows as JSON")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "tests"))
    from helpers import ensure_zoo

    ensure_zoo()
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgec-arm64-bench-") as tmp:
        for model in args.models.split(","):
            for target in args.targets.split(","):
                row = measure(model, target, Path(tmp))
                rows.append(row)
                print(f"arm64_bench: {model:12s} {target:16s} "
                      f"{row['neon']['instructions']:>12,d} instructions "
                      f"({row['neon']['instructions_per_mac'] or 0:.3f}/MAC), "
                      f"{row['ratio']:.3f} x portable", file=sys.stderr)
    section = render(rows)
    print(section)
    if args.write:
        write_section(Path(args.write), section)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
