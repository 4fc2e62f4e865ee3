"""C kernels of RNN, GRU and LSTM (edgec/ops/recurrent.py; DynamicQuantizeLSTM becomes an LSTM
at import).

Candidates, in order:
  x86   `ops/recurrent_simd` on the AVX2+FMA micro-kernels (edgec_x86_f32.h);
  arm64 `ops/recurrent_simd` on the NEON micro-kernels (edgec_neon_f32.h);
        both for float32 X with constant W, R (and B, P when present);
  portable `ops/recurrent`: one template stepping each direction over the sequence.

The SIMD form splits each step's gates G x H into the two GEMMs of the cell:
  - the input projection xw[t] = W x_t + Wb + Rb for a block of up to TIME_BLOCK_BYTES of
    time steps at once: a GEMM whose rows are the block's steps (pointers into X, so reverse
    directions and batch-major layouts need no copy), on the ISA's GEMM tile with W' packed
    at compile time;
  - the recurrent projection gates = xw[t] + R h_{t-1}, per step: a GEMV (x86: the 64-column
    GEMV panels; arm64: a one-row GEMM tile) starting from xw[t] as its bias.
GRU runs the recurrent projection in two parts: z and r first, then the candidate's rows of
R times r (.) h_{t-1} (linear_before_reset 0) or times h_{t-1} from the recurrent bias
(linear_before_reset 1, whose Rb_h stays out of xw). Gate columns are laid out with each part
starting at a multiple of 8 floats (`gate_offsets`), which the NEON tile's 8-wide loads and
stores need. Clip, activations, peepholes and the state update are the portable template's
scalar C, on the same state buffers (Y rows, Y_h, Y_c), so the streaming pattern is the same.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import UnsupportedError
from edgec.ir import DType, Node
from edgec.ops import get_op
from edgec.codegen.c.isa import arm64_f32, x86_f32
from edgec.codegen.c.naming import comment_text
from edgec.codegen.c.kernel import (PORTABLE, Candidate, ConstArray, Kernel, op_lowering,
                                    register_candidates)

OPS = ("GRU", "LSTM", "RNN", "DynamicQuantizeLSTM")
TIME_BLOCK_BYTES = 32 * 1024  # input projections of one block of steps, on the stack
GEMV_PANEL = 64  # columns of an x86 GEMV panel (edgec_f32_gemv_panel)


def activation_c(name: str, alpha: float, beta: float, v: str) -> str:
    """The same activation as a C99 float expression of `v` (a simple identifier)."""
    a, b = _lit(alpha), _lit(beta)
    return {
        "Relu": f"({v} > 0.0f ? {v} : 0.0f)",
        "Tanh": f"tanhf({v})",
        "Sigmoid": f"(1.0f / (1.0f + expf(-{v})))",
        "Softsign": f"({v} / (1.0f + fabsf({v})))",
        "Softplus": f"(log1pf(expf(-fabsf({v}))) + ({v} > 0.0f ? {v} : 0.0f))",
        "Affine": f"({a} * {v} + {b})",
        "LeakyRelu": f"({v} >= 0.0f ? {v} : {a} * {v})",
        "ThresholdedRelu": f"({v} > {a} ? {v} : 0.0f)",
        "ScaledTanh": f"({a} * tanhf({b} * {v}))",
        "HardSigmoid": f"fminf(fmaxf({a} * {v} + {b}, 0.0f), 1.0f)",
        "Elu": f"({v} >= 0.0f ? {v} : {a} * expm1f({v}))",
    }[name]


def _lit(x: float) -> str:
    x = float(np.float32(x))
    if not np.isfinite(x):
        raise UnsupportedError("recurrent activation parameters must be finite")
    return f"{x!r}f"


def recurrent_op_params(op, node: Node, target) -> dict:
    """C template parameters of a RecurrentOp node (`op`: its registry entry)."""
    k = op.dims(node)
    acts = op.activation_params(node)
    per_dir = len(op.default_activations)
    return {**k, "kind": node.op, "gates": op.gates, "layout": node.attrs["layout"],
            "directions": ["reverse" if node.attrs["direction"] == "reverse" or di == 1
                           else "forward" for di in range(k["D"])],
            "act": [[activation_c(n, a, b, "v") for n, a, b in acts[di * per_dir:
                                                                      (di + 1) * per_dir]]
                    for di in range(k["D"])],
            "clip": None if node.attrs.get("clip") is None else _lit(node.attrs["clip"]),
            "input_forget": int(node.attrs.get("input_forget", 0)),
            "lbr": int(node.attrs.get("linear_before_reset", 0))}


def _pad8(n: int) -> int:
    return -(-n // 8) * 8


def gate_parts(kind: str, gates: int) -> list[tuple[int, int]]:
    """(first gate, gate count) of each recurrent-projection part: GRU's z, r then h."""
    return [(0, 2), (2, 1)] if kind == "GRU" else [(0, gates)]


