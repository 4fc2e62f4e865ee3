"""Per-layer debugging: dump every layer's output from the compiled C and compare it, in the
source model's layout and under the source model's tensor names, with the reference.

How it works:
1. `dump_entries` lists what the debug build writes: every node output of the compiled graph,
   with its arena offset, size, element type and shape, and its provenance (edgec/ir/graph.py):
   the tensor of the imported model it holds (`source`) and the permutation that turns the
   compiled (channels-last) layout back into the model's (`perm`). For int8 graphs the
   quantize pass's `value_map` links each int8 value to the float value it replaced. Values
   without provenance (inserted transposes, pre-activation results of fused lookups...) are
   dumped under their compiled name and compared only with the compiled graph's reference.
   A view the backend elides (it shares its input's bytes and emits no code) is dumped after
   the last layer before it; views of graph inputs before any layer are not dumped.
2. `debug_source` renders codegen/c/templates/debug_dump.c.j2 into `edgec_debug.c`, which
   implements the `edgec_debug_dump(layer, arena)` hook that model.c calls through
   EDGEC_DUMP(layer) when built with -DEDGEC_DEBUG_DUMP. Normal builds never see the file.
3. The debug build runs through the target's runner (qemu for arm64) and appends records
   to a file on the host; `read_dump` parses them (framing documented in the template).
4. `compare_layers` compares each dumped tensor with the reference: fp32 targets against the
   fp32 reference interpreter run on the imported graph (layout-corrected, tolerance `rtol`
   relative to the tensor's largest magnitude); int8 targets bit-exactly against the int8
   interpreter run on the compiled graph, plus each layer's SNR against fp32 (the int8 value
   dequantised vs the fp32 reference of the same source tensor).

`verify_per_layer` is `edgec verify --per-layer`; `edgec golden check` uses the same pieces.
"""

from __future__ import annotations

import math
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgec.errors import ToolchainError
from edgec.ir import Graph
from edgec.ir.graph import SOURCE, SOURCE_NODES, compose_perm
from edgec.ops import get_op
from edgec.workbench.verify import DEFAULT_RTOL, VerifyResult, compare

DEBUG_SOURCE_FILE = "edgec_debug.c"
DUMP_FILE = "edgec_dump.bin"
RECORD_HEADER = struct.Struct("<III")  # entry index, layer, byte count
VERIFY_STEPS = 4  # progress() calls of verify_per_layer
REQUANT_OPS = ("QuantizeLinear", "DequantizeLinear", "QRequantize")
VIEW_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")


@dataclass
class DumpEntry:
    """One tensor the debug build writes, and how to read it as the source model's tensor."""

    index: int
    layer: int  # EDGEC_DUMP index after which the tensor is complete
    step: int  # position of the producing node in the compiled graph
    node: str  # compiled node name
    op: str
    value: str  # compiled value name
    offset: int
    nbytes: int
    dtype: np.dtype
    shape: tuple[int, ...]
    source: str | None = None  # tensor name in the imported model (None: internal value)
    perm: tuple[int, ...] | None = None  # np.transpose(dumped, perm) is in the source layout
    source_shape: tuple[int, ...] | None = None
    source_nodes: list[str] = field(default_factory=list)  # imported nodes this layer computes
    scale: float | None = None  # int8 values: per-tensor quantisation parameters
    zero_point: int | None = None

    @property
    def key(self) -> str:
        """The name a golden stores the tensor under: source name, or `edgec:` + compiled."""
        return self.source if self.source is not None else f"edgec:{self.value}"

    @property
    def layer_name(self) -> str:
        """The imported node this layer was built from (first of the fused ones)."""
        return self.source_nodes[0] if self.source_nodes else self.node

    @property
    def comment(self) -> str:
        """A one-line description for the generated table."""
        from edgec.codegen.c.naming import comment_text

        return comment_text(f"{self.op} {self.key}", 70)

    def to_source_layout(self, arr: np.ndarray) -> np.ndarray | None:
        """`arr` (as dumped) in the source model's layout and shape; None when impossible."""
        out = np.transpose(arr, self.perm) if self.perm else arr
        want = self.source_shape
        if want is None or tuple(out.shape) == tuple(want):
            return out
        if _same_nonunit_dims(out.shape, want):
            return out.reshape(want)
        return None

    def dequantize(self, arr: np.ndarray) -> np.ndarray:
        """Real values of an int8 tensor (float tensors unchanged), in float64."""
        if self.scale is None or np.dtype(self.dtype).kind == "f":
            return arr.astype(np.float64)
        return (arr.astype(np.float64) - float(self.zero_point)) * float(self.scale)


