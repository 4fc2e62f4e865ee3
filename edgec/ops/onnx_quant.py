"""ONNX's quantisation operators, with exact ONNX semantics (onnx.reference is the oracle).

- QuantizeLinear: y = saturate(round_half_even(x / scale) + zero_point), float32 division.
- DequantizeLinear: y = (x - zero_point) * scale in float32 (in float64 for int32 x, then
  rounded to float32, as numpy promotes in onnx.reference).
- QLinearConv / QLinearMatMul: exact int32 accumulation of (x - x_zp)(w - w_zp) (+ bias),
  then y = round_half_even(clip(acc * M + y_zp)) where M = x_scale * w_scale / y_scale is
  computed in the scales' own float type (float32, or float16 for QLinearMatMul) and the
  product and the zero-point addition are float64 (numpy's promotion of int32 * float).
- ConvInteger / MatMulInteger: the int32 accumulator itself.
- DynamicQuantizeLinear: uint8 with a scale and zero point computed at run time from the
  tensor's range (float32 arithmetic).

Scales and zero points must be compile-time constants (per tensor, per axis, or blocked for
Quantize/DequantizeLinear; per output channel for weights). Integer element types int8,
uint8 and int16 (DequantizeLinear also int32). Not supported: float8/float4/int4/uint16
types, QuantizeLinear's `precision` other than float32, per-row scales of QLinearMatMul's a.

Bit-exactness of the float epilogues in C: the generated code performs the same IEEE
operations (float32 division, float64 product, float64 addition) in separate statements, so
no compiler may contract them into a fused multiply-add (ISO C modes: gcc never contracts
under -std=c99; clang contracts only within one expression); nearbyint under the default
rounding mode rounds half to even like numpy's rint.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import DType, Node, TensorType
from edgec.ops.base import Attr, OpDef, QuantRule, in_type, normalize_axis
from edgec.ops.common import require_dtypes
from edgec.ops.conv import CONV_ATTRS, from_nchw, resolve_auto_pad, to_nchw
from edgec.ops.quant_common import (
    conv_acc_nchw,
    conv_geometry,
    conv_infer,
    int_range,
    requantize_onnx_float,
)
from edgec.ops.registry import register_op

ONNX_TYPES = {1: DType.FLOAT32, 2: DType.UINT8, 3: DType.INT8, 5: DType.INT16, 6: DType.INT32,
              10: DType.FLOAT16}
ONNX_CODES = {v: k for k, v in ONNX_TYPES.items()}
Q_TYPES = {DType.INT8, DType.UINT8, DType.INT16}
U8_S8 = {DType.INT8, DType.UINT8}


def expand_param(value: np.ndarray, x_shape: tuple[int, ...], axis: int, block_size: int,
                 node: Node, what: str) -> np.ndarray:
    """A scale or zero point reshaped (per axis) or replicated (blocked) to broadcast to x."""
    value = np.asarray(value)
    if value.size == 1:
        return value.reshape(())
    rank = len(x_shape)
    axis = normalize_axis(axis, rank, node)
    if not block_size:
        if value.ndim != 1 or value.size != x_shape[axis]:
            raise ShapeError(f"{node.op} node '{node.name}': {what} of shape {value.shape} does "
                             f"not fit axis {axis} of {x_shape}")
        shape = [1] * rank
        shape[axis] = value.size
        return value.reshape(shape)
    want = list(x_shape)
    want[axis] = -(-x_shape[axis] // block_size)
    if list(value.shape) != want:
        raise ShapeError(f"{node.op} node '{node.name}': blocked {what} must have shape "
                         f"{tuple(want)}, not {value.shape}")
    return np.take(np.repeat(value, block_size, axis=axis), np.arange(x_shape[axis]), axis=axis)


def _out_type_code(node: Node, zp_index: int) -> DType:
    zp = node.input(zp_index)
    if zp is not None:
        return zp.dtype
    code = node.attrs.get("output_dtype") or 2
    if code not in ONNX_TYPES:
        raise UnsupportedError(f"{node.op} node '{node.name}': output type {code} is not "
                               "supported")
    return ONNX_TYPES[code]


def _axis_sink(node: Node, perm: list[int]) -> dict | None:
    """sink_transpose of Quantize/DequantizeLinear: the axis follows the permutation."""
    scale = node.input(1)
    if node.attrs["block_size"]:
        return None
    attrs = dict(node.attrs)
    if scale.type.numel > 1:
        attrs["axis"] = perm[normalize_axis(node.attrs["axis"], len(perm), node)]
    return attrs


class QuantLinearBase(OpDef):
    """Common facets of QuantizeLinear and DequantizeLinear."""

    attrs = {"axis": Attr("int", 1), "block_size": Attr("int", 0),
             "output_dtype": Attr("int", 0), "saturate": Attr("int", 1),
             "precision": Attr("int", 0)}
    quant = QuantRule.FLOAT_ONLY

    def params(self, node: Node, scale=None, zp=None) -> tuple[np.ndarray, np.ndarray | None]:
        """Scale and zero point expanded to broadcast against x."""
        scale = self.const_input(node, 1, "scale") if scale is None else scale
        if zp is None and node.input(2) is not None:
            zp = self.const_input(node, 2, "zero_point")
        x_shape = in_type(node, 0).shape
        a = node.attrs
        s = expand_param(scale, x_shape, a["axis"], a["block_size"], node, "scale")
        z = None if zp is None else expand_param(zp, x_shape, a["axis"], a["block_size"], node,
                                                 "zero point")
        return s, z

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        """Per-tensor and per-axis forms are layout-agnostic (the axis is remapped)."""
        return _axis_sink(node, perm)


@register_op("QuantizeLinear")
class QuantizeLinear(QuantLinearBase):
    """ONNX QuantizeLinear (opsets 10-25 forms): y = saturate(rint(x / scale) + zero_point).

    Integer outputs int8, uint8, int16; per tensor, per axis or blocked. Deviations: NaN
    maps to the type's minimum and +-inf saturate (onnx.reference leaves those to numpy's
    undefined float-to-int cast).
    """

    dtypes = {DType.FLOAT32} | Q_TYPES

    def in_place_inputs(self, node: Node) -> list[int]:
        """The input's bytes take the narrower output when a memory budget asked for it
        (node.meta "in_place_narrowing", passes/fuse_row_bands.py): every kernel reads an
        element before it writes that element's narrower slot, which lies at or below it."""
        return [0] if node.meta.get("in_place_narrowing") else []

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, {DType.FLOAT32}, (0, 1))
        require_dtypes(node, Q_TYPES, (2,))
        self.const_input(node, 1, "y_scale")
        self.const_input(node, 2, "y_zero_point")
        a = node.attrs
        if a.get("precision", 0) not in (0, 1):
            raise UnsupportedError(f"QuantizeLinear node '{node.name}': precision "
                                   f"{a['precision']} is not supported (float32 only)")
        out = _out_type_code(node, 2) if node.input(2) is not None else \
            ONNX_TYPES.get(a.get("output_dtype") or 2)
        if out not in Q_TYPES:
            raise UnsupportedError(f"QuantizeLinear node '{node.name}': output type "
                                   f"{a.get('output_dtype')} is not supported")
        a["output_dtype"] = ONNX_CODES[out]

    def infer(self, node: Node) -> list[TensorType]:
        out = _out_type_code(node, 2)
        self.params(node)  # validates shapes of scale and zero point
        return [TensorType(in_type(node, 0).shape, out)]

    def reference(self, node: Node, x, scale, zp=None):
        out = self.infer(node)[0].dtype
        s, z = self.params(node, scale, zp)
        z = np.int64(0) if z is None else z.astype(np.int64)
        q = np.rint(x.astype(np.float32) / s.astype(np.float32))
        lo, hi = int_range(out)
        with np.errstate(invalid="ignore"):
            r = np.where(q >= lo - z, q, lo - z)
            r = np.minimum(r, hi - z)
        return ((r.astype(np.int64) + z).astype(out.np),)


