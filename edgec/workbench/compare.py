"""How `edgec verify` compares a compiled model's outputs with its reference, and the inputs
it feeds (the build-and-run half is edgec/workbench/verify.py; back-ends that run
elsewhere, CoreML's evaluator and the Cortex-M boards, reuse this half).

The fp32 reference is onnxruntime on the original ONNX file. Error measures per output:
  max_abs_err = max |c - r|
  max_rel_err = max_abs_err / max |r|   (relative to the output's scale, so that values near
                                         zero do not turn rounding noise into huge ratios)
  snr_db      = 10 log10( sum r^2 / sum (c - r)^2 )   (inf when identical)

fp32 verdict: each output is judged against the model's own float sensitivity. A deep model
(a detector, OCR or pose net) amplifies float32 rounding: onnxruntime itself, with its graph
optimisations (folded BatchNorm, fused kernels) and without them, disagrees by up to ~2.5e-3
relative on such models, so one fixed tolerance either fails correct code on them or lets
real bugs through on shallow ones. The band of an output is

  band = max(SPREAD_FACTOR * ort_self_spread,  rtol * max |r|,  ABS_FLOOR)

  ort_self_spread  max |r_opt - r_unopt|: onnxruntime ORT_ENABLE_ALL against ORT_DISABLE_ALL
                   on the same inputs, a measure of how far two correct float32 executions of
                   this model drift apart on these inputs;
  SPREAD_FACTOR=8  edgec is a third float32 execution with its own summation orders (packed
                   GEMM tiles, Winograd); on a real pose model its error against onnxruntime
                   was ~3x that spread (heatmap: 3.8e-3 vs 1.2e-3), 8 leaves margin. Wrong
                   kernels (a shifted element, a wrong border row, a wrong bias) still fail
                   on the zoo and on deep test models (tests/e2e/test_verify_band.py); on a
                   model as sensitive as its OCR-like one, an error below 8x the model's own
                   float noise passes by design (docs/hosts.md);
  rtol=1e-4        the relative floor (relative to the output's largest magnitude): the old
                   fixed tolerance, kept as the least band, so shallow models where both
                   onnxruntime runs agree bit for bit are judged as before;
  ABS_FLOOR=1e-7   about twice float32's unit roundoff: below it an absolute error is under
                   the resolution float32 gives any order-1 quantity the output was computed
                   from (a sigmoid head whose outputs are ~1e-5 on random inputs).

An output passes when max_abs_err <= band; max_rel_err and band are printed side by side.
`compare` without a spread keeps the plain rule max_rel_err <= rtol.

fp16 weights (tflite-fp16): the file stores every conv / fully-connected weight as float16,
which moves outputs by the weights' rounding (ResNet-8: 4.9e-4 relative, SNR 69 dB), far
outside the float32 band. Such an output passes when its SNR against onnxruntime fp32 is at
least FP16_MIN_SNR_DB (50 dB), the floor coreml-fp16 is judged by (coreml_verify.py).

int8 targets: an output passes when the C is bit-identical to the int8 reference interpreter
(`edgec.interp.run_graph` on the quantised graph); the errors and SNR against onnxruntime fp32
are reported alongside (quantisation error, not a failure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgec.console import quote
from edgec.console.html import TableView
from edgec.console.tables import fmt_err, fmt_snr
from edgec.datafiles import as_input_dtype, quote_path, read_arrays
from edgec.errors import DataError, EdgecError
from edgec.interp import run_graph
from edgec.ir import Graph
from edgec.passes.int8_io import dequantize_output, quantize_input
from edgec.workbench.ort_reference import reference_model

DEFAULT_RTOL = 1e-4
SPREAD_FACTOR = 8.0
ABS_FLOOR = 1e-7
FP16_MIN_SNR_DB = 50.0  # fp16 weights or compute: the least SNR against onnxruntime fp32


def random_inputs(g: Graph, seed: int = 0,
                  batch_shapes: dict | None = None) -> dict[str, np.ndarray]:
    """Seeded inputs at real scale: N(0, 1) for floats, small integers otherwise."""
    rng = np.random.default_rng(seed)
    out = {}
    names = g.meta.get("input_names") or [v.name for v in g.inputs]
    for name, v in zip(names, g.inputs):
        shape = (batch_shapes or {}).get(name, v.shape)
        if v.dtype.is_float:
            out[name] = rng.standard_normal(shape).astype(v.dtype.np)
        elif v.dtype.value == "bool":
            out[name] = rng.integers(0, 2, shape).astype(np.bool_)
        else:
            out[name] = rng.integers(0, 10, shape).astype(v.dtype.np)
    return out


def load_inputs(path: str | Path, g: Graph) -> dict[str, np.ndarray]:
    """Read inputs from edgec.npz (keys = input names) or .npy (single-input models), checked
    against the model's inputs (shape, or N of them stacked on axis 0) and converted to their
    element types; any problem is one DataError (edgec/datafiles.py)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"inputs file {quote_path(p)} does not exist")
    return inputs_from_arrays(read_arrays(p, "inputs file"), g, quote_path(p),
                              f"inputs file {quote_path(p)}")


