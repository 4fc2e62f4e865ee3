#!/usr/bin/env python3
"""edgec's CoreML back-end side by side with onnx2coreml on the same ONNX files.

  python -m venv /tmp/o2c && /tmp/o2c/bin/pip install onnx2coreml onnxruntime  # throwaway
  python tools/coreml_compare.py --onnx2coreml-python /tmp/o2c/bin/python [--write-docs]

For every zoo model and compute precision (fp32, fp16) each converter writes an ML Program
`.mlpackage`; onnx2coreml runs in its own interpreter (a subprocess of the given venv), edgec
in this one. Both packages are then read back the same way (coremltools' milproto loader,
edgec/codegen/coreml/evaluate.py): MIL ops (without consts), package and weight-file bytes,
conversion time (median of --repeat runs from the ONNX file to the package's bytes, timed
inside the converting process after its imports; onnx2coreml's includes model.save), and
the SNR of the package's program evaluated in numpy against onnxruntime on one seeded input
(n/a when the program uses an op edgec's evaluator does not know). A converter error is
recorded as its first two lines. onnx2coreml folds constant nodes only when onnxruntime (an
optional dependency of it) is importable; without it, it stops at MobileNetV2's 70 Constant
nodes (UnsupportedOpError), so its venv gets onnxruntime.
With --write-docs the table replaces the CoreML section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = ("digits_cnn", "dscnn", "resnet8", "mobilenetv2", "mobilenetv2_trained")
SECTION = "## CoreML: edgec vs onnx2coreml"

O2C_SCRIPT = r"""
import json, sys, time, logging, contextlib, io
logging.disable(logging.WARNING)
src, dst, precision = sys.argv[1:4]
with contextlib.redirect_stderr(io.StringIO()):
    import onnx2coreml
    try:
        t0 = time.perf_counter()
        model = onnx2coreml.convert(src, format="mlpackage", compute_precision=precision,
                                    minimum_deployment_target="iOS15")
        model.save(dst)
        seconds = time.perf_counter() - t0
        print(json.dumps({"ok": True, "seconds": seconds,
                          "version": onnx2coreml.__version__}))
    except Exception as e:
        line = " ".join(ln.strip() for ln in str(e).strip().splitlines()[:2]) or type(e).__name__
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {line}"[:300],
                          "version": onnx2coreml.__version__}))
