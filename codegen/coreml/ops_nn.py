"""MIL lowerings of the layers: Conv, Gemm/MatMul, pooling, normalisation, activations.

MIL is channels-first like ONNX (the CoreML pipeline leaves layout-nhwc out), so a Conv is
one `conv` with the ONNX weight as it is; a fused epilogue (edgec/ops/epilogue.py: residual
add, then activation) becomes the MIL ops after it.
"""

from __future__ import annotations

import numpy as np

from edgec.codegen.coreml.registry import Ctx, lowers
from edgec.errors import UnsupportedError
from edgec.ir import Node

F32_MAX = float(np.finfo(np.float32).max)


def _pads(node: Node, rank: int) -> dict:
    """MIL pad arguments from ONNX pads [b0, b1, .., e0, e1, ..] or auto_pad."""
    auto = node.attrs.get("auto_pad", "NOTSET")
    if auto == "VALID":
        return {"pad_type": "valid"}
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return {"pad_type": "same" if auto == "SAME_UPPER" else "same_lower"}
    pads = list(node.attrs.get("pads") or [0] * (2 * rank))
    mil = []
    for i in range(rank):
        mil += [int(pads[i]), int(pads[i + rank])]
    return {"pad_type": "custom", "pad": mil}


def activation(ctx: Ctx, node: Node, y, name: str, channel_axis: int = 1):
    """The fused activation of `node` (attrs activation/act_alpha/act_beta/act_slope)."""
    mb = ctx.mb
    a = node.attrs
    act = a.get("activation", "none")
    alpha, beta = float(a.get("act_alpha", 0.0)), float(a.get("act_beta", 0.0))
    if act == "none":
        return y
    if act == "relu":
        return mb.relu(x=y, name=name)
    if act == "clip":
        return mb.clip(x=y, alpha=np.float32(alpha), beta=np.float32(beta), name=name)
    if act == "leaky_relu":
        return mb.leaky_relu(x=y, alpha=np.float32(alpha), name=name)
    if act == "prelu":
        return prelu(ctx, y, np.asarray(a["act_slope"], np.float32), channel_axis, name)
    if act == "hardswish":
        return hardswish(ctx, y, name)
    if act == "hardsigmoid":
        return mb.sigmoid_hard(x=y, alpha=np.float32(alpha), beta=np.float32(beta), name=name)
    if act == "sigmoid":
        return mb.sigmoid(x=y, name=name)
    if act == "silu":
        return mb.mul(x=y, y=mb.sigmoid(x=y, name=name + "_sigmoid"), name=name)
    if act == "tanh":
        return mb.tanh(x=y, name=name)
    raise UnsupportedError(f"CoreML: activation {act} of node '{node.name}' has no lowering")


def hardswish(ctx: Ctx, x, name: str):
    """x * hardsigmoid(x) with alpha 1/6, beta 1/2 (MIL has no hardswish op)."""
    gate = ctx.mb.sigmoid_hard(x=x, alpha=np.float32(1 / 6), beta=np.float32(0.5),
                               name=name + "_gate")
    return ctx.mb.mul(x=x, y=gate, name=name)


def prelu(ctx: Ctx, x, slope: np.ndarray, channel_axis: int, name: str):
    """x >= 0 ? x : slope * x, slope broadcast on `channel_axis` (a scalar slope: leaky)."""
    slope = slope.reshape(-1)
    if slope.size == 1:
        return ctx.mb.leaky_relu(x=x, alpha=np.float32(slope[0]), name=name)
    rank = x.rank
    shape = [1] * rank
    shape[channel_axis % rank] = slope.size
    neg = ctx.mb.minimum(x=x, y=np.float32(0), name=name + "_neg")
    pos = ctx.mb.relu(x=x, name=name + "_pos")
    scaled = ctx.mb.mul(x=neg, y=slope.reshape(shape), name=name + "_scaled")
    return ctx.mb.add(x=pos, y=scaled, name=name)


def _epilogue(ctx: Ctx, node: Node, y, residual, channel_axis: int = 1):
    """Residual add then activation; the last op takes the node's output name."""
    out = ctx.name(node.outputs[0])
    act = node.attrs.get("activation", "none")
    if residual is not None:
        y = ctx.mb.add(x=y, y=ctx.x(residual), name=out if act == "none" else out + "_sum")
    return activation(ctx, node, y, out, channel_axis)


