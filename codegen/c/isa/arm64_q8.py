"""arm64 NEON int8 kernels for QConv and QGemm: selection and compile-time packing.

Kernels (codegen/c/runtime/edgec_neon_q8.h, templates codegen/c/templates/ops/arm64/q*.j2):
  - GEMM over rows (`qgemm.c.j2`): pointwise QConv and QGemm (rows = pixels / rows of x) and
    general QConv through an im2col row buffer (rows = output pixels, K = taps x channels).
    Flavour "dot" (isa arm64-dotprod: SDOT, 16-channel blocks, weights [block][K/4][16][4]),
    "mmla" (isa arm64-i8mm: SMMLA, 16-channel blocks, weights
    [block][K/16][k half][channel pair][2][8], requantisation parameters in the order of
    SMMLA's 2x2 accumulators) or "mull" (isa arm64-neon: SMULL/SMLAL2/SADALP, 4-channel
    blocks, weights [block][K/16][4][16]). K is padded to a multiple of 16 with zero weights.
  - depthwise (`qconv_dw.c.j2`, every ISA): 16 channels per step, weights [kh][kw][C16];
    with the dot product, 3x3 kernels of stride 1 or 2 along the width over a multiple of 16
    channels take `qconv_dw3_dot.c.j2` instead: input columns transposed once and reused by
    the neighbouring output pixels, 12 SDOT per pixel, weights [C/16][kw][4][4][row 0..2, 0].
Everything else (grouped non-depthwise convolutions, ONNX's float-requantised QLinear ops,
weights of -128, im2col rows over MAX_IM2COL_BYTES) keeps the portable kernel.

Requantisation parameters become per-channel int32 arrays padded to the channel block: the
bias with the zero-point correction (bias_eff, as the portable kernels compute it), the
multiplier, and the shift (one literal when the layer's channels share it), with a
requantisation mode chosen from the shifts (`requant_mode`). The kernels reproduce
edgec_qmath.h bit for bit (see the header's comment for the rounding argument).
"""

from __future__ import annotations

import numpy as np

from edgec.ir import DType, Node
from edgec.codegen.c.isa.arm64_f32 import interior_range
from edgec.ops.base import in_type
from edgec.codegen.c.int_params import per_tensor_quantize_literals
from edgec.codegen.c.kernel import ConstArray

Q8_RUNTIME = ("edgec_qmath.h", "edgec_qkernels.h", "edgec_neon_q8.h")
DOT_BLOCK = 16  # output channels per SDOT block
MULL_BLOCK = 4  # output channels per SMULL/SADALP block
K_STEP = 16  # bytes of K per kernel step
MAX_IM2COL_BYTES = 64 * 1024  # stack bytes of the im2col rows of a general convolution


