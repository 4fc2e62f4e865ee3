"""Every TFLite operator edgec emits besides convolutions and fully connected layers.

Each `lower_*` function maps one IR node; int8 tensors carry their IR quantisation
(Value.quant), so an operator TFLite requires to keep input and output parameters equal
(MAX_POOL_2D, RESHAPE, CONCATENATION, AVERAGE_POOL_2D) is only emitted when edgec's graph has
them equal. Average pools that requantise (edgec's "requantize" mode) become MEAN, TFLite's
reduction that rescales; see docs/tflite.md for where TFLite's MEAN rounds differently.
"""

from __future__ import annotations

import numpy as np

from edgec.codegen.tflite.ops_conv import int8_activation, reshape, same_pads
from edgec.errors import UnsupportedError
from edgec.ops.int8_scheme import qmul_attrs

_FLOAT_UNARY = {"Relu": "RELU", "Sigmoid": "LOGISTIC", "Tanh": "TANH", "HardSwish": "HARD_SWISH",
                "Sqrt": "SQRT", "Exp": "EXP", "Log": "LOG", "Abs": "ABS", "Neg": "NEG",
                "Floor": "FLOOR"}  # CEIL: LiteRT's reference op resolver has no kernel
_BINARY = {"Add": "ADD", "Sub": "SUB", "Mul": "MUL", "Max": "MAXIMUM", "Min": "MINIMUM",
           "Div": "DIV", "Pow": "POW", "Less": "LESS", "Greater": "GREATER",
           "LessOrEqual": "LESS_EQUAL", "GreaterOrEqual": "GREATER_EQUAL", "Equal": "EQUAL"}
# BuiltinOptions member of each binary builtin (the object API class is this name + "T").
_BINARY_OPTIONS = {"ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions",
                   "MAXIMUM": "MaximumMinimumOptions", "MINIMUM": "MaximumMinimumOptions",
                   "DIV": "DivOptions", "POW": "PowOptions", "LESS": "LessOptions",
                   "GREATER": "GreaterOptions", "LESS_EQUAL": "LessEqualOptions",
                   "GREATER_EQUAL": "GreaterEqualOptions", "EQUAL": "EqualOptions"}


def _refuse(node, why: str) -> UnsupportedError:
    return UnsupportedError(f"{node.op} node '{node.name}': {why}")


def _same_quant(node, *values) -> None:
    """Refuse when int8 values do not share one scale and zero point."""
    params = {(float(v.quant.scale[0]), int(v.quant.zero_point[0])) for v in values
              if v.quant is not None}
    if len(params) > 1:
        raise _refuse(node, "TFLite needs equal input and output quantisation here")


def lower_quantize(lw, node) -> None:
    """QuantizeLinear (float -> int8, per tensor) -> QUANTIZE."""
    if node.outputs[0].quant is None or node.outputs[0].quant.per_axis:
        raise _refuse(node, "only per-tensor int8 quantisation maps to QUANTIZE")
    lw.b.add_operator("QUANTIZE", [lw.tensor(node.inputs[0])], [lw.output_tensor(node.outputs[0])],
                      lw.b.tfl.QuantizeOptionsT())


def lower_requantize(lw, node) -> None:
    """QRequantize (int8 -> int8, new scale) -> QUANTIZE (TFLite's int8 requantise)."""
    a = node.attrs
    if (a["act_min"], a["act_max"]) != (-128, 127):
        raise _refuse(node, "TFLite's requantising QUANTIZE has no clamp")
    lw.b.add_operator("QUANTIZE", [lw.tensor(node.inputs[0])], [lw.output_tensor(node.outputs[0])],
                      lw.b.tfl.QuantizeOptionsT())