def _main_name(ctx: Ctx, node: Node) -> str:
    """Name of the layer op itself: the output's name when no epilogue op follows it."""
    epilogue = node.attrs.get("activation", "none") != "none" or node.input(3) is not None
    return ctx.name(node.outputs[0], "_pre" if epilogue else "")


@lowers("Conv")
def conv(ctx: Ctx, node: Node):
    """ONNX Conv (1-3 spatial dims, groups, dilations) -> MIL conv with a bias."""
    if node.attrs.get("layout", "NCHW") != "NCHW":
        raise UnsupportedError(f"CoreML: Conv '{node.name}' is not channels-first")
    w = ctx.const(node.input(1), "weight", node)
    rank = w.ndim - 2
    kwargs = dict(x=ctx.x(node.input(0)), weight=ctx.weight(w, 0, node.input(1).name),
                  strides=[int(s) for s in node.attrs["strides"]],
                  dilations=[int(d) for d in node.attrs["dilations"]],
                  groups=int(node.attrs["group"]), **_pads(node, rank))
    if node.input(2) is not None:
        kwargs["bias"] = ctx.const(node.input(2), "bias", node).astype(np.float32)
    y = ctx.mb.conv(**kwargs, name=_main_name(ctx, node))
    return _epilogue(ctx, node, y, node.input(3))


@lowers("Gemm")
def gemm(ctx: Ctx, node: Node):
    """Gemm -> linear (constant B: weight [N, K], alpha and beta folded into weight and bias),
    or matmul + add when B is computed."""
    a = node.attrs
    if a.get("input_pool", "none") != "none":
        raise UnsupportedError(f"CoreML: Gemm '{node.name}' with a fused input pool")
    x = ctx.x(node.input(0))
    if a["transA"]:
        x = ctx.mb.transpose(x=x, perm=[1, 0], name=ctx.name(node.input(0), "_T"))
    c = node.input(2)
    if node.input(1).is_const and (c is None or c.is_const):
        w = np.asarray(node.input(1).data, np.float32)
        w = (w if a["transB"] else w.T) * np.float32(a["alpha"])
        n = w.shape[0]
        bias = np.zeros(n, np.float32)
        if c is not None:
            cb = np.asarray(c.data, np.float32) * np.float32(a["beta"])
            if cb.size not in (1, n) or (cb.ndim == 2 and cb.shape[0] != 1):
                raise UnsupportedError(f"CoreML: Gemm '{node.name}': bias of shape "
                                       f"{cb.shape} is not per output column")
            bias = np.broadcast_to(cb.reshape(-1), (n,)).astype(np.float32)
        y = ctx.mb.linear(x=x, weight=ctx.weight(w, 0, node.input(1).name), bias=bias,
                          name=_main_name(ctx, node))
        return _epilogue(ctx, node, y, node.input(3), channel_axis=-1)
    y = ctx.mb.matmul(x=x, y=ctx.x(node.input(1)), transpose_y=bool(a["transB"]),
                      name=ctx.name(node.outputs[0], "_mm"))
    if a["alpha"] != 1.0:
        y = ctx.mb.mul(x=y, y=np.float32(a["alpha"]), name=ctx.name(node.outputs[0], "_alpha"))
    if c is not None:
        cv = ctx.x(c)
        if a["beta"] != 1.0:
            cv = ctx.mb.mul(x=cv, y=np.float32(a["beta"]), name=ctx.name(c, "_beta"))
        y = ctx.mb.add(x=y, y=cv, name=_main_name(ctx, node))
    return _epilogue(ctx, node, y, node.input(3), channel_axis=-1)


@lowers("MatMul")
def matmul(ctx: Ctx, node: Node):
    """MatMul -> matmul (a constant right operand goes through ctx.weight: int8 on -int8)."""
    b = node.input(1)
    y_in = ctx.weight(b.data, 1, b.name) if b.is_const and len(b.shape) == 2 else ctx.x(b)
    y = ctx.mb.matmul(x=ctx.x(node.input(0)), y=y_in, name=_main_name(ctx, node))
    return _epilogue(ctx, node, y, node.input(2), channel_axis=-1)


