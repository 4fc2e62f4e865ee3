"""The CoreML back-end's compile step: IR -> MIL Program -> ML Program `.mlpackage`.

`coreml_package` is what edgec/compiler.py calls for targets with backend "coreml", once the
target's pipeline has run. It lowers the graph to MIL (program.py), converts it with coremltools
(the MIL pass pipeline, fp16 or fp32 compute precision) without loading it (no CoreML
runtime on Linux), writes the package into memory as files of the output folder
(`NAME.mlpackage/...` plus report.json) and describes inputs, outputs and provenance in the
model's metadata.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edgec import __version__
from edgec.codegen.coreml._ct import coremltools, quiet
from edgec.codegen.coreml.app_io import LABEL_OUTPUT, PROBS_OUTPUT, classifier, image_inputs
from edgec.codegen.coreml.app_io import io_report
from edgec.codegen.coreml.neuralnetwork import convert_neuralnetwork, weights_bytes
from edgec.codegen.coreml.options import CoreMLOptions
from edgec.codegen.coreml.program import build_program, deployment_target, needed_target
from edgec.codegen.coreml.w8a8 import activation_params
from edgec.codegen.coreml.weight_file import weight_file_layout
from edgec.errors import UnsupportedError
from edgec.ir import Graph
from edgec.ops import get_op

WEIGHTS_FILE = "Data/com.apple.CoreML/weights/weight.bin"
PRECISIONS = {"fp32": "FLOAT32", "fp16": "FLOAT16", "int8-weights": "FLOAT16"}
CONVERSION_DATE_KEY = "com.github.apple.coremltools.conversion_date"


@dataclass
class CoreMLArtifacts:
    """What the conversion made: the MLModel, the spec I/O names, package file bytes."""

    mlmodel: object
    spec_inputs: list[str]
    spec_outputs: list[str]
    package_files: dict[str, bytes]
    deployment_target: str
    convert_seconds: float
    format: str = "mlprogram"
    nn_layers: dict | None = None  # neuralnetwork: layer type -> count
    activation_params: dict | None = None  # W8A8: IR value -> (scale, zero point)

    @property
    def weights_bytes(self) -> int:
        """Size of the package's weight file (0 when every constant is inline); for a
        NeuralNetwork .mlmodel the bytes of its layers' weights."""
        if self.format == "neuralnetwork":
            return weights_bytes(self.mlmodel.get_spec())
        return len(self.package_files.get(WEIGHTS_FILE, b""))


def read_package(folder: Path) -> dict[str, bytes]:
    """Every file under an .mlpackage folder, by relative POSIX path. An output folder holds
    files only, so a manifest entry naming an empty folder (the weights of a model whose
    constants are all inline) is left out of Manifest.json: the package then loads as is."""
    files = {p.relative_to(folder).as_posix(): p.read_bytes()
             for p in sorted(folder.rglob("*")) if p.is_file()}
    manifest = json.loads(files["Manifest.json"])
    entries = manifest.get("itemInfoEntries", {})
    renamed = {}
    for key, item in list(entries.items()):
        prefix = f"Data/{item.get('path', '')}"
        if not any(name == prefix or name.startswith(prefix + "/") for name in files):
            del entries[key]
            continue
        renamed[key] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"edgec:{item.get('path', '')}"))
    # Item identifiers derived from the item's path, not random: the same model compiles
    # to the same package bytes (coremltools' conversion-date metadata aside).
    manifest["itemInfoEntries"] = {renamed[k]: v for k, v in entries.items()}
    root = manifest.get("rootModelIdentifier")
    if root in renamed:
        manifest["rootModelIdentifier"] = renamed[root]
    files["Manifest.json"] = (json.dumps(manifest, indent=4, sort_keys=True) + "\n").encode()
    spec_name = "Data/com.apple.CoreML/model.mlmodel"
    if spec_name in files:  # protobuf maps (the metadata) serialise in hash order otherwise
        from coremltools.proto import Model_pb2

        spec = Model_pb2.Model()
        spec.ParseFromString(files[spec_name])
        files[spec_name] = spec.SerializeToString(deterministic=True)
    return files


