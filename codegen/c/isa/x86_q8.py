"""x86_64 int8 kernels (AVX2; AVX-512 VNNI on x86_64-int8-vnni): which QConv/QGemm/QAdd/
QuantizeLinear nodes get them, and their compile-time packing. Bit-exact with the int8
reference (see codegen/c/runtime/edgec_x86_q8.h for the arithmetic).

Each entry point takes the node's portable template parameters `p` (bias_eff with the input
zero point folded in, the fixed-point epilogue) and returns the x86 form, or None when the
kernel does not apply and the portable template runs: non-"fixed" epilogues (ONNX's float
requantisation), a positive shift (a multiplier >= 1), weights outside int8. Shifts are per
channel (TFLite's multipliers, edgec/ops/int8_scheme.requant_attrs).

Kernels:
- QConv pointwise and general: `x86/qconv_gemm` - a pixel block's rows are converted once
  (pointwise: the pixels' channels; general: im2col, the input zero point for padding) to
  int16 pairs (AVX2) or unsigned bytes (VNNI), then GEMM tiles of 3 (AVX2) or 6 (VNNI)
  pixels x 16 channels with vpmaddwd / vpdpbusd against int8 weight panels
  [k/2][16][2] / [k/4][16][4]; requantised in registers, 16 int8 stored per row.
- QConv depthwise: `x86/qconv_dw` - 16 channels per vector pair; taps are taken two at a
  time, interleaved (x_t, x_t+1) per channel so that one vpmaddwd adds both taps' products;
  with VNNI, 32 channels and 4 taps per vpdpbusd.
- QGemm: `x86/qgemm` - the row converted once, GEMV panels of 64 channels (rows <= 2), GEMM
  tiles otherwise.
- QAdd of same-shape tensors and per-tensor QuantizeLinear: 8 lanes at a time.

Why vpmaddwd and not vpmaddubsw on AVX2: vpmaddubsw saturates its int16 pair sums, and on
the zoo's MobileNetV2 every layer has weight pairs that can saturate (|w0| + |w1| > 128 with
the same sign for ~5-18% of the (channel, pair) slots), so it would not be bit-exact.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import DType, Node
from edgec.ops.base import in_type
from edgec.codegen.c.isa.x86_f32 import ISAS, VNNI_ISA, row_segments
from edgec.codegen.c.int_params import per_tensor_quantize_literals
from edgec.codegen.c.kernel import ConstArray

RUNTIME = ("edgec_qmath.h", "edgec_qkernels.h", "edgec_x86_q8.h")
PACK_BYTES = 32 * 1024  # widened A rows of one pixel block, on the stack
TILE = 16  # channels of a GEMM panel
GEMV_PANEL = 64
DW_BLOCK = 16  # channels of a depthwise vector pair
DW_VNNI_BLOCK = 32  # channels of a VNNI depthwise block (4 vectors of 8 lanes)
# Lane order of the 4 accumulators of a VNNI depthwise block after the in-lane byte and word
# unpacks: [c0-3, c16-19], [c4-7, c20-23], [c8-11, c24-27], [c12-15, c28-31].
DW_VNNI_LANES = [b + i for b in (0, 4, 8, 12) for i in (0, 1, 2, 3, 16, 17, 18, 19)]
# Channel held by each int32 lane of an AVX2 GEMM accumulator vector: one vshufps of the two
# vpmuldq products then yields the requantised results in natural order (edgec_q8_rq8).
LANE_ORDER = np.array([0, 2, 1, 3, 4, 6, 5, 7])


def is_x86(target) -> bool:
    """True for AVX2 targets (with or without AVX-512 VNNI)."""
    return getattr(target, "isa", "") in ISAS


def tile_rows(vnni: bool) -> int:
    """Rows of an int8 GEMM tile: 6 (12 accumulators; with vpmaddwd the weight vectors, the
    broadcast and one product fill the 16 registers, see edgec_q8_gemm_tile)."""
    return 6


def is_vnni(target) -> bool:
    """True when the target's int8 dot products may use AVX-512 VNNI (vpdpbusd)."""
    return getattr(target, "isa", "") == VNNI_ISA


