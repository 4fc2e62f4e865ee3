"""int4 weights (W4A8, `--weight-bits 4`) measured through the generated C, written into
docs/benchmarks.md (between the int4 markers; the rest of the file is kept).

- weights bytes (report.json `weights_bytes`: every constant array of the C) of the
  generic-int8 build with int4 weights against the generic-fp32 build, for the zoo models,
  and the same on x86_64-int8 and arm64-int8 (their own packings);
- the digits CNN's accuracy on its test split (calibrated on digits_calib.npz): fp32
  (onnxruntime), int8 and int4 (generated C);
- the trained MobileNetV2 (golden/models/mobilenetv2_trained.onnx) at its logits, SNR against
  onnxruntime fp32 on the inputs and calibration of tools/int8_accuracy.py: int8, all-int4,
  mixed int8/int4 under a weights budget of 0.2 x its fp32 weights bytes
  (`--auto-mixed-precision --weight-bits 4 --weights-budget`), all through the C; and, to
  decide whether depthwise convolutions should take int4 too, the SNR with int4 depthwise
  weights as well (reference interpreter, whose bits the C reproduces).

Usage: python tools/int4_bench.py [--write docs/benchmarks.md] [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "golden" / "models"
BEGIN, END = "<!-- int4-weights:begin -->", "<!-- int4-weights:end -->"
BYTES_MODELS = ["mobilenetv2", "resnet8", "dscnn", "digits_cnn"]
BYTES_TARGETS = ["generic-int8", "x86_64-int8", "arm64-int8", "arm64-int8-base"]
BUDGET_RATIO = 0.2
COUNT_MODELS = ["resnet8", "dscnn"]
COUNT_TARGETS = ["arm64-int8", "arm64-int8-base"]


def int8_tool():
    """tools/int8_accuracy.py as a module (inputs, logits model, onnxruntime helpers)."""
    spec = importlib.util.spec_from_file_location("int8_accuracy",
                                                  REPO / "tools" / "int8_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("int8_accuracy", module)
    spec.loader.exec_module(module)
    return module


def weights_rows(models, targets) -> list[dict]:
    """weights_bytes of fp32, int8 and int4 builds (seeded calibration: bytes do not depend
    on it)."""
    from edgec.compiler import CompileOptions, compile_model
    from edgec.frontend.onnx import load_onnx
    from edgec.quant import random_calibration_inputs

    rows = []
    for model in models:
        path = ZOO / f"{model}.onnx"
        calib = random_calibration_inputs(load_onnx(path), 4, seed=0)
        fp32 = compile_model(path, CompileOptions(target="generic-fp32")).report
        row = {"model": model, "fp32": fp32["weights_bytes"]}
        for target in targets:
            for bits in (8, 4):
                rep = compile_model(path, CompileOptions(target=target, calib_samples=calib,
                                                         weight_bits=bits)).report
                row[f"{target}/{bits}"] = rep["weights_bytes"]
                if bits == 4 and target == "generic-int8":
                    row["by_bits"] = rep["weight_bits"]["bytes_by_bits"]
        rows.append(row)
        print(row, flush=True)
    return rows


def instruction_rows(models, targets) -> list[dict]:
    """Instructions per inference of int8 and int4 builds on the emulated arm64 targets."""
    from edgec.compiler import CompileOptions, compile_model
    from edgec.workbench.compare import random_inputs
    from edgec.workbench.instr_count import count_model

    rows = []
    for model in models:
        for target in targets:
            row = {"model": model, "target": target}
            for bits in (8, 4):
                res = compile_model(ZOO / f"{model}.onnx",
                                    CompileOptions(target=target, weight_bits=bits))
                with tempfile.TemporaryDirectory() as tmp:
                    row[bits] = count_model(res, random_inputs(res.source_graph, seed=0),
                                            Path(tmp))["instructions"]
            rows.append(row)
            print(row, flush=True)
    return rows


def digits_accuracy() -> dict:
    """Test-split accuracy (%) of the digits CNN: fp32 (onnxruntime), int8 and int4 (C)."""
    from edgec.compiler import CompileOptions, compile_model
    from edgec.workbench.verify import run_compiled

    t = int8_tool()
    path = ZOO / "digits_cnn.onnx"
    test = np.load(ZOO / "digits_test.npz")
    x, y = test["x"], test["y"]
    feeds = [{"x": x[i:i + 1]} for i in range(len(x))]
    out = {"samples": len(y)}
    out["fp32"] = 100.0 * float(np.mean(np.array(
        [int(np.argmax(t.ort_session_outputs(path, f)["logits"])) for f in feeds]) == y))
    for bits in (8, 4):
        res = compile_model(path, CompileOptions(target="generic-int8", weight_bits=bits,
                                                 calib=str(ZOO / "digits_calib.npz")))
        with tempfile.TemporaryDirectory() as tmp:
            outs = run_compiled(res, feeds, Path(tmp))
        pred = np.array([int(np.argmax(o["logits"])) for o in outs])
        out[f"int{bits}"] = 100.0 * float(np.mean(pred == y))
    print(out, flush=True)
    return out


def trained_mobilenet(calib_count: int, eval_count: int) -> dict:
    """SNR (dB) of the trained MobileNetV2's logits against fp32: int8, int4, mixed at
    BUDGET_RATIO x the fp32 weights, and int4 with depthwise int4 (interpreter)."""
    from edgec.compiler import CompileOptions, compile_model
    from edgec.frontend.onnx import load_onnx
    from edgec.quant.calibrate import run_fast, snr_db
    from edgec.quant.weight_bits import quantized_copy
    from edgec.workbench.verify import run_compiled

    t = int8_tool()
    model = "mobilenetv2_trained"
    with tempfile.TemporaryDirectory() as tmp:
        path = t.logits_model(ZOO / f"{model}.onnx", Path(tmp))
        g = load_onnx(path)
        calib = t.model_inputs(g, model, calib_count, seed=1)
        evals = t.model_inputs(g, model, eval_count, seed=2)
        name = (g.meta.get("output_names") or [g.outputs[0].name])[0]
        ref = np.concatenate([t.ort_session_outputs(path, e)[name].ravel() for e in evals])
        fp32_bytes = compile_model(path, CompileOptions(target="generic-fp32")).report[
            "weights_bytes"]
        budget = int(BUDGET_RATIO * fp32_bytes)
        out = {"calib": calib_count, "eval": eval_count, "fp32_bytes": fp32_bytes,
               "budget": budget}
        builds = {"int8": {}, "int4": {"weight_bits": 4},
                  "mixed": {"weight_bits": 4, "auto_mixed_precision": True,
                            "weights_budget": budget}}
        for key, extra in builds.items():
            res = compile_model(path, CompileOptions(target="generic-int8", calib_samples=calib,
                                                     **extra))
            outs = run_compiled(res, evals, Path(tmp) / key)
            got = np.concatenate([o[name].ravel() for o in outs])
            out[key] = {"snr_db": snr_db(ref, got), "bytes": res.report["weights_bytes"]}
            amp = res.report.get("quantization", {}).get("auto_mixed_precision")
            if amp:
                out[key]["int8_layers"] = len(amp["int8_weight_layers"])
                out[key]["int4_layers"] = len(amp["int4_layers"])
            print(key, out[key], flush=True)
        # depthwise int4 as well: the quantize pass with the depthwise rule lifted
        source = compile_model(path, CompileOptions(target="generic-int8", calib_samples=calib,
                                                    weight_bits=4))
        cal = _calibration(source, path, calib)
        float_graph = source.float_graph
        dw = quantized_copy(float_graph, cal, (), (), depthwise_int4=True)
        got = np.concatenate([run_fast(dw, e)[name].ravel() for e in evals])
        out["int4_depthwise"] = {"snr_db": snr_db(ref, got)}
        print("int4 + depthwise", out["int4_depthwise"], flush=True)
    return out


def _calibration(result, path, calib):
    """The calibration statistics of a compile (recomputed on its fp32 graph)."""
    from edgec.quant.calibrate import calibrate

    return calibrate(result.float_graph, calib, "minmax", 99.99, "seeded inputs")


def markdown(rows, digits, mnv2, counts=()) -> str:
    """The int4 section of docs/benchmarks.md."""
    intro = ("Written by `python tools/int4_bench.py --write docs/benchmarks.md`; do not edit "
             "by hand. Weights bytes are report.json's `weights_bytes` (every constant array "
             "of the generated C: packed weights, int32 biases, multipliers, shifts, tables); "
             "int4 builds keep depthwise convolutions int8 (see the last table).")
    lines = [BEGIN, "## int4 weights (W4A8, `--weight-bits 4`)", "", intro, "",
             "| model | fp32 | " + " | ".join(f"{t} int8 / int4" for t in BYTES_TARGETS)
             + " | generic int4 / fp32 |",
             "|---|---|" + "---|" * len(BYTES_TARGETS) + "---|"]
    for r in rows:
        cells = [f"{r[f'{t}/8']:,} / {r[f'{t}/4']:,}" for t in BYTES_TARGETS]
        lines.append(f"| {r['model']} | {r['fp32']:,} | " + " | ".join(cells)
                     + f" | {r['generic-int8/4'] / r['fp32']:.4f} |")
    lines += ["", "By bit width (generic-int8, int4 build, bytes): " + "; ".join(
        f"{r['model']} " + ", ".join(f"{k}-bit {v:,}" for k, v in r["by_bits"].items())
        for r in rows) + "."]
    if digits:
        lines += ["", (f"Digits CNN on its test split ({digits['samples']} images, calibrated "
                       f"on digits_calib.npz, generated C): fp32 {digits['fp32']:.2f} %, int8 "
                       f"{digits['int8']:.2f} %, int4 {digits['int4']:.2f} % "
                       f"({digits['int4'] - digits['fp32']:+.2f} points against fp32).")]
    if mnv2:
        m = mnv2
        lines += ["", (f"Trained MobileNetV2 (logits; calibrated on {m['calib']}, evaluated on "
                       f"{m['eval']} other images, uniform [0, 1) pixels; fp32 weights "
                       f"{m['fp32_bytes']:,} B, budget {BUDGET_RATIO} x = {m['budget']:,} B):"),
                  "",
                  "| build | SNR vs fp32 | weights bytes | / fp32 |", "|---|---|---|---|"]
        names = {"int8": "int8", "int4": "all int4 (depthwise int8)",
                 "mixed": "mixed int8/int4, `--weights-budget` 0.2 x fp32"}
        for key, label in names.items():
            r = m[key]
            if "int8_layers" in r:
                label += f" ({r['int8_layers']} layers int8, {r['int4_layers']} int4)"
            lines.append(f"| {label} | {r['snr_db']:.1f} dB | {r['bytes']:,} | "
                         f"{r['bytes'] / m['fp32_bytes']:.4f} |")
        lines.append(f"| int4 with depthwise int4 too (interpreter) | "
                     f"{m['int4_depthwise']['snr_db']:.1f} dB | - | - |")
    if counts:
        lines += ["", ("The cost of unpacking in registers (SHL + SSHR and SSHR per 16 bytes of "
                       "weights): guest instructions per inference under QEMU (deterministic; "
                       "wall time on this shared host is noise). The int8 column is the tree's "
                       "int8 kernels when measured; where int4 needs fewer instructions (dscnn "
                       "on arm64-int8-base: its pointwise layers) it is gcc's code for the two "
                       "tiles, not fewer operations in the int4 source."), "",
                  "| model | target | int8 | int4 | int4 / int8 |", "|---|---|---|---|---|"]
        for r in counts:
            lines.append(f"| {r['model']} | {r['target']} | {r[8]:,} | {r[4]:,} | "
                         f"{r[4] / r[8]:.3f} |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """Measure, print and optionally write the int4 section."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", metavar="MD", help="write the section into this markdown file")
    ap.add_argument("--quick", action="store_true", help="small models, fewer samples")
    ap.add_argument("--json", metavar="PATH", help="save the measurements (or, with --render, "
                    "read them) as JSON")
    ap.add_argument("--render", action="store_true", help="only write the section from --json")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.render:
        data = json.loads(Path(args.json).read_text())
    else:
        models = BYTES_MODELS[1:] if args.quick else BYTES_MODELS
        data = {"rows": weights_rows(models, BYTES_TARGETS),
                "counts": instruction_rows(COUNT_MODELS[:1] if args.quick else COUNT_MODELS,
                                           COUNT_TARGETS),
                "digits": digits_accuracy(),
                "mnv2": trained_mobilenet(16, 8) if args.quick else trained_mobilenet(100, 64)}
        if args.json:
            Path(args.json).write_text(json.dumps(data, indent=1))
    counts = [{**r, 8: r["8"], 4: r["4"]} if "8" in r else r for r in data["counts"]]
    section = markdown(data["rows"], data["digits"], data["mnv2"], counts)
    print(section)
    if args.write:
        from edgec.markdown import replace_section

        replace_section(Path(args.write), BEGIN, END, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