def convert_nn(g: Graph, target, coreml_target: str | None, model_name: str,
               metadata: dict[str, str]) -> CoreMLArtifacts:
    """Lower `g` for `target` into a NeuralNetwork .mlmodel (neuralnetwork.py), in memory:
    package_files holds the one file under the name "" (coreml_package names it)."""
    t0 = time.perf_counter()
    mlmodel, spec_in, spec_out, layers, deployment = convert_neuralnetwork(g, target,
                                                                           coreml_target)
    seconds = time.perf_counter() - t0
    describe(mlmodel, g, spec_in, spec_out, metadata)
    data = mlmodel.get_spec().SerializeToString(deterministic=True)
    return CoreMLArtifacts(mlmodel, spec_in, spec_out, {"": data}, deployment, seconds,
                           "neuralnetwork", layers)


def convert(g: Graph, target, coreml_target: str | None, model_name: str,
            metadata: dict[str, str], options: CoreMLOptions | None = None,
            act_params: dict | None = None) -> CoreMLArtifacts:
    """Lower `g` for `target` and convert it into an ML Program package (in memory), with an
    image input and classifier labels when `options` ask (app_io.py)."""
    ct = coremltools()
    options = options or CoreMLOptions()
    int8 = target.precision == "int8-weights"
    needed = needed_target(int8, act_params is not None)
    opset = deployment_target(coreml_target, needed)
    t0 = time.perf_counter()
    with quiet():
        prog, _ctx, spec_in, spec_out = build_program(g, int8, opset, act_params)
        precision = getattr(ct.precision, PRECISIONS[target.precision])
        config = classifier(ct, g, options)
        mlmodel = ct.convert(prog, convert_to="mlprogram", compute_precision=precision,
                             minimum_deployment_target=opset, skip_model_load=True,
                             inputs=image_inputs(ct, g, spec_in, options),
                             classifier_config=config)
    seconds = time.perf_counter() - t0
    if config is not None:  # classify replaced the scores output by label + probabilities
        spec_out = [PROBS_OUTPUT]
        mlmodel.output_description[LABEL_OUTPUT] = "the most likely class label"
    describe(mlmodel, g, spec_in, spec_out, metadata)
    with tempfile.TemporaryDirectory(prefix="edgec-coreml-") as tmp:
        path = Path(tmp) / f"{model_name}.mlpackage"
        with quiet():
            mlmodel.save(str(path))
        files = read_package(path)
    name = coreml_target or needed
    return CoreMLArtifacts(mlmodel, spec_in, spec_out, files, name, seconds,
                           activation_params=act_params)


def describe(mlmodel, g: Graph, spec_in: list[str], spec_out: list[str],
             metadata: dict[str, str]) -> None:
    """Input/output descriptions with the model's names and shapes; edgec's metadata."""
    in_names = g.meta.get("input_names") or [v.name for v in g.inputs]
    out_names = g.meta.get("output_names") or [v.name for v in g.outputs]
    for spec, name, v in zip(spec_in, in_names, g.inputs):
        mlmodel.input_description[spec] = _io_doc(name, v)
    for spec, name, v in zip(spec_out, out_names, g.outputs):
        mlmodel.output_description[spec] = _io_doc(name, v)
    mlmodel.author = "edgec"
    mlmodel.short_description = f"{metadata.get('edgec.source_model', 'model')} compiled by " \
        f"edgec {__version__} for {metadata.get('edgec.target', '?')}"
    mlmodel.version = __version__
    mlmodel.user_defined_metadata.update(metadata)
    # coremltools stamps today's date: the same ONNX file would give other bytes tomorrow
    mlmodel.user_defined_metadata.pop(CONVERSION_DATE_KEY, None)


def _io_doc(name: str, v) -> str:
    shape = "x".join(str(d) for d in v.shape) or "scalar"
    return f"ONNX '{name}': {v.dtype.value} {shape}"[:400]


