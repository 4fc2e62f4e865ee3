"""A numpy evaluator of the NeuralNetwork layers in edgec's `.mlmodel` files (Linux has no
CoreML, and a NeuralNetwork spec cannot be read back into MIL).

`evaluate_spec(spec, feeds, fp16)` runs the spec's layers in order, written from
NeuralNetwork.proto's layer definitions; convolution and pooling reuse the MIL evaluator's
kernels (evaluate_nn.py) with the padding translated. Weights are read as stored: float32,
float16, or 8-bit linear quantisation (scale * u + bias per output channel). With `fp16`
every layer's output is rounded to float16, as the GPU and the Neural Engine keep
activations; otherwise everything stays float32. A layer type not in LAYERS is an error
naming it.
"""

from __future__ import annotations

import numpy as np

from edgec.codegen.coreml.evaluate_nn import _pool, conv
from edgec.codegen.coreml.mil_registry import F32

LAYERS: dict = {}


def layer(*kinds: str):
    """Register an evaluator `fn(params, inputs) -> array` for NeuralNetwork layer types."""
    def register(fn):
        for k in kinds:
            LAYERS[k] = fn
        return fn
    return register


def weights(wp, shape=None) -> np.ndarray:
    """The float32 values of a WeightParams (float, float16 or 8-bit linear quantised)."""
    if len(wp.floatValue):
        w = np.asarray(wp.floatValue, F32)
    elif len(wp.float16Value):
        w = np.frombuffer(wp.float16Value, np.float16).astype(F32)
    elif len(wp.rawValue) and wp.quantization.numberOfBits == 8:
        u = np.frombuffer(wp.rawValue, np.uint8).astype(F32)
        lin = wp.quantization.linearQuantization
        scale, bias = np.asarray(lin.scale, F32), np.asarray(lin.bias, F32)
        rows = u.reshape(scale.size, -1) if scale.size > 1 else u.reshape(1, -1)
        w = (rows * scale.reshape(-1, 1) + bias.reshape(-1, 1)).reshape(-1)
    else:
        raise NotImplementedError("NeuralNetwork weights in a storage edgec does not write")
    return w if shape is None else w.reshape(shape)


def _getter(values: dict):
    return lambda name, default=None: values.get(name, default)


def _border_pads(valid) -> list[int]:
    return [int(v) for b in valid.paddingAmounts.borderAmounts
            for v in (b.startEdgeSize, b.endEdgeSize)]


@layer("convolution")
def convolution(p, xs):
    """convolution (not deconvolution): valid padding amounts or same padding."""
    if p.isDeconvolution:
        raise NotImplementedError("NeuralNetwork deconvolution")
    kernel = [int(k) for k in p.kernelSize]
    w = weights(p.weights, (p.outputChannels, p.kernelChannels, *kernel))
    values = {"x": xs[0], "weight": w, "strides": list(p.stride) or [1, 1],
              "dilations": list(p.dilationFactor) or [1, 1], "groups": max(p.nGroups, 1)}
    if p.WhichOneof("ConvolutionPaddingType") == "same":
        top_left = p.same.asymmetryMode == 1  # TOP_LEFT_HEAVY
        values["pad_type"] = "same_lower" if top_left else "same"
    else:
        values.update(pad_type="custom", pad=_border_pads(p.valid) or [0, 0, 0, 0])
    if p.hasBias:
        values["bias"] = weights(p.bias)
    return conv(_getter(values), None)


@layer("innerProduct")
def inner_product(p, xs):
    """innerProduct on the last axis: x @ W.T + b, W of shape [out, in]."""
    w = weights(p.weights, (p.outputChannels, p.inputChannels))
    y = np.asarray(xs[0], F32) @ w.T
    return y + weights(p.bias) if p.hasBias else y


