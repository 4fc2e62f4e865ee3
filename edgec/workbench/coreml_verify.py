"""`edgec verify -t coreml-*`: the package's MIL program, evaluated in numpy, against
onnxruntime (and on macOS, CoreML's own prediction as well).

The package is written to a temporary folder, loaded back with coremltools
(`skip_model_load=True`: the spec parses and its weights resolve), its MIL program read back
from the spec (evaluate.load_package) and evaluated (evaluate.py). Verdicts per output:

  coreml-fp32  within the fp32 band of edgec/workbench/compare.py (8 x onnxruntime's own
               optimised vs unoptimised spread, rtol x max|ref|, 1e-7): the same rule as
               the C targets;
  coreml-fp16  SNR against onnxruntime >= FP16_MIN_SNR_DB (50 dB);
  coreml-int8  SNR against onnxruntime >= edgec's own int8-weights SNR - INT8_SNR_MARGIN_DB
               (0.5 dB); edgec's own: the fp32 graph with the same int8 weights (int8.py's
               round trip) run by edgec's fast float kernels (edgec.quant.calibrate.run_fast).

SNRs are pooled over all samples; without --inputs the SNR verdicts use SNR_SAMPLES random
inputs (fp16 rounding moves a single sample's SNR by up to ~0.6 dB either way: measured on
digits_cnn, int8 weights with fp16 compute, 46.5 vs 47.0 dB on one seed; pooled over 8
samples every zoo model lands within 0.15 dB below edgec's own or above it).

On macOS with CoreML (coremltools' native module present), `MLModel.predict` runs too and
its outputs must meet the same verdict; elsewhere that step is skipped and says so.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from edgec.codegen.coreml.evaluate import evaluate, load_package, load_spec
from edgec.codegen.coreml.evaluate_neuralnetwork import evaluate_spec
from edgec.codegen.coreml.int8 import fake_quantized
from edgec.codegen.coreml.w8a8 import fake_quantized_activation
from edgec.ir import Graph
from edgec.quant.calibrate import snr_db
from edgec.workbench.compare import (
    DEFAULT_RTOL,
    FP16_MIN_SNR_DB,
    VerifyResult,
    compare,
    compare_outputs,
    load_inputs,
    onnxruntime_outputs,
    random_inputs,
    split_batches,
)

INT8_SNR_MARGIN_DB = 0.5
SNR_SAMPLES = 8  # one sample's SNR wanders by ~0.5 dB with fp16 rounding; 8 pooled do not
GOLDEN_FP16_RTOL = 4e-3  # ~4 fp16 ulps of the output's largest magnitude (golden_rtol)


def golden_rtol(target, rtol: float) -> float:
    """The tolerance `edgec golden` records for `target`: `rtol` for every target except CoreML
    programs that compute in fp16 (coreml-fp16, coreml-int8), which get at least
    GOLDEN_FP16_RTOL of the output's largest magnitude: the evaluator rounds to fp16 after
    every op, so a host whose BLAS sums a float32 dot product in another order can flip an
    intermediate's last fp16 bit (fp16 epsilon 9.8e-4) without anything having regressed."""
    if target.backend == "coreml" and target.precision != "fp32":
        return max(rtol, GOLDEN_FP16_RTOL)
    return rtol


def write_package(result, folder: Path) -> Path:
    """Write the result's `.mlpackage` files (or its `.mlmodel`) under `folder`; its path."""
    for name, data in result.files.items():
        if name == result.report["package"] or name.startswith(result.report["package"] + "/"):
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return folder / result.report["package"]


def run_package(result, samples: list[dict[str, np.ndarray]], folder: Path
                ) -> list[dict[str, np.ndarray]]:
    """Evaluate the written package's MIL program (a NeuralNetwork .mlmodel: its layers) on
    each sample; outputs by ONNX name."""
    path = write_package(result, folder)
    if result.report.get("format") == "neuralnetwork":
        spec = load_spec(path)
        fp16 = result.target.precision != "fp32"  # GPU / Neural Engine keep fp16 activations

        def run(feeds):
            return evaluate_spec(spec, feeds, fp16)
    else:
        prog = load_package(path)

        def run(feeds):
            return evaluate(prog, feeds)
    results = []
    for s in samples:
        got = run(package_feeds(result.report, s))
        results.append({o["name"]: np.asarray(got[o["coreml_name"]], np.float32)
                        .reshape(o["shape"]) for o in result.report["outputs"]})
    return results


