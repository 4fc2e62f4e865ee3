"""Resize (opsets 11-19) and Upsample (opsets 7-9).

IR canonical form: constant roi/scales/sizes inputs become attributes, given for every axis in
the model's own (channels-first) axis order: `scales` (the factor the coordinate transform
divides by), `sizes` (output lengths) and `roi` ([starts..., ends...], empty unless
tf_crop_and_resize). `axes` and `keep_aspect_ratio_policy` (opset 18) are resolved at import.
Resize is spatial: `layout` says how the actual tensor's axes map to those attributes.

Algorithm. Resizing is separable: along each resized axis, output coordinate o reads K input
positions idx[o][k] with weights w[o][k] (nearest K=1, linear K=2, cubic K=4, antialiased
filters wider), plus a validity flag when tf_crop_and_resize extrapolates. `axis_tables`
computes these tables at compile time, evaluating the coordinate transform in float32 as
onnxruntime does (nearest rounding at exact halves depends on it). An output element is the
sum over the taps of every resized axis of (product of weights) * x[gathered index]. The C
kernel precomputes per-axis element offsets (idx * stride) and weights as const arrays and
loops over output positions with the non-resized innermost block (the channels, after the
layout pass) as a contiguous row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import Node, TensorType
from edgec.ops.base import Attr, OpDef, PruneRule, in_type
from edgec.ops.common import FLOATS, NUMERIC, require_dtypes
from edgec.ops.conv import LAYOUTS
from edgec.ops.int8_elementwise import RESIZE_INT8
from edgec.ops.reduce import canonical_axes
from edgec.ops.registry import register_op

COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
               "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
F32 = np.float32


@dataclass
class AxisTable:
    """How one resized axis reads its input: `index[o, k]` with `weight[o, k]` (None for
    nearest: one tap of weight 1); `valid[o]` is False where tf_crop_and_resize extrapolates
    (None when every coordinate is inside)."""

    index: np.ndarray
    weight: np.ndarray | None
    valid: np.ndarray | None

    @property
    def taps(self) -> int:
        """Input positions read per output coordinate."""
        return self.index.shape[1]


# ------------------------------------------------------------------------------ coordinates
def source_coordinate(mode: str, o: int, scale: float, len_in: int, len_out: int,
                      roi: tuple[float, float]) -> float:
    """x_original of output coordinate `o` (ONNX coordinate_transformation_mode), in float32."""
    x, s = F32(o), F32(scale)
    half = F32(0.5)
    if mode == "half_pixel":
        return float((x + half) / s - half)
    if mode == "half_pixel_symmetric":  # the last sum in double, then float (onnxruntime)
        adjustment = F32(len_out) / (s * F32(len_in))
        offset = F32(len_in) / F32(2) * (F32(1) - adjustment)
        return float(F32(float(offset) + (float(x) + 0.5) / float(s) - 0.5))
    if mode == "pytorch_half_pixel":
        return float((x + half) / s - half) if len_out > 1 else 0.0
    if mode == "align_corners":
        return float(x * F32(len_in - 1) / F32(len_out - 1)) if len_out > 1 else 0.0
    if mode == "asymmetric":
        return float(x / s)
    if mode == "tf_half_pixel_for_nn":
        return float((x + half) / s)
    start, end = F32(roi[0]), F32(roi[1])
    if len_out > 1:
        return float(start * F32(len_in - 1) + x * (end - start) * F32(len_in - 1)
                     / F32(len_out - 1))
    return float(F32(0.5 * (float(start) + float(end)) * (len_in - 1)))


def fractional_length_conflict(attrs: dict, axis: int, len_in: int, len_out: int
                               ) -> float | None:
    """The fractional output length scale * len_in of logical axis `axis` when it moves a
    source coordinate, else None.

    ONNX's align_corners and tf_crop_and_resize divide by `length_resized - 1` (and
    pytorch_half_pixel tests `length_resized > 1`). onnxruntime, and so edgec, take the
    integer output length; onnx.reference and the backend node tests take scale * len_in,
    which differs from it when `scales` (not `sizes`) give a non-integer length. The two
    then read different input positions, and neither is the spec's answer alone."""
    mode = attrs["coordinate_transformation_mode"]
    if mode not in ("align_corners", "tf_crop_and_resize", "pytorch_half_pixel"):
        return None
    scale = float(F32(attrs["scales"][axis]))
    width = scale * len_in
    if abs(width - len_out) <= 1e-5 * len_out:  # float32 scales from `sizes`
        return None
    rank = len(attrs["sizes"])
    roi = (attrs["roi"][axis], attrs["roi"][axis + rank]) if attrs["roi"] else (0.0, 1.0)
    tolerance = 1e-5 * max(1, len_in)
    for o in range(len_out):
        ours = source_coordinate(mode, o, scale, len_in, len_out, roi)
        theirs = source_coordinate(mode, o, scale, len_in, width, roi)  # type: ignore[arg-type]
        if abs(ours - theirs) > tolerance:
            return width
    return None


