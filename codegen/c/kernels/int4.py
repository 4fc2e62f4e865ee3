"""C kernels of QConv / QGemm layers with int4 weights (W4A8, `weight_bits` 4, from
`--weight-bits 4`): the weights two per byte in the C (codegen/c/int4_pack.py), unpacked in
registers, bit-exact with the int8 reference (an int4 weight is a small int8 weight).

One preferred candidate takes every such node (so no int8 kernel ever sees it) and builds,
in order:
  x86 (AVX2, also on x86_64-int8-vnni): `ops/x86/q4conv_gemm` - the AVX2 GEMM of
         x86/qconv_gemm (pointwise, im2col, and fully connected layers as 1x1 convolutions)
         with nibble panels (edgec_x86_q4.h); VNNI's vpdpbusd path stays int8-only;
  arm64 (SDOT or ARMv8.0 NEON; arm64-int8-i8mm takes the SDOT form):
         `ops/arm64/q4gemm` - arm64/qgemm with nibble blocks (edgec_neon_q4.h);
  portable (generic-int8, Cortex-M, layers no SIMD kernel takes): `ops/q4gemm`
         (pointwise / fully connected), `ops/q4conv` (general convolution).
A depthwise QConv never gets int4 weights from the quantize pass; one that has them anyway
runs the int8 depthwise kernel (weights one per byte).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from edgec.codegen.c.int4_pack import pack_int4, pack_rows
from edgec.codegen.c.int_params import CONV_TEMPLATES
from edgec.codegen.c.isa import arm64_q8, x86_q8
from edgec.codegen.c.kernel import PREFERRED, Candidate, ConstArray, Kernel, register_candidates
from edgec.codegen.c.kernels.quantized import Q_RUNTIME, portable_int8_params

from edgec.ir import Node
from edgec.ops.quantized import check_weight_bits

Q4_RUNTIME = (*Q_RUNTIME, "edgec_q4.h")
X86_Q4_RUNTIME = (*x86_q8.RUNTIME, "edgec_x86_q4.h")
NEON_Q4_RUNTIME = (*arm64_q8.Q8_RUNTIME, "edgec_neon_q4.h")
NEON_HALF = 16  # bytes of a NEON weight vector: two of them per 16 packed bytes


def _is_int4(node: Node, target, scratch) -> bool:
    if node.attrs.get("weight_bits", 8) != 4:
        return False
    check_weight_bits(node)
    return True


def _report(node: Node, packed: np.ndarray, kernel: str) -> dict:
    return {"node": node.name, "op": node.op, "kernel": kernel,
            "weights": int(node.input(1).data.size), "bytes": int(packed.nbytes)}


# --------------------------------------------------------------------------- x86
def _x86_conv_like(node: Node, p: dict) -> dict:
    """A QGemm's portable parameters in the form of a pointwise QConv (1x1, one group)."""
    if node.op == "QConv":
        return p
    rows, k, n = p["ROWS"], p["K"], p["NOUT"]
    return {**p, "kind": "pointwise", "N": rows, "H": 1, "W": 1, "C": k, "OH": 1, "OW": 1,
            "M": n, "KH": 1, "KW": 1, "SH": 1, "SW": 1, "DH": 1, "DW": 1, "PT": 0, "PL": 0,
            "G": 1, "CG": k, "MG": n}


def _x86_applies(node: Node, target, p: dict) -> bool:
    if not x86_q8.is_x86(target):
        return False
    if node.op == "QConv":
        return x86_q8.qconv_kind(node, target, p) == "gemm"
    return x86_q8.qgemm_applies(node, target, p)


def x86_nibble_panels(q_weights: np.ndarray, groups: int, kg: int, layout: dict) -> np.ndarray:
    """The AVX2 int16 panels (per group: `layout["full"]` panels of 16 channels and a tail of
    8 * tail_nv, each [kg][width][2]) as nibbles, half = width per k-pair."""
    widths = [16] * layout["full"] + ([8 * layout["tail_nv"]] if layout["tail_nv"] else [])
    src = np.asarray(q_weights, np.int64).reshape(-1)
    parts, at = [], 0
    for _ in range(groups):
        for width in widths:
            size = kg * 2 * width
            parts.append(pack_int4(src[at:at + size], width))
            at += size
    return np.concatenate(parts) if parts else np.zeros(0, np.uint8)


def _x86_build(node: Node, p: dict) -> Kernel:
    conv_like = _x86_conv_like(node, p)
    # the conv packer reads [M, CG, KH, KW] weights: a QGemm's [N, K] seen as [N, K, 1, 1]
    params = dict(x86_q8.qconv_params(_Reshaped(node), conv_like, "gemm", vnni=False))
    packed = x86_nibble_panels(params["q_weights"].data, params["G"], params["KG"],
                               params["layout"])
    params["q_weights"] = ConstArray(packed, "w4_panels")
    del params["q_m_odd"]  # edgec_q4_gemm_tile derives it from q_m_even (vpsrlq)
    params["int4_report"] = _report(node, packed, "x86-q4gemm")
    return Kernel("ops/x86/q4conv_gemm.c.j2", params, X86_Q4_RUNTIME)


