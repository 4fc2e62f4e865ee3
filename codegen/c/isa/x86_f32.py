"""x86_64 AVX2+FMA float32 kernels: which layers get them, and their compile-time packing.

Targets with isa "x86_64-avx2" (and "x86_64-avx512vnni", whose float32 layers are the same)
run float32 Conv, Gemm and MatMul through the micro-kernels of
codegen/c/runtime/edgec_x86_f32.h (templates under codegen/c/templates/ops/x86/); the
portable templates stay the fallback for shapes these kernels do not take, and the
reference every kernel is tested against.

Kernel choice (a heuristic on the layer's shape, no tuner table; measured on MobileNetV2,
ResNet-8 and DS-CNN layers with the per-layer timing of tools/bench.py's method):
- depthwise Conv (one channel per group): `x86/conv_dw` - vectors of 8 channels, the taps'
  weights in registers, interior pixels in blocks of 4 with no bounds checks;
- 3x3 stride-1 Conv with >= 16 input and output channels on channels-last data:
  `x86/conv_winograd` - Winograd F(2x2, 3x3), 2.25x fewer multiplications, its 16 GEMMs on
  the same micro-kernel (1.6-2x faster than the direct form on ResNet-8's layers);
- every other 2-D Conv whose groups have at least 8 output channels: `x86/conv_gemm` - an
  implicit GEMM, rows = output pixels, columns = output channels in panels of 16, weights
  packed [group][panel][kh][kw][c][16]; pointwise convolutions read rows in place, layers
  with few channels per tap gather (im2col) a pixel block once ("packed"), others point each
  row at its window ("direct");
- Gemm with constant B (and a constant or no C): `x86/gemm` - batch rows <= 2 (and the
  pooled head) as GEMV over panels of 64 columns, larger batches as GEMM tiles;
- MatMul: `x86/matmul` - GEMM tiles over constant packed B or over B read in place.

Pixel rows are cut into tiles of 6 (the micro-kernel's height) and, where 6 does not divide
the row count, 5-row tiles, so that no layer ends on a slow 1- or 2-row tile. Pixel blocks
(`block`) keep the rows a panel sweep reads within ~64 KB; blocks are independent, which is
where a later multi-threaded build splits the work. Fusing a depthwise layer with the next
pointwise one (row tiles through dw -> pw in cache) is not implemented: the per-layer
profile showed MobileNetV2's layers individually at or below onnxruntime's times, the
largest expanded tensor (112x112x96 fp32, 4.8 MB) fits this CPU's L3, and the fused kernel
would need the memory planner to know about row tiles.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import DType, Node
from edgec.codegen.c.epilogue import epilogue_c
from edgec.ops.base import in_type
from edgec.codegen.c.kernel import ConstArray

ISA = "x86_64-avx2"
VNNI_ISA = "x86_64-avx512vnni"  # AVX2 + AVX-512 VNNI/VL (int8 dot products); fp32 as AVX2
ISAS = (ISA, VNNI_ISA)
RUNTIME = ("edgec_x86_f32.h",)
TILE_ROWS = 6
PANEL = 16  # columns of a GEMM panel
GEMV_PANEL = 64  # columns of a GEMV panel
BLOCK_BYTES = 64 * 1024  # activation rows one pixel block keeps in cache
PACK_BYTES = 32 * 1024  # gathered (im2col) rows of one pixel block, on the stack
WINOGRAD_BLOCK_BYTES = 96 * 1024  # transformed tiles (V and Mb) of one block, on the stack
NCHW_PACK_LIMIT = 1024  # largest K packed on the stack for border tiles of NCHW input

# Activations with a vector form in edgec_x86_f32.h (EDGEC_ACT_*); the rest are applied by
# a scalar pass over the output after the kernel.
VECTOR_ACTS = {"none": 0, "relu": 1, "clip": 2, "leaky_relu": 3, "prelu": 4, "hardswish": 5,
               "hardsigmoid": 6}


def uses_x86(node: Node, target) -> bool:
    """True when `node` runs on float32 data for an AVX2 target."""
    x = node.input(0)
    return getattr(target, "isa", "") in ISAS and x is not None and x.dtype == DType.FLOAT32


def pad_to(n: int, multiple: int) -> int:
    """n rounded up to a multiple."""
    return -(-n // multiple) * multiple


def row_segments(rows: int, block_rows: int, tile: int = TILE_ROWS) -> list[dict]:
    """Cut `rows` output rows into segments of equal tiles: `tile`-row tiles, then tiles one
    row shorter where `tile` does not divide the count, then one shorter tile if nothing else
    fits.

    Each segment is {start, end, tile, block} with (end - start) a multiple of its tile and
    `block` (a multiple of the tile) the rows of one pixel block.
    """
    short = tile - 1
    n_short = next((b for b in range(tile) if rows - short * b >= 0
                    and (rows - short * b) % tile == 0), None) if short else None
    if n_short is None:  # too few rows for a split: full tiles and a remainder tile
        sizes = [(tile, rows // tile * tile), (rows % tile, rows % tile)]
    else:
        sizes = [(tile, rows - short * n_short), (short, short * n_short)]
    segments, start = [], 0
    for height, count in sizes:
        if count == 0:
            continue
        block = max(height, block_rows // height * height)
        segments.append({"start": start, "end": start + count, "tile": height,
                         "block": min(block, count)})
        start += count
    return segments


def panel_layout(cols: int) -> dict:
    """Full 16-column panels and the last panel: {full, tail_cols, tail_nv, tail_ncols,
    padded} (tail_cols 0 when 16 divides cols; the tail is 8 wide when it fits in 8)."""
    full, tail = divmod(cols, PANEL)
    nv = 0 if tail == 0 else (1 if tail <= 8 else 2)
    return {"full": full, "tail_cols": tail, "tail_nv": nv,
            "tail_ncols": tail - 8 * (nv - 1) if nv else 8,
            "padded": full * PANEL + 8 * nv}


def pack_panels(kn: np.ndarray, layout: dict) -> np.ndarray:
    """[K, N] weights as consecutive panels [K][16] ... [K][8 * tail_nv], zero padded."""
    k, n = kn.shape
    padded = np.zeros((k, layout["padded"]), np.float32)
    padded[:, :n] = kn
    parts = [padded[:, j * PANEL:(j + 1) * PANEL] for j in range(layout["full"])]
    if layout["tail_nv"]:
        parts.append(padded[:, layout["full"] * PANEL:])
    return np.concatenate([np.ascontiguousarray(p).reshape(-1) for p in parts])


def pad_vector(v: np.ndarray | None, groups: int, per_group: int, padded: int) -> np.ndarray:
    """A per-column vector [groups * per_group] laid out [groups][padded] with zero padding."""
    out = np.zeros((groups, padded), np.float32)
    if v is not None:
        out[:, :per_group] = np.asarray(v, np.float32).reshape(groups, per_group)
    return out.reshape(-1)


def activation_params(node: Node, groups: int = 1, per_group: int = 0, padded: int = 0
                      ) -> dict:
    """Template values of the fused activation: kernel code, two literals, PReLU slopes and
    `post_act` (a scalar C statement on `v` for activations without a vector form)."""

    a = node.attrs
    act = a.get("activation", "none")
    p = {"act": VECTOR_ACTS.get(act, 0), "p0": "0.0f", "p1": "0.0f", "post_act": ""}
    if act == "clip":
        p["p0"], p["p1"] = _lit(a["act_alpha"]), _lit(a["act_beta"])
    elif act == "leaky_relu":
        p["p0"] = _lit(a["act_alpha"])
    elif act == "hardsigmoid":
        p["p0"], p["p1"] = _lit(a["act_alpha"]), _lit(a["act_beta"])
    elif act == "prelu":
        slope = np.asarray(a["act_slope"], np.float32)
        if slope.size == 1:
            slope = np.full(groups * per_group, slope[0], np.float32)
        p["slope"] = ConstArray(pad_vector(slope, groups, per_group, padded), "slope_x86")
    elif act not in VECTOR_ACTS:
        p["post_act"] = epilogue_c(node, "v")
    return p


def _lit(x: float) -> str:
    return f"{float(np.float32(x))!r}f"


def _const(node: Node, index: int) -> np.ndarray:
    v = node.input(index)
    assert v is not None and v.is_const, f"{node.name}: input {index} must be constant"
    return v.data


# ----------------------------------------------------------------------------- Conv
def conv_kernel(node: Node, target, is_depthwise: bool) -> str | None:
    """"dw", "gemm" or None (portable) for a channels-last 2-D Conv on `target`."""
    if not uses_x86(node, target):
        return None
    a = node.attrs
    w = in_type(node, 1)
    x_nchw = a.get("input_layout") == "NCHW"
    bias = node.input(2)
    if bias is not None and not bias.is_const:
        return None
    if is_depthwise and not x_nchw:
        return "dw"
    group = a["group"]
    mg = w.shape[0] // group
    if group > 1 and mg < 8:
        return None
    if winograd_fits(node):
        return "winograd"
    if x_nchw and int(np.prod(w.shape[1:])) > NCHW_PACK_LIMIT:
        return None
    return "gemm"


def conv_gemm_params(node: Node, geo: dict, wd: np.ndarray) -> dict:
    """Template values of x86/conv_gemm from the Conv's geometry `geo` (see kernels/conv.py)."""
    g, cg, mg = geo["G"], geo["CG"], geo["MG"]
    kh, kw = geo["KH"], geo["KW"]
    layout = panel_layout(mg)
    w4 = wd.reshape(g, mg, cg, kh, kw).astype(np.float32)
    packed = []
    for gi in range(g):
        kn = np.transpose(w4[gi], (2, 3, 1, 0)).reshape(kh * kw * cg, mg)  # [kh, kw, c] x m
        packed.append(pack_panels(kn, layout))
    k = kh * kw * cg
    # One input channel: channels-first and channels-last data are the same bytes.
    x_nchw = geo["x_nchw"] and geo["C"] > 1
    row_taps = not x_nchw and g == 1 and geo["DW"] == 1
    if kh == kw == 1 and geo["SH"] == geo["SW"] == 1 and geo["PT"] == geo["PL"] == 0 \
            and not x_nchw and g == 1:
        mode = "pointwise"
    elif (kw * cg if row_taps else cg) < 8 and not x_nchw:
        # Short micro-kernel calls per tap: gather the rows once instead. (Channels-first
        # input keeps direct tiles: their taps step along channels, measured faster.)
        mode = "packed"
    else:
        mode = "direct"
    rows = geo["N"] * geo["OH"] * geo["OW"]
    block_bytes = PACK_BYTES if mode == "packed" else BLOCK_BYTES
    segments = row_segments(rows, max(TILE_ROWS, block_bytes // ((cg if mode == "pointwise"
                                                                   else k) * 4)))
    p = {
        "x_nchw": x_nchw, "mode": mode, "row_taps": row_taps,
        "P": rows, "K": k, "layout": layout, "group_floats": k * layout["padded"],
        "weights_x86": ConstArray(np.concatenate(packed), "w_panels"),
        "segments": segments,
        "pack_rows": max(s["block"] for s in segments),
        "a_step": geo["H"] * geo["W"] if x_nchw else 1,
    }
    if node.input(2) is not None:
        p["bias_x86"] = ConstArray(pad_vector(_const(node, 2), g, mg, layout["padded"]),
                                   "bias_x86")
    p.update(activation_params(node, g, mg, layout["padded"]))
    return p


