"""The compile driver: frontend -> passes (the target's pipeline) -> memory plan -> backend.

Everything the CLI does goes through `compile_model` and `write_output`, so the library can be
used without the CLI. The output directory is written completely or not at all: files go to a
temporary sibling directory that replaces the destination in one rename, and only a folder
edgec wrote itself is replaced (edgec/output_dir.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import onnx

from edgec import __version__
from edgec.codegen.c.backend import CBackend
from edgec.codegen.c.external_weights import MAX_PARTITIONS
from edgec.codegen.c.fallback import fallback_files
from edgec.codegen.c.kernels.sparse import MODES as SPARSE_MODES
from edgec.codegen.c.naming import model_prefix
from edgec.codegen.c.threads import MAX_THREADS
from edgec.codegen.coreml.options import CoreMLOptions
from edgec.cortexm.cmake import firmware_files
from edgec.errors import EdgecError
from edgec.frontend.onnx import check_model_proto, import_model, load_onnx
from edgec.gcpause import gc_paused_for_large_graphs, paused_gc
from edgec.ir import Graph
from edgec.limits import Limits, check_arena, check_source_bytes, check_weights
from edgec.ops import get_op
from edgec.output_dir import write_output_dir
from edgec.passes import PassManager
from edgec.passes.fuse_row_bands import fuse_row_bands
from edgec.passes.int8_io import check_io, int8_model_io
from edgec.passes.memory_plan import plan_memory
from edgec.quant.driver import quantize_graph
from edgec.quant.weight_bits import check_weight_bits
from edgec.targets import Target, get_target


@dataclass
class CompileOptions:
    """What `edgec compile` can be told."""

    target: str = "generic-fp32"
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    prefix: str | None = None
    verify_each: bool = False
    dump_ir: Path | None = None
    disabled_passes: tuple[str, ...] = ()
    # int8 targets (docs/int8.md): calibration data and method, mixed precision, mode.
    quant: str = "static"
    calib: str | None = None
    calib_method: str = "minmax"
    calib_percentile: float = 99.99
    calib_limit: int | None = None
    calib_samples: list | None = None  # in-memory samples (library use), instead of `calib`
    # Python data (edgec.compile): dicts of input name -> one sample or N stacked on axis 0
    calib_batches: list[dict] | None = None
    preprocess: object | None = None  # edgec.quant.ImagePreprocess for image folders
    keep_float: tuple[str, ...] = ()
    auto_mixed_precision: bool = False
    target_snr: float = 30.0
    seed: int = 0
    limits: Limits = field(default_factory=Limits)  # resource limits (edgec/limits.py)
    tflite_io: str = "float"  # TFLite int8 targets: "int8" model I/O (docs/tflite.md)
    int8_softmax: bool = True  # int8 targets: Softmax as TFLite's int8 SOFTMAX (docs/int8.md)
    tflite_activations: bool = False  # int8: Sigmoid/Tanh as TFLite's LOGISTIC/TANH tables
    coreml_target: str | None = None  # CoreML targets: --coreml-target (docs/coreml.md)
    coreml: CoreMLOptions = field(default_factory=CoreMLOptions)  # --coreml-format ...
    threads: int = 1  # C targets with an OS: heavy layers split over a pool (docs/os-runtime.md)
    weights: str = "rodata"  # "external": PREFIX.weights, mapped at run time (docs/os-runtime.md)
    partitions: int = 1  # --weights external: partitions of consecutive layers
    fallback: str | None = None  # "int8": fp32 and int8 builds behind one API (os-runtime.md)
    sparse_weights: str = "auto"  # C targets: CSR weights for sparse layers (docs/pruning.md)
    io: str = "float"  # int8 C targets: "int8" model inputs/outputs (passes/int8_io.py)
    memory_budget: int | None = None  # C targets: fuse conv chains to fit (docs/memory.md)
    weight_bits: int = 8  # int8 targets: 4 = int4 Conv/Gemm weights, W4A8 (docs/int8.md)
    weights_budget: int | None = None  # --weight-bits 4 mixed precision: flash bytes


@dataclass
class CompileResult:
    """The compiled model: the final IR, its memory plan, the files and the report."""

    graph: Graph
    plan: object
    files: dict[str, str]
    report: dict
    target: Target
    source_graph: Graph | None = None
    float_graph: Graph | None = None  # int8 targets: the fp32 graph that was quantised
    warnings: list[str] = field(default_factory=list)
    # int8 targets: float value name -> the int8 value that replaced it (per-layer debugging)
    quant_value_map: dict[str, str] = field(default_factory=dict)


# --fallback int8: the int8 target built beside each fp32 one (compatible compiler flags)
INT8_TWINS = {"generic-fp32": "generic-int8", "x86_64-fp32": "x86_64-int8",
              "arm64-fp32": "arm64-int8-base"}


def check_threads(threads: int, target: Target) -> None:
    """--threads N: 1..16 on a C target that runs under an OS (pthreads); firmware is refused."""
    if threads == 1:
        return
    if not 1 <= threads <= MAX_THREADS:
        raise EdgecError(f"--threads takes 1..{MAX_THREADS}, not {threads}")
    if target.bare_metal or target.backend != "c":
        raise EdgecError(f"--threads needs a C target with an OS (pthreads); {target.name} "
                         "builds firmware or no C: compile it with one thread")


def compile_fallback(g: Graph, options: CompileOptions, target: Target, model_name: str,
                     extra_report: dict | None) -> CompileResult:
    """--fallback int8: the fp32 build (PREFIX_f32) and its int8 twin's (PREFIX_i8) of `g` in
    one library (codegen/c/fallback.py); `result.variants` holds both CompileResults."""
    twin = INT8_TWINS.get(target.name)
    if options.fallback != "int8" or twin is None:
        raise EdgecError(f"--fallback int8 needs one of the fp32 targets "
                         f"{', '.join(INT8_TWINS)}, not {target.name}")
    if options.weights != "rodata":
        raise EdgecError("--fallback int8 keeps its weights in .rodata: drop --weights external")
    prefix = model_prefix(options.prefix or model_name, explicit=bool(options.prefix))
    variants = {}
    for tag, name in (("f32", target.name), ("i8", twin)):
        sub = replace(options, target=name, prefix=f"{prefix}_{tag}", fallback=None)
        if tag == "f32":  # --weight-bits 4 shapes the int8 variant only
            sub = replace(sub, weight_bits=8, weights_budget=None)
        variants[tag] = compile_graph(g.clone(), sub, model_name, extra_report)
    f32, i8 = variants["f32"], variants["i8"]
    files = fallback_files(prefix, f32, i8, model_name)
    report = {**f32.report, "prefix": prefix, "fallback": {
        "fp32": {"target": f32.target.name, "arena_bytes": f32.report["arena_bytes"],
                 "weights_bytes": f32.report["weights_bytes"]},
        "int8": {"target": i8.target.name, "arena_bytes": i8.report["arena_bytes"],
                 "weights_bytes": i8.report["weights_bytes"]}}}
    files["report.json"] = report_json(report)
    result = CompileResult(f32.graph, f32.plan, files, report, f32.target, f32.source_graph,
                           None, f32.warnings + i8.warnings)
    result.variants = variants
    return result


def check_memory_budget(budget: int | None, target: Target) -> None:
    """--memory-budget BYTES: a positive size, on a C target (fused chains are C kernels)."""
    if budget is None:
        return
    if budget <= 0:
        raise EdgecError(f"--memory-budget takes a positive number of bytes, not {budget}")
    if target.backend != "c":
        raise EdgecError(f"--memory-budget needs a C target; {target.name} writes no C "
                         "(its runtime plans the memory)")


def check_weights_mode(weights: str, partitions: int, target: Target) -> None:
    """--weights external [--partitions K]: a C target with an OS; K in 1..MAX_PARTITIONS."""
    if weights not in ("rodata", "external"):
        raise EdgecError(f"--weights takes rodata or external, not {weights}")
    if weights == "rodata":
        if partitions != 1:
            raise EdgecError("--partitions needs --weights external")
        return
    if target.bare_metal or target.backend != "c":
        raise EdgecError(f"--weights external needs a C target with an OS (mmap); {target.name} "
                         "builds firmware or no C")
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise EdgecError(f"--partitions takes 1..{MAX_PARTITIONS}, not {partitions}")


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (the model hash recorded in reports and goldens)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_pipeline(g: Graph, target: Target, options: CompileOptions) -> Graph:
    """Apply the target's pass pipeline to `g` (in place) and return it."""
    pm = PassManager(
        list(target.pipeline),
        verify_each=options.verify_each,
        dump_dir=options.dump_ir,
        disabled=set(options.disabled_passes),
    )
    return pm.run(g)


