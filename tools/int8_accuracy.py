"""int8 accuracy of the zoo models, measured through the generated C, written into
docs/benchmarks.md (between the int8-accuracy markers; the rest of the file is kept).

For each model: calibrate generic-int8 on seeded N(0, 1) inputs (seed 1), evaluate on other
seeded inputs (seed 2; disjoint from the calibration inputs), and measure
- output SNR of edgec's int8 C against onnxruntime fp32 on the original model;
- agreement of the same C with onnxruntime running `edgec export-qdq`'s model without graph
  optimisations (share of output elements within 1 LSB of the output's int8 scale): unfused,
  onnxruntime runs float ops between Q and DQ, the same on every host, where its fused
  integer kernels change bits with the host's ISA (docs/hosts.md);
- weights bytes int8 / fp32, calibration time;
- as context, the SNR of onnxruntime's own int8 (quantize_static, QDQ, per channel, s8
  activations, same calibration inputs) against fp32: a model that loses accuracy under
  every int8 scheme is a property of the model, not of edgec.
The digits CNN is also scored on its test split (calibrated on digits_calib.npz).

Inputs follow each model's preprocessing: N(0, 1) for the zoo models built from normalised
tensors, uniform [0, 1) for mobilenetv2_trained (RGB pixels / 255, as nsfwjs feeds it). A
model whose output is a float Softmax over int8 logits (resnet8, dscnn, mobilenetv2_trained)
is measured at the logits, the Softmax removed: the logits are the last int8 tensor, so
"within 1 LSB" is defined there, and an error in the logits is not hidden by the Softmax's
saturation.

Usage: python tools/int8_accuracy.py [--models a,b] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "golden" / "models"
MODELS = ["resnet8", "dscnn", "digits_cnn", "mobilenetv2", "mobilenetv2_trained"]
CALIB_SAMPLES = {"mobilenetv2": 100, "mobilenetv2_trained": 100}
UNIT_INPUTS = {"mobilenetv2_trained"}  # images scaled to [0, 1)
DEFAULT_CALIB = 64
EVAL_SAMPLES = 8
# 5 outputs per sample: more samples, so that "within 1 LSB" counts hundreds of elements
EVAL_SAMPLES_BY_MODEL = {"mobilenetv2_trained": 64}
BEGIN, END = "<!-- int8-accuracy:begin -->", "<!-- int8-accuracy:end -->"


def ort_session_outputs(model, feeds: dict, optimize: bool = True) -> dict:
    """onnxruntime outputs (1 thread) of a model path or ModelProto; optimize=False runs a QDQ
    model unfused (float ops between Q and DQ: the same bits on every host)."""
    from edgec.workbench.compare import onnxruntime_outputs

    return onnxruntime_outputs(model, feeds, optimize)


def output_lsb(graph) -> float:
    """Scale of the int8 value dequantised on the way to the first output."""
    v = graph.outputs[0]
    while v.producer.op != "DequantizeLinear":
        v = v.producer.input(0)
    return float(v.producer.input(0).quant.scale[0])


def ort_self_agreement(model, evals, name: str, lsb: float) -> float:
    """Share of output elements within 1 LSB between onnxruntime with all graph optimisations
    (fused integer kernels) and without (float ops between Q and DQ) on the same QDQ model:
    how far two correct int8 executions of the model can drift apart."""
    import onnxruntime as ort

    runs = []
    for level in (ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                  ort.GraphOptimizationLevel.ORT_DISABLE_ALL):
        so = ort.SessionOptions()
        so.graph_optimization_level = level
        so.intra_op_num_threads = 1
        so.log_severity_level = 3
        sess = ort.InferenceSession(model.SerializeToString(), so,
                                    providers=["CPUExecutionProvider"])
        runs.append(np.concatenate([sess.run([name], e)[0].ravel() for e in evals]))
    return float(np.mean(np.abs(runs[0] - runs[1]) <= lsb * (1 + 1e-4)))


def ort_int8_snr(path: Path, calib, evals, name: str, refs) -> float:
    """SNR of onnxruntime's quantize_static int8 model against fp32."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from edgec.quant.calibrate import snr_db

    class Reader:
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "q.onnx"
        quantize_static(str(path), str(out), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8)
        got = [ort_session_outputs(out, e)[name] for e in evals]
    return snr_db(np.concatenate([r.ravel() for r in refs]),
                  np.concatenate([g.ravel() for g in got]))