def inputs_from_arrays(data, g: Graph, label: str = "the inputs",
                       where: str = "inputs") -> dict[str, np.ndarray]:
    """`data` (one array for single-input models, or a mapping by input name) checked against
    the model's inputs like `load_inputs`; `label` and `where` name the data in messages."""
    names = g.meta.get("input_names") or [v.name for v in g.inputs]
    if isinstance(data, np.ndarray):
        if len(names) != 1:
            raise DataError(f"{label} holds one array but the model has {len(names)} "
                            "inputs; use an .npz keyed by input name")
        arrays = {names[0]: data}
    elif len(names) == 1 and names[0] not in data and len(data) == 1:
        arrays = {names[0]: next(iter(data.values()))}
    else:
        missing = [n for n in names if n not in data]
        if missing:
            raise DataError(f"{label} lacks input(s) {', '.join(map(quote, missing))} (it "
                            f"holds: {', '.join(map(quote, data)) or 'nothing'})")
        arrays = {n: data[n] for n in names}
    feeds = {}
    for name, v in zip(names, g.inputs):
        arr, want = arrays[name], tuple(v.shape)
        stacked = (len(want) > 0 and arr.ndim == len(want) and arr.shape[1:] == want[1:]
                   and want[0] > 0 and arr.shape[0] > 0 and arr.shape[0] % want[0] == 0)
        if arr.shape != want and not stacked:
            raise DataError(f"{where}: input {quote(name)} has shape "
                            f"{'x'.join(map(str, arr.shape)) or '()'} but the model "
                            f"expects {'x'.join(map(str, want)) or '()'} (or N of them "
                            "stacked on axis 0)")
        feeds[name] = as_input_dtype(arr, v.dtype, f"{where}, input {quote(name)},")
    return feeds


