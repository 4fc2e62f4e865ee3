"""`edgec golden record`: approve a model's outputs on each target.

For one model and one set of inputs (a file, or seeded random inputs) this runs onnxruntime
(the fp32 reference), then per target compiles, builds and runs the model and checks it the
way `edgec verify` does (fp32: within `rtol` of onnxruntime; int8: bit-exact with edgec's
int8 reference interpreter). A target that does not pass is reported and not recorded: a
golden approves correct outputs only. With `per_layer`, every tensor of the fp32 reference
run is stored, and for int8 targets every dumped tensor of the int8 reference run, so that
`edgec golden check` can name the first layer that differs later.

Recording into an existing case with the same model hash and inputs adds or replaces the
given targets and keeps the others; a different model or different inputs start the case
afresh (the old targets would no longer describe it).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgec import __version__
from edgec.compiler import CompileOptions, compile_model, file_sha256
from edgec.errors import DataError, EdgecError, TargetError
from edgec.frontend.onnx import load_onnx
from edgec.golden.manifest import (
    FORMAT,
    MANIFEST,
    load_tensors,
    read_case,
    save_tensors,
    write_manifest,
)
from edgec.golden.options import options_to_json, target_flags
from edgec.interp import run_graph
from edgec.targets import get_target
from edgec.workbench.compare import (
    compare_outputs,
    load_inputs,
    onnxruntime_outputs,
    random_inputs,
    split_batches,
)
from edgec.workbench.coreml_verify import SNR_SAMPLES, golden_rtol, judge
from edgec.workbench.debug import compiled_reference, dump_entries, fp32_reference
from edgec.workbench.verify import run_compiled

DEFAULT_RTOL = 1e-4


@dataclass
class RecordRow:
    """What happened to one target."""

    target: str
    status: str  # "recorded", "mismatch" (not recorded), "skipped" (tool missing), "error"
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    snr_db: float | None = None
    message: str = ""

    def as_dict(self) -> dict:
        """JSON form."""
        def finite(x):
            return x if x is None or math.isfinite(x) else None

        snr = None if self.snr_db is None or math.isinf(self.snr_db) else round(self.snr_db, 3)
        return {"target": self.target, "status": self.status,
                "max_abs_err": finite(self.max_abs_err), "max_rel_err": finite(self.max_rel_err),
                "snr_db": snr, "message": self.message}


def _stack(per_sample: list[dict[str, np.ndarray]], names: list[str]) -> dict[str, np.ndarray]:
    return {n: np.concatenate([np.asarray(s[n]) for s in per_sample]) if len(per_sample) > 1
            else np.asarray(per_sample[0][n]) for n in names}


def _snr(x: float) -> float | None:
    return None if math.isinf(x) else round(x, 3)


def exact_outputs(result) -> dict[str, bool]:
    """int8 targets: which outputs must match bit for bit (an int8 value or a dequantised one)
    and which come out of a float island (compared within the tolerance)."""
    g = result.graph
    names = g.meta.get("output_names") or [v.name for v in g.outputs]
    out = {}
    for name, v in zip(names, g.outputs):
        producer = v.producer
        out[name] = result.target.is_int8 and (
            producer is None or producer.op == "DequantizeLinear" or not v.dtype.is_float)
    return out


def int8_layer_tensors(result, sample: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """Every dumped tensor of the int8 reference run, in the source layout where it has a
    source: ({key: array}, {key: {"scale", "zero_point", "layer"}})."""
    ref = compiled_reference(result, sample)
    tensors, extra = {}, {}
    for e in dump_entries(result):
        if e.key in tensors or e.value not in ref:
            continue
        arr = np.asarray(ref[e.value]).reshape(e.shape)
        if e.source is not None:
            arr = e.to_source_layout(arr)
            if arr is None:
                continue
        tensors[e.key] = arr
        extra[e.key] = {"layer": e.layer_name, "op": e.op}
        if e.scale is not None:
            extra[e.key].update(scale=e.scale, zero_point=e.zero_point)
    return tensors, extra


def _same_inputs(case_dir: Path, manifest: dict, feeds: dict[str, np.ndarray]) -> bool:
    try:
        old = load_tensors(case_dir, manifest["inputs"]["tensors"])
    except (DataError, KeyError):
        return False
    return set(old) == set(feeds) and all(
        old[k].shape == np.shape(feeds[k]) and np.array_equal(old[k], feeds[k]) for k in old)


def _prepare_case_dir(case_dir: Path, sha: str, feeds) -> dict | None:
    """The existing manifest to extend, or None after clearing a stale case (refusing to
    delete a directory that is not a golden case)."""
    if not case_dir.exists():
        return None
    if (case_dir / MANIFEST).exists():
        old = read_case(case_dir).manifest
        if old["model"]["sha256"] == sha and _same_inputs(case_dir, old, feeds):
            return old
        shutil.rmtree(case_dir)
        return None
    if any(case_dir.iterdir()):
        raise EdgecError(f"'{case_dir}' exists and is not a golden case; choose another -d "
                         "or --name")
    return None


def record_case(model_path: str | Path, targets: list[str], out_dir: str | Path,
                options: CompileOptions | None = None, inputs_path: str | None = None,
                seed: int = 0, per_layer: bool = False, rtol: float = DEFAULT_RTOL,
                name: str | None = None, progress=None) -> tuple[Path, list[RecordRow]]:
    """Record (or extend) the golden case of `model_path` under `out_dir`; returns the case
    directory and one row per target. `progress()` is called after each target."""
    model = Path(model_path).resolve()
    if not model.is_file():
        raise DataError(f"model file '{model_path}' does not exist")
    for t in targets:
        get_target(t)  # unknown targets fail before any work
    options = options or CompileOptions()
    sha = file_sha256(model)
    g = load_onnx(model, options.input_shapes)
    feeds = load_inputs(inputs_path, g) if inputs_path else random_inputs(g, seed)
    samples = split_batches(g, feeds)
    in_names = g.meta.get("input_names") or [v.name for v in g.inputs]
    out_names = g.meta.get("output_names") or [v.name for v in g.outputs]

    case_dir = Path(out_dir) / (name or model.stem)
    manifest = _prepare_case_dir(case_dir, sha, feeds)
    case_dir.mkdir(parents=True, exist_ok=True)
    refs = _stack([onnxruntime_outputs(model, s) for s in samples], out_names)
    import onnxruntime  # on use, like every onnxruntime import: ~0.4 s of start-up

    fresh = {
        "format": FORMAT,
        "case": name or model.stem,
        "edgec_version": __version__,
        "model": {"path": Path(_rel(model, case_dir)).as_posix(), "sha256": sha,
                  "input_shapes": {k: list(v) for k, v in options.input_shapes.items()}},
        "inputs": {"source": f"file {Path(inputs_path).name}" if inputs_path
                   else f"seeded random N(0, 1), seed {seed}", "samples": len(samples),
                   "tensors": save_tensors(case_dir, "inputs", {n: feeds[n] for n in in_names})},
        "reference": {"kind": f"onnxruntime {onnxruntime.__version__} (fp32)",
                      "outputs": save_tensors(case_dir, "reference", refs)},
        "per_layer": None,
        "targets": dict(manifest["targets"]) if manifest else {},
    }
    if per_layer:
        values = fp32_reference_values(g, samples[0])
        fresh["per_layer"] = {"reference": "edgec fp32 reference interpreter (imported graph)",
                              "sample": 0, "tensors": save_tensors(case_dir, "layers", values,
                                                                   numbered=True)}
    elif manifest and manifest.get("per_layer"):
        fresh["per_layer"] = manifest["per_layer"]

    # CoreML fp16 / int8-weights verdicts are SNRs pooled over SNR_SAMPLES inputs, as in
    # `edgec verify` (one input's SNR wanders with fp16 rounding); the case's own input is
    # the first, the others are only judged, not stored. Inputs from a file are judged alone.
    snr_extra = [] if inputs_path else [random_inputs(g, seed + i)
                                        for i in range(1, SNR_SAMPLES)]
    rows = []
    for t in targets:
        rows.append(_record_target(model, case_dir, fresh, t, replace(options, target=t),
                                   samples, rtol, per_layer, out_names, snr_extra))
        if progress:
            progress()
    write_manifest(case_dir, fresh)
    return case_dir, rows


def _rel(path: Path, start: Path) -> str:
    return os.path.relpath(path, start.resolve())


def fp32_reference_values(g, sample: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every non-input activation of the fp32 reference run on `g`, in execution order."""
    values = fp32_reference(g, sample)
    inputs = {v.name for v in g.inputs}
    out = {}
    for node in g.nodes:
        for v in node.outputs:
            if v.name in values and v.name not in inputs:
                out[v.name] = values[v.name]
    return out


