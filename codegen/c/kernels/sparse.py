"""Compressed (CSR) weights and zero-skipping kernels for fp32 Conv, Gemm and MatMul whose
constant weights are mostly zeros (`edgec prune --sparsity`, docs/pruning.md).

Storage: CSR over "rows" = (output channel, kernel tap): a Conv's weights W[M][C][KH][KW]
become rows r = (m * KH + kh) * KW + kw, each the non-zero input channels c of that tap,
stored as the input offset of (kh, kw, c) from the pixel's tap (0, 0), so that all rows of
one output channel are one run for pixels whose taps all lie inside the input;
a Gemm's / MatMul's B' (alpha folded in) becomes one row per output column n holding the
non-zero k. Three const arrays: `rowptr[R + 1]` (start of each row in the others), `cols`
(the channel / k of each non-zero) and `vals` (its value). Indices are int16_t where every
one fits (< 32768; the IR has no uint16 arrays), int32_t otherwise.

Kernel: per output (pixel, m): acc = bias; for each tap inside the input, for each non-zero
of its row, acc += x[c] * w; then the fused epilogue (residual, activation) as the dense
kernels. The products are added in the portable dense kernels' order (bias, then taps kh, kw
ascending, channels ascending; zeros skipped), so the result is bit-identical to them.

Cost model (`decide`), per layer, with `--sparse-weights`:
  off   never;
  on    every eligible layer whose CSR bytes are below its dense bytes (flash first);
  auto  (default) eligible layers with sparsity >= AUTO_MIN_SPARSITY (0.7), dense weights of
        at least AUTO_MIN_DENSE_BYTES (1 KiB), and an estimated work (`work_estimate`) not
        above the dense kernel's on the target. Below 70% zeros the index bytes (2 per
        non-zero) eat much of the flash saving; tiny layers save nothing worth a second code
        path. A model without such layers (every unpruned model) compiles exactly as before.
The work estimate counts instructions per inference with constants fitted to arm64 counts
(QEMU plugin, tools/sparse_bench.py): the zero-skipping loop is a scalar gather, ~5.6
instructions per non-zero and pixel in blocks, so it beats auto-vectorised portable C
(~0.75 per dense MAC) from ~85-90% zeros, and NEON/AVX2 kernels (~0.36 / ~0.25) hardly
ever; on Cortex-M4F (scalar FPU, 7.2 per dense MAC measured on DS-CNN) from far below 70%.
Eligible: fp32 Conv with group 1 (1-D or 2-D; channels-last input, or the model's
channels-first input read in place as the dense kernel does), Gemm with constant B,
no transA, no fused global pool and a constant bias row (or none), MatMul with a constant
2-D B. The layer's report row (`sparse_report`) lands in report.json's `sparse_weights`.
"""

from __future__ import annotations

import numpy as np
from edgec.codegen.c.epilogue import epilogue_c
from edgec.codegen.c.kernel import (
    PREFERRED,
    Candidate,
    ConstArray,
    Kernel,
    isa_family,
    register_candidates,
)
from edgec.codegen.c.kernels.conv import conv_geometry

from edgec.ir import Node
from edgec.ops import get_op
from edgec.ops.base import OpDef, in_type

MODES = ("auto", "off", "on")
AUTO_MIN_SPARSITY = 0.7
AUTO_MIN_DENSE_BYTES = 1024
INT16_LIMIT = 32767
PIXEL_BLOCK = 4  # output pixels (Conv) or rows of A (Gemm) sharing each weight load


