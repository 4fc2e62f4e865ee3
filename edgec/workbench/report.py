"""`edgec report`: what a compiled model costs, layer by layer, and where its memory goes.

Compiles in memory (nothing is written but the optional picture) and renders:
- a per-layer table: step, op, node, output shape, MACs, weight bytes, bytes live at the step;
- the memory plan as ASCII art: one row per step (time runs down), the arena's addresses
  across (offset 0 at the left), one glyph per buffer, '.' for free bytes, and a legend
  saying which tensors each glyph holds (views and in-place results share their input's);
- a picture of the plan (SVG written here, no dependency; PNG through matplotlib when it is
  installed): time on x, address on y, each buffer a labelled rectangle, with the arena size
  and the lower bound marked.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from edgec.compiler import compile_model
from edgec.console.tables import align_rows
from edgec.errors import EdgecError
from edgec.ir import Graph
from edgec.ops import get_op
from edgec.quant.driver import snr_by_node

GLYPHS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@#$%&*+=?"


@dataclass
class BufferRow:
    """One buffer of the plan as the report shows it."""

    glyph: str
    root: str
    tensors: list[str]
    offset: int
    size: int
    first: int
    last: int


def layer_rows(g: Graph, plan, quant: dict | None = None) -> list[dict]:
    """Per-layer facts: step, op, node, output shape, MACs, weight bytes, live bytes; for
    int8 targets (report.json's `quantization` section) the layer's SNR against fp32."""
    snrs = snr_by_node(quant)
    rows = []
    for step, node in enumerate(g.nodes):
        weights = sum(v.data.nbytes for v in node.inputs if v is not None and v.is_const)
        shapes = ["x".join(map(str, v.shape)) or "scalar" for v in node.outputs]
        rows.append({
            "step": step, "op": node.op, "node": node.name,
            "output_shape": ", ".join(shapes), "macs": int(get_op(node.op).macs(node)),
            "weights_bytes": int(weights),
            "live_bytes": int(plan.live_bytes[step]) if step < len(plan.live_bytes) else 0,
        })
        if node.name in snrs:
            rows[-1]["quant_snr_db"] = snrs[node.name]
    return rows


def buffer_rows(plan) -> list[BufferRow]:
    """The plan's buffers in order of first use, each with its glyph and tensors."""
    members: dict[str, list[str]] = {}
    for name in plan.offsets:
        members.setdefault(plan.storage_of(name), []).append(name)
    rows = []
    for root, names in members.items():
        first = min(plan.lifetimes[n][0] for n in names)
        last = max(plan.lifetimes[n][1] for n in names)
        size = max(plan.sizes[n] for n in names)
        rows.append(BufferRow("", root, names, plan.offsets[root], size, first, last))
    rows.sort(key=lambda r: (r.first, r.offset, r.root))
    for i, r in enumerate(rows):
        r.glyph = GLYPHS[i % len(GLYPHS)]
    return rows


def _short_bytes(n: float) -> str:
    for unit, div in (("M", 1 << 20), ("K", 1 << 10)):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return f"{int(n)}"


def layer_table(rows: list[dict]) -> str:
    """The per-layer table as text."""
    head = ["step", "op", "node", "output", "MACs", "weights B", "live B"]
    body = [[str(r["step"]), r["op"], r["node"][:40], r["output_shape"], f"{r['macs']:,}",
             f"{r['weights_bytes']:,}", f"{r['live_bytes']:,}"] for r in rows]
    if any("quant_snr_db" in r for r in rows):  # int8: quantisation SNR against fp32
        head.append("q SNR dB")
        for line, r in zip(body, rows):
            snr = r.get("quant_snr_db")
            line.append("" if "quant_snr_db" not in r else "inf" if snr is None else f"{snr:.1f}")
    return "\n".join(align_rows([head] + body, right={0, 4, 5, 6, 7}))


def float_node_table(quant: dict | None) -> str:
    """int8 builds: every node that stays float32 and why (report.json's
    `quantization.float_node_reasons`); empty when there is none."""
    rows = (quant or {}).get("float_node_reasons") or []
    if not rows:
        return ""
    body = [[r["node"][:40], r["op"], r["reason"]] for r in rows]
    return f"float nodes in this int8 build ({len(rows)}):\n" + \
        "\n".join(align_rows([["node", "op", "why float"]] + body))


def sparse_weight_table(section: dict | None) -> str:
    """C builds of pruned models: every layer stored as CSR (report.json's `sparse_weights`,
    codegen/c/kernels/sparse.py) and the flash it saves; empty when there is none."""
    rows = (section or {}).get("layers") or []
    if not rows:
        return ""
    body = [[r["layer"][:40], r["op"], r["storage"], f"{100 * r['sparsity']:.1f}%",
             f"{r['dense_bytes']:,}", f"{r['sparse_bytes']:,}", f"{r['saved_bytes']:,}"]
            for r in rows]
    return (f"sparse weights ({len(rows)} layers, {section['saved_bytes']:,} B of flash "
            f"saved):\n" + "\n".join(align_rows(
                [["layer", "op", "storage", "zeros", "dense B", "stored B", "saved B"]] + body)))


def row_band_table(section: dict | None) -> str:
    """--memory-budget builds: the arena before and after, the fused chains with their line
    buffers and the extra MACs (report.json's `row_bands`, passes/fuse_row_bands.py)."""
    if not section:
        return ""
    head = (f"memory budget {section['memory_budget']:,} B "
            f"({'met' if section['budget_met'] else 'NOT met'}): arena "
            f"{section['arena_before_bytes']:,} B unfused -> {section['arena_after_bytes']:,} B; "
            f"{len(section['regions'])} fused chain(s), {section['extra_macs']:,} extra MACs")
    if section["in_place_quantize"]:
        head += f"; quantised in place: {', '.join(section['in_place_quantize'])}"
    body = [[r["layers"][0][:40], str(len(r["layers"])), f"{r['macs']:,}",
             f"{r['intermediate_bytes_unfused']:,}", f"{r['window_bytes']:,}",
             " ".join(map(str, r["window_rows"])), f"{r['extra_macs']:,}"]
            for r in section["regions"]]
    if not body:
        return head
    return head + "\n" + "\n".join(align_rows(
        [["first layer", "layers", "MACs", "intermediates B", "line buffers B",
          "buffer rows", "extra MACs"]] + body))


def ascii_plan(g: Graph, plan, width: int = 64) -> str:
    """The plan as ASCII art: a row per step, the arena across, a glyph per buffer."""
    buffers = buffer_rows(plan)
    arena = max(plan.arena_bytes, 1)
    steps = max(len(g.nodes), 1)

    def col(addr: int) -> int:
        return min(width, addr * width // arena)

    grid = [["."] * width for _ in range(steps)]
    for b in buffers:
        if b.size == 0:
            continue
        lo, hi = col(b.offset), max(col(b.offset + b.size), col(b.offset) + 1)
        for s in range(b.first, min(b.last, steps - 1) + 1):
            for c in range(lo, min(hi, width)):
                grid[s][c] = b.glyph
    bound = col(plan.arena_lower_bound_bytes)
    scale = [" "] * (width + 1)
    for frac in (0, 0.25, 0.5, 0.75):
        label = _short_bytes(arena * frac)
        pos = int(width * frac)
        scale[pos:pos + len(label)] = list(label)
    ruler = ["-"] * width + ["+"]
    ruler[min(bound, width)] = "^"
    lines = [
        (f"memory plan: arena {plan.arena_bytes:,} B, lower bound "
         f"{plan.arena_lower_bound_bytes:,} B (^), naive {plan.naive_bytes:,} B; "
         f"offsets by {plan.strategy}, schedule {plan.schedule_strategy}"),
        "step  " + "".join(scale).rstrip() + f"  (arena {_short_bytes(arena)} at the right edge)",
        "      " + "".join(ruler),
    ]
    for s in range(steps):
        node = g.nodes[s] if s < len(g.nodes) else None
        live = plan.live_bytes[s] if s < len(plan.live_bytes) else 0
        what = f"{node.op} '{node.name}'" if node is not None else ""
        lines.append(f"{s:4d}  {''.join(grid[s])}| {live:>11,}  {what}")
    lines.append("")
    lines.append("buffers (glyph, offset, bytes, steps, tensors; ~ view, = in place):")
    for b in buffers:
        names = []
        for n in b.tensors:
            kind = plan.alias_kinds.get(n)
            names.append(n + ("~" if kind == "view" else "=" if kind == "in-place" else ""))
        lines.append(f"  {b.glyph}  {b.offset:>10,}  {b.size:>10,}  {b.first:>3}-{b.last:<3}  "
                     + ", ".join(names))
    return "\n".join(lines)


def _color(i: int) -> str:
    hue = (i * 137.508) % 360  # golden angle: neighbours get distant hues
    return f"hsl({hue:.0f},60%,70%)"


def svg_plan(g: Graph, plan, title: str = "") -> str:
    """The memory timeline as a standalone SVG document."""
    buffers = buffer_rows(plan)
    steps = max(len(g.nodes), 1)
    left, right, top, bottom = 90, 30, 56, 50
    plot_w = max(640, min(1400, 14 * steps))
    plot_h = 480
    top_addr = max(plan.arena_bytes, plan.arena_lower_bound_bytes, 1)
    sx = plot_w / steps
    sy = plot_h / top_addr

    def y(addr: float) -> float:
        return top + plot_h - addr * sy

    subtitle = (f"arena {plan.arena_bytes:,} B, lower bound {plan.arena_lower_bound_bytes:,} B, "
                f"naive {plan.naive_bytes:,} B; offsets by {plan.strategy}, "
                f"schedule {plan.schedule_strategy}")
    width = max(left + plot_w + right, left + 7 * len(subtitle) + right)
    out = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
         f'height="{top + plot_h + bottom}" font-family="monospace" font-size="11">'),
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{left}" y="18" font-size="13">{escape(title or "memory plan")}</text>',
        f'<text x="{left}" y="36">{escape(subtitle)}</text>',
        (f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#f7f7f7" '
         f'stroke="#888"/>'),
    ]
    for i, b in enumerate(buffers):
        if b.size == 0:
            continue
        x0, x1 = left + b.first * sx, left + (b.last + 1) * sx
        y0, y1 = y(b.offset + b.size), y(b.offset)
        tip = (f"{b.glyph}: {', '.join(b.tensors)} | offset {b.offset:,} B, {b.size:,} B, "
               f"steps {b.first}-{b.last}")
        out.append(f'<g><title>{escape(tip)}</title><rect x="{x0:.1f}" y="{y0:.1f}" '
                   f'width="{x1 - x0:.1f}" height="{max(y1 - y0, 0.5):.1f}" '
                   f'fill="{_color(i)}" stroke="#333" stroke-width="0.5"/>')
        if y1 - y0 >= 11 and x1 - x0 >= 10:
            label = b.glyph + (" " + b.root if (x1 - x0) >= 7 * (len(b.root) + 3) else "")
            out.append(f'<text x="{x0 + 2:.1f}" y="{y0 + 10:.1f}">{escape(label)}</text>')
        out.append("</g>")
    for addr, color, name in ((plan.arena_bytes, "#c00", "arena"),
                              (plan.arena_lower_bound_bytes, "#06c", "lower bound")):
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(addr):.1f}" '
                   f'y2="{y(addr):.1f}" stroke="{color}" stroke-dasharray="6,3"/>')
        anchor_y = y(addr) - 3 if name == "arena" else y(addr) + 12
        out.append(f'<text x="{left + plot_w - 4}" y="{anchor_y:.1f}" text-anchor="end" '
                   f'fill="{color}">{name} {addr:,} B</text>')
    for k in range(5):
        addr = top_addr * k / 4
        out.append(f'<text x="{left - 6}" y="{y(addr) + 4:.1f}" text-anchor="end">'
                   f'{_short_bytes(addr)}</text>')
    tick = max(1, steps // 10)
    for s in range(0, steps, tick):
        out.append(f'<text x="{left + (s + 0.5) * sx:.1f}" y="{top + plot_h + 16}" '
                   f'text-anchor="middle">{s}</text>')
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{top + plot_h + 38}" '
               f'text-anchor="middle">step (node in execution order)</text>')
    out.append(f'<text x="16" y="{top + plot_h / 2:.0f}" text-anchor="middle" '
               f'transform="rotate(-90 16 {top + plot_h / 2:.0f})">arena offset (bytes)</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def check_plot_path(path: str | Path) -> Path:
    """The picture's path, after checking that its format can be written (EdgecError if not)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".svg", ".png"):
        raise EdgecError(f"--plot '{p}': give a file ending in .svg or .png")
    if suffix == ".png" and importlib.util.find_spec("matplotlib") is None:
        raise EdgecError(
            f"writing '{p}' needs matplotlib, which is not installed (it is not an edgec "
            "dependency): pip install matplotlib, or give a .svg file instead"
        )
    return p


def png_plan(g: Graph, plan, path: Path, title: str = "") -> None:
    """The memory timeline as a PNG through matplotlib (EdgecError when it is missing)."""
    check_plot_path(path)
    import matplotlib  # optional, and slow to import: only for a .png plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    buffers = buffer_rows(plan)
    fig, ax = plt.subplots(figsize=(12, 6))
    for i, b in enumerate(buffers):
        ax.add_patch(Rectangle((b.first, b.offset), b.last - b.first + 1, b.size,
                               facecolor=f"C{i % 10}", edgecolor="black", linewidth=0.4,
                               alpha=0.8))
        ax.text(b.first + 0.1, b.offset + b.size / 2, b.glyph, fontsize=7, va="center")
    ax.axhline(plan.arena_bytes, color="red", linestyle="--",
               label=f"arena {plan.arena_bytes:,} B")
    ax.axhline(plan.arena_lower_bound_bytes, color="blue", linestyle=":",
               label=f"lower bound {plan.arena_lower_bound_bytes:,} B")
    ax.set_xlim(0, max(len(g.nodes), 1))
    ax.set_ylim(0, max(plan.arena_bytes, 1) * 1.05)
    ax.set_xlabel("step (node in execution order)")
    ax.set_ylabel("arena offset (bytes)")
    ax.set_title(f"{title or 'memory plan'} ({plan.strategy})")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_plot(g: Graph, plan, path: str | Path, title: str = "") -> Path:
    """Write the plan picture; the suffix (.svg or .png) chooses the format."""
    p = check_plot_path(path)
    if p.suffix.lower() == ".png":
        png_plan(g, plan, p, title)
    else:
        p.write_text(svg_plan(g, plan, title))
    return p


def report_dict(result) -> dict:
    """The JSON form: report.json's content plus per-layer rows and the buffers."""
    g, plan = result.graph, result.plan
    out = dict(result.report)
    out["schedule_strategy"] = plan.schedule_strategy
    out["layers"] = layer_rows(g, plan, result.report.get("quantization"))
    out["buffers"] = [{"glyph": b.glyph, "root": b.root, "tensors": b.tensors,
                       "offset": b.offset, "bytes": b.size, "first_step": b.first,
                       "last_step": b.last} for b in buffer_rows(plan)]
    return out


def report_text(result, model_name: str = "", width: int = 64) -> str:
    """The whole terminal report: summary, per-layer table and the ASCII plan."""
    g, plan, r = result.graph, result.plan, result.report
    head = (f"edgec report: {model_name or r.get('model', 'model')} for {r['target']}: "
            f"{r['kernels']} kernels, {r['macs']:,} MACs, weights {r['weights_bytes']:,} B, "
            f"arena {r['arena_bytes']:,} B (lower bound {r['arena_lower_bound_bytes']:,} B, "
            f"naive {r['naive_bytes']:,} B)")
    floats = float_node_table(r.get("quantization"))
    sparse = sparse_weight_table(r.get("sparse_weights"))
    bands = row_band_table(r.get("row_bands"))
    return "\n\n".join([head, layer_table(layer_rows(g, plan, r.get("quantization"))),
                        *([floats] if floats else []), *([sparse] if sparse else []),
                        *([bands] if bands else []), ascii_plan(g, plan, width)])


def run_report(model_path: str | Path, options, plot: str | None = None,
               as_json: bool = False, width: int = 64, nnapi: bool = False) -> str:
    """Compile `model_path` in memory and return the report text (or JSON); writes `plot`.
    `nnapi`: add the .tflite's NNAPI/GPU delegate sections (codegen/tflite/compat.py)."""

    if plot:
        check_plot_path(plot)  # fail before the compile, not after
    result = compile_model(model_path, options)
    name = Path(model_path).name
    if plot:
        write_plot(result.graph, result.plan, plot, title=name)
    compat = ""
    if nnapi:
        from edgec.codegen.tflite.compat import compat_sections, compat_text, tflite_bytes
        result.report.update(compat_sections(tflite_bytes(result.files)))
        compat = "\n\n" + compat_text(result.report)
    if as_json:
        return json.dumps(report_dict(result), indent=2)
    return report_text(result, name, width) + compat