def split_batches(g: Graph, feeds: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Cut inputs whose leading axis exceeds the model's batch into model-sized samples."""
    names = g.meta.get("input_names") or [v.name for v in g.inputs]
    counts = set()
    for name, v in zip(names, g.inputs):
        arr = feeds[name]
        if tuple(arr.shape) == v.shape:
            counts.add(1)
            continue
        if not v.shape or arr.ndim != len(v.shape) or tuple(arr.shape[1:]) != v.shape[1:] \
                or arr.shape[0] % v.shape[0]:
            raise DataError(
                f"input '{name}' has shape {'x'.join(map(str, arr.shape))} but the model "
                f"expects {'x'.join(map(str, v.shape))} (or a multiple of its leading axis)"
            )
        counts.add(arr.shape[0] // v.shape[0])
    if len(counts) > 1:
        raise DataError("inputs hold different numbers of samples")
    n = counts.pop() if counts else 1
    if n == 1:
        return [{name: feeds[name] for name in names}]
    samples = []
    for i in range(n):
        sample = {}
        for name, v in zip(names, g.inputs):
            b = v.shape[0]
            arr = feeds[name]
            sample[name] = arr if tuple(arr.shape) == v.shape else arr[i * b:(i + 1) * b]
        samples.append(sample)
    return samples


def onnxruntime_outputs(model, feeds: dict[str, np.ndarray],
                        optimize: bool = True) -> dict[str, np.ndarray]:
    """Run a model (file path or onnx.ModelProto) in onnxruntime: 1 thread, all graph
    optimisations; outputs by name. The fp32 reference of `edgec verify` and of the tests.

    optimize=False disables every graph optimisation: a QDQ model then runs as float
    DequantizeLinear -> float op -> QuantizeLinear, without the fused integer kernels whose
    bits depend on the host (VNNI vs saturating vpmaddubsw; docs/hosts.md)."""
    import onnxruntime as ort  # on use: ~0.4 s that int8 checks and `edgec run` never pay

    so = ort.SessionOptions()
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    is_path = isinstance(model, (str, Path))
    src = str(model) if is_path else model.SerializeToString()
    try:
        sess = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        res = sess.run(names, feeds)
    except Exception as e:  # the reference itself cannot run the model: a user-facing problem
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        what = f"'{Path(model).name}'" if is_path else "the model"
        raise EdgecError(f"onnxruntime, the reference of 'edgec verify', cannot run "
                         f"{what}: {reason}") from None
    return dict(zip(names, res))


@dataclass
class OutputComparison:
    """Error measures of one output."""

    name: str
    max_abs_err: float
    max_rel_err: float
    snr_db: float
    ok: bool
    mismatched: int = 0
    numel: int = 0
    band_rel: float | None = None  # fp32 verdict band, relative to max |ref| (module doc)
    ort_spread_rel: float | None = None  # onnxruntime optimised vs unoptimised, same scale

    def as_dict(self) -> dict:
        """JSON form (infinite SNR as a large finite number is avoided: null)."""
        snr = None if math.isinf(self.snr_db) else round(self.snr_db, 3)
        d = {"name": self.name, "max_abs_err": self.max_abs_err,
             "max_rel_err": self.max_rel_err, "snr_db": snr, "ok": self.ok}
        if self.band_rel is not None:
            d["band_rel"] = self.band_rel
            d["ort_self_spread_rel"] = self.ort_spread_rel
        return d


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| in float64, NaN against NaN and equal infinities counting as equal."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    same = (np.isnan(a) & np.isnan(b)) | (np.isinf(a) & (a == b))
    diff = np.where(same, 0.0, np.abs(a - b))
    diff = np.where(np.isnan(diff), np.inf, diff)
    return float(diff.max()) if diff.size else 0.0


def compare(name: str, got: np.ndarray, ref: np.ndarray, rtol: float = DEFAULT_RTOL,
            exact: bool = False, ref_unoptimized: np.ndarray | None = None
            ) -> OutputComparison:
    """Compare one output against its reference. With `ref_unoptimized` (onnxruntime without
    graph optimisations on the same inputs) the output passes within the band of the module
    docstring; without it, when max_rel_err <= rtol; `exact` asks for identical values."""
    if got.shape != ref.shape:
        got = got.reshape(ref.shape) if got.size == ref.size else got
    if got.shape != ref.shape:
        return OutputComparison(name, math.inf, math.inf, -math.inf, False, ref.size, ref.size)
    if ref.dtype.kind == "b" or got.dtype.kind == "b":
        ref, got = ref.astype(np.int64), got.astype(np.int64)
    r = ref.astype(np.float64)
    c = got.astype(np.float64)
    both_nan = np.isnan(r) & np.isnan(c)
    same_inf = np.isinf(r) & (r == c)
    diff = np.where(both_nan | same_inf, 0.0, np.abs(c - r))
    diff = np.where(np.isnan(diff), np.inf, diff)
    max_abs = float(diff.max()) if diff.size else 0.0
    finite_r = r[np.isfinite(r)]
    scale = float(np.abs(finite_r).max()) if finite_r.size else 0.0
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf)
    noise = float(np.sum(np.where(np.isfinite(diff), diff, 0.0) ** 2))
    signal = float(np.sum(finite_r ** 2))
    if noise == 0:
        snr = math.inf
    elif signal == 0:
        snr = -math.inf
    else:
        snr = 10 * math.log10(signal / noise)
    mismatched = int(np.count_nonzero(diff))
    ok = mismatched == 0 if exact else max_rel <= rtol
    res = OutputComparison(name, max_abs, max_rel, snr, ok, mismatched, int(ref.size))
    if ref_unoptimized is not None and not exact and ref.dtype.kind == "f":
        spread = _max_abs_diff(ref, np.asarray(ref_unoptimized).reshape(ref.shape))
        band = max(SPREAD_FACTOR * spread, rtol * scale, ABS_FLOOR)
        res.ok = max_abs <= band
        unit = scale if scale > 0 else 1.0
        res.band_rel, res.ort_spread_rel = band / unit, spread / unit
    return res


@dataclass
class VerifyResult(TableView):
    """Everything `edgec verify` reports."""

    target: str
    ok: bool
    outputs: list[OutputComparison]
    samples: int = 1
    compiled_outputs: dict[str, np.ndarray] = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    exact: bool = False  # int8: `ok` means bit-identical to the int8 reference interpreter
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The documented --json object."""
        d = {"target": self.target, "ok": self.ok, "samples": self.samples,
             "outputs": [o.as_dict() for o in self.outputs]}
        if self.exact:  # int8: mismatches vs the int8 interpreter; errors and SNR vs fp32
            d["reference"] = "int8 interpreter (bit-exact); errors and snr_db vs onnxruntime fp32"
            for row, o in zip(d["outputs"], self.outputs):
                row["mismatched"] = o.mismatched
        return d

    def _table(self) -> tuple[str, list[str], list[list[object]], str]:
        """(title, header, rows, caption) of the notebook tables."""
        rows = [[o.name, "ok" if o.ok else "MISMATCH", fmt_err(o.max_abs_err),
                 fmt_err(o.max_rel_err), fmt_snr(o.snr_db)] for o in self.outputs]
        reference = ("bit-exact vs the int8 interpreter; errors and SNR vs onnxruntime fp32"
                     if self.exact else "vs onnxruntime fp32")
        verdict = "PASS" if self.ok else "FAIL"
        return (f"edgec verify: {self.target}, {self.samples} sample(s): {verdict}",
                ["output", "status", "max abs err", "max rel err", "SNR dB"], rows, reference)


def int8_io_feeds(g: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`feeds` of the source model as a `--io int8` build takes them: each float sample of an
    int8 input quantised with its published scale and zero point (passes/int8_io.py)."""
    io = (g.meta.get("int8_io") or {}).get("inputs") or {}
    return {n: quantize_input(x, **io[n]) if n in io and np.asarray(x).dtype.kind == "f"
            else x for n, x in feeds.items()}


def harness_io(g: Graph, feeds: dict[str, np.ndarray]):
    """(input arrays in the harness's order and types, output (shape, dtype) specs)."""
    in_names = g.meta.get("input_names") or [v.name for v in g.inputs]
    feeds = int8_io_feeds(g, feeds)
    ins = [np.ascontiguousarray(np.asarray(feeds[n]).astype(v.dtype.np))
           for n, v in zip(in_names, g.inputs)]
    return ins, [(v.shape, v.dtype.np) for v in g.outputs]


def _verify_int8(result, samples, compiled, refs, rtol: float = DEFAULT_RTOL) -> VerifyResult:
    """int8 verify: bit-exact against the int8 reference interpreter (the pass/fail test),
    plus each output's SNR against onnxruntime fp32 (reported, never a failure)."""
    g = result.graph
    out_names = g.meta.get("output_names") or [v.name for v in g.outputs]
    in_names = g.meta.get("input_names") or [v.name for v in g.inputs]
    interp = [run_graph(g, {n: np.asarray(s[n]) for n in in_names})
              for s in (int8_io_feeds(g, s) for s in samples)]
    io_outs = (g.meta.get("int8_io") or {}).get("outputs") or {}
    comparisons, stacked = [], {}
    for name in out_names:
        got = np.concatenate([np.asarray(c[name]).reshape(-1) for c in compiled])
        want = np.concatenate([np.asarray(r[name]).reshape(-1) for r in interp])
        ref = np.concatenate([np.asarray(r[name]).reshape(-1) for r in refs])
        producer = g.outputs[out_names.index(name)].producer
        bits = producer is None or producer.op == "DequantizeLinear" or \
            not g.outputs[out_names.index(name)].dtype.is_float
        # Outputs of a float island (e.g. a final Softmax) match within fp32 tolerance.
        exact = compare(name, got, want, rtol, exact=bits)
        real = dequantize_output(got, **io_outs[name]) if name in io_outs else got
        vs_fp32 = compare(name, real, ref.astype(np.float64))  # SNR: --io int8 dequantised
        exact.snr_db = vs_fp32.snr_db
        exact.max_abs_err, exact.max_rel_err = vs_fp32.max_abs_err, vs_fp32.max_rel_err
        comparisons.append(exact)
        stacked[name] = np.concatenate([c[name] for c in compiled]) if len(compiled) > 1 \
            else compiled[0][name]
    ok = all(c.ok for c in comparisons)
    res = VerifyResult(result.target.name, ok, comparisons, len(samples), stacked, result.report)
    res.exact = True
    res.warnings = list(result.warnings)
    return res


def has_fp16_weights(target) -> bool:
    """True for a float target whose file stores its weights as float16 (tflite-fp16); the
    CoreML fp16 targets are judged in coreml_verify.py."""
    return target.backend == "tflite" and target.precision == "fp16"


def compare_outputs(result, model_path: str | Path, samples: list[dict[str, np.ndarray]],
                    compiled: list[dict[str, np.ndarray]], rtol: float = DEFAULT_RTOL
                    ) -> VerifyResult:
    """Compare the compiled model's outputs on `samples` with the reference (onnxruntime on
    `model_path`, each fp32 output within its band: module docstring; for int8 targets
    bit-exactness against the int8 interpreter)."""
    g = result.source_graph
    reference, notes = reference_model(model_path)
    refs = [onnxruntime_outputs(reference, s) for s in samples]
    if result.target.is_int8:
        res = _verify_int8(result, samples, compiled, refs, rtol)
        res.warnings.extend(notes)
        return res
    try:
        unopt = [onnxruntime_outputs(reference, s, optimize=False) for s in samples]
    except EdgecError:  # onnxruntime runs this model only optimised: the plain rtol rule
        unopt = None
    out_names = g.meta.get("output_names") or [v.name for v in g.outputs]
    comparisons = []
    stacked = {}
    for name in out_names:
        got = np.concatenate([c[name] for c in compiled]) if len(compiled) > 1 \
            else compiled[0][name]
        ref = np.concatenate([np.asarray(r[name]) for r in refs]) if len(refs) > 1 \
            else np.asarray(refs[0][name])
        ref2 = None if unopt is None else \
            np.concatenate([np.asarray(r[name]) for r in unopt]).reshape(ref.shape)
        stacked[name] = got
        if ref.size == got.size:
            ref = ref.reshape(got.shape)
            ref2 = None if ref2 is None else ref2.reshape(got.shape)
        comparisons.append(compare(name, got, ref, rtol, ref_unoptimized=ref2))
    if has_fp16_weights(result.target):  # judged by SNR: module docstring
        for c in comparisons:
            c.ok = bool(c.snr_db >= FP16_MIN_SNR_DB)
        result.report["snr_floor_db"] = {c.name: FP16_MIN_SNR_DB for c in comparisons}
    ok = all(c.ok for c in comparisons)
    return VerifyResult(result.target.name, ok, comparisons, len(samples), stacked, result.report,
                        warnings=notes)