def build_report(g: Graph, plan, target: Target, weights_bytes: int, extra: dict) -> dict:
    """The report.json content (documented in docs/report.md)."""
    ops = Counter(n.op for n in g.nodes)
    macs = sum(get_op(n.op).macs(n) for n in g.nodes)
    params = sum(v.data.size for v in g.constants if v.uses and v.dtype.is_float
                 or v.uses and v.dtype.value in ("int8", "uint8"))
    in_names = g.meta.get("input_names") or [v.name for v in g.inputs]
    out_names = g.meta.get("output_names") or [v.name for v in g.outputs]

    def io(values, names):
        return [{"name": n, "shape": list(v.shape), "dtype": v.dtype.value}
                for v, n in zip(values, names)]

    report = {
        "edgec_version": __version__,
        "target": target.name,
        "precision": target.precision,
        "ops": dict(sorted(ops.items())),
        "kernels": len(g.nodes),  # replaced by the backend's count of emitted kernels
        "macs": int(macs),
        "params": int(params),
        "weights_bytes": int(weights_bytes),
        "arena_bytes": int(plan.arena_bytes),
        "arena_lower_bound_bytes": int(plan.arena_lower_bound_bytes),
        "naive_bytes": int(plan.naive_bytes),
        "arena_alignment": int(plan.alignment),
        "memory_strategy": plan.strategy,
        "inputs": io(g.inputs, in_names),
        "outputs": io(g.outputs, out_names),
        "tensors": [
            {"name": name, "offset": plan.offsets[plan.storage_of(name)],
             "bytes": plan.sizes[name], "first_step": plan.lifetimes[name][0],
             "last_step": plan.lifetimes[name][1]}
            for name in plan.offsets
        ],
    }
    report.update(extra)
    return report


