"""MIL lowerings of elementwise functions, shape ops, Softmax and Resize.

Shapes are static in edgec's IR, so every view (Flatten, Reshape, Squeeze, Unsqueeze) is one
MIL `reshape` to the inferred output shape. Resize is lowered from the read tables the Resize
op computes at compile time (edgec/ops/resize.py: per resized axis, input positions and
weights for every output coordinate): a nearest integer upscale of H and W is MIL's
`upsample_nearest_neighbor`; anything else is, per axis, a `gather` per tap and a weighted
sum, which reproduces every ONNX coordinate mode exactly.
"""

from __future__ import annotations

import numpy as np

from edgec.codegen.coreml.ops_nn import F32_MAX, hardswish, prelu
from edgec.codegen.coreml.registry import Ctx, lowers
from edgec.errors import UnsupportedError
from edgec.ir import Node
from edgec.ops import get_op
from edgec.ops.resize import fractional_length_conflict

UNARY = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Log": "log",
         "Sqrt": "sqrt", "Abs": "abs", "Erf": "erf", "Softplus": "softplus",
         "Softsign": "softsign", "Sin": "sin", "Cos": "cos", "Ceil": "ceil", "Floor": "floor",
         "Sign": "sign"}
BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "real_div", "Pow": "pow"}


def _x(ctx: Ctx, node: Node, i: int = 0):
    """Input `i` as a Var or a float32 array (MIL wants float32 constants for float ops)."""
    v = ctx.x(node.input(i))
    if isinstance(v, np.ndarray) and v.dtype.kind == "f":
        return v.astype(np.float32)
    return v


def _out(ctx: Ctx, node: Node) -> str:
    return ctx.name(node.outputs[0])


@lowers(*UNARY)
def unary(ctx: Ctx, node: Node):
    """One-input functions with a MIL op of their own."""
    return getattr(ctx.mb, UNARY[node.op])(x=_x(ctx, node), name=_out(ctx, node))


@lowers(*BINARY)
def binary(ctx: Ctx, node: Node):
    """Two-input elementwise ops (numpy broadcasting, as in MIL)."""
    fn = getattr(ctx.mb, BINARY[node.op])
    return fn(x=_x(ctx, node, 0), y=_x(ctx, node, 1), name=_out(ctx, node))


@lowers("Identity", "Dropout")
def identity(ctx: Ctx, node: Node):
    """Identity and inference Dropout."""
    return ctx.mb.identity(x=_x(ctx, node), name=_out(ctx, node))


@lowers("Neg")
def neg(ctx: Ctx, node: Node):
    """-x as x * -1."""
    return ctx.mb.mul(x=_x(ctx, node), y=np.float32(-1), name=_out(ctx, node))


@lowers("Reciprocal")
def reciprocal(ctx: Ctx, node: Node):
    """1 / x as real_div (MIL's inverse adds an epsilon)."""
    return ctx.mb.real_div(x=np.float32(1), y=_x(ctx, node), name=_out(ctx, node))


@lowers("Clip")
def clip(ctx: Ctx, node: Node):
    """Clip with constant bounds (an absent bound is float32's largest magnitude)."""
    lo = max(float(node.attrs["min"]), -F32_MAX)
    hi = min(float(node.attrs["max"]), F32_MAX)
    return ctx.mb.clip(x=_x(ctx, node), alpha=np.float32(lo), beta=np.float32(hi),
                       name=_out(ctx, node))


@lowers("LeakyRelu", "Elu", "ThresholdedRelu")
def alpha_activation(ctx: Ctx, node: Node):
    """Activations with one alpha: leaky_relu, elu, thresholded_relu."""
    fn = {"LeakyRelu": ctx.mb.leaky_relu, "Elu": ctx.mb.elu,
          "ThresholdedRelu": ctx.mb.thresholded_relu}[node.op]
    return fn(x=_x(ctx, node), alpha=np.float32(node.attrs["alpha"]), name=_out(ctx, node))


