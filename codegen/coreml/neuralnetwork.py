"""`--coreml-format neuralnetwork`: a NeuralNetwork `.mlmodel` for iOS 13/14 (docs/coreml.md).

The graph is lowered by the same table as the ML Program (program.py), at the iOS14 MIL
opset, and coremltools' NeuralNetwork back-end (coremltools.converters.mil.backend.nn, which
writes every layer through NeuralNetworkBuilder) turns it into NeuralNetwork layers: one set
of lowerings for both formats. The weights are then set per target:

  coreml-fp32  float32 weights;
  coreml-fp16  float16 weights (a NeuralNetwork model has no compute precision of its own:
               the GPU and the Neural Engine compute in fp16);
  coreml-int8  edgec's per-channel int8 weights (edgec.ops.int8_scheme.quantize_weights, as
               the C targets and the ML Program) of every convolution and inner product, as
               NeuralNetwork 8-bit linear quantisation: uint8 u = q + 128, per-channel scale
               s and bias -128 s, so s * u - 128 s = s * q.

The spec cannot be read back into MIL, so `edgec verify` evaluates its layers directly
(evaluate_neuralnetwork.py).
"""

from __future__ import annotations

import numpy as np

from edgec.codegen.coreml._ct import coremltools, quiet
from edgec.codegen.coreml.program import build_program
from edgec.errors import UnsupportedError
from edgec.ir import Graph
from edgec.ops.int8_scheme import quantize_weights

SPEC_TARGETS = {1: "iOS11", 2: "iOS11.2", 3: "iOS12", 4: "iOS13", 5: "iOS14"}
WEIGHTED_LAYERS = {"convolution": "weights", "innerProduct": "weights"}


def convert_neuralnetwork(g: Graph, target, coreml_target: str | None):
    """(MLModel of the NeuralNetwork spec, spec input names, spec output names, layer
    counts, deployment target name) for `g` on `target`."""
    ct = coremltools()
    if coreml_target is not None:
        raise UnsupportedError("--coreml-target applies to ML Programs (iOS15+); a NeuralNetwork "
                               ".mlmodel's deployment target follows from its layers (iOS13/14)")
    with quiet():
        prog, _ctx, spec_in, spec_out = build_program(g, False, ct.target.iOS14)
        mlmodel = ct.convert(prog, convert_to="neuralnetwork", skip_model_load=True,
                             minimum_deployment_target=ct.target.iOS14)
    spec = mlmodel.get_spec()
    if target.precision == "fp16":
        for layer in spec.neuralNetwork.layers:
            for wp in _weight_params(getattr(layer, layer.WhichOneof("layer"))):
                if len(wp.floatValue):
                    wp.float16Value = np.asarray(wp.floatValue, np.float16).tobytes()
                    wp.ClearField("floatValue")
    elif target.precision == "int8-weights":
        for layer in spec.neuralNetwork.layers:
            kind = layer.WhichOneof("layer")
            if kind in WEIGHTED_LAYERS:
                _quantize_layer(getattr(layer, kind))
    for out, v in zip(spec.description.output, g.outputs):  # the converter leaves them open
        if out.type.WhichOneof("Type") == "multiArrayType" and not out.type.multiArrayType.shape:
            out.type.multiArrayType.shape.extend(int(d) for d in v.shape)
    with quiet():
        mlmodel = ct.models.MLModel(spec, skip_model_load=True)
    layers: dict[str, int] = {}
    for layer in spec.neuralNetwork.layers:
        kind = layer.WhichOneof("layer")
        layers[kind] = layers.get(kind, 0) + 1
    deployment = SPEC_TARGETS.get(spec.specificationVersion, f"spec {spec.specificationVersion}")
    return mlmodel, spec_in, spec_out, dict(sorted(layers.items())), deployment


def _quantize_layer(params) -> None:
    """Replace a convolution's or inner product's float weights by edgec's int8 weights as
    8-bit linear quantisation (module docstring); the output channel is axis 0 of both."""
    wp = params.weights
    w = np.asarray(wp.floatValue, np.float32)
    shape = _weight_shape(params, w.size)
    q, scale = quantize_weights(w.reshape(shape), 0)
    wp.ClearField("floatValue")
    wp.rawValue = (q.astype(np.int16) + 128).astype(np.uint8).tobytes()
    wp.quantization.numberOfBits = 8
    lin = wp.quantization.linearQuantization
    lin.scale.extend(float(s) for s in np.asarray(scale, np.float32))
    lin.bias.extend(float(-128.0 * s) for s in np.asarray(scale, np.float32))


def _weight_shape(params, size: int) -> tuple[int, ...]:
    """The weight shape of a convolution ([out, in / groups, *kernel]) or an inner product
    ([out, in])."""
    if hasattr(params, "kernelChannels"):
        return (params.outputChannels, params.kernelChannels, *params.kernelSize)
    return (params.outputChannels, size // params.outputChannels)


def _weight_params(params) -> list:
    """The WeightParams fields (weights, bias, alpha ...) a layer's parameters hold."""
    return [getattr(params, f.name) for f in params.DESCRIPTOR.fields
            if f.message_type is not None and f.message_type.name == "WeightParams"
            and params.HasField(f.name)]


def weights_bytes(spec) -> int:
    """Bytes of the layer weights stored in a NeuralNetwork spec (values, quantisation
    scales and biases)."""
    total = 0
    for layer in spec.neuralNetwork.layers:
        for wp in _weight_params(getattr(layer, layer.WhichOneof("layer"))):
            lin = wp.quantization.linearQuantization
            total += 4 * len(wp.floatValue) + len(wp.float16Value) + len(wp.rawValue) + \
                4 * (len(lin.scale) + len(lin.bias))
    return total