def nearest_index(x: float, nearest_mode: str) -> int:
    """Round a source coordinate to an input index (before clamping)."""
    if nearest_mode == "floor":
        return math.floor(x)
    if nearest_mode == "ceil":
        return math.ceil(x)
    if x - math.floor(x) == 0.5:
        return math.floor(x) if nearest_mode == "round_prefer_floor" else math.ceil(x)
    return math.floor(x + 0.5)


def keys_kernel(t: float, a: float) -> float:
    """Keys' cubic convolution kernel with coefficient a (cubic_coeff_a)."""
    t = abs(t)
    if t <= 1:
        return ((a + 2) * t - (a + 3)) * t * t + 1
    if t < 2:
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return 0.0


def filter_taps(x: float, scale: float, attrs: dict) -> tuple[list[int], list[float]]:
    """Linear or cubic taps around source coordinate x: (unclamped indices, weights)."""
    cubic = attrs["mode"] == "cubic"
    a = attrs["cubic_coeff_a"]
    base = math.floor(x)
    ratio = x - base
    if not attrs["antialias"] or scale >= 1:
        if cubic:
            return ([base - 1, base, base + 1, base + 2],
                    [keys_kernel(ratio + 1, a), keys_kernel(ratio, a),
                     keys_kernel(1 - ratio, a), keys_kernel(2 - ratio, a)])
        return [base, base + 1], [1 - ratio, ratio]
    # Antialiasing: the filter is stretched by 1 / scale and renormalised to sum 1.
    if ratio == 0:  # integer coordinates take the left neighbourhood, like onnx.reference
        base, ratio = base - 1, 1.0
    support = 2 if cubic else 1
    first = math.floor(-support / scale) + 1
    offsets = range(first, 2 - first)
    if cubic:
        raw = [keys_kernel(scale * (i - ratio), a) for i in offsets]
    else:
        raw = [max(0.0, 1 - abs(scale * (i - ratio))) for i in offsets]
    total = sum(raw)
    return [base + i for i in offsets], [w / total for w in raw]


def axis_table(attrs: dict, axis: int, len_in: int, len_out: int) -> AxisTable | None:
    """The read table of logical axis `axis`, or None when the axis is left as it is."""
    scale = float(F32(attrs["scales"][axis]))
    rank = len(attrs["sizes"])
    mode = attrs["coordinate_transformation_mode"]
    crop = mode == "tf_crop_and_resize"
    roi = (attrs["roi"][axis], attrs["roi"][axis + rank]) if attrs["roi"] else (0.0, 1.0)
    if len_out == len_in and scale == 1.0 and (not crop or roi == (0.0, 1.0)):
        return None
    rows, weights, valid = [], [], []
    for o in range(len_out):
        x = source_coordinate(mode, o, scale, len_in, len_out, roi)
        valid.append(not crop or 0.0 <= x <= len_in - 1)
        if attrs["mode"] == "nearest":
            taps, w = [nearest_index(x, attrs["nearest_mode"])], [1.0]
        else:
            taps, w = filter_taps(x, scale, attrs)
            if attrs["exclude_outside"]:
                w = [wi if 0 <= t < len_in else 0.0 for t, wi in zip(taps, w)]
                total = sum(w)
                w = [wi / total for wi in w] if total else w
        rows.append([min(max(t, 0), len_in - 1) for t in taps])
        weights.append(w)
    index = np.asarray(rows, dtype=np.int64).reshape(len_out, -1)
    weight = None if attrs["mode"] == "nearest" else np.asarray(weights, np.float64)
    return AxisTable(index, weight, None if all(valid) else np.asarray(valid, bool))