@lowers("HardSigmoid")
def hard_sigmoid(ctx: Ctx, node: Node):
    """HardSigmoid -> sigmoid_hard (same alpha, beta)."""
    return ctx.mb.sigmoid_hard(x=_x(ctx, node), alpha=np.float32(node.attrs["alpha"]),
                               beta=np.float32(node.attrs["beta"]), name=_out(ctx, node))


@lowers("HardSwish")
def hard_swish(ctx: Ctx, node: Node):
    """HardSwish -> x * sigmoid_hard(x, 1/6, 1/2)."""
    return hardswish(ctx, _x(ctx, node), _out(ctx, node))


@lowers("PRelu")
def prelu_op(ctx: Ctx, node: Node):
    """PRelu with a constant slope (broadcast to x as ONNX says): a scalar slope is
    leaky_relu, any other relu(x) + slope * min(x, 0)."""
    slope = ctx.const(node.input(1), "slope", node).astype(np.float32)
    if slope.size == 1:
        return prelu(ctx, _x(ctx, node), slope, 1, _out(ctx, node))
    out = _out(ctx, node)
    x = _x(ctx, node)
    neg = ctx.mb.minimum(x=x, y=np.float32(0), name=out + "_neg")
    scaled = ctx.mb.mul(x=neg, y=slope, name=out + "_scaled")
    return ctx.mb.add(x=ctx.mb.relu(x=x, name=out + "_pos"), y=scaled, name=out)


@lowers("Gelu")
def gelu(ctx: Ctx, node: Node):
    """Gelu -> gelu (EXACT, or TANH_APPROXIMATION for approximate='tanh')."""
    mode = "TANH_APPROXIMATION" if node.attrs.get("approximate") == "tanh" else "EXACT"
    return ctx.mb.gelu(x=_x(ctx, node), mode=mode, name=_out(ctx, node))


@lowers("Flatten", "Reshape", "Squeeze", "Unsqueeze")
def reshape(ctx: Ctx, node: Node):
    """Views: reshape to the statically inferred output shape."""
    shape = [int(d) for d in node.outputs[0].shape]
    return ctx.mb.reshape(x=_x(ctx, node), shape=np.asarray(shape, np.int32),
                          name=_out(ctx, node))


@lowers("Transpose")
def transpose(ctx: Ctx, node: Node):
    """Transpose -> transpose (the model's own; the CoreML pipeline adds none)."""
    perm = node.attrs.get("perm") or list(reversed(range(len(node.input(0).shape))))
    return ctx.mb.transpose(x=_x(ctx, node), perm=[int(p) for p in perm], name=_out(ctx, node))


@lowers("Concat")
def concat(ctx: Ctx, node: Node):
    """Concat -> concat."""
    rank = len(node.outputs[0].shape)
    values = [_x(ctx, node, i) for i in range(len(node.inputs)) if node.input(i) is not None]
    return ctx.mb.concat(values=values, axis=int(node.attrs["axis"]) % rank,
                         name=_out(ctx, node))


@lowers("Split")
def split(ctx: Ctx, node: Node):
    """Split -> split with explicit sizes; every output bound."""
    rank = len(node.input(0).shape)
    axis = int(node.attrs["axis"]) % rank
    sizes = np.asarray([v.shape[axis] for v in node.outputs], np.int32)
    outs = ctx.mb.split(x=_x(ctx, node), split_sizes=sizes, axis=axis, name=_out(ctx, node))
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    for v, var in zip(node.outputs[1:], outs[1:]):
        ctx.bind(v, var)
    return outs[0]