def _pool_args(node: Node, rank: int) -> dict:
    a = node.attrs
    if any(d != 1 for d in a.get("dilations") or [1]):
        raise UnsupportedError(f"CoreML: {node.op} '{node.name}' with dilations has no MIL op")
    return dict(kernel_sizes=[int(k) for k in a["kernel_shape"]],
                strides=[int(s) for s in a["strides"]], ceil_mode=bool(a["ceil_mode"]),
                **_pads(node, rank))


@lowers("MaxPool")
def max_pool(ctx: Ctx, node: Node):
    """MaxPool -> max_pool (the Indices output is refused by the importer)."""
    rank = len(node.attrs["kernel_shape"])
    return ctx.mb.max_pool(x=ctx.x(node.input(0)), **_pool_args(node, rank),
                           name=ctx.name(node.outputs[0]))


@lowers("AveragePool")
def avg_pool(ctx: Ctx, node: Node):
    """AveragePool -> avg_pool (count_include_pad = not exclude_padding_from_average)."""
    rank = len(node.attrs["kernel_shape"])
    return ctx.mb.avg_pool(x=ctx.x(node.input(0)), **_pool_args(node, rank),
                           exclude_padding_from_average=not node.attrs["count_include_pad"],
                           name=ctx.name(node.outputs[0]))


@lowers("GlobalAveragePool", "GlobalMaxPool")
def global_pool(ctx: Ctx, node: Node):
    """Global pools -> reduce_mean / reduce_max over the spatial axes, dims kept."""
    x = ctx.x(node.input(0))
    axes = list(range(2, len(node.input(0).shape)))
    fn = ctx.mb.reduce_mean if node.op == "GlobalAveragePool" else ctx.mb.reduce_max
    return fn(x=x, axes=axes, keep_dims=True, name=ctx.name(node.outputs[0]))


@lowers("BatchNormalization")
def batch_norm(ctx: Ctx, node: Node):
    """Inference BatchNormalization (not folded into a Conv) -> batch_norm."""
    if node.attrs.get("training_mode"):
        raise UnsupportedError(f"CoreML: BatchNormalization '{node.name}' in training mode")
    scale, bias, mean, var = (ctx.const(node.input(i), "parameter", node).astype(np.float32)
                              for i in range(1, 5))
    return ctx.mb.batch_norm(x=ctx.x(node.input(0)), mean=mean, variance=var, gamma=scale,
                             beta=bias, epsilon=np.float32(node.attrs["epsilon"]),
                             name=ctx.name(node.outputs[0]))


@lowers("InstanceNormalization")
def instance_norm(ctx: Ctx, node: Node):
    """InstanceNormalization -> instance_norm."""
    scale, bias = (ctx.const(node.input(i), "parameter", node).astype(np.float32)
                   for i in (1, 2))
    return ctx.mb.instance_norm(x=ctx.x(node.input(0)), gamma=scale, beta=bias,
                                epsilon=np.float32(node.attrs["epsilon"]),
                                name=ctx.name(node.outputs[0]))


@lowers("LayerNormalization")
def layer_norm(ctx: Ctx, node: Node):
    """LayerNormalization (one output) -> layer_norm over axes [axis, rank)."""
    if len([o for o in node.outputs if o.uses or o in ctx.g.outputs]) > 1:
        raise UnsupportedError(f"CoreML: LayerNormalization '{node.name}' mean/inv-std outputs")
    rank = len(node.input(0).shape)
    axis = node.attrs["axis"] % rank
    norm_shape = tuple(node.input(0).shape[axis:])
    gamma = np.broadcast_to(ctx.const(node.input(1), "scale", node), norm_shape)
    beta = np.zeros(norm_shape, np.float32) if node.input(2) is None else \
        np.broadcast_to(ctx.const(node.input(2), "bias", node), norm_shape)
    return ctx.mb.layer_norm(x=ctx.x(node.input(0)), axes=list(range(axis, rank)),
                             gamma=np.ascontiguousarray(gamma, np.float32),
                             beta=np.ascontiguousarray(beta, np.float32),
                             epsilon=np.float32(node.attrs["epsilon"]),
                             name=ctx.name(node.outputs[0]))
