"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED from edgec's Conv/QConv and Gemm/QGemm.

Weights: ONNX [M, C/group, kh, kw] becomes TFLite's [M, kh, kw, C] (CONV_2D) or
[1, kh, kw, M] (DEPTHWISE_CONV_2D, group == C, depth_multiplier M / C); int8 weights keep
edgec's per-channel symmetric scales (quantized_dimension 0 for CONV_2D and
FULLY_CONNECTED, 3 for DEPTHWISE_CONV_2D), the int32 bias has scale x_scale * w_scale[m].
A per-channel int8 fully connected layer is written as RESHAPE + CONV_2D 1x1 + RESHAPE:
LiteRT's per-channel FULLY_CONNECTED rounds differently from TFLite Micro's (and NNAPI has
none), while CONV_2D rounds alike everywhere (`_per_channel_fc_as_conv`).
TFLite recomputes each requantisation multiplier from these float scales
(x_scale * w_scale[m] / y_scale in double, QuantizeMultiplier): `check_multipliers`
compares that with edgec's own multiplier and records the channels where they differ.

Padding: TFLite has SAME and VALID only. Explicit ONNX pads that equal SAME's (total
(out-1)*stride + effective_kernel - in, the odd pixel at the end) become SAME; others an
explicit PAD (padding with the input zero point: real zero) followed by a VALID op.
"""

from __future__ import annotations

import numpy as np

from edgec import qmath
from edgec.errors import UnsupportedError

ACTIVATIONS = {"none": "NONE", "relu": "RELU", "relu6": "RELU6"}
# Fused float activations TFLite has no fused form of: a separate operator after the layer.
TRAILING = {"sigmoid": "LOGISTIC", "tanh": "TANH", "hardswish": "HARD_SWISH",
            "leaky_relu": "LEAKY_RELU", "prelu": "PRELU"}


def same_pads(size: int, k: int, s: int, d: int) -> tuple[int, int, int]:
    """(output size, pad before, pad after) of TFLite's SAME padding along one axis."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return out, total // 2, total - total // 2


def padding_for(lw, node, x_tensor: int, x_shape, kernel, strides, dilations, pads,
                zero_point: int | None, out_hw) -> tuple[str, int, tuple]:
    """("SAME"|"VALID", the tensor the op reads, its NHWC shape), inserting a PAD when the
    node's explicit pads are neither SAME's nor zero."""
    nsp = len(kernel)
    begin, end = list(pads[:nsp]), list(pads[nsp:])
    if not any(begin) and not any(end):
        return "VALID", x_tensor, x_shape
    same = [same_pads(x_shape[1 + i], kernel[i], strides[i], dilations[i]) for i in range(nsp)]
    if all(same[i] == (out_hw[i], begin[i], end[i]) for i in range(nsp)):
        return "SAME", x_tensor, x_shape
    padded = (x_shape[0], x_shape[1] + begin[0] + end[0], x_shape[2] + begin[1] + end[1],
              x_shape[3])
    paddings = np.array([[0, 0], [begin[0], end[0]], [begin[1], end[1]], [0, 0]], np.int32)
    out = lw.activation_like(x_tensor, f"{node.name}/pad", padded)
    lw.b.add_operator("PAD", [x_tensor, lw.b.const(f"{node.name}/paddings", paddings)], [out],
                      lw.b.tfl.PadOptionsT())
    return "VALID", out, padded


def int8_activation(node, a: dict) -> str:
    """The fused activation whose TFLite clamp range (CalculateActivationRangeQuantized:
    zero point + round(bound / scale), ties away from zero, within -128..127) is exactly the
    node's act_min..act_max."""
    scale, zp = float(np.float32(a["y_scale"])), int(a["y_zero_point"])

    def q(v: float) -> int:
        r = np.float32(v) / np.float32(scale)
        return zp + int(np.sign(r) * np.floor(np.abs(r) + np.float32(0.5)))

    ranges = {"NONE": (-128, 127), "RELU": (max(-128, zp), 127),
              "RELU6": (max(-128, zp), min(127, q(6.0))),
              "RELU_N1_TO_1": (max(-128, q(-1.0)), min(127, q(1.0)))}
    for name, rng in ranges.items():
        if rng == (a["act_min"], a["act_max"]):
            return name
    raise UnsupportedError(f"{node.op} node '{node.name}': its output clamp "
                           f"{a['act_min']}..{a['act_max']} is no TFLite fused activation")