def _record_target(model: Path, case_dir: Path, manifest: dict, target: str,
                   options: CompileOptions, samples: list, rtol: float, per_layer: bool,
                   out_names: list[str], snr_extra: list) -> RecordRow:
    """Compile, run and check one target; on success store its files and manifest entry.
    CoreML targets run as their package's MIL program in numpy and are judged as `edgec
    verify` judges them (coreml_verify.judge; `snr_extra` pools more inputs into SNRs)."""
    t = get_target(target)
    try:
        result = compile_model(model, options)
        with tempfile.TemporaryDirectory(prefix="edgec-golden-") as tmp:
            compiled = run_compiled(result, samples, Path(tmp))
            extra = run_compiled(result, snr_extra, Path(tmp)) \
                if t.backend == "coreml" and t.precision != "fp32" else []
        if t.backend == "coreml":
            res = judge(result, model, samples + snr_extra[:len(extra)], compiled + extra,
                        rtol)
        else:
            res = compare_outputs(result, model, samples, compiled, rtol)
    except TargetError as e:
        return RecordRow(target, "skipped", message=str(e))
    except EdgecError as e:
        return RecordRow(target, "error", message=str(e))
    except Exception as e:  # noqa: BLE001 - a bug in edgec: report this target, record the rest
        first = (str(e).splitlines() or [""])[0]
        return RecordRow(target, "error", message=f"internal error: {type(e).__name__}: "
                                                  f"{first} (please report it)")
    worst_abs = max((o.max_abs_err for o in res.outputs), default=0.0)
    worst_rel = max((o.max_rel_err for o in res.outputs), default=0.0)
    snr = min((o.snr_db for o in res.outputs), default=math.inf)
    if not res.ok:
        bad = [f"{o.name} ({o.mismatched}/{o.numel} elements differ)" if o.mismatched and
               t.is_int8 else f"{o.name} (max rel err {o.max_rel_err:.3g})"
               for o in res.outputs if not o.ok]
        what = "edgec's int8 reference" if t.is_int8 else "onnxruntime"
        where = f"`edgec verify --per-layer -t {target}` shows where"
        if t.backend == "coreml":
            floors = result.report.get("snr_floor_db", {})
            bad = [f"{o.name} (SNR {o.snr_db:.1f} dB < {floors[o.name]} dB)" if o.name in floors
                   else f"{o.name} (max rel err {o.max_rel_err:.3g})"
                   for o in res.outputs if not o.ok]
            where = "docs/coreml.md gives the verdicts"
        return RecordRow(target, "mismatch", worst_abs, worst_rel, snr,
                         f"{', '.join(bad)} differ from {what}; not recorded (a golden "
                         f"approves correct outputs only; {where})")
    tdir = f"targets/{target}"
    shutil.rmtree(case_dir / tdir, ignore_errors=True)
    exact = exact_outputs(result)
    outputs = _stack(compiled, out_names)
    entry = {
        **target_flags(t),
        "options": options_to_json(options, case_dir),
        "tolerance": {"rtol": golden_rtol(t, rtol), **({"exact": True} if t.is_int8 else {})},
        "outputs": save_tensors(case_dir, f"{tdir}/outputs", outputs, extra={
            n: {"compare": "exact" if exact[n] else "rtol"} for n in out_names}),
        "recorded_vs_reference": {"reference": "onnxruntime fp32", "max_abs_err": worst_abs,
                                  "max_rel_err": worst_rel, "snr_db": _snr(snr)},
    }
    if t.is_int8:
        in_names = [v.name for v in result.graph.inputs]
        int8_ref = _stack([run_graph(result.graph, {n: s[n] for n in in_names})
                           for s in samples], out_names)
        entry["reference_outputs"] = save_tensors(case_dir, f"{tdir}/reference", int8_ref)
        cal = result.report.get("quantization", {}).get("calibration")
        if cal:  # what shaped the scales (no timings or paths: the manifest stays stable)
            entry["calibration"] = {k: cal[k] for k in ("method", "samples", "percentile")
                                    if k in cal}
        if per_layer:
            tensors, extra = int8_layer_tensors(result, samples[0])
            entry["per_layer"] = {"reference": "edgec int8 reference interpreter (compiled "
                                               "graph, layout-corrected)", "sample": 0,
                                  "tensors": save_tensors(case_dir, f"{tdir}/layers", tensors,
                                                          numbered=True, extra=extra)}
    if result.warnings:
        entry["warnings"] = list(result.warnings)
    manifest["targets"][target] = entry
    return RecordRow(target, "recorded", worst_abs, worst_rel, snr)