def lower_dequantize(lw, node) -> None:
    """DequantizeLinear (int8 -> float) -> DEQUANTIZE."""
    x = node.inputs[0]
    if x.quant is None or x.quant.per_axis or x.is_const:
        raise _refuse(node, "only per-tensor int8 activations map to DEQUANTIZE")
    lw.b.add_operator("DEQUANTIZE", [lw.tensor(x)], [lw.output_tensor(node.outputs[0])],
                      lw.b.tfl.DequantizeOptionsT())


def lower_reshape(lw, node) -> None:
    """Reshape / Flatten / Squeeze / Unsqueeze -> RESHAPE (new shape as a const input)."""
    x, y = node.inputs[0], node.outputs[0]
    _same_quant(node, x, y)
    reshape(lw, lw.tensor(x), lw.output_tensor(y), y.shape, node.name)


def lower_transpose(lw, node) -> None:
    """Transpose -> TRANSPOSE (only where the model itself needs one)."""
    x = node.inputs[0]
    perm = node.attrs.get("perm")
    perm = np.asarray(perm if perm else list(range(len(x.shape)))[::-1], np.int32)
    lw.b.add_operator("TRANSPOSE", [lw.tensor(x), lw.b.const(f"{node.name}/perm", perm)],
                      [lw.output_tensor(node.outputs[0])], lw.b.tfl.TransposeOptionsT(),
                      rank=len(perm))


def _pool_padding(node, x_shape, y_shape) -> str:
    a = node.attrs
    k, s = a["kernel_shape"], a["strides"] or [1, 1]
    pads = a["pads"] or [0, 0, 0, 0]
    if a.get("layout") != "NHWC" or len(k) != 2 or a.get("ceil_mode", 0) \
            or any(d != 1 for d in (a.get("dilations") or [1, 1])):
        raise _refuse(node, "TFLite pools are 2-D, channels-last, floor-mode, undilated")
    if not any(pads):
        return "VALID"
    same = [same_pads(x_shape[1 + i], k[i], s[i], 1) for i in range(2)]
    if all(same[i] == (y_shape[1 + i], pads[i], pads[2 + i]) for i in range(2)):
        if node.op in ("AveragePool", "QAveragePool") and a.get("count_include_pad", 0):
            raise _refuse(node, "TFLite's padded average excludes the padding "
                                "(count_include_pad=1 has no TFLite form)")
        return "SAME"
    raise _refuse(node, f"pads {pads} are neither TFLite's SAME nor VALID")


def _pool(lw, node, kind: str, activation: str = "NONE") -> None:
    x, y = node.inputs[0], node.outputs[0]
    a = node.attrs
    tfl = lw.b.tfl
    opt = tfl.Pool2DOptionsT()
    opt.padding = getattr(tfl.Padding, _pool_padding(node, x.shape, y.shape))
    opt.strideH, opt.strideW = (a["strides"] or [1, 1])
    opt.filterHeight, opt.filterWidth = a["kernel_shape"]
    opt.fusedActivationFunction = getattr(tfl.ActivationFunctionType, activation)
    lw.b.add_operator(kind, [lw.tensor(x)], [lw.output_tensor(y)], opt)


def lower_maxpool(lw, node) -> None:
    """MaxPool -> MAX_POOL_2D (int8: same quantisation in and out)."""
    _same_quant(node, node.inputs[0], node.outputs[0])
    _pool(lw, node, "MAX_POOL_2D")


