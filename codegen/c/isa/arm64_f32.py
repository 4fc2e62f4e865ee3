"""arm64 NEON kernels: which layers get them, and their compile-time weight packing.

Targets with isa "arm64-neon" (arm64-fp32, arm64-int8-base: ARMv8.0 NEON), "arm64-dotprod"
(arm64-int8: ARMv8.2 SDOT) and "arm64-i8mm" (arm64-int8-i8mm: SMMLA) run these kernels; everything they do not cover falls back to the
portable templates (which stay the reference). The kernel families (codegen/c/kernels/) call
`conv_template`/`conv_params` (Conv), `gemm_template`/`gemm_params` (Gemm),
`qconv_template`/`qconv_params` (QConv) and `qgemm_template`/`qgemm_params` (QGemm); each
returns None (template) or the portable parameters unchanged when no NEON kernel applies.

fp32 (codegen/c/runtime/edgec_neon_f32.h): pointwise convolution and Gemm are a GEMM over
rows (pixels) with weights packed in panels of 8 output channels [panel][K][8]; general NHWC
convolution is an implicit GEMM (one tile call per kernel tap, weights [g][panel][kh][kw][CG][8]);
3x3 depthwise convolution of stride 1 or 2 (conv_dw3_f32.c.j2) keeps 4 channels' weights in
registers along an output row and loads every input column once for the pixels sharing it;
other depthwise convolutions run 16 channels per step over the valid taps of each output pixel.
Epilogues (bias, residual, activation) are applied in registers where the activation has a
vector form (VECTOR_ACTIVATIONS), else on a stored tile with the scalar epilogue.

int8: see the docstring of codegen/c/isa/arm64_q8.py.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Node
from edgec.ops.base import in_type
from edgec.codegen.c.kernel import ConstArray

NEON_ISAS = ("arm64-neon", "arm64-dotprod", "arm64-i8mm")
F32_PANEL = 8  # output channels per packed weight panel (edgec_neon_f32.h EDGEC_F32_PANEL)
F32_TILE_ROWS = 8  # rows per GEMM tile (EDGEC_F32_TILE_ROWS)
F32_RUNTIME = ("edgec_neon_f32.h",)
VECTOR_ACTIVATIONS = ("none", "relu", "clip", "leaky_relu", "prelu", "hardswish",
                      "hardsigmoid")


def is_arm64(target) -> bool:
    """True for the arm64 NEON targets."""
    return getattr(target, "isa", "") in NEON_ISAS


def _lit(x: float) -> str:
    return f"{float(np.float32(x))!r}f"


def vector_activation(node: Node, var: str, slope_ptr: str) -> str | None:
    """NEON statements applying the node's activation to float32x4_t `var` (in place).

    `slope_ptr` points at the 4 PReLU slopes of the vector's channels. None when the
    activation has no vector form here (sigmoid, silu, tanh: applied by the scalar epilogue).
    """
    a = node.attrs
    act = a.get("activation", "none")
    zero = "vdupq_n_f32(0.0f)"
    if act == "none":
        return ""
    if act == "relu":
        return f"{var} = vmaxq_f32({var}, {zero});"
    if act == "clip":
        return (f"{var} = vminq_f32(vmaxq_f32({var}, vdupq_n_f32({_lit(a['act_alpha'])})), "
                f"vdupq_n_f32({_lit(a['act_beta'])}));")
    if act in ("leaky_relu", "prelu"):
        slope = f"vdupq_n_f32({_lit(a['act_alpha'])})" if act == "leaky_relu" \
            else f"vld1q_f32({slope_ptr})"
        return (f"{var} = vbslq_f32(vcgeq_f32({var}, {zero}), {var}, "
                f"vmulq_f32({var}, {slope}));")
    if act == "hardswish":
        return (f"{var} = vmulq_f32({var}, vminq_f32(vmaxq_f32(vaddq_f32(vmulq_f32({var}, "
                f"vdupq_n_f32(0.166666672f)), vdupq_n_f32(0.5f)), {zero}), vdupq_n_f32(1.0f)));")
    if act == "hardsigmoid":
        return (f"{var} = vminq_f32(vmaxq_f32(vaddq_f32(vmulq_f32(vdupq_n_f32("
                f"{_lit(a['act_alpha'])}), {var}), vdupq_n_f32({_lit(a['act_beta'])})), "
                f"{zero}), vdupq_n_f32(1.0f));")
    return None


def pack_panels_f32(b_kn: np.ndarray, panel: int = F32_PANEL) -> np.ndarray:
    """[K, N] -> [ceil(N / panel)][K][panel], zero columns past N."""
    k, n = b_kn.shape
    n_panels = -(-n // panel)
    padded = np.zeros((k, n_panels * panel), np.float32)
    padded[:, :n] = b_kn
    return np.ascontiguousarray(padded.reshape(k, n_panels, panel).transpose(1, 0, 2))


def _padded(vec: np.ndarray | None, n: int, multiple: int) -> np.ndarray:
    """`vec` (or zeros) as float32, zero-padded to a multiple of `multiple`."""
    out = np.zeros(-(-n // multiple) * multiple, np.float32)
    if vec is not None:
        out[:n] = np.asarray(vec, np.float32).reshape(-1)
    return out


def _with_epilogue(node: Node, n: int, q: dict) -> dict:
    """Vector epilogue parameters of the fp32 NEON templates, added to `q` in place.

    `vec_act` applies the activation to a float32x4_t `v` of channels m..m+3 (None: no
    vector form, the template stores the tile and runs the scalar `epilogue`); PReLU slopes
    are padded to 16 channels (`slope16`, also the scalar epilogue's `act_slope_arr`).
    """
    q["vec_act"] = vector_activation(node, "v", "act_slope_arr + m")
    q.pop("prelu_slope", None)
    if node.attrs.get("activation") == "prelu":
        q["slope16"] = ConstArray(_padded(node.attrs["act_slope"], n, 16), "slope16")
    return q


def interior_range(p: dict) -> dict:
    """Output rows/columns [O*_LO, O*_HI) of a convolution (portable parameters `p`) whose
    every kernel tap lies inside the input; `interior` when there is at least one pixel."""
    out = {}
    for axis, (size, out_size, k, s, d, pad) in {
            "H": (p["H"], p["OH"], p["KH"], p["SH"], p["DH"], p["PT"]),
            "W": (p["W"], p["OW"], p["KW"], p["SW"], p["DW"], p["PL"])}.items():
        lo = -(-pad // s)
        last = size - 1 + pad - (k - 1) * d  # the last window start inside the input
        hi = last // s + 1 if last >= 0 else 0
        out[f"O{axis}_LO"], out[f"O{axis}_HI"] = min(lo, out_size), max(min(hi, out_size), 0)
    out["interior"] = out["OH_HI"] > out["OH_LO"] and out["OW_HI"] > out["OW_LO"]
    return out


# --------------------------------------------------------------------------- fp32 Conv
def conv_template(node: Node, target, kind: str, x_nchw: bool) -> str | None:
    """The NEON template for a channels-last fp32 Conv of kernel `kind`, or None."""
    if not is_arm64(target) or x_nchw:
        return None
    return {"pointwise": "ops/arm64/gemm_f32.c.j2", "depthwise": "ops/arm64/conv_dw_f32.c.j2",
            "general": "ops/arm64/conv_f32.c.j2"}[kind]


DW3_TEMPLATE = "ops/arm64/conv_dw3_f32.c.j2"


def dw3_applies(node: Node, p: dict) -> bool:
    """The column-reuse 3x3 depthwise kernel: 3x3, no dilation, stride 1 or 2 along the width,
    channels a multiple of 4, no fused residual, an activation with a vector form."""
    return (p["KH"] == 3 and p["KW"] == 3 and p["DH"] == 1 and p["DW"] == 1
            and p["SW"] in (1, 2) and p["C"] % 4 == 0 and len(node.inputs) <= 3
            and p.get("vec_act", "") is not None)


def conv_kind(node: Node) -> str:
    """"pointwise" (a GEMM over pixels), "depthwise" or "general" for a 2-D NHWC Conv."""
    a = node.attrs
    w = in_type(node, 1)
    if all(v == 1 for v in list(a["kernel_shape"]) + list(a["strides"])) \
            and a["group"] == 1 and not any(a["pads"]):
        return "pointwise"
    if a["group"] > 1 and w.shape[1] == 1 and w.shape[0] == a["group"]:
        return "depthwise"
    return "general"


NCHW_TEMPLATE = "ops/arm64/conv_nchw_f32.c.j2"
MAX_NCHW_UNROLL = 64  # kernel rows (C x KH) copied by literal statements for inner windows


def nchw_applies(node: Node, target) -> bool:
    """A convolution reading the channels-first model input (the stem) for the NEON im2col
    GEMM: not grouped, no fused residual."""
    return (is_arm64(target) and node.attrs.get("input_layout") == "NCHW"
            and node.attrs["group"] == 1 and len(node.inputs) <= 3
            and len(in_type(node, 0).shape) == 4)


def conv_nchw_params(node: Node, p: dict) -> dict:
    """Parameters of the channels-first stem kernel: weights [panel][K4][8] with k =
    (c * KH + kh) * KW + kw and K padded to a multiple of 4 with zeros, bias per panel."""
    wd = node.input(1).data.astype(np.float32)
    m = wd.shape[0]
    k = int(np.prod(wd.shape[1:]))
    k4, n_panels = -(-k // 4) * 4, -(-m // F32_PANEL)
    padded = np.zeros((n_panels * F32_PANEL, k4), np.float32)
    padded[:m, :k] = wd.reshape(m, k)
    packed = padded.reshape(n_panels, F32_PANEL, k4).transpose(0, 2, 1)
    bias = node.input(2).data if node.input(2) is not None else None
    q = {key: p[key] for key in ("N", "H", "W", "C", "OH", "OW", "M", "KH", "KW", "SH", "SW",
                                 "DH", "DW", "PT", "PL", "epilogue")}
    q.update({"K4": k4, "NP": n_panels,
              "panels": ConstArray(np.ascontiguousarray(packed), "w_panels"),
              "bias8": ConstArray(_padded(bias, m, F32_PANEL), "bias8")})
    q["ROWCOPY"] = p["DW"] == 1 and p["C"] * p["KH"] <= MAX_NCHW_UNROLL
    return _with_epilogue(node, m, q)


def conv_params(node: Node, target, p: dict) -> dict:
    """Add the NEON packing to the portable Conv parameters `p` (unchanged off arm64)."""
    if not is_arm64(target) or p["x_nchw"]:
        return p
    kind = conv_kind(node)
    wd = node.input(1).data.astype(np.float32)
    m, cg = wd.shape[0], wd.shape[1]
    kh, kw = p["KH"], p["KW"]
    w4 = wd.reshape(m, cg, kh, kw)
    bias = node.input(2).data if node.input(2) is not None else None
    q = dict(p)
    if kind == "depthwise":
        q["bias16"] = ConstArray(_padded(bias, m, 16), "bias16")
        q.update(interior_range(p))
        _with_epilogue(node, m, q)
        if dw3_applies(node, q):  # [C/4][kh][kw][4]
            packed = w4.reshape(m // 4, 4, 3, 3).transpose(0, 2, 3, 1)
            q["weights"] = ConstArray(np.ascontiguousarray(packed), "w_dw3")
            q["dw3"] = True
        return q
    g, mg = p["G"], p["MG"]
    n_panels = -(-mg // F32_PANEL)
    # [g][panel][kh][kw][cg][8]: one tap's rows follow the previous tap's, so a panel's
    # weights over every tap are contiguous.
    wg = w4.reshape(g, mg, cg, kh, kw).transpose(0, 3, 4, 2, 1)  # [g][kh][kw][cg][mg]
    padded = np.zeros((g, kh, kw, cg, n_panels * F32_PANEL), np.float32)
    padded[..., :mg] = wg
    packed = padded.reshape(g, kh, kw, cg, n_panels, F32_PANEL).transpose(0, 4, 1, 2, 3, 5)
    q["panels"] = ConstArray(np.ascontiguousarray(packed), "w_panels")
    q["NP"] = n_panels
    bias_g = np.zeros((g, n_panels * F32_PANEL), np.float32)
    if bias is not None:
        bias_g[:, :mg] = np.asarray(bias, np.float32).reshape(g, mg)
    q["bias8"] = ConstArray(bias_g.reshape(-1), "bias8")
    del q["weights"]
    _with_epilogue(node, m, q)
    if kind == "pointwise":
        q.update({"ROWS": p["N"] * p["OH"] * p["OW"], "K": p["C"], "NOUT": m})
    else:
        # padding taps read zeros; group g reads zero_row + g * CG, so it spans C channels
        q["zero_row"] = ConstArray(np.zeros(max(p["C"], 1), np.float32), "zero_row")
        q["TAPS"] = kh * kw
    return q


# --------------------------------------------------------------------------- fp32 Gemm
MAX_POOLED_FLOATS = 16 * 1024  # stack floats of the pooled rows of a Gemm with a fused pool


def gemm_template(node: Node, target, p: dict) -> str | None:
    """The NEON template for an fp32 Gemm, or None (computed B, transA, a bias that is not
    one row, a fused global pool of more than MAX_POOLED_FLOATS rows x K)."""
    if not is_arm64(target) or not p.get("b_const") or p.get("transA") \
            or "bias_full" in p or "bias_index" in p:
        return None
    if "pool_count" in p and p["M"] * p["K"] > MAX_POOLED_FLOATS:
        return None
    return "ops/arm64/gemm_f32.c.j2"


def gemm_params(node: Node, target, p: dict) -> dict:
    """Add the NEON packing to the portable Gemm parameters `p`."""
    if gemm_template(node, target, p) is None:
        return p
    b_kn = np.asarray(p["b_packed"].data, np.float32)
    n = p["N"]
    q = dict(p)
    q["panels"] = ConstArray(pack_panels_f32(b_kn), "b_panels")
    q["NP"] = -(-n // F32_PANEL)
    bias = p["bias_row"].data if "bias_row" in p else None
    q["bias8"] = ConstArray(_padded(bias, n, F32_PANEL), "bias8")
    q.update({"ROWS": p["M"], "NOUT": n})
    del q["b_packed"]
    q.pop("bias_row", None)
    return _with_epilogue(node, n, q)


def runtime_for(template: str) -> tuple[str, ...]:
    """Runtime headers of a template chosen by this module (none for portable ones)."""
    if template.startswith("ops/arm64/") and "_f32" in template:
        return F32_RUNTIME
    return ()
