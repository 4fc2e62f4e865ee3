"""edgec's .tflite side by side with onnx2tf's on the same ONNX files; writes a section of
docs/benchmarks.md (between the tflite-compare markers; the rest of the file is kept).

Per zoo model, both converters get the same ONNX file and the same calibration inputs:
- conversion time (wall, a fresh process each: `python -m edgec.cli compile -t tflite-int8`
  against `onnx2tf -oiqt`, which writes its float32, float16 and int8 files in one run),
  operator count, TRANSPOSE operators left, file size of the int8 file with float I/O
  (onnx2tf's *_integer_quant.tflite, edgec's model.tflite), and how many operators the NNAPI
  delegate takes at NNAPI 1.2 and the GPU delegate takes (codegen/tflite/nnapi.py, gpu.py);
- on the trained models (digits_cnn, mobilenetv2_trained): int8 output SNR against
  onnxruntime fp32 on held-out inputs, both files run in LiteRT's reference kernels;
- the TFLM arena of edgec's .tflite measured by the tflite-micro interpreter (its recording
  allocator: the planned tensor arena, and the whole arena with the interpreter's own
  persistent data) beside edgec's C arena (report.json `arena_bytes` of generic-int8 /
  generic-fp32) and the TFLM arena of onnx2tf's file.

onnx2tf is not a dependency of edgec: the tool installs it into a throwaway venv (default
/tmp/onnx2tf-venv; onnx2tf 2.x needs Python >= 3.12 and pulls neither TensorFlow nor torch)
and runs its command-line tool from there. If it cannot be installed, the section says why.

Usage: python tools/tflite_compare.py [--models a,b] [--venv DIR] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "golden" / "models"
MODELS = ["digits_cnn", "dscnn", "resnet8", "mobilenetv2", "mobilenetv2_trained"]
SNR_MODELS = ("digits_cnn", "mobilenetv2_trained")
CALIB_SAMPLES = {"mobilenetv2": 32, "mobilenetv2_trained": 32}
DEFAULT_CALIB, EVAL_SAMPLES = 64, 16
ONNX2TF = "onnx2tf==2.6.9"
TFLM_ARENA_LIMIT = 64 << 20
BEGIN, END = "<!-- tflite-compare:begin -->", "<!-- tflite-compare:end -->"
INTRO = ("Same ONNX file and calibration inputs for both (digits: digits_calib.npz; others: "
         "int8_accuracy's seeded inputs). Conversion: a fresh process each, calibration "
         "included; onnx2tf `-oiqt` also writes its float32/float16/int16 files in that run. "
         "Files compared: the int8 file with float I/O (edgec `tflite-int8`, onnx2tf "
         "`*_integer_quant.tflite`). NNAPI 1.2 / GPU: operators the delegates take by the rules "
         "of codegen/tflite/nnapi.py and gpu.py.")
WRITTEN_BY = ("Written by `python tools/tflite_compare.py --write docs/benchmarks.md`; do "
              "not edit by hand.")
PER_TENSOR = "its rows are its per-tensor int8 (`-qt per-tensor`), what its users fall back to."
TABLE_HEAD = ("| model | converter | conversion | operators | TRANSPOSE | file size | "
              "NNAPI 1.2 ops | GPU ops |")
ARENA_INTRO = ("Arena: edgec's C arena (report.json `arena_bytes`) beside the arena tflite-micro's "
               "recording allocator reports for the .tflite (tensors: its planned tensor arena; "
               "total: with the interpreter's persistent data).")
ARENA_HEAD = ("| model | edgec C int8 | TFLM int8 tensors / total (edgec .tflite) | TFLM int8 "
              "tensors (onnx2tf .tflite) | edgec C fp32 | TFLM fp32 tensors / total (edgec "
              ".tflite) |")


# ------------------------------------------------------------------------------ onnx2tf
def _python_312() -> str | None:
    """A Python >= 3.12 interpreter (onnx2tf 2.x refuses older ones), or None."""
    for name in ("python3.13", "python3.12"):
        found = shutil.which(name)
        if found:
            return found
    pyenv = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python")))
    return pyenv[-1] if pyenv else None


def ensure_onnx2tf(venv: Path) -> tuple[Path | None, str]:
    """(the onnx2tf executable, its version) from `venv`, installing it there if needed;
    (None, the reason) when it cannot be installed."""
    exe = venv / "bin" / "onnx2tf"
    if not exe.exists():
        py = _python_312()
        if py is None:
            return None, "onnx2tf 2.x needs Python >= 3.12 and none was found"
        steps = [[py, "-m", "venv", str(venv)],
                 [str(venv / "bin" / "pip"), "install", "-q", ONNX2TF]]
        for cmd in steps:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                lines = [ln for ln in (proc.stderr or proc.stdout).splitlines()
                         if ln.startswith("ERROR")] or ["(no output)"]
                return None, f"`{' '.join(cmd[-2:])}` failed: {lines[-1][:300]}"
    proc = subprocess.run([str(exe), "-V"], capture_output=True, text=True, check=False)
    return exe, (proc.stdout.strip().split() or ["?"])[-1]


def run_onnx2tf(exe: Path, model: Path, input_name: str, calib_nhwc: Path, out: Path,
                quant_type: str = "per-channel") -> tuple[float, Path | None, str]:
    """(seconds, the int8 float-I/O file or None, error line) of one `onnx2tf -oiqt` run."""
    own_copy = out.parent / f"{out.name}_input.onnx"  # onnx2tf rewrites its input file in
    shutil.copyfile(model, own_copy)  # place (node names, producer): give it a fresh copy
    cmd = [str(exe), "-i", str(own_copy), "-o", str(out), "-oiqt", "-qt", quant_type, "-cind",
           input_name, str(calib_nhwc), "[[[[0.0]]]]", "[[[[1.0]]]]", "-v", "error"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=out.parent)
    seconds = time.perf_counter() - t0
    found = sorted(out.glob("*_integer_quant.tflite"))
    found = [f for f in found if "int16" not in f.name and "full_integer" not in f.name]
    err = [ln for ln in (proc.stderr + proc.stdout).splitlines() if "Error: " in ln]
    err_line = (err[0] if err else f"exit code {proc.returncode}")[:160]
    # A failure in a later variant (its int16-activation file) can leave a good int8 file.
    if not found or not _litert_loads(found[0].read_bytes()):
        return seconds, None, err_line
    return seconds, found[0], "" if proc.returncode == 0 else err_line


def _litert_loads(data: bytes) -> bool:
    """True when LiteRT allocates the model (its kernels accept every operator)."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        Interpreter(model_content=data).allocate_tensors()
    except (RuntimeError, ValueError):
        return False
    return True


