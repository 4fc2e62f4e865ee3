"""C kernels of fp32 Conv and ConvTranspose (channels-last, 1-D or 2-D).

Candidates, in order:
  x86:      `ops/x86/conv_{dw,gemm,winograd}` when isa/x86_f32.conv_kernel picks one;
  arm64:    `ops/arm64/{gemm,conv_dw,conv}_f32` for channels-last input (isa/arm64_f32.py);
  portable: `ops/conv_depthwise` (one channel per group, channels-last input), else
            `ops/conv` (any group, channels-first or channels-last input).
The portable weight packing is [kh][kw][C] (depthwise) or [g][kh][kw][cg][mg].
"""

from __future__ import annotations

import numpy as np

from edgec.errors import UnsupportedError
from edgec.ir import Node
from edgec.ops.base import OpDef, in_type
from edgec.ops.conv import Conv
from edgec.codegen.c.epilogue import epilogue_c
from edgec.codegen.c.isa import arm64_f32, x86_f32
from edgec.codegen.c.kernel import PORTABLE, Candidate, Kernel, register_candidates, \
    register_guard
from edgec.codegen.c.kernel import ConstArray


def _refuse_unsupported(node: Node) -> None:
    a = node.attrs
    what = "Conv" if node.op == "Conv" else "ConvTranspose"
    if a["layout"] != "NHWC":
        raise UnsupportedError(f"{what} node '{node.name}': C kernels need channels-last data")
    if len(a["kernel_shape"]) > 2:
        kind = "convolution" if node.op == "Conv" else "transposed convolution"
        raise UnsupportedError(f"{what} node '{node.name}': 3-D {kind} has no C kernel")


def conv_geometry(node: Node) -> dict:
    """Loop bounds of a 1-D or 2-D channels-last Conv (1-D runs as 2-D with height 1)."""
    a = node.attrs
    x, w = in_type(node, 0), node.input(1)
    nsp = x.rank - 2
    k = ([1] if nsp == 1 else []) + list(a["kernel_shape"])
    s = ([1] if nsp == 1 else []) + list(a["strides"])
    d = ([1] if nsp == 1 else []) + list(a["dilations"])
    pads = a["pads"]
    pb = ([0] if nsp == 1 else []) + list(pads[:nsp])
    x_nchw = a.get("input_layout") == "NCHW"
    in_sp = ([1] if nsp == 1 else []) + list(x.shape[2:] if x_nchw else x.shape[1:-1])
    out_sp = ([1] if nsp == 1 else []) + list(node.output.shape[1:-1])
    group = a["group"]
    m = w.shape[0]
    c = x.shape[1] if x_nchw else x.shape[-1]
    return {
        "N": x.shape[0], "H": in_sp[0], "W": in_sp[1], "C": c,
        "OH": out_sp[0], "OW": out_sp[1], "M": m,
        "KH": k[0], "KW": k[1], "SH": s[0], "SW": s[1], "DH": d[0], "DW": d[1],
        "PT": pb[0], "PL": pb[1], "G": group, "CG": c // group, "MG": m // group,
        "has_bias": node.input(2) is not None,
        "x_nchw": x_nchw,
    }