def _fused(node, a: dict, float_op: bool) -> str:
    """TFLite's fused activation: float ops from the fused ONNX activation, int8 ops from
    their act_min/act_max clamp."""
    if not float_op:
        return int8_activation(node, a)
    act = a.get("activation", "none")
    if act == "clip":
        lo, hi = a.get("act_alpha", 0.0), a.get("act_beta", 0.0)
        if (lo, hi) == (0.0, 6.0):
            return "RELU6"
        if (lo, hi) == (-1.0, 1.0):
            return "RELU_N1_TO_1"
        raise UnsupportedError(f"node '{node.name}': a fused Clip({lo}, {hi}) has no TFLite "
                               "fused activation (only Relu, Relu6 and Clip(-1, 1))")
    if act in TRAILING:
        return "NONE"
    if act not in ACTIVATIONS:
        raise UnsupportedError(f"node '{node.name}': fused activation '{act}' has no TFLite "
                               "equivalent")
    return ACTIVATIONS[act]


def layer_output(lw, node, float_op: bool) -> tuple[int, object]:
    """(tensor the layer writes, callback emitting the trailing activation operator if the
    node has a fused activation TFLite cannot fuse)."""
    y = node.outputs[0]
    act = node.attrs.get("activation", "none") if float_op else "none"
    if act not in TRAILING:
        return lw.output_tensor(y), lambda: None
    final = lw.output_tensor(y)
    raw = lw.activation_like(final, f"{node.name}/pre_{act}", lw.b.tensors[final].shape)

    def emit() -> None:
        opt, inputs = None, [raw]
        if act == "leaky_relu":
            opt = lw.b.tfl.LeakyReluOptionsT()
            opt.alpha = float(node.attrs.get("act_alpha", 0.01))
        if act == "prelu":  # one slope per channel, broadcast along the last (channel) axis
            slope = np.asarray(node.attrs["act_slope"], np.float32)
            inputs.append(lw.b.const(f"{node.name}/slope", slope))
        lw.b.add_operator(TRAILING[act], inputs, [final], opt)

    return raw, emit


def check_multipliers(lw, node, x_scale: float, w_scale, y_scale: float) -> None:
    """Count the channels whose multiplier TFLite derives from the file's float scales
    differs from the one edgec's int8 reference uses (none when the layer was quantised by
    edgec: int8_scheme.requant_attrs derives them as TFLite does; an imported QDQ model's
    scales go the same way); recorded in `lw.differences`."""
    a = node.attrs
    reals = [float(np.float32(x_scale)) * float(np.float32(s)) / float(np.float32(y_scale))
             for s in np.atleast_1d(w_scale)]
    want_m, want_s = qmath.quantize_multipliers(reals)
    have_m = np.broadcast_to(np.asarray(a["multiplier"], np.int64), want_m.shape)
    have_s = np.broadcast_to(np.asarray(a["shift"], np.int64), want_s.shape)
    differ = int(np.count_nonzero((have_m != want_m) | (have_s != want_s)))
    if differ:
        lw.differences.append({"node": node.name, "multipliers_differing": differ,
                               "channels": int(want_m.size)})