# ------------------------------------------------------------------------------ edgec
def run_edgec(model: Path, target: str, calib_npz: Path | None, out: Path) -> tuple[float, bytes]:
    """(seconds, model.tflite bytes) of one `edgec compile` in a fresh process."""
    cmd = [sys.executable, "-m", "edgec.cli", "compile", str(model), "-t", target, "-o",
           str(out)] + (["--calib", str(calib_npz)] if calib_npz else [])
    t0 = time.perf_counter()
    subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, (out / "model.tflite").read_bytes()


def c_arena(model: Path, target: str, calib: list[dict] | None) -> int:
    """edgec's own C arena (report.json arena_bytes) for a C target."""
    from edgec.compiler import CompileOptions, compile_model

    options = CompileOptions(target=target, calib_samples=calib) if calib else \
        CompileOptions(target=target)
    return int(compile_model(model, options).report["arena_bytes"])


# ------------------------------------------------------------------------------ measures
def file_stats(data: bytes) -> dict:
    """Operators, TRANSPOSEs, bytes, NNAPI 1.2 and GPU acceptance of a .tflite."""
    from edgec.codegen.tflite.compat import compat_sections

    s = compat_sections(data)
    ops = [row["op"] for row in s["nnapi"]["ops"]]
    return {"ops": len(ops), "transposes": ops.count("TRANSPOSE"), "bytes": len(data),
            "nnapi_12": s["nnapi"]["accepted"]["29"], "gpu": s["gpu"]["accepted"]}


