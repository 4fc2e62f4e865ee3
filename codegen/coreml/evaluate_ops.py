"""numpy evaluators of MIL's elementwise, activation, reduction, normalisation and shape ops
(the layer ops and the driver are in evaluate.py). Semantics from coremltools' op docs."""

from __future__ import annotations

import math

import numpy as np

from edgec.codegen.coreml.mil_registry import F32, _f, evaluates

_erf = np.vectorize(math.erf, otypes=[np.float64])

UNARY = {
    "relu": lambda x: np.maximum(x, F32(0)),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x.astype(np.float64))),
    "tanh": np.tanh, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs,
    "erf": lambda x: _erf(x.astype(np.float64)),
    "softplus": lambda x: np.logaddexp(0, x.astype(np.float64)),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "sin": np.sin, "cos": np.cos, "ceil": np.ceil, "floor": np.floor, "sign": np.sign,
}
BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.divide,
          "pow": np.power, "maximum": np.maximum, "minimum": np.minimum, "less": np.less,
          "less_equal": np.less_equal, "greater": np.greater,
          "greater_equal": np.greater_equal, "equal": np.equal, "not_equal": np.not_equal}
REDUCE = {
    "reduce_mean": lambda x, a, k: np.mean(x, axis=a, keepdims=k, dtype=np.float64),
    "reduce_max": lambda x, a, k: np.max(x, axis=a, keepdims=k),
    "reduce_min": lambda x, a, k: np.min(x, axis=a, keepdims=k),
    "reduce_sum": lambda x, a, k: np.sum(x, axis=a, keepdims=k, dtype=np.float64),
    "reduce_prod": lambda x, a, k: np.prod(x, axis=a, keepdims=k, dtype=np.float64),
    "reduce_l1_norm": lambda x, a, k: np.sum(np.abs(x), axis=a, keepdims=k, dtype=np.float64),
    "reduce_l2_norm": lambda x, a, k: np.sqrt(np.sum(np.square(x, dtype=np.float64), axis=a,
                                                     keepdims=k)),
    "reduce_sum_square": lambda x, a, k: np.sum(np.square(x, dtype=np.float64), axis=a,
                                                keepdims=k),
    "reduce_log_sum": lambda x, a, k: np.log(np.sum(x, axis=a, keepdims=k, dtype=np.float64)),
    "reduce_log_sum_exp": lambda x, a, k: _log_sum_exp(x, a, k),
}


