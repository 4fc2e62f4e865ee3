"""Structured pruning table: zoo models pruned to a MAC budget, SNR and accuracy before and
after label-free recovery, compiled weights and arena before and after, and the speed of the
generated C before and after (x86_64 latency side by side in one run, arm64 instructions per
inference) for fp32 and int8 (docs/benchmarks.md).

    python tools/prune_bench.py --write docs/benchmarks.md [--models ...] [--speed ...]

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
VERIFY_TARGETS = ["generic-fp32", "x86_64-fp32", "arm64-fp32", "generic-int8", "x86_64-int8",
                  "arm64-int8"]


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


def _speed(before: onnx.ModelProto, after: onnx.ModelProto, precision: str, runs: int) -> dict:
    """The unpruned and the pruned model side by side on `precision` (fp32 or int8): x86_64
    latency of both compiled libraries timed in turn in one run (the ratio is what holds on
    a shared machine), their arenas (report.json), and arm64 instructions per inference of
    both (QEMU plugin, deterministic). int8 calibrates both on the same seeded inputs."""
    from edgec.workbench.bench import (alternate, bench_inputs, bench_model, calibration_inputs,
                                       compile_for_bench)
    from edgec.workbench.runners import CompiledModel

    out: dict = {"precision": precision}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"before": Path(tmp) / "before" / "m.onnx", "after": Path(tmp) / "after" / "m.onnx"}
        for key, model in (("before", before), ("after", after)):
            paths[key].parent.mkdir()
            onnx.save(model, str(paths[key]))
        g = load_onnx(paths["before"])
        feeds = bench_inputs(g)
        calib = calibration_inputs(g) if precision == "int8" else None
        if _has_avx2():
            runners = {}
            for key, path in paths.items():
                result, _ = compile_for_bench(path, f"x86_64-{precision}", calib)
                out[f"arena_{key}"] = int(result.report["arena_bytes"])
                runners[key] = CompiledModel(result, path.parent, feeds)
            timings = alternate(runners, runs)
            out.update({f"x86_ms_{k}": t.median_ms for k, t in timings.items()})
        if _has_arm64():
            for key, path in paths.items():
                out[f"arm64_instructions_{key}"] = bench_model(
                    path, f"arm64-{precision}", runs=1, compare=False).get("instructions")
    return out


def _verify(model: onnx.ModelProto, targets: list[str]) -> dict:
    """`edgec verify` of the pruned model on each target (fp32: against onnxruntime running
    the pruned ONNX file; int8: bit-exact against the int8 interpreter)."""
    from edgec.workbench.verify import verify_model

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pruned.onnx"
        onnx.save(model, str(path))
        for target in targets:
            if (target.startswith("x86_64") and not _has_avx2()) or (
                    target.startswith("arm64") and not _has_arm64()):
                continue  # the host cannot run it: a "—" in the table
            res = verify_model(path, CompileOptions(target=target), seed=3, rtol=1e-4)
            out[target] = {"ok": res.ok, "exact": res.exact,
                           "max_rel_err": max(o.max_rel_err for o in res.outputs)}
    return out


def _has_avx2() -> bool:
    """Whether this host runs the x86_64 targets."""
    from edgec.workbench.machine import machine_info

    return "avx2" in machine_info()["flags"]


def _has_arm64() -> bool:
    """Whether the arm64 cross toolchain and qemu-aarch64 are installed."""
    return bool(shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64"))


def measure(name: str, target_macs: float, criterion: str, speed: tuple[str, ...] = (),
            runs: int = 300, round_to: tuple[int, ...] = (),
            verify: tuple[str, ...] = ()) -> dict:
    """One row: prune `name` to `target_macs` of its MACs and measure it; the speed also of
    the model pruned with each `round_to` (no recovery: speed does not depend on values)."""
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
    row["speed"] = [{**_speed(onnx.load(str(path)), result.model, p, runs), "round_to": 1,
                     "macs_kept": row["macs_after"] / row["macs_before"]} for p in speed]
    if verify:
        row["verify"] = _verify(result.model, list(verify))
    for rt in round_to if speed else ():
        rounded = prune_model_file(path, target_macs=target_macs, criterion=criterion,
                                   round_to=rt, do_recover=False)
        kept = rounded.report["after_pruning"]["macs"] / rounded.report["before"]["macs"]
        row["speed"] += [{**_speed(onnx.load(str(path)), rounded.model, p, runs),
                          "round_to": rt, "macs_kept": kept} for p in speed]
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
    if any(r.get("speed") for r in rows):
        from edgec.workbench.machine import machine_info

        m = machine_info()
        lines += ["", "Speed and memory of edgec's generated C, unpruned -> pruned. x86_64: both "
                  "compiled libraries timed in turn in one run (median of the runs; the ratio "
                  "is what holds on this shared machine, yet it still moves when the load "
                  "changes during a run: arm64 instructions are the deterministic measure), "
                  "arena from each compile's "
                  "report.json; arm64: instructions per inference (QEMU TCG plugin, "
                  f"deterministic). Machine: {m['cpu']}, {m['cores']} cores, "
                  f"{' '.join(m['flags'])}; {m['os']}.", "",
                  "| model | round-to: MACs kept | precision | x86_64 ms before -> after (ratio) "
                  "| arena before -> after | arm64 instructions before -> after (ratio) |",
                  "|---|---|---|---|---|---|"]
        for r in rows:
            for sp in r.get("speed") or []:
                lines.append(f"| {r['model']} | {sp['round_to']}: {sp['macs_kept']:.1%} | "
                             f"{sp['precision']} | {_pair(sp, 'x86_ms', 4)} | "
                             f"{_pair(sp, 'arena', 0)} | "
                             f"{_pair(sp, 'arm64_instructions', -2)} |")
    targets = sorted({t for r in rows for t in r.get("verify") or {}}, key=VERIFY_TARGETS.index)
    if targets:
        lines += ["", "`edgec verify` of the pruned models (seeded N(0,1) input; fp32 against "
                  "onnxruntime running the pruned ONNX file, largest relative error; int8 "
                  "bit-exact against edgec's int8 interpreter):", "",
                  "| model | " + " | ".join(targets) + " |", "|---" * (len(targets) + 1) + "|"]
        for r in rows:
            if r.get("verify"):
                cells = [_verified(r["verify"].get(t)) for t in targets]
                lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
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


def _load_rows(path: Path) -> list[dict]:
    """Rows from a --json file or from the JSON lines of a run's output."""
    text = path.read_text()
    try:
        rows = json.loads(text)
        return [rows] if isinstance(rows, dict) else rows
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.startswith('{"model"')]


