#!/usr/bin/env python3
"""Cortex-M benchmarks: per target and model, executed instructions per MAC, estimated cycles,
flash and RAM, next to the TFLite Micro arena of the same model, with the portable kernels
(the target's portable twin) and with the DSP/Helium kernels kernel selection picks
(codegen/c/kernels/cortexm.py); and the kernels alone on DS-CNN-shaped layers.

    python tools/cortexm_bench.py [--models a,b] [--targets t1,t2] [--write docs/benchmarks.md]

Everything runs in qemu-system-arm (edgec/cortexm/measure.py): instruction counts are
deterministic, so one run is enough. The TFLM arena is measured in the same run with the
tflite-micro package on the .tflite file edgec writes for the same model and calibration
(target tflite-int8; its interpreter's RecordingMicroAllocator total). The table goes
between the `cortexm` markers of docs/benchmarks.md (the rest of the file is kept).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "golden" / "models"
BEGIN, END = "<!-- cortexm:begin -->", "<!-- cortexm:end -->"
MODELS = ("dscnn", "resnet8", "digits_cnn")
TARGETS = ("cortex-m0-int8", "cortex-m4-int8", "cortex-m7-int8", "cortex-m55-int8",
           "cortex-m4-fp32", "cortex-m7-fp32")
KERNEL_TARGETS = ("cortex-m4-int8", "cortex-m7-int8", "cortex-m55-int8")
CALIB_SAMPLES = 8
TFLM_SCRIPT = """
import sys
from tflite_micro.python.tflite_micro import runtime
runtime.Interpreter.from_file(sys.argv[1]).print_allocations()
"""


def calibration(model: str) -> list:
    """Seeded calibration inputs shared by the C and the TFLite compile of a model."""
    from edgec.frontend.onnx import load_onnx
    from edgec.quant import random_calibration_inputs

    return random_calibration_inputs(load_onnx(ZOO / f"{model}.onnx"), CALIB_SAMPLES, seed=1)


def tflm_arena_bytes(model: str, calib: list, tmp: Path) -> int | None:
    """TFLM's arena for edgec's .tflite of `model` (None without tflite-micro)."""
    from edgec.compiler import CompileOptions, compile_model

    res = compile_model(ZOO / f"{model}.onnx",
                        CompileOptions(target="tflite-int8", calib_samples=calib))
    path = tmp / f"{model}.tflite"
    path.write_bytes(next(v for k, v in res.files.items() if k.endswith(".tflite")))
    proc = subprocess.run([sys.executable, "-c", TFLM_SCRIPT, str(path)], capture_output=True,
                          text=True, check=False)
    m = re.search(r"Arena allocation total (\d+) bytes", proc.stdout + proc.stderr)
    return int(m.group(1)) if m else None


def bench_row(model: str, target: str, calib: list, tmp: Path, kernels: bool = False,
              io: str = "float") -> dict:
    """bench_cortexm's row for one model on one target; `kernels`: with the DSP/Helium
    kernels kernel selection picks (codegen/c/kernels/cortexm.py), else the target's
    portable twin (same compiler, flags and board; portable C kernels only); `io`: "int8"
    for int8 model I/O (--io int8, passes/int8_io.py)."""
    from edgec.compiler import CompileOptions, compile_model
    from edgec.cortexm.measure import bench_cortexm
    from edgec.workbench.compare import random_inputs
    from edgec.workbench.instr_count import portable_twin

    name = target if kernels else portable_twin(target).name
    res = compile_model(ZOO / f"{model}.onnx", CompileOptions(
        target=name, calib_samples=calib if target.endswith("int8") else None, io=io))
    row = bench_cortexm(res, random_inputs(res.source_graph, 0),
                        tmp / f"{model}-{target}-{int(kernels)}-{io}")
    row["model"], row["target"] = model, target
    row["kernels"] = ("edgec_cm" if kernels else "portable") + \
        (", --io int8" if io == "int8" else "")
    return row


def kernel_rows(tmp: Path) -> list[dict]:
    """Instructions per MAC of the DSP (cortex-m4) and Helium (cortex-m55) kernels on
    DS-CNN's pointwise (250 pixels x 64 x 64) and depthwise (25 x 5 x 64, 3 x 3) shapes."""
    sys.path.insert(0, str(REPO / "tests" / "cortexm"))
    from edgec.codegen.c.isa.cortexm import (
        pack_dsp_depthwise_weights,
        pack_dsp_gemm_weights,
        pack_mve_depthwise_weights,
        pack_mve_gemm_weights,
    )
    from kernel_case import run_case

    from edgec import qmath

    rng = np.random.default_rng(0)
    rows_, k, n = 250, 64, 64
    x = rng.integers(-128, 128, (rows_, k)).astype(np.int8)
    w = rng.integers(-127, 128, (n, k)).astype(np.int8)
    bias = rng.integers(-3000, 3000, n).astype(np.int32)
    mult, shift = qmath.quantize_multipliers(rng.uniform(1e-3, 1e-2, n))
    xd = rng.integers(-128, 128, (25, 5, 64)).astype(np.int8)
    wd = rng.integers(-127, 128, (3, 3, 64)).astype(np.int8)
    dsp_arrays = {"w": pack_dsp_gemm_weights(w), "wd": pack_dsp_depthwise_weights(wd),
                  "bias_raw": (bias.astype(np.int64) + 5 * wd.reshape(-1, 64).astype(
                      np.int64).sum(0)).astype(np.int32)}
    out = []
    for header, fn, geo, target in (
            ("edgec_cm_dsp.h", "edgec_cm", "edgec_cm_conv_geometry", "cortex-m4-int8"),
            ("edgec_cm_mve.h", "edgec_cm_mve", "edgec_cm_conv_geometry", "cortex-m55-int8")):
        dsp = fn == "edgec_cm"  # packed weights, stack scratch
        scratch = ", (int32_t *)(void *)kcase_scratch" if dsp else ""
        flags = "1 | EDGEC_CM_ACC30" if dsp else "1"  # as the compiler passes for these
        body = (f"    {fn}_gemm_s8(x, {rows_}, {k}, w, {n}, bias, mult, shift, {flags}, 3, -128,"
                f" 127, kcase_out{scratch});")
        _, ins = run_case(tmp / f"pw-{target}", target, header,
                          {"x": x, "w": dsp_arrays["w"] if dsp else pack_mve_gemm_weights(w),
                           "bias": bias,
                           "mult": mult, "shift": shift}, rows_ * n, body, count=True,
                          scratch=4 * (k + 2 * n))
        out.append({"kernel": f"{fn}_gemm_s8 (pointwise 250x64x64)", "target": target,
                    "instructions": ins, "macs": rows_ * k * n})
        body = (f"    const {geo} g = {{25, 5, 64, 25, 5, 64, 3, 3, 1, 1, 1, 1, 1, 1}};\n"
                f"    {fn}_depthwise_s8(&g, x, 5, w, bias, bias_raw, mult, shift, {flags}, 3,"
                " -128, 127, kcase_out, (int32_t *)(void *)kcase_scratch);")
        arrays = {"x": xd, "w": dsp_arrays["wd"] if dsp else pack_mve_depthwise_weights(wd), "bias": bias, "mult": mult,
                  "shift": shift, "bias_raw": dsp_arrays["bias_raw"]}
        _, ins = run_case(tmp / f"dw-{target}", target, "edgec_cm_dsp_dw.h" if dsp else header,
                          arrays, xd.size, body, count=True,
                          scratch=8 * 3 * 27)  # the ring: 3 columns of 27 cells
        out.append({"kernel": f"{fn}_depthwise_s8 (25x5x64, 3x3)", "target": target,
                    "instructions": ins, "macs": xd.size * 9})
    return out