def resolve_output(node: Node, shape: tuple[int, ...], scales, sizes, axes, policy: str
                   ) -> tuple[list[float], list[int]]:
    """Per-axis (scales, output sizes) from the ONNX inputs; ShapeError naming the node."""
    where = f"{node.op} node '{node.name}'"
    rank = len(shape)
    out, scale_full = list(shape), [1.0] * rank
    if sizes is not None and sizes.size:
        if scales is not None and scales.size:
            raise ShapeError(f"{where}: give either scales or sizes, not both")
        if sizes.size != len(axes):
            raise ShapeError(f"{where}: {sizes.size} sizes for {len(axes)} axes")
        ratios = [F32(int(n)) / F32(shape[d]) for n, d in zip(sizes.reshape(-1), axes)]
        if policy == "stretch":
            for n, r, d in zip(sizes.reshape(-1), ratios, axes):
                out[d], scale_full[d] = int(n), float(r)
        else:
            common = min(ratios) if policy == "not_larger" else max(ratios)
            for d in axes:
                scale_full[d] = float(common)
                out[d] = math.floor(float(common * F32(shape[d])) + 0.5)  # round half up
    elif scales is not None and scales.size:
        if scales.size != len(axes):
            raise ShapeError(f"{where}: {scales.size} scales for {len(axes)} axes")
        for s, d in zip(scales.reshape(-1).astype(np.float32), axes):
            if not s > 0:
                raise ShapeError(f"{where}: scale {float(s)} is not positive")
            scale_full[d] = float(s)
            out[d] = int(s * F32(shape[d]))  # float32 product, truncated (as onnxruntime)
    else:
        raise ShapeError(f"{where}: needs constant 'scales' or 'sizes'")
    if any(n <= 0 for n in out):
        raise ShapeError(f"{where}: output shape {out} has an empty dimension")
    return scale_full, out


