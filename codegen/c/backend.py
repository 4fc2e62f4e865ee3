"""The C backend: renders an IR graph and its memory plan into a self-contained C99 library.

Output files (PREFIX is a sanitised C identifier):
  PREFIX.h            public API: arena size, tensor table, run/infer functions
  PREFIX.c            one static function per layer, the run function, the tensor tables
  PREFIX_weights.c/.h every constant as a `const` array (.rodata / flash)
  edgec_*.h           shared kernel headers the layers need (copied from runtime/)
  CMakeLists.txt, PREFIX.mk   drop-in build files for firmware and application builds

Each layer's body comes from the node's Kernel (`select(node, target)`, codegen/c/select.py,
asked once per node): its template rendered with its params; the backend provides the
signature, the pointers into the arena, and a comment naming the source node. Identifiers
never come from model names, and model text reaches the C only through `naming.c_text`
(comments and string literals; see naming.py). A layer whose outputs are all empty (a
dimension of 0) has nothing to compute and gets an empty body instead of its op's loops.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from edgec.errors import EdgecError

from edgec import __version__
from edgec.ir import Graph, Node, Value
from edgec.ops import get_op

from edgec.codegen.c.carray import c_initializer, c_scalar
from edgec.codegen.c.external_weights import WEIGHTS_RUNTIME, external_weights
from edgec.codegen.c.kernel import ConstArray, Kernel
from edgec.codegen.c.kernels.recurrent import streaming_state
from edgec.codegen.c.kernels.int4 import int4_summary, weights_bytes_by_bits
from edgec.codegen.c.kernels.sparse import sparse_layer_rows, sparse_summary
from edgec.codegen.c.naming import c_identifier, c_string, c_text, comment_text, model_prefix
from edgec.codegen.c.row_bands import ROW_BANDS, render_row_bands
from edgec.codegen.c.select import select
from edgec.codegen.c.threads import THREAD_HEADERS, THREAD_SOURCES, WorkSplit, split_layer

TEMPLATE_DIR = Path(__file__).parent / "templates"
INT32_MAX = 2**31 - 1
RUNTIME_DIR = Path(__file__).parent / "runtime"
DTYPE_CODES = {
    "float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7,
    "bool": 9, "float16": 10, "float64": 11,
}


def index_expr(strides) -> str:
    """`i0 * 32u + i1` style index expression for loop counters i0, i1, ... and strides."""
    terms = []
    for d, s in enumerate(strides):
        if s == 0:
            continue
        terms.append(f"i{d}" if s == 1 else f"i{d} * {s}u")
    return " + ".join(terms) if terms else "0"


@functools.lru_cache(maxsize=1)
def make_env() -> jinja2.Environment:
    """The Jinja environment for C templates (StrictUndefined: a typo is an error).

    One shared environment, so each template is parsed once per process, not per compile.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.globals.update(index_expr=index_expr, c_scalar=c_scalar, comment=comment_text)
    env.filters["comment"] = comment_text
    env.filters["cstr"] = c_string
    env.filters["ctext"] = c_text
    return env


