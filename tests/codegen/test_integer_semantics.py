"""Integer arithmetic in the generated C follows ONNX/numpy semantics and is never undefined
behaviour (docs/robustness.md, "Integer semantics"): + - * neg abs wrap around, x / 0 = 0,
x % 0 = 0, INT_MIN / -1 = INT_MIN, INT_MIN % -1 = 0, Pow is exact and wraps, Cast from float
truncates (NaN -> 0, beyond int64 saturates, narrower types wrap).

Every model is built with ASan and UBSan (-fno-sanitize-recover: a report fails the run) and
its outputs are compared with expectations computed here from Python's exact integers, and
with onnxruntime wherever onnxruntime defines the result.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import ort_run, run_c
from onnx import helper

SIGNED = ["int8", "int16", "int32", "int64"]


def _model(nodes, inputs: dict, outputs: dict):
    """A model over any numpy element types (inputs/outputs: name -> (dtype, shape))."""
    def info(name, dtype, shape):
        code = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        return helper.make_tensor_value_info(name, code, shape)

    graph = helper.make_graph(nodes, "ints", [info(n, *v) for n, v in inputs.items()],
                              [info(n, *v) for n, v in outputs.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _wrap(value: int, dtype: np.dtype) -> int:
    """`value` reduced modulo 2^bits into dtype's range (two's complement)."""
    bits = 8 * dtype.itemsize
    value %= 1 << bits
    if dtype.kind == "i" and value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


def _trunc_div(a: int, b: int) -> int:
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _mod(a: int, b: int, fmod: bool) -> int:
    if b == 0:
        return 0
    r = a - _trunc_div(a, b) * b  # the dividend's sign
    if not fmod and r != 0 and (r < 0) != (b < 0):
        r += b
    return r


def _pow(a: int, e: int) -> int:
    if e >= 0:
        return a ** e
    return 1 if a == 1 else ((-1) ** (-e) if a == -1 else 0)


def _operands(dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of edge values (min, max, -1, 0, 1, ...) and a few random ones."""
    info = np.iinfo(dtype)
    edges = {info.min, info.min + 1, -2, -1, 0, 1, 2, 7, info.max - 1, info.max}
    rng = np.random.default_rng(dtype.itemsize)
    extra = rng.integers(info.min, info.max, 6, dtype=dtype, endpoint=True).tolist()
    values = [int(v) for v in sorted(edges) + extra if info.min <= v <= info.max]
    a = np.array([x for x in values for _ in values], dtype)
    b = np.array([y for _ in values for y in values], dtype)
    return a, b


BINARY = {"Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b,
          "Div": _trunc_div, "Mod": lambda a, b: _mod(a, b, False),
          "FMod": lambda a, b: _mod(a, b, True)}


@pytest.mark.parametrize("dtype", SIGNED + ["uint8"])
def test_integer_arithmetic_wraps_and_divides_defined(dtype):
    """One model per type with every op over all edge-value pairs, sanitizers on."""
    dtype = np.dtype(dtype)
    a, b = _operands(dtype)
    n = a.size
    nodes = [helper.make_node(op if op != "FMod" else "Mod", ["a", "b"], [op.lower()],
                              **({"fmod": 1} if op == "FMod" else {})) for op in BINARY]
    unary = ["Neg", "Abs"] if dtype.kind == "i" else []
    nodes += [helper.make_node(op, ["a"], [op.lower()]) for op in unary]

    def model_of(size: int):
        outs = {node.output[0]: (dtype, [size]) for node in nodes}
        return _model(nodes, {"a": (dtype, [size]), "b": (dtype, [size])}, outs)

    got = run_c(model_of(n), {"a": a, "b": b}, sanitize=True)

    pairs = list(zip(a.tolist(), b.tolist()))
    expect = {op.lower(): [_wrap(fn(x, y), dtype) for x, y in pairs] for op, fn in BINARY.items()}
    if unary:
        expect["neg"] = [_wrap(-x, dtype) for x, _ in pairs]
        expect["abs"] = [_wrap(abs(x), dtype) for x, _ in pairs]
    for name, want in expect.items():
        np.testing.assert_array_equal(got[name], np.array(want, dtype), err_msg=name)

    # onnxruntime agrees wherever it defines the result: it stops on a zero divisor, and
    # INT_MIN / -1 traps in its kernels.
    ok = b != 0
    if dtype.kind == "i":
        ok &= ~((a == np.iinfo(dtype).min) & (b == -1))
    ref = ort_run(model_of(int(ok.sum())), {"a": a[ok], "b": b[ok]})
    for name in expect:
        np.testing.assert_array_equal(got[name][ok], ref[name], err_msg=f"{name} vs onnxruntime")


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_pow_is_exact_and_wraps(dtype):
    """Pow with an integer exponent: exact and wrapping like numpy; negative exponents give
    the truncated real result; a float exponent converts like Cast (never undefined)."""
    dtype = np.dtype(dtype)
    base = [0, 1, 2, 3, 7, 10, 255] + ([-1, -2, -3, -7] if dtype.kind == "i" else [])
    exps = [0, 1, 2, 5, 13, 31, 40, 63, 64, 100] + ([-1, -2, -3] if dtype.kind == "i" else [])
    a = np.array([x for x in base for _ in exps], dtype)
    e = np.array([y for _ in base for y in exps], dtype)
    ef = e.astype(np.float32) + np.float32(0.5)
    model = _model([helper.make_node("Pow", ["a", "e"], ["y"]),
                    helper.make_node("Pow", ["a", "ef"], ["yf"])],
                   {"a": (dtype, [a.size]), "e": (dtype, [a.size]), "ef": (np.float32, [a.size])},
                   {"y": (dtype, [a.size]), "yf": (dtype, [a.size])})
    got = run_c(model, {"a": a, "e": e, "ef": ef}, sanitize=True)
    want = [_wrap(_pow(int(x), int(y)), dtype) for x, y in zip(a.tolist(), e.tolist())]
    np.testing.assert_array_equal(got["y"], np.array(want, dtype))
    nonneg = e >= 0
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(got["y"][nonneg], np.power(a[nonneg], e[nonneg]))

    def cast(x: float) -> int:  # Cast's rule: trunc, NaN -> 0, saturate to int64, wrap
        if math.isnan(x):
            return 0
        if math.isinf(x) or abs(x) >= 2.0 ** 63:
            return _wrap(2 ** 63 - 1 if x > 0 else -2 ** 63, dtype)
        return _wrap(math.trunc(x), dtype)

    with np.errstate(all="ignore"):
        real = np.power(a.astype(np.float64), ef.astype(np.float64))
    np.testing.assert_array_equal(got["yf"], np.array([cast(v) for v in real], dtype))


