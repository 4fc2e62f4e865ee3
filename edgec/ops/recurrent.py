"""LSTM, GRU and RNN (ONNX semantics, opset 7-22).

Inputs: X, W, R, B, sequence_lens, initial_h (+ initial_c, P for LSTM); outputs Y, Y_h
(+ Y_c). Attributes: direction (forward, reverse, bidirectional), hidden_size, activations
with activation_alpha/beta, clip, layout (0: time-major X [S, B, I], Y [S, D, B, H];
1: batch-major X [B, S, I], Y [B, S, D, H]), LSTM's input_forget and peepholes P, GRU's
linear_before_reset.

Gate order follows ONNX: LSTM i, o, f, c; GRU z, r, h. For batch entry b only the first
sequence_lens[b] steps run (a reverse direction starts at step sequence_lens[b] - 1); Y is 0
beyond them and Y_h / Y_c hold the state after the last step that ran (0 when none did, as
in onnxruntime; the spec does not say).

Every output is computed even when the model leaves it out: the C writes the hidden state
of step t straight into Y[t] and keeps the cell state in Y_c, so the kernel needs no memory
besides its outputs (GRU with linear_before_reset = 0 also uses H floats of stack for
r (.) h). A streaming caller keeps the state between calls by feeding Y_h / Y_c back as
initial_h / initial_c.

`activation_alpha` / `activation_beta` are consumed in order by the activations that take
them (onnxruntime's reading of the spec); activations that take none use no entry.
Where the spec is silent, edgec follows onnxruntime: `clip` bounds every gate's input to
its activation function (not the cell state's input to h()).

The reference's matrix-vector products are edgec.detmath.exact_matmul (exact on an integer
grid, whatever BLAS kernel runs) and its activations numpy's exp/tanh, which calibration
swaps for detmath's: the statistics an int8 build calibrates from are the same on every
host (docs/int8.md, "Same bits on every machine").
"""

from __future__ import annotations

import numpy as np

from edgec.detmath import exact_matmul as mv
from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import Node, TensorType
from edgec.ops.base import Attr, OpDef, QuantRule, in_type
from edgec.ops.common import FLOATS, require_dtypes
from edgec.ops.quantized_gru import GRU_INT8, RNN_INT8
from edgec.ops.quantized_lstm import LSTM_INT8
from edgec.ops.registry import register_op

# Activation -> (number of parameters it takes, default alpha, default beta).
ACTIVATIONS = {
    "Relu": (0, 0.0, 0.0), "Tanh": (0, 0.0, 0.0), "Sigmoid": (0, 0.0, 0.0),
    "Softsign": (0, 0.0, 0.0), "Softplus": (0, 0.0, 0.0),
    "Affine": (2, 1.0, 0.0), "LeakyRelu": (1, 0.01, 0.0), "ThresholdedRelu": (1, 1.0, 0.0),
    "ScaledTanh": (2, 1.0, 1.0), "HardSigmoid": (2, 0.2, 0.5), "Elu": (1, 1.0, 0.0),
}
_CANONICAL = {name.lower(): name for name in ACTIVATIONS}


def activation_np(name: str, alpha: float, beta: float, x: np.ndarray) -> np.ndarray:
    """One activation function in float64 numpy (the reference's definition)."""
    with np.errstate(over="ignore"):
        if name == "Relu":
            return np.maximum(x, 0.0)
        if name == "Tanh":
            return np.tanh(x)
        if name == "Sigmoid":
            return 1.0 / (1.0 + np.exp(-x))
        if name == "Softsign":
            return x / (1.0 + np.abs(x))
        if name == "Softplus":
            return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)
        if name == "Affine":
            return alpha * x + beta
        if name == "LeakyRelu":
            return np.where(x >= 0, x, alpha * x)
        if name == "ThresholdedRelu":
            return np.where(x > alpha, x, 0.0)
        if name == "ScaledTanh":
            return alpha * np.tanh(beta * x)
        if name == "HardSigmoid":
            return np.clip(alpha * x + beta, 0.0, 1.0)
        if name == "Elu":
            return np.where(x >= 0, x, alpha * np.expm1(np.minimum(x, 0.0)))
    raise UnsupportedError(f"activation '{name}' is not supported")