@register_op("DequantizeLinear")
class DequantizeLinear(QuantLinearBase):
    """ONNX DequantizeLinear: y = (x - zero_point) * scale, float32 out.

    x int8, uint8, int16 or int32; per tensor, per axis or blocked.
    """

    dtypes = {DType.FLOAT32, DType.INT32} | Q_TYPES

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, Q_TYPES | {DType.INT32}, (0, 2))
        require_dtypes(node, {DType.FLOAT32}, (1,))
        self.const_input(node, 1, "x_scale")
        self.const_input(node, 2, "x_zero_point")
        zp = node.input(2)
        if zp is not None and zp.dtype != in_type(node, 0).dtype:
            raise UnsupportedError(f"DequantizeLinear node '{node.name}': zero point type "
                                   f"{zp.dtype.value} differs from the input's")
        code = node.attrs.get("output_dtype") or 1
        if code != 1:
            raise UnsupportedError(f"DequantizeLinear node '{node.name}': output type {code} is "
                                   "not supported (float32 only)")

    def infer(self, node: Node) -> list[TensorType]:
        self.params(node)
        return [TensorType(in_type(node, 0).shape, DType.FLOAT32)]

    def reference(self, node: Node, x, scale, zp=None):
        s, z = self.params(node, scale, zp)
        dx = x.astype(np.float32)
        if z is not None:
            dx = dx - z.astype(x.dtype)  # numpy promotion as in onnx.reference
        return ((dx * s.astype(np.float32)).astype(np.float32),)


