"""The model onnxruntime runs as `edgec verify`'s reference, where edgec's documented
semantics of an op differ from onnxruntime's kernel on purpose.

com.microsoft DynamicQuantizeLSTM: edgec runs a float LSTM on the dequantised int8 weights
(edgec/ops/contrib_lstm.py); onnxruntime's kernel also rounds X and every hidden state to
uint8, about 1/255 of their range (docs/int8.md), which no fp32 band can absorb. The
reference therefore runs each such node as an ONNX LSTM on the same dequantised weights
(computed here from the model's initializers, independently of edgec's import), and says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_WEIGHTS = ((1, 8, 9), (2, 10, 11))  # (codes, scale, zero point) input indices


def reference_model(model_path):
    """(what onnxruntime should run: `model_path` itself (a file or an onnx.ModelProto) or a
    rewritten copy, notes for the user), rewriting every DynamicQuantizeLSTM whose weights
    are initializers."""
    import onnx  # on use: loaded only here, by verify
    from onnx import numpy_helper

    model = onnx.load(str(model_path)) if isinstance(model_path, (str, Path)) else model_path
    if not any(n.op_type == "DynamicQuantizeLSTM" for n in model.graph.node):
        return model_path, []
    if model is model_path:  # the caller's proto stays as it is
        model = onnx.ModelProto()
        model.CopyFrom(model_path)
    inits = {t.name: t for t in model.graph.initializer}
    notes = []
    for node in model.graph.node:
        names = list(node.input)
        if node.op_type != "DynamicQuantizeLSTM" or len(names) < 12 or \
                not all(names[i] in inits for spec in _WEIGHTS for i in spec):
            continue
        for codes, scale, zp in _WEIGHTS:
            q = numpy_helper.to_array(inits[names[codes]]).astype(np.float64)
            d = q.shape[0]
            s = numpy_helper.to_array(inits[names[scale]]).astype(np.float32)
            z = numpy_helper.to_array(inits[names[zp]]).astype(np.float64)
            w = (q - z.reshape(d, 1, -1)).astype(np.float32) * s.reshape(d, 1, -1)
            new_name = names[codes] + "_dequantized_for_reference"
            model.graph.initializer.append(numpy_helper.from_array(
                np.ascontiguousarray(w.transpose(0, 2, 1)), new_name))
            names[codes] = new_name
        node.op_type, node.domain = "LSTM", ""
        del node.input[:]
        node.input.extend(names[:8])
        notes.append(f"onnxruntime reference: DynamicQuantizeLSTM '{node.name}' runs as an "
                     "LSTM on its dequantised weights, as edgec computes it (onnxruntime's "
                     "own kernel also rounds X and the hidden state to uint8; docs/int8.md)")
    return (model if notes else model_path), notes