def lower_avgpool(lw, node) -> None:
    """AveragePool / QAveragePool. One window position without padding (a global pool, or a
    window that leaves the last rows out, as DS-CNN's) -> [SLICE] MEAN over H, W, which
    requantises; float or int8 'divide' mode otherwise -> AVERAGE_POOL_2D."""
    x, y = node.inputs[0], node.outputs[0]
    a = node.attrs
    one_window = tuple(y.shape[1:3]) == (1, 1) and not any(a.get("pads") or [0])
    if one_window and (node.op == "QAveragePool" and a.get("mode") == "requantize"
                       or node.op == "AveragePool"):
        k = a["kernel_shape"]
        x_t = lw.tensor(x)
        if tuple(k) != tuple(x.shape[1:3]):
            sliced = (x.shape[0], k[0], k[1], x.shape[3])
            s_t = lw.activation_like(x_t, f"{node.name}/window", sliced)
            begin = lw.b.const(f"{node.name}/begin", np.zeros(4, np.int32))
            size = lw.b.const(f"{node.name}/size", np.asarray(sliced, np.int32))
            lw.b.add_operator("SLICE", [x_t, begin, size], [s_t], lw.b.tfl.SliceOptionsT())
            x_t = s_t
        _mean(lw, node, x_t, y)
        return
    if node.op == "QAveragePool":
        if a.get("mode") != "divide":
            raise _refuse(node, "a requantising average pool over several windows has no "
                                "TFLite form")
        _same_quant(node, x, y)
    _pool(lw, node, "AVERAGE_POOL_2D", int8_activation(node, a) if node.op == "QAveragePool"
          else "NONE")


def lower_global_avgpool(lw, node) -> None:
    """GlobalAveragePool / QGlobalAveragePool (channels-last) -> MEAN over H, W."""
    if node.attrs.get("layout") != "NHWC" or len(node.inputs[0].shape) != 4:
        raise _refuse(node, "TFLite needs a 2-D channels-last pool")
    _mean(lw, node, lw.tensor(node.inputs[0]), node.outputs[0])


def _mean(lw, node, x_t: int, y) -> None:
    a = node.attrs
    if node.op.startswith("Q") and (a["act_min"], a["act_max"]) != (-128, 127):
        raise _refuse(node, "MEAN has no fused activation")
    opt = lw.b.tfl.ReducerOptionsT()
    opt.keepDims = True
    axes = lw.b.const(f"{node.name}/axes", np.asarray([1, 2], np.int32))
    lw.b.add_operator("MEAN", [x_t, axes], [lw.output_tensor(y)], opt)


def lower_qadd(lw, node) -> None:
    """QAdd -> ADD (int8; TFLite derives the same multipliers from the three scales)."""
    a = node.attrs
    if a.get("left_shift", 20) != 20:
        raise _refuse(node, "TFLite's int8 ADD uses left_shift 20")
    opt = lw.b.tfl.AddOptionsT()
    opt.fusedActivationFunction = getattr(lw.b.tfl.ActivationFunctionType,
                                          int8_activation(node, a))
    lw.b.add_operator("ADD", [lw.tensor(v) for v in node.inputs[:2]],
                      [lw.output_tensor(node.outputs[0])], opt)


def lower_qmul(lw, node) -> None:
    """QMul -> MUL (int8); refused when the multiplier is not TFLite's from the three scales
    (a Div by a constant folds its reciprocal exactly, which TFLite's MUL cannot express)."""
    a = node.attrs
    tfl = qmul_attrs(a["a_scale"], a["b_scale"], a["y_scale"])
    if (a["multiplier"], a["shift"]) != (tfl["multiplier"], tfl["shift"]):
        raise _refuse(node, "its multiplier (a Div by a constant, 1/k folded exactly) is not "
                            "TFLite MUL's; compile with --tflite-activations or --keep-float Div")
    opt = lw.b.tfl.MulOptionsT()
    opt.fusedActivationFunction = getattr(lw.b.tfl.ActivationFunctionType,
                                          int8_activation(node, a))
    rescale = a["a_scale"] * a["b_scale"] / a["y_scale"] >= 1.0
    lw.b.add_operator("MUL", [lw.tensor(v) for v in node.inputs[:2]],
                      [lw.output_tensor(node.outputs[0])], opt, rescale_ge_1=rescale)


def lower_qresize(lw, node) -> None:
    """QResize (edgec's integer linear resize) has no bit-exact TFLite form: refused."""
    raise _refuse(node, "edgec's int8 linear resize is not TFLite RESIZE_BILINEAR's arithmetic; "
                        "compile it for a C int8 target or keep it float (--keep-float Resize)")