# ------------------------------------------------------------------------------ convolutions


def _resolve_conv_attrs(node: Node, x: TensorType, w: TensorType) -> None:
    """Explicit pads/strides/dilations/kernel_shape, as Conv's import does."""
    a = node.attrs
    if x.rank < 3 or w.rank != x.rank:
        raise ShapeError(f"{node.op} node '{node.name}': input rank {x.rank} and weight rank "
                         f"{w.rank} do not form a convolution")
    nsp = x.rank - 2
    a["kernel_shape"] = list(a.get("kernel_shape") or w.shape[2:])
    a["strides"] = list(a.get("strides") or [1] * nsp)
    a["dilations"] = list(a.get("dilations") or [1] * nsp)
    auto_pad = a.get("auto_pad", "NOTSET") or "NOTSET"
    if auto_pad != "NOTSET":
        a["pads"] = resolve_auto_pad(auto_pad, x.shape[2:], a["kernel_shape"], a["strides"],
                                     a["dilations"])
    a["auto_pad"] = "NOTSET"
    a["pads"] = list(a.get("pads") or [0] * (2 * nsp))


def _weight_zp(w_zp, m: int, node: Node) -> np.ndarray:
    """Per-output-channel weight zero points as int64 [M] (scalar broadcast)."""
    if w_zp is None:
        return np.zeros(m, np.int64)
    w_zp = np.asarray(w_zp, np.int64).reshape(-1)
    if w_zp.size not in (1, m):
        raise ShapeError(f"{node.op} node '{node.name}': {w_zp.size} weight zero points for "
                         f"{m} output channels")
    return np.broadcast_to(w_zp, (m,)).copy()


def _scalar(data, node: Node, what: str) -> int | None:
    if data is None:
        return None
    data = np.asarray(data).reshape(-1)
    if data.size != 1:
        raise UnsupportedError(f"{node.op} node '{node.name}': {what} must be a single value")
    return int(data[0])


