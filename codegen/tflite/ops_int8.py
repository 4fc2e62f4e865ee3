"""TFLite lowerings of edgec's int8 ops that are TFLite builtins computing the same bits.

QSoftmax (edgec/ops/quantized_softmax.py) -> SOFTMAX (version 2) on int8 tensors: the input
carries edgec's scale and zero point, the output TFLite's fixed 1/256 and -128, and `beta`
the op's. LiteRT's reference kernel and TensorFlow Lite Micro derive the same multiplier,
shift and diff_min from those (edgec/ops/softmax_fixed_point.py), so the file computes
edgec's bits; NNAPI (from 1.2 for int8 models) and the GPU delegate take it.

QLookup of a Sigmoid / Tanh -> LOGISTIC / TANH (version 2) when its output parameters are
TFLite's fixed ones and its table equals the table LiteRT builds for its input parameters
(edgec/ops/tflite_activations.py; `--tflite-activations` makes them so); any other table
stays CAST + ADD + GATHER (ops_misc.lower_lookup), which computes edgec's table exactly.

QReduceMean (edgec/ops/quantized_reduce.py) -> MEAN over the same axes and keepDims: TFLite's
int8 MEAN derives the same multiplier from the two scales and the count (reference_ops::
QuantizedMeanOrSum, int8_scheme.mean_requant_attrs); refused when the node's multiplier is not
that one or its clamp is narrower than int8 (MEAN has no fused activation).
"""

from __future__ import annotations

import numpy as np

from edgec.codegen.tflite.ops_misc import lower_lookup
from edgec.errors import UnsupportedError
from edgec.ops.int8_scheme import mean_requant_attrs
from edgec.ops.quantized_reduce import reduce_count
from edgec.ops.softmax_fixed_point import OUTPUT_SCALE, OUTPUT_ZERO_POINT
from edgec.ops.tflite_activations import FIXED_OUTPUT, tflite_builtin, tflite_table


def lower_qsoftmax(lw, node) -> None:
    """QSoftmax (int8, last axis) -> SOFTMAX with the node's beta."""
    x, y = node.inputs[0], node.outputs[0]
    q = y.quant
    if q is None or q.per_axis or float(q.scale[0]) != OUTPUT_SCALE or \
            int(q.zero_point[0]) != OUTPUT_ZERO_POINT:
        raise UnsupportedError(f"QSoftmax node '{node.name}': TFLite's int8 SOFTMAX writes "
                               "scale 1/256, zero point -128")
    opt = lw.b.tfl.SoftmaxOptionsT()
    opt.beta = float(node.attrs["beta"])
    lw.b.add_operator("SOFTMAX", [lw.tensor(x)], [lw.output_tensor(y)], opt,
                      rank=len(x.shape))


def _is_tflite_activation(node) -> bool:
    """The QLookup's output parameters and table are TFLite's LOGISTIC / TANH ones."""
    function = str(node.attrs.get("function", ""))
    x, y = node.inputs[0], node.outputs[0]
    if tflite_builtin(function) is None or x.quant is None or y.quant is None or \
            x.quant.per_axis or y.quant.per_axis:
        return False
    _, y_scale, y_zero_point = FIXED_OUTPUT[function.lower()]
    if float(y.quant.scale[0]) != y_scale or int(y.quant.zero_point[0]) != y_zero_point:
        return False
    table = tflite_table(function, float(x.quant.scale[0]), int(x.quant.zero_point[0]))
    return np.array_equal(np.asarray(node.attrs["table"], np.int64), table)


def lower_qlookup(lw, node) -> None:
    """QLookup -> LOGISTIC / TANH where it is TFLite's table, else CAST + ADD + GATHER."""
    if not _is_tflite_activation(node):
        lower_lookup(lw, node)
        return
    kind = tflite_builtin(node.attrs["function"])
    lw.b.add_operator(kind, [lw.tensor(node.inputs[0])], [lw.output_tensor(node.outputs[0])])


def lower_qreduce_mean(lw, node) -> None:
    """QReduceMean -> MEAN (int8) with constant int32 axes."""
    a = node.attrs
    tfl = mean_requant_attrs(a["x_scale"], a["y_scale"], reduce_count(node))
    if (list(a["multiplier"]), list(a["shift"])) != (tfl["multiplier"], tfl["shift"]):
        raise UnsupportedError(f"QReduceMean node '{node.name}': its multiplier is not TFLite "
                               "MEAN's for its scales; compile with --keep-float ReduceMean")
    if (a["act_min"], a["act_max"]) != (-128, 127):
        raise UnsupportedError(f"QReduceMean node '{node.name}': MEAN has no fused "
                               "activation; compile with --keep-float ReduceMean")
    opt = lw.b.tfl.ReducerOptionsT()
    opt.keepDims = bool(a["keepdims"])
    axes = lw.b.const(f"{node.name}/axes", np.asarray(a["axes"], np.int32))
    lw.b.add_operator("MEAN", [lw.tensor(node.inputs[0]), axes],
                      [lw.output_tensor(node.outputs[0])], opt)


LOWERINGS = {"QSoftmax": lower_qsoftmax, "QLookup": lower_qlookup,
             "QReduceMean": lower_qreduce_mean}