def lower_binary(lw, node) -> None:
    """Float Add / Sub / Mul / Div / Pow / Max / Min and comparisons -> their builtin."""
    if len(node.inputs) != 2 or any(v is None or v.dtype.value != "float32"
                                    for v in node.inputs):
        raise _refuse(node, "only two float32 operands map to TFLite here")
    kind = _BINARY[node.op]
    tfl = lw.b.tfl
    opt = getattr(tfl, _BINARY_OPTIONS[kind] + "T")()
    rank = max(len(v.shape) for v in node.inputs)
    broadcast = node.inputs[0].shape != node.inputs[1].shape
    y = node.outputs[0]
    if kind in ("ADD", "SUB", "MUL", "DIV"):
        act, y = lw.fused_activation(node)
        opt.fusedActivationFunction = getattr(tfl.ActivationFunctionType, act)
    lw.b.add_operator(kind, [lw.tensor(v) for v in node.inputs], [lw.output_tensor(y)], opt,
                      options_type=_BINARY_OPTIONS[kind], rank=rank, broadcast=broadcast)


def lower_where(lw, node) -> None:
    """Where(cond, x, y) -> SELECT_V2 (broadcasting)."""
    if len(node.inputs) != 3 or any(v is None for v in node.inputs):
        raise _refuse(node, "needs a condition and two operands")
    lw.b.add_operator("SELECT_V2", [lw.tensor(v) for v in node.inputs],
                      [lw.output_tensor(node.outputs[0])], lw.b.tfl.SelectV2OptionsT())


def lower_softmax(lw, node) -> None:
    """Softmax over the last axis (float) -> SOFTMAX (beta 1)."""
    x = node.inputs[0]
    axes = node.attrs.get("axes") or [node.attrs.get("axis", -1)]
    if len(axes) != 1 or axes[0] % len(x.shape) != len(x.shape) - 1 or x.dtype.value != "float32":
        raise _refuse(node, "TFLite's SOFTMAX is float/int8 over the last axis only")
    opt = lw.b.tfl.SoftmaxOptionsT()
    opt.beta = 1.0
    lw.b.add_operator("SOFTMAX", [lw.tensor(x)], [lw.output_tensor(node.outputs[0])], opt)