def report_json(report: dict) -> str:
    """report.json's text: the report without wall-clock times (calibration's "seconds"), so
    that the same inputs give a byte-identical output directory (CLI or Python API, any
    run); the in-memory report keeps them for `edgec bench` and the tools."""
    cal = (report.get("quantization") or {}).get("calibration")
    if isinstance(cal, dict) and "seconds" in cal:
        report = {**report, "quantization": {**report["quantization"], "calibration": {
            k: v for k, v in cal.items() if k != "seconds"}}}
    return json.dumps(report, indent=2, sort_keys=False) + "\n"


@gc_paused_for_large_graphs
def compile_graph(g: Graph, options: CompileOptions, model_name: str = "model",
                  extra_report: dict | None = None) -> CompileResult:
    """Compile an already imported graph for `options.target`."""
    target = get_target(options.target)
    check_threads(options.threads, target)
    check_weights_mode(options.weights, options.partitions, target)
    check_weight_bits(options, target)
    check_io(options.io, target)
    check_memory_budget(options.memory_budget, target)
    if options.sparse_weights not in SPARSE_MODES:
        raise EdgecError(f"--sparse-weights takes {', '.join(SPARSE_MODES)}, "
                         f"not {options.sparse_weights}")
    if options.fallback:
        return compile_fallback(g, options, target, model_name, extra_report)
    if target.backend == "coreml":  # ML Program package, not C (codegen/coreml/build.py)
        return _compile_coreml(g, options, target, model_name, dict(extra_report or {}))
    if options.prefix:  # a reserved --prefix fails before the pipeline and calibration run
        model_prefix(options.prefix, explicit=True)
    g.mark_sources()  # provenance of every value, for per-layer debugging (docs/golden.md)
    source = g.clone()
    g = run_pipeline(g, target, options)
    float_graph, warnings, quant_report, value_map = None, [], {}, {}
    if target.is_int8:
        g, float_graph, warnings, quant_report, value_map = quantize_graph(g, target, options)
    if options.io == "int8":  # int8 model inputs/outputs: the edge (de)quantise steps go
        int8_model_io(g)
    g.verify()
    row_bands = None
    if options.memory_budget is not None:  # line-buffered chains (passes/fuse_row_bands.py)
        g, row_bands = fuse_row_bands(g, target.alignment, options.memory_budget)
        g.verify()
    plan = plan_memory(g, target.alignment)
    check_arena(plan.arena_bytes, options.limits)
    check_weights((v.data for v in g.constants if v.uses), options.limits)
    prefix = options.prefix or model_name
    if target.backend == "tflite":  # a .tflite flatbuffer, not C (codegen/tflite/)
        from edgec.codegen.tflite import TFLiteBackend  # lazy: the TFLite schema module is large

        backend = TFLiteBackend(target, prefix, io=options.tflite_io, quantization=quant_report)
    else:
        backend = CBackend(target, prefix, explicit_prefix=bool(options.prefix),
                           threads=options.threads, weights=options.weights,
                           partitions=options.partitions,
                           sparse_weights=options.sparse_weights)
    files = backend.generate(g, plan, model_name=model_name)
    if target.bare_metal:  # Cortex-M: example firmware (edgec/cortexm/cmake.py)
        files.update(firmware_files(target, backend.prefix))
    check_source_bytes(sum(len(text) for text in files.values()), options.limits)
    report = build_report(g, plan, target, backend.weights_bytes, dict(extra_report or {}))
    report["kernels"] = backend.kernel_count
    if "int8_io" in g.meta:  # --io int8: each int8 input's and output's scale and zero point
        report["int8_io"] = g.meta["int8_io"]
    report["prefix"] = backend.prefix
    if options.threads > 1:
        report["threads"] = {"threads": options.threads, "split_layers": backend.split_layers}
    if options.weights == "external":
        report["weights_file"] = {"file": f"{backend.prefix}.weights",
                                  "bytes": len(files[f"{backend.prefix}.weights"]),
                                  "partitions": options.partitions}
    report.update(getattr(backend, "report_sections", {}))  # e.g. "tflite" (docs/report.md)
    if row_bands is not None:
        report["row_bands"] = row_bands.as_dict()
    if quant_report:
        report["quantization"] = quant_report
    files["report.json"] = report_json(report)
    return CompileResult(g, plan, files, report, target, source, float_graph, warnings,
                         quant_value_map=value_map)