def lower_conv(lw, node) -> None:
    """Conv (float, NHWC) or QConv -> [PAD] CONV_2D / DEPTHWISE_CONV_2D."""
    a = node.attrs
    quant = node.op == "QConv"
    if a.get("layout", "NCHW") != "NHWC" or len(a["kernel_shape"]) != 2:
        raise UnsupportedError(f"{node.op} node '{node.name}': TFLite needs a 2-D channels-last "
                               "convolution")
    if not quant and a.get("input_layout"):
        raise UnsupportedError(f"Conv node '{node.name}': a fused input transpose has no "
                               "TFLite form")
    x, w, bias = node.inputs[0], node.inputs[1], (node.inputs[2] if len(node.inputs) > 2
                                                   else None)
    if not w.is_const:
        raise UnsupportedError(f"{node.op} node '{node.name}': TFLite needs constant weights")
    m, cg, kh, kw = w.shape
    c_in = x.shape[3]
    group = a["group"]
    depthwise = group == c_in and group > 1 and cg == 1
    if group != 1 and not depthwise:
        raise UnsupportedError(f"{node.op} node '{node.name}': grouped convolution "
                               f"(group={group}) has no TFLite kernel on every runtime")
    strides = a["strides"] or [1, 1]
    dilations = a["dilations"] or [1, 1]
    y = node.outputs[0]
    pad_zp = a["x_zero_point"] if quant else None
    padding, x_t, _ = padding_for(lw, node, lw.tensor(x), x.shape, (kh, kw), strides,
                                  dilations, a["pads"] or [0, 0, 0, 0], pad_zp, y.shape[1:3])
    wdata = np.asarray(w.data)
    if depthwise:
        wt = wdata.reshape(m, kh, kw).transpose(1, 2, 0)[None]  # [1, kh, kw, M]
        q_axis = 3
    else:
        wt = wdata.transpose(0, 2, 3, 1)  # [M, kh, kw, C]
        q_axis = 0
    bias_data = np.asarray(bias.data) if bias is not None else \
        np.zeros(m, np.int32 if quant else np.float32)
    if quant:
        w_scale = np.asarray(a["w_scale"], np.float32)
        check_multipliers(lw, node, a["x_scale"], w_scale, a["y_scale"])
        const = lw.b.const_int4 if a.get("weight_bits", 8) == 4 and not depthwise \
            else lw.b.const  # int4 weights (--weight-bits 4): TFLite's INT4 filter
        w_t = const(w.name, wt.astype(np.int8), scale=w_scale,
                    zero_point=np.zeros(w_scale.size, np.int64), axis=q_axis)
        b_scale = (np.float32(a["x_scale"]) * w_scale.astype(np.float64)).astype(np.float32)
        b_t = lw.b.const(bias.name if bias is not None else f"{node.name}/bias",
                         bias_data.astype(np.int32), scale=b_scale,
                         zero_point=np.zeros(b_scale.size, np.int64), axis=0)
    else:
        w_t = lw.float_weight(w.name, wt)
        b_t = lw.b.const(bias.name if bias is not None else f"{node.name}/bias",
                         bias_data.astype(np.float32))
    y_t, trailing = layer_output(lw, node, not quant)
    tfl = lw.b.tfl
    act = getattr(tfl.ActivationFunctionType, _fused(node, a, not quant))
    pad = getattr(tfl.Padding, padding)
    if depthwise:
        opt = tfl.DepthwiseConv2DOptionsT()
        opt.depthMultiplier = m // c_in
        kind = "DEPTHWISE_CONV_2D"
    else:
        opt = tfl.Conv2DOptionsT()
        kind = "CONV_2D"
    opt.padding, opt.strideH, opt.strideW = pad, strides[0], strides[1]
    opt.dilationHFactor, opt.dilationWFactor = dilations[0], dilations[1]
    opt.fusedActivationFunction = act
    lw.b.add_operator(kind, [x_t, w_t, b_t], [y_t], opt,
                      dilated=dilations != [1, 1])
    trailing()


def reshape(lw, x_t: int, y_t: int, shape, name: str) -> None:
    """Emit RESHAPE x_t -> y_t."""
    opt = lw.b.tfl.ReshapeOptionsT()
    opt.newShape = list(int(d) for d in shape)
    shape_t = lw.b.const(f"{name}/shape", np.asarray(shape, np.int32))
    lw.b.add_operator("RESHAPE", [x_t, shape_t], [y_t], opt)


def _per_channel_fc_as_conv(lw, node, x, w_t, b_t, act) -> None:
    """A per-channel int8 fully connected layer as RESHAPE [R, 1, 1, K] + CONV_2D 1x1 +
    RESHAPE back. LiteRT's per-channel FULLY_CONNECTED rounds once (the product's nearest
    integer) while TFLite Micro's and CONV_2D everywhere round twice (edgec's scheme), so a
    FULLY_CONNECTED would give different bits in the two runtimes; NNAPI has no per-channel
    FULLY_CONNECTED either, and takes this CONV_2D (docs/tflite.md)."""
    k = int(x.shape[-1])
    rows = int(np.prod(x.shape[:-1]))
    x4 = lw.activation_like(lw.tensor(x), f"{node.name}/rows", [rows, 1, 1, k])
    reshape(lw, lw.tensor(x), x4, [rows, 1, 1, k], f"{node.name}/rows")
    y_t, trailing = layer_output(lw, node, False)
    n = int(node.outputs[0].shape[-1])
    y4 = lw.activation_like(y_t, f"{node.name}/conv", [rows, 1, 1, n])
    opt = lw.b.tfl.Conv2DOptionsT()
    opt.padding = lw.b.tfl.Padding.VALID
    opt.strideH = opt.strideW = opt.dilationHFactor = opt.dilationWFactor = 1
    opt.fusedActivationFunction = act
    lw.b.add_operator("CONV_2D", [x4, w_t, b_t], [y4], opt, dilated=False)
    reshape(lw, y4, y_t, list(node.outputs[0].shape), f"{node.name}/out")
    trailing()