class RecurrentOp(OpDef):
    """Common facets of LSTM, GRU and RNN; subclasses set the gate count and defaults."""

    gates = 1
    default_activations: tuple[str, ...] = ("Tanh",)
    n_states = 1  # hidden state only; LSTM adds the cell state
    attrs = {
        "direction": Attr("str", "forward", ("forward", "reverse", "bidirectional")),
        "hidden_size": Attr("int"),
        "activations": Attr("strs", None),
        "activation_alpha": Attr("floats", None),
        "activation_beta": Attr("floats", None),
        "clip": Attr("float", None),
        "layout": Attr("int", 0, (0, 1)),
    }
    dtypes = FLOATS
    quant = QuantRule.FLOAT_ONLY

    # ------------------------------------------------------------------ import
    def import_onnx(self, node: Node, opset: int) -> None:
        require_dtypes(node, self.dtypes, [0, 1, 2])
        if "hidden_size" not in node.attrs:
            w = in_type(node, 1)
            node.attrs["hidden_size"] = w.shape[1] // self.gates if w.rank == 3 else 0
        dirs = 2 if node.attrs.get("direction", "forward") == "bidirectional" else 1
        names = node.attrs.get("activations") or list(self.default_activations) * dirs
        names = [_CANONICAL.get(str(n).lower(), str(n)) for n in names]
        if len(names) != len(self.default_activations) * dirs:
            raise UnsupportedError(f"{node.op} node '{node.name}': needs "
                                   f"{len(self.default_activations) * dirs} activations, "
                                   f"got {len(names)}")
        for name in names:
            if name not in ACTIVATIONS:
                raise UnsupportedError(f"{node.op} node '{node.name}': activation '{name}' "
                                       "is not supported")
        node.attrs["activations"] = names

    def activation_params(self, node: Node) -> list[tuple[str, float, float]]:
        """(name, alpha, beta) of every activation, alphas/betas consumed in order."""
        alphas = list(node.attrs.get("activation_alpha") or [])
        betas = list(node.attrs.get("activation_beta") or [])
        out = []
        for name in node.attrs["activations"]:
            count, alpha, beta = ACTIVATIONS[name]
            if count >= 1 and alphas:
                alpha = alphas.pop(0)
            if count >= 2 and betas:
                beta = betas.pop(0)
            out.append((name, alpha, beta))
        return out

    # ------------------------------------------------------------------ shapes
    def dims(self, node: Node) -> dict:
        """S, B, I, H, D of the node, checked against W, R, B, P and the states."""
        x, w, r = in_type(node, 0), in_type(node, 1), in_type(node, 2)
        where = f"{node.op} node '{node.name}'"
        if x.rank != 3 or w.rank != 3 or r.rank != 3:
            raise ShapeError(f"{where}: X, W and R must be 3-D, got {x}, {w}, {r}")
        seq, batch = (x.shape[0], x.shape[1]) if node.attrs["layout"] == 0 else x.shape[:2][::-1]
        h = node.attrs["hidden_size"]
        d = 2 if node.attrs["direction"] == "bidirectional" else 1
        gh = self.gates * h
        expect = {1: (d, gh, x.shape[2]), 2: (d, gh, h), 3: (d, 2 * gh)}
        state = (d, batch, h) if node.attrs["layout"] == 0 else (batch, d, h)
        expect.update({5: state, 6: state, 7: (d, 3 * h)})
        for index, shape in expect.items():
            v = node.input(index)
            if v is not None and tuple(v.shape) != shape:
                raise ShapeError(f"{where}: input {index} has shape {list(v.shape)}, "
                                 f"expected {list(shape)}")
        lens = node.input(4)
        if lens is not None and tuple(lens.shape) != (batch,):
            raise ShapeError(f"{where}: sequence_lens must have shape [{batch}]")
        if h <= 0:
            raise ShapeError(f"{where}: hidden_size must be positive")
        return {"S": seq, "B": batch, "I": x.shape[2], "H": h, "D": d}

    def infer(self, node: Node) -> list[TensorType]:
        k = self.dims(node)
        dt = in_type(node, 0).dtype
        s, b, d, h = k["S"], k["B"], k["D"], k["H"]
        if node.attrs["layout"] == 0:
            y, state = (s, d, b, h), (d, b, h)
        else:
            y, state = (b, s, d, h), (b, d, h)
        return [TensorType(y, dt)] + [TensorType(state, dt)] * self.n_states

    def macs(self, node: Node) -> int:
        k = self.dims(node)
        return k["D"] * k["S"] * k["B"] * self.gates * k["H"] * (k["I"] + k["H"])

    # ------------------------------------------------------------------ reference
    def reference(self, node: Node, x, w, r, bias=None, lens=None, h0=None, c0=None, p=None):
        k = self.dims(node)
        s, b, h, d = k["S"], k["B"], k["H"], k["D"]
        layout1 = node.attrs["layout"] == 1
        xs = np.asarray(x, np.float64)
        xs = xs.transpose(1, 0, 2) if layout1 else xs  # [S, B, I]
        if h0 is not None and layout1:
            h0 = np.asarray(h0).transpose(1, 0, 2)
        if c0 is not None and layout1:
            c0 = np.asarray(c0).transpose(1, 0, 2)
        acts = self.activation_params(node)
        per_dir = len(self.default_activations)
        y = np.zeros((s, d, b, h))
        y_states = [np.zeros((d, b, h)) for _ in range(self.n_states)]
        steps = np.full(b, s) if lens is None else np.clip(np.asarray(lens, np.int64), 0, s)
        for di in range(d):
            reverse = node.attrs["direction"] == "reverse" or di == 1
            wd, rd = np.asarray(w[di], np.float64), np.asarray(r[di], np.float64)
            gh = self.gates * h
            bd = np.zeros(2 * gh) if bias is None else np.asarray(bias[di], np.float64)
            pd = None if p is None else np.asarray(p[di], np.float64)
            f_acts = acts[di * per_dir:(di + 1) * per_dir]
            for bi in range(b):
                state = [np.zeros(h) if init is None else np.asarray(init[di, bi], np.float64)
                         for init in (h0, c0)[: self.n_states]]
                n = int(steps[bi])
                for step in range(n):
                    t = n - 1 - step if reverse else step
                    state = self.cell(node, xs[t, bi], state, wd, rd, bd, pd, f_acts)
                    y[t, di, bi] = state[0]
                for i in range(self.n_states):  # no step ran: 0, as onnxruntime gives
                    y_states[i][di, bi] = state[i] if n else 0.0
        if layout1:
            y = y.transpose(2, 0, 1, 3)
            y_states = [v.transpose(1, 0, 2) for v in y_states]
        dt = np.asarray(x).dtype
        return (y.astype(dt), *[v.astype(dt) for v in y_states])

    def _clip(self, node: Node, v: np.ndarray) -> np.ndarray:
        c = node.attrs.get("clip")
        return v if c is None else np.clip(v, -c, c)

    def cell(self, node, x, state, w, r, bias, peep, acts):
        """One step for one batch entry: the new state list (float64)."""
        raise NotImplementedError