def tflm_arena(data: bytes) -> dict:
    """tflite-micro's recorded arena for `data`: {'tensors': planned head, 'total': all}."""
    from tflite_micro.python.tflite_micro import runtime

    with tempfile.TemporaryFile(mode="w+") as capture:  # it prints to stderr (fd 2)
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            interp = runtime.Interpreter.from_bytes(bytes(data), arena_size=TFLM_ARENA_LIMIT)
            interp.print_allocations()
        finally:
            ctypes.CDLL(None).fflush(None)  # the C library's buffers, before restoring
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read()
    found = {}
    for line in text.splitlines():
        for key, label in (("total", "allocation total"), ("tensors", "allocation head")):
            if label in line:
                found[key] = int(line.split(label)[1].split()[0])
    return found


def nhwc(feeds: dict) -> dict:
    """NCHW feeds as onnx2tf's files take them (4-D inputs channels-last)."""
    return {k: (v.transpose(0, 2, 3, 1) if v.ndim == 4 else v) for k, v in feeds.items()}


def int8_snr(model: Path, edgec_data: bytes, o2t_data: bytes | None, evals: list[dict]
             ) -> tuple[float, float | None]:
    """SNR (dB) of both int8 files' outputs against onnxruntime fp32 on `evals`."""
    import onnx
    from edgec.codegen.tflite.runner import run_litert

    from edgec.quant.calibrate import snr_db
    from edgec.workbench.compare import onnxruntime_outputs

    graph = onnx.load(str(model)).graph
    in_name, out_name = graph.input[0].name, graph.output[0].name
    ref = np.concatenate([onnxruntime_outputs(model, e)[out_name].ravel() for e in evals])
    mine = np.concatenate([run_litert(edgec_data, e, [in_name], [out_name])[out_name].ravel()
                           for e in evals])
    theirs = None
    if o2t_data is not None:
        got = [run_litert(o2t_data, nhwc(e), [in_name], [out_name])[out_name] for e in evals]
        theirs = snr_db(ref, np.concatenate([g.ravel() for g in got]))
    return snr_db(ref, mine), theirs


def samples(model: str) -> tuple[list[dict], list[dict]]:
    """(calibration, evaluation) inputs: the digits splits, else int8_accuracy's seeded ones."""
    from edgec.frontend.onnx import load_onnx

    if model == "digits_cnn":
        calib = np.load(ZOO / "digits_calib.npz")["x"]
        test = np.load(ZOO / "digits_test.npz")["x"][:EVAL_SAMPLES]
        return [{"x": x[None]} for x in calib], [{"x": x[None]} for x in test]
    sys.path.insert(0, str(REPO / "tools"))
    from int8_accuracy import model_inputs

    g = load_onnx(ZOO / f"{model}.onnx")
    return (model_inputs(g, model, CALIB_SAMPLES.get(model, DEFAULT_CALIB), seed=1),
            model_inputs(g, model, EVAL_SAMPLES, seed=2))


def best_of(run, quick_seconds: float = 30.0, repeats: int = 3) -> tuple:
    """`run()` -> (seconds, ...): the fastest of `repeats` runs when the first is quick (the
    machine is shared: a run can only be slowed down), else the one run."""
    best = run()
    if best[0] < quick_seconds:
        for _ in range(repeats - 1):
            again = run()
            best = again if again[0] < best[0] else best
    return best


