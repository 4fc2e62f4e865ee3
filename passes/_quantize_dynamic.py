"""Dynamic quantisation (`--quant dynamic`): Gemm/MatMul with constant weights become
DynamicQuantGemm (edgec/ops/dynamic_quant.py): int8 weights per output channel, activations
quantised per tensor at run time. Every other op stays float32; no calibration is needed.

Which nodes qualify is their int8 facet's answer (`dynamic_weights`, edgec/ops/int8_layers.py):
Gemm with transA=0, constant B, a constant C that is one value per output column, no
residual; MatMul with a constant 2-D B and no epilogue; the activation none/relu/clip.
"""

from __future__ import annotations

from edgec.ir import Graph
from edgec.ops import get_op
from edgec.ops.int8_scheme import CLAMP_ACTIVATIONS, quantize_weights


def quantize_dynamic(g: Graph, opts, record) -> bool:
    """Replace every matching Gemm/MatMul (options `opts`, layer records into `record`);
    True when any was replaced."""
    changed = False
    for node in list(g.nodes):
        if opts.keeps_float(node.name, node.op):
            continue
        if node.attrs.get("activation", "none") not in CLAMP_ACTIVATIONS:
            continue
        wb = get_op(node.op).quant.dynamic_weights(node)
        if wb is None:
            continue
        w_nk, bias = wb
        w_q, w_scale = quantize_weights(w_nk, axis=0)
        a = node.attrs
        inputs = [node.input(0), g.const(w_q, node.name + "_w_int8")]
        if bias is not None:
            inputs.append(g.const(bias, node.name + "_bias"))
        new = g.add_node("DynamicQuantGemm", inputs, attrs={
            "w_scale": [float(s) for s in w_scale], "activation": a.get("activation", "none"),
            "act_alpha": a.get("act_alpha", 0.0), "act_beta": a.get("act_beta", 0.0)},
            name=node.name, before=node)
        g.replace_all_uses(node.output, new.output)
        record.layers.append({"node": node.name, "value": node.output.name,
                              "source_op": node.op, "op": "DynamicQuantGemm",
                              "w_scale_min": float(w_scale.min()),
                              "w_scale_max": float(w_scale.max())})
        changed = True
    if changed:
        g.remove_dead()
        g.meta["quantized"] = True
    return changed
