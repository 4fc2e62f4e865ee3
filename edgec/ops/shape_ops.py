"""Data-movement ops that are strided copies: Concat, Split, Slice, Expand, Tile,
DepthToSpace, SpaceToDepth; and Cast (an elementwise conversion).

Every one of the copy ops moves "boxes" of elements: nested loops with constant element
strides over an input (a stride of 0 repeats, a negative stride walks backwards) writing to
an output. `copy_box` (codegen/c/kernels/copy.py) turns (dims, source strides, destination
strides) into the smallest loop nest: size-1 dimensions are dropped, dimensions that stay
contiguous on both sides are merged, and an innermost run that is contiguous on both sides
becomes one memcpy. All of them render with the shared template ops/strided_copy.c.j2.
Constant shape-like inputs (split sizes, slice bounds, expand shape, tile repeats) become
attributes at import.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import DType, Node, TensorType
from edgec.ops import prune_facet
from edgec.ops.base import (
    Attr,
    OpDef,
    PruneRule,
    QuantRule,
    broadcast_shapes,
    in_type,
    normalize_axis,
)
from edgec.ops.common import require_dtypes
from edgec.ops.conv import LAYOUTS, from_nchw, to_nchw
from edgec.ops.elementwise import ElementwiseOp
from edgec.ops.int8_elementwise import CONCAT_INT8
from edgec.ops.intmath import cast_np
from edgec.ops.registry import register_op

# Element types the data-movement kernels handle (the C is generic over `ctype`).
DATA_DTYPES = {DType.FLOAT32, DType.INT8, DType.UINT8, DType.INT16, DType.INT32, DType.INT64,
               DType.BOOL}
INDEX_DTYPES = {DType.INT32, DType.INT64}


# ------------------------------------------------------------------------------ helpers
def require_dtypes_unless_folded(node: Node, allowed: set[DType], indices=(0,)) -> None:
    """Like `require_dtypes`, but accept anything when every input is constant (it folds)."""
    if all(v is None or v.is_const for v in node.inputs):
        return
    require_dtypes(node, allowed, indices)


def permute_per_axis(values, perm: list[int]) -> list:
    """Per-axis values of Transpose(x, perm) re-indexed for x: out[perm[i]] = values[i]."""
    out = list(values)
    for i, p in enumerate(perm):
        out[p] = values[i]
    return out


class CopyOp(OpDef):
    """Common facets of the strided-copy ops."""

    quant = QuantRule.SAME_AS_INPUT
    prune = PruneRule.BLOCK
    dtypes = DATA_DTYPES

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes_unless_folded(node, self.dtypes, (0,))


# ------------------------------------------------------------------------------ Concat
@register_op("Concat")
class Concat(CopyOp):
    """ONNX Concat along any axis; constant inputs are copied from their weight arrays."""

    attrs = {"axis": Attr("int")}
    quant = CONCAT_INT8
    prune = PruneRule.CONCAT

    def import_onnx(self, node: Node, opset: int) -> None:
        ins = [v for v in node.inputs if v is not None]
        if not ins:
            raise ShapeError(f"Concat node '{node.name}' has no inputs")
        require_dtypes_unless_folded(node, self.dtypes, range(len(node.inputs)))
        node.inputs = ins
        node.attrs["axis"] = normalize_axis(int(node.attrs.get("axis", 0)), ins[0].type.rank, node)

    def infer(self, node: Node) -> list[TensorType]:
        ins = [v.type for v in node.inputs if v is not None]
        rank = ins[0].rank
        axis = normalize_axis(node.attrs["axis"], rank, node)
        shape = list(ins[0].shape)
        for t in ins[1:]:
            if t.rank != rank or t.dtype != ins[0].dtype or any(
                    t.shape[d] != shape[d] for d in range(rank) if d != axis):
                raise ShapeError(f"Concat node '{node.name}': input {t} does not fit "
                                 f"{ins[0]} along axis {axis}")
            shape[axis] += t.shape[axis]
        return [TensorType(tuple(shape), ins[0].dtype)]

    def reference(self, node: Node, *xs):
        return (np.concatenate([x for x in xs if x is not None], axis=node.attrs["axis"]),)


# ------------------------------------------------------------------------------ Split
def split_sizes(node: Node, dim: int, n_outputs: int) -> list[int]:
    """Equal chunks of ceil(dim / n); the last one takes what is left (ONNX opset 18)."""
    if n_outputs <= 0:
        raise ShapeError(f"Split node '{node.name}': cannot split into {n_outputs} outputs")
    chunk = -(-dim // n_outputs)
    sizes = [chunk] * (n_outputs - 1) + [dim - chunk * (n_outputs - 1)]
    if sizes[-1] < 0:
        raise ShapeError(f"Split node '{node.name}': {dim} elements do not split into "
                         f"{n_outputs} chunks of {chunk}")
    return sizes


@register_op("Split")
class Split(CopyOp):
    """ONNX Split (split sizes resolved at import from the attribute, input or num_outputs)."""

    attrs = {"axis": Attr("int", 0), "split": Attr("ints")}

    def prune_flow(self, node: Node, in_axes):
        """Prune facet: split along the channel axis, output k's channel i is input channel
        offset_k + i and `split` follows the kept counts; along another axis channels pass."""
        a = in_axes[0]
        if a is None:
            return None
        pf = prune_facet
        flow = pf.PruneFlow(out_axes=[a] * len(node.outputs))
        offset = 0
        for k, v in enumerate(node.outputs):
            n = v.shape[a]
            base = offset if node.attrs["axis"] == a else 0
            flow.couplings.append((pf.IN0, pf.identity(n) + base, ("out", k), pf.identity(n)))
            offset += n
        if node.attrs["axis"] == a:
            outs = range(len(node.outputs))
            flow.updates.append(pf.AttrUpdate(
                "split", 1, lambda kept, old: [len(kept[("out", k)]) for k in outs]))
        return flow

    def import_onnx(self, node: Node, opset: int) -> None:
        super().import_onnx(node, opset)
        x = in_type(node, 0)
        if x.rank == 0:
            raise ShapeError(f"Split node '{node.name}': cannot split a scalar")
        axis = normalize_axis(int(node.attrs.get("axis", 0)), x.rank, node)
        node.attrs["axis"] = axis
        sizes = node.attrs.get("split")
        if sizes is None and node.input(1) is not None:
            sizes = self.const_input(node, 1, "split").reshape(-1).tolist()
        num_outputs = node.attrs.pop("num_outputs", None)
        n_out = node.meta.get("onnx_num_outputs") or num_outputs
        if sizes is None or len(sizes) == 0:
            if not n_out:
                raise UnsupportedError(f"Split node '{node.name}': the number of outputs is "
                                       "unknown")
            sizes = split_sizes(node, x.shape[axis], int(num_outputs or n_out))
        node.attrs["split"] = [int(s) for s in sizes]
        node.inputs = node.inputs[:1]

    def infer(self, node: Node) -> list[TensorType]:
        x = in_type(node, 0)
        axis = normalize_axis(node.attrs["axis"], x.rank, node)
        sizes = node.attrs["split"]
        if sum(sizes) != x.shape[axis] or any(s < 0 for s in sizes):
            raise ShapeError(f"Split node '{node.name}': sizes {sizes} do not add up to "
                             f"dimension {axis} of {x.shape}")
        out = []
        for s in sizes:
            shape = list(x.shape)
            shape[axis] = s
            out.append(TensorType(tuple(shape), x.dtype))
        return out

    def reference(self, node: Node, x, *rest):
        bounds = np.cumsum(node.attrs["split"])[:-1]
        return tuple(np.split(x, bounds, axis=node.attrs["axis"]))

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        return {"axis": perm[node.attrs["axis"]], "split": list(node.attrs["split"])}


# ------------------------------------------------------------------------------ Slice
@register_op("Slice")
class Slice(CopyOp):
    """ONNX Slice with constant starts/ends/axes/steps (attributes in the IR; axes explicit,
    non-negative and distinct). Bounds clamp like Python slices, which is the ONNX rule."""

    attrs = {"starts": Attr("ints"), "ends": Attr("ints"), "axes": Attr("ints"),
             "steps": Attr("ints")}

    def prune_flow(self, node: Node, in_axes):
        """Prune facet: a unit-step slice of the channel axis keeps input channels
        [start, stop) as output channels 0..; channels outside it are free; the bounds follow
        the kept channels. Other axes: channels pass through."""
        a = in_axes[0]
        if a is None:
            return None
        pf = prune_facet
        start, stop, step = self._bounds(node)[a]
        if step != 1:
            return None
        n = stop - start
        flow = pf.PruneFlow(out_axes=[a], free_inputs={0})
        flow.couplings.append((pf.IN0, pf.identity(n) + start, pf.OUT0, pf.identity(n)))
        if n == node.input(0).shape[a]:
            return flow
        attrs = node.attrs
        def bound(kept, key):
            kept_in = kept[pf.IN0]
            new_start = int(np.sum(kept_in < start))
            new = {"starts": new_start, "ends": new_start + len(kept[pf.OUT0])}[key]
            return [new if ax == a else v for v, ax in zip(attrs[key], attrs["axes"])]
        flow.updates += [
            pf.AttrUpdate("starts", 1, lambda kept, old: bound(kept, "starts")),
            pf.AttrUpdate("ends", 2, lambda kept, old: bound(kept, "ends")),
            pf.AttrUpdate("axes", 3, lambda kept, old: list(attrs["axes"])),
            pf.AttrUpdate("steps", 4, lambda kept, old: list(attrs["steps"]))]
        return flow

    def import_onnx(self, node: Node, opset: int) -> None:
        super().import_onnx(node, opset)
        rank = in_type(node, 0).rank
        a = node.attrs
        if len(node.inputs) > 1:  # opset 10+: everything is an input
            for index, key in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")):
                data = self.const_input(node, index, key)
                if data is not None:
                    a[key] = [int(v) for v in np.asarray(data).reshape(-1)]
            node.inputs = node.inputs[:1]
        starts, ends = list(a.get("starts", [])), list(a.get("ends", []))
        axes = list(a.get("axes") or range(len(starts)))
        steps = list(a.get("steps") or [1] * len(starts))
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise ShapeError(f"Slice node '{node.name}': starts, ends, axes and steps differ "
                             "in length")
        axes = [normalize_axis(ax, rank, node) for ax in axes]
        if len(set(axes)) != len(axes):
            raise ShapeError(f"Slice node '{node.name}': axes {axes} repeat an axis")
        if 0 in steps:
            raise ShapeError(f"Slice node '{node.name}': a step of 0 is not allowed")
        a.update(starts=starts, ends=ends, axes=axes, steps=steps)

    def _bounds(self, node: Node) -> list[tuple[int, int, int]]:
        """(start, stop, step) per axis of the input, clamped into range."""
        shape = in_type(node, 0).shape
        bounds = [(0, n, 1) for n in shape]
        a = node.attrs
        for s, e, ax, st in zip(a["starts"], a["ends"], a["axes"], a["steps"]):
            bounds[ax] = slice(s, e, st).indices(shape[ax])
        return bounds

    def infer(self, node: Node) -> list[TensorType]:
        x = in_type(node, 0)
        if any(not 0 <= ax < x.rank for ax in node.attrs["axes"]):
            raise ShapeError(f"Slice node '{node.name}': axes {node.attrs['axes']} do not fit "
                             f"rank {x.rank}")
        shape = tuple(len(range(*b)) for b in self._bounds(node))
        return [TensorType(shape, x.dtype)]

    def reference(self, node: Node, x, *rest):
        return (x[tuple(slice(*b) for b in self._bounds(node))],)

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        return {**node.attrs, "axes": [perm[ax] for ax in node.attrs["axes"]]}


# ------------------------------------------------------------------------------ Expand, Tile
@register_op("Expand")
class Expand(CopyOp):
    """ONNX Expand to a constant shape (bidirectional broadcasting)."""

    attrs = {"shape": Attr("ints")}

    def import_onnx(self, node: Node, opset: int) -> None:
        super().import_onnx(node, opset)
        self.take_const_input(node, 1, "shape")

    def infer(self, node: Node) -> list[TensorType]:
        x = in_type(node, 0)
        return [TensorType(broadcast_shapes(x.shape, tuple(node.attrs["shape"])), x.dtype)]

    def reference(self, node: Node, x, *rest):
        shape = broadcast_shapes(x.shape, tuple(node.attrs["shape"]))
        return (np.ascontiguousarray(np.broadcast_to(x, shape)),)

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        if len(node.attrs["shape"]) != len(perm):
            return None
        return {"shape": permute_per_axis(node.attrs["shape"], perm)}


@register_op("Tile")
class Tile(CopyOp):
    """ONNX Tile with constant repeats."""

    attrs = {"repeats": Attr("ints")}

    def import_onnx(self, node: Node, opset: int) -> None:
        super().import_onnx(node, opset)
        self.take_const_input(node, 1, "repeats")

    def infer(self, node: Node) -> list[TensorType]:
        x = in_type(node, 0)
        reps = node.attrs["repeats"]
        if len(reps) != x.rank or any(r < 0 for r in reps):
            raise ShapeError(f"Tile node '{node.name}': repeats {reps} do not fit rank {x.rank}")
        return [TensorType(tuple(n * r for n, r in zip(x.shape, reps)), x.dtype)]

    def reference(self, node: Node, x, *rest):
        return (np.tile(x, node.attrs["repeats"]),)

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        return {"repeats": permute_per_axis(node.attrs["repeats"], perm)}


# ------------------------------------------------------------------------------ DepthToSpace
class BlockRearrange(CopyOp):
    """Common facets of DepthToSpace and SpaceToDepth (rank-4, spatial, NHWC kernels)."""

    spatial = True

    def import_onnx(self, node: Node, opset: int) -> None:
        super().import_onnx(node, opset)
        if in_type(node, 0).rank != 4:
            raise UnsupportedError(f"{node.op} node '{node.name}': only 4-D input is supported")
        if int(node.attrs.get("blocksize", 0)) < 1:
            raise ShapeError(f"{node.op} node '{node.name}': blocksize must be positive")

    @staticmethod
    def nhwc_dims(node: Node) -> tuple[int, int, int, int]:
        """N, H, W, C of the input in channels-last order."""
        shape = in_type(node, 0).shape
        if node.attrs["layout"] == "NCHW":
            n, c, h, w = shape
        else:
            n, h, w, c = shape
        return n, h, w, c

    @staticmethod
    def in_layout(shape_nchw, layout: str) -> tuple[int, ...]:
        """An NCHW shape in `layout`."""
        n, c, h, w = shape_nchw
        return (n, c, h, w) if layout == "NCHW" else (n, h, w, c)


@register_op("DepthToSpace")
class DepthToSpace(BlockRearrange):
    """ONNX DepthToSpace (DCR and CRD modes): channel blocks become spatial blocks."""

    attrs = {"blocksize": Attr("int"), "mode": Attr("str", "DCR", ("DCR", "CRD")),
             "layout": Attr("str", "NCHW", LAYOUTS)}

    def infer(self, node: Node) -> list[TensorType]:
        n, h, w, c = self.nhwc_dims(node)
        b = node.attrs["blocksize"]
        if c % (b * b):
            raise ShapeError(f"DepthToSpace node '{node.name}': {c} channels are not a "
                             f"multiple of blocksize^2 = {b * b}")
        shape = self.in_layout((n, c // (b * b), h * b, w * b), node.attrs["layout"])
        return [TensorType(shape, in_type(node, 0).dtype)]

    def reference(self, node: Node, x):
        layout, b = node.attrs["layout"], node.attrs["blocksize"]
        x = to_nchw(x, layout)
        n, c, h, w = x.shape
        if node.attrs["mode"] == "DCR":
            y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
        else:
            y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
        return (from_nchw(np.ascontiguousarray(y.reshape(n, c // (b * b), h * b, w * b)),
                          layout),)


@register_op("SpaceToDepth")
class SpaceToDepth(BlockRearrange):
    """ONNX SpaceToDepth: b x b spatial blocks become channels, block-major (DCR, the
    default) or channel-major (CRD, opset 25)."""

    attrs = {"blocksize": Attr("int"), "mode": Attr("str", "DCR", ("DCR", "CRD")),
             "layout": Attr("str", "NCHW", LAYOUTS)}

    def infer(self, node: Node) -> list[TensorType]:
        n, h, w, c = self.nhwc_dims(node)
        b = node.attrs["blocksize"]
        if h % b or w % b:
            raise ShapeError(f"SpaceToDepth node '{node.name}': spatial size {h}x{w} is not a "
                             f"multiple of blocksize {b}")
        shape = self.in_layout((n, c * b * b, h // b, w // b), node.attrs["layout"])
        return [TensorType(shape, in_type(node, 0).dtype)]

    def reference(self, node: Node, x):
        layout, b = node.attrs["layout"], node.attrs["blocksize"]
        x = to_nchw(x, layout)
        n, c, h, w = x.shape
        order = (0, 3, 5, 1, 2, 4) if node.attrs["mode"] == "DCR" else (0, 1, 3, 5, 2, 4)
        y = x.reshape(n, c, h // b, b, w // b, b).transpose(order)
        return (from_nchw(np.ascontiguousarray(y.reshape(n, c * b * b, h // b, w // b)),
                          layout),)


# ------------------------------------------------------------------------------ Cast
# ONNX TensorProto element type codes edgec can name (others are reported by number).
ONNX_DTYPE_CODES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32",
                    7: "int64", 8: "string", 9: "bool", 10: "float16", 11: "float64",
                    12: "uint32", 13: "uint64", 16: "bfloat16"}
CAST_DTYPES = DATA_DTYPES
@register_op("Cast")
class Cast(ElementwiseOp):
    """ONNX Cast between float32, int8/16/32/64, uint8 and bool (`to` is a dtype name in the
    IR). Float->int truncates toward zero (NaN -> 0; beyond int64 saturates; narrower types
    wrap like numpy); anything->bool is "nonzero"."""

    attrs = {"to": Attr("str", choices=tuple(d.value for d in DType)),
             "saturate": Attr("int", 1)}
    quant = QuantRule.FLOAT_ONLY
    dtypes = CAST_DTYPES

    def import_onnx(self, node: Node, opset: int) -> None:
        to = node.attrs.get("to")
        if isinstance(to, (int, np.integer)):
            name = ONNX_DTYPE_CODES.get(int(to), f"code {int(to)}")
            if name not in {d.value for d in DType}:
                raise UnsupportedError(f"Cast node '{node.name}': cast to {name} is not "
                                       "supported")
            node.attrs["to"] = name
        x = node.input(0)
        if x is not None and not x.is_const:
            require_dtypes(node, self.dtypes, (0,))
            if DType(node.attrs["to"]) not in self.dtypes:
                raise UnsupportedError(f"Cast node '{node.name}': cast to {node.attrs['to']} "
                                       "is not supported")

    def out_dtype(self, node: Node) -> DType:
        return DType(node.attrs["to"])

    def infer(self, node: Node) -> list[TensorType]:
        return [TensorType(in_type(node, 0).shape, self.out_dtype(node))]

    def reference(self, node: Node, x):
        return (cast_np(np.asarray(x), self.out_dtype(node).np),)

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        return dict(node.attrs)