def measure(model: str, onnx2tf: Path | None, tmp: Path) -> dict:
    """Every measure of the module docstring for one zoo model."""
    path = ZOO / f"{model}.onnx"
    calib, evals = samples(model)
    name = next(iter(calib[0]))
    stacked = np.concatenate([c[name] for c in calib])
    np.savez(tmp / f"{model}_calib.npz", **{name: stacked})
    np.save(tmp / f"{model}_calib_nhwc.npy", nhwc({name: stacked})[name])
    row: dict = {"model": model, "calib": len(calib), "eval": len(evals)}
    row["edgec_s"], mine = best_of(lambda: run_edgec(path, "tflite-int8",
                                                     tmp / f"{model}_calib.npz",
                                                     tmp / f"{model}_edgec"))
    row["edgec"] = file_stats(mine)
    _, mine_fp32 = run_edgec(path, "tflite-fp32", None, tmp / f"{model}_edgec_fp32")
    theirs = None
    if onnx2tf is not None:
        row["onnx2tf_mode"] = "per-channel"
        row["onnx2tf_s"], o2t_file, row["onnx2tf_error"] = best_of(lambda: run_onnx2tf(
            onnx2tf, path, name, tmp / f"{model}_calib_nhwc.npy", tmp / f"{model}_o2t"))
        if o2t_file is None:  # what an onnx2tf user falls back to: per-tensor weights
            row["onnx2tf_mode"] = "per-tensor"
            row["onnx2tf_s"], o2t_file, _ = best_of(lambda: run_onnx2tf(
                onnx2tf, path, name, tmp / f"{model}_calib_nhwc.npy",
                tmp / f"{model}_o2t_pt", "per-tensor"))
        if o2t_file is not None:
            theirs = o2t_file.read_bytes()
            row["onnx2tf"] = file_stats(theirs)
            row["tflm_onnx2tf"] = tflm_arena(theirs)
    if model in SNR_MODELS:
        row["snr_edgec"], row["snr_onnx2tf"] = int8_snr(path, mine, theirs, evals)
    row["tflm_int8"], row["tflm_fp32"] = tflm_arena(mine), tflm_arena(mine_fp32)
    row["c_arena_int8"] = c_arena(path, "generic-int8", calib)
    row["c_arena_fp32"] = c_arena(path, "generic-fp32", None)
    return row


# ------------------------------------------------------------------------------ report
def _short(err: str) -> str:
    """The first sentence of an onnx2tf error (its messages repeat per tensor)."""
    return err.split(".Tensor ")[0].split(". Tensor ")[0]


def _b(n) -> str:
    return "—" if n is None else f"{n:,} B"