def _simd_accepts(node: Node, target) -> bool:
    x = node.input(0)
    if x is None or x.dtype != DType.FLOAT32:
        return False
    return all(node.input(i) is None or node.input(i).is_const for i in (1, 2, 3, 7)) \
        and node.input(1) is not None and node.input(2) is not None


def _x86_gemv_pack(kn: np.ndarray) -> tuple[np.ndarray, dict]:
    """[K, N] as x86 GEMV panels [K][64] ... [K][8 * tail_nv] and their layout."""
    k, n = kn.shape
    full, tail = divmod(n, GEMV_PANEL)
    tail_nv = -(-tail // 8)
    padded = np.zeros((k, full * GEMV_PANEL + 8 * tail_nv), np.float32)
    padded[:, :n] = kn
    parts = [padded[:, j * GEMV_PANEL:(j + 1) * GEMV_PANEL] for j in range(full)]
    if tail_nv:
        parts.append(padded[:, full * GEMV_PANEL:])
    data = np.concatenate([np.ascontiguousarray(q).reshape(-1) for q in parts])
    return data, {"full": full, "tail_nv": tail_nv,
                  "tail_ncols": tail - 8 * (tail_nv - 1) if tail_nv else 8}


def recurrent_simd_params(node: Node, target, isa: str) -> dict:
    """Template parameters of ops/recurrent_simd for `isa` ("x86" or "arm64"): the portable
    parameters plus W' packed for the projection GEMM, R' per part for the GEMV, the
    projection bias and the gate column layout (see the module docstring)."""
    op = get_op(node.op)
    p = recurrent_op_params(op, node, target)
    s, i_dim, h, d, g = p["S"], p["I"], p["H"], p["D"], p["gates"]
    parts = gate_parts(p["kind"], g)
    offsets, col = [0] * g, 0
    part_info = []
    for first, count in parts:
        part_info.append({"first": first, "count": count, "offset": col, "N": count * h})
        for k in range(count):
            offsets[first + k] = col + k * h
        col += _pad8(count * h)
    npad = col
    w = node.input(1).data.astype(np.float32)
    r = node.input(2).data.astype(np.float32)
    bias = node.input(3).data.astype(np.float32) if node.input(3) is not None else None
    lbr_gru = p["kind"] == "GRU" and p["lbr"]
    proj_w, proj_b, rec_b = [], [], []
    rec_packs = [[] for _ in parts]
    for di in range(d):
        w_cols = np.zeros((i_dim, npad), np.float32)
        b_cols = np.zeros(npad, np.float32)
        for gi in range(g):
            rows = slice(gi * h, (gi + 1) * h)
            w_cols[:, offsets[gi]:offsets[gi] + h] = w[di, rows].T
            if bias is not None:
                wb, rb = bias[di, rows], bias[di, g * h:][rows]
                b_cols[offsets[gi]:offsets[gi] + h] = wb if lbr_gru and gi == 2 else wb + rb
        if lbr_gru:
            rbh = np.zeros(_pad8(h), np.float32)
            if bias is not None:
                rbh[:h] = bias[di, g * h + 2 * h:g * h + 3 * h]
            rec_b.append(rbh)
        proj_b.append(b_cols)
        for k, info in enumerate(part_info):
            rows = slice(info["first"] * h, (info["first"] + info["count"]) * h)
            rec_packs[k].append(np.ascontiguousarray(r[di, rows].T))  # [H, N_part]
        if isa == "x86":
            proj_w.append(x86_f32.pack_panels(w_cols, x86_f32.panel_layout(npad)))
        else:
            proj_w.append(arm64_f32.pack_panels_f32(w_cols).reshape(-1))
    tile = x86_f32.TILE_ROWS if isa == "x86" else arm64_f32.F32_TILE_ROWS
    block = max(tile, TIME_BLOCK_BYTES // (4 * npad) // tile * tile)
    p.update({"isa": isa, "NPAD": npad, "gate_offsets": offsets, "TBLK": min(block, s),
              "TILE": tile, "proj_w": ConstArray(np.concatenate(proj_w), "w_proj"),
              "proj_w_dir": proj_w[0].size,
              "proj_b": ConstArray(np.concatenate(proj_b), "b_proj"),
              "proj_layout": x86_f32.panel_layout(npad)})
    if rec_b:
        p["rec_bias"] = ConstArray(np.concatenate(rec_b), "rb_h")
    for k, info in enumerate(part_info):
        if isa == "x86":
            packed = [_x86_gemv_pack(kn) for kn in rec_packs[k]]
            info["layout"] = packed[0][1]
            data = [q for q, _ in packed]
        else:
            data = [arm64_f32.pack_panels_f32(kn).reshape(-1) for kn in rec_packs[k]]
            info["NP"] = -(-info["N"] // 8)
        info["dir_floats"] = data[0].size
        p[f"r_part{k}"] = ConstArray(np.concatenate(data), f"r_part{k}")  # top level: emitted
    p["parts"] = part_info
    return p


def _simd_candidate(isa: str, accepts, runtime) -> Candidate:
    def build(node: Node, target, scratch) -> Kernel:
        return Kernel("ops/recurrent_simd.c.j2", recurrent_simd_params(node, target, isa),
                      runtime)

    return Candidate(f"{isa}-recurrent",
                     build, lambda n, t, s: accepts(t) and _simd_accepts(n, t))


register_candidates(OPS, "x86", [_simd_candidate(
    "x86", lambda t: getattr(t, "isa", "") in x86_f32.ISAS, x86_f32.RUNTIME)])
register_candidates(OPS, "arm64", [_simd_candidate(
    "arm64", arm64_f32.is_arm64, arm64_f32.F32_RUNTIME)])
register_candidates(OPS, PORTABLE, [op_lowering('ops/recurrent.c.j2', recurrent_op_params)])


def hybrid_recurrent_params(node: Node, target, scratch) -> Kernel:
    """ops/qlstm, ops/qgru or ops/qrnn: the hybrid int8 LSTM / GRU / RNN
    (edgec/ops/quantized_lstm.py, quantized_gru.py), portable C for every int8 target (its float32 part uses
    edgec_f32_math.h, so every target gives the same bits)."""
    op = get_op(node.op)
    k = op.dims(node)
    a = node.attrs
    p = {**k, "layout": a["layout"], "input_forget": int(a.get("input_forget", 0)),
         "lbr": int(a.get("linear_before_reset", 0)),
         "directions": ["reverse" if a["direction"] == "reverse" or di == 1 else "forward"
                        for di in range(k["D"])],
         "clip": None if a.get("clip") is None else _lit(a["clip"]),
         "x_zp": int(a["x_zero_point"]), "y_zp": int(a["y_zero_point"]),
         "y_scale": _lit(a["y_scale"]),
         "xw_scale": ConstArray(np.asarray(a["xw_scale"], np.float32), "xw_scale"),
         "r_scale": ConstArray(np.asarray(a["r_scale"], np.float32), "r_scale")}
    template = {"QLSTM": "ops/qlstm.c.j2", "QGRU": "ops/qgru.c.j2",
                "QRNN": "ops/qrnn.c.j2"}[node.op]
    return Kernel(template, p, ("edgec_f32_math.h",))


register_candidates(("QLSTM", "QGRU", "QRNN"), PORTABLE,
                    [Candidate("hybrid-recurrent", hybrid_recurrent_params)])


# (state input index, state output index) of the recurrent ops: initial_h -> Y_h, and
# LSTM's initial_c -> Y_c.
STATE_PAIRS = {"RNN": ((5, 1),), "QRNN": ((5, 1),), "GRU": ((5, 1),), "QGRU": ((5, 1),),
               "LSTM": ((5, 1), (6, 2)), "QLSTM": ((5, 1), (6, 2))}


def streaming_state(g, in_names: list[str], out_names: list[str]) -> list[dict]:
    """The state the caller carries between calls to stream a sequence in chunks: one entry
    per recurrent node whose state output is a graph output and whose initial state is a
    graph input ({node, op, output: index, output_name, input: index, input_name}); the
    generated header documents the pattern with them."""
    rows = []
    for node in g.nodes:
        for i_in, i_out in STATE_PAIRS.get(node.op, ()):
            src = node.input(i_in)
            dst = node.outputs[i_out] if i_out < len(node.outputs) else None
            if src is None or dst is None or src not in g.inputs or dst not in g.outputs:
                continue
            k_in, k_out = g.inputs.index(src), g.outputs.index(dst)
            rows.append({"node": comment_text(node.meta.get("source_name", node.name)),
                         "op": node.op,
                         "input": k_in, "input_name": comment_text(in_names[k_in]),
                         "output": k_out, "output_name": comment_text(out_names[k_out])})
    return rows