# ------------------------------------------------------------------------------ provenance
def _same_nonunit_dims(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return [d for d in a if d != 1] == [d for d in b if d != 1]


def _quant_value_map(result) -> dict[str, str]:
    qopts = result.graph.meta.get("quant")
    return dict(getattr(qopts, "value_map", None) or {})


def value_provenance(result) -> dict[str, tuple[str, tuple[int, ...] | None]]:
    """Compiled value name -> (source tensor name, perm), for every value that has one."""
    g: Graph = result.graph
    prov: dict[str, tuple] = {}
    float_graph = getattr(result, "float_graph", None)
    if float_graph is not None:  # int8: a quantised value stands for the float one it replaced
        for fname, qname in _quant_value_map(result).items():
            fv = float_graph.values.get(fname)
            if fv is not None and SOURCE in fv.meta and qname in g.values:
                prov[qname] = fv.meta[SOURCE]
    for v in g.values.values():
        if not v.is_const and SOURCE in v.meta:
            prov[v.name] = v.meta[SOURCE]
    for node in g.nodes:  # forward rules for values the passes inserted
        x = node.input(0)
        if x is None or x.name not in prov:
            continue
        name, perm = prov[x.name]
        for v in node.outputs:
            if v.name in prov:
                continue
            if node.op in REQUANT_OPS:
                prov[v.name] = (name, perm)
            elif node.op in VIEW_OPS and perm is None and _same_nonunit_dims(x.shape, v.shape):
                prov[v.name] = (name, None)  # a view that only moves size-1 dimensions
            elif node.op == "Transpose":
                p = get_op("Transpose").perm(node)
                inverse = [0] * len(p)
                for i, axis in enumerate(p):
                    inverse[axis] = i
                prov[v.name] = (name, compose_perm(inverse, perm))
    return prov


def node_provenance(result) -> dict[str, list[str]]:
    """Compiled node name -> names of the imported nodes it computes (fusions included)."""
    g: Graph = result.graph
    out = {n.name: list(n.meta[SOURCE_NODES]) for n in g.nodes if SOURCE_NODES in n.meta}
    float_graph = getattr(result, "float_graph", None)
    if float_graph is not None:
        for fname, qname in _quant_value_map(result).items():
            fv, qv = float_graph.values.get(fname), g.values.get(qname)
            if fv is None or qv is None or qv.producer is None or fv.producer is None:
                continue
            names = out.setdefault(qv.producer.name, [])
            for name in fv.producer.meta.get(SOURCE_NODES, ()):
                if name not in names:
                    names.append(name)
    return out


def dump_entries(result) -> list[DumpEntry]:
    """Every tensor the debug build of `result` dumps, in execution order."""
    from edgec.codegen.c.backend import CBackend

    g, plan, source = result.graph, result.plan, result.source_graph
    prov = value_provenance(result)
    nodes = node_provenance(result)
    entries: list[DumpEntry] = []
    last_layer = -1
    for step, node in enumerate(g.nodes):
        if CBackend.is_elided_view(node, plan):
            layer = last_layer  # shares its input's bytes: complete after the previous layer
        else:
            layer = last_layer = step
        if layer < 0:
            continue
        for v in node.outputs:
            if v.name not in plan.offsets:
                continue
            name, perm = prov.get(v.name, (None, None))
            src = source.values.get(name) if (source is not None and name) else None
            scale = zp = None
            if v.quant is not None and np.size(v.quant.scale) == 1:
                scale = float(np.asarray(v.quant.scale).reshape(-1)[0])
                zp = int(np.asarray(v.quant.zero_point).reshape(-1)[0])
            entries.append(DumpEntry(
                len(entries), layer, step, node.name, node.op, v.name, plan.offsets[v.name],
                plan.sizes[v.name], np.dtype(v.dtype.np), tuple(v.shape),
                name if src is not None else None, tuple(perm) if perm else None,
                tuple(src.shape) if src is not None else None, nodes.get(node.name, []),
                scale, zp))
    return entries


# ------------------------------------------------------------------------------ C side
def _c_path_literal(path: str) -> str:
    """The exact bytes of `path` as a C string literal (through the one escaping function)."""
    from edgec.codegen.c.naming import c_string

    return c_string(path)


def debug_source(result, entries: list[DumpEntry], dump_file: str | Path = DUMP_FILE) -> str:
    """The text of edgec_debug.c for `entries`, writing to `dump_file` by default."""
    from edgec import __version__
    from edgec.codegen.c.backend import make_env

    template = make_env().get_template("debug_dump.c.j2")
    return template.render(version=__version__, prefix=result.report.get("prefix", "model"),
                           target=result.target, entries=entries,
                           dump_file=_c_path_literal(str(dump_file)))


def build_debug(result, workdir: Path, entries: list[DumpEntry], sanitize: bool = False,
                cc: str | None = None) -> tuple[Path, Path]:
    """Write and build the debug variant of `result` in `workdir`; (executable, dump file)."""
    from edgec.workbench import toolchain
    from edgec.compiler import write_output

    workdir = Path(workdir)
    dump_path = (workdir / DUMP_FILE).resolve()
    files = dict(result.files)
    files[DEBUG_SOURCE_FILE] = debug_source(result, entries, dump_path)
    out_dir = write_output(files, workdir / "debug")
    exe = toolchain.build(out_dir, result.target, sanitize=sanitize, cc=cc,
                          extra_cflags=("-DEDGEC_DEBUG_DUMP",))
    return exe, dump_path


def read_dump(path: Path, entries: list[DumpEntry]) -> dict[int, np.ndarray]:
    """Parse a dump file into entry index -> array (compiled layout). A truncated tail (the
    program crashed mid-layer) is ignored."""
    data = Path(path).read_bytes() if Path(path).exists() else b""
    out: dict[int, np.ndarray] = {}
    pos = 0
    while pos + RECORD_HEADER.size <= len(data):
        index, _layer, nbytes = RECORD_HEADER.unpack_from(data, pos)
        pos += RECORD_HEADER.size
        if index >= len(entries) or pos + nbytes > len(data):
            break
        e = entries[index]
        if nbytes != e.nbytes:
            break
        count = nbytes // e.dtype.itemsize if e.dtype.itemsize else 0
        out[index] = np.frombuffer(data, e.dtype, count, pos).reshape(e.shape).copy()
        pos += nbytes
    return out


def run_debug(result, exe: Path, dump_path: Path, feeds: dict[str, np.ndarray]
              ) -> tuple[dict[str, np.ndarray], Path]:
    """Run the debug build on one sample; (outputs by public name, dump file)."""
    from edgec.workbench import toolchain

    g = result.graph
    in_names = g.meta.get("input_names") or [v.name for v in g.inputs]
    out_names = g.meta.get("output_names") or [v.name for v in g.outputs]
    ins = [np.ascontiguousarray(np.asarray(feeds[n]).astype(v.dtype.np))
           for n, v in zip(in_names, g.inputs)]
    specs = [(v.shape, v.dtype.np) for v in g.outputs]
    dump_path.unlink(missing_ok=True)
    outs, _ = toolchain.run(exe, result.target, ins, specs)
    return dict(zip(out_names, outs)), dump_path


def dump_layers(result, feeds: dict[str, np.ndarray], workdir: Path, sanitize: bool = False,
                cc: str | None = None) -> tuple[list[DumpEntry], dict[int, np.ndarray],
                                                dict[str, np.ndarray]]:
    """Build the debug variant, run it on one sample: (entries, dumps, outputs)."""
    entries = dump_entries(result)
    exe, dump_path = build_debug(result, workdir, entries, sanitize=sanitize, cc=cc)
    outputs, path = run_debug(result, exe, dump_path, feeds)
    return entries, read_dump(path, entries), outputs


# ------------------------------------------------------------------------------ references
def fp32_reference(g: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every value of the imported graph `g` on `feeds` (the fp32 reference interpreter)."""
    from edgec.interp import run_graph

    names = [v.name for v in g.inputs]
    return run_graph(g, {n: np.asarray(feeds[n]) for n in names}, keep_all=True)


def compiled_reference(result, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every value of the compiled graph on `feeds` (int8: the bit-exact int8 reference)."""
    from edgec.interp import run_graph

    g = result.graph
    names = [v.name for v in g.inputs]
    return run_graph(g, {n: np.asarray(feeds[n]) for n in names}, keep_all=True)


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
    from edgec.compiler import compile_model
    from edgec.workbench.verify import compare_outputs, load_inputs, random_inputs, split_batches

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


# ------------------------------------------------------------------------------ text
def _layer_label(e: DumpEntry, width: int = 36) -> str:
    fused = len(e.source_nodes) - 1
    suffix = f" (+{fused} fused)" if fused > 0 else ""
    from edgec.golden.console import shorten

    return shorten(e.layer_name, width - len(suffix)) + suffix


def per_layer_text(res: PerLayerResult, model_name: str) -> str:
    """The per-layer table of `edgec verify --per-layer`, first divergence marked."""
    from edgec.golden.console import fmt_err, fmt_snr, shorten, table

    first = res.first_divergent
    int8 = res.verify.exact
    if int8:
        header = ["step", "layer", "op", "tensor", "shape", "differing", "SNR dB vs fp32",
                  "status"]
    else:
        header = ["step", "layer", "op", "tensor", "shape", "max abs err", "max rel err",
                  "SNR dB", "status"]
    rows = []
    for r in res.layers:
        e = r.entry
        shape = "x".join(map(str, e.source_shape or e.shape)) or "scalar"
        if r is first:
            status = "DIVERGES"
        elif not r.ok:
            status = "mismatch"
        elif not r.compared:
            status = "not compared"
        else:
            status = "ok"
        cells = [str(e.step), _layer_label(e), e.op, shorten(e.key, 36), shape]
        if int8:
            if not r.compared:
                differing = "-"
            elif np.dtype(e.dtype).kind == "f":  # a float island: compared within rtol
                differing = f"rel {fmt_err(r.max_rel_err)}"
            else:
                differing = f"{r.mismatched}/{r.numel}"
            cells += [differing, fmt_snr(r.fp32_snr_db), status]
        else:
            cells += [fmt_err(r.max_abs_err) if r.compared else "-",
                      fmt_err(r.max_rel_err) if r.compared else "-",
                      fmt_snr(r.snr_db) if r.compared else "-", status]
        rows.append(cells)
    head = (f"edgec verify --per-layer: {model_name} on {res.verify.target}: "
            f"{len(res.layers)} tensors dumped; reference: {res.reference}"
            + ("" if int8 else f", rtol {res.rtol:g}"))
    lines = [head, table(header, rows, right={0, 5, 6, 7} if not int8 else {0, 5, 6},
                         status_col=len(header) - 1)]
    if res.crash:
        lines.append(f"the debug build stopped: {res.crash}")
    if first is not None:
        e = first.entry
        why = first.note or (f"{first.mismatched} of {first.numel} elements differ"
                             if int8 and np.dtype(e.dtype).kind != "f"
                             else f"max rel err {fmt_err(first.max_rel_err)} > {res.rtol:g}")
        lines.append(f"first divergence: step {e.step}, layer {e.layer_name} ({e.op}, tensor "
                     f"{e.key}): {why}")
    elif res.layers:
        lines.append("every layer matches its reference")
    return "\n".join(lines)