def _versions(onnx2tf_version: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    from edgec import __version__

    parts = [f"edgec {__version__}", f"onnx2tf {onnx2tf_version}"]
    for dist in ("ai-edge-litert", "tflite-micro"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist} (not installed)")
    return ", ".join(parts)


def _behind(rows: list[dict]) -> list[str]:
    """Rows where edgec is behind onnx2tf (the reason has to be written next to them)."""
    out = []
    for r in rows:
        e, o = r["edgec"], r.get("onnx2tf")
        if o is None:
            continue
        for key, label, worse in (("ops", "operators", e["ops"] > o["ops"]),
                                  ("transposes", "TRANSPOSEs", e["transposes"] > o["transposes"]),
                                  ("bytes", "file size", e["bytes"] > o["bytes"]),
                                  ("nnapi_12", "NNAPI 1.2 ops",
                                   e["ops"] - e["nnapi_12"] > o["ops"] - o["nnapi_12"]),
                                  ("gpu", "GPU ops", e["ops"] - e["gpu"] > o["ops"] - o["gpu"])):
            if worse:
                out.append(f"{r['model']}: {label} {e[key]:,} vs {o[key]:,}")
        if r.get("onnx2tf_s") and r["edgec_s"] > r["onnx2tf_s"]:
            out.append(f"{r['model']}: conversion {r['edgec_s']:.1f} s vs {r['onnx2tf_s']:.1f} s")
        if r.get("snr_onnx2tf") is not None and r["snr_edgec"] < r["snr_onnx2tf"]:
            out.append(f"{r['model']}: SNR {r['snr_edgec']:.1f} dB vs {r['snr_onnx2tf']:.1f} dB")
    return out


def markdown(rows: list[dict], machine: dict, onnx2tf_version: str, onnx2tf_error: str) -> str:
    """The tflite-compare section of docs/benchmarks.md."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    where = (f"Machine: {machine.get('cpu', '?')}, {machine.get('cores')} cores; "
             f"{machine.get('os', '')}. Measured {now}. Versions: {_versions(onnx2tf_version)}.")
    lines = [BEGIN, "## TFLite: edgec vs onnx2tf, and the TFLM arena", "", WRITTEN_BY, "",
             where, "", INTRO, ""]
    if onnx2tf_error:
        lines += [f"onnx2tf could not be run here: {onnx2tf_error}", ""]
    failed = [f"{r['model']} ({_short(r['onnx2tf_error'])})" for r in rows
              if r.get("onnx2tf_mode") == "per-tensor"]
    if failed:
        lines += [f"onnx2tf's per-channel int8 failed on {'; '.join(failed)}; {PER_TENSOR}", ""]
    lines += [TABLE_HEAD, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        o2t = "onnx2tf" + (" per-tensor" if r.get("onnx2tf_mode") == "per-tensor" else "")
        for who, stats, secs in (("edgec", r["edgec"], r["edgec_s"]),
                                 (o2t, r.get("onnx2tf"), r.get("onnx2tf_s"))):
            if stats is None:
                err = _short(r.get("onnx2tf_error") or "not run")
                lines.append(f"| {r['model']} | {who} | failed: {err} | | | | | |")
                continue
            lines.append(f"| {r['model']} | {who} | {secs:.1f} s | {stats['ops']} | "
                         f"{stats['transposes']} | {_b(stats['bytes'])} | "
                         f"{stats['nnapi_12']}/{stats['ops']} | {stats['gpu']}/{stats['ops']} |")
    snr_rows = [r for r in rows if "snr_edgec" in r]
    if snr_rows:
        lines += ["", "int8 output SNR against onnxruntime fp32 (LiteRT reference kernels):", "",
                  "| model | calib / eval samples | edgec | onnx2tf |", "|---|---|---|---|"]
        for r in snr_rows:
            theirs = "—" if r["snr_onnx2tf"] is None else f"{r['snr_onnx2tf']:.1f} dB"
            if r["snr_onnx2tf"] is not None and r.get("onnx2tf_mode") == "per-tensor":
                theirs += " (per-tensor)"
            lines.append(f"| {r['model']} | {r['calib']} / {r['eval']} | "
                         f"{r['snr_edgec']:.1f} dB | {theirs} |")
    lines += ["", ARENA_INTRO, "", ARENA_HEAD, "|---|---|---|---|---|---|"]
    for r in rows:
        t8, t32 = r["tflm_int8"], r["tflm_fp32"]
        o2t = r.get("tflm_onnx2tf", {}).get("tensors")
        lines.append(f"| {r['model']} | {_b(r['c_arena_int8'])} | {_b(t8.get('tensors'))} / "
                     f"{_b(t8.get('total'))} | {_b(o2t)} | {_b(r['c_arena_fp32'])} | "
                     f"{_b(t32.get('tensors'))} / {_b(t32.get('total'))} |")
    behind = _behind(rows)
    lines += ["", "Rows where edgec is behind onnx2tf: "
              + ("; ".join(behind) if behind else "none")
              + (" (reasons: docs/nnapi.md, *Side by side with onnx2tf*)." if behind else "."),
              END, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure, print the section, optionally write it into a markdown file."""
    sys.path.insert(0, str(REPO))
    from edgec.workbench.machine import machine_info
    from edgec.markdown import replace_section

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--venv", default="/tmp/onnx2tf-venv", help="where onnx2tf is installed")
    ap.add_argument("--write", metavar="MD", help="write the section into this file")
    ap.add_argument("--json", metavar="OUT", help="also save the raw rows as JSON")
    args = ap.parse_args(argv)
    exe, info = ensure_onnx2tf(Path(args.venv))
    version, error = (info, "") if exe else ("not installed", info)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in [m.strip() for m in args.models.split(",") if m.strip()]:
            print(f"tflite_compare: {model} ...", file=sys.stderr, flush=True)
            rows.append(measure(model, exe, Path(tmp)))
    text = markdown(rows, machine_info(), version, error)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if args.write:
        replace_section(args.write, BEGIN, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