@pytest.mark.parametrize("dtype", ["int32", "int64", "int8", "uint8"])
def test_cast_float_to_int_is_defined(dtype):
    """Cast float -> int of NaN, +-Inf and out-of-range values under UBSan, as documented."""
    dtype = np.dtype(dtype)
    x = np.array([np.nan, np.inf, -np.inf, 3e38, -3e38, 3e9, -3e9, 2.0 ** 63, 300.7, -300.7,
                  129.9, -1.5, 0.0, -0.0], np.float32)
    model = _model([helper.make_node("Cast", ["x"], ["y"],
                                     to=helper.np_dtype_to_tensor_dtype(dtype))],
                   {"x": (np.float32, [x.size])}, {"y": (dtype, [x.size])})
    got = run_c(model, {"x": x}, sanitize=True)

    def cast(v: float) -> int:
        if math.isnan(v):
            return 0
        if math.isinf(v) or abs(v) >= 2.0 ** 63:
            return _wrap(2 ** 63 - 1 if v > 0 else -2 ** 63, dtype)
        return _wrap(math.trunc(v), dtype)

    np.testing.assert_array_equal(got["y"], np.array([cast(float(v)) for v in x], dtype))


def test_integer_reductions_wrap():
    """ReduceSum/ReduceProd over int32 that overflows: wraps, sanitizers on."""
    x = np.array([[2 ** 31 - 1, 1, 5], [-2 ** 31, -1, 3], [65536, 65536, 3]], np.int32)
    model = _model([helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=0),
                    helper.make_node("ReduceProd", ["x"], ["p"], axes=[1], keepdims=0)],
                   {"x": (np.int32, [3, 3])}, {"s": (np.int32, [3]), "p": (np.int32, [3])})
    model.graph.initializer.append(helper.make_tensor("axes", 7, [1], [1]))
    got = run_c(model, {"x": x}, sanitize=True)
    rows = x.astype(object).tolist()
    dt = np.dtype(np.int32)
    np.testing.assert_array_equal(got["s"], [_wrap(sum(r), dt) for r in rows])
    np.testing.assert_array_equal(got["p"], [_wrap(math.prod(r), dt) for r in rows])


@pytest.mark.parametrize("dtype", SIGNED + ["uint8"])
def test_interpreter_reference_follows_the_same_rules(dtype):
    """edgec/ops/intmath.py (the interpreter's and constant folding's integer Div, Mod, Pow)
    gives the same results as the rules above."""
    from edgec.ops.intmath import int_div, int_mod, int_pow

    dtype = np.dtype(dtype)
    a, b = _operands(dtype)
    pairs = list(zip(a.tolist(), b.tolist()))
    np.testing.assert_array_equal(int_div(a, b), [_wrap(_trunc_div(x, y), dtype) for x, y in pairs])
    for fmod in (False, True):
        np.testing.assert_array_equal(int_mod(a, b, fmod),
                                      [_wrap(_mod(x, y, fmod), dtype) for x, y in pairs])
    e = np.array([y % 70 - (5 if dtype.kind == "i" else 0) for y in b.tolist()], np.int64)
    np.testing.assert_array_equal(int_pow(a, e), [_wrap(_pow(x, int(y)), dtype)
                                                  for x, y in zip(a.tolist(), e.tolist())])