def lower_gemm(lw, node, weights: np.ndarray | None = None) -> None:
    """Gemm (transB=1, alpha = beta = 1) or QGemm -> FULLY_CONNECTED (a per-channel QGemm ->
    RESHAPE + CONV_2D 1x1 + RESHAPE, `_per_channel_fc_as_conv`). `weights` replaces the
    constant [N, K] weights (a caller that permuted their columns)."""
    a = node.attrs
    quant = node.op == "QGemm"
    x, w = node.inputs[0], node.inputs[1]
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    if not quant and (a.get("transA", 0) or a.get("input_pool", "none") != "none"):
        raise UnsupportedError(f"Gemm node '{node.name}': only y = alpha x W + beta b maps "
                               "to FULLY_CONNECTED")
    if not w.is_const or (bias is not None and not bias.is_const):
        raise UnsupportedError(f"{node.op} node '{node.name}': TFLite needs constant weights")
    wdata = np.asarray(w.data) if weights is None else weights
    if not quant and weights is None and not a.get("transB", 0):
        wdata = wdata.T  # FULLY_CONNECTED keeps weights [N, K]
    if not quant:  # alpha and beta fold into the constants (exact for powers of two)
        wdata = wdata.astype(np.float32) * np.float32(a.get("alpha", 1.0))
    n = wdata.shape[0]
    if bias is not None and bias.shape != (n,):
        raise UnsupportedError(f"{node.op} node '{node.name}': the bias must be a vector [N]")
    per_channel_conv = False
    if quant:
        w_scale = np.asarray(a["w_scale"], np.float32)
        check_multipliers(lw, node, a["x_scale"], w_scale, a["y_scale"])
        per_channel_conv = w_scale.size > 1
        w_int8 = wdata.astype(np.int8)
        const = lw.b.const_int4 if a.get("weight_bits", 8) == 4 and per_channel_conv \
            else lw.b.const  # int4 weights as CONV_2D's INT4 filter (LiteRT runs it)
        w_t = const(w.name, w_int8[:, None, None, :] if per_channel_conv else w_int8,
                    scale=w_scale, zero_point=np.zeros(w_scale.size, np.int64), axis=0)
        b_scale = (np.float32(a["x_scale"]) * w_scale.astype(np.float64)).astype(np.float32)
        b_data = np.asarray(bias.data) if bias is not None else np.zeros(n, np.int32)
        b_t = lw.b.const(bias.name if bias is not None else f"{node.name}/bias",
                         b_data.astype(np.int32), scale=b_scale,
                         zero_point=np.zeros(b_scale.size, np.int64), axis=0)
    else:
        w_t = lw.float_weight(w.name, wdata)
        b_data = np.asarray(bias.data, np.float32) * np.float32(a.get("beta", 1.0)) \
            if bias is not None else np.zeros(n, np.float32)
        b_t = lw.b.const(bias.name if bias is not None else f"{node.name}/bias",
                         b_data.astype(np.float32))
    tfl = lw.b.tfl
    act = getattr(tfl.ActivationFunctionType, _fused(node, a, not quant))
    if per_channel_conv:
        _per_channel_fc_as_conv(lw, node, x, w_t, b_t, act)
        return
    opt = tfl.FullyConnectedOptionsT()
    opt.fusedActivationFunction = act
    keep = len(x.shape) != 2
    opt.keepNumDims = keep
    y_t, trailing = layer_output(lw, node, not quant)
    lw.b.add_operator("FULLY_CONNECTED", [lw.tensor(x), w_t, b_t], [y_t], opt,
                      keep_num_dims=keep)
    trailing()