def _compile_coreml(g: Graph, options: CompileOptions, target: Target, model_name: str,
                    extra_report: dict) -> CompileResult:
    """The CoreML targets: the pipeline, then an ML Program package (no C, no arena plan);
    `result.coreml` holds the package's artefacts."""
    from edgec.codegen.coreml.build import coreml_package  # lazy: coremltools takes ~2 s to load

    g.mark_sources()
    source = g.clone()
    g = run_pipeline(g, target, options)
    g.verify()
    no_c_source = replace(options.limits, max_source_bytes=sys.maxsize)  # there is no C
    check_weights((v.data for v in g.constants if v.uses), no_c_source)  # --max-weights-bytes
    files, report, art = coreml_package(g, target, options.coreml_target, model_name,
                                        extra_report, options.coreml, options)
    result = CompileResult(g, None, files, report, target, source, None, [])
    result.coreml = art
    return result


def compile_model(model_path: str | os.PathLike, options: CompileOptions) -> CompileResult:
    """Load an ONNX file and compile it for `options.target`."""
    get_target(options.target)  # fail fast on an unknown target, before reading the model
    with paused_gc():  # the import builds objects, not garbage: full collections only cost
        g = load_onnx(model_path, options.input_shapes, options.limits)
    extra = {"model": Path(model_path).name, "model_sha256": file_sha256(model_path)}
    return compile_graph(g, options, model_name=Path(model_path).stem, extra_report=extra)


def compile_proto(model: onnx.ModelProto, options: CompileOptions,
                  model_name: str = "model") -> CompileResult:
    """Compile an in-memory ONNX model (the Python API's way in; `compile_model` reads files).
    The report names the model `<model_name>.onnx` with the SHA-256 of its serialised bytes,
    which are the bytes `onnx.save` writes, so a saved copy compiles to the same artefacts."""
    get_target(options.target)  # fail fast on an unknown target, before importing the model
    check_model_proto(model, f"the ONNX model '{model_name}'")
    serialized = model.SerializeToString()
    with paused_gc():
        g = import_model(model, options.input_shapes, name=model_name, limits=options.limits)
    extra = {"model": f"{model_name}.onnx",
             "model_sha256": hashlib.sha256(serialized).hexdigest()}
    return compile_graph(g, options, model_name=model_name, extra_report=extra)


def write_output(files: dict[str, str], outdir: str | os.PathLike) -> Path:
    """Write `files` into `outdir`: the folder appears complete or not at all, and only a
    folder edgec itself wrote is ever replaced (marker `.edgec_output.json`; anything else is
    refused, never deleted). See edgec/output_dir.py."""
    return write_output_dir(files, outdir)
