"""Structured pruning table: zoo models pruned to a MAC budget, SNR and accuracy before and
after label-free recovery, compiled weights and arena before and after (docs/benchmarks.md).

    python tools/prune_bench.py --write docs/benchmarks.md

Digits CNN runs on its real data (calibration split for recovery, test split for accuracy,
and int8 accuracy through the generic-int8 reference interpreter); the other models on
seeded random inputs (a quarter held out for the SNR). onnxruntime runs the fp32 models.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgec.compiler import CompileOptions, compile_graph  # noqa: E402
from edgec.frontend.onnx import import_model, load_onnx  # noqa: E402
from edgec.interp import run_graph  # noqa: E402
from edgec.prune.driver import prune_model_file  # noqa: E402

ZOO = REPO / "golden" / "models"
MODELS = ["digits_cnn", "resnet8", "dscnn", "mobilenetv2", "mobilenetv2_trained"]
BEGIN, END = "<!-- prune:begin -->", "<!-- prune:end -->"


def _digits(split: str):
    data = np.load(ZOO / f"digits_{split}.npz")
    return [{"x": data["x"][i:i + 1]} for i in range(len(data["x"]))], data["y"]


def _compiled(model: onnx.ModelProto) -> dict:
    r = compile_graph(import_model(model), CompileOptions(target="generic-fp32"),
                      model_name="m").report
    return {"weights_bytes": r["weights_bytes"], "arena_bytes": r["arena_bytes"]}


def _int8_accuracy(model: onnx.ModelProto, test, labels) -> tuple[str, float]:
    """(how, top-1 accuracy %) of the int8 model: the generated C for arm64-int8 under
    qemu-aarch64 when the cross toolchain is there, else generic-int8's bit-exact reference."""
    from edgec.workbench.verify import run_compiled

    arm64 = shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64")
    target = "arm64-int8" if arm64 else "generic-int8"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        onnx.save(model, str(path))
        calib = str(ZOO / "digits_calib.npz")
        result = compile_graph(load_onnx(path), CompileOptions(target=target, calib=calib),
                               model_name="m")
        if arm64:
            outs = [next(iter(o.values())) for o in run_compiled(result, test, Path(tmp))]
            how = "arm64-int8, generated C under qemu-aarch64"
        else:
            name = result.graph.inputs[0].name
            outs = [next(iter(run_graph(result.graph, {name: s["x"]}).values())) for s in test]
            how = "generic-int8, edgec's int8 reference"
    hits = sum(int(np.argmax(o.reshape(-1)) == y) for o, y in zip(outs, labels))
    return how, 100.0 * hits / len(labels)


def _speed(model: onnx.ModelProto) -> dict:
    """x86_64-fp32 latency (edgec and onnxruntime, same run) and arm64-fp32 instructions per
    inference (QEMU plugin: deterministic) of a model."""
    from edgec.workbench.bench import bench_model

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        onnx.save(model, str(path))
        x86 = bench_model(path, "x86_64-fp32", runs=300)
        out = {"x86_ms": x86["latency_ms"], "ort_ms": x86.get("onnxruntime_ms")}
        if shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64"):
            out["arm64_instructions"] = bench_model(path, "arm64-fp32", runs=1,
                                                    compare=False).get("instructions")
    return out


def measure(name: str, target_macs: float, criterion: str, speed: bool = False) -> dict:
    """One row: prune `name` to `target_macs` of its MACs and measure it."""
    path = ZOO / f"{name}.onnx"
    kwargs = {}
    test = labels = None
    if name == "digits_cnn":
        calib, _ = _digits("calib")
        test, labels = _digits("test")
        data = np.load(ZOO / "digits_calib.npz")
        kwargs = {"samples": calib, "eval_samples": test, "labels": labels,
                  "train": (data["x"], data["y"]), "epochs": 4, "lr": 2e-3}
    t0 = time.perf_counter()
    result = prune_model_file(path, target_macs=target_macs, criterion=criterion, **kwargs)
    seconds = time.perf_counter() - t0
    r = result.report
    row = {"model": name, "criterion": criterion, "ratio": r["ratio"], "seconds": seconds,
           "macs_before": r["before"]["macs"], "macs_after": r["after_pruning"]["macs"],
           "params_before": r["before"]["params"], "params_after": r["after_pruning"]["params"],
           "snr_before": r["snr_db_before_recovery"], "snr_after": r["snr_db_after_recovery"],
           "data": r["data"], "accuracy": r.get("accuracy"),
           "before": _compiled(onnx.load(str(path))), "after": _compiled(result.model)}
    if speed:
        row["speed_before"] = _speed(onnx.load(str(path)))
        row["speed_after"] = _speed(result.model)
    if test is not None:
        how, full = _int8_accuracy(onnx.load(str(path)), test, labels)
        row["int8_accuracy"] = {"how": how, "unpruned": full,
                                "recovered": _int8_accuracy(result.model, test, labels)[1]}
    return row