@dataclass
class CTensor:
    """A tensor as a template sees it. Reading `.ref` marks a constant as needed."""

    value: Value | None
    ident: str
    ctype: str
    shape: tuple
    is_const: bool
    _used: set = field(default_factory=set, repr=False)

    @property
    def ref(self) -> str:
        """The C expression naming the tensor's first element's array."""
        self._used.add(self.ident)
        return self.ident

    @property
    def numel(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def data(self) -> np.ndarray | None:
        """Constant data (None for activations)."""
        return self.value.data if self.value is not None else None

    @property
    def name(self) -> str:
        """The IR name, escaped for comments."""
        return comment_text(self.value.name if self.value is not None else self.ident)


@dataclass
class Layer:
    """One rendered layer function."""

    fn: str
    node: Node
    params: list[str]
    args: list[str]
    body: str
    comment: str
    kernel: Kernel
    index: int = 0
    before: str = ""  # threaded builds: the split layer's part function and task (threads.py)
    enter: int | None = None  # --weights external: the weights partition entered before it
    split: WorkSplit | None = None  # its work items, while the split is still to be rendered


class CBackend:
    """Renders a graph for one target; `generate` returns {file name: text}.

    `prefix` names the files and the C API: derived from the model's file name (a reserved
    name such as `stdint` is renamed), or given by the user (`explicit_prefix`: a reserved
    or empty name is an EdgecError). See naming.model_prefix.
    """

    def __init__(self, target, prefix: str = "model", explicit_prefix: bool = False,
                 threads: int = 1, weights: str = "rodata", partitions: int = 1,
                 sparse_weights: str = "auto"):
        self.target = target
        self.sparse_weights = sparse_weights  # CSR weights per layer (kernels/sparse.py)
        self.threads = threads  # > 1: heavy layers split over a thread pool (threads.py)
        self.external = weights == "external"  # PREFIX.weights (external_weights.py)
        self.partitions = partitions
        self.prefix = model_prefix(prefix, explicit_prefix)
        self.env = make_env()

    # ------------------------------------------------------------------ constants
    def _collect_constants(self, g: Graph) -> dict[int, CTensor]:
        consts: dict[int, CTensor] = {}
        used: set = set()
        for node in g.nodes:
            for v in node.inputs:
                if v is not None and v.is_const and id(v) not in consts:
                    ident = f"{self.prefix}_k{len(consts)}"
                    consts[id(v)] = CTensor(v, ident, v.dtype.ctype, v.shape, True, used)
        self._const_used = used
        return consts

    # ------------------------------------------------------------------ layers
    def _render_layer(self, index: int, node: Node, consts, plan, extra_arrays) -> Layer:
        fused = node.op == ROW_BANDS  # a fused chain: variants of its layers' kernels
        kernel = None if fused else select(node, self.target,
                                           {"sparse_weights": self.sparse_weights})
        fn = f"layer_{index:03d}_{c_identifier(node.op, 'op')}"
        params: list[str] = []
        args: list[str] = []
        act_ident: dict[int, str] = {}
        offsets = plan.offsets

        def ranges_of(v: Value):
            # An empty tensor still counts as one byte: its pointer may equal another's.
            return offsets[plan.storage_of(v.name)], max(plan.sizes[v.name], 1)

        act_values = []
        for v in list(node.inputs) + list(node.outputs):
            if v is not None and not v.is_const and id(v) not in act_ident:
                act_ident[id(v)] = "PENDING"
                act_values.append(v)
        spans = {id(v): ranges_of(v) for v in act_values}

        def is_restrict(v: Value) -> bool:
            a0, an = spans[id(v)]
            for w in act_values:
                if w is v:
                    continue
                b0, bn = spans[id(w)]
                if a0 < b0 + bn and b0 < a0 + an:
                    return False
            return True

        n_in = n_out = 0
        out_ids = {id(v) for v in node.outputs}
        for v in act_values:
            is_out = id(v) in out_ids
            ident = f"y{n_out}" if is_out else f"x{n_in}"
            n_out += is_out
            n_in += not is_out
            act_ident[id(v)] = ident
            qual = "" if is_out else "const "
            rq = "restrict " if is_restrict(v) else ""
            params.append(f"{qual}{v.dtype.ctype} *{rq}{ident}")
            off = offsets[plan.storage_of(v.name)]
            args.append(f"({qual}{v.dtype.ctype} *)(arena + {off}u)")

        def tensor(v: Value | None):
            if v is None:
                return None
            if v.is_const:
                return consts[id(v)]
            return CTensor(v, act_ident[id(v)], v.dtype.ctype, v.shape, False)

        ins = [tensor(v) for v in node.inputs if v is not None]
        all_ins = [tensor(v) for v in node.inputs]
        outs = [tensor(v) for v in node.outputs]
        split = WorkSplit(False)
        before = ""
        if any(v is not None for v in node.outputs) and all(
                v is None or v.type.numel == 0 for v in node.outputs):
            # Nothing to write: loops of 0 iterations would only trip -Wtype-limits.
            body = "\n".join(["/* every output is empty (a dimension of 0): no work */"]
                              + [f"(void){a};" for a in (act_ident[id(v)] for v in act_values)])
        elif fused:
            before, body, kernel = render_row_bands(self, fn, node, act_ident, consts,
                                                    extra_arrays, CTensor)
        else:
            split = WorkSplit(self.threads > 1 or (self.external and self.partitions > 1))
            body = self._render_body(node, kernel, fn, ins, all_ins, outs, extra_arrays, split)
        shapes_in = ", ".join(str(v.type) for v in node.inputs if v is not None and not v.is_const)
        out_type = node.output.type if len(node.outputs) == 1 else ""
        comment = (f"{c_text(node.op)} '{comment_text(node.name)}': {c_text(out_type)}"
                   f" <- {c_text(shapes_in)}")
        layer = Layer(fn, node, params, args, body, comment, kernel, before=before)
        if split.items >= 2:
            layer.split = split  # rendered once the weights partitions are known (generate)
        return layer

    def _finish_split(self, layer: Layer, inner_enter: list[tuple[int, int]]) -> None:
        """Render a split layer's `_part` function and body (threads.py): over the pool in a
        threaded build, else in one call per segment of work items between the weights
        partitions it enters (`inner_enter`: (item, partition) pairs)."""
        enters = [(item, (f"{self.prefix}_weights_enter({k}u); /* partition {k} of "
                          f"{self.partitions}, from work item {item} */"))
                  for item, k in inner_enter]
        layer.before, layer.body = split_layer(
            layer.fn, layer.params, layer.body, layer.comment, layer.split.items,
            f"{self.prefix.upper()}_LAYER", threaded=self.threads > 1, enters=enters)
        layer.split = None

    def _render_body(self, node: Node, kernel: Kernel, fn: str, ins, all_ins, outs,
                     extra_arrays, split: WorkSplit) -> str:
        """The body of a layer function: the node's kernel template rendered with its params."""
        template = self.env.get_template(kernel.template)
        p = dict(kernel.params)
        for key, val in list(p.items()):
            if isinstance(val, ConstArray):
                ident = f"{self.prefix}_{fn.replace('layer_', 'l')}_{c_identifier(val.hint, 'k')}"
                data = np.ascontiguousarray(val.data)
                extra_arrays.append((ident, data,
                                     f"{comment_text(node.name)}: {c_text(val.hint)}"))
                p[key] = ident
        body = template.render(
            node=node, attrs=node.attrs, ins=ins, all_ins=all_ins, outs=outs, p=p,
            target=self.target, split=split,
        )
        return "\n".join(line.rstrip() for line in body.strip("\n").splitlines() if line.strip())

    @staticmethod
    def is_elided_view(node: Node, plan) -> bool:
        """A view whose output the planner made an alias of its input emits no code."""
        opdef = get_op(node.op)
        if not (getattr(opdef, "is_view", False) or node.op in ("Identity", "Dropout")):
            return False
        kinds = getattr(plan, "alias_kinds", {})
        x = node.input(0)
        return x is not None and not x.is_const and all(
            kinds.get(v.name) == "view" and plan.storage_of(v.name) == plan.storage_of(x.name)
            for v in node.outputs)

    # ------------------------------------------------------------------ tables
    def _io_table(self, g: Graph, values: list[Value], names: list[str], plan) -> list[dict]:
        rows = []
        for v, name in zip(values, names):
            if any(not 0 <= d <= INT32_MAX for d in v.shape):
                raise EdgecError(f"model input or output '{comment_text(name)}' has shape "
                                 f"{list(v.shape)}: a dimension does not fit the int32 "
                                 "shape table of the generated header")
            rows.append({
                "name": name, "name_c": c_string(name), "comment": comment_text(name),
                "ctype": v.dtype.ctype, "dtype": v.dtype.value,
                "dtype_code": DTYPE_CODES[v.dtype.value], "shape": list(v.shape),
                "rank": len(v.shape), "numel": v.type.numel, "bytes": v.type.nbytes,
                "offset": plan.offsets[plan.storage_of(v.name)],
            })
        return rows

    def generate(self, g: Graph, plan, model_name: str = "model", extra_meta: dict | None = None
                 ) -> dict[str, str]:
        """Render every file of the C library for `g` planned by `plan`."""
        consts = self._collect_constants(g)
        extra_arrays: list[tuple[str, np.ndarray, str]] = []
        layers = []
        first_use: dict[str, int] = {}  # constant -> index of the first layer reading it
        for i, n in enumerate(g.nodes):
            if self.is_elided_view(n, plan):
                continue
            seen, extra_before = set(self._const_used), len(extra_arrays)
            layer = self._render_layer(i, n, consts, plan, extra_arrays)
            layer.index = i
            layers.append(layer)
            for ident in [*(self._const_used - seen),
                          *(e[0] for e in extra_arrays[extra_before:])]:
                first_use.setdefault(ident, i)
        self.kernel_count = len(layers)
        runtime = sorted({h for L in layers for h in L.kernel.runtime})
        threads = self.threads if self.threads > 1 else 0
        if threads:
            runtime = sorted(set(runtime) | {"edgec_pool.h"})
        weights = []
        for ct in consts.values():
            if ct.ident in self._const_used:
                data = ct.value.data
                weights.append({
                    "ident": ct.ident, "ctype": ct.ctype, "count": max(data.size, 1),
                    "init": c_initializer(data), "comment": f"{ct.name} {ct.value.type}",
                    "bytes": data.nbytes, "data": data,
                })
        for ident, data, comment in extra_arrays:
            from edgec.ir import DType
            weights.append({
                "ident": ident, "ctype": DType.from_numpy(data.dtype).ctype,
                "count": max(data.size, 1), "init": c_initializer(data), "comment": comment,
                "bytes": data.nbytes, "data": data,
            })
        in_names = g.meta.get("input_names") or [v.name for v in g.inputs]
        out_names = g.meta.get("output_names") or [v.name for v in g.outputs]
        ctx = {
            "prefix": self.prefix,
            "PREFIX": self.prefix.upper(),
            "version": __version__,
            "model_comment": comment_text(model_name),
            "target": self.target,
            "layers": layers,
            "weights": weights,
            "weights_bytes": sum(w["bytes"] for w in weights),
            "runtime": runtime,
            "arena_bytes": plan.arena_bytes,
            "arena_align": plan.alignment,
            "inputs": self._io_table(g, g.inputs, in_names, plan),
            "outputs": self._io_table(g, g.outputs, out_names, plan),
            "int8_io": g.meta.get("int8_io") or {},  # --io int8 (passes/int8_io.py)
            "streaming": streaming_state(g, in_names, out_names),  # recurrent state I/O
            "meta": extra_meta or {},
            "threads": threads,
            "split_layers": sum(1 for L in layers if L.split is not None),
            "external": self.external,
            "partitions": self.partitions,
        }
        blob = None
        inner_enter: dict[int, list[tuple[int, int]]] = {}
        if self.external:  # --weights external: PREFIX.weights and a pointer table
            streams = {}  # constants a layer reads work item by work item (at their first use)
            for L in layers:
                for ident, item_bytes in (L.split.streams if L.split else []):
                    if first_use.get(ident) == L.index:
                        streams.setdefault(ident, item_bytes)
            ctx["weights"], blob, enter, inner_enter, digest = external_weights(
                weights, first_use, layers, self.partitions, streams)
            ctx["model_hash"] = list(digest)
            for pos, k in enter.items():
                layers[pos].enter = k
        for pos, L in enumerate(layers):
            if L.split is not None:
                self._finish_split(L, inner_enter.get(pos, []))
        files = {
            f"{self.prefix}.h": self.env.get_template("model.h.j2").render(ctx),
            f"{self.prefix}.c": self.env.get_template("model.c.j2").render(ctx),
            f"{self.prefix}_weights.h": self.env.get_template(
                "weights_external.h.j2" if self.external else "weights.h.j2").render(ctx),
            f"{self.prefix}_weights.c": self.env.get_template(
                "weights_external.c.j2" if self.external else "weights.c.j2").render(ctx),
            "CMakeLists.txt": self.env.get_template("CMakeLists.txt.j2").render(ctx),
            f"{self.prefix}.mk": self.env.get_template("model.mk.j2").render(ctx),
            "edgec_harness.c": self.env.get_template("harness.c.j2").render(ctx),
        }
        shipped = (list(THREAD_HEADERS + THREAD_SOURCES) if threads else []) + (
            list(WEIGHTS_RUNTIME) if self.external else [])
        for name in runtime + shipped:
            files[name] = (RUNTIME_DIR / name).read_text()
        if blob is not None:
            files[f"{self.prefix}.weights"] = blob
        self.split_layers = ctx["split_layers"]
        kernels = [k for L in layers  # a fused chain reports its layers' kernels (row_bands.py)
                   for k in L.kernel.params.get("stage_kernels", (L.kernel,))]
        sparse_rows = sparse_layer_rows(kernels)
        self.report_sections = {"sparse_weights": sparse_summary(sparse_rows)} if sparse_rows \
            else {}
        int4 = int4_summary(kernels)
        if int4 is not None:  # --weight-bits 4: the C's constant bytes by bit width
            self.report_sections["weight_bits"] = {
                **weights_bytes_by_bits(weights, int4["int4_bytes"]), **int4}
        self.weights_bytes = ctx["weights_bytes"]
        return files