class IntegerConvBase(OpDef):
    """QLinearConv and ConvInteger: spatial, channels-last C kernels shared with QConv."""

    attrs = CONV_ATTRS
    spatial = True
    x_index, w_index, xzp_index, wzp_index = 0, 1, 2, 3

    def conv_infer(self, node: Node, out: DType) -> list[TensorType]:
        return [conv_infer(node, in_type(node, self.x_index), in_type(node, self.w_index).shape,
                           out)]

    def accumulate(self, node: Node, x, w, x_zp, w_zp, bias) -> np.ndarray:
        """Exact accumulators [N, M, out...] (channels-first) and the layout."""
        geo = conv_geometry(node, w.shape)
        xs = to_nchw(x, geo["layout"]).astype(np.int64) - (_scalar(x_zp, node, "x zero point")
                                                            or 0)
        wz = _weight_zp(w_zp, w.shape[0], node).reshape(-1, *([1] * (w.ndim - 1)))
        return conv_acc_nchw(xs, w.astype(np.int64) - wz, bias, geo)

    def macs(self, node: Node) -> int:
        return node.output.type.numel * int(np.prod(in_type(node, self.w_index).shape[1:]))


@register_op("QLinearConv")
class QLinearConv(IntegerConvBase):
    """ONNX QLinearConv (uint8/int8, per-tensor or per-output-channel weights, int32 bias)."""

    quant = QuantRule.REQUANTIZE
    dtypes = U8_S8 | {DType.FLOAT32, DType.INT32}
    x_index, w_index, xzp_index, wzp_index = 0, 3, 2, 5

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, U8_S8, (0, 2, 3, 5, 7))
        require_dtypes(node, {DType.FLOAT32}, (1, 4, 6))
        require_dtypes(node, {DType.INT32}, (8,))
        for i, what in enumerate(("x_scale", "x_zero_point", "w", "w_scale", "w_zero_point",
                                  "y_scale", "y_zero_point", "B"), start=1):
            self.const_input(node, i, what)
        _resolve_conv_attrs(node, in_type(node, 0), in_type(node, 3))

    def infer(self, node: Node) -> list[TensorType]:
        y_zp = node.input(7)
        return self.conv_infer(node, y_zp.dtype if y_zp is not None else in_type(node).dtype)

    def multiplier(self, x_scale, w_scale, y_scale) -> np.ndarray:
        """x_scale * w_scale / y_scale in float32, exactly as onnx.reference computes it."""
        return np.asarray(np.asarray(x_scale, np.float32).reshape(-1)
                          * np.asarray(w_scale, np.float32).reshape(-1)
                          / np.asarray(y_scale, np.float32).reshape(-1), np.float32)

    def reference(self, node: Node, x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp=None,
                  bias=None):
        acc = self.accumulate(node, x, w, x_zp, w_zp, bias)
        mult = self.multiplier(x_scale, w_scale, y_scale)
        out = self.infer(node)[0].dtype
        lo, hi = int_range(out)
        rank = acc.ndim
        mult = mult.reshape(1, -1, *([1] * (rank - 2))) if mult.size > 1 else mult.reshape(())
        zp = None if y_zp is None else np.asarray(y_zp).reshape(())
        y = requantize_onnx_float(acc, mult, zp, lo, hi)
        return (from_nchw(y.astype(out.np), node.attrs["layout"]),)


@register_op("ConvInteger")
class ConvInteger(IntegerConvBase):
    """ONNX ConvInteger: int32 accumulators of (x - x_zp) * (w - w_zp), uint8/int8."""

    dtypes = U8_S8 | {DType.INT32}

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, U8_S8, (0, 1, 2, 3))
        for i, what in ((1, "w"), (3, "w_zero_point")):
            self.const_input(node, i, what)
        x_zp = node.input(2)  # may be computed (quantize_dynamic: DynamicQuantizeLinear's)
        if x_zp is not None and not x_zp.is_const and in_type(node, 2).numel != 1:
            raise UnsupportedError(f"ConvInteger node '{node.name}': a run-time x_zero_point "
                                   "must be one value (per tensor)")
        _resolve_conv_attrs(node, in_type(node, 0), in_type(node, 1))

    def infer(self, node: Node) -> list[TensorType]:
        return self.conv_infer(node, DType.INT32)

    def valid_tap_sums(self, node: Node) -> np.ndarray:
        """Per output element, the sum of (w - w_zp) over the taps that read the input (not
        padding), in the output's layout: what a run-time x zero point multiplies."""
        ones = np.ones(in_type(node, 0).shape, np.int64)
        w = self.const_input(node, 1, "w")
        sums = self.accumulate(node, ones, w, None, self.const_input(node, 3, "w_zero_point"),
                               None)
        return from_nchw(sums, node.attrs["layout"]).astype(np.int32)

    def reference(self, node: Node, x, w, x_zp=None, w_zp=None):
        acc = self.accumulate(node, x, w, x_zp, w_zp, None)
        return (from_nchw(acc.astype(np.int32), node.attrs["layout"]),)