def lower_unary(lw, node) -> None:
    """Float Relu / Sigmoid / Tanh / HardSwish / LeakyRelu / Clip(0, 6) -> their builtin."""
    x = node.inputs[0]
    if x.dtype.value != "float32":
        raise _refuse(node, "only float32 data maps to this TFLite operator here")
    tfl = lw.b.tfl
    opt, kind = None, _FLOAT_UNARY.get(node.op)
    if node.op == "LeakyRelu":
        kind, opt = "LEAKY_RELU", tfl.LeakyReluOptionsT()
        opt.alpha = float(node.attrs.get("alpha", 0.01))
    elif node.op == "Clip":
        lo, hi = (np.asarray(v.data).item() if v is not None and v.is_const else None
                  for v in (list(node.inputs[1:]) + [None, None])[:2])
        kind = {(0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1", (0.0, None): "RELU"}.get(
            (lo, hi))
        if kind is None:
            raise _refuse(node, f"Clip({lo}, {hi}) is none of RELU, RELU6, RELU_N1_TO_1")
    lw.b.add_operator(kind, [lw.tensor(x)], [lw.output_tensor(node.outputs[0])], opt)


def lower_concat(lw, node) -> None:
    """Concat -> CONCATENATION (int8: every input quantised as the output)."""
    y = node.outputs[0]
    _same_quant(node, y, *node.inputs)
    opt = lw.b.tfl.ConcatenationOptionsT()
    opt.axis = int(node.attrs["axis"]) % len(y.shape)
    lw.b.add_operator("CONCATENATION", [lw.tensor(v) for v in node.inputs],
                      [lw.output_tensor(y)], opt)


def lower_pad(lw, node) -> None:
    """Pad (constant 0, float) -> PAD."""
    a = node.attrs
    x = node.inputs[0]
    pads = a.get("pads")
    value = a.get("value", 0.0)
    if a.get("mode", "constant") != "constant" or pads is None or value != 0.0:
        raise _refuse(node, "only constant zero padding with static pads maps to PAD")
    n = len(x.shape)
    paddings = np.asarray([[pads[i], pads[n + i]] for i in range(n)], np.int32)
    lw.b.add_operator("PAD", [lw.tensor(x), lw.b.const(f"{node.name}/paddings", paddings)],
                      [lw.output_tensor(node.outputs[0])], lw.b.tfl.PadOptionsT(), rank=n)


def lower_resize(lw, node) -> None:
    """Resize over H, W of channels-last data -> RESIZE_NEAREST_NEIGHBOR (asymmetric
    coordinates, floor) or RESIZE_BILINEAR (half_pixel, align_corners or asymmetric)."""
    a = node.attrs
    x, y = node.inputs[0], node.outputs[0]
    scales = list(a.get("scales") or [])
    if a.get("layout") != "NHWC" or len(x.shape) != 4 or a.get("antialias", 0) or \
            (scales and scales[:2] != [1.0, 1.0]) or tuple(x.shape[::3]) != tuple(y.shape[::3]):
        raise _refuse(node, "TFLite resizes H and W of 4-D channels-last data only")
    ctm, mode = a["coordinate_transformation_mode"], a["mode"]
    tfl = lw.b.tfl
    features = {}
    if mode == "nearest" and ctm == "asymmetric" and a["nearest_mode"] == "floor":
        kind, opt = "RESIZE_NEAREST_NEIGHBOR", tfl.ResizeNearestNeighborOptionsT()
    elif mode == "linear" and ctm in ("half_pixel", "pytorch_half_pixel", "align_corners",
                                      "asymmetric"):
        if ctm == "pytorch_half_pixel" and min(y.shape[1:3]) == 1:
            raise _refuse(node, "pytorch_half_pixel to a length of 1 is not TFLite's half pixel")
        if any(y.shape[i] < x.shape[i] for i in (1, 2)):
            raise _refuse(node, "TFLite's bilinear resize does not downsample as ONNX does")
        kind, opt = "RESIZE_BILINEAR", tfl.ResizeBilinearOptionsT()
        opt.alignCorners = ctm == "align_corners"
        opt.halfPixelCenters = ctm in ("half_pixel", "pytorch_half_pixel")
        features["half_pixel_centers"] = opt.halfPixelCenters
    else:
        raise _refuse(node, f"mode '{mode}' with coordinates '{ctm}' (nearest_mode "
                            f"'{a['nearest_mode']}') has no TFLite resize")
    if x.dtype.value == "int8" and kind == "RESIZE_BILINEAR":
        raise _refuse(node, "int8 bilinear resize rounds differently in TFLite; compile it "
                            "for a C int8 target or keep it float (--keep-float)")
    _same_quant(node, x, y)
    size = lw.b.const(f"{node.name}/size", np.asarray(y.shape[1:3], np.int32))
    lw.b.add_operator(kind, [lw.tensor(x), size], [lw.output_tensor(y)], opt, **features)


def lower_lookup(lw, node) -> None:
    """QLookup (edgec's exact 256-entry int8 table: sigmoid, tanh, hardswish, SiLU, ...) ->
    CAST to int32, ADD 128, GATHER from the table: the same bits as edgec. (TFLite's int8
    LOGISTIC / TANH fix the output scale to 1/256 and 1/128, which calibration does not
    choose, and compute their own approximations.)"""
    x, y = node.inputs[0], node.outputs[0]
    table = np.asarray(node.attrs["table"], np.int64)
    if table.size != 256 or y.quant is None:
        raise _refuse(node, "needs a 256-entry int8 table")
    tfl = lw.b.tfl
    x_t = lw.tensor(x)
    shape = list(lw.b.tensors[x_t].shape)
    wide = lw.b.add_tensor(f"{node.name}/int32", shape, "int32")
    cast = tfl.CastOptionsT()
    cast.inDataType, cast.outDataType = tfl.TensorType.INT8, tfl.TensorType.INT32
    lw.b.add_operator("CAST", [x_t], [wide], cast)
    index = lw.b.add_tensor(f"{node.name}/index", shape, "int32")
    offset = lw.b.const(f"{node.name}/offset", np.asarray([128], np.int32))
    lw.b.add_operator("ADD", [wide, offset], [index], tfl.AddOptionsT())
    params = lw.b.const(f"{node.name}/table", table.astype(np.int8), scale=y.quant.scale,
                        zero_point=y.quant.zero_point)
    gather = tfl.GatherOptionsT()
    gather.axis = 0
    lw.b.add_operator("GATHER", [params, index], [lw.output_tensor(y)], gather)


_REDUCE = {"ReduceMean": "MEAN", "ReduceSum": "SUM", "ReduceMax": "REDUCE_MAX",
           "ReduceMin": "REDUCE_MIN", "ReduceProd": "REDUCE_PROD"}


def lower_reduce(lw, node) -> None:
    """Float ReduceMean / Sum / Max / Min / Prod over constant axes -> MEAN, SUM, ..."""
    from edgec.ops.reduce import canonical_axes

    x = node.inputs[0]
    if x.dtype.value != "float32":
        raise _refuse(node, "only float32 reductions map to TFLite here")
    rank = len(x.shape)
    axes = sorted(canonical_axes(node, node.attrs.get("axes") or [], rank))
    if not axes and node.outputs[0].shape == x.shape:  # noop_with_empty_axes: a copy
        lower_reshape(lw, node)
        return
    axes = axes or list(range(rank))
    opt = lw.b.tfl.ReducerOptionsT()
    opt.keepDims = bool(node.attrs.get("keepdims", 1))
    axes_t = lw.b.const(f"{node.name}/axes", np.asarray(axes, np.int32))
    lw.b.add_operator(_REDUCE[node.op], [lw.tensor(x), axes_t],
                      [lw.output_tensor(node.outputs[0])], opt)


def lower_prelu(lw, node) -> None:
    """Float PRelu with a constant slope -> PRELU."""
    x, slope = node.inputs[0], node.inputs[1]
    if x.dtype.value != "float32" or not slope.is_const:
        raise _refuse(node, "only float PRelu with constant slopes maps to PRELU")
    lw.b.add_operator("PRELU", [lw.tensor(x), lw.b.const(slope.name, np.asarray(
        slope.data, np.float32))], [lw.output_tensor(node.outputs[0])])


LOWERINGS = {
    "QuantizeLinear": lower_quantize, "DequantizeLinear": lower_dequantize,
    "QRequantize": lower_requantize,
    "Reshape": lower_reshape, "Flatten": lower_reshape, "Squeeze": lower_reshape,
    "Unsqueeze": lower_reshape, "Transpose": lower_transpose,
    "MaxPool": lower_maxpool, "AveragePool": lower_avgpool, "QAveragePool": lower_avgpool,
    "GlobalAveragePool": lower_global_avgpool, "QGlobalAveragePool": lower_global_avgpool,
    "QAdd": lower_qadd, "QMul": lower_qmul, "Softmax": lower_softmax, "Concat": lower_concat,
    "Pad": lower_pad, "Clip": lower_unary, "LeakyRelu": lower_unary,
    "Resize": lower_resize, "Upsample": lower_resize, "PRelu": lower_prelu,
    "QResize": lower_qresize,
    "QLookup": lower_lookup, "Identity": lower_reshape, "Where": lower_where,
    **{op: lower_reduce for op in _REDUCE},
    **{op: lower_binary for op in _BINARY}, **{op: lower_unary for op in _FLOAT_UNARY},
}