@lowers("Slice")
def slice_op(ctx: Ctx, node: Node):
    """Slice -> slice_by_index with begin/end/stride for every axis (bounds resolved here)."""
    shape = node.input(0).shape
    begin, end, stride = [0] * len(shape), list(shape), [1] * len(shape)
    begin_mask, end_mask = [False] * len(shape), [False] * len(shape)
    a = node.attrs
    for ax, s, e, st in zip(a["axes"], a["starts"], a["ends"], a["steps"] or [1] * len(a["axes"])):
        start, stop, step = slice(int(s), int(e), int(st)).indices(shape[ax])
        begin[ax], end[ax], stride[ax] = start, stop, step
        if step < 0 and stop < 0:  # runs past index 0: MIL's end mask, not a wrapped -1
            end_mask[ax] = True
    return ctx.mb.slice_by_index(x=_x(ctx, node), begin=np.asarray(begin, np.int32),
                                 end=np.asarray(end, np.int32),
                                 stride=np.asarray(stride, np.int32), begin_mask=begin_mask,
                                 end_mask=end_mask, name=_out(ctx, node))


@lowers("Pad")
def pad(ctx: Ctx, node: Node):
    """Pad (constant, reflect, edge; no negative pads) -> pad over the trailing padded axes."""
    pads = [int(p) for p in node.attrs["pads"]]
    rank = len(pads) // 2
    if any(p < 0 for p in pads):
        raise UnsupportedError(f"CoreML: Pad '{node.name}' with negative pads (a crop)")
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}.get(
        node.attrs["mode"])
    if mode is None:
        raise UnsupportedError(f"CoreML: Pad '{node.name}' mode {node.attrs['mode']}")
    first = next((i for i in range(rank) if pads[i] or pads[i + rank]), rank)
    if mode != "constant":
        first = min(first, rank - 2)  # MIL pads the last two axes in these modes
    mil = []
    for i in range(first, rank):
        mil += [pads[i], pads[i + rank]]
    return ctx.mb.pad(x=_x(ctx, node), pad=np.asarray(mil, np.int32), mode=mode,
                      constant_val=np.float32(node.attrs.get("value") or 0.0),
                      name=_out(ctx, node))


@lowers("Softmax", "LogSoftmax")
def softmax(ctx: Ctx, node: Node):
    """Softmax over one axis -> softmax; over a trailing block (opset < 13) the block is
    flattened first. LogSoftmax: x - reduce_log_sum_exp(x)."""
    x, axes = _x(ctx, node), [int(a) for a in node.attrs["axes"]]
    shape = node.input(0).shape
    out = _out(ctx, node)
    flat = len(axes) > 1
    if flat:
        lead = int(np.prod(shape[:axes[0]], dtype=np.int64))
        x = ctx.mb.reshape(x=x, shape=np.asarray([lead, -1], np.int32), name=out + "_2d")
    axis = 1 if flat else axes[0]
    last = out + "_nd" if flat else out
    if node.op == "Softmax":
        y = ctx.mb.softmax(x=x, axis=axis, name=last)
    else:
        lse = ctx.mb.reduce_log_sum_exp(x=x, axes=[axis], keep_dims=True, name=out + "_lse")
        y = ctx.mb.sub(x=x, y=lse, name=last)
    if flat:
        y = ctx.mb.reshape(x=y, shape=np.asarray(shape, np.int32), name=out)
    return y


REDUCE = {"ReduceMean": "reduce_mean", "ReduceMax": "reduce_max", "ReduceMin": "reduce_min",
          "ReduceSum": "reduce_sum", "ReduceProd": "reduce_prod", "ReduceL1": "reduce_l1_norm",
          "ReduceL2": "reduce_l2_norm", "ReduceLogSumExp": "reduce_log_sum_exp",
          "ReduceSumSquare": "reduce_sum_square", "ReduceLogSum": "reduce_log_sum"}


@lowers(*REDUCE)
def reduce(ctx: Ctx, node: Node):
    """Reductions over constant axes (all axes when none are given)."""
    rank = len(node.input(0).shape)
    axes = node.attrs.get("axes")
    axes = list(range(rank)) if not axes else [int(a) % rank for a in axes]
    if not axes or any(node.input(0).shape[a] == 0 for a in axes):
        raise UnsupportedError(f"CoreML: {node.op} '{node.name}' over no or empty axes")
    fn = getattr(ctx.mb, REDUCE[node.op])
    return fn(x=_x(ctx, node), axes=axes, keep_dims=bool(node.attrs["keepdims"]),
              name=_out(ctx, node))