def package_feeds(report: dict, sample: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The package's inputs for a sample of the ONNX inputs: an image input gets the pixels
    (tensor - bias) / scale that its `mul` and `add` turn back into the tensor."""
    feeds = {}
    for i in report["inputs"]:
        x = np.asarray(sample[i["name"]], np.float32)
        image = i.get("image")
        if image:
            bias = np.asarray(image["bias"], np.float32).reshape(1, -1, 1, 1)
            x = (x - bias) / np.float32(image["scale"])
        feeds[i["coreml_name"]] = x
    return feeds


def image_samples(report: dict, g, seed: int, count: int) -> list[dict[str, np.ndarray]] | None:
    """Samples whose image input is what a camera gives (integer pixels 0..255, scaled and
    biased like the package does), other inputs seeded N(0, 1); None without an image input."""
    images = {i["name"]: i["image"] for i in report["inputs"] if i.get("image")}
    if not images:
        return None
    samples = []
    for k in range(count):
        s = random_inputs(g, seed + k)
        rng = np.random.default_rng(seed + k)
        for name, image in images.items():
            pixels = rng.integers(0, 256, size=np.shape(s[name])).astype(np.float32)
            bias = np.asarray(image["bias"], np.float32).reshape(1, -1, 1, 1)
            s[name] = (pixels * np.float32(image["scale"]) + bias).astype(np.float32)
        samples.append(s)
    return samples


def predict_on_mac(result, samples, folder: Path) -> list[dict[str, np.ndarray]] | None:
    """CoreML's own outputs (macOS only); None where CoreML cannot run."""
    if sys.platform != "darwin":
        return None
    import coremltools as ct
    from coremltools.models import model as ct_model
    from PIL import Image  # on use: only image inputs on a Mac need it

    if getattr(ct_model, "_MLModelProxy", None) is None:  # no native module for this Python
        return None

    model = ct.models.MLModel(str(folder / result.report["package"]))
    labels = []  # classifier labels: ML Program only (a NeuralNetwork spec has no MIL to read)
    if result.report.get("format") != "neuralnetwork":
        labels = [str(c) for op in load_package(folder / result.report["package"])
                  .functions["main"].operations if op.op_type == "classify"
                  for c in op.inputs["classes"].val]
    results = []
    for s in samples:
        feeds = package_feeds(result.report, s)
        for i in result.report["inputs"]:  # an image input takes a PIL image (RGB)
            if i.get("image"):
                hwc = np.clip(np.rint(feeds[i["coreml_name"]][0]), 0, 255).astype(np.uint8)
                hwc = hwc[::-1] if i["image"]["color_layout"] == "BGR" else hwc
                feeds[i["coreml_name"]] = Image.fromarray(np.transpose(hwc, (1, 2, 0)), "RGB")
        pred = model.predict(feeds)
        row = {}
        for o in result.report["outputs"]:
            got = pred[o["coreml_name"]]
            if isinstance(got, dict):  # classifier: label -> probability, in label order
                got = [got[k] for k in (labels or sorted(got))]
            row[o["name"]] = np.asarray(got, np.float32).reshape(o["shape"])
        results.append(row)
    return results


def weights_only_graph(g: Graph) -> Graph:
    """A copy of the CoreML pipeline's graph with every weight the int8 lowering quantises
    replaced by its int8 round trip (the same tensors and axes as ops_nn's ctx.weight)."""
    g = g.clone()
    for node in g.nodes:
        w = node.input(1)
        if w is None or not w.is_const or np.asarray(w.data).ndim < 2:
            continue
        if node.op == "Conv":
            axis = 0
        elif node.op == "Gemm" and (node.input(2) is None or node.input(2).is_const):
            axis = 0 if node.attrs["transB"] else 1
        elif node.op == "MatMul" and np.asarray(w.data).ndim == 2:
            axis = 1
        else:
            continue
        node.set_input(1, g.const(fake_quantized(np.asarray(w.data, np.float32), axis),
                                  w.name + "_int8w"))
    return g


def int8_weights_snr(g: Graph, samples, refs, out_names: list[str],
                     activation_params: dict | None = None) -> dict[str, float]:
    """edgec's own int8-weights SNR per output (fp32 kernels, int8-rounded weights); with
    `activation_params` (W8A8) every such activation is int8-rounded too."""
    from edgec.quant.calibrate import run_fast

    wg = weights_only_graph(g)
    in_names = g.meta.get("input_names") or [v.name for v in g.inputs]
    got = {n: [] for n in out_names}
    for s in samples:
        if activation_params:
            env = _run_w8a8(wg, {n: s[n] for n in in_names}, activation_params)
        else:
            env = run_fast(wg, {n: s[n] for n in in_names})
        for n, v in zip(out_names, wg.outputs):
            got[n].append(np.asarray(env[v.name]).reshape(-1))
    return {n: snr_db(np.concatenate([np.asarray(r[n]).reshape(-1) for r in refs]),
                      np.concatenate(got[n])) for n in out_names}


def _run_w8a8(g: Graph, feeds: dict[str, np.ndarray], params: dict) -> dict[str, np.ndarray]:
    """The reference interpreter on `g` with every activation in `params` int8-rounded."""
    from edgec.interp import execute, reference_kernel

    env = {}
    for v, n in zip(g.inputs, g.meta.get("input_names") or [v.name for v in g.inputs]):
        x = np.asarray(feeds[n], np.float32)
        env[v.name] = fake_quantized_activation(x, *params[v.name]) if v.name in params else x

    def kernel(node, args):
        results = reference_kernel(node, args)
        return [fake_quantized_activation(r, *params[v.name]) if v is not None and v.name
                in params else r for v, r in zip(node.outputs, results)]

    return execute(g, env, kernel=kernel)


def judge(result, model_path, samples, compiled, rtol: float) -> VerifyResult:
    """Per-output verdicts of the module docstring."""
    precision = result.target.precision
    if precision == "fp32":
        return compare_outputs(result, model_path, samples, compiled, rtol)
    g = result.source_graph
    out_names = g.meta.get("output_names") or [v.name for v in g.outputs]
    refs = [onnxruntime_outputs(model_path, s) for s in samples]
    floors = {n: FP16_MIN_SNR_DB for n in out_names}
    if precision == "int8-weights":
        act = getattr(getattr(result, "coreml", None), "activation_params", None)
        own = int8_weights_snr(result.graph, samples, refs, out_names, act)
        floors = {n: own[n] - INT8_SNR_MARGIN_DB for n in out_names}
        result.report["edgec_int8_weights_snr_db"] = {n: round(v, 3) for n, v in own.items()}
    comparisons, stacked = [], {}
    for name in out_names:
        got = np.concatenate([np.asarray(c[name]).reshape(-1) for c in compiled])
        ref = np.concatenate([np.asarray(r[name]).reshape(-1) for r in refs])
        cmp = compare(name, got, ref)
        cmp.ok = bool(cmp.snr_db >= floors[name])
        comparisons.append(cmp)
        stacked[name] = np.concatenate([c[name] for c in compiled]) if len(compiled) > 1 \
            else compiled[0][name]
    result.report["snr_floor_db"] = {n: round(v, 3) for n, v in floors.items()}
    return VerifyResult(result.target.name, all(c.ok for c in comparisons), comparisons,
                        len(samples), stacked, result.report)


def verify_coreml(model_path: str | Path, options, inputs_path: str | None = None,
                  seed: int = 0, rtol: float = DEFAULT_RTOL) -> VerifyResult:
    """Compile for a CoreML target, evaluate the package's program, judge it (docstring)."""
    from edgec.compiler import compile_model

    result = compile_model(model_path, options)
    g = result.source_graph
    if inputs_path:
        samples = split_batches(g, load_inputs(inputs_path, g))
    else:  # SNR verdicts are judged over SNR_SAMPLES random inputs (seed, seed + 1, ...)
        count = 1 if result.target.precision == "fp32" else SNR_SAMPLES
        samples = image_samples(result.report, g, seed, count) or \
            [random_inputs(g, seed + i) for i in range(count)]
    with tempfile.TemporaryDirectory(prefix="edgec-verify-coreml-") as tmp:
        compiled = run_package(result, samples, Path(tmp))
        on_mac = predict_on_mac(result, samples, Path(tmp))
    res = judge(result, model_path, samples, compiled, rtol)
    if on_mac is None:
        what = "model's layers were" if result.report.get("format") == "neuralnetwork" \
            else "package's MIL program was"
        why = "it needs macOS" if sys.platform != "darwin" else \
            "coremltools has no native CoreML module for this Python"
        res.warnings.append(f"CoreML prediction skipped: {why}; the {what} evaluated "
                            "in numpy (docs/coreml.md)")
    else:
        mac = judge(result, model_path, samples, on_mac, rtol)
        res.ok = res.ok and mac.ok
        for o in mac.outputs:
            o.name = f"{o.name} (CoreML predict)"
        res.outputs += mac.outputs
    return res
