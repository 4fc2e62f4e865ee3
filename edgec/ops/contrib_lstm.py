"""com.microsoft DynamicQuantizeLSTM, as onnxruntime's dynamic quantiser
(`onnxruntime.quantization.quantize_dynamic`) writes an ONNX LSTM: imported onto edgec's
LSTM with the int8/uint8 weights dequantised at compile time.

The contrib op differs from ONNX LSTM in its weights only: W [D, input, 4H] and R [D, H, 4H]
are stored transposed, as int8/uint8 codes with a scale and zero point per direction
([D]) or per direction and gate column ([D, 4H]); inputs 8-11 are W_scale, W_zero_point,
R_scale, R_zero_point. Gate order (i, o, f, c), bias, peepholes, states and attributes
are LSTM's (no `layout`). edgec computes W = scale * (code - zero_point) in float32 and
runs the float LSTM. onnxruntime instead quantises X and each step's hidden state to uint8
at run time and multiplies in integers, so the two differ by that activation rounding
(about 1/255 of each GEMM input's range; measured in tests/ops/test_contrib_lstm.py), not
by the weights, which both use exactly.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import DType, Node, TensorType
from edgec.ir.graph import Value
from edgec.ops.recurrent import LSTM
from edgec.ops.registry import register_op

_WEIGHTS = ((1, 8, 9, "W"), (2, 10, 11, "R"))  # (codes, scale, zero point, name)


@register_op("DynamicQuantizeLSTM")
class DynamicQuantizeLSTM(LSTM):
    """com.microsoft DynamicQuantizeLSTM: an LSTM whose int8/uint8 weights (transposed,
    per-direction or per-column scale and zero point) are dequantised at import; the node
    becomes an LSTM (every later facet, and the C kernel, are LSTM's)."""

    dtypes = {DType.FLOAT32, DType.INT8, DType.UINT8, DType.INT32}

    def import_onnx(self, node: Node, opset: int) -> None:
        if "layout" in node.attrs:
            raise UnsupportedError(f"{node.op} node '{node.name}': unexpected attribute "
                                   "'layout'")
        x = node.input(0)
        if x is None or x.dtype != DType.FLOAT32:
            raise ShapeError(f"{node.op} node '{node.name}': X must be float32")
        floats = [self._dequantise(node, *spec) for spec in _WEIGHTS]
        inputs = list(node.inputs[:8])
        for (index, _, _, what), w in zip(_WEIGHTS, floats):
            inputs[index] = Value(f"{node.name}_{what}_dequantized",
                                  TensorType(w.shape, DType.FLOAT32), w)
        while inputs and inputs[-1] is None:
            inputs.pop()
        node.inputs = inputs
        node.op = "LSTM"
        super().import_onnx(node, opset)

    def _dequantise(self, node: Node, codes_index: int, scale_index: int, zp_index: int,
                    what: str) -> np.ndarray:
        """scale * (code - zero_point) in float32, transposed to LSTM's [D, 4H, K]."""
        codes = self.const_input(node, codes_index, what)
        if codes is None or codes.dtype not in (np.int8, np.uint8) or codes.ndim != 3:
            raise ShapeError(f"{node.op} node '{node.name}': {what} must be a constant 3-D "
                             "int8/uint8 tensor")
        d, _, cols = codes.shape
        scale = self.const_input(node, scale_index, f"{what}_scale")
        if scale is None:
            raise ShapeError(f"{node.op} node '{node.name}': {what}_scale is missing")
        zp = self.const_input(node, zp_index, f"{what}_zero_point")
        zp = np.zeros(1, np.int64) if zp is None else np.asarray(zp, np.int64)
        shaped = []
        for v, name in ((np.asarray(scale, np.float32), "scale"), (zp, "zero_point")):
            if v.size == d:
                shaped.append(v.reshape(d, 1, 1))
            elif v.size == d * cols:
                shaped.append(v.reshape(d, 1, cols))
            elif v.size == 1:
                shaped.append(v.reshape(1, 1, 1))
            else:
                raise ShapeError(f"{node.op} node '{node.name}': {what}_{name} has {v.size} "
                                 f"values; expected {d} (per direction) or {d * cols}")
        centred = (codes.astype(np.int64) - shaped[1]).astype(np.float32)
        weights = centred * shaped[0]
        return np.ascontiguousarray(weights.transpose(0, 2, 1), np.float32)