# i8mm accumulators hold 2x2 blocks (two rows by channels 2j, 2j + 1): the order in which
# the requantisation parameters of a 16-channel block are laid out for them
MMLA_RQ_ORDER = np.array([2 * (i // 4) + i % 2 for i in range(2 * DOT_BLOCK)])


def flavour(target) -> str | None:
    """"dot" (SDOT), "mmla" (SMMLA), "mull" (ARMv8.0 NEON) or None (not an arm64 target)."""
    isa = getattr(target, "isa", "")
    if isa == "arm64-dotprod":
        return "dot"
    if isa == "arm64-i8mm":
        return "mmla"
    if isa == "arm64-neon":
        return "mull"
    return None


def _pad_to(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _fits(node: Node, p: dict) -> bool:
    """int8 in, int8 out, fixed-point requantisation, weights in [-127, 127]."""
    w = node.input(1)
    return (p.get("rq_kind") == "fixed" and p.get("rq_out_ctype") == "int8_t"
            and in_type(node, 0).dtype == DType.INT8 and w is not None and w.is_const
            and w.dtype == DType.INT8 and int(w.data.min(initial=0)) >= -127)


RQ_MODES = {"dmulh": "EDGEC_Q8_RQ_DMULH", "rdmulh": "EDGEC_Q8_RQ_RDMULH",
            "wide": "EDGEC_Q8_RQ_WIDE", "rshr": "EDGEC_Q8_RQ_RSHR"}


def requant_mode(shifts) -> str:
    """The kernels' requantisation mode for a layer's shifts (edgec_neon_q8.h): "rdmulh"
    when every shift is 0, "rshr" when every shift is < 0, "dmulh" when every shift is <= 0,
    "wide" otherwise."""
    shifts = np.asarray(shifts)
    if np.all(shifts == 0):
        return "rdmulh"
    if np.all(shifts < 0):
        return "rshr"
    return "dmulh" if np.all(shifts <= 0) else "wide"


def _requant_arrays(node: Node, bias_eff: np.ndarray, n: int, block: int,
                    order: np.ndarray | None = None) -> dict:
    """Requantisation parameters padded to a multiple of `block` channels: bias and
    multiplier arrays (int32), the mode, and the shift (a literal when the layer's channels
    share it, else an int32 array). `order`: the channels of a block in the order the
    kernel's accumulators hold them (i8mm), each array then has len(order) values per block."""
    a = node.attrs
    mult = np.broadcast_to(np.asarray(a["multiplier"], np.int64), (n,))
    shift = np.broadcast_to(np.asarray(a["shift"], np.int64), (n,))
    size = _pad_to(n, block)

    def padded(values, fill=0) -> np.ndarray:
        out = np.full(size, fill, np.int32)
        out[:n] = values
        if order is not None:
            out = out[(np.arange(size // block)[:, None] * block + order).ravel()]
        return out

    q = {"rq_bias": ConstArray(padded(bias_eff), "rq_bias"),
         "rq_mult_arr": ConstArray(padded(mult), "rq_mult"),
         "rq_mode": RQ_MODES[requant_mode(shift)],
         "y_zp": a["y_zero_point"], "act_min": a["act_min"], "act_max": a["act_max"]}
    if np.all(shift == shift[0]):
        q["shift_all"], q["rq_shift_arr"] = int(shift[0]), "NULL"
    else:  # padding channels repeat a real shift, so that they stay in the layer's mode
        q["shift_all"] = 0
        q["rq_shift_arr"] = ConstArray(padded(shift, int(shift[0])), "rq_shift")
    return q


def pack_gemm_weights(w_nk: np.ndarray, kind: str) -> np.ndarray:
    """[N, K] int8 weights -> the block layout of the "dot", "mmla" or "mull" GEMM tile."""
    n, k = w_nk.shape
    block = MULL_BLOCK if kind == "mull" else DOT_BLOCK
    nb, k16 = _pad_to(n, block) // block, _pad_to(max(k, 1), K_STEP)
    padded = np.zeros((nb * block, k16), np.int8)
    padded[:n, :k] = w_nk
    if kind == "dot":  # [block][K/4][16][4]
        packed = padded.reshape(nb, block, k16 // 4, 4).transpose(0, 2, 1, 3)
    elif kind == "mmla":  # [block][K/16][k half][channel pair][2][8]
        packed = padded.reshape(nb, block // 2, 2, k16 // K_STEP, 2, 8).transpose(0, 3, 4, 1,
                                                                                   2, 5)
    else:  # [block][K/16][4][16]
        packed = padded.reshape(nb, block, k16 // K_STEP, K_STEP).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(packed)


def _gemm_params(node: Node, kind: str, p: dict, w_nk: np.ndarray, rows: int) -> dict:
    n, k = w_nk.shape
    block = MULL_BLOCK if kind == "mull" else DOT_BLOCK
    order = MMLA_RQ_ORDER if kind == "mmla" else None
    q = {"flavour": kind, "RQ_STRIDE": block if order is None else len(order),
         "ROWS": rows, "K": k, "NOUT": n, "BLOCK": block,
         "NB": _pad_to(n, block) // block, "KSTEPS": _pad_to(max(k, 1), K_STEP) // K_STEP,
         "KFULL": k // K_STEP, "KTAIL": k % K_STEP, "im2col": False,
         # a tail of exactly 8 k: a half step reading the rows in place (SDOT; measured no
         # gain with SMMLA, whose row pairs then need two more instructions)
         "KHALF": kind == "dot" and k % K_STEP == 8,
         "weights": ConstArray(pack_gemm_weights(w_nk, kind), f"w_{kind}")}
    q.update(_requant_arrays(node, p["bias_eff"].data, n, block, order))
    return q


# --------------------------------------------------------------------------- QConv
def _conv_kind(p: dict) -> str | None:
    if p["kind"] == "pointwise":
        return "pointwise"
    if p["kind"] == "depthwise":
        return "depthwise"
    if p["G"] == 1 and p["KH"] * p["KW"] * p["C"] <= MAX_IM2COL_BYTES // 4 - K_STEP:
        return "im2col"
    return None


def _dw3_dot(target, p: dict) -> bool:
    """A depthwise convolution for the SDOT 3x3 kernel: dot product, 3x3, no dilation, stride
    1 or 2 along the width, channels a multiple of 16."""
    return (flavour(target) in ("dot", "mmla") and p["KH"] == 3 and p["KW"] == 3
            and p["DH"] == 1 and p["DW"] == 1 and p["SW"] in (1, 2) and p["C"] % DOT_BLOCK == 0)


def qconv_template(node: Node, target, p: dict) -> str | None:
    """The NEON template of a QConv (p: its portable parameters), or None."""
    if flavour(target) is None or not _fits(node, p):
        return None
    kind = _conv_kind(p)
    if kind is None:
        return None
    if kind == "depthwise":
        return "ops/arm64/qconv_dw3_dot.c.j2" if _dw3_dot(target, p) else \
            "ops/arm64/qconv_dw.c.j2"
    return "ops/arm64/qgemm.c.j2"


def _dw3_params(node: Node, p: dict) -> dict:
    """Parameters of the SDOT 3x3 depthwise kernel: weights [C/16][kw][4][4 channels][4 rows,
    the last 0], a row of input zero points, requantisation per 16 channels."""
    c = p["C"]
    w = node.input(1).data.astype(np.int8).reshape(c, 3, 3)  # [c][kh][kw]
    taps = np.zeros((c, 3, 4), np.int8)  # [c][kw][kh, 0]
    taps[:, :, :3] = np.transpose(w, (0, 2, 1))
    packed = taps.reshape(c // DOT_BLOCK, DOT_BLOCK, 3, 4).transpose(0, 2, 1, 3)
    q = {key: p[key] for key in ("N", "H", "W", "C", "OH", "OW", "SH", "SW", "PT", "PL")}
    q["weights"] = ConstArray(np.ascontiguousarray(packed), "w_dw3")
    zp = node.attrs["x_zero_point"]
    q["pad_row"] = ConstArray(np.full(c, zp, np.int8), "x_zero_row")
    q["pad16"] = ConstArray(np.array([zp, zp, zp, 0] * 4, np.int8), "x_zero_col")
    q.update(_requant_arrays(node, p["bias_eff"].data, c, DOT_BLOCK))
    return q


def qconv_params(node: Node, target, p: dict) -> dict:
    """NEON parameters of a QConv (its portable parameters `p` when no NEON kernel applies)."""
    fl = flavour(target)
    if qconv_template(node, target, p) is None:
        return p
    kind = _conv_kind(p)
    w = node.input(1).data.astype(np.int8)
    m = w.shape[0]
    if kind == "depthwise" and _dw3_dot(target, p):
        return _dw3_params(node, p)
    if kind == "depthwise":
        c = p["C"]
        c16 = _pad_to(c, DOT_BLOCK)
        packed = np.zeros((p["KH"], p["KW"], c16), np.int8)
        packed[..., :c] = np.transpose(w.reshape(m, p["KH"], p["KW"]), (1, 2, 0))
        q = {key: p[key] for key in ("N", "H", "W", "C", "OH", "OW", "KH", "KW", "SH", "SW",
                                     "DH", "DW", "PT", "PL")}
        q.update({"C16": c16, "CFULL": c // DOT_BLOCK * DOT_BLOCK, "CTAIL": c % DOT_BLOCK,
                  "weights": ConstArray(packed, "w_dw16")})
        q.update(interior_range(p))
        if "pad_row" in p:
            q["pad_row"] = ConstArray(np.full(c16, node.attrs["x_zero_point"], np.int8),
                                      "x_zero_row")
        q.update(_requant_arrays(node, p["bias_eff"].data, m, DOT_BLOCK))
        return q
    if kind == "pointwise":
        return _gemm_params(node, fl, p, w.reshape(m, -1), p["ROWS"])
    # im2col: row k = (kh * KW + kw) * C + c, as the [M][kh][kw][C] weight rows
    w_rows = np.transpose(w, (0, 2, 3, 1)).reshape(m, -1)
    rows = p["N"] * p["OH"] * p["OW"]
    q = _gemm_params(node, fl, p, w_rows, rows)
    q.update({key: p[key] for key in ("N", "H", "W", "C", "OH", "OW", "KH", "KW", "SH", "SW",
                                      "DH", "DW", "PT", "PL")})
    q.update({"im2col": True, "x_zp": node.attrs["x_zero_point"]})
    return q


# --------------------------------------------------------------------------- QGemm
def qgemm_template(node: Node, target, p: dict) -> str | None:
    """The NEON template of a QGemm, or None."""
    if flavour(target) is None or not _fits(node, p):
        return None
    return "ops/arm64/qgemm.c.j2"


def qgemm_params(node: Node, target, p: dict) -> dict:
    """NEON parameters of a QGemm (`p` unchanged when no NEON kernel applies)."""
    if qgemm_template(node, target, p) is None:
        return p
    w = node.input(1).data.astype(np.int8)
    return _gemm_params(node, flavour(target), p, w, p["ROWS"])


def runtime_for(template: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """Runtime headers of an int8 op's kernel: the NEON header for arm64 templates."""
    return Q8_RUNTIME if template.startswith("ops/arm64/q") else default


# --------------------------------------------------------------------------- QuantizeLinear
def quantize_linear_params(node: Node, target, p: dict) -> dict | None:
    """NEON parameters of a per-tensor float32 -> int8/uint8 QuantizeLinear (literals of the
    scale, of the clamp bounds minus the zero point, and the zero point), or None."""
    if flavour(target) is None:
        return None
    values = per_tensor_quantize_literals(node, p)
    return None if values is None else {**values, "neon": True}


# --------------------------------------------------------------------------- QAdd
def qadd_params(node: Node, target) -> dict | None:
    """NEON parameters of a QAdd whose inputs both have the output's shape (the requantisation
    mode of each of its three multipliers), or None (portable kernel)."""
    if flavour(target) is None or node.op != "QAdd":
        return None
    shape = node.outputs[0].shape
    if any(in_type(node, i).shape != shape or in_type(node, i).dtype != DType.INT8
           for i in range(2)) or node.outputs[0].dtype != DType.INT8:
        return None
    a = node.attrs
    if not 0 <= int(a["left_shift"]) <= 20:  # (x - zp) * 2^left_shift stays in int32
        return None
    return {"count": node.outputs[0].type.numel,
            "a_mode": RQ_MODES[requant_mode([int(a["a_shift"])])],
            "b_mode": RQ_MODES[requant_mode([int(a["b_shift"])])],
            "y_mode": RQ_MODES[requant_mode([int(a["shift"])])]}
