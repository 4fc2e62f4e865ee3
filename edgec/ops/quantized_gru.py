"""QGRU and QRNN: edgec's int8 GRU and RNN with float32 state (hybrid), the counterparts of
QLSTM (edgec/ops/quantized_lstm.py, whose module docstring describes the scheme).

Inputs: X int8, W / R int8 per gate row, bias float32 [D, 4H] = [b_z, b_r, b_h, rb_h] with
b_z = Wb_z + Rb_z, b_r = Wb_r + Rb_r, and for linear_before_reset 0 b_h = Wb_h + Rb_h,
rb_h = 0, for linear_before_reset 1 b_h = Wb_h, rb_h = Rb_h. Per step, in float32:

    px = float(W_q (x_q - x_zp)) * xw_scale                   (per gate row)
    z  = sigmoid((px_z + float(R_z h_q) * (hs * r_scale_z)) + b_z), r likewise
    linear_before_reset 1: n = tanh((px_h + b_h) + r * (float(R_h h_q) * (hs * r_scale_h)
                                                           + rb_h))
    linear_before_reset 0: n = tanh((px_h + float(R_h q(r h)) * (rhs * r_scale_h)) + b_h)
    h = (1 - z) * n + z * h

with h_q = h quantised with hs = max|h| / 127 and q(r h) the product r (.) h quantised the
same way with its own scale rhs (clip, when given, bounds every gate's input).
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Node
from edgec.ops.base import Attr
from edgec.ops.float32_math import sigmoid32, tanh32
from edgec.ops.int8_facet import Int8Facet
from edgec.ops.quantized_lstm import QLSTM, RecurrentInt8, quantize_state
from edgec.ops.registry import register_op

F = np.float32


@register_op("QGRU")
class QGRU(QLSTM):
    """int8 GRU with float32 state (hybrid): int8 X and weights, float32 gates and state,
    int8 Y (see the module docstring)."""

    attrs = {k: v for k, v in QLSTM.attrs.items() if k != "input_forget"} | {
        "linear_before_reset": Attr("int", 0, (0, 1))}
    quant = Int8Facet("qgru", "requantize")  # already int8: its own calibrated Y scale
    infer_outputs = ("Y", "Y_h")
    gates, n_states = 3, 1

    @staticmethod
    def step(attrs, state, acc_x, rq, bias, peep, xw_scale, r_scale, clip, h):
        """One step for one batch entry, in float32 exactly as the C orders it."""
        (hv,) = state
        hs, hq = quantize_state(hv)

        def gate(v):
            return v if clip is None else np.clip(v, -clip, clip)

        px = acc_x.astype(F) * xw_scale
        rec = (rq[:2 * h] @ hq).astype(F) * (hs * r_scale[:2 * h])
        z = sigmoid32(gate((px[:h] + rec[:h]) + bias[:h]))
        r = sigmoid32(gate((px[h:2 * h] + rec[h:]) + bias[h:2 * h]))
        if attrs["linear_before_reset"]:
            rh = (rq[2 * h:] @ hq).astype(F) * (hs * r_scale[2 * h:]) + bias[3 * h:]
            pre = (px[2 * h:] + bias[2 * h:3 * h]) + r * rh
        else:
            rhs, rhq = quantize_state((r * hv).astype(F))
            pre = (px[2 * h:] + (rq[2 * h:] @ rhq).astype(F) * (rhs * r_scale[2 * h:])) \
                + bias[2 * h:3 * h]
        n = tanh32(gate(pre))
        return [((F(1.0) - z) * n + z * hv).astype(F)]


class GruInt8(RecurrentInt8):
    """GRU -> QGRU (hybrid: int8 weights and activations in, float32 state)."""

    source_op, q_op, gates = "GRU", "QGRU", 3
    activations = ["Sigmoid", "Tanh"]
    const_inputs = ((1, "W"), (2, "R"), (3, "B"))

    def bias(self, node: Node, bias: np.ndarray | None, d: int, h: int) -> np.ndarray:
        """[b_z, b_r, b_h, rb_h] per direction (module docstring)."""
        out = np.zeros((d, 4 * h), F)
        if bias is None:
            return out
        wb, rb = bias[:, :3 * h], bias[:, 3 * h:]
        out[:, :2 * h] = wb[:, :2 * h] + rb[:, :2 * h]
        if node.attrs.get("linear_before_reset", 0):
            out[:, 2 * h:3 * h] = wb[:, 2 * h:]
            out[:, 3 * h:] = rb[:, 2 * h:]
        else:
            out[:, 2 * h:3 * h] = wb[:, 2 * h:] + rb[:, 2 * h:]
        return out

    def extra_attrs(self, node: Node) -> dict:
        """linear_before_reset."""
        return {"linear_before_reset": int(node.attrs.get("linear_before_reset", 0))}


GRU_INT8 = GruInt8()


@register_op("QRNN")
class QRNN(QLSTM):
    """int8 RNN with float32 state (hybrid, tanh): h = tanh((float(W_q (x_q - x_zp)) *
    xw_scale + float(R_q h_q) * (hs * r_scale)) + b), b = Wb + Rb, h_q as in QLSTM."""

    attrs = {k: v for k, v in QLSTM.attrs.items() if k != "input_forget"}
    quant = Int8Facet("qrnn", "requantize")  # already int8: its own calibrated Y scale
    infer_outputs = ("Y", "Y_h")
    gates, n_states = 1, 1

    @staticmethod
    def step(attrs, state, acc_x, rq, bias, peep, xw_scale, r_scale, clip, h):
        """One step for one batch entry, in float32 exactly as the C orders it."""
        hs, hq = quantize_state(state[0])
        pre = (acc_x.astype(F) * xw_scale + (rq @ hq).astype(F) * (hs * r_scale)) + bias
        return [tanh32(pre if clip is None else np.clip(pre, -clip, clip))]


class RnnInt8(RecurrentInt8):
    """RNN (tanh) -> QRNN (hybrid: int8 weights and activations in, float32 state)."""

    source_op, q_op, gates = "RNN", "QRNN", 1
    activations = ["Tanh"]
    const_inputs = ((1, "W"), (2, "R"), (3, "B"))

    def extra_attrs(self, node: Node) -> dict:
        """None besides the common ones."""
        return {}


RNN_INT8 = RnnInt8()
