"""C for a RowBands node (edgec/ops/row_bands.py): a fused chain run band by band.

Each step of the node's schedule that computes rows of a layer is a call to a *variant*: the
layer's own kernel (`select`, so every target's ISA kernels and the portable ones alike),
rendered for a band-shaped input (the rows it reads) and output, with the pads that band
still needs. Variants with the same geometry are one static function; their packed weights
are emitted once per layer (identical arrays are shared; the layer's first variant kernel
stands for it in report.json's per-kernel sections). The layer function is the list of
calls, each given pointers into the chain's input, its outside operands, the line-buffer
windows and the output, and the memmoves that slide a window forward. Windows and the
tensors the layer reads never overlap (they are distinct buffers of the plan), so every
pointer keeps `restrict`.
"""

from __future__ import annotations

import math
import re

from edgec.codegen.c.kernel import Kernel, register_composite
from edgec.codegen.c.naming import c_text, comment_text
from edgec.codegen.c.select import select
from edgec.codegen.c.threads import WorkSplit

from edgec.ir import Node, Value
from edgec.ops.row_bands import PREVIOUS, Run, schedule_of, stage_call

ROW_BANDS = "RowBands"
register_composite(ROW_BANDS)  # each stage runs its own layer's kernel


def _row_elems(v: Value) -> int:
    return math.prod(v.shape[2:])


def _offset(ptr: str, rows: int, v: Value) -> str:
    elems = rows * _row_elems(v)
    return f"{ptr} + {elems}u" if elems else ptr


class _Variants:
    """Renders each distinct (layer, geometry) once, sharing identical packed weights."""

    def __init__(self, backend, fn: str, node: Node, consts, extra_arrays, tensor_class):
        self.backend, self.fn, self.node = backend, fn, node
        self.tensor_class = tensor_class
        self.consts, self.extra = consts, extra_arrays
        self.by_key: dict = {}
        self.text: list[str] = []
        self.runtime: set[str] = set()
        self.arrays: dict[tuple, str] = {}  # (dtype, shape, bytes) -> emitted identifier
        self.stage_kernels: dict[int, Kernel] = {}  # each layer's first variant (its report)

    def function(self, clone: Node, stage: int) -> str:
        """The variant function computing `clone` (rendered on first use)."""
        key = (stage, tuple(v.type.shape if v is not None else None for v in clone.inputs),
               tuple(clone.attrs.get("pads") or ()))
        if key in self.by_key:
            return self.by_key[key]
        name = f"{self.fn}_s{stage}_v{sum(1 for k in self.by_key if k[0] == stage)}"
        self.by_key[key] = name
        b = self.backend
        kernel = select(clone, b.target, {"sparse_weights": b.sparse_weights})
        self.runtime |= set(kernel.runtime)
        self.stage_kernels.setdefault(stage, kernel)
        params, ins, all_ins, n_in = [], [], [], 0
        tensor = self.tensor_class  # the backend's CTensor
        for v in clone.inputs:
            if v is None:
                all_ins.append(None)
                continue
            if v.is_const:
                t = self.consts[id(v)]
            else:
                t = tensor(v, f"x{n_in}", v.dtype.ctype, v.shape, False)
                params.append(f"const {v.dtype.ctype} *restrict x{n_in}")
                n_in += 1
            ins.append(t)
            all_ins.append(t)
        y = clone.outputs[0]
        outs = [tensor(y, "y0", y.dtype.ctype, y.shape, False)]
        params.append(f"{y.dtype.ctype} *restrict y0")
        first_extra = len(self.extra)
        body = b._render_body(clone, kernel, name, ins, all_ins, outs, self.extra,
                              WorkSplit(False))
        kept = self.extra[:first_extra]
        for ident, data, comment in self.extra[first_extra:]:
            sig = (str(data.dtype), data.shape, data.tobytes())
            if sig in self.arrays:
                body = re.sub(rf"\b{re.escape(ident)}\b", self.arrays[sig], body)
            else:
                self.arrays[sig] = ident
                kept.append((ident, data, comment))
        self.extra[:] = kept
        indented = "\n".join(("    " + line) if line else line for line in body.splitlines())
        macro = f"{b.prefix.upper()}_LAYER"
        self.text.append(f"\n/* {comment_text(self.node.name)}, layer {stage} "
                         f"({c_text(clone.op)}) on a band: {y.type} <- {clone.input(0).type} */\n"
                         f"static {macro} void {name}({', '.join(params)})\n{{\n{indented}\n}}\n")
        return name


def render_row_bands(backend, fn: str, node: Node, act_ident: dict, consts, extra_arrays,
                     tensor_class) -> tuple[str, str, Kernel]:
    """(variant functions, the layer's body, a Kernel naming the runtime files) of `node`;
    `tensor_class` is the backend's CTensor (what the kernel templates read)."""
    stages, steps, cap = schedule_of(node)
    variants = _Variants(backend, fn, node, consts, extra_arrays, tensor_class)
    windows = node.outputs[1:]
    last = len(stages) - 1
    header = (f"/* {len(stages)} layers fused, {node.attrs['band_rows']} output row(s) per "
              f"band; line buffers of {', '.join(str(r) for r in cap)} rows */")
    lines = [header]
    for step in steps:
        if not isinstance(step, Run):
            w = windows[step.window]
            ident = act_ident[id(w)]
            lines.append(f"memmove({ident}, {_offset(ident, step.drop, w)}, "
                         f"{step.keep * _row_elems(w)}u * sizeof(*{ident}));")
            continue
        s = step.stage
        clone = stage_call(node, stages, step)
        args = []
        for k, v in zip(node.attrs["stages"][s]["inputs"], stages[s].inputs):
            if v is None or v.is_const:
                continue
            if k == PREVIOUS:
                src = node.input(0) if s == 0 else windows[s - 1]
                args.append(_offset(act_ident[id(src)], step.in_offset, src))
            else:
                ext = node.input(k)
                args.append(_offset(act_ident[id(ext)], step.a, ext))
        dst = node.outputs[0] if s == last else windows[s]
        args.append(_offset(act_ident[id(dst)], step.out_offset, dst))
        lines.append(f"{variants.function(clone, s)}({', '.join(args)}); "
                     f"/* layer {s}: rows {step.a}..{step.b - 1} */")
    stage_kernels = tuple(variants.stage_kernels[s] for s in sorted(variants.stage_kernels))
    kernel = Kernel(ROW_BANDS, {"stage_kernels": stage_kernels}, tuple(sorted(variants.runtime)))
    return "".join(variants.text), "\n".join(lines), kernel