"""


def package_stats(pkg: Path, model_path: Path) -> dict:
    """MIL op counts, sizes and the numpy-evaluated SNR of a written package."""
    import numpy as np

    from edgec.codegen.coreml.evaluate import evaluate, load_package
    from edgec.quant.calibrate import snr_db
    from edgec.workbench.compare import onnxruntime_outputs

    prog = load_package(pkg)
    func = prog.functions["main"]
    ops = Counter(op.op_type for op in func.operations if op.op_type != "const")
    files = [p for p in pkg.rglob("*") if p.is_file()]
    weights = sum(p.stat().st_size for p in files if "weights" in p.parts)
    rng = np.random.default_rng(0)
    feeds = {}
    for name, var in func.inputs.items():
        feeds[name] = rng.standard_normal(tuple(int(d) for d in var.shape)).astype(np.float32)
    snr = None
    try:
        got = evaluate(prog, feeds)
        import onnx

        m = onnx.load(str(model_path))
        init = {t.name for t in m.graph.initializer}
        onnx_in = [i.name for i in m.graph.input if i.name not in init]
        ref = onnxruntime_outputs(model_path, dict(zip(onnx_in, feeds.values())))
        snr = min(snr_db(r, np.asarray(g).reshape(r.shape))
                  for r, g in zip(ref.values(), got.values()))
    except NotImplementedError as e:
        snr = f"n/a ({str(e).split(chr(39))[1]})" if "'" in str(e) else "n/a"
    return {"mil_ops": int(sum(ops.values())), "op_kinds": dict(sorted(ops.items())),
            "package_bytes": int(sum(p.stat().st_size for p in files)),
            "weights_bytes": int(weights), "snr_db": snr}


def run_edgec(model_path: Path, precision: str, tmp: Path, repeat: int) -> dict:
    """Compile with edgec (coreml-fp32 / coreml-fp16), time the conversion in-process."""
    from edgec.compiler import CompileOptions, compile_model, write_output

    from edgec.codegen.coreml._ct import coremltools

    coremltools()  # imported before timing, as onnx2coreml's is
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = compile_model(model_path, CompileOptions(target=f"coreml-{precision}"))
        times.append(time.perf_counter() - t0)
    out = write_output(result.files, tmp / f"edgec-{model_path.stem}-{precision}")
    row = {"ok": True, "seconds": statistics.median(times)}
    row.update(package_stats(out / result.report["package"], model_path))
    return row


def run_o2c(python: str, model_path: Path, precision: str, tmp: Path, repeat: int) -> dict:
    """Convert with onnx2coreml in its own interpreter; its first error line if it fails."""
    times, info = [], {}
    dst = tmp / f"o2c-{model_path.stem}-{precision}.mlpackage"
    for _ in range(repeat):
        proc = subprocess.run([python, "-c", O2C_SCRIPT, str(model_path), str(dst), precision],
                              capture_output=True, text=True, timeout=900)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return {"ok": False, "error": f"exit {proc.returncode}: {err}"[:300]}
        info = json.loads(lines[-1])
        if not info["ok"]:
            return info
        times.append(info["seconds"])
    row = {"ok": True, "seconds": statistics.median(times), "version": info.get("version")}
    row.update(package_stats(dst, model_path))
    return row


def _cell(row: dict, key: str) -> str:
    if not row["ok"]:
        return "-"
    v = row[key]
    if key == "seconds":
        return f"{v:.2f}"
    if key == "snr_db":
        return v if isinstance(v, str) else f"{v:.1f}"
    return f"{v:,}"


def markdown(rows: list[dict], machine: str, o2c_version: str) -> str:
    """The docs section: one line per model and precision, then the errors verbatim."""
    out = [SECTION, "",
           f"Written by `python tools/coreml_compare.py --write-docs` on {machine}. "
           f"onnx2coreml {o2c_version} (PyPI, throwaway venv with onnxruntime, which "
           "onnx2coreml's constant folding needs: without it onnx2coreml stops at "
           "MobileNetV2's 70 Constant nodes) and edgec on the same ONNX "
           "files, ML Program `.mlpackage`, minimum deployment target iOS15 for both. Both "
           "packages are read back with coremltools and their MIL programs evaluated by "
           "edgec's numpy evaluator; SNR against onnxruntime on one seeded N(0,1) input (the "
           "lowest over the outputs). Conversion time: median of 3 runs from the ONNX file to "
           "the package, inside the converting process, imports excluded (coremltools calls "
           "gc.collect() during conversion; in edgec's environment torch is installed, which "
           "makes that collection cost 0.4-1.9 s per conversion, with the load). The "
           "machine is a shared "
           "2-core VM that other jobs loaded during the run: the conversion times moved by up "
           "to 3x between two runs of this tool, so only the ops, sizes, SNRs and which models "
           "convert are firm.", "",
           "| model | precision | converts (edgec / o2c) | MIL ops | package bytes | "
           "weight bytes | convert s | SNR dB |", "|---|---|---|---|---|---|---|---|"]
    errors = []
    for r in rows:
        e, o = r["edgec"], r["o2c"]
        ok = f"{'yes' if e['ok'] else 'no'} / {'yes' if o['ok'] else 'no'}"
        cells = [f"{_cell(e, k)} / {_cell(o, k)}" for k in
                 ("mil_ops", "package_bytes", "weights_bytes", "seconds", "snr_db")]
        out.append(f"| {r['model']} | {r['precision']} | {ok} | " + " | ".join(cells) + " |")
        for who, row in (("edgec", e), ("onnx2coreml", o)):
            if not row["ok"]:
                errors.append(f"- {who}, {r['model']} {r['precision']}: `{row['error']}`")
    out += ["", "Cells are edgec / onnx2coreml."]
    if errors:
        out += ["", "Errors:", "", *errors]
    return "\n".join(out) + "\n"


def write_docs(text: str) -> None:
    """Replace (or append) the CoreML section of docs/benchmarks.md."""
    path = REPO / "docs" / "benchmarks.md"
    doc = path.read_text()
    if SECTION in doc:
        head, rest = doc.split(SECTION, 1)
        nxt = rest.find("\n## ")
        doc = head + text + (rest[nxt + 1:] if nxt >= 0 else "")
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    path.write_text(doc)


def main(argv: list[str] | None = None) -> int:
    """Run both converters on the zoo and print (or write) the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--onnx2coreml-python", required=True,
                   help="python of a venv where onnx2coreml is installed")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--write-docs", action="store_true")
    args = p.parse_args(argv)
    machine = f"{platform.processor() or platform.machine()}, {platform.system()} " \
              f"{platform.release()}, Python {platform.python_version()}"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                   if ln.startswith("model name"))
        machine = f"{cpu} ({platform.system()}, Python {platform.python_version()})"
    except (OSError, StopIteration):
        pass
    rows, version = [], "?"
    with tempfile.TemporaryDirectory(prefix="edgec-coreml-compare-") as tmp:
        for model in args.models.split(","):
            path = REPO / "golden" / "models" / f"{model}.onnx"
            for precision in ("fp32", "fp16"):
                e = run_edgec(path, precision, Path(tmp), args.repeat)
                o = run_o2c(args.onnx2coreml_python, path, precision, Path(tmp), args.repeat)
                version = o.get("version", version)
                rows.append({"model": model, "precision": precision, "edgec": e, "o2c": o})
                print(json.dumps(rows[-1]), flush=True)
    text = markdown(rows, machine, version)
    if args.write_docs:
        write_docs(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
