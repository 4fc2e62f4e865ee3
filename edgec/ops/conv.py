"""Conv: N-d convolution (grouped, depthwise, dilated, strided, every auto_pad).

IR canonical form: explicit `pads` (auto_pad resolved at import), `kernel_shape`, `strides`,
`dilations` always present; weights stay in ONNX order [M, C/group, k...]; `layout` says
whether activations are channels-first (as imported) or channels-last (after the layout
pass); `activation` names a fused epilogue (see epilogue.py). C kernels exist for the
channels-last layout with 1 or 2 spatial dims; weights are repacked at compile time:
depthwise as [kh, kw, C], everything else as [group][kh, kw, C/group, M/group] so that the
innermost loop runs over contiguous output channels.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edgec.errors import ShapeError
from edgec.ir import Node, TensorType
from edgec.ops import prune_facet
from edgec.ops.base import Attr, OpDef, PruneRule, in_type
from edgec.ops.common import FLOATS, check_window, require_dtypes
from edgec.ops.epilogue import EPILOGUE_ATTRS, apply_epilogue_np
from edgec.ops.int8_layers import CONV_INT8
from edgec.ops.registry import register_op

LAYOUTS = ("NCHW", "NHWC")


def resolve_auto_pad(auto_pad: str, in_sizes, kernel, strides, dilations) -> list[int]:
    """Explicit [begin..., end...] pads for SAME_UPPER / SAME_LOWER / VALID."""
    begins, ends = [], []
    for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
        if auto_pad == "VALID":
            begins.append(0)
            ends.append(0)
            continue
        out = -(-size // s)
        total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
        small, big = total // 2, total - total // 2
        if auto_pad == "SAME_UPPER":
            begins.append(small)
            ends.append(big)
        else:
            begins.append(big)
            ends.append(small)
    return begins + ends


def conv_out_size(size: int, k: int, s: int, d: int, pb: int, pe: int) -> int:
    """Output length along one spatial axis."""
    return (size + pb + pe - d * (k - 1) - 1) // s + 1


def spatial_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """The spatial dims of an activation shape in `layout`."""
    return tuple(shape[2:]) if layout == "NCHW" else tuple(shape[1:-1])


def channels(shape: tuple[int, ...], layout: str) -> int:
    """The channel count of an activation shape in `layout`."""
    return shape[1] if layout == "NCHW" else shape[-1]


def make_shape(n: int, c: int, spatial, layout: str) -> tuple[int, ...]:
    """Compose an activation shape from batch, channels and spatial dims."""
    return (n, c, *spatial) if layout == "NCHW" else (n, *spatial, c)


def to_nchw(x: np.ndarray, layout: str) -> np.ndarray:
    """View a channels-last array as channels-first (no-op for NCHW)."""
    if layout == "NCHW":
        return x
    return np.moveaxis(x, -1, 1)


def from_nchw(x: np.ndarray, layout: str) -> np.ndarray:
    """Inverse of `to_nchw`."""
    if layout == "NCHW":
        return x
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


def conv_nchw(x, w, b, strides, dilations, pads, group) -> np.ndarray:
    """Reference N-d grouped convolution on channels-first data (float64 accumulation)."""
    nsp = x.ndim - 2
    n, c = x.shape[:2]
    m = w.shape[0]
    k = w.shape[2:]
    pad_width = [(0, 0), (0, 0)] + [(pads[i], pads[i + nsp]) for i in range(nsp)]
    xp = np.pad(x.astype(np.float64), pad_width)
    win = [d * (kk - 1) + 1 for kk, d in zip(k, dilations)]
    views = sliding_window_view(xp, win, axis=tuple(range(2, 2 + nsp)))
    index = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)
    index += tuple(slice(None, None, d) for d in dilations)
    views = views[index]  # [N, C, out..., k...]
    cg, mg = c // group, m // group
    views = views.reshape(n, group, cg, *views.shape[2:])
    wg = w.astype(np.float64).reshape(group, mg, cg, *k)
    sp = "hwd"[:nsp]
    ks = "ijk"[:nsp]
    y = np.einsum(f"ngc{sp}{ks},gmc{ks}->ngm{sp}", views, wg, optimize=True)
    y = y.reshape(n, m, *y.shape[3:])
    if b is not None:
        y = y + b.astype(np.float64).reshape(1, m, *([1] * nsp))
    return y


# Geometry of a convolution in canonical IR form (auto_pad already resolved into pads);
# shared by Conv, QConv and ONNX's quantised convolutions.
CONV_GEOMETRY_ATTRS = {
    "dilations": Attr("ints", ()),
    "group": Attr("int", 1),
    "kernel_shape": Attr("ints", ()),
    "pads": Attr("ints", ()),
    "strides": Attr("ints", ()),
    "layout": Attr("str", "NCHW", LAYOUTS),
}
# As imported from ONNX: auto_pad too (import_onnx resolves it and sets NOTSET).
CONV_ATTRS = {
    "auto_pad": Attr("str", "NOTSET", ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")),
    **CONV_GEOMETRY_ATTRS,
}


@register_op("Conv")
class Conv(OpDef):
    """ONNX Conv (+ fused bias, residual and activation epilogue in the IR)."""

    attrs = {
        **CONV_ATTRS,
        # Layout of input 0 when it differs from `layout` (the first layer reading the
        # model's channels-first input directly, instead of a separate transpose kernel).
        "input_layout": Attr("str", "", ("", "NCHW")),
        **EPILOGUE_ATTRS,
    }
    quant = CONV_INT8
    prune = PruneRule.PRODUCER
    dtypes = FLOATS
    spatial = True
    layout_inputs = (0, 3)  # data and the fused residual follow the activation layout

    def prune_flow(self, node: Node, in_axes):
        """Prune facet: output channels own weight rows and bias; input channels slice weight
        columns. Grouped (and depthwise) convs couple each group's input and output channels,
        so whole groups go and `group` follows."""
        a = node.attrs
        w = node.input(1)
        if a.get("layout", "NCHW") != "NCHW" or a.get("input_layout") or len(node.inputs) > 3 \
                or not w.is_const or in_axes[0] != 1:
            return None
        pf = prune_facet
        flow = pf.PruneFlow(out_axes=[1], free_inputs={0})
        flow.params.append(pf.ParamSlice(1, 0, pf.OUT0, role="filter"))
        if node.input(2) is not None:
            flow.params.append(pf.ParamSlice(2, 0, pf.OUT0))
        groups = a["group"]
        if groups == 1:
            flow.params.append(pf.ParamSlice(1, 1, pf.IN0, role="consumer"))
            return flow
        per_in, per_out = w.shape[1], w.shape[0] // groups
        ins, outs = pf.identity(groups * per_in), pf.identity(groups * per_out)
        flow.couplings.append((pf.IN0, ins, pf.OUT0, (ins // per_in) * per_out))
        flow.couplings.append((pf.OUT0, outs, pf.IN0, (outs // per_out) * per_in))
        flow.updates.append(pf.AttrUpdate("group", None,
                                          lambda kept, old: len(kept[pf.OUT0]) // per_out))
        return flow

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes, range(len(node.inputs)))
        x, w = in_type(node, 0), in_type(node, 1)
        a = node.attrs
        if x.rank < 3 or w.rank != x.rank:
            raise ShapeError(f"Conv node '{node.name}': input rank {x.rank} and weight rank "
                             f"{w.rank} do not form a convolution")
        nsp = x.rank - 2
        a.setdefault("kernel_shape", list(w.shape[2:]))
        a["strides"] = list(a.get("strides") or [1] * nsp)
        a["dilations"] = list(a.get("dilations") or [1] * nsp)
        check_window(node, nsp, a["kernel_shape"], a["strides"], a["dilations"])
        auto_pad = a.get("auto_pad", "NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad not in ("NOTSET", ""):
            a["pads"] = resolve_auto_pad(auto_pad, x.shape[2:], a["kernel_shape"],
                                         a["strides"], a["dilations"])
        a["auto_pad"] = "NOTSET"
        a["pads"] = list(a.get("pads") or [0] * (2 * nsp))

    def infer(self, node: Node) -> list[TensorType]:
        x, w = in_type(node, 0), in_type(node, 1)
        a = node.attrs
        layout = a["layout"]
        x_layout = a.get("input_layout") or layout
        nsp = x.rank - 2
        spatial = spatial_shape(x.shape, x_layout)
        pads = a["pads"]
        group = a["group"]
        check_window(node, nsp, a["kernel_shape"], a["strides"], a["dilations"], pads)
        if list(a["kernel_shape"]) != list(w.shape[2:]):
            raise ShapeError(f"Conv node '{node.name}': kernel_shape {a['kernel_shape']} differs "
                             f"from the weights {w.shape}")
        b = node.input(2)
        if b is not None and b.shape != (w.shape[0],):
            raise ShapeError(f"Conv node '{node.name}': bias of shape {b.shape} does not fit "
                             f"{w.shape[0]} output channels")
        c = channels(x.shape, x_layout)
        if group < 1 or w.shape[1] * group != c or w.shape[0] % group:
            raise ShapeError(
                f"Conv node '{node.name}': weight {w.shape} does not fit {c} input channels "
                f"in {group} group(s)"
            )
        out_sp = [
            conv_out_size(spatial[i], a["kernel_shape"][i], a["strides"][i], a["dilations"][i],
                          pads[i], pads[i + nsp])
            for i in range(nsp)
        ]
        if any(o <= 0 for o in out_sp):
            raise ShapeError(f"Conv node '{node.name}': output would be empty ({out_sp})")
        return [TensorType(make_shape(x.shape[0], w.shape[0], out_sp, layout), x.dtype)]

    def reference(self, node: Node, x, w, b=None, residual=None):
        a = node.attrs
        layout = a["layout"]
        x_layout = a.get("input_layout") or layout
        y = conv_nchw(to_nchw(x, x_layout), w, b, a["strides"], a["dilations"], a["pads"],
                      a["group"])
        y = from_nchw(y, layout)
        y = apply_epilogue_np(y, node, residual, channel_axis=1 if layout == "NCHW" else -1)
        return (y.astype(x.dtype),)

    def macs(self, node: Node) -> int:
        w = in_type(node, 1)
        out = node.output.type
        return out.numel * int(np.prod(w.shape[1:]))

    @staticmethod
    def is_depthwise(node: Node) -> bool:
        """One input channel per group and one output channel per input channel."""
        w = in_type(node, 1)
        return node.attrs["group"] > 1 and w.shape[1] == 1 and w.shape[0] == node.attrs["group"]

