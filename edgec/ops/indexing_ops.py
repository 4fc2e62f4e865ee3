"""Data-movement ops driven by index tables: Pad, Gather, GatherElements.

Pad: the output is split into a contiguous tail of dimensions that are not padded (a "row",
copied with memcpy) and the dimensions in front of it, which are padded or cropped. For each
of those a compile-time table maps every output coordinate to its input coordinate (-1 for
the constant fill in mode "constant"), which handles constant, edge, reflect and wrap padding
and negative pads (cropping, applied before padding as onnxruntime does) uniformly. The
innermost padded dimension copies its interior with one memcpy and only walks the table at
the borders.

Gather / GatherElements: constant indices are normalised (negative -> from the end) into a
table at compile time; runtime indices are read, normalised and clamped into range in C (out
of range is an error in ONNX; the C clamps instead of reading outside the tensor).
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import Node, TensorType
from edgec.ops import prune_facet
from edgec.ops.base import Attr, OpDef, PruneRule, QuantRule, in_type, normalize_axis
from edgec.ops.int8_facet import PAD_INT8
from edgec.ops.registry import register_op
from edgec.ops.shape_ops import (
    DATA_DTYPES,
    INDEX_DTYPES,
    permute_per_axis,
    require_dtypes_unless_folded,
)

PAD_MODES = ("constant", "reflect", "edge", "wrap")


# ------------------------------------------------------------------------------ Pad
@register_op("Pad")
class Pad(OpDef):
    """ONNX Pad (constant, reflect, edge, wrap; negative pads crop). IR: `pads` for every
    axis ([begin..., end...]), the fill `value`, and `mode`."""

    attrs = {"pads": Attr("ints"), "mode": Attr("str", "constant", PAD_MODES),
             "value": Attr("float", 0.0)}
    quant = PAD_INT8
    prune = PruneRule.BLOCK
    dtypes = DATA_DTYPES

    def prune_flow(self, node: Node, in_axes):
        """Prune facet: padding only other axes keeps channels (MobileNet's spatial Pads)."""
        a = in_axes[0]
        rank = len(in_type(node).shape)
        pads = node.attrs["pads"]
        if a is None or pads[a] or pads[a + rank]:
            return None
        pf = prune_facet
        return pf.passthrough_flow(in_type(node).shape[a], a)

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes_unless_folded(node, self.dtypes, (0,))
        rank = in_type(node, 0).rank
        a = node.attrs
        mode = a.get("mode", "constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode not in PAD_MODES:
            raise UnsupportedError(f"Pad node '{node.name}': mode '{mode}' is not supported")
        axes = None
        if len(node.inputs) > 1:  # opset 11+: pads, constant_value, axes are inputs
            pads = self.const_input(node, 1, "pads")
            value = self.const_input(node, 2, "constant_value")
            axes = self.const_input(node, 3, "axes")
            node.inputs = node.inputs[:1]
            a["value"] = 0.0 if value is None or value.size == 0 else float(value.reshape(-1)[0])
        else:
            pads = a.get("pads")
        if pads is None:
            raise ShapeError(f"Pad node '{node.name}' has no pads")
        pads = [int(p) for p in np.asarray(pads).reshape(-1)]
        axes = list(range(rank)) if axes is None else [
            normalize_axis(int(ax), rank, node) for ax in np.asarray(axes).reshape(-1)]
        if len(pads) != 2 * len(axes) or len(set(axes)) != len(axes):
            raise ShapeError(f"Pad node '{node.name}': {len(pads)} pads do not fit axes {axes}")
        full = [0] * (2 * rank)
        for i, ax in enumerate(axes):
            full[ax], full[rank + ax] = pads[i], pads[len(axes) + i]
        a["pads"] = full

    def _widths(self, node: Node) -> list[tuple[int, int, int, int]]:
        """Per axis: (crop begin, crop end, pad begin, pad end), all non-negative."""
        shape = in_type(node, 0).shape
        pads = node.attrs["pads"]
        rank = len(shape)
        if len(pads) != 2 * rank:
            raise ShapeError(f"Pad node '{node.name}': {len(pads)} pads for rank {rank}")
        out = []
        for d, n in enumerate(shape):
            pb, pe = pads[d], pads[rank + d]
            cb, ce = max(-pb, 0), max(-pe, 0)
            if cb + ce > n:
                raise ShapeError(f"Pad node '{node.name}': pads {pb}, {pe} crop more than "
                                 f"dimension {d} ({n})")
            if node.attrs["mode"] != "constant" and n - cb - ce == 0 and (pb > 0 or pe > 0):
                raise ShapeError(f"Pad node '{node.name}': mode '{node.attrs['mode']}' cannot "
                                 f"pad the empty dimension {d}")
            out.append((cb, ce, max(pb, 0), max(pe, 0)))
        return out

    def infer(self, node: Node) -> list[TensorType]:
        x = in_type(node, 0)
        shape = tuple(n - cb - ce + pb + pe
                      for n, (cb, ce, pb, pe) in zip(x.shape, self._widths(node)))
        return [TensorType(shape, x.dtype)]

    def reference(self, node: Node, x, *rest):
        widths = self._widths(node)
        cropped = x[tuple(slice(cb, n - ce) for n, (cb, ce, _, _) in zip(x.shape, widths))]
        pad_width = [(pb, pe) for _, _, pb, pe in widths]
        mode = node.attrs["mode"]
        if mode == "constant":
            value = np.array(node.attrs["value"]).astype(x.dtype)
            return (np.pad(cropped, pad_width, mode="constant", constant_values=value),)
        return (np.pad(cropped, pad_width, mode=mode),)

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        rank = len(perm)
        pads = node.attrs["pads"]
        return {**node.attrs, "pads": permute_per_axis(pads[:rank], perm)
                + permute_per_axis(pads[rank:], perm)}

    def source_maps(self, node: Node) -> list[np.ndarray]:
        """Per axis, the input coordinate of every output coordinate (-1: constant fill)."""
        shape = in_type(node, 0).shape
        mode = node.attrs["mode"]
        maps = []
        for n, (cb, ce, pb, pe) in zip(shape, self._widths(node)):
            kept = np.arange(cb, n - ce, dtype=np.int64)
            if mode == "constant":
                maps.append(np.pad(kept, (pb, pe), constant_values=-1))
            else:
                maps.append(np.pad(kept, (pb, pe), mode=mode))
        return maps


# ------------------------------------------------------------------------------ Gather
class GatherBase(OpDef):
    """Common facets: data of any data type, int32/int64 indices (constant or runtime)."""

    attrs = {"axis": Attr("int", 0)}
    quant = QuantRule.SAME_AS_INPUT
    prune = PruneRule.BLOCK
    dtypes = DATA_DTYPES

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes_unless_folded(node, self.dtypes, (0,))
        require_dtypes_unless_folded(node, INDEX_DTYPES, (1,))
        x = in_type(node, 0)
        axis = normalize_axis(int(node.attrs.get("axis", 0)), x.rank, node)
        node.attrs["axis"] = axis
        idx = node.input(1)
        if idx is not None and idx.is_const and idx.data.size:
            dim = x.shape[axis]
            if idx.data.min() < -dim or idx.data.max() >= dim:
                raise ShapeError(f"{node.op} node '{node.name}': indices "
                                 f"[{idx.data.min()}, {idx.data.max()}] are out of range for "
                                 f"dimension {axis} of size {dim}")

    def normalized_indices(self, node: Node) -> np.ndarray | None:
        """Constant indices with negative values counted from the end (None at runtime)."""
        idx = node.input(1)
        if not idx.is_const:
            return None
        dim = in_type(node, 0).shape[node.attrs["axis"]]
        data = idx.data.astype(np.int64)
        return np.where(data < 0, data + dim, data)


@register_op("Gather")
class Gather(GatherBase):
    """ONNX Gather: slices of `data` along `axis` picked by `indices` (scalar indices drop
    the axis)."""


    def infer(self, node: Node) -> list[TensorType]:
        x, idx = in_type(node, 0), in_type(node, 1)
        axis = normalize_axis(node.attrs["axis"], x.rank, node)
        return [TensorType(x.shape[:axis] + idx.shape + x.shape[axis + 1:], x.dtype)]

    def reference(self, node: Node, x, indices):
        """Like the C: a negative index counts from the end, and an index still outside the
        axis is clamped into it (onnxruntime stops with an error there; C must not read
        outside the data)."""
        axis = node.attrs["axis"]
        idx = np.asarray(indices, dtype=np.int64)
        idx = np.where(idx < 0, idx + np.asarray(x).shape[axis], idx)
        return (np.take(x, idx, axis=axis, mode="clip"),)

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        if in_type(node, 1).rank != 1:
            return None
        return {"axis": perm[node.attrs["axis"]]}


@register_op("GatherElements")
class GatherElements(GatherBase):
    """ONNX GatherElements: y[i..., j, k...] = data[i..., indices[i..., j, k...], k...]."""


    def infer(self, node: Node) -> list[TensorType]:
        x, idx = in_type(node, 0), in_type(node, 1)
        axis = normalize_axis(node.attrs["axis"], x.rank, node)
        if idx.rank != x.rank or any(
                idx.shape[d] > x.shape[d] for d in range(x.rank) if d != axis):
            raise ShapeError(f"GatherElements node '{node.name}': indices {idx.shape} do not "
                             f"fit data {x.shape}")
        return [TensorType(idx.shape, x.dtype)]

    def reference(self, node: Node, x, indices):
        axis = node.attrs["axis"]
        idx = np.asarray(indices, dtype=np.int64)
        idx = np.where(idx < 0, idx + x.shape[axis], idx)
        if x.shape[axis]:  # like the C: an index still outside the axis is clamped into it
            idx = np.clip(idx, 0, x.shape[axis] - 1)
        return (np.take_along_axis(x, idx, axis=axis),)

