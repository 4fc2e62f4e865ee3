"""Helpers shared by the fusion passes: which producers can absorb an epilogue, and how to
read a constant as one value per channel."""

from __future__ import annotations

import numpy as np

from edgec.ir import Graph, Node, Value

# Ops with a fused epilogue (edgec/ops/epilogue.py) and the axis of their output channels.
EPILOGUE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def channel_axis(node: Node) -> int:
    """Axis of the output channels of an epilogue op."""
    if node.op in ("Conv", "ConvTranspose"):
        return 1 if node.attrs.get("layout", "NCHW") == "NCHW" else len(node.output.shape) - 1
    return len(node.output.shape) - 1


def fusable_producer(g: Graph, v: Value, ops=EPILOGUE_OPS, allow_activation=False) -> Node | None:
    """The producer of `v` if it is one of `ops`, `v` is read only once and is no graph
    output, and the producer has no activation yet (unless allowed)."""
    node = v.producer
    if node is None or node.op not in ops or len(node.outputs) != 1:
        return None
    if len(v.uses) != 1 or v in g.outputs:
        return None
    if not allow_activation and node.attrs.get("activation", "none") != "none":
        return None
    return node


def per_channel(data: np.ndarray, out_shape: tuple[int, ...], axis: int) -> np.ndarray | None:
    """A constant broadcast against `out_shape` as one value per channel along `axis`, or None
    when it varies along any other axis (or would broadcast the output to a larger shape)."""
    data = np.asarray(data)
    rank = len(out_shape)
    if data.ndim > rank:
        return None
    full = data.reshape((1,) * (rank - data.ndim) + data.shape)
    for d in range(rank):
        if full.shape[d] not in (1, out_shape[d]):
            return None
        if d != axis and full.shape[d] != 1:
            return None
    c = out_shape[axis]
    return np.broadcast_to(full.reshape(-1), (c,)).astype(np.float32).copy() \
        if full.shape[axis] in (1, c) else None


def output_channels_weight_view(node: Node, w: np.ndarray) -> tuple[np.ndarray, int]:
    """Weights reshaped so that axis 0 enumerates output channels; returns (view, M)."""
    if node.op == "Conv":
        return w, w.shape[0]
    if node.op == "ConvTranspose":
        group = node.attrs.get("group", 1)
        cin, mg = w.shape[0], w.shape[1]
        k = w.shape[2:]
        wg = w.reshape(group, cin // group, mg, *k)
        view = np.moveaxis(wg, 2, 1).reshape(group * mg, cin // group, *k)
        return view, group * mg
    raise ValueError(node.op)


def scale_output_channels(node: Node, w: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Weights of a Conv/ConvTranspose with output channel m scaled by s[m]."""
    if node.op == "Conv":
        return (w * s.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
    group = node.attrs.get("group", 1)
    cin, mg = w.shape[0], w.shape[1]
    k = w.shape[2:]
    wg = w.reshape(group, cin // group, mg, *k) * s.reshape(group, 1, mg, *([1] * len(k)))
    return wg.reshape(w.shape).astype(np.float32)