def requant(p: dict, channels: int, padded: int) -> dict | None:
    """The epilogue as x86 kernel values: padded multiplier and right-shift arrays (natural
    channel order) and literals; None when the epilogue is not fixed point or some shift is
    positive (a multiplier >= 1: the portable kernel takes those layers)."""
    if p.get("rq_kind") != "fixed" or p.get("rq_out_ctype") != "int8_t":
        return None
    if p.get("rq_per_channel"):
        mult = np.asarray(p["rq_mult"].data, np.int64).reshape(-1)
    else:
        lit = p["rq_mult_lit"]
        mult = np.full(channels, -(2**31) if lit == "INT32_MIN" else int(lit), np.int64)
    if "rq_shift" in p:
        shift = np.asarray(p["rq_shift"].data, np.int64).reshape(-1)
    else:
        shift = np.full(channels, int(p["rq_shift_lit"]), np.int64)
    if np.any(shift > 0):
        return None
    out = np.zeros(padded, np.int32)
    out[:channels] = mult
    right = np.zeros(padded, np.int32)
    right[:channels] = -shift
    return {"q_mult": out, "q_right": right, "q_zp": p["rq_y_zp"], "q_lo": p["rq_lo"],
            "q_hi": p["rq_hi"]}


def in_lane_order(v: np.ndarray) -> np.ndarray:
    """Per-channel values (last axis a multiple of 8) with each vector of 8 in LANE_ORDER:
    entry j of a vector holds channel LANE_ORDER[j] (LANE_ORDER is its own inverse)."""
    shape = v.shape
    return np.ascontiguousarray(v.reshape(shape[:-1] + (-1, 8))[..., LANE_ORDER]).reshape(shape)


def odd_lane_mults(mult: np.ndarray) -> np.ndarray:
    """The multipliers of the odd int32 lanes moved to the even ones (where vpmuldq reads
    them), zeros between."""
    odd = np.zeros_like(mult)
    odd[..., 0::2] = mult[..., 1::2]
    return odd