@register_op("RNN")
class RNN(RecurrentOp):
    """ONNX RNN: h_t = f(W x_t + R h_{t-1} + Wb + Rb)."""

    quant = RNN_INT8  # int8 (tanh): QRNN, int8 weights with float32 state (quantized_gru.py)

    def cell(self, node, x, state, w, r, bias, peep, acts):
        h = self.dims(node)["H"]
        (f, fa, fb), = acts
        pre = mv(w, x) + mv(r, state[0]) + bias[:h] + bias[h:]
        return [activation_np(f, fa, fb, self._clip(node, pre))]


@register_op("GRU")
class GRU(RecurrentOp):
    """ONNX GRU (gates z, r, h; linear_before_reset selects where r applies)."""

    gates = 3
    default_activations = ("Sigmoid", "Tanh")
    quant = GRU_INT8  # int8: QGRU, int8 weights with float32 state (quantized_gru.py)
    attrs = {**RecurrentOp.attrs, "linear_before_reset": Attr("int", 0, (0, 1))}

    def cell(self, node, x, state, w, r, bias, peep, acts):
        h = self.dims(node)["H"]
        (f, fa, fb), (g, ga, gb) = acts
        hp = state[0]
        wx = mv(w, x) + bias[: 3 * h]
        rb = bias[3 * h:]
        z = activation_np(f, fa, fb, self._clip(node, wx[:h] + mv(r[:h], hp) + rb[:h]))
        rr = activation_np(f, fa, fb, self._clip(node, wx[h:2 * h] + mv(r[h:2 * h], hp)
                                                 + rb[h:2 * h]))
        if node.attrs["linear_before_reset"]:
            pre = wx[2 * h:] + rr * (mv(r[2 * h:], hp) + rb[2 * h:])
        else:
            pre = wx[2 * h:] + mv(r[2 * h:], rr * hp) + rb[2 * h:]
        n = activation_np(g, ga, gb, self._clip(node, pre))
        return [(1.0 - z) * n + z * hp]


@register_op("LSTM")
class LSTM(RecurrentOp):
    """ONNX LSTM (gates i, o, f, c; optional peepholes and coupled input/forget gate)."""

    gates = 4
    n_states = 2
    default_activations = ("Sigmoid", "Tanh", "Tanh")
    quant = LSTM_INT8  # int8: QLSTM, int8 weights with float32 state (quantized_lstm.py)
    attrs = {**RecurrentOp.attrs, "input_forget": Attr("int", 0, (0, 1))}

    def cell(self, node, x, state, w, r, bias, peep, acts):
        h = self.dims(node)["H"]
        (f, fa, fb), (g, ga, gb), (hh, ha, hb) = acts
        hp, cp = state
        pre = mv(w, x) + mv(r, hp) + bias[: 4 * h] + bias[4 * h:]
        pi, po, pf, pc = (pre[k * h:(k + 1) * h] for k in range(4))
        if peep is not None:
            pi, pf = pi + peep[:h] * cp, pf + peep[2 * h:] * cp
        i = activation_np(f, fa, fb, self._clip(node, pi))
        fg = 1.0 - i if node.attrs["input_forget"] else \
            activation_np(f, fa, fb, self._clip(node, pf))
        c = fg * cp + i * activation_np(g, ga, gb, self._clip(node, pc))
        if peep is not None:
            po = po + peep[h:2 * h] * c
        o = activation_np(f, fa, fb, self._clip(node, po))
        return [o * activation_np(hh, ha, hb, c), c]