# ------------------------------------------------------------------------------ matmuls
def matmul_shapes(node: Node, a: TensorType, b: TensorType):
    """(batch, M, K, N, a batch, b batch) of a matmul of 2-D-or-more operands a and b."""
    if a.rank < 2 or b.rank < 2 or a.shape[-1] != b.shape[-2]:
        raise ShapeError(f"{node.op} node '{node.name}': operands {a.shape} and {b.shape} do "
                         "not form a matrix product")
    from edgec.ops.base import broadcast_shapes

    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return batch, a.shape[-2], a.shape[-1], b.shape[-1], a.shape[:-2], b.shape[:-2]


class IntegerMatMulBase(OpDef):
    """QLinearMatMul and MatMulInteger: numpy matmul shapes; a per tensor, b per column."""

    b_index, azp_index, bzp_index = 1, 2, 3

    def shapes_out(self, node: Node, out: DType) -> list[TensorType]:
        batch, m, _, n, _, _ = matmul_shapes(node, in_type(node, 0), in_type(node, self.b_index))
        return [TensorType((*batch, m, n), out)]

    def zero_points(self, node: Node, a_zp, b_zp) -> tuple[int, np.ndarray]:
        """(a zero point, b zero points per column or one)."""
        n = in_type(node, self.b_index).shape[-1]
        a = _scalar(a_zp, node, "a zero point (per-row is not supported)") or 0
        b = np.zeros(1, np.int64) if b_zp is None else np.asarray(b_zp, np.int64).reshape(-1)
        if b.size not in (1, n):
            raise ShapeError(f"{node.op} node '{node.name}': {b.size} b zero points for {n} "
                             "columns")
        return a, b

    def accumulate(self, a, b, a_zp: int, b_zp: np.ndarray) -> np.ndarray:
        """Exact int64 products (b's zero point per column broadcasts along the last axis)."""
        return np.matmul(a.astype(np.int64) - a_zp, b.astype(np.int64) - b_zp)

    def macs(self, node: Node) -> int:
        batch, m, k, n, _, _ = matmul_shapes(node, in_type(node, 0), in_type(node, self.b_index))
        return int(np.prod(batch, dtype=np.int64)) * m * k * n

    def uses_gemm(self, node: Node) -> bool:
        """A constant 2-D b runs on the fully-connected kernel with packed weights."""
        b = node.input(self.b_index)
        return b.is_const and b.type.rank == 2 and in_type(node, 0).rank >= 2