def section(rows: list[dict], kernels: list[dict], tflm: dict) -> str:
    """The markdown section."""
    first = rows[0]
    intro = ("Written by `python tools/cortexm_bench.py --write docs/benchmarks.md`; do not "
             "edit by hand. Every number comes from one run in qemu-system-arm "
             f"({first['qemu_version']}), built with {first['compiler']}. *instr* counts the "
             "instructions executed inside the model's run function (deterministic); *est. "
             "cycles* prices them with the core's instruction-class table (docs/cortex-m.md: "
             "an estimate without memory wait states). *flash* = .text + .rodata + .data of "
             "the whole image; *RAM* = arena + worst-case stack. *TFLM arena* is the "
             "tflite-micro interpreter's arena for the .tflite edgec writes for the same "
             "model and calibration (target tflite-int8), measured in the same run. "
             "*kernels*: `portable` is the target's portable twin (portable C kernels only); "
             "`edgec_cm` is what the DSP (M4/M7) and Helium (M55) targets compile to: int8 "
             "QConv/QGemm, pools and adds on edgec's Cortex-M kernels "
             "(codegen/c/kernels/cortexm.py, cortexm_pool.py; bit-exact, "
             "tests/cortexm/test_kernels_in_models.py); `--io int8`: the same with int8 model "
             "inputs and outputs (no float quantise/dequantise at the edges; "
             "passes/int8_io.py).")
    header = ("| model | target | kernels | MACs | instr | instr/MAC | est. cycles | cycles/MAC "
              "| flash B | RAM B (arena + stack) | TFLM arena B | RAM / TFLM | fits device |")
    lines = [BEGIN, "## Cortex-M: instructions, cycles, flash and RAM (tools/cortexm_bench.py)", "",
             intro, "", header,
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = tflm.get(r["model"]) if r["target"].endswith("int8") else None
        ratio = f"{r['ram_bytes'] / t:.3f}" if t else "-"
        lines.append(
            f"| {r['model']} | {r['target']} | {r['kernels']} | {r['macs']:,} | "
            f"{r['instructions']:,} | "
            f"{r['instructions_per_mac']:.3f} | {r['cycles_est']:,} | "
            f"{r['cycles_per_mac_est']:.3f} | {r['flash_bytes']:,} | {r['ram_bytes']:,} "
            f"({r['arena_bytes']:,} + {r['stack_bytes']:,}) | {f'{t:,}' if t else '-'} | "
            f"{ratio} | {'yes' if r['fits_device'] else 'no'} |")
    devices = "; ".join(sorted({f"{r['core']}: {r['device']}" for r in rows}))
    kernels_intro = ("Kernels of codegen/c/runtime/edgec_cm_dsp.h, edgec_cm_dsp_dw.h and "
                     "edgec_cm_mve.h (bit-exact, tests/cortexm/test_kernels.py), whole call "
                     "including requantisation:")
    lines += ["", f"Devices: {devices}", "", kernels_intro, "",
              "| kernel | target | instructions | instr/MAC |", "|---|---|---|---|"]
    for k in kernels:
        lines.append(f"| {k['kernel']} | {k['target']} | {k['instructions']:,} | "
                     f"{k['instructions'] / k['macs']:.3f} |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure every model x target, print the section, optionally write it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--write", metavar="MD", help="write the section into this markdown file")
    ap.add_argument("--json", metavar="FILE", help="also save the rows as JSON")
    args = ap.parse_args(argv)
    rows, tflm = [], {}
    with tempfile.TemporaryDirectory(prefix="edgec-cortexm-bench-") as tmp:
        tmpd = Path(tmp)
        for model in args.models.split(","):
            calib = calibration(model)
            tflm[model] = tflm_arena_bytes(model, calib, tmpd)
            for target in args.targets.split(","):
                runs = [(False, "float")]
                if target in KERNEL_TARGETS:
                    runs += [(True, "float"), (True, "int8")]
                for kernels, io in runs:
                    rows.append(bench_row(model, target, calib, tmpd, kernels, io))
                    r = rows[-1]
                    print(f"{model} {target} {r['kernels']}: {r['instructions_per_mac']:.3f} "
                          f"instr/MAC, RAM {r['ram_bytes']:,} B, TFLM {tflm[model]}",
                          file=sys.stderr)
        kernels = kernel_rows(tmpd)
    text = section(rows, kernels, tflm)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "kernels": kernels,
                                               "tflm": tflm}, indent=1))
    if args.write:
        from edgec.markdown import replace_section

        replace_section(Path(args.write), BEGIN, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