def portable_conv_params(node: Node) -> dict:
    """Parameters of the portable Conv templates: geometry, packed weights, epilogue."""
    a = node.attrs
    geo = conv_geometry(node)
    wd = OpDef.const_input(node, 1, "W")
    m, c, group = geo["M"], geo["C"], geo["G"]
    w4 = wd.reshape(m, c // group, geo["KH"], geo["KW"])
    if Conv.is_depthwise(node) and not geo["x_nchw"]:
        packed = np.transpose(w4[:, 0], (1, 2, 0))  # [kh, kw, C]
    else:
        packed = w4.reshape(group, m // group, c // group, geo["KH"], geo["KW"])
        packed = np.transpose(packed, (0, 3, 4, 2, 1))  # [g, kh, kw, cg, mg]
    if a["activation"] == "prelu":
        geo["prelu_slope"] = ConstArray(np.asarray(a["act_slope"], np.float32), "slope")
    geo["weights"] = ConstArray(np.ascontiguousarray(packed, dtype=np.float32), "w_packed")
    geo["epilogue"] = epilogue_c(node, "acc", channel="m", slope_name="act_slope_arr")
    return geo


def _x86_kind(node: Node, target, scratch) -> str | None:
    return scratch.once("x86", lambda: x86_f32.conv_kernel(node, target, Conv.is_depthwise(node)))


def _x86_build(node: Node, target, scratch) -> Kernel:
    kind = _x86_kind(node, target, scratch)
    make = {"gemm": x86_f32.conv_gemm_params, "dw": x86_f32.conv_dw_params,
            "winograd": x86_f32.conv_winograd_params}[kind]
    geo = conv_geometry(node)
    params = {**geo, **make(node, geo, OpDef.const_input(node, 1, "W"))}
    return Kernel(f"ops/x86/conv_{kind}.c.j2", params, x86_f32.RUNTIME)


def _neon_accepts(node: Node, target, scratch) -> bool:
    return arm64_f32.is_arm64(target) and (not node.attrs["input_layout"]
                                           or arm64_f32.nchw_applies(node, target))


def _neon_build(node: Node, target, scratch) -> Kernel:
    if node.attrs["input_layout"]:  # the stem reading the channels-first model input
        params = arm64_f32.conv_nchw_params(node, portable_conv_params(node))
        return Kernel(arm64_f32.NCHW_TEMPLATE, params, arm64_f32.F32_RUNTIME)
    template = arm64_f32.conv_template(node, target, arm64_f32.conv_kind(node), False)
    params = arm64_f32.conv_params(node, target, portable_conv_params(node))
    if params.get("dw3"):
        template = arm64_f32.DW3_TEMPLATE
    return Kernel(template, params, arm64_f32.runtime_for(template))


def _portable_build(node: Node, target, scratch) -> Kernel:
    depthwise = Conv.is_depthwise(node) and not node.attrs.get("input_layout")
    template = "ops/conv_depthwise.c.j2" if depthwise else "ops/conv.c.j2"
    return Kernel(template, portable_conv_params(node))


def conv_transpose_params(node: Node) -> dict:
    """Parameters of ops/conv_transpose: geometry, weights [g][kh][kw][cg][mg], epilogue."""
    a = node.attrs
    x = in_type(node, 0)
    wd = OpDef.const_input(node, 1, "W")
    nsp = x.rank - 2
    lead = [1] if nsp == 1 else []  # 1-D runs as 2-D with height 1

    def two(values, fill=1):
        return [fill] * len(lead) + list(values)

    k, s, d = two(a["kernel_shape"]), two(a["strides"]), two(a["dilations"])
    pb = two(a["pads"][:nsp], fill=0)
    in_sp, out_sp = two(x.shape[1:-1]), two(node.output.shape[1:-1])
    group, c = a["group"], x.shape[-1]
    mg = wd.shape[1]
    packed = wd.reshape(group, c // group, mg, k[0], k[1]).transpose(0, 3, 4, 1, 2)
    extra = {}
    if a["activation"] == "prelu":
        extra["prelu_slope"] = ConstArray(np.asarray(a["act_slope"], np.float32), "slope")
    return {
        **extra,
        "N": x.shape[0], "H": in_sp[0], "W": in_sp[1], "C": c,
        "OH": out_sp[0], "OW": out_sp[1], "M": mg * group,
        "KH": k[0], "KW": k[1], "SH": s[0], "SW": s[1], "DH": d[0], "DW": d[1],
        "PT": pb[0], "PL": pb[1], "G": group, "CG": c // group, "MG": mg,
        "weights": ConstArray(np.ascontiguousarray(packed, dtype=np.float32), "w_packed"),
        "has_bias": node.input(2) is not None,
        "epilogue": epilogue_c(node, "acc", channel="m", slope_name="act_slope_arr"),
    }


register_guard(("Conv", "ConvTranspose"), _refuse_unsupported)
register_candidates("Conv", "x86", [
    Candidate("x86-conv", _x86_build, lambda n, t, s: _x86_kind(n, t, s) is not None)])
register_candidates("Conv", "arm64", [Candidate("neon-conv", _neon_build, _neon_accepts)])
register_candidates("Conv", PORTABLE, [Candidate("conv", _portable_build)])
register_candidates("ConvTranspose", PORTABLE, [Candidate(
    "conv-transpose",
    lambda n, t, s: Kernel("ops/conv_transpose.c.j2", conv_transpose_params(n)))])