def csr(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of a 2-D float array: (rowptr[R + 1], cols, vals), indices int16 where they fit."""
    rows = np.asarray(rows, np.float32)
    nz_rows, nz_cols = np.nonzero(rows)
    counts = np.bincount(nz_rows, minlength=rows.shape[0])
    rowptr = np.concatenate([[0], np.cumsum(counts)])
    ptr_t = np.int16 if rowptr[-1] <= INT16_LIMIT else np.int32
    col_t = np.int16 if rows.shape[1] - 1 <= INT16_LIMIT else np.int32
    vals = rows[nz_rows, nz_cols]
    if vals.size == 0:  # C has no empty arrays: one unused element each
        return rowptr.astype(ptr_t), np.zeros(1, col_t), np.zeros(1, np.float32)
    return rowptr.astype(ptr_t), nz_cols.astype(col_t), vals.astype(np.float32)


def _tap_offsets(node: Node, rowptr: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """A Conv's CSR columns (input channels of rows (m, kh, kw)) as input offsets from the
    pixel's tap (0, 0): tap and channel in one index, int16 where every one fits."""
    geo = conv_geometry(node)
    kt = geo["KH"] * geo["KW"]
    taps = np.repeat(np.arange(len(rowptr) - 1) % kt, np.diff(rowptr.astype(np.int64)))
    kh, kw = taps // geo["KW"], taps % geo["KW"]
    spatial = kh * geo["DH"] * geo["W"] + kw * geo["DW"]
    c = cols.astype(np.int64)[:len(taps)]
    offsets = c * geo["H"] * geo["W"] + spatial if geo["x_nchw"] else spatial * geo["C"] + c
    if offsets.size == 0:
        return cols
    return offsets.astype(np.int16 if offsets.max() <= INT16_LIMIT else np.int32)


def storage_bytes(rowptr: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> int:
    """Flash bytes of the three CSR arrays."""
    return int(rowptr.nbytes + cols.nbytes + vals.nbytes)


def _rows(node: Node) -> np.ndarray | None:
    """The layer's weights as CSR rows (see the module docstring), None when not eligible."""
    a = node.attrs
    if node.op == "Conv":
        if a["group"] != 1 or len(a["kernel_shape"]) > 2 or a["layout"] != "NHWC":
            return None
        w = OpDef.const_input(node, 1, "W")
        geo = conv_geometry(node)
        w4 = w.reshape(geo["M"], geo["C"], geo["KH"], geo["KW"])
        return w4.transpose(0, 2, 3, 1).reshape(geo["M"] * geo["KH"] * geo["KW"], geo["C"])
    if node.op == "Gemm":
        b, c = node.input(1), node.input(2)
        if not b.is_const or a["transA"] or a.get("input_pool", "none") != "none":
            return None
        if c is not None and not (c.is_const and _bias_row(node) is not None):
            return None
        bk = b.data.T if a["transB"] else b.data
        return (np.float32(a["alpha"]) * bk.astype(np.float32)).T  # [N][K]
    if node.op == "MatMul":
        b = node.input(1)
        if not b.is_const or len(b.shape) != 2 or in_type(node, 0).rank < 2:
            return None
        return b.data.astype(np.float32).T  # [N][K]
    return None


def _bias_row(node: Node) -> np.ndarray | None:
    """Gemm's beta * C as one row shared by every output row, None when rows differ."""
    a = node.attrs
    m, _, n = get_op("Gemm")._dims(node)
    cb = np.float32(a["beta"]) * np.broadcast_to(node.input(2).data, (m, n)).astype(np.float32)
    return np.ascontiguousarray(cb[0]) if np.all(cb == cb[:1]) else None


def decide(node: Node, mode: str, family: str | None = None) -> dict | None:
    """The layer's CSR arrays and report row when `mode` stores it sparse on a target of ISA
    family `family`, else None."""
    if mode == "off" or node.op not in ("Conv", "Gemm", "MatMul"):
        return None
    if node.output.dtype.value != "float32" or node.attrs.get("activation") not in (
            None, "none", "relu", "clip", "leaky_relu", "prelu", "hardswish", "hardsigmoid",
            "sigmoid", "silu", "tanh"):
        return None
    rows = _rows(node)
    if rows is None or rows.size == 0:
        return None
    dense_bytes = int(rows.size * 4)
    nonzeros = int(np.count_nonzero(rows))
    sparsity = 1.0 - nonzeros / rows.size
    if mode == "auto" and (sparsity < AUTO_MIN_SPARSITY or dense_bytes < AUTO_MIN_DENSE_BYTES):
        return None
    work = work_estimate(node, nonzeros, rows.size, family)
    if mode == "auto" and work["sparse"] > work["dense"]:
        return None
    rowptr, cols, vals = csr(rows)
    if node.op == "Conv":
        cols = _tap_offsets(node, rowptr, cols)
    sparse_bytes = storage_bytes(rowptr, cols, vals)
    if sparse_bytes >= dense_bytes:
        return None
    report = {
        "layer": node.name, "op": node.op, "storage": "csr",
        "index_type": "int16" if cols.dtype == np.int16 else "int32",
        "elements": int(rows.size), "nonzeros": nonzeros, "sparsity": round(sparsity, 4),
        "dense_bytes": dense_bytes, "sparse_bytes": sparse_bytes,
        "saved_bytes": dense_bytes - sparse_bytes,
        "work_estimate": work,
    }
    return {"rowptr": rowptr, "cols": cols, "vals": vals, "rows": rows.shape[0],
            "report": report}


# Instructions per dense MAC of the dense kernels per ISA family (kernel.isa_family).
DENSE_COST_PER_MAC = {"x86": 0.25, "arm64": 0.36, "cortex-m": 7.2, None: 0.75}
NZ_BLOCK, M_BLOCK = 5.6, 3.0  # blocked pixels: per non-zero and pixel, per channel and pixel
NZ_SINGLE, M_SINGLE, SEGMENT = 5.0, 12.0, 8.0  # single pixels: per non-zero, channel, kh run


def _pixel_split(geo: dict) -> tuple[int, int]:
    """(pixels in blocks, pixels alone) of the sparse Conv's walk (see _pixel_runs)."""
    runs = _pixel_runs(geo)
    if runs["rows"] == 1:
        blocked = runs["run"] // PIXEL_BLOCK * PIXEL_BLOCK
        return blocked, runs["run"] - blocked
    oh_lo, oh_hi = _inside_range(geo["H"], geo["SH"], geo["PT"], geo["KH"], geo["DH"], geo["OH"])
    ow_lo, ow_hi = _inside_range(geo["W"], geo["SW"], geo["PL"], geo["KW"], geo["DW"], geo["OW"])
    per_row = 0 if runs["block_cond"] == "0" else (ow_hi - ow_lo) // PIXEL_BLOCK * PIXEL_BLOCK
    blocked = geo["N"] * (oh_hi - oh_lo) * per_row
    return blocked, geo["N"] * geo["OH"] * geo["OW"] - blocked


def work_estimate(node: Node, nonzeros: int, elements: int, family: str | None) -> dict:
    """Estimated instructions per inference of the sparse and the dense kernel (module
    docstring); `family` is the target's ISA family (None: portable C)."""
    if node.op == "Conv":
        geo = conv_geometry(node)
        blocked, single = _pixel_split(geo)
        m, kh = geo["M"], geo["KH"]
        sparse = blocked * (NZ_BLOCK * nonzeros + M_BLOCK * m) + single * (
            NZ_SINGLE * nonzeros + m * (M_SINGLE + kh * SEGMENT))
        outputs = blocked + single
    else:
        n = node.output.shape[-1]
        outputs = node.output.type.numel // max(n, 1)
        sparse = outputs * (NZ_SINGLE * nonzeros + M_SINGLE * n)
    dense = outputs * elements * DENSE_COST_PER_MAC.get(family, DENSE_COST_PER_MAC[None])
    return {"sparse": int(sparse), "dense": int(dense)}


def _mode(scratch) -> str:
    return scratch.get("sparse_weights", "auto")


def _plan(node: Node, target, scratch) -> dict | None:
    return scratch.once("sparse", lambda: decide(node, _mode(scratch), isa_family(target)))


def _csr_params(plan: dict) -> dict:
    ctype = {np.dtype(np.int16): "int16_t", np.dtype(np.int32): "int32_t"}
    return {
        "rowptr": ConstArray(plan["rowptr"], "w_rowptr"),
        "cols": ConstArray(plan["cols"], "w_cols"),
        "vals": ConstArray(plan["vals"], "w_vals"),
        "ptr_t": ctype[plan["rowptr"].dtype], "col_t": ctype[plan["cols"].dtype],
        "sparse_report": plan["report"],
    }


def _activation_params(node: Node) -> dict:
    p = {"epilogue": epilogue_c(node, "acc", channel="m", slope_name="act_slope_arr")}
    if node.attrs.get("activation") == "prelu":
        p["prelu_slope"] = ConstArray(np.asarray(node.attrs["act_slope"], np.float32), "slope")
    return p


def _build(node: Node, target, scratch) -> Kernel:
    plan = _plan(node, target, scratch)
    p = {**_csr_params(plan), **_activation_params(node)}
    if node.op == "Conv":
        p.update(conv_geometry(node))
        p.update({"KT": p["KH"] * p["KW"], "PB": PIXEL_BLOCK, **_pixel_runs(p)})
        return Kernel("ops/sparse_conv.c.j2", p)
    k = plan["report"]["elements"] // plan["rows"]
    n = plan["rows"]
    rows_total = in_type(node, 0).numel // k if k else 0
    p.update({"M": rows_total, "K": k, "N": n, "PB": PIXEL_BLOCK,
              "residual_input": 3 if node.op == "Gemm" else 2})
    if node.op == "Gemm" and node.input(2) is not None:
        p["bias_row"] = ConstArray(_bias_row(node), "bias")
    return Kernel("ops/sparse_gemm.c.j2", p)


def _inside_range(size, stride, pad, k, dil, extent) -> tuple[int, int]:
    """[lo, hi): the output positions whose every tap lies inside an input of `size`."""
    lo = -(-pad // stride)  # first o with o * stride >= pad
    last = size - 1 + pad - (k - 1) * dil  # o * stride must not pass it
    hi = min(last // stride + 1 if last >= 0 else 0, extent)
    return lo, max(hi, lo)


def _pixel_runs(geo: dict) -> dict:
    """How the sparse Conv walks its output pixels: `rows` runs of `run` pixels (image rows,
    or the whole output as one run when no tap ever leaves the input) and `block_cond`, the
    C condition under which the PIXEL_BLOCK pixels from `ow0` on are all inside."""
    oh_lo, oh_hi = _inside_range(geo["H"], geo["SH"], geo["PT"], geo["KH"], geo["DH"], geo["OH"])
    ow_lo, ow_hi = _inside_range(geo["W"], geo["SW"], geo["PL"], geo["KW"], geo["DW"], geo["OW"])
    pixels = geo["N"] * geo["OH"] * geo["OW"]
    if (oh_lo, oh_hi, ow_lo, ow_hi) == (0, geo["OH"], 0, geo["OW"]):
        return {"rows": 1, "run": pixels, "block_cond": f"(ow0 + {PIXEL_BLOCK}u <= {pixels}u)"}
    if oh_lo >= oh_hi or ow_hi - ow_lo < PIXEL_BLOCK:
        return {"rows": geo["N"] * geo["OH"], "run": geo["OW"], "block_cond": "0"}
    terms = [f"row % {geo['OH']}u >= {oh_lo}u"] if oh_lo > 0 else []
    terms += [f"row % {geo['OH']}u < {oh_hi}u"] if oh_hi < geo["OH"] else []
    terms += [f"ow0 >= {ow_lo}u"] if ow_lo > 0 else []
    terms.append(f"ow0 + {PIXEL_BLOCK}u <= {ow_hi}u")
    return {"rows": geo["N"] * geo["OH"], "run": geo["OW"],
            "block_cond": "(" + " && ".join(terms) + ")"}


def sparse_layer_rows(kernels) -> list[dict]:
    """The report rows of the kernels that store their weights sparse (report.json)."""
    return [dict(k.params["sparse_report"]) for k in kernels if "sparse_report" in k.params]


def sparse_summary(rows: list[dict]) -> dict:
    """report.json's `sparse_weights` section: the layers and the flash they save."""
    return {"layers": rows, "saved_bytes": int(sum(r["saved_bytes"] for r in rows)),
            "dense_bytes": int(sum(r["dense_bytes"] for r in rows)),
            "sparse_bytes": int(sum(r["sparse_bytes"] for r in rows)),
            "auto_min_sparsity": AUTO_MIN_SPARSITY}


def _accepts(node: Node, target, scratch) -> bool:
    return _plan(node, target, scratch) is not None


register_candidates(("Conv", "Gemm", "MatMul"), PREFERRED,
                    [Candidate("sparse-csr", _build, _accepts)])