def _pad(n: int, m: int) -> int:
    return -(-n // m) * m


def _panels(kn: np.ndarray, width: int, kgroup: int = 2, lane_order: bool = False
            ) -> np.ndarray:
    """[K, N] weights as panels [K/kgroup][width][kgroup] of `width` channels (kgroup 2 for
    vpmaddwd, 4 for vpdpbusd), the last one (for the remaining channels) 8 or 16 wide, zero
    padded: int8, or with `lane_order` int16 with each vector's channels in LANE_ORDER (the
    AVX2 GEMM tiles)."""
    k, n = kn.shape
    kp = _pad(k, kgroup)
    widths = [width] * (n // width) + ([_pad(n % width, 8)] if n % width else [])
    full = np.zeros((kp, sum(widths)), np.int16 if lane_order else np.int8)
    full[:k, :n] = kn
    if lane_order:
        full = in_lane_order(full)
    parts, j = [], 0
    for wd in widths:
        blk = full[:, j:j + wd]
        parts.append(np.ascontiguousarray(blk.reshape(kp // kgroup, kgroup, wd)
                                          .transpose(0, 2, 1)).reshape(-1))
        j += wd
    return np.concatenate(parts) if parts else np.zeros(0, np.int8)


def _layout(n: int) -> dict:
    full, tail = divmod(n, TILE)
    nv = 0 if tail == 0 else (1 if tail <= 8 else 2)
    return {"full": full, "tail_nv": nv, "tail_ncols": tail - 8 * (nv - 1) if nv else 8,
            "padded": full * TILE + 8 * nv}


def _weights_int8(w: np.ndarray) -> bool:
    return w.size == 0 or (w.min() >= -128 and w.max() <= 127)


# ----------------------------------------------------------------------------- QConv
def qconv_kind(node: Node, target, p: dict) -> str | None:
    """"gemm", "dw" or None (portable) for a QConv with portable parameters `p`."""
    if not is_x86(target) or node.input(0).dtype != DType.INT8:
        return None
    w = node.input(1).data
    if not _weights_int8(w) or requant(p, p["M"], _pad(p["M"], 8)) is None:
        return None
    if p["kind"] == "depthwise":
        return "dw"
    if p["G"] > 1 and p["MG"] < 8:
        return None
    return "gemm"


def qconv_params(node: Node, p: dict, kind: str, vnni: bool = False) -> dict:
    """Template values of x86/qconv_gemm or x86/qconv_dw (vnni: vpdpbusd for the GEMM)."""
    a = node.attrs
    w = node.input(1).data.astype(np.int8)
    x_zp = int(a["x_zero_point"])
    bias_eff = np.asarray(p["bias_eff"].data, np.int32)
    out = {k: v for k, v in p.items() if not isinstance(v, ConstArray)}
    out["x_zp"] = x_zp
    if kind == "dw":
        c, kh, kw = p["C"], p["KH"], p["KW"]
        vnni = vnni and vnni_fits(bias_eff, w.reshape(c, -1))
        taps = kh * kw
        pairs = -(-taps // 2)
        cpad = _pad(c, DW_BLOCK)
        wt = np.zeros((pairs * 2, cpad), np.int16)  # [tap][channel], a zero tap when odd
        wt[:taps, :c] = w.reshape(c, taps).T
        # Per block of 16 channels and tap pair: the (w_t, w_t+1) pairs in the order the
        # in-lane unpacks produce: lo = channels 0-3, 8-11; hi = channels 4-7, 12-15.
        lo_idx = [0, 1, 2, 3, 8, 9, 10, 11]
        hi_idx = [4, 5, 6, 7, 12, 13, 14, 15]
        blocks = []
        for b in range(cpad // DW_BLOCK):
            for t in range(pairs):
                for idx in (lo_idx, hi_idx):
                    ch = [b * DW_BLOCK + i for i in idx]
                    inter = np.stack([wt[2 * t, ch], wt[2 * t + 1, ch]], axis=1).reshape(-1)
                    blocks.append(inter)
        out["q_weights"] = ConstArray(np.concatenate(blocks).astype(np.int16), "w_tap_pairs")

        def permuted(v: np.ndarray) -> np.ndarray:
            full = np.zeros(cpad, v.dtype)
            full[:c] = v[:c]
            return np.concatenate([full[b * 16:(b + 1) * 16][lo_idx + hi_idx]
                                   for b in range(cpad // DW_BLOCK)])

        rq = requant(p, c, cpad)
        out["q_bias"] = ConstArray(permuted(bias_eff).astype(np.int32), "bias_eff_x86")
        out["q_mult_arr"] = ConstArray(permuted(rq.pop("q_mult")), "rq_mult_x86")
        out["q_right_arr"] = ConstArray(permuted(rq.pop("q_right")), "rq_right_x86")
        out.update(rq)
        out["TAPS"], out["PAIRS"], out["CBLK"] = taps, pairs, c // DW_BLOCK
        out["CTAIL"] = c % DW_BLOCK
        out["zp_row"] = ConstArray(np.full(cpad + DW_BLOCK, x_zp, np.int8), "x_zp_row")
        out["VBLK"] = c // DW_VNNI_BLOCK if vnni else 0
        if out["VBLK"]:
            out.update(_dw_vnni_params(w.reshape(c, taps), bias_eff, p, out["VBLK"]))
        return out
    # gemm: pointwise or general (im2col)
    g, cg, mg = p["G"], p["CG"], p["MG"]
    kh, kw = p["KH"], p["KW"]
    k = kh * kw * cg
    layout = _layout(mg)
    w_km = [np.transpose(w.reshape(g, mg, cg, kh, kw)[gi], (2, 3, 1, 0)).reshape(k, mg)
            for gi in range(g)]  # [kh, kw, c] x m per group
    w_rows = np.concatenate(w_km, axis=1).T.astype(np.int64)  # [M, K]
    vnni = vnni and vnni_fits(bias_eff, w_rows)
    if vnni:  # (x + 128) . w: take 128 * sum(w) back out of the bias
        bias_eff = (bias_eff.astype(np.int64) - 128 * w_rows.sum(1)).astype(np.int32)
    kstep = 4 if vnni else 2
    kg = _pad(k, kstep) // kstep
    packs = [_panels(w_km[gi], TILE, kstep, lane_order=not vnni) for gi in range(g)]
    out["q_weights"] = ConstArray(np.concatenate(packs), "w_panels")
    padded = layout["padded"]
    rq = requant(p, p["M"], p["M"])
    grouped = {}
    for key, values in (("bias", bias_eff), ("mult", rq.pop("q_mult")),
                        ("right", rq.pop("q_right"))):
        groups = np.zeros((g, padded), np.int32)
        for gi in range(g):
            groups[gi, :mg] = values[gi * mg:(gi + 1) * mg]
        # the AVX2 tiles' accumulators (bias, multipliers) are in LANE_ORDER; the rounding
        # division runs after the shuffle back to natural order
        grouped[key] = groups if vnni or key == "right" else in_lane_order(groups)
    out["q_bias"] = ConstArray(grouped["bias"].reshape(-1), "bias_eff_x86")
    out["q_right_arr"] = ConstArray(grouped["right"].reshape(-1), "rq_right_x86")
    if vnni:
        out["q_mult_arr"] = ConstArray(grouped["mult"].reshape(-1), "rq_mult_x86")
    else:
        out["q_m_even"] = ConstArray(grouped["mult"].reshape(-1), "rq_mult_even")
        out["q_m_odd"] = ConstArray(odd_lane_mults(grouped["mult"]).reshape(-1), "rq_mult_odd")
    out.update(rq)
    if p["kind"] != "pointwise":
        out["q_zp_row"] = ConstArray(np.full(cg, x_zp, np.int8), "x_zp_row")
    rows = p["N"] * p["OH"] * p["OW"]
    tile = tile_rows(vnni)
    block = max(tile, PACK_BYTES // (kg * kstep * (1 if vnni else 2)))
    segments = row_segments(rows, block, tile)
    out.update({
        "K": k, "KG": kg, "KSTEP": kstep, "vnni": vnni, "layout": layout,
        "group_elems": kg * kstep * padded, "pointwise": p["kind"] == "pointwise",
        "segments": segments, "pack_rows": max(s["block"] for s in segments),
    })
    return out


def _dw_vnni_params(w_ct: np.ndarray, bias_eff: np.ndarray, p: dict, blocks: int) -> dict:
    """Depthwise with vpdpbusd: 4 taps per dot product, 32 channels per block; weights
    [block][quad][4 vectors][8 lanes][4 taps] in DW_VNNI_LANES order, bias_eff less
    128 * sum(w) (the activations are offset to unsigned), multipliers in the same order."""
    c, taps = w_ct.shape
    quads = -(-taps // 4)
    wq = np.zeros((c, quads * 4), np.int8)
    wq[:, :taps] = w_ct
    bias = bias_eff.astype(np.int64) - 128 * w_ct.astype(np.int64).sum(1)
    rq = requant(p, c, c)
    mult, right = rq["q_mult"], rq["q_right"]
    packs, biases, mults, rights = [], [], [], []
    for b in range(blocks):
        ch = [b * DW_VNNI_BLOCK + i for i in DW_VNNI_LANES]
        packs.append(wq[ch].reshape(32, quads, 4).transpose(1, 0, 2).reshape(-1))
        biases.append(bias[ch])
        mults.append(mult[ch])
        rights.append(right[ch])
    return {"QUADS": quads,
            "v_weights": ConstArray(np.concatenate(packs).astype(np.int8), "w_tap_quads"),
            "v_bias": ConstArray(np.concatenate(biases).astype(np.int32), "bias_eff_vnni"),
            "v_mult": ConstArray(np.concatenate(mults).astype(np.int32), "rq_mult_vnni"),
            "v_right": ConstArray(np.concatenate(rights).astype(np.int32), "rq_right_vnni")}


def vnni_fits(bias_eff: np.ndarray, w_rows: np.ndarray) -> bool:
    """True when the unsigned-activation form keeps every int32 partial sum in range:
    |bias_eff - 128 sum(w)| + 255 sum|w| < 2^31 for every output channel."""
    w = w_rows.astype(np.int64)
    bias = np.abs(bias_eff.astype(np.int64) - 128 * w.sum(1))
    return bool(np.all(bias + 255 * np.abs(w).sum(1) < 2**31))


# ----------------------------------------------------------------------------- QGemm
def qgemm_applies(node: Node, target, p: dict) -> bool:
    """True when x86/qgemm takes this QGemm."""
    if not is_x86(target) or node.input(0).dtype != DType.INT8:
        return False
    w = node.input(1).data
    return _weights_int8(w) and requant(p, p["NOUT"], _pad(p["NOUT"], 8)) is not None


def qgemm_params(node: Node, p: dict, vnni: bool = False) -> dict:
    """Template values of x86/qgemm (weights [N, K] as GEMV or GEMM panels)."""
    w = node.input(1).data.astype(np.int8)  # [N, K]
    n, k = w.shape
    bias_eff = np.asarray(p["bias_eff"].data, np.int32)
    vnni = vnni and vnni_fits(bias_eff, w)
    if vnni:
        bias_eff = (bias_eff.astype(np.int64) - 128 * w.astype(np.int64).sum(1)).astype(np.int32)
    kstep = 4 if vnni else 2
    kg = _pad(k, kstep) // kstep
    rows = p["ROWS"]
    gemv = rows <= 2
    out = {k2: v for k2, v in p.items() if not isinstance(v, ConstArray)}
    if gemv:
        full, tail = divmod(n, GEMV_PANEL)
        tail_nv = -(-tail // 8)
        padded = full * GEMV_PANEL + 8 * tail_nv
        parts = [_panels(w[j * GEMV_PANEL:(j + 1) * GEMV_PANEL].T, GEMV_PANEL, kstep)
                 for j in range(full)]
        if tail_nv:
            parts.append(_panels(w[full * GEMV_PANEL:].T, 8 * tail_nv, kstep))
        out["gemv_layout"] = {"full": full, "tail_nv": tail_nv,
                              "tail_ncols": tail - 8 * (tail_nv - 1) if tail_nv else 8}
        weights = np.concatenate(parts)
    else:
        layout = _layout(n)
        padded = layout["padded"]
        weights = _panels(w.T, TILE, kstep, lane_order=not vnni)
        out["layout"] = layout
        out["segments"] = row_segments(rows, 1 << 30, tile_rows(vnni))
    avx2_tiles = not (vnni or gemv)  # edgec_q8_gemm_tile: values in LANE_ORDER
    rq = requant(p, n, padded)
    bias = np.zeros(padded, np.int32)
    bias[:n] = bias_eff
    mult = rq.pop("q_mult")
    out["q_right_arr"] = ConstArray(rq.pop("q_right"), "rq_right_x86")  # natural order
    if avx2_tiles:
        bias, mult = in_lane_order(bias), in_lane_order(mult)
        out["q_m_even"] = ConstArray(mult, "rq_mult_even")
        out["q_m_odd"] = ConstArray(odd_lane_mults(mult), "rq_mult_odd")
    else:
        out["q_mult_arr"] = ConstArray(mult, "rq_mult_x86")
    out.update(rq)
    out["q_bias"] = ConstArray(bias, "bias_eff_x86")
    out["q_weights"] = ConstArray(weights, "w_panels")
    out.update({"KG": kg, "KSTEP": kstep, "vnni": vnni, "gemv": gemv, "K": k, "N": n,
                "avx2_tiles": avx2_tiles})
    return out


def qadd_applies(node: Node, target) -> bool:
    """True when x86/qadd takes this QAdd: both inputs of the output's shape, no positive
    shift (a multiplier >= 1: the portable kernel)."""
    if not is_x86(target) or node.op != "QAdd":
        return False
    a = node.attrs
    if max(int(a["a_shift"]), int(a["b_shift"]), int(a["shift"])) > 0:
        return False
    shape = node.output.shape
    return all(in_type(node, i).shape == shape for i in range(2))


def quantize_linear_params(node: Node, target, p: dict) -> dict | None:
    """x86/quantize_linear values for a per-tensor float32 -> int8/uint8 QuantizeLinear, or
    None (portable) otherwise."""
    return per_tensor_quantize_literals(node, p) if is_x86(target) else None