def winograd_fits(node: Node) -> bool:
    """3x3, stride 1, no dilation, no groups, channels-last input, >= 16 input and output
    channels and a map of at least 4x4 outputs: where F(2x2, 3x3) beats the direct GEMM."""
    a = node.attrs
    x, w = in_type(node, 0), in_type(node, 1)
    out = node.output.shape
    return (len(a["kernel_shape"]) == 2 and list(a["kernel_shape"]) == [3, 3]
            and list(a["strides"]) == [1, 1] and list(a["dilations"]) == [1, 1]
            and a["group"] == 1 and not a.get("input_layout") and x.rank == 4
            and w.shape[0] >= 16 and w.shape[1] >= 16 and out[1] >= 4 and out[2] >= 4)


# Winograd F(2x2, 3x3) kernel transform (Lavin & Gray): U = G g G'.
WINOGRAD_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def conv_winograd_params(node: Node, geo: dict, wd: np.ndarray) -> dict:
    """Template values of x86/conv_winograd: U[xi][c][m] packed as GEMM panels per xi."""
    c, m = geo["C"], geo["M"]
    layout = panel_layout(m)
    u = np.einsum("ai,mcij,bj->abcm", WINOGRAD_G, wd.astype(np.float64), WINOGRAD_G)
    u = u.reshape(16, c, m).astype(np.float32)
    weights = np.concatenate([pack_panels(u[x], layout) for x in range(16)])
    th, tw = -(-geo["OH"] // 2), -(-geo["OW"] // 2)
    tiles = geo["N"] * th * tw
    per_tile = 16 * 4 * (c + layout["padded"])  # bytes of V and Mb rows of one tile
    segments = row_segments(tiles, max(TILE_ROWS, WINOGRAD_BLOCK_BYTES // per_tile))
    p = {"layout": layout, "TH": th, "TW": tw, "segments": segments,
         "block_tiles": max(s["block"] for s in segments),
         "weights_x86": ConstArray(weights, "w_winograd")}
    if node.input(2) is not None:
        p["bias_x86"] = ConstArray(pad_vector(_const(node, 2), 1, m, layout["padded"]),
                                   "bias_x86")
    p.update(activation_params(node, 1, m, layout["padded"]))
    return p


def conv_dw_params(node: Node, geo: dict, wd: np.ndarray) -> dict:
    """Template values of x86/conv_dw: weights [kh][kw][C padded to 8], interior ranges."""
    c, kh, kw = geo["C"], geo["KH"], geo["KW"]
    cpad = pad_to(c, 8)
    w = np.zeros((kh, kw, cpad), np.float32)
    w[:, :, :c] = np.transpose(wd.reshape(c, kh, kw), (1, 2, 0))

    def interior(size, out, k, s, d, pb):
        # Outputs whose whole window lies inside the input: [lo, hi).
        lo = min(-(-pb // s), out)
        hi = max(min((size - 1 - (k - 1) * d + pb) // s + 1, out), lo)
        return lo, hi

    oh_lo, oh_hi = interior(geo["H"], geo["OH"], kh, geo["SH"], geo["DH"], geo["PT"])
    ow_lo, ow_hi = interior(geo["W"], geo["OW"], kw, geo["SW"], geo["DW"], geo["PL"])
    p = {
        "CV": c // 8, "CT": c % 8, "CPAD": cpad,
        "OH_LO": oh_lo, "OH_HI": oh_hi, "OW_LO": ow_lo, "OW_HI": ow_hi,
        "weights_x86": ConstArray(w.reshape(-1), "w_taps"),
        "PIX_BLOCK": 4,
    }
    bias = node.input(2)
    if bias is not None:
        p["bias_x86"] = ConstArray(pad_vector(_const(node, 2), 1, c, cpad), "bias_x86")
    p.update(activation_params(node, 1, c, cpad))
    return p


# ----------------------------------------------------------------------------- Gemm
def gemm_kernel(node: Node, target) -> bool:
    """True when x86/gemm takes this Gemm: constant B, A not transposed, no computed C."""
    if not uses_x86(node, target):
        return False
    a = node.attrs
    b, c = node.input(1), node.input(2)
    return b.is_const and not a["transA"] and (c is None or c.is_const)


def gemm_params(node: Node, m: int, k: int, n: int) -> dict:
    """Template values of x86/gemm: B' * alpha packed as GEMV panels (rows <= 2 or a pooled
    input) or GEMM panels, the bias as one padded row per output row."""
    a = node.attrs
    b = node.input(1).data
    bk = (b.T if a["transB"] else b).astype(np.float32) * np.float32(a["alpha"])
    pooled = a.get("input_pool", "none") == "mean"
    gemv = m <= 2 or pooled
    p = {"M": m, "K": k, "N": n, "gemv": gemv, "segments": row_segments(m, 1 << 30)}
    if gemv:
        full, tail = divmod(n, GEMV_PANEL)
        tail_nv = -(-tail // 8)
        padded = full * GEMV_PANEL + 8 * tail_nv
        kn = np.zeros((k, padded), np.float32)
        kn[:, :n] = bk
        parts = [kn[:, j * GEMV_PANEL:(j + 1) * GEMV_PANEL] for j in range(full)]
        if tail_nv:
            parts.append(kn[:, full * GEMV_PANEL:])
        weights = np.concatenate([np.ascontiguousarray(q).reshape(-1) for q in parts])
        p["gemv_layout"] = {"full": full, "tail_nv": tail_nv,
                            "tail_ncols": tail - 8 * (tail_nv - 1) if tail_nv else 8,
                            "padded": padded}
    else:
        layout = panel_layout(n)
        weights = pack_panels(bk, layout)
        padded = layout["padded"]
        p["layout"] = layout
    p["weights_x86"] = ConstArray(weights, "b_panels")
    p["padded"] = padded
    c = node.input(2)
    if c is not None:
        cb = np.float32(a["beta"]) * np.broadcast_to(c.data, (m, n)).astype(np.float32)
        rows = cb[:1] if np.all(cb == cb[:1]) else cb
        bias = np.zeros((rows.shape[0], padded), np.float32)
        bias[:, :n] = rows
        p["bias_x86"] = ConstArray(bias.reshape(-1), "bias_x86")
        p["bias_per_row"] = rows.shape[0] > 1
    if pooled:
        x = in_type(node, 0)
        count = x.numel // (m * k)
        p["pool_count"] = count
        p["pool_scale"] = _lit(1.0 / count)
    p.update(activation_params(node, 1, n, padded))
    return p


# ----------------------------------------------------------------------------- MatMul
def matmul_params(node: Node, batch_count: int, m: int, k: int, n: int,
                  a_offs: list[int], b_offs: list[int]) -> dict:
    """Template values of x86/matmul: constant B packed per distinct batch matrix, or B read
    in place (b_step = N, masked loads at the right edge)."""
    b = node.input(1)
    p = {"B": batch_count, "M": m, "K": k, "N": n, "segments": row_segments(m, 1 << 30),
         "a_offsets": ConstArray(np.asarray(a_offs, np.int32), "a_off"),
         "b_const": b.is_const}
    layout = panel_layout(n)
    p["layout"] = layout
    if b.is_const:
        flat = b.data.astype(np.float32).reshape(-1)
        uniq = sorted(set(b_offs))
        index = {off: i for i, off in enumerate(uniq)}
        packs = [pack_panels(flat[off:off + k * n].reshape(k, n), layout) for off in uniq]
        p["weights_x86"] = ConstArray(np.concatenate(packs), "b_panels")
        p["b_offsets"] = ConstArray(
            np.asarray([index[o] * k * layout["padded"] for o in b_offs], np.int32), "b_off")
    else:
        p["b_offsets"] = ConstArray(np.asarray(b_offs, np.int32), "b_off")
    p.update(activation_params(node, 1, n, layout["padded"]))
    return p
