"""C kernels of fp32 Gemm and MatMul.

Candidates, in order:
  Gemm    x86: `ops/x86/gemm` (constant B, A not transposed, constant or no C);
          arm64: `ops/arm64/gemm_f32` (constant B, no transA, no pooled input, bias one row);
          portable: `ops/gemm` (B packed [K][N] times alpha, or read in place; any C).
  MatMul  x86: `ops/x86/matmul`; portable: `ops/matmul` (batch offsets as const tables).
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Node
from edgec.ops import get_op
from edgec.ops.base import in_type
from edgec.ops.gemm import MatMul
from edgec.codegen.c.epilogue import epilogue_c
from edgec.codegen.c.isa import arm64_f32, x86_f32
from edgec.codegen.c.kernel import PORTABLE, Candidate, ConstArray, Kernel, register_candidates


def _gemm_dims(node: Node) -> tuple[int, int, int]:
    return get_op("Gemm")._dims(node)


def portable_gemm_params(node: Node) -> dict:
    """Parameters of ops/gemm: dims, B (constant: packed [K][N] times alpha), C as a bias row,
    a full bias or an index into a computed C, pooled-input count, epilogue."""
    at = node.attrs
    m, k, n = _gemm_dims(node)
    b = node.input(1)
    p = {"M": m, "K": k, "N": n, "transA": at["transA"], "alpha_lit": f"{at['alpha']!r}f"}
    if at.get("input_pool", "none") == "mean":
        count = in_type(node, 0).numel // (m * k)
        p["pool_count"] = count
        p["pool_scale"] = f"{float(np.float32(1.0 / count))!r}f"
    if b.is_const:
        bk = b.data.T if at["transB"] else b.data
        p["b_packed"] = ConstArray(
            np.ascontiguousarray(np.float32(at["alpha"]) * bk.astype(np.float32)), "b_kn")
        p["b_const"] = True
    else:
        p["b_const"] = False
        p["transB"] = at["transB"]
    c = node.input(2)
    if c is not None and c.is_const:
        cb = np.float32(at["beta"]) * np.broadcast_to(c.data, (m, n)).astype(np.float32)
        if np.all(cb == cb[:1]):
            p["bias_row"] = ConstArray(np.ascontiguousarray(cb[0]), "bias")
        else:
            p["bias_full"] = ConstArray(np.ascontiguousarray(cb), "bias")
    elif c is not None:
        # A computed C broadcast to [M, N]: a size-1 dimension is not indexed.
        rows, cols = (1,) * (2 - len(c.shape)) + tuple(c.shape)
        terms = []
        if rows != 1:
            terms.append("i" if cols == 1 else f"i * {cols}u")
        if cols != 1:
            terms.append("m")
        p["bias_index"] = " + ".join(terms) or "0"
        p["beta_lit"] = f"{float(np.float32(at['beta']))!r}f"
    if at["activation"] == "prelu":
        p["prelu_slope"] = ConstArray(np.asarray(at["act_slope"], np.float32), "slope")
    p["epilogue"] = epilogue_c(node, "acc", channel="m", slope_name="act_slope_arr")
    return p


def _gemm_portable(node: Node, scratch) -> dict:
    return scratch.once("portable", lambda: portable_gemm_params(node))


def _x86_gemm(node: Node, target, scratch) -> Kernel:
    m, k, n = _gemm_dims(node)
    return Kernel("ops/x86/gemm.c.j2", x86_f32.gemm_params(node, m, k, n), x86_f32.RUNTIME)


def _neon_gemm_accepts(node: Node, target, scratch) -> bool:
    return arm64_f32.gemm_template(node, target, _gemm_portable(node, scratch)) is not None


def _neon_gemm(node: Node, target, scratch) -> Kernel:
    template = arm64_f32.gemm_template(node, target, _gemm_portable(node, scratch))
    params = arm64_f32.gemm_params(node, target, _gemm_portable(node, scratch))
    return Kernel(template, params, arm64_f32.runtime_for(template))


def _portable_gemm(node: Node, target, scratch) -> Kernel:
    return Kernel("ops/gemm.c.j2", _gemm_portable(node, scratch))


def _matmul_offsets(node: Node):
    batch, m, k, n, abatch, bbatch = MatMul.shapes(node)
    rank = len(batch)
    abatch = (1,) * (rank - len(abatch)) + tuple(abatch)
    bbatch = (1,) * (rank - len(bbatch)) + tuple(bbatch)

    def batch_offsets(bshape, mat_size):
        # Element offset of each output batch's matrix inside the operand.
        offs = []
        for idx in np.ndindex(*batch) if batch else [()]:
            flat = 0
            for d, i in enumerate(idx):
                flat = flat * bshape[d] + (i if bshape[d] != 1 else 0)
            offs.append(flat * mat_size)
        return offs

    return m, k, n, batch_offsets(abatch, m * k), batch_offsets(bbatch, k * n)


def _x86_matmul(node: Node, target, scratch) -> Kernel:
    m, k, n, a_offs, b_offs = _matmul_offsets(node)
    params = x86_f32.matmul_params(node, len(a_offs), m, k, n, a_offs, b_offs)
    return Kernel("ops/x86/matmul.c.j2", params, x86_f32.RUNTIME)


def _portable_matmul(node: Node, target, scratch) -> Kernel:
    m, k, n, a_offs, b_offs = _matmul_offsets(node)
    p = {"M": m, "K": k, "N": n, "B": len(a_offs)}
    p["a_offsets"] = ConstArray(np.asarray(a_offs, np.int32), "a_off")
    p["b_offsets"] = ConstArray(np.asarray(b_offs, np.int32), "b_off")
    if node.attrs["activation"] == "prelu":
        p["prelu_slope"] = ConstArray(np.asarray(node.attrs["act_slope"], np.float32), "slope")
    p["epilogue"] = epilogue_c(node, "acc", channel="m", slope_name="act_slope_arr")
    return Kernel("ops/matmul.c.j2", p)


register_candidates("Gemm", "x86", [
    Candidate("x86-gemm", _x86_gemm, lambda n, t, s: x86_f32.gemm_kernel(n, t))])
register_candidates("Gemm", "arm64", [Candidate("neon-gemm", _neon_gemm, _neon_gemm_accepts)])
register_candidates("Gemm", PORTABLE, [Candidate("gemm", _portable_gemm)])
register_candidates("MatMul", "x86", [
    Candidate("x86-matmul", _x86_matmul, lambda n, t, s: x86_f32.uses_x86(n, t))])
register_candidates("MatMul", PORTABLE, [Candidate("matmul", _portable_matmul)])
