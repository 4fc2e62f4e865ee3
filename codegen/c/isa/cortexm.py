"""Which int8 layers the Cortex-M kernels (codegen/c/runtime/edgec_cm_dsp.h, edgec_cm_mve.h)
can run, with which template (codegen/c/templates/ops/cortexm/) and weight packing. The
candidates in codegen/c/kernels/cortexm.py ask `cortexm_template` for QConv and QGemm nodes on
the Cortex-M ISAs; a node it declines takes the portable kernel.

A layer qualifies when the target's isa is armv7em-dsp or armv8.1m-mve, its activations and
packed weights are int8, its requantisation is edgec's fixed point to int8 (per-tensor or
per-channel multipliers and shifts; the kernels read the shifts as int32), and it
is a GEMM (QGemm, pointwise QConv), a depthwise QConv (channel multiplier 1) or a QConv with
group 1.

On the DSP ISA the weights are packed at compile time as int16 pairs: for SMLAD in the GEMM
(QGemm, pointwise and group-1 QConv: `pack_dsp_gemm_weights`) and for SMLABB/SMLATT in the
depthwise kernel (`pack_dsp_depthwise_weights`); the layer function keeps the GEMM's scratch
(widened rows, accumulators, im2col rows) on its stack.
"""

from __future__ import annotations

import numpy as np
from edgec.codegen.c.kernel import ConstArray

KERNEL_ISAS = {"armv7em-dsp": "edgec_cm_dsp.h", "armv8.1m-mve": "edgec_cm_mve.h"}
TEMPLATES = {"gemm": "ops/cortexm/qgemm.c.j2", "pointwise": "ops/cortexm/qgemm.c.j2",
             "depthwise": "ops/cortexm/qconv_depthwise.c.j2",
             "general": "ops/cortexm/qconv.c.j2"}
DSP = "armv7em-dsp"


def cortexm_template(node, target, p: dict) -> str | None:
    """The Cortex-M template for a QConv/QGemm node with template parameters `p`, or None."""
    if getattr(target, "isa", "") not in KERNEL_ISAS:
        return None
    if p.get("rq_kind") != "fixed" or p.get("rq_out_ctype") != "int8_t" \
            or p.get("x_ctype") != "int8_t" or p.get("w_ctype") != "int8_t":
        return None
    if node.op == "QGemm":
        return TEMPLATES["gemm"]
    kind = p.get("kind")
    if kind == "general" and p.get("G") != 1:
        return None
    return TEMPLATES.get(kind)