def markdown(rows: list[dict], target_macs: float) -> str:
    """The markdown section."""
    lines = [BEGIN, f"## Structured pruning to {target_macs:.0%} of MACs (tools/prune_bench.py)",
             "",
             "`edgec prune --target-macs` with the l2 criterion, uniform ranking; SNR of the "
             "output against the unpruned model (onnxruntime) before and after label-free "
             "least-squares recovery. Weights and arena: generic-fp32 compile report.", "",
             "| model | ratio | MACs | params | weights | arena | SNR pruned | SNR recovered | "
             "data |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['ratio']:.3f} | {r['macs_before'] / 1e6:.2f} M -> "
            f"{r['macs_after'] / 1e6:.2f} M ({r['macs_after'] / r['macs_before']:.1%}) | "
            f"{r['params_before']:,} -> {r['params_after']:,} | "
            f"{r['before']['weights_bytes']:,} -> {r['after']['weights_bytes']:,} B | "
            f"{r['before']['arena_bytes']:,} -> {r['after']['arena_bytes']:,} B | "
            f"{_db(r['snr_before'])} | {_db(r['snr_after'])} | {r['data']} |")
    if any("speed_before" in r for r in rows):
        lines += ["", "Speed (edgec's generated C, fp32): x86_64 latency next to onnxruntime "
                  "in the same run (one core, median; the ratio is what compares across runs) and "
                  "arm64 instructions per inference (QEMU plugin, deterministic).", "",
                  "| model | x86_64 ms before -> after | edgec/onnxruntime before -> after | "
                  "arm64 instructions before -> after |", "|---|---|---|---|"]
        for r in rows:
            b, a = r.get("speed_before"), r.get("speed_after")
            if not b:
                continue
            ratio = (f"{b['x86_ms'] / b['ort_ms']:.2f} -> {a['x86_ms'] / a['ort_ms']:.2f}"
                     if b.get("ort_ms") and a.get("ort_ms") else "—")
            ins = (f"{b['arm64_instructions'] / 1e6:.2f} M -> "
                   f"{a['arm64_instructions'] / 1e6:.2f} M "
                   f"({a['arm64_instructions'] / b['arm64_instructions']:.1%})"
                   if b.get("arm64_instructions") and a.get("arm64_instructions") else "—")
            lines.append(f"| {r['model']} | {b['x86_ms']:.4f} -> {a['x86_ms']:.4f} "
                         f"({a['x86_ms'] / b['x86_ms']:.1%}) | {ratio} | {ins} |")
    for r in rows:
        if r.get("accuracy"):
            a = r["accuracy"]
            lines += ["", f"{r['model']} test-split accuracy (fp32): "
                      f"unpruned {a['unpruned']:.2f}%, "
                      f"pruned {a['pruned']:.2f}%, after label-free recovery "
                      f"{a['recovered']:.2f}%, after distillation fine-tuning (4 epochs on the "
                      f"200 labelled calibration images, T=4, alpha=0.7) "
                      f"{a.get('distilled', float('nan')):.2f}%."]
        if r.get("int8_accuracy"):
            q = r["int8_accuracy"]
            lines.append(f"int8 ({q['how']}): unpruned "
                         f"{q['unpruned']:.2f}%, pruned + recovered + distilled "
                         f"{q['recovered']:.2f}%.")
    lines.append(END)
    return "\n".join(lines) + "\n"


def _db(x) -> str:
    return f"{x:.1f} dB" if isinstance(x, float) else str(x)


def main(argv: list[str] | None = None) -> int:
    """Measure every model, print the section, optionally write it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--target-macs", type=float, default=0.5)
    ap.add_argument("--criterion", default="l2")
    ap.add_argument("--speed", default="digits_cnn,resnet8,dscnn",
                    help="models whose latency and arm64 instructions are measured too")
    ap.add_argument("--write", metavar="MD", help="write the section into this markdown file")
    ap.add_argument("--json", metavar="FILE", help="also save the rows as JSON")
    args = ap.parse_args(argv)
    speed = set(args.speed.split(",")) if args.speed else set()
    rows = [measure(m, args.target_macs, args.criterion, m in speed)
            for m in args.models.split(",")]
    section = markdown(rows, args.target_macs)
    print(section)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    if args.write:
        from edgec.markdown import replace_section

        replace_section(Path(args.write), BEGIN, END, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
