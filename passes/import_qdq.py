"""import-qdq: pre-quantised ONNX models (QDQ form) become edgec's int8 ops, with their scales.

onnxruntime.quantization.quantize_static (QDQ format) writes every quantised op as
DequantizeLinear(s) -> float op -> QuantizeLinear, weights as DequantizeLinear of int8
initializers (per tensor or per channel), biases as DequantizeLinear of int32. This pass
(first in the int8 targets' pipeline, before anything folds the weights' DequantizeLinear):

1. uint8 activations become int8: a QuantizeLinear to uint8 and the DequantizeLinears that
   read it get zero point - 128 and int8 data (exact: q8 = qu8 - 128 everywhere).
2. Each QuantizeLinear (int8, per tensor) whose input is the single-use output of an op whose
   float inputs are all DequantizeLinear outputs (or constants) is fused with that op, as the
   op's int8 facet says (`from_qdq`, edgec/ops/int8_facet.py): Conv -> QConv, Gemm / MatMul
   with constant weights -> QGemm, Add / Mul -> QAdd / QMul, AveragePool /
   GlobalAveragePool -> QAveragePool / QGlobalAveragePool, unary functions -> QLookup,
   same-scale ops (MaxPool, views, Transpose, Pad, Slice...) -> the op on int8 data
   (+ QRequantize when the Quantize's parameters differ). A Relu/Clip between the op and the
   Quantize becomes the clamp. Multipliers come from the model's scales
   (x_scale * w_scale[m] / y_scale); the requantisation is edgec's fixed point, so results
   can differ from onnxruntime's float requantisation by 1 LSB.
3. Everything else stays as it is: QuantizeLinear / DequantizeLinear at the boundaries and
   around float ops, and ONNX's own QLinearConv / QLinearMatMul / ConvInteger /
   MatMulInteger (edgec runs them with exact ONNX semantics).
The pass marks the graph `prequantized`, so the compile driver does not calibrate it.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import DType, Graph, Node, QuantParams, Value
from edgec.ops import get_op
from edgec.ops.int8_facet import QdqOutput
from edgec.ops.int8_scheme import QMAX, QMIN
from edgec.passes._rewrite import apply_rules
from edgec.passes.registry import register_pass

QDQ_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
           "MatMulInteger"}


def _const(v: Value | None):
    return None if v is None or not v.is_const else np.asarray(v.data)


def _per_tensor(node: Node) -> tuple[float, int] | None:
    """(scale, zero point) of a per-tensor Quantize/DequantizeLinear with constant params."""
    s, z = _const(node.input(1)), _const(node.input(2))
    if s is None or s.size != 1 or (node.input(2) is not None and (z is None or z.size != 1)):
        return None
    return float(s.reshape(-1)[0]), int(z.reshape(-1)[0]) if z is not None else 0


def _set_zp(g: Graph, node: Node, zp: int, dtype) -> None:
    node.set_input(2, g.const(np.asarray(zp, dtype=dtype), node.name + "_zp_int8"))


def to_int8(g: Graph) -> bool:
    """Step 1: uint8 Quantize -> Dequantize pairs become int8 (zero points shifted by 128)."""
    changed = False
    for q in list(g.nodes):
        if q.op != "QuantizeLinear" or q.output.dtype != DType.UINT8 or q.output in g.outputs:
            continue
        users = q.output.users
        if not users or any(u.op != "DequantizeLinear" or u.input(0) is not q.output
                            for u in users):
            continue
        z = _const(q.input(2))
        if z is None:
            continue
        z8 = z.astype(np.int64) - 128
        new = g.add_node("QuantizeLinear", [q.input(0), q.input(1),
                                            g.const(z8.astype(np.int8), q.name + "_zp_int8")],
                         attrs={**q.attrs, "output_dtype": 3}, name=q.name, before=q)
        for dq in users:
            zd = _const(dq.input(2))
            if zd is None:
                continue
            dq.set_input(0, new.output)
            dq.set_input(2, g.const((zd.astype(np.int64) - 128).astype(np.int8),
                                    dq.name + "_zp_int8"))
        changed = True
    if changed:
        g.remove_dead()
    return changed


class QdqInputs:
    """The DequantizeLinear feeding each float input of an op (None when not quantised): what
    an int8 facet's `from_qdq` reads the model's int8 data and scales from."""

    def __init__(self, node: Node):
        self.node = node
        self.dq: list[Node | None] = []
        self.ok = True
        for v in node.inputs:
            p = v.producer if v is not None else None
            if p is not None and p.op == "DequantizeLinear" and (
                    p.input(0).dtype == DType.INT8
                    or (p.input(0).is_const and p.input(0).dtype == DType.INT32)):
                self.dq.append(p)
            elif v is None or v.is_const or not v.dtype.is_float:
                self.dq.append(None)
            else:
                self.ok = False
                self.dq.append(None)

    def act(self, i: int):
        """(int8 value, scale, zero point) of activation input i, or None."""
        d = self.dq[i] if i < len(self.dq) else None
        if d is None or d.input(0).is_const:
            return None
        pt = _per_tensor(d)
        return None if pt is None else (d.input(0), *pt)

    def weight(self, i: int, axis: int):
        """(int8 data, per-channel scales along `axis`) of a DQ'd constant weight, or None."""
        d = self.dq[i] if i < len(self.dq) else None
        if d is None or not d.input(0).is_const:
            return None
        w = np.asarray(d.input(0).data)
        s = _const(d.input(1))
        z = _const(d.input(2))
        if s is None:
            return None
        s = np.asarray(s, np.float32).reshape(-1)
        if (z is not None and np.any(z != 0)) or w.dtype != np.int8:
            return None
        if s.size == 1:
            s = np.full(w.shape[axis], s[0], np.float32)
        elif d.attrs["axis"] % w.ndim != axis or s.size != w.shape[axis]:
            return None
        return w, s

    def bias(self, index: int, x_scale: float, w_scale: np.ndarray):
        """int32 bias (input `index`) in units of x_scale * w_scale[m]: the model's own when
        its scale matches, zeros when absent; None when it is computed at run time."""
        v = self.node.input(index)
        if v is None:
            return np.zeros(w_scale.size, np.int32)
        d = self.dq[index]
        want = np.float64(x_scale) * w_scale.astype(np.float64)
        if d is not None and d.input(0).is_const and d.input(0).dtype == DType.INT32:
            s = np.broadcast_to(np.asarray(_const(d.input(1)), np.float64).reshape(-1),
                                want.shape)
            data = np.asarray(d.input(0).data, np.int64).reshape(-1)
            if np.allclose(s, want, rtol=1e-6, atol=0) and _const(d.input(2)) is not None \
                    and not np.any(_const(d.input(2))):
                return data.astype(np.int32)
            real = (data - np.asarray(_const(d.input(2)), np.int64).reshape(-1)) * s
        elif v.is_const:
            real = np.asarray(v.data, np.float64).reshape(-1)
        else:
            return None
        return np.clip(np.rint(real / want), -(2**31) + 1, 2**31 - 1).astype(np.int32)


