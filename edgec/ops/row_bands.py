"""RowBands: a chain of row-local layers computed band by band with line buffers (issue 20).

A chain of channels-last, batch-1 layers (Conv / QConv of any kernel, stride and group, then
the residual QAdd or Add of an inverted-residual block) is one node: its input `x` and every
operand from outside the chain are whole tensors, its output `y` is written band of rows by
band of rows, and each intermediate tensor T_s lives only as a *window*: the contiguous rows
[lo_s, hi_s) that the next layer still needs. Output 1+s of the node is that window (shape
[1, window_rows, W_s, C_s]), so the memory planner sees the windows and never the full
intermediates.

The schedule (`band_schedule`) walks the final output in bands of `band_rows` rows. For each
band, demand flows down the chain: a layer about to compute rows [a, b) asks the window
below to hold the input rows they read (their receptive field, clipped to the tensor); the
window drops the rows below that range (a memmove of the kept rows to its start) and
computes its missing rows the same way, `band_rows` at a time. So a window holds one band's
receptive field (a kernel height for one row at stride 1), however deep the chain is. Every
row of every intermediate is computed exactly once: no recompute, and the per-row arithmetic
is the unfused layer's (same kernel, same integer requantisation), so int8 is bit-exact. A layer computing rows [a, b) of its output is the
original layer on the input rows it reads, with the top and bottom pads it still needs
(`stage_call`).

Attributes: `stages`, one dict per layer {"op", "attrs", "inputs", "name"} where each input
is an index into the node's inputs, -1 for the previous layer's output (or `x` for the
first) or None, and "name" the layer's node name before fusion; `band_rows`, the output rows per band. Reference: the layers run one after another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from edgec.errors import ShapeError
from edgec.ir import Node, TensorType, Value
from edgec.ops.base import Attr, OpDef
from edgec.ops.registry import get_op, register_op

PREVIOUS = -1  # a stage input that is the previous stage's output (`x` for stage 0)
CONV_OPS = ("Conv", "QConv")


def _detached(op: str, name: str, attrs: dict, inputs: list[Value | None]) -> Node:
    """A node outside any graph whose inputs register no uses (the values' use lists stay
    those of the graph), with its outputs inferred."""
    node = Node(op, name, attrs)
    node._inputs = list(inputs)
    for i, t in enumerate(get_op(op).infer(node)):
        v = Value(f"{name}_out{i}", t)
        v.producer = node
        node.outputs.append(v)
    return node


def stage_nodes(node: Node) -> list[Node]:
    """The chain's layers as detached nodes on whole tensors (for shapes, MACs, reference)."""
    prev = node.input(0)
    out = []
    for s, st in enumerate(node.attrs["stages"]):
        ins = [None if k is None else prev if k == PREVIOUS else node.input(k)
               for k in st["inputs"]]
        stage = _detached(st["op"], st.get("name") or f"{node.name}_s{s}", st["attrs"], ins)
        out.append(stage)
        prev = stage.outputs[0]
    return out


@dataclass(frozen=True)
class RowGeometry:
    """How a stage's output rows map to its input rows (`rows_needed`)."""

    in_rows: int
    out_rows: int
    kernel: int = 1  # dilated kernel extent along H
    stride: int = 1
    pad_top: int = 0

    def rows_needed(self, a: int, b: int) -> tuple[int, int]:
        """Input rows [lo, hi) that output rows [a, b) read (clipped to the tensor)."""
        lo = a * self.stride - self.pad_top
        hi = (b - 1) * self.stride - self.pad_top + self.kernel
        return max(lo, 0), min(hi, self.in_rows)


def stage_geometry(stage: Node) -> RowGeometry:
    """The row geometry of one detached stage (a conv's kernel, stride and top pad)."""
    y = stage.outputs[0]
    if stage.op not in CONV_OPS:
        return RowGeometry(y.shape[1], y.shape[1])
    x = stage.input(0)
    a = stage.attrs
    k = int((a.get("kernel_shape") or stage.input(1).shape[2:])[0])
    d = int((a.get("dilations") or (1, 1))[0])
    s = int((a.get("strides") or (1, 1))[0])
    pads = list(a.get("pads") or [0, 0, 0, 0])
    return RowGeometry(x.shape[1], y.shape[1], (k - 1) * d + 1, s, pads[0])


@dataclass(frozen=True)
class Run:
    """Stage `stage` computes its output rows [a, b) from input rows [in_lo, in_hi), which
    start `in_offset` rows into its input window (absolute rows for `x`); it writes them
    `out_offset` rows into its output window (absolute rows for `y`)."""

    stage: int
    a: int
    b: int
    in_lo: int
    in_hi: int
    in_offset: int
    out_offset: int


