"""int8-model-io: int8 model inputs and outputs (`--io int8`) on the int8 C targets.

After quantisation an int8 model still takes float inputs and gives float outputs: a
QuantizeLinear reads each float input, a DequantizeLinear writes each float output. A sensor
pipeline that already has int8 samples (or wants int8 results) need not pay for either, and
on a core without an FPU the float QuantizeLinear is a soft-float division per element. This
pass removes them at the edges:

    input(float) -> QuantizeLinear(s, z) -> ...      ==>   input(int8) -> ...
    ... -> x(int8) -> DequantizeLinear(s, z) -> out   ==>   ... -> out = x(int8)

for per-tensor int8 scales and zero points, and records each such input's and output's
scale and zero point in g.meta["int8_io"] (published in the generated header and
report.json: real = scale * (q - zero_point)). The int8 values take the public names. An
input read by anything but such QuantizeLinear nodes, or an output that is not a
DequantizeLinear of int8 read by nothing else, stays float (a final float Softmax, for
example).
"""

from __future__ import annotations

import numpy as np

from edgec.errors import EdgecError
from edgec.ir import DType, Graph, Node, TensorType

META = "int8_io"


def _per_tensor_int8(node: Node) -> tuple[float, int] | None:
    """(scale, zero point) of a Quantize/DequantizeLinear with constant per-tensor int8
    parameters, else None."""
    scale, zp = node.input(1), node.input(2) if len(node.inputs) > 2 else None
    if scale is None or scale.data is None or np.asarray(scale.data).size != 1:
        return None
    if zp is None or zp.data is None or np.asarray(zp.data).size != 1 or zp.dtype != DType.INT8:
        return None
    return float(np.asarray(scale.data, np.float32).reshape(())), \
        int(np.asarray(zp.data).reshape(()))


def _fold_input(g: Graph, index: int) -> tuple[float, int] | None:
    """Make graph input `index` the int8 output of the QuantizeLinear nodes reading it."""
    x = g.inputs[index]
    readers = [node for node, _ in x.uses]
    if not readers or any(n.op != "QuantizeLinear" or n.input(0) is not x for n in readers):
        return None
    params = {_per_tensor_int8(n) for n in readers}
    if len(params) != 1 or None in params or \
            any(n.output.dtype != DType.INT8 or n.output in g.outputs for n in readers):
        return None
    new = g.add_value(x.name + "_int8", TensorType(x.shape, DType.INT8))
    for n in readers:
        g.replace_all_uses(n.output, new)
        g.remove_node(n)
    g.inputs[index] = new
    g.values.pop(x.name, None)
    g.rename_value(new, x.name)  # the interpreter and the harness feed inputs by this name
    return params.pop()


def _fold_output(g: Graph, index: int) -> tuple[float, int] | None:
    """Make graph output `index` the int8 input of the DequantizeLinear producing it."""
    out = g.outputs[index]
    node = out.producer
    if node is None or node.op != "DequantizeLinear" or node.input(0).dtype != DType.INT8:
        return None
    params = _per_tensor_int8(node)
    q = node.input(0)
    if params is None or out.uses or q in g.outputs or q in g.inputs:
        return None
    g.outputs[index] = q
    g.remove_node(node)
    g.values.pop(out.name, None)
    g.rename_value(q, out.name)  # outputs are read back by this name
    return params


def int8_model_io(g: Graph) -> dict:
    """Fold the edge QuantizeLinear/DequantizeLinear nodes (module docstring); returns and
    stores g.meta["int8_io"] = {"inputs": {name: {"scale", "zero_point"}}, "outputs": ...}
    by public name."""
    in_names = list(g.meta.get("input_names") or [v.name for v in g.inputs])
    out_names = list(g.meta.get("output_names") or [v.name for v in g.outputs])
    g.meta["input_names"], g.meta["output_names"] = in_names, out_names
    found: dict = {"inputs": {}, "outputs": {}}
    for i, name in enumerate(in_names):
        params = _fold_input(g, i)
        if params is not None:
            found["inputs"][name] = {"scale": params[0], "zero_point": params[1]}
    for i, name in enumerate(out_names):
        params = _fold_output(g, i)
        if params is not None:
            found["outputs"][name] = {"scale": params[0], "zero_point": params[1]}
    g.remove_dead()
    g.meta[META] = found
    return found


def quantize_input(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float samples as an int8 input of `--io int8` expects them: QuantizeLinear's
    arithmetic (edgec/ops/onnx_quant.py: rint(x / scale) in float32, plus the zero point,
    saturated), the bits the removed node would have produced."""
    q = np.rint(np.asarray(x, np.float32) / np.float32(scale)).astype(np.float64) + zero_point
    return np.clip(np.nan_to_num(q, nan=-128.0), -128, 127).astype(np.int8)


def dequantize_output(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """An int8 output of `--io int8` as real values: scale * (q - zero_point)."""
    return (np.asarray(q, np.float32) - np.float32(zero_point)) * np.float32(scale)


def check_io(io: str, target) -> None:
    """--io float|int8: int8 model I/O needs an int8 C target (TFLite: --tflite-io)."""
    if io not in ("float", "int8"):
        raise EdgecError(f"--io takes float or int8, not '{io}'")
    if io == "int8" and target.backend == "tflite":
        raise EdgecError(f"--io int8 is for C targets; for {target.name} use --tflite-io int8")
    if io == "int8" and (target.backend != "c" or not target.is_int8):
        raise EdgecError(f"--io int8 needs an int8 C target (e.g. cortex-m4-int8, "
                         f"generic-int8), not '{target.name}'")
