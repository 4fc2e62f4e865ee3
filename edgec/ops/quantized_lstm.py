"""QLSTM: edgec's int8 LSTM with float32 state (the "hybrid" scheme), and its int8 facet.

The quantize pass turns an LSTM with constant weights and the default activations
(Sigmoid, Tanh, Tanh) into a QLSTM (`LstmInt8.plan` says why one stays float):

- X int8 (the calibrated input parameters), W and R int8 symmetric per gate row
  (`quantize_weights`), B float32 (Wb + Rb), peepholes P float32;
- the hidden state h and cell state c stay float32 (initial_h / initial_c in, Y_h / Y_c out,
  so a streaming caller keeps them between calls exactly as with the float LSTM);
- per step, h_{t-1} is quantised to int8 with a dynamic symmetric scale
  hs = max|h| / 127 (TFLite's hybrid LSTM does the same), both projections are int32 dot
  products, and the gate pre-activations are float32:
      pre[n] = (float(acc_x[n]) * xw_scale[n] + float(acc_h[n]) * (hs * r_scale[n])) + b[n]
  with acc_x = W_q (x_q - x_zero_point), acc_h = R_q h_q, xw_scale = x_scale * w_scale;
- the gates use edgec/ops/float32_math.py's sigmoid32/tanh32 (+, -, *, / in a fixed order,
  no libm), c = f * c + i * g, h = o * tanh(c), every step one IEEE float32 operation, so
  the C (codegen/c/templates/ops/qlstm.c.j2, built with -ffp-contract=off) gives the same
  bits as this reference on every target;
- Y is int8 with Y's calibrated parameters (rint(h / y_scale) + y_zero_point, clamped);
  steps beyond sequence_lens hold y_zero_point (0.0).

TFLite's fully integer LSTM (int16 cell state, fixed-point gates) is not implemented; see
docs/int8.md for the measured accuracy of this scheme.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError
from edgec.ir import DType, Node, TensorType, Value
from edgec.ops.base import Attr, OpDef, in_type
from edgec.ops.float32_math import sigmoid32, tanh32
from edgec.ops.int8_facet import Int8Facet, scale_of, zero_point_of
from edgec.ops.int8_scheme import quantize_weights
from edgec.ops.quant_common import internal_op_import, require_int8
from edgec.ops.registry import get_op, register_op

F = np.float32
DEFAULT_ACTIVATIONS = ["Sigmoid", "Tanh", "Tanh"]


def quantize_state(v: np.ndarray) -> tuple[np.float32, np.ndarray]:
    """A float32 state vector as int8 codes (int64) with the dynamic symmetric scale
    max|v| / 127 (all codes 0 when v is 0), as the C computes them."""
    m = np.max(np.abs(v)) if v.size else F(0.0)
    scale = F(m / F(127.0))
    if m > 0:
        return scale, np.clip(np.rint(v / scale), -127, 127).astype(np.int64)
    return scale, np.zeros(v.size, np.int64)


@register_op("QLSTM")
class QLSTM(OpDef):
    """int8 LSTM with float32 state (hybrid): int8 X and weights, float32 gates and state,
    int8 Y (see the module docstring)."""

    attrs = {
        "direction": Attr("str", "forward", ("forward", "reverse", "bidirectional")),
        "hidden_size": Attr("int"), "layout": Attr("int", 0, (0, 1)),
        "clip": Attr("float", None), "input_forget": Attr("int", 0, (0, 1)),
        "x_zero_point": Attr("int", 0), "xw_scale": Attr("floats"), "r_scale": Attr("floats"),
        "y_scale": Attr("float"), "y_zero_point": Attr("int", 0),
    }
    dtypes = {DType.INT8, DType.FLOAT32, DType.INT32, DType.INT64}
    quant = Int8Facet("qlstm", "requantize")  # already int8: its own calibrated Y scale
    infer_outputs = ("Y", "Y_h", "Y_c")

    def import_onnx(self, node: Node, opset: int) -> None:
        internal_op_import(node)

    gates, n_states = 4, 2

    def dims(self, node: Node) -> dict:
        """S, B, I, H, D of the node (checked like the float op's)."""
        x, w = in_type(node, 0), in_type(node, 1)
        if x.rank != 3 or w.rank != 3:
            raise ShapeError(f"{node.op} node '{node.name}': X and W must be 3-D")
        seq, batch = (x.shape[0], x.shape[1]) if node.attrs["layout"] == 0 else x.shape[:2][::-1]
        d = 2 if node.attrs["direction"] == "bidirectional" else 1
        h = node.attrs["hidden_size"]
        rows = self.gates * h
        if tuple(w.shape) != (d, rows, x.shape[2]) or len(node.attrs["xw_scale"]) != d * rows:
            raise ShapeError(f"{node.op} node '{node.name}': W must be [{d}, {rows}, "
                             f"{x.shape[2]}] with one scale per row")
        return {"S": seq, "B": batch, "I": x.shape[2], "H": h, "D": d}

    def infer(self, node: Node) -> list[TensorType]:
        require_int8(node, (0, 1, 2))
        k = self.dims(node)
        s, b, d, h = k["S"], k["B"], k["D"], k["H"]
        y, st = ((s, d, b, h), (d, b, h)) if node.attrs["layout"] == 0 else \
            ((b, s, d, h), (b, d, h))
        return [TensorType(y, DType.INT8)] + [TensorType(st, DType.FLOAT32)] * self.n_states

    def macs(self, node: Node) -> int:
        k = self.dims(node)
        return k["D"] * k["S"] * k["B"] * self.gates * k["H"] * (k["I"] + k["H"])

    def reference(self, node: Node, x, w, r, bias=None, lens=None, h0=None, c0=None, p=None):
        a = node.attrs
        k = self.dims(node)
        s, b, h, d = k["S"], k["B"], k["H"], k["D"]
        layout1 = a["layout"] == 1
        xs = np.asarray(x).transpose(1, 0, 2) if layout1 else np.asarray(x)
        inits = [None if v is None else (np.asarray(v).transpose(1, 0, 2) if layout1 else v)
                 for v in (h0, c0)[:self.n_states]]
        xw_scale = np.asarray(a["xw_scale"], F).reshape(d, -1)
        r_scale = np.asarray(a["r_scale"], F).reshape(d, -1)
        y_scale, y_zp = F(a["y_scale"]), int(a["y_zero_point"])
        y = np.full((s, d, b, h), y_zp, np.int8)
        states = [np.zeros((d, b, h), F) for _ in range(self.n_states)]
        steps = np.full(b, s) if lens is None else np.clip(np.asarray(lens, np.int64), 0, s)
        for di in range(d):
            reverse = a["direction"] == "reverse" or di == 1
            wq = np.asarray(w[di], np.int64)
            consts = {"rq": np.asarray(r[di], np.int64), "bias": np.asarray(bias[di], F),
                      "peep": None if p is None else np.asarray(p[di], F),
                      "xw_scale": xw_scale[di], "r_scale": r_scale[di], "h": h,
                      "clip": None if a.get("clip") is None else F(a["clip"])}
            for bi in range(b):
                state = [np.zeros(h, F) if v is None else np.asarray(v[di, bi], F).copy()
                         for v in inits]
                n = int(steps[bi])
                for step in range(n):
                    t = n - 1 - step if reverse else step
                    xq = np.asarray(xs[t, bi], np.int64) - int(a["x_zero_point"])
                    state = self.step(a, state, wq @ xq, **consts)
                    q = np.rint(state[0] / y_scale).astype(np.int64) + y_zp
                    y[t, di, bi] = np.clip(q, -128, 127)
                for i in range(self.n_states):
                    states[i][di, bi] = state[i] if n else F(0.0)
        if layout1:
            y = y.transpose(2, 0, 1, 3)
            states = [v.transpose(1, 0, 2) for v in states]
        return (np.ascontiguousarray(y), *[np.ascontiguousarray(v) for v in states])

    @staticmethod
    def step(attrs, state, acc_x, rq, bias, peep, xw_scale, r_scale, clip, h):
        """One step for one batch entry, in float32 exactly as the C orders it."""
        hv, cv = state
        hs, hq = quantize_state(hv)
        acc_h = rq @ hq
        pre = (acc_x.astype(F) * xw_scale + acc_h.astype(F) * (hs * r_scale)) + bias
        pi, po, pf, pc = (pre[g * h:(g + 1) * h] for g in range(4))
        if peep is not None:
            pi = pi + peep[:h] * cv
            pf = pf + peep[2 * h:] * cv
        if clip is not None:
            pi, pf, pc = (np.clip(v, -clip, clip) for v in (pi, pf, pc))
        ig = sigmoid32(pi)
        fg = F(1.0) - ig if attrs["input_forget"] else sigmoid32(pf)
        cv = (fg * cv + ig * tanh32(pc)).astype(F)
        if peep is not None:
            po = po + peep[h:2 * h] * cv
        if clip is not None:
            po = np.clip(po, -clip, clip)
        hv = (sigmoid32(po) * tanh32(cv)).astype(F)
        return [hv, cv]


class RecurrentInt8(Int8Facet):
    """LSTM -> QLSTM (hybrid: int8 weights and activations in, float32 state); subclasses
    set the op (GRU -> QGRU, quantized_gru.py) through the class attributes and hooks."""

    role = "compute"
    category = "requantize"
    source_op, q_op, gates = "LSTM", "QLSTM", 4
    activations = DEFAULT_ACTIVATIONS
    const_inputs = ((1, "W"), (2, "R"), (3, "B"), (7, "P"))

    def __init__(self):
        super().__init__(f"{self.source_op.lower()}-hybrid", "requantize")

    def why_float(self, node: Node) -> str | None:
        """Why the node cannot take its int8 form, or None when it can."""
        for i, what in self.const_inputs:
            v = node.input(i)
            if (v is None and i in (1, 2)) or (v is not None and not v.is_const):
                return f"{self.source_op}'s int8 form needs a constant {what}"
        acts = node.attrs.get("activations")
        dirs = 2 if node.attrs["direction"] == "bidirectional" else 1
        if acts and list(acts) != self.activations * dirs:
            return (f"{self.source_op}'s int8 form takes the default activations "
                    f"({', '.join(self.activations)}) only")
        return None

    def plan(self, op, node: Node, quantizer) -> str | None:
        """The hybrid int8 op when `why_float` finds nothing against it."""
        return self.q_op.lower() if self.why_float(node) is None else None

    def float_reason(self, op, node: Node, quantizer) -> str:
        """The reason `why_float` gives."""
        return self.why_float(node) or super().float_reason(op, node, quantizer)

    def bias(self, node: Node, bias: np.ndarray | None, d: int, h: int) -> np.ndarray:
        """The float32 bias input of the int8 op: LSTM's Wb + Rb, [D, 4H]."""
        rows = self.gates * h
        return np.zeros((d, rows), F) if bias is None else bias[:, :rows] + bias[:, rows:]

    def extra_attrs(self, node: Node) -> dict:
        """Attributes of the int8 op besides the common ones."""
        return {"input_forget": int(node.attrs.get("input_forget", 0))}

    def quantize(self, op, node: Node, quantizer) -> list[Value]:
        """The int8 op reading the int8 input; the float state outputs are rewired here."""
        g = quantizer.g
        xq = quantizer.int8_of(node.input(0), node)
        xp, yp = xq.quant, quantizer.params_of(node.outputs[0])
        w, r = (np.asarray(node.input(i).data, F) for i in (1, 2))
        d, rows = w.shape[0], w.shape[1]
        h = rows // self.gates
        wq, w_scale = quantize_weights(w.reshape(d * rows, -1))
        rq, r_scale = quantize_weights(r.reshape(d * rows, -1))
        bias = node.input(3)
        b = self.bias(node, None if bias is None else np.asarray(bias.data, F), d, h)
        name = quantizer.free_name(node)
        inputs = [xq, g.const(wq.reshape(w.shape), name + "_w_int8"),
                  g.const(rq.reshape(r.shape), name + "_r_int8"),
                  g.const(np.ascontiguousarray(b, F), name + "_bias")]
        inputs += [node.input(i) for i in range(4, len(node.inputs))]
        attrs = {"direction": node.attrs["direction"], "hidden_size": h,
                 "layout": node.attrs["layout"], "clip": node.attrs.get("clip"),
                 **self.extra_attrs(node), "x_zero_point": zero_point_of(xp),
                 "xw_scale": [float(v) for v in F(scale_of(xp)) * w_scale],
                 "r_scale": [float(v) for v in r_scale],
                 "y_scale": scale_of(yp), "y_zero_point": zero_point_of(yp)}
        count = len(get_op(self.q_op).infer_outputs)
        outs = [v.name for v in node.outputs] + [""] * (count - len(node.outputs))
        new = g.add_node(self.q_op, inputs, attrs=attrs, name=name, before=node,
                         output_names=[(o or name + f"_out{i}") + ("_int8" if i == 0 else "_f")
                                       for i, o in enumerate(outs)])
        new.outputs[0].quant = yp
        for old, fresh in zip(node.outputs[1:], new.outputs[1:]):
            g.replace_output_keep_name(old, fresh)  # the float state keeps its name (and stats)
        quantizer.record(node, self.q_op, xp, yp, w_scale_min=float(w_scale.min()),
                         w_scale_max=float(w_scale.max()))
        return [new.outputs[0]]


LSTM_INT8 = RecurrentInt8()
