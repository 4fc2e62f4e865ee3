"""ConvTranspose: N-d transposed (fractionally strided) convolution, grouped and dilated.

IR canonical form: `output_shape` and auto_pad are resolved at import into explicit `pads`
and `output_padding` (auto_pad becomes NOTSET), so that along every spatial axis

    out = stride * (in - 1) + output_padding + dilation * (kernel - 1) + 1 - pad_begin - pad_end

An output_shape larger than the natural size (negative total padding) becomes extra
output_padding, as onnxruntime does. Output position o gathers input i through tap k when
i * stride + k * dilation == o + pad_begin. Weights stay in ONNX order [C, M/group, k...];
the C kernel (channels-last, 1 or 2 spatial dims) uses that gather formulation, one output
pixel at a time like Conv, with weights packed at compile time as [group][kh][kw][C/group]
[M/group] so that the innermost loop runs over contiguous output channels. The fused
epilogue attributes are those of Conv (see epilogue.py).
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError
from edgec.ir import Node, TensorType
from edgec.ops import prune_facet
from edgec.ops.base import Attr, OpDef, PruneRule, QuantRule, in_type
from edgec.ops.common import FLOATS, check_window, require_dtypes
from edgec.ops.conv import LAYOUTS, channels, from_nchw, make_shape, spatial_shape, to_nchw
from edgec.ops.epilogue import EPILOGUE_ATTRS, apply_epilogue_np
from edgec.ops.registry import register_op


def transpose_out_size(size: int, k: int, s: int, d: int, pb: int, pe: int, adj: int) -> int:
    """Output length of a transposed convolution along one axis."""
    return s * (size - 1) + adj + d * (k - 1) + 1 - pb - pe


def resolve_output_shape(auto_pad: str, in_sizes, out_sizes, kernel, strides, dilations,
                         output_padding) -> tuple[list[int], list[int]]:
    """(pads, output_padding) giving `out_sizes`, split as the ONNX spec says."""
    begins, ends, adjs = [], [], []
    for size, out, k, s, d, adj in zip(in_sizes, out_sizes, kernel, strides, dilations,
                                       output_padding):
        total = s * (size - 1) + adj + d * (k - 1) + 1 - out
        if total < 0:  # larger than the natural size: the extra tail receives only bias
            begins.append(0)
            ends.append(0)
            adjs.append(adj - total)
            continue
        small, big = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else big)
        ends.append(big if auto_pad == "SAME_UPPER" else small)
        adjs.append(adj)
    return begins + ends, adjs


def conv_transpose_nchw(x, w, b, strides, dilations, pads, output_padding, group):
    """Reference transposed convolution on channels-first data (float64 scatter-add)."""
    nsp = x.ndim - 2
    n, c = x.shape[:2]
    mg, k = w.shape[1], w.shape[2:]
    cg = c // group
    full = [s * (i - 1) + d * (kk - 1) + 1 + adj
            for i, kk, s, d, adj in zip(x.shape[2:], k, strides, dilations, output_padding)]
    y = np.zeros((n, group, mg, *full))
    xg = x.astype(np.float64).reshape(n, group, cg, *x.shape[2:])
    wg = w.astype(np.float64).reshape(group, cg, mg, *k)
    sp = "hwd"[:nsp]
    for tap in np.ndindex(*k):
        contrib = np.einsum(f"ngc{sp},gcm->ngm{sp}", xg, wg[(slice(None),) * 3 + tap])
        index = tuple(slice(t * d, t * d + s * (i - 1) + 1, s)
                      for t, d, s, i in zip(tap, dilations, strides, x.shape[2:]))
        y[(slice(None),) * 3 + index] += contrib
    crop = tuple(slice(pads[i], full[i] - pads[i + nsp]) for i in range(nsp))
    y = y.reshape(n, group * mg, *full)[(slice(None), slice(None)) + crop]
    if b is not None:
        y = y + b.astype(np.float64).reshape(1, -1, *([1] * nsp))
    return y


@register_op("ConvTranspose")
class ConvTranspose(OpDef):
    """ONNX ConvTranspose (+ fused residual and activation epilogue in the IR)."""

    attrs = {
        "auto_pad": Attr("str", "NOTSET", ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")),
        "dilations": Attr("ints", ()),
        "group": Attr("int", 1),
        "kernel_shape": Attr("ints", ()),
        "output_padding": Attr("ints", ()),
        "pads": Attr("ints", ()),
        "strides": Attr("ints", ()),
        "layout": Attr("str", "NCHW", LAYOUTS),
        **EPILOGUE_ATTRS,
    }
    quant = QuantRule.REQUANTIZE
    prune = PruneRule.PRODUCER
    spatial = True
    layout_inputs = (0, 3)  # data and the fused residual follow the activation layout
    dtypes = FLOATS

    def prune_flow(self, node: Node, in_axes):
        """Prune facet (group 1 only): input channels slice weight axis 0, output channels
        weight axis 1 and the bias."""
        a = node.attrs
        if a.get("layout", "NCHW") != "NCHW" or a["group"] != 1 or len(node.inputs) > 3 \
                or not node.input(1).is_const or in_axes[0] != 1:
            return None
        pf = prune_facet
        flow = pf.PruneFlow(out_axes=[1], free_inputs={0})
        flow.params += [pf.ParamSlice(1, 1, pf.OUT0, role="filter"),
                        pf.ParamSlice(1, 0, pf.IN0, role="consumer")]
        if node.input(2) is not None:
            flow.params.append(pf.ParamSlice(2, 0, pf.OUT0))
        return flow

    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes, range(len(node.inputs)))
        x, w = in_type(node, 0), in_type(node, 1)
        a = node.attrs
        if x.rank < 3 or w.rank != x.rank:
            raise ShapeError(f"ConvTranspose node '{node.name}': input rank {x.rank} and "
                             f"weight rank {w.rank} do not form a convolution")
        nsp = x.rank - 2
        if list(a.get("kernel_shape") or w.shape[2:]) != list(w.shape[2:]):
            raise ShapeError(f"ConvTranspose node '{node.name}': kernel_shape "
                             f"{a['kernel_shape']} differs from the weights {w.shape}")
        a["kernel_shape"] = list(w.shape[2:])
        a["strides"] = list(a.get("strides") or [1] * nsp)
        a["dilations"] = list(a.get("dilations") or [1] * nsp)
        a["output_padding"] = list(a.get("output_padding") or [0] * nsp)
        check_window(node, nsp, a["kernel_shape"], a["strides"], a["dilations"])
        auto_pad = a.get("auto_pad", "NOTSET") or "NOTSET"
        out_shape = a.pop("output_shape", None)
        if out_shape is not None and len(out_shape) == nsp + 2:
            out_shape = list(out_shape)[2:]  # some exporters include N and C
        if out_shape is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out_shape = [i * s for i, s in zip(x.shape[2:], a["strides"])]
        if out_shape is not None:
            if len(out_shape) != nsp:
                raise ShapeError(f"ConvTranspose node '{node.name}': output_shape {out_shape} "
                                 f"does not have {nsp} spatial sizes")
            a["pads"], a["output_padding"] = resolve_output_shape(
                auto_pad, x.shape[2:], out_shape, a["kernel_shape"], a["strides"],
                a["dilations"], a["output_padding"])
        elif auto_pad == "VALID":
            a["pads"] = [0] * (2 * nsp)
        a["auto_pad"] = "NOTSET"
        a["pads"] = list(a.get("pads") or [0] * (2 * nsp))

    def infer(self, node: Node) -> list[TensorType]:
        x, w = in_type(node, 0), in_type(node, 1)
        a = node.attrs
        layout, group = a["layout"], a["group"]
        sp = spatial_shape(x.shape, layout)
        nsp = len(sp)
        c = channels(x.shape, layout)
        if group < 1 or w.shape[0] != c or c % group:
            raise ShapeError(f"ConvTranspose node '{node.name}': weight {w.shape} does not fit "
                             f"{c} input channels in {group} group(s)")
        m = w.shape[1] * group
        b = node.input(2)
        if b is not None and b.type.numel != m:
            raise ShapeError(f"ConvTranspose node '{node.name}': bias has {b.type.numel} values "
                             f"for {m} output channels")
        pads = a["pads"]
        out_sp = [transpose_out_size(sp[i], a["kernel_shape"][i], a["strides"][i],
                                     a["dilations"][i], pads[i], pads[i + nsp],
                                     a["output_padding"][i]) for i in range(nsp)]
        if any(o <= 0 for o in out_sp):
            raise ShapeError(f"ConvTranspose node '{node.name}': output would be empty ({out_sp})")
        return [TensorType(make_shape(x.shape[0], m, out_sp, layout), x.dtype)]

    def reference(self, node: Node, x, w, b=None, residual=None):
        a = node.attrs
        layout = a["layout"]
        y = conv_transpose_nchw(to_nchw(x, layout), w, b, a["strides"], a["dilations"],
                                a["pads"], a["output_padding"], a["group"])
        y = from_nchw(y, layout)
        y = apply_epilogue_np(y, node, residual, channel_axis=1 if layout == "NCHW" else -1)
        return (y.astype(x.dtype),)

    def macs(self, node: Node) -> int:
        x, w = in_type(node, 0), in_type(node, 1)
        return x.numel * int(np.prod(w.shape[1:]))  # every input value meets M/group * k taps