def _integer_upscale(tables, shape) -> list[int] | None:
    """[sh, sw] when the tables are a nearest integer upscale of H and W only (4-D)."""
    if len(shape) != 4 or any(t is not None for t in tables[:2]):
        return None
    factors = []
    for t, n in zip(tables[2:], shape[2:]):
        if t is None:
            factors.append(1)
            continue
        if t.weight is not None or t.valid is not None or len(t.index) % n:
            return None
        s = len(t.index) // n
        if not np.array_equal(t.index[:, 0], np.arange(len(t.index)) // s):
            return None
        factors.append(s)
    return factors


def _refuse_fractional_length(node: Node) -> None:
    """Refuse a coordinate mode whose answer depends on reading `length_resized` as the
    integer or the fractional output length (edgec/ops/resize.py): onnxruntime and the ONNX
    reference disagree there, so whichever the package computed, one of them calls it wrong."""
    x_shape, out_shape = node.input(0).shape, node.outputs[0].shape
    mode = node.attrs["coordinate_transformation_mode"]
    for axis, (n_in, n_out) in enumerate(zip(x_shape, out_shape)):
        width = fractional_length_conflict(node.attrs, axis, n_in, n_out)
        if width is not None:
            scale = float(np.float32(node.attrs["scales"][axis]))
            raise UnsupportedError(
                f"CoreML: Resize '{node.name}': coordinate_transformation_mode={mode} with "
                f"scales[{axis}]={scale:g} on length {n_in} gives {n_out} outputs from the "
                f"fractional length {width:g}; onnxruntime and the ONNX reference disagree "
                "there (give 'sizes' instead of 'scales')")


@lowers("Resize", "Upsample")
def resize(ctx: Ctx, node: Node):
    """Resize from edgec's read tables (module docstring)."""
    if node.attrs.get("layout", "NCHW") != "NCHW":
        raise UnsupportedError(f"CoreML: Resize '{node.name}' is not channels-first")
    _refuse_fractional_length(node)
    tables = get_op(node.op).tables(node)
    out = _out(ctx, node)
    x = _x(ctx, node)
    factors = _integer_upscale(tables, node.input(0).shape)
    if factors is not None:
        return ctx.mb.upsample_nearest_neighbor(
            x=x, scale_factor_height=int(factors[0]), scale_factor_width=int(factors[1]),
            name=out)
    todo = [(axis, t) for axis, t in enumerate(tables) if t is not None]
    if not todo:
        return ctx.mb.identity(x=x, name=out)
    rank = len(node.input(0).shape)
    for step, (axis, t) in enumerate(todo):
        if t.valid is not None:
            raise UnsupportedError(f"CoreML: Resize '{node.name}': tf_crop_and_resize "
                                   "extrapolation has no lowering")
        name = out if step == len(todo) - 1 else ctx.name(node.outputs[0], f"_axis{axis}")
        if t.weight is None:
            x = ctx.mb.gather(x=x, indices=t.index[:, 0].astype(np.int32), axis=axis, name=name)
            continue
        bshape = [1] * rank
        bshape[axis] = len(t.index)
        acc = None
        for k in range(t.taps):
            tap = ctx.mb.gather(x=x, indices=t.index[:, k].astype(np.int32), axis=axis,
                                name=f"{name}_tap{k}")
            w = t.weight[:, k].astype(np.float32).reshape(bshape)
            last = k == t.taps - 1
            term = ctx.mb.mul(x=tap, y=w, name=f"{name}_w{k}")
            acc = term if acc is None else ctx.mb.add(x=acc, y=term,
                                                      name=name if last else f"{name}_s{k}")
        if t.taps == 1:
            acc = ctx.mb.identity(x=acc, name=name)
        x = acc
    return x