@dataclass(frozen=True)
class Shift:
    """Window `window` drops its first `drop` rows and keeps the next `keep` (a memmove)."""

    window: int
    drop: int
    keep: int


def band_schedule(geoms: list[RowGeometry], band_rows: int) -> tuple[list, list[int]]:
    """(steps, rows of each window) of a chain with row geometries `geoms` (module doc)."""
    n = len(geoms)
    lo, hi, cap = [0] * (n - 1), [0] * (n - 1), [0] * (n - 1)
    steps: list = []

    def hold(s: int, a: int, b: int) -> None:
        """Make window s hold rows [a, b) of its tensor: drop the rows below a, then compute
        the missing ones band by band, each from the rows it reads in the window below."""
        if a >= hi[s]:
            lo[s] = hi[s] = a
        elif a > lo[s]:
            steps.append(Shift(s, a - lo[s], hi[s] - a))
            lo[s] = a
        while hi[s] < b:
            run(s, hi[s], min(b, hi[s] + band_rows), hi[s] - lo[s])
            hi[s] = min(b, hi[s] + band_rows)
            cap[s] = max(cap[s], hi[s] - lo[s])

    def run(s: int, a: int, b: int, out_offset: int) -> None:
        in_lo, in_hi = geoms[s].rows_needed(a, b)
        if s > 0:
            hold(s - 1, in_lo, in_hi)
        steps.append(Run(s, a, b, in_lo, in_hi, in_lo if s == 0 else in_lo - lo[s - 1],
                         out_offset))

    out_rows = geoms[-1].out_rows
    for o0 in range(0, out_rows, band_rows):
        o1 = min(out_rows, o0 + band_rows)
        run(n - 1, o0, o1, o0)
    return steps, cap


def schedule_of(node: Node) -> tuple[list[Node], list, list[int]]:
    """(whole-tensor stages, steps, window rows) of a RowBands node."""
    stages = stage_nodes(node)
    steps, cap = band_schedule([stage_geometry(st) for st in stages], node.attrs["band_rows"])
    return stages, steps, cap


def stage_call(node: Node, stages: list[Node], run: Run) -> Node:
    """The detached layer that computes `run`: the stage on band-shaped tensors (its input
    rows [in_lo, in_hi), its outside operands' rows [a, b)), with the pads it still needs."""
    s = run.stage
    st = node.attrs["stages"][s]
    whole = stages[s]
    attrs = dict(st["attrs"])
    rows = run.b - run.a
    if st["op"] in CONV_OPS:
        g = stage_geometry(whole)
        pads = list(attrs.get("pads") or [0, 0, 0, 0])
        first = run.a * g.stride - g.pad_top
        last = (run.b - 1) * g.stride - g.pad_top + g.kernel
        pads[0], pads[2] = run.in_lo - first, last - run.in_hi
        attrs["pads"] = pads
    ins = []
    for k, v in zip(st["inputs"], whole.inputs):
        if v is None or v.is_const:
            ins.append(v)
        elif k == PREVIOUS:
            ins.append(Value("band_in", TensorType((1, run.in_hi - run.in_lo) + v.shape[2:],
                                                   v.dtype)))
        else:
            ins.append(Value("band_operand", TensorType((1, rows) + v.shape[2:], v.dtype)))
    return _detached(st["op"], st.get("name") or f"{node.name}_s{s}", attrs, ins)


@register_op("RowBands")
class RowBands(OpDef):
    """A chain of conv layers run row band by row band with line buffers (--memory-budget)."""

    attrs: ClassVar[dict[str, Attr]] = {"stages": Attr("any"), "band_rows": Attr("int", 1)}

    def infer(self, node: Node) -> list[TensorType]:
        stages, _, cap = schedule_of(node)
        if node.attrs["band_rows"] < 1:
            raise ShapeError(f"RowBands node '{node.name}': band_rows must be >= 1")
        windows = [TensorType((1, rows) + st.outputs[0].shape[2:], st.outputs[0].dtype)
                   for st, rows in zip(stages, cap)]
        return [stages[-1].outputs[0].type] + windows

    def reference(self, node: Node, *args):
        env = {id(v): a for v, a in zip(node.inputs, args) if v is not None}
        y = args[0]
        for st in stage_nodes(node):
            y = get_op(st.op).reference(st, *[None if v is None else env[id(v)]
                                              for v in st.inputs])[0]
            env[id(st.outputs[0])] = y
        windows = [np.zeros(t.shape, t.dtype.np) for t in self.infer(node)[1:]]
        return (y, *windows)

    def macs(self, node: Node) -> int:
        return int(sum(get_op(st.op).macs(st) for st in stage_nodes(node)))

    @staticmethod
    def scratch_outputs(node: Node) -> range:
        """Outputs that are working memory (the line buffers), not results: per-layer
        debugging neither dumps nor compares them."""
        return range(1, len(node.outputs))
