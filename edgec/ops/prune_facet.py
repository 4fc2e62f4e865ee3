"""The prune facet's vocabulary: how channel indices flow through one node.

`OpDef.prune_flow(node, in_axes)` answers, for a node whose non-constant inputs carry
channels on the axes `in_axes` (None: untracked or constant), with a `PruneFlow`:

- `out_axes`: the channel axis of each output;
- `couplings`: (ref_a, idx_a, ref_b, idx_b): channel idx_a[k] of ref_a must be removed
  together with channel idx_b[k] of ref_b (residual operands, depthwise conv, concat offsets);
- `params`: constant inputs sliced along an axis by the channels kept in a ref (weights,
  biases, BatchNorm vectors, a Gemm's feature blocks);
- `free_inputs`: inputs whose channels may be removed with no other effect than `params`
  (a conv's input channels only slice its weights);
- `updates`: attributes recomputed from the kept channels (conv `group`, Reshape `shape`).

A ref is ("in", i) or ("out", i). None means the op blocks pruning of every channel it
touches; pruning names the node. Helpers here build the common flows (elementwise with
broadcasting, concatenation, views) so op modules stay one method long.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

Ref = tuple[str, int]
IN0: Ref = ("in", 0)
OUT0: Ref = ("out", 0)


@dataclass
class ParamSlice:
    """Constant input `input` is sliced along `axis` by the channels kept in `ref`.

    `index[p]` is the channel of `ref` that position p of the axis belongs to (identity when
    None). `role`: "filter" (a producer's weights of one output channel), "consumer" (weights
    reading the channel), "bn_scale" (BatchNorm gamma) or "affine" (bias and the like)."""

    input: int
    axis: int
    ref: Ref
    index: np.ndarray | None = None
    role: str = "affine"


@dataclass
class AttrUpdate:
    """Attribute `attr` (ONNX input `onnx_input` when the model passes it as an input) gets
    `value(kept, old)`: kept channel indices per ref, the current value -> the new value."""

    attr: str
    onnx_input: int | None
    value: Callable[[dict[Ref, np.ndarray], Any], Any]


@dataclass
class PruneFlow:
    """How channels flow through one node (see the module docstring)."""

    out_axes: list[int | None]
    couplings: list[tuple[Ref, np.ndarray, Ref, np.ndarray]] = field(default_factory=list)
    params: list[ParamSlice] = field(default_factory=list)
    free_inputs: set[int] = field(default_factory=set)
    updates: list[AttrUpdate] = field(default_factory=list)


def identity(n: int) -> np.ndarray:
    """Channel indices 0..n-1."""
    return np.arange(n, dtype=np.int64)


def passthrough_flow(channels: int, out_axis: int) -> PruneFlow:
    """Input 0's channel c is the output's channel c (on output axis `out_axis`)."""
    flow = PruneFlow(out_axes=[out_axis])
    flow.couplings.append((IN0, identity(channels), OUT0, identity(channels)))
    return flow


def broadcast_flow(node, in_axes: list[int | None]) -> PruneFlow | None:
    """Elementwise ops with multidirectional broadcasting (unary ops, Add/Mul/Sub/Div, PRelu,
    pools, Resize): non-constant operands of full channel size are coupled channel for
    channel; constant operands of channel size (per-channel scale, bias, slope) are sliced;
    operands of size 1 on the channel axis broadcast and are left alone."""
    out = node.outputs[0]
    rank = len(out.shape)
    if any(v.shape != out.shape for v in node.outputs[1:]):
        return None
    axes = {a + rank - len(node.inputs[i].shape)
            for i, a in enumerate(in_axes) if a is not None}
    if len(axes) != 1:
        return None
    axis = axes.pop()
    channels = out.shape[axis]
    flow = PruneFlow(out_axes=[axis] * len(node.outputs))
    for i, v in enumerate(node.inputs):
        if v is None:
            continue
        d = axis - (rank - len(v.shape))
        if d < 0 or v.shape[d] == 1:
            if not v.is_const:
                flow.free_inputs.add(i)
            continue
        if v.shape[d] != channels:
            return None
        if v.is_const:
            flow.params.append(ParamSlice(i, d, OUT0))
        elif in_axes[i] != d:
            return None
        else:
            for o in range(len(node.outputs)):
                flow.couplings.append((("in", i), identity(channels), ("out", o),
                                       identity(channels)))
    return flow


def concat_flow(node, in_axes: list[int | None], axis: int) -> PruneFlow | None:
    """Concat: along the channel axis, input k's channel i is output channel offset_k + i;
    along another axis every input's channel i is output channel i."""
    rank = len(node.outputs[0].shape)
    axis = axis + rank if axis < 0 else axis
    tracked = {a for a in in_axes if a is not None}
    if len(tracked) != 1 or any(v is not None and v.is_const for v in node.inputs):
        return None
    channel_axis = tracked.pop()
    flow = PruneFlow(out_axes=[channel_axis])
    offset = 0
    for i, v in enumerate(node.inputs):
        n = v.shape[channel_axis]
        if axis == channel_axis:
            flow.couplings.append((("in", i), identity(n), OUT0, identity(n) + offset))
            offset += n
        else:
            flow.couplings.append((("in", i), identity(n), OUT0, identity(n)))
    return flow


def view_flow(node, in_axes: list[int | None]) -> PruneFlow | None:
    """Reshape, Flatten, Squeeze, Unsqueeze: the output axis whose leading dims hold as many
    elements as the input's dims before the channel axis carries the channels, either alone
    (same size) or merged with the dims after it (Flatten before a Gemm: channel c becomes
    the feature block [c*k, (c+1)*k))."""
    a = in_axes[0] if in_axes else None
    if a is None:
        return None
    d = node.inputs[0].shape
    e = node.outputs[0].shape
    before = math.prod(d[:a])
    for b in range(len(e)):
        if math.prod(e[:b]) == before:
            if e[b] % d[a] or math.prod(d[a:]) % e[b]:
                continue
            k = e[b] // d[a]
            flow = PruneFlow(out_axes=[b])
            flow.couplings.append((IN0, np.repeat(identity(d[a]), k), OUT0, identity(e[b])))
            return flow
        if math.prod(e[:b]) > before:
            break
    return None


def reshape_update(out_axis: int) -> AttrUpdate:
    """Reshape's target shape after pruning: the channel entry follows the kept count (0 and
    -1 entries stay as they are)."""
    def value(kept, old):
        shape = [int(s) for s in np.asarray(old).reshape(-1)]
        if shape[out_axis] > 0:
            shape[out_axis] = len(kept[OUT0])
        return shape
    return AttrUpdate("shape", 1, value)
