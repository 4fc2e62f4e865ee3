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
4. edgec/workbench/per_layer.py compares each dumped tensor with the reference (fp32
   layout-corrected within `rtol`; int8 bit-exactly plus each layer's SNR against fp32).

`edgec verify --per-layer` (per_layer.verify_per_layer) and `edgec golden check` use these
pieces.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgec import __version__
from edgec.codegen.c.backend import CBackend, make_env
from edgec.codegen.c.naming import c_string, comment_text
from edgec.compiler import write_output
from edgec.interp import run_graph
from edgec.ir import Graph
from edgec.ir.graph import SOURCE, SOURCE_NODES, compose_perm
from edgec.ops import get_op
from edgec.workbench import toolchain

DEBUG_SOURCE_FILE = "edgec_debug.c"
DUMP_FILE = "edgec_dump.bin"
RECORD_HEADER = struct.Struct("<III")  # entry index, layer, byte count
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
    return dict(getattr(result, "quant_value_map", None) or {})


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
        scratch = getattr(get_op(node.op), "scratch_outputs", lambda n: ())(node)
        for i, v in enumerate(node.outputs):
            if v.name not in plan.offsets or i in scratch:  # e.g. RowBands' line buffers
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
    return c_string(path)


def debug_source(result, entries: list[DumpEntry], dump_file: str | Path = DUMP_FILE) -> str:
    """The text of edgec_debug.c for `entries`, writing to `dump_file` by default."""
    template = make_env().get_template("debug_dump.c.j2")
    return template.render(version=__version__, prefix=result.report.get("prefix", "model"),
                           target=result.target, entries=entries,
                           dump_file=_c_path_literal(str(dump_file)))


def build_debug(result, workdir: Path, entries: list[DumpEntry], sanitize: bool = False,
                cc: str | None = None) -> tuple[Path, Path]:
    """Write and build the debug variant of `result` in `workdir`; (executable, dump file)."""
    if getattr(result.target, "bare_metal", False):  # Cortex-M: no hosted debug harness
        from edgec.cortexm.runner import per_layer_refusal  # cortexm builds on the workbench

        raise per_layer_refusal(result.target)
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
    names = [v.name for v in g.inputs]
    return run_graph(g, {n: np.asarray(feeds[n]) for n in names}, keep_all=True)


def compiled_reference(result, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every value of the compiled graph on `feeds` (int8: the bit-exact int8 reference)."""
    g = result.graph
    names = [v.name for v in g.inputs]
    return run_graph(g, {n: np.asarray(feeds[n]) for n in names}, keep_all=True)