def pack_dsp_gemm_weights(w_nk: np.ndarray) -> np.ndarray:
    """int8 weights [N][K] as the int32 words edgec_cm_gemm_s8 reads: channels in blocks of
    4 (N padded with zero channels), K rounded up to 8 with zeros, and per block and group
    of 4 K steps the words {ch0..ch3 (k0, k2)} then {ch0..ch3 (k1, k3)}, each two int16 with
    the first in the low half (the order SXTB16 widens input bytes)."""
    n, k = w_nk.shape
    n4, k8 = -(-n // 4) * 4, -(-k // 8) * 8
    w = np.zeros((n4, k8), np.int64)
    w[:n, :k] = w_nk
    # k = 4 i + 2 t + e -> [block][channel][i][t][e] -> [block][i][e][channel][t]
    w = w.reshape(n4 // 4, 4, k8 // 4, 2, 2).transpose(0, 2, 4, 1, 3).reshape(-1, 2)
    words = (w[:, 0] & 0xFFFF) | ((w[:, 1] & 0xFFFF) << 16)
    return words.astype(np.uint32).view(np.int32)


def pack_dsp_depthwise_weights(w_taps_c: np.ndarray) -> np.ndarray:
    """int8 depthwise weights [k_h][k_w][C] as the int32 words edgec_cm_depthwise_s8 reads:
    per group of 4 channels c..c+3 and tap (its taps contiguous) the words (w[c], w[c+2])
    and (w[c+1], w[c+3]), two int16 each with the first in the low half; C padded to a
    multiple of 4 with zeros."""
    c = w_taps_c.shape[-1]
    taps = w_taps_c.reshape(-1, c)
    c4 = -(-c // 4) * 4
    w = np.zeros((taps.shape[0], c4), np.int64)
    w[:, :c] = taps
    # channel = 4 g + 2 t + e -> [tap][g][t][e] -> [g][tap][e][t]
    w = w.reshape(taps.shape[0], c4 // 4, 2, 2).transpose(1, 0, 3, 2).reshape(-1, 2)
    return ((w[:, 0] & 0xFFFF) | ((w[:, 1] & 0xFFFF) << 16)).astype(np.uint32).view(np.int32)


def pack_mve_gemm_weights(w_nk: np.ndarray) -> np.ndarray:
    """int8 weights [N][K] as edgec_cm_mve_gemm_s8 reads them: channels in blocks of 4 (N
    padded with zero channels), per block and 16 K steps (K padded to a multiple of 16 with
    zeros) the 4 channels' 16 bytes."""
    n, k = w_nk.shape
    n4, k16 = -(-n // 4) * 4, -(-k // 16) * 16
    w = np.zeros((n4, k16), np.int8)
    w[:n, :k] = w_nk
    return np.ascontiguousarray(w.reshape(n4 // 4, 4, k16 // 16, 16).transpose(0, 2, 1, 3)
                                ).reshape(-1)


def pack_mve_depthwise_weights(w_taps_c: np.ndarray) -> np.ndarray:
    """int8 depthwise weights [k_h][k_w][C] as edgec_cm_mve_depthwise_s8 reads them: per group
    of 8 channels and tap the group's 8 bytes, C padded to a multiple of 8 with zeros."""
    c = w_taps_c.shape[-1]
    taps = w_taps_c.reshape(-1, c)
    c8 = -(-c // 8) * 8
    w = np.zeros((taps.shape[0], c8), np.int8)
    w[:, :c] = taps
    return np.ascontiguousarray(w.reshape(taps.shape[0], c8 // 8, 8).transpose(1, 0, 2)
                                ).reshape(-1)


def cortexm_params(node, target, p: dict) -> dict:
    """The template parameters of the Cortex-M kernel: `p`, with the weights packed for the
    DSP or Helium kernel (`cm_w`) and the DSP flags of the layer."""
    kind = "gemm" if node.op == "QGemm" else p.get("kind")
    out = dict(p)
    if "rq_shift" in p:  # per-channel shifts: the kernels read int32
        out["cm_shift"] = ConstArray(np.asarray(p["rq_shift"].data, np.int32), "rq_shift")
        del out["rq_shift"]
    shifts = np.asarray(p["rq_shift"].data if "rq_shift" in p else [p["rq_shift_lit"]])
    if target.isa == DSP:  # edgec_cm_dsp.h's EDGEC_CM_FAST_SHIFTS: no check at run time
        out["cm_fast_shifts"] = bool(np.all((shifts >= -31) & (shifts <= -2)))
    bias_eff = np.asarray(p["bias_eff"].data, np.int64)
    if kind == "depthwise":  # + the layer's own bias, where border pixels start
        w = np.asarray(p["weights"].data)
        x_zp = int(node.attrs["x_zero_point"])
        w_sum = w.reshape(-1, w.shape[-1]).astype(np.int64)
        bias = bias_eff + x_zp * w_sum.sum(0)
        out["cm_bias"] = ConstArray(bias.astype(np.int32), "bias")
        if target.isa == DSP:
            del out["weights"]
            out["cm_w"] = ConstArray(pack_dsp_depthwise_weights(w), "w_smla")
            out["cm_acc30"] = accumulators_below_2_30(np.maximum(abs(bias_eff), abs(bias)),
                                                      np.abs(w_sum).sum(0))
        else:
            del out["weights"]
            out["cm_w"] = ConstArray(pack_mve_depthwise_weights(w), "w_taps8")
        return out
    channels = p["NOUT"] if "NOUT" in p else p["M"]
    rows = np.asarray(p["weights"].data).reshape(channels, -1)  # [N][K]
    del out["weights"]
    if target.isa != DSP:
        out["cm_w"] = ConstArray(pack_mve_gemm_weights(rows), "w_k16x4")
        return out
    out["cm_w"] = ConstArray(pack_dsp_gemm_weights(rows), "w_smlad")
    out["cm_acc30"] = accumulators_below_2_30(abs(bias_eff),
                                              np.abs(rows.astype(np.int64)).sum(1))
    return out


def accumulators_below_2_30(bias_abs: np.ndarray, w_abs_sum: np.ndarray) -> bool:
    """True when every accumulator of the layer stays below 2^30 in magnitude: |bias| plus
    255 (the largest |x| or |x - x_zp| a DSP kernel multiplies) times the channel's sum of
    |w| (edgec_cm_dsp.h's EDGEC_CM_ACC30: requantisation by one SMMULR)."""
    bound = np.asarray(bias_abs, np.int64) + 255 * np.asarray(w_abs_sum, np.int64)
    return bool(bound.size == 0 or int(bound.max()) < 2**30)


def runtime_headers(target) -> tuple[str, ...]:
    """Runtime headers a Cortex-M kernel call needs (copied next to the generated C)."""
    extra = ("edgec_cm_dsp_dw.h",) if target.isa == DSP else ()
    return ("edgec_qmath.h", "edgec_cm_requant.h", "edgec_cm_conv.h", KERNEL_ISAS[target.isa]) + extra