@register_op("Resize")
class Resize(OpDef):
    """ONNX Resize: nearest / linear / cubic, every coordinate transform, crop-and-resize,
    antialias, axes and keep_aspect_ratio_policy (resolved to per-axis attributes)."""

    attrs = {
        "mode": Attr("str", "nearest", ("nearest", "linear", "cubic")),
        "coordinate_transformation_mode": Attr("str", "half_pixel", COORD_MODES),
        "nearest_mode": Attr("str", "round_prefer_floor", NEAREST_MODES),
        "cubic_coeff_a": Attr("float", -0.75),
        "exclude_outside": Attr("int", 0, (0, 1)),
        "extrapolation_value": Attr("float", 0.0),
        "antialias": Attr("int", 0, (0, 1)),
        "scales": Attr("floats"),
        "sizes": Attr("ints"),
        "roi": Attr("floats", ()),
        "layout": Attr("str", "NCHW", LAYOUTS),
    }
    dtypes = NUMERIC
    quant = RESIZE_INT8
    prune = PruneRule.PASSTHROUGH
    spatial = True

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes)
        x = in_type(node, 0)
        a = node.attrs
        roi = self.const_input(node, 1, "roi")
        scales = self.const_input(node, 2, "scales")
        sizes = self.const_input(node, 3, "sizes")
        node.inputs = node.inputs[:1]
        axes = a.pop("axes", None)
        policy = a.pop("keep_aspect_ratio_policy", "stretch")
        axes = list(range(x.rank)) if axes is None else [
            canonical_axes(node, [d], x.rank)[0] for d in axes]
        if len(set(axes)) != len(axes):
            raise ShapeError(f"Resize node '{node.name}': axes {axes} repeat an axis")
        self._finish_import(node, x, roi, scales, sizes, axes, policy)

    def _finish_import(self, node: Node, x: TensorType, roi, scales, sizes, axes, policy) -> None:
        """Shared tail of Resize and Upsample import: check, then fill the canonical attrs."""
        a = node.attrs
        mode = a.get("mode", "nearest")
        if mode != "nearest" and x.dtype not in FLOATS:
            raise UnsupportedError(f"{node.op} node '{node.name}': mode '{mode}' needs float32 "
                                   f"data (got {x.dtype.value})")
        if mode == "nearest":
            a["antialias"] = 0
        a["scales"], a["sizes"] = resolve_output(node, x.shape, scales, sizes, axes, policy)
        a["roi"] = []
        if a.get("coordinate_transformation_mode") == "tf_crop_and_resize":
            if roi is None or roi.size != 2 * len(axes):
                raise ShapeError(f"{node.op} node '{node.name}': tf_crop_and_resize needs a "
                                 f"constant roi of {2 * len(axes)} values")
            rank, n = x.rank, len(axes)
            full = [0.0] * rank + [1.0] * rank
            for i, d in enumerate(axes):
                full[d], full[rank + d] = float(roi[i]), float(roi[n + i])
            a["roi"] = full

    # --------------------------------------------------------------- layout helpers
    @staticmethod
    def logical_axes(node: Node) -> list[int]:
        """For each axis of the actual tensor, the axis of the attributes it stands for."""
        rank = len(node.attrs["sizes"])
        if node.attrs["layout"] == "NHWC":
            return [0, *range(2, rank), 1]
        return list(range(rank))

    def tables(self, node: Node) -> list[AxisTable | None]:
        """Read tables of the actual tensor's axes (None for axes left as they are)."""
        x = in_type(node, 0)
        logical = self.logical_axes(node)
        out_shape = self.infer(node)[0].shape
        return [axis_table(node.attrs, logical[j], x.shape[j], out_shape[j])
                for j in range(x.rank)]

    def infer(self, node: Node) -> list[TensorType]:
        x = in_type(node, 0)
        sizes = node.attrs["sizes"]
        if len(sizes) != x.rank or len(node.attrs["scales"]) != x.rank:
            raise ShapeError(f"{node.op} node '{node.name}': sizes/scales do not match rank "
                             f"{x.rank}")
        return [TensorType(tuple(sizes[d] for d in self.logical_axes(node)), x.dtype)]

    def reference(self, node: Node, x, *rest):
        y = x if node.attrs["mode"] == "nearest" else x.astype(np.float64)
        for axis, t in enumerate(self.tables(node)):
            if t is None:
                continue
            if t.weight is None:
                y = np.take(y, t.index[:, 0], axis=axis)
            else:
                gathered = np.take(y, t.index, axis=axis)  # [..., out, taps, ...]
                w = t.weight.reshape(t.weight.shape + (1,) * (y.ndim - axis - 1))
                y = np.sum(gathered * w, axis=axis + 1)
            if t.valid is not None:
                mask = t.valid.reshape((-1,) + (1,) * (y.ndim - axis - 1))
                y = np.where(mask, y, node.attrs["extrapolation_value"])
        return (np.ascontiguousarray(y).astype(x.dtype),)

    def macs(self, node: Node) -> int:
        if node.attrs["mode"] == "nearest":
            return 0
        taps = int(np.prod([t.taps for t in self.tables(node) if t is not None]))
        return node.output.type.numel * taps


@register_op("Upsample")
class Upsample(Resize):
    """ONNX Upsample (deprecated since opset 10): nearest or (bi)linear with per-axis scales
    (attribute in opset 7, constant input from opset 9), asymmetric coordinates, nearest
    rounding down. Imported into Resize's canonical attributes."""

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes)
        x = in_type(node, 0)
        a = node.attrs
        scales = a.pop("scales", None)
        if len(node.inputs) > 1:
            scales = self.const_input(node, 1, "scales")
        node.inputs = node.inputs[:1]
        if scales is None:
            raise ShapeError(f"Upsample node '{node.name}': needs constant 'scales'")
        mode = a.get("mode", "nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        a["mode"] = "linear" if mode in ("linear", "bilinear") else mode
        a["coordinate_transformation_mode"] = "asymmetric"
        a["nearest_mode"] = "floor"
        self._finish_import(node, x, None, np.asarray(scales, np.float32), None,
                            list(range(x.rank)), "stretch")