def _log_sum_exp(x, axes, keep):
    x = x.astype(np.float64)
    m = np.max(x, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    y = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    return y if keep else np.squeeze(y, axis=axes)


def _register_tables() -> None:
    for name, fn in UNARY.items():
        evaluates(name)(lambda get, op, fn=fn: fn(_f(get("x"))))
    for name, fn in BINARY.items():
        evaluates(name)(lambda get, op, fn=fn: fn(_f(get("x")), _f(get("y"))))
    for name, fn in REDUCE.items():
        evaluates(name)(lambda get, op, fn=fn: _reduce(get, fn))


def _reduce(get, fn):
    x = _f(get("x"))
    axes = get("axes")
    axes = tuple(range(x.ndim)) if axes is None else tuple(int(a) % x.ndim for a in axes)
    return fn(x, axes, bool(get("keep_dims", False)))


_register_tables()


@evaluates("clip")
def clip(get, op):
    """clip(x, alpha, beta) = min(max(x, alpha), beta)."""
    return np.minimum(np.maximum(_f(get("x")), _f(get("alpha"))), _f(get("beta")))


@evaluates("relu6")
def relu6(get, op):
    """relu6 = clip(x, 0, 6) (coremltools' passes may form it from a clip)."""
    return np.minimum(np.maximum(_f(get("x")), F32(0)), F32(6))


@evaluates("leaky_relu")
def leaky_relu(get, op):
    """x >= 0 ? x : alpha x."""
    x = _f(get("x"))
    return np.where(x >= 0, x, x * _f(get("alpha", 0.01)))


@evaluates("elu")
def elu(get, op):
    """x > 0 ? x : alpha (exp(x) - 1)."""
    x = _f(get("x"))
    return np.where(x > 0, x, _f(get("alpha", 1.0)) * np.expm1(x))


@evaluates("thresholded_relu")
def thresholded_relu(get, op):
    """x > alpha ? x : 0."""
    x = _f(get("x"))
    return np.where(x > _f(get("alpha", 1.0)), x, F32(0))


@evaluates("sigmoid_hard")
def sigmoid_hard(get, op):
    """min(max(alpha x + beta, 0), 1)."""
    y = _f(get("alpha", 0.2)) * _f(get("x")) + _f(get("beta", 0.5))
    return np.minimum(np.maximum(y, F32(0)), F32(1))


@evaluates("gelu")
def gelu(get, op):
    """EXACT: x Phi(x); TANH_APPROXIMATION: the tanh formula; SIGMOID_APPROXIMATION."""
    x = _f(get("x")).astype(np.float64)
    mode = str(get("mode", "EXACT"))
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x / (1 + np.exp(-1.702 * x))
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


@evaluates("softmax")
def softmax(get, op):
    """exp(x - max) / sum over `axis`."""
    x = _f(get("x")).astype(np.float64)
    axis = int(get("axis", -1))
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@evaluates("batch_norm")
def batch_norm(get, op):
    """(x - mean) / sqrt(variance + epsilon) * gamma + beta along axis 1."""
    x = _f(get("x"))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = _f(get("mean")).reshape(shape), _f(get("variance")).reshape(shape)
    gamma = get("gamma")
    beta = get("beta")
    y = (x - mean) / np.sqrt(var + _f(get("epsilon", 1e-5)))
    if gamma is not None:
        y = y * _f(gamma).reshape(shape)
    return y if beta is None else y + _f(beta).reshape(shape)


@evaluates("instance_norm")
def instance_norm(get, op):
    """Normalise each (n, c) over the spatial axes; gamma, beta per channel."""
    x = _f(get("x")).astype(np.float64)
    axes = tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(
        x.var(axis=axes, keepdims=True) + float(get("epsilon", 1e-5)))
    if get("gamma") is not None:
        y = y * _f(get("gamma")).reshape(shape)
    return y if get("beta") is None else y + _f(get("beta")).reshape(shape)


@evaluates("layer_norm")
def layer_norm(get, op):
    """Normalise over `axes`; gamma and beta have the normalised shape."""
    x = _f(get("x")).astype(np.float64)
    axes = tuple(int(a) % x.ndim for a in get("axes"))
    y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(
        x.var(axis=axes, keepdims=True) + float(get("epsilon", 1e-5)))
    if get("gamma") is not None:
        y = y * _f(get("gamma"))
    return y if get("beta") is None else y + _f(get("beta"))


@evaluates("reshape")
def reshape(get, op):
    """reshape to `shape`."""
    return np.reshape(get("x"), [int(d) for d in get("shape")])


@evaluates("transpose")
def transpose(get, op):
    """transpose by `perm`."""
    return np.transpose(get("x"), [int(p) for p in get("perm")])


@evaluates("concat")
def concat(get, op):
    """concat `values` on `axis`."""
    return np.concatenate(get("values"), axis=int(get("axis")))


@evaluates("split")
def split(get, op):
    """split on `axis` by `split_sizes` (or into `num_splits` equal parts)."""
    x, axis = np.asarray(get("x")), int(get("axis"))
    sizes = get("split_sizes")
    if sizes is None:
        return np.split(x, int(get("num_splits")), axis=axis)
    return np.split(x, np.cumsum([int(s) for s in sizes])[:-1], axis=axis)


@evaluates("slice_by_index")
def slice_by_index(get, op):
    """x[begin:end:stride] per axis; masks take the whole side; squeeze_mask drops axes."""
    x = np.asarray(get("x"))
    n = x.ndim
    begin, end = [int(v) for v in get("begin")], [int(v) for v in get("end")]
    stride = [int(v) for v in get("stride", [1] * n)]
    bmask = list(get("begin_mask", [False] * n))
    emask = list(get("end_mask", [False] * n))
    squeeze = list(get("squeeze_mask", [False] * n))
    index = []
    for i in range(n):
        index.append(slice(None if bmask[i] else begin[i], None if emask[i] else end[i],
                           stride[i]))
    y = x[tuple(index)]
    drop = tuple(i for i in range(n) if squeeze[i])
    return np.squeeze(y, axis=drop) if drop else y


@evaluates("pad")
def pad(get, op):
    """pad the last len(pad)/2 axes: constant, reflect or replicate."""
    x = np.asarray(get("x"))
    p = [int(v) for v in get("pad")]
    k = len(p) // 2
    widths = [(0, 0)] * (x.ndim - k) + [(p[2 * i], p[2 * i + 1]) for i in range(k)]
    mode = str(get("mode", "constant"))
    if mode == "constant":
        return np.pad(x, widths, constant_values=_f(get("constant_val", 0.0)))
    return np.pad(x, widths, mode={"reflect": "reflect", "replicate": "edge"}[mode])


@evaluates("gather")
def gather(get, op):
    """x taken at `indices` along `axis` (negative indices count from the end)."""
    x = np.asarray(get("x"))
    axis = int(get("axis", 0)) % x.ndim
    idx = np.asarray(get("indices")).astype(np.int64)
    return np.take(x, np.where(idx < 0, idx + x.shape[axis], idx), axis=axis)


@evaluates("upsample_nearest_neighbor")
def upsample_nearest(get, op):
    """Repeat H by scale_factor_height and W by scale_factor_width (integer factors)."""
    x = np.asarray(get("x"))
    sh, sw = int(get("scale_factor_height", 1)), int(get("scale_factor_width", 1))
    return np.repeat(np.repeat(x, sh, axis=-2), sw, axis=-1)


@evaluates("select")
def select(get, op):
    """cond ? a : b, broadcast."""
    return np.where(np.asarray(get("cond")).astype(bool), _f(get("a")), _f(get("b")))


@evaluates("classify")
def classify(get, op):
    """classify: [the label of the largest score, the scores in class order (float32)]; the
    package's dictionary output, as a list in the order of `classes`."""
    scores = np.asarray(get("probabilities"), F32).reshape(-1)
    classes = list(get("classes"))
    return [classes[int(np.argmax(scores))], scores]