def report(g: Graph, target, art: CoreMLArtifacts, extra: dict) -> dict:
    """report.json of a CoreML build (docs/coreml.md lists the keys)."""
    if art.format == "neuralnetwork":
        mil_ops = Counter(art.nn_layers)
    else:
        mil_ops = Counter(op.op_type for op in
                          art.mlmodel._mil_program.functions["main"].operations
                          if op.op_type != "const")
    in_names = g.meta.get("input_names") or [v.name for v in g.inputs]
    out_names = g.meta.get("output_names") or [v.name for v in g.outputs]
    params = sum(v.data.size for v in g.constants if v.uses and v.dtype.is_float)
    r = {
        "edgec_version": __version__,
        "backend": "coreml",
        "target": target.name,
        "precision": target.precision,
        "format": art.format,
        "deployment_target": art.deployment_target,
        "ops": dict(sorted(Counter(n.op for n in g.nodes).items())),
        ("nn_layers" if art.format == "neuralnetwork" else "mil_ops"):
            dict(sorted(mil_ops.items())),
        "kernels": int(sum(mil_ops.values())),
        "macs": int(sum(get_op(n.op).macs(n) for n in g.nodes)),
        "params": int(params),
        "weights_bytes": art.weights_bytes,
        **({} if art.format == "neuralnetwork" else {"weights_layout": weight_file_layout(
            art.package_files.get(WEIGHTS_FILE, b""))}),
        "package_bytes": int(sum(len(b) for b in art.package_files.values())),
        "convert_seconds": round(art.convert_seconds, 3),
        "inputs": [{"name": n, "coreml_name": s, "shape": list(v.shape), "dtype": v.dtype.value}
                   for n, s, v in zip(in_names, art.spec_inputs, g.inputs)],
        "outputs": [{"name": n, "coreml_name": s, "shape": list(v.shape),
                     "dtype": v.dtype.value}
                    for n, s, v in zip(out_names, art.spec_outputs, g.outputs)],
    }
    r.update(extra)
    return r


def metadata_for(target, extra: dict) -> dict[str, str]:
    """User-defined metadata: edgec version, target, source model and hash, calibration."""
    calib = "none: weights only, per-output-channel symmetric int8 (max|w|/127)" \
        if target.precision == "int8-weights" else "none: float model"
    return {"edgec.version": __version__, "edgec.target": target.name,
            "edgec.source_model": str(extra.get("model", "model")),
            "edgec.source_sha256": str(extra.get("model_sha256", "")),
            "edgec.calibration": calib}


def _w8a8(g: Graph, target, options: CoreMLOptions, compile_options
          ) -> tuple[dict | None, dict | None]:
    """Calibrated activation parameters and their report entry for --activations int8
    (w8a8.py); (None, None) otherwise."""
    if options.activations == "float":
        return None, None
    if target.precision != "int8-weights":
        raise UnsupportedError(f"--activations int8 needs target coreml-int8, not {target.name}")
    if compile_options is None:
        raise UnsupportedError("--activations int8 needs the compile options (calibration)")
    params, summary, warnings = activation_params(g, compile_options)
    return params, {"dtype": "int8", "values": len(params), "calibration": summary,
                    "scheme": "per-tensor asymmetric int8 (edgec's params_from_range), "
                              "quantize/dequantize after every non-output activation",
                    **({"warnings": warnings} if warnings else {})}


def coreml_package(g: Graph, target, coreml_target: str | None, model_name: str,
                   extra_report: dict, options: CoreMLOptions | None = None,
                   compile_options=None) -> tuple[dict, dict, CoreMLArtifacts]:
    """The files (`MODEL.mlpackage/...` or `MODEL.mlmodel` as bytes, and report.json), the
    report and the artefacts of a graph the CoreML pipeline has run on (edgec/compiler.py
    calls this)."""
    options = options or CoreMLOptions()
    nn = options.format == "neuralnetwork"
    if nn:
        if options.image_input is not None or options.labels is not None:
            image_inputs(None, g, [], options)  # the one-line error: ML Programs only
            classifier(None, g, options)
        if options.activations != "float":
            raise UnsupportedError("--activations int8 is built for ML Programs (iOS17) only; "
                                   "drop --coreml-format neuralnetwork")
        art = convert_nn(g, target, coreml_target, model_name,
                         metadata_for(target, extra_report))
    act, act_report = _w8a8(g, target, options, compile_options)
    if not nn:
        meta = metadata_for(target, extra_report)
        if act_report:
            cal = act_report["calibration"]
            meta["edgec.calibration"] = (
                "per-channel symmetric int8 weights; int8 activations calibrated "
                f"({cal['method']}, {cal['samples']} samples of {cal['source']})")
        art = convert(g, target, coreml_target, model_name, meta, options, act)
    rep = report(g, target, art, extra_report)
    if act_report:
        rep["activations"] = act_report
    io_report(options, art.spec_inputs, rep)
    package = f"{model_name}.mlmodel" if nn else f"{model_name}.mlpackage"
    rep["package"] = package
    files: dict = {f"{package}/{k}".rstrip("/"): v for k, v in art.package_files.items()}
    files["report.json"] = json.dumps(rep, indent=2) + "\n"
    return files, rep, art