@register_op("QLinearMatMul")
class QLinearMatMul(IntegerMatMulBase):
    """ONNX QLinearMatMul (uint8/int8; float32 or float16 scales; b per tensor or column)."""

    quant = QuantRule.REQUANTIZE
    dtypes = U8_S8 | {DType.FLOAT32, DType.FLOAT16}
    b_index, azp_index, bzp_index = 3, 2, 5

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, U8_S8, (0, 2, 3, 5, 7))
        require_dtypes(node, {DType.FLOAT32, DType.FLOAT16}, (1, 4, 6))
        for i, what in ((1, "a_scale"), (2, "a_zero_point"), (4, "b_scale"),
                        (5, "b_zero_point"), (6, "y_scale"), (7, "y_zero_point")):
            self.const_input(node, i, what)
        if in_type(node, 0).rank < 2 or in_type(node, 3).rank < 2:
            raise UnsupportedError(f"QLinearMatMul node '{node.name}': 1-D operands are not "
                                   "supported")

    def infer(self, node: Node) -> list[TensorType]:
        return self.shapes_out(node, in_type(node, 7).dtype)

    def multiplier(self, a_scale, b_scale, y_scale) -> np.ndarray:
        """a_scale * b_scale / y_scale in the scales' own float type (as onnx.reference)."""
        if np.asarray(a_scale).size != 1 or np.asarray(y_scale).size != 1:
            raise UnsupportedError("QLinearMatMul: a_scale and y_scale must be single values")
        return np.asarray(a_scale).reshape(-1) * np.asarray(b_scale).reshape(-1) \
            / np.asarray(y_scale).reshape(-1)

    def reference(self, node: Node, a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp):
        az, bz = self.zero_points(node, a_zp, b_zp)
        acc = self.accumulate(a, b, az, bz)
        mult = self.multiplier(a_scale, b_scale, y_scale)
        out = y_zp.dtype
        lo, hi = np.iinfo(out).min, np.iinfo(out).max
        y = requantize_onnx_float(acc, mult if mult.size > 1 else mult.reshape(()),
                                  np.asarray(y_zp).reshape(()), lo, hi)
        return (y.astype(out),)


@register_op("MatMulInteger")
class MatMulInteger(IntegerMatMulBase):
    """ONNX MatMulInteger: int32 products of (a - a_zp) and (b - b_zp); uint8/int8."""

    dtypes = U8_S8 | {DType.INT32}

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, U8_S8, (0, 1, 2, 3))
        a_zp = node.input(2)
        if a_zp is None or a_zp.is_const or a_zp.type.numel != 1:
            self.const_input(node, 2, "a_zero_point")  # a run-time scalar waits for the
        self.const_input(node, 3, "b_zero_point")      # fuse-dynamic-quant-matmul pass
        if in_type(node, 0).rank < 2 or in_type(node, 1).rank < 2:
            raise UnsupportedError(f"MatMulInteger node '{node.name}': 1-D operands are not "
                                   "supported")

    def infer(self, node: Node) -> list[TensorType]:
        return self.shapes_out(node, DType.INT32)

    def reference(self, node: Node, a, b, a_zp=None, b_zp=None):
        az, bz = self.zero_points(node, a_zp, b_zp)
        return (self.accumulate(a, b, az, bz).astype(np.int32),)


@register_op("DynamicQuantizeLinear")
class DynamicQuantizeLinear(OpDef):
    """ONNX DynamicQuantizeLinear: uint8 data, scale and zero point from the run-time range.

    scale = (max(x, 0) - min(x, 0)) / 255 (1/255 when that range is empty), zero point =
    rint(clamp(-min / scale, 0, 255)), y = clamp(rint(x / scale) + zero point, 0, 255),
    all in float32 as onnx.reference. NaN inputs are not supported.
    """

    dtypes = {DType.FLOAT32, DType.UINT8}

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, {DType.FLOAT32})

    def infer(self, node: Node) -> list[TensorType]:
        x = in_type(node, 0)
        return [TensorType(x.shape, DType.UINT8), TensorType((), DType.FLOAT32),
                TensorType((), DType.UINT8)]

    def reference(self, node: Node, x):
        x = np.asarray(x, np.float32)
        hi = np.float32(max(np.float32(0), np.max(x))) if x.size else np.float32(0)
        lo = np.float32(min(np.float32(0), np.min(x))) if x.size else np.float32(0)
        scale = np.float32(np.float32(1.0) if hi == lo else np.float32(hi - lo)) / np.float32(255)
        zp = np.float32(np.float32(0) - lo / scale)
        zp = np.rint(np.clip(zp, np.float32(0), np.float32(255)))
        y = np.clip(np.rint(x / scale) + zp, 0, 255)
        return y.astype(np.uint8), np.array(scale, np.float32), np.array(zp, np.uint8)

