"""Dynamic quantisation (`--quant dynamic`): Gemm/MatMul with constant weights become
DynamicQuantGemm (edgec/ops/dynamic_quant.py): int8 weights per output channel, activations
quantised per tensor at run time. Every other op stays float32; no calibration is needed.

Matched: Gemm with transA=0, constant B, a constant C that is one value per output column,
no residual, activation none/relu/clip; MatMul with a constant 2-D B and no epilogue.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Graph, Node
from edgec.ops.int8_scheme import CLAMP_ACTIVATIONS, quantize_weights


def _weights_and_bias(node: Node):
    a = node.attrs
    if node.op == "Gemm":
        c = node.input(2)
        if a["transA"] != 0 or not node.input(1).is_const or len(node.inputs) > 3:
            return None
        b = node.input(1).data.astype(np.float32)
        w_nk = (b if a["transB"] else b.T) * np.float32(a["alpha"])
        bias = None
        if c is not None:
            if not c.is_const:
                return None
            full = np.broadcast_to(np.asarray(c.data, np.float32), node.output.shape)
            if not np.all(full == full[:1]):
                return None
            bias = (np.float32(a["beta"]) * full[0]).astype(np.float32)
        return w_nk, bias
    if node.op == "MatMul":
        b = node.input(1)
        if not b.is_const or b.type.rank != 2 or len(node.inputs) > 2:
            return None
        return np.ascontiguousarray(b.data.astype(np.float32).T), None
    return None


def quantize_dynamic(g: Graph, opts, record) -> bool:
    """Replace every matching Gemm/MatMul (options `opts`, layer records into `record`);
    True when any was replaced."""
    changed = False
    for node in list(g.nodes):
        if node.op not in ("Gemm", "MatMul") or opts.keeps_float(node.name, node.op):
            continue
        if node.attrs.get("activation", "none") not in CLAMP_ACTIVATIONS:
            continue
        wb = _weights_and_bias(node)
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
        record.layers.append({"node": node.name, "value": node.output.name, "source_op": node.op,
                            "op": "DynamicQuantGemm", "w_scale_min": float(w_scale.min()),
                            "w_scale_max": float(w_scale.max())})
        changed = True
    if changed:
        g.remove_dead()
        g.meta["quantized"] = True
    return changed