def _fuse(g: Graph, q: Node) -> bool:
    """Step 2 on one QuantizeLinear (see the module docstring)."""
    if q.op != "QuantizeLinear" or q.output.dtype != DType.INT8:
        return False
    out = _per_tensor(q)
    y = q.input(0)
    node = y.producer
    if out is None or node is None or len(node.outputs) != 1 or len(y.uses) != 1 \
            or y in g.outputs:
        return False
    ys, yzp = out
    lo, hi = QMIN, QMAX
    clamp = get_op(node.op).quant
    if clamp.role == "clamp" and node.input(0).producer is not None and \
            len(node.input(0).uses) == 1 and node.input(0) not in g.outputs:
        lo, hi = clamp.int8_range(node, ys, yzp)
        inner = node.input(0).producer
        if get_op(inner.op).quant.clamp_epilogue:
            node = inner
    ins = QdqInputs(node)
    if not ins.ok:
        return False
    op = get_op(node.op)
    new = op.quant.from_qdq(op, node, ins, QdqOutput(g, ys, yzp, lo, hi, before=q))
    if new is None:
        return False
    new.quant = QuantParams(np.float32(ys), yzp, None, DType.INT8)
    g.replace_all_uses(q.output, new)
    return True


@register_pass("import-qdq")
def import_qdq(g: Graph) -> bool:
    """Turn DequantizeLinear -> op -> QuantizeLinear patterns into internal int8 ops."""
    if not any(n.op in QDQ_OPS for n in g.nodes):
        return False
    g.meta["prequantized"] = True
    to_int8(g)
    apply_rules(g, [_fuse])
    g.remove_dead()
    return True