@layer("pooling")
def pooling(p, xs):
    """pooling: max or average, global, valid padding amounts, same, includeLastPixel."""
    x = np.asarray(xs[0], F32)
    kind = {0: "max", 1: "avg"}.get(p.type)
    if kind is None:
        raise NotImplementedError("NeuralNetwork L2 pooling")
    if p.globalPooling:
        return x.max(axis=(2, 3), keepdims=True) if kind == "max" else \
            x.mean(axis=(2, 3), keepdims=True, dtype=np.float64)
    values = {"x": x, "kernel_sizes": list(p.kernelSize), "strides": list(p.stride),
              "exclude_padding_from_average": bool(p.avgPoolExcludePadding)}
    padding = p.WhichOneof("PoolingPaddingType")
    if padding == "same":
        values["pad_type"] = "same"
    elif padding == "includeLastPixel":
        amounts = [int(v) for v in p.includeLastPixel.paddingAmounts]
        values.update(pad_type="custom", pad=[a for a in amounts for _ in (0, 1)],
                      ceil_mode=True)
    else:
        values.update(pad_type="custom", pad=_border_pads(p.valid) or [0, 0, 0, 0])
    return _pool(_getter(values), None, kind)


def _activation(p, x):
    kind = p.WhichOneof("NonlinearityType")
    a = getattr(p, kind)
    if kind == "ReLU":
        return np.maximum(x, 0)
    if kind == "leakyReLU":
        return np.where(x >= 0, x, a.alpha * x)
    if kind == "linear":
        return a.alpha * x + a.beta
    if kind == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if kind == "tanh":
        return np.tanh(x)
    if kind == "sigmoidHard":
        return np.clip(a.alpha * x + a.beta, 0, 1)
    if kind == "ELU":
        return np.where(x >= 0, x, a.alpha * (np.exp(x) - 1))
    if kind == "softsign":
        return x / (1 + np.abs(x))
    if kind == "softplus":
        return np.logaddexp(0, x)
    if kind == "thresholdedReLU":
        return np.where(x > a.alpha, x, 0)
    if kind == "PReLU":
        alpha = weights(a.alpha).reshape((-1,) + (1,) * (x.ndim - 2))
        return np.where(x >= 0, x, alpha * x)
    raise NotImplementedError(f"NeuralNetwork activation {kind}")


@layer("activation")
def activation(p, xs):
    """activation: the nonlinearity named in the layer."""
    return _activation(p, np.asarray(xs[0], F32))


@layer("clip")
def clip(p, xs):
    """clip(x, minVal, maxVal)."""
    return np.clip(np.asarray(xs[0], F32), p.minVal, p.maxVal)


@layer("add")
def add(p, xs):
    """add: broadcast sum of the inputs (plus alpha with one input)."""
    return sum(np.asarray(x, F32) for x in xs) + (p.alpha if len(xs) == 1 else 0)


@layer("multiply")
def multiply(p, xs):
    """multiply: broadcast product of the inputs (times alpha with one input)."""
    y = np.asarray(xs[0], F32)
    for x in xs[1:]:
        y = y * np.asarray(x, F32)
    return y * p.alpha if len(xs) == 1 else y


@layer("reshapeStatic")
def reshape_static(p, xs):
    """reshapeStatic to targetShape."""
    return np.reshape(xs[0], [int(d) for d in p.targetShape])


@layer("softmaxND")
def softmax_nd(p, xs):
    """softmaxND along axis."""
    x = np.asarray(xs[0], F32)
    e = np.exp(x - x.max(axis=p.axis, keepdims=True))
    return e / e.sum(axis=p.axis, keepdims=True)


@layer("concatND")
def concat_nd(p, xs):
    """concatND along axis."""
    return np.concatenate([np.asarray(x, F32) for x in xs], axis=p.axis)


@layer("transpose")
def transpose(p, xs):
    """transpose by axes."""
    return np.transpose(xs[0], list(p.axes))


def evaluate_spec(spec, feeds: dict[str, np.ndarray], fp16: bool = False
                  ) -> dict[str, np.ndarray]:
    """Outputs of a NeuralNetwork spec's layers on `feeds` (by input name), by output name."""
    env = {d.name: np.asarray(feeds[d.name], F32) for d in spec.description.input}
    for lay in spec.neuralNetwork.layers:
        kind = lay.WhichOneof("layer")
        fn = LAYERS.get(kind)
        if fn is None:
            raise NotImplementedError(f"no numpy evaluator for NeuralNetwork layer '{kind}' "
                                      f"({lay.name})")
        with np.errstate(all="ignore"):
            y = np.asarray(fn(getattr(lay, kind), [env[n] for n in lay.input]), F32)
        env[lay.output[0]] = y.astype(np.float16).astype(F32) if fp16 else y
    return {d.name: env[d.name] for d in spec.description.output}