def model_inputs(g, model: str, count: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Seeded inputs in the model's own input range (see the module docstring)."""
    from edgec.quant import random_calibration_inputs

    samples = random_calibration_inputs(g, count, seed=seed)
    if model in UNIT_INPUTS:
        rng = np.random.default_rng(seed)
        samples = [{k: rng.random(v.shape, dtype=np.float32) for k, v in s.items()}
                   for s in samples]
    return samples


def logits_model(path: Path, out_dir: Path) -> Path:
    """`path` itself, or, when its only output comes from a Softmax, a copy in `out_dir` whose
    output is the Softmax's input."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    last = [n for n in graph.node if n.output[0] == graph.output[0].name]
    if len(graph.output) != 1 or not last or last[0].op_type != "Softmax":
        return path
    graph.node.remove(last[0])
    del graph.output[:]
    graph.output.append(onnx.ValueInfoProto(name=last[0].input[0]))
    out = out_dir / f"{path.stem}_logits.onnx"
    onnx.save(model, str(out))
    return out


def evaluate(model: str, calib_count: int | None = None, eval_count: int | None = None,
             with_ort_int8: bool = True) -> dict:
    """Every measure of the module docstring for one zoo model."""
    eval_count = eval_count or EVAL_SAMPLES_BY_MODEL.get(model, EVAL_SAMPLES)
    with tempfile.TemporaryDirectory() as tmp:
        return _evaluate(model, logits_model(ZOO / f"{model}.onnx", Path(tmp)), calib_count,
                         eval_count, with_ort_int8)


def _evaluate(model: str, path: Path, calib_count, eval_count, with_ort_int8) -> dict:
    """`evaluate` on the model file `path` (the zoo model or its logits copy)."""
    from edgec.compiler import CompileOptions, compile_model
    from edgec.frontend.onnx import load_onnx
    from edgec.quant.calibrate import snr_db
    from edgec.quant.qdq_export import qdq_model
    from edgec.workbench.verify import run_compiled

    g = load_onnx(path)
    calib = model_inputs(g, model, calib_count or CALIB_SAMPLES.get(model, DEFAULT_CALIB),
                         seed=1)
    evals = model_inputs(g, model, eval_count, seed=2)
    t0 = time.perf_counter()
    result = compile_model(path, CompileOptions(target="generic-int8", calib_samples=calib))
    compile_s = time.perf_counter() - t0
    fp32 = compile_model(path, CompileOptions(target="generic-fp32"))
    with tempfile.TemporaryDirectory() as tmp:
        outs = run_compiled(result, evals, Path(tmp))
    name = (g.meta.get("output_names") or [g.outputs[0].name])[0]
    refs = [ort_session_outputs(path, e)[name] for e in evals]
    got = np.concatenate([o[name].ravel() for o in outs])
    ref = np.concatenate([r.ravel() for r in refs])
    exported = qdq_model(result.graph)
    lsb = output_lsb(result.graph)
    qdq = np.concatenate([ort_session_outputs(exported, e, optimize=False)[name].ravel()
                          for e in evals])
    ort_self = ort_self_agreement(exported, evals, name, lsb)
    row = {
        "model": model + (" (logits)" if path.stem.endswith("_logits") else ""),
        "ort_self_within_1lsb": ort_self,
        "calib_samples": len(calib),
        "eval_samples": len(evals),
        "snr_db": snr_db(ref, got),
        "qdq_within_1lsb": float(np.mean(np.abs(qdq - got) <= lsb * (1 + 1e-4))),
        "qdq_snr_db": snr_db(ref, qdq),  # onnxruntime running the exported QDQ model
        "weights_int8": result.report["weights_bytes"],
        "weights_fp32": fp32.report["weights_bytes"],
        "calib_seconds": result.report["quantization"]["calibration"]["seconds"],
        "compile_seconds": compile_s,
    }
    row["weights_ratio"] = row["weights_int8"] / row["weights_fp32"]
    if with_ort_int8:
        row["ort_int8_snr_db"] = ort_int8_snr(path, calib, evals, name, refs)
    return row


def digits_accuracy() -> dict:
    """fp32 (onnxruntime) and int8 (generated C) accuracy of the digits CNN on its test split."""
    from edgec.compiler import CompileOptions, compile_model
    from edgec.workbench.verify import run_compiled

    path = ZOO / "digits_cnn.onnx"
    test = np.load(ZOO / "digits_test.npz")
    x, y = test["x"], test["y"]
    result = compile_model(path, CompileOptions(target="generic-int8",
                                                calib=str(ZOO / "digits_calib.npz")))
    feeds = [{"x": x[i:i + 1]} for i in range(len(x))]
    with tempfile.TemporaryDirectory() as tmp:
        outs = run_compiled(result, feeds, Path(tmp))
    int8_pred = np.array([int(np.argmax(o["logits"])) for o in outs])
    fp32 = ort_session_outputs(path, {"x": x[:1]})  # warm-up check of the name
    assert "logits" in fp32
    fp32_pred = np.array([int(np.argmax(ort_session_outputs(path, f)["logits"]))
                          for f in feeds])
    return {"samples": len(y), "fp32": 100.0 * float(np.mean(fp32_pred == y)),
            "int8": 100.0 * float(np.mean(int8_pred == y))}


def markdown(rows: list[dict], digits: dict | None) -> str:
    """The int8 section of docs/benchmarks.md."""
    lines = [BEGIN, "## int8 accuracy (generic-int8, measured through the generated C)", "",
             "Written by `python tools/int8_accuracy.py --write docs/benchmarks.md`; do not "
             "edit by hand.", "",
             "Calibration: seeded inputs (seed 1), minmax; evaluation on other seeded "
             "inputs (seed 2): N(0, 1), or uniform [0, 1) for mobilenetv2_trained (pixels / "
             "255, its preprocessing). Models ending in a float Softmax are measured at their "
             "int8 logits (*(logits)*: the Softmax removed). SNR is against onnxruntime fp32 "
             "on the same model; *QDQ "
             "within 1 LSB* compares the same C output with onnxruntime running the model "
             "written by `edgec export-qdq`; *onnxruntime int8* is onnxruntime's own "
             "quantize_static (QDQ, per channel, s8) on the same calibration inputs, for "
             "context; *onnxruntime vs itself* compares onnxruntime running the exported "
             "model with all graph optimisations (fused integer kernels) and without (float "
             "ops between Quantize and Dequantize): how far two correct int8 executions of "
             "the model drift apart.", "",
             "| model | calib / eval samples | SNR vs fp32 | onnxruntime int8 SNR | QDQ within "
             "1 LSB | onnxruntime vs itself within 1 LSB | weights int8 / fp32 | calibration |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ort = f"{r['ort_int8_snr_db']:.1f} dB" if "ort_int8_snr_db" in r else "-"
        lines.append(
            f"| {r['model']} | {r['calib_samples']} / {r['eval_samples']} | "
            f"{r['snr_db']:.1f} dB | {ort} | {100 * r['qdq_within_1lsb']:.2f} % | "
            f"{100 * r['ort_self_within_1lsb']:.2f} % | "
            f"{r['weights_int8']:,} / {r['weights_fp32']:,} B ({r['weights_ratio']:.4f}) | "
            f"{r['calib_seconds']:.1f} s |")
    if digits:
        lines += ["", f"Digits CNN on its test split ({digits['samples']} images, calibrated on "
                  f"digits_calib.npz): fp32 {digits['fp32']:.2f} %, int8 {digits['int8']:.2f} % "
                  f"({digits['int8'] - digits['fp32']:+.2f} points)."]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace (or append) this tool's marked section of `path`, keeping everything else."""
    from edgec.markdown import replace_section

    replace_section(path, BEGIN, END, section)


def main(argv=None) -> int:
    """Measure and print (and optionally write) the int8 accuracy table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--write", metavar="MD", help="write the section into this markdown file")
    ap.add_argument("--no-ort-int8", action="store_true", help="skip onnxruntime's int8")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    rows = []
    for m in args.models.split(","):
        row = evaluate(m, with_ort_int8=not args.no_ort_int8)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()},
              flush=True)
        rows.append(row)
    digits = digits_accuracy() if "digits_cnn" in args.models.split(",") else None
    section = markdown(rows, digits)
    print(section)
    if args.write:
        write_section(Path(args.write), section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