class _Reshaped:
    """A QGemm node seen by the x86 conv packer: weights [N, K] as [N, K, 1, 1]."""

    def __init__(self, node: Node):
        self._node = node

    def __getattr__(self, name):
        return getattr(self._node, name)

    def input(self, index: int):
        """Input `index` of the node (the weights reshaped to 4-D)."""
        v = self._node.input(index)
        if index != 1 or v.data.ndim == 4:
            return v
        return _Const(v.data.reshape(v.data.shape + (1, 1)))


class _Const:
    def __init__(self, data: np.ndarray):
        self.data = data


# --------------------------------------------------------------------------- arm64
def neon_target(target):
    """The target whose NEON int4 tile a layer runs: arm64-int8-i8mm (ARMv8.2 + dotprod +
    i8mm) takes the SDOT one (there is no SMMLA int4 tile yet), the others their own."""
    if arm64_q8.flavour(target) == "mmla":
        return replace(target, isa="arm64-dotprod")
    return target


def _neon_template(node: Node, target, p: dict) -> bool:
    target = neon_target(target)
    if arm64_q8.flavour(target) not in ("dot", "mull"):
        return False
    if node.op == "QConv":
        return arm64_q8.qconv_template(node, target, p) == "ops/arm64/qgemm.c.j2"
    return arm64_q8.qgemm_template(node, target, p) is not None


def _neon_build(node: Node, target, p: dict) -> Kernel:
    target = neon_target(target)
    make = arm64_q8.qconv_params if node.op == "QConv" else arm64_q8.qgemm_params
    params = dict(make(node, target, p))
    packed = pack_int4(params["weights"].data, NEON_HALF)
    params["weights"] = ConstArray(packed, f"w4_{params['flavour']}")
    params["int4_report"] = _report(node, packed, f"neon-q4gemm-{params['flavour']}")
    return Kernel("ops/arm64/q4gemm.c.j2", params, NEON_Q4_RUNTIME)


# --------------------------------------------------------------------------- portable
def _portable_build(node: Node, p: dict) -> Kernel | None:
    kind = p.get("kind", "pointwise") if node.op == "QConv" else "pointwise"
    if kind == "depthwise":
        return None
    w = node.input(1).data.astype(np.int64)
    if kind == "pointwise":
        rows = w.reshape(w.shape[0], -1)
        template = "ops/q4gemm.c.j2"
    else:  # [g][mg][kh][kw][cg] = per output channel [kh][kw][cg]
        rows = np.transpose(w, (0, 2, 3, 1)).reshape(w.shape[0], -1)
        template = "ops/q4conv.c.j2"
    packed, row_bytes = pack_rows(rows)
    params = {key: val for key, val in p.items() if key != "weights"}
    params.update({"w4": ConstArray(packed, "w4_rows"), "ROW_BYTES": row_bytes,
                   "int4_report": _report(node, packed, template.split("/")[-1].split(".")[0])})
    return Kernel(template, params, Q4_RUNTIME)


def _build(node: Node, target, scratch) -> Kernel:
    p = portable_int8_params(node, scratch)
    if _x86_applies(node, target, p):
        return _x86_build(node, p)
    if _neon_template(node, target, p):
        return _neon_build(node, target, p)
    kernel = _portable_build(node, p)
    if kernel is None:  # depthwise: the int8 kernel, one weight per byte
        return Kernel(CONV_TEMPLATES["depthwise"], p, Q_RUNTIME)
    return kernel


def int4_summary(kernels) -> dict | None:
    """report.json's `weight_bits` rows: the layers whose weights the C stores as int4."""
    rows = [dict(k.params["int4_report"]) for k in kernels
            if k is not None and "int4_report" in k.params]
    if not rows:
        return None
    return {"int4_layers": rows, "int4_bytes": int(sum(r["bytes"] for r in rows)),
            "int4_weights": int(sum(r["weights"] for r in rows))}


def weights_bytes_by_bits(weights, int4_bytes: int) -> dict:
    """{"bytes_by_bits": {"4": ..., "8": ..., "16": ..., "32": ...}} of the C's constant arrays
    (`weights`: the back-end's rows with their data): the packed int4 weights are 4, every
    other array counts at its element width."""
    by_bits: dict[str, int] = {"4": int(int4_bytes)}
    for w in weights:
        data = w["data"]
        key = str(8 * data.dtype.itemsize)
        by_bits[key] = by_bits.get(key, 0) + int(data.nbytes)
    by_bits["8"] = by_bits.get("8", 0) - int(int4_bytes)  # the packed arrays are uint8
    return {"bytes_by_bits": dict(sorted(by_bits.items(), key=lambda kv: int(kv[0])))}


register_candidates(("QConv", "QGemm"), PREFERRED, [Candidate("int4", _build, _is_int4)])