def _pair(sp: dict, key: str, digits: int) -> str:
    """'before -> after (after/before)' of one measure; digits < 0: millions with -digits
    decimals, 0: bytes."""
    b, a = sp.get(f"{key}_before"), sp.get(f"{key}_after")
    if not b or not a:
        return "—"
    if digits < 0:
        text = f"{b / 1e6:.{-digits}f} M -> {a / 1e6:.{-digits}f} M"
    elif digits == 0:
        text = f"{b:,} -> {a:,} B"
    else:
        text = f"{b:.{digits}f} -> {a:.{digits}f}"
    return f"{text} ({a / b:.1%})"


def _verified(v: dict | None) -> str:
    """One cell of the verify table."""
    if v is None:
        return "—"
    if not v["ok"]:
        return "FAIL"
    return "bit-exact" if v["exact"] else f"pass ({v['max_rel_err']:.1e})"


def _db(x) -> str:
    return f"{x:.1f} dB" if isinstance(x, float) else str(x)


def main(argv: list[str] | None = None) -> int:
    """Measure every model, print the section, optionally write it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--target-macs", type=float, default=0.5)
    ap.add_argument("--criterion", default="l2")
    ap.add_argument("--speed", default=",".join(MODELS),
                    help="models whose latency, arena and arm64 instructions are measured")
    ap.add_argument("--precisions", default="fp32,int8",
                    help="precisions of the speed measures (x86_64-P and arm64-P targets)")
    ap.add_argument("--runs", type=int, default=300, help="timed x86_64 runs per model")
    ap.add_argument("--verify-all", action="store_true",
                    help="edgec verify every pruned model on " + ", ".join(VERIFY_TARGETS))
    ap.add_argument("--speed-round-to", default="16",
                    help="also time the models pruned with these --round-to values")
    ap.add_argument("--write", metavar="MD", help="write the section into this markdown file")
    ap.add_argument("--json", metavar="FILE", help="also save the rows as JSON")
    ap.add_argument("--from-json", metavar="FILE",
                    help="rebuild the section from rows saved by --json (one JSON row per line "
                    "of this tool's output also works) instead of measuring")
    args = ap.parse_args(argv)
    speed = set(args.speed.split(",")) if args.speed else set()
    precisions = tuple(args.precisions.split(","))
    rows = _load_rows(Path(args.from_json)) if args.from_json else []
    for m in [] if args.from_json else args.models.split(","):
        rows.append(measure(m, args.target_macs, args.criterion,
                            precisions if m in speed else (), args.runs,
                            tuple(int(v) for v in args.speed_round_to.split(",") if v),
                            tuple(VERIFY_TARGETS) if args.verify_all else ()))
        print(json.dumps(rows[-1]), flush=True)
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
