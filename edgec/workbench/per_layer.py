"""`edgec verify --per-layer`: every layer the debug build dumped (edgec/workbench/debug.py)
against its reference. fp32 targets: the fp32 reference interpreter run on the imported graph
(layout-corrected, tolerance `rtol` relative to the tensor's largest magnitude). int8 targets:
bit-exactly against the int8 interpreter run on the compiled graph, plus each layer's SNR
against fp32 (the int8 value dequantised vs the fp32 reference of the same source tensor).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgec.compiler import compile_model
from edgec.errors import ToolchainError
from edgec.workbench.compare import (
    DEFAULT_RTOL,
    VerifyResult,
    compare,
    compare_outputs,
    load_inputs,
    random_inputs,
    split_batches,
)
from edgec.workbench.debug import (
    DumpEntry,
    build_debug,
    compiled_reference,
    dump_entries,
    fp32_reference,
    read_dump,
    run_debug,
)

VERIFY_STEPS = 4  # progress() calls of verify_per_layer


# ------------------------------------------------------------------------------ comparison
@dataclass
class LayerComparison:
    """One dumped tensor against its reference."""

    entry: DumpEntry
    compared: bool = False
    ok: bool = True
    max_abs_err: float = 0.0
    max_rel_err: float = 0.0
    snr_db: float = math.inf
    mismatched: int = 0  # int8: elements differing from the int8 reference
    numel: int = 0
    fp32_snr_db: float | None = None  # int8: SNR of the dequantised value against fp32
    fp32_max_abs_err: float | None = None
    note: str = ""

    def as_dict(self) -> dict:
        """JSON form (infinite SNR as null)."""
        def snr(x):
            return None if x is None or math.isinf(x) else round(x, 3)

        e = self.entry
        d = {"step": e.step, "layer": e.layer_name, "node": e.node, "op": e.op,
             "tensor": e.key, "fused": e.source_nodes[1:], "shape": list(e.source_shape or
                                                                         e.shape),
             "dtype": str(e.dtype), "compared": self.compared, "ok": self.ok,
             "max_abs_err": _finite(self.max_abs_err), "max_rel_err": _finite(self.max_rel_err),
             "snr_db": snr(self.snr_db)}
        if e.scale is not None or self.fp32_snr_db is not None:
            d.update({"mismatched": self.mismatched, "snr_vs_fp32_db": snr(self.fp32_snr_db),
                      "max_abs_err_vs_fp32": _finite(self.fp32_max_abs_err)})
        if self.note:
            d["note"] = self.note
        return d


def _finite(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def _fill(row: LayerComparison, got: np.ndarray, ref: np.ndarray, rtol: float,
          exact: bool) -> None:
    c = compare(row.entry.key, got, ref, rtol, exact=exact)
    row.compared, row.ok = True, c.ok
    row.max_abs_err, row.max_rel_err, row.snr_db = c.max_abs_err, c.max_rel_err, c.snr_db
    row.mismatched, row.numel = c.mismatched, c.numel


def compare_to_source(entries, dumps, reference: dict[str, np.ndarray], rtol: float,
                      exact: bool = False) -> list[LayerComparison]:
    """Each dump, layout-corrected, against `reference` keyed like `DumpEntry.key` (the fp32
    reference interpreter, or a golden's recorded tensors)."""
    rows = []
    for e in entries:
        row = LayerComparison(e)
        rows.append(row)
        if e.index not in dumps:
            row.ok, row.note = False, "not dumped (the program stopped before this layer)"
            continue
        ref = reference.get(e.key)
        if ref is None:
            row.note = "no reference tensor"
            continue
        got = e.to_source_layout(dumps[e.index]) if e.source is not None else dumps[e.index]
        if got is None or got.size != np.size(ref):
            row.note = "shape differs from the reference"
            row.compared, row.ok = True, False
            continue
        bits = exact and np.dtype(e.dtype).kind != "f"
        _fill(row, got, np.asarray(ref).reshape(got.shape), rtol, bits)
    return rows


def compare_int8(entries, dumps, int8_ref: dict[str, np.ndarray],
                 fp32_ref: dict[str, np.ndarray], rtol: float) -> list[LayerComparison]:
    """int8 targets: each dump bit-exactly against the int8 interpreter (float-island values
    within `rtol`), and its dequantised value against the fp32 reference (SNR)."""
    rows = []
    for e in entries:
        row = LayerComparison(e)
        rows.append(row)
        if e.index not in dumps:
            row.ok, row.note = False, "not dumped (the program stopped before this layer)"
            continue
        got = dumps[e.index]
        if e.value in int8_ref:
            ref = np.asarray(int8_ref[e.value]).reshape(got.shape)
            _fill(row, got, ref, rtol, exact=np.dtype(e.dtype).kind != "f")
        if e.source is not None and e.source in fp32_ref:
            real = e.to_source_layout(e.dequantize(got))
            if real is not None:
                c = compare(e.key, real, np.asarray(fp32_ref[e.source], np.float64)
                            .reshape(real.shape), rtol)
                row.fp32_snr_db, row.fp32_max_abs_err = c.snr_db, c.max_abs_err
    return rows


def first_divergent(rows: list[LayerComparison]) -> LayerComparison | None:
    """The first compared layer (execution order) that fails its comparison."""
    return next((r for r in rows if not r.ok), None)


# ------------------------------------------------------------------------------ verify
@dataclass
class PerLayerResult:
    """What `edgec verify --per-layer` reports."""

    verify: VerifyResult
    layers: list[LayerComparison]
    reference: str
    rtol: float
    crash: str | None = None  # the debug build failed mid-run: why (layers after it: missing)

    @property
    def first_divergent(self) -> LayerComparison | None:
        """The first layer beyond tolerance (None when every layer matches)."""
        return first_divergent(self.layers)

    @property
    def ok(self) -> bool:
        """Outputs and every layer match."""
        return self.verify.ok and self.first_divergent is None

    def as_dict(self) -> dict:
        """The --json object: verify's, plus `layers` and `first_divergent_layer`."""
        d = self.verify.as_dict()
        first = self.first_divergent
        d["ok"] = self.ok
        d["per_layer_reference"] = self.reference
        d["layers"] = [r.as_dict() for r in self.layers]
        d["first_divergent_layer"] = first.entry.layer_name if first else None
        d["first_divergent_tensor"] = first.entry.key if first else None
        if self.crash:
            d["crash"] = self.crash
        return d


def verify_per_layer(model_path: str | Path, options, inputs_path: str | None = None,
                     seed: int = 0, rtol: float = DEFAULT_RTOL, sanitize: bool = False,
                     cc: str | None = None, progress=None) -> PerLayerResult:
    """Compile, build with the dump hook, run, and compare outputs and every layer.

    Layers are compared on the first sample; outputs on every sample. `progress()` is called
    after each of the VERIFY_STEPS long steps (compile, build, run, references).
    """
    done = progress or (lambda: None)
    result = compile_model(model_path, options)
    done()
    g = result.source_graph
    feeds = load_inputs(inputs_path, g) if inputs_path else random_inputs(g, seed)
    samples = split_batches(g, feeds)
    with tempfile.TemporaryDirectory(prefix="edgec-debug-") as tmp:
        entries = dump_entries(result)
        exe, dump_path = build_debug(result, Path(tmp), entries, sanitize=sanitize, cc=cc)
        done()
        compiled, crash = [], None
        dumps: dict[int, np.ndarray] = {}
        for i, sample in enumerate(samples):
            try:
                outputs, path = run_debug(result, exe, dump_path, sample)
            except ToolchainError as e:  # a crash: the layers dumped so far say where
                if i:
                    raise
                crash, dumps = str(e), read_dump(dump_path, entries)
                break
            compiled.append(outputs)
            if i == 0:
                dumps = read_dump(path, entries)
        done()
    if crash:
        verify = VerifyResult(result.target.name, False, [], len(samples), {}, result.report)
        verify.exact = result.target.is_int8
    else:
        verify = compare_outputs(result, model_path, samples, compiled, rtol)
    fp32 = fp32_reference(result.source_graph, samples[0])
    if result.target.is_int8:
        rows = compare_int8(entries, dumps, compiled_reference(result, samples[0]), fp32, rtol)
        reference = ("int8 reference interpreter (bit-exact); SNR vs the fp32 reference "
                     "interpreter")
    else:
        rows = compare_to_source(entries, dumps, fp32, rtol)
        reference = "fp32 reference interpreter on the imported model (layout-corrected)"
    done()
    return PerLayerResult(verify, rows, reference, rtol, crash)
