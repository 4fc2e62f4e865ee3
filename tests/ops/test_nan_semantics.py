"""NaN and +-Inf through the generated C (docs/robustness.md, "NaN propagation").

Every op family is one model with many outputs, run on two samples: an all-NaN input,
compared with onnxruntime, and a mixed input (NaN, +-Inf and finite values side by side),
compared with an oracle that does not depend on onnxruntime's kernel choice: onnx.reference
for elementwise ops, reductions and convolutions, numpy windows for pooling (onnx.reference's
pools skip NaN as if it were padding; onnxruntime's MaxPool keeps a NaN in some window
positions and not in others), and a plain scan for ArgMax/ArgMin (whose NaN rule is
onnxruntime's: NaN never wins, a NaN first element is never beaten). NaN positions must match
exactly, Inf values exactly, finite values to 1e-5.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import compile_model_proto, make_model, ort_run
from numpy.lib.stride_tricks import sliding_window_view
from onnx import helper
from onnx.reference import ReferenceEvaluator

from edgec.workbench.verify import run_compiled

ARM64 = pytest.param("arm64-fp32", marks=pytest.mark.skipif(
    not (shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64")),
    reason="needs gcc-aarch64-linux-gnu and qemu-user"))
TARGETS = ["generic-fp32", "x86_64-fp32", ARM64]
NAN, INF = np.float32(np.nan), np.float32(np.inf)


def _run_edgec(model, samples: list[dict], target: str) -> list[dict]:
    result = compile_model_proto(model, target)
    with tempfile.TemporaryDirectory(prefix="edgec-nan-") as tmp:
        return run_compiled(result, samples, Path(tmp))


def _assert_same(got: np.ndarray, want: np.ndarray, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, what
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: NaN positions")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=what)


def _check(model, mixed: dict, all_nan: dict, target: str, oracle=None) -> None:
    """Mixed input against `oracle` (default onnx.reference), all-NaN against onnxruntime."""
    got_mixed, got_nan = _run_edgec(model, [mixed, all_nan], target)
    names = [o.name for o in model.graph.output]
    if oracle is None:
        ref = ReferenceEvaluator(model)
        with np.errstate(all="ignore"):
            want = dict(zip(names, ref.run(None, mixed)))
    else:
        want = oracle(mixed)
    ort = ort_run(model, all_nan)
    for name in names:
        _assert_same(got_mixed[name], want[name], f"{name} (mixed input, {target})")
        _assert_same(got_nan[name], ort[name], f"{name} (all-NaN input vs onnxruntime, {target})")


MIXED_ROW = [NAN, 1.0, -2.0, INF, -INF, 0.0, NAN, 3.0, -0.5, 7.0, -9.0, 0.25]

UNARY = [("Relu", {}), ("LeakyRelu", {"alpha": 0.1}), ("Elu", {}), ("Selu", {}), ("Celu", {}),
         ("HardSigmoid", {}), ("HardSwish", {}), ("ThresholdedRelu", {}), ("Shrink", {}),
         ("Sign", {}), ("Softplus", {}), ("Softsign", {}), ("Abs", {}), ("Neg", {}),
         ("Sigmoid", {}), ("Tanh", {}), ("Exp", {}), ("Floor", {}), ("Ceil", {}), ("Round", {}),
         ("Erf", {}), ("Reciprocal", {}), ("IsNaN", {}), ("IsInf", {})]


@pytest.mark.parametrize("target", TARGETS)
def test_unary_and_binary_ops_propagate_nan(target):
    x = np.array([MIXED_ROW, MIXED_ROW[::-1]], np.float32)
    s = np.array([[0.0, NAN, 1.0, 2.0, NAN, -INF, 5.0, NAN, 0.5, INF, -1.0, 0.0]] * 2, np.float32)
    nodes, outs = [], {}
    for op, attrs in UNARY:
        nodes.append(helper.make_node(op, ["x"], [op], **attrs))
        outs[op] = ("bool" if op.startswith("Is") else "float32", x.shape)
    extra = [("Clip", ["x", "lo", "hi"], "clip06"), ("Clip", ["x", "lo"], "clip_lo"),
             ("Clip", ["x", "", "hi"], "clip_hi"), ("Max", ["x", "s"], "max2"),
             ("Min", ["x", "s"], "min2"), ("Max", ["x", "s", "x"], "max3"),
             ("Min", ["s", "x", "s"], "min3"), ("PRelu", ["x", "slope"], "prelu"),
             ("Add", ["x", "s"], "add"), ("Div", ["x", "s"], "div")]
    for op, ins, out in extra:
        nodes.append(helper.make_node(op, ins, [out]))
        outs[out] = ("float32", x.shape)
    inits = {"lo": np.float32(0), "hi": np.float32(6),
             "slope": np.full(x.shape[1], 0.25, np.float32)}
    model = make_model(nodes, {"x": ("float32", x.shape), "s": ("float32", s.shape)}, outs,
                       inits, opset=17)
    nan = np.full_like(x, NAN)
    _check(model, {"x": x, "s": s}, {"x": nan, "s": nan}, target)


def _scan_arg(x: np.ndarray, axis: int, better, last: bool) -> np.ndarray:
    """The first (or last) index of the extreme value by a sequential scan (NaN never wins)."""
    moved = np.moveaxis(x, axis, -1)
    out = np.zeros(moved.shape[:-1], np.int64)
    for idx in np.ndindex(*moved.shape[:-1]):
        row = moved[idx]
        best, best_i = row[0], 0
        for i, v in enumerate(row[1:], 1):
            if better(v, best) or (last and v == best):
                best, best_i = v, i
        out[idx] = best_i
    return np.expand_dims(out, axis)


@pytest.mark.parametrize("target", TARGETS)
def test_reductions_propagate_nan(target):
    # Rows: NaN first, NaN in the middle, only +-Inf, all NaN; reduced along both axes (the
    # axis-0 reduction runs the row-vector kernel).
    x = np.array([MIXED_ROW, MIXED_ROW[2:] + MIXED_ROW[:2],
                  [1.0, INF, -INF, 2.0, -3.0, INF, 0.5, 4.0, -INF, 1.0, 2.0, 3.0],
                  [NAN] * 12], np.float32)
    ops = ["ReduceMax", "ReduceMin", "ReduceSum", "ReduceMean", "ReduceLogSumExp", "ReduceL2",
           "ReduceProd", "ReduceSumSquare", "ReduceL1"]
    nodes, outs = [], {}
    for op in ops:
        for axis in (0, 1):
            ins = ["x", "axes1" if axis else "axes0"] if op == "ReduceSum" else ["x"]
            attrs = {} if op == "ReduceSum" else {"axes": [axis]}
            nodes.append(helper.make_node(op, ins, [f"{op}_{axis}"], keepdims=1, **attrs))
            outs[f"{op}_{axis}"] = ("float32", (1, 12) if axis == 0 else (4, 1))
    model = make_model(nodes, {"x": ("float32", x.shape)}, outs,
                       {"axes0": np.array([0], np.int64), "axes1": np.array([1], np.int64)},
                       opset=17)
    _check(model, {"x": x}, {"x": np.full_like(x, NAN)}, target)


@pytest.mark.parametrize("target", TARGETS)
def test_argmax_argmin_follow_onnxruntime_on_nan(target):
    x = np.array([[1.0, 5.0, NAN, 7.0, 2.0], [1.0, NAN, NAN, 7.0, 9.0], [NAN, 1.0, 2.0, 3.0, 0.0],
                  [3.0, 3.0, NAN, 1.0, 1.0], [-INF, NAN, -INF, INF, INF]], np.float32)
    variants = [(op, last) for op in ("ArgMax", "ArgMin") for last in (0, 1)]
    nodes = [helper.make_node(op, ["x"], [f"{op}{last}"], axis=1, select_last_index=last)
             for op, last in variants]
    outs = {f"{op}{last}": ("int64", (5, 1)) for op, last in variants}
    model = make_model(nodes, {"x": ("float32", x.shape)}, outs, opset=13)

    def oracle(feeds):
        v = feeds["x"]
        return {f"{op}{last}": _scan_arg(v, 1, (lambda a, b: a > b) if op == "ArgMax" else
                                         (lambda a, b: a < b), bool(last))
                for op, last in variants}

    _check(model, {"x": x}, {"x": np.full_like(x, NAN)}, target, oracle)
    np.testing.assert_array_equal(ort_run(model, {"x": x})["ArgMax0"], oracle({"x": x})["ArgMax0"])


def _pool_oracle(x: np.ndarray, k: int) -> dict:
    win = sliding_window_view(x.astype(np.float64), (k, k), axis=(2, 3))
    with np.errstate(all="ignore"):
        return {"maxpool": win.max(axis=(-2, -1)).astype(np.float32),
                "avgpool": win.mean(axis=(-2, -1)).astype(np.float32),
                "lppool": np.sqrt((win ** 2).sum(axis=(-2, -1))).astype(np.float32),
                "gmax": x.max(axis=(2, 3), keepdims=True),
                "gavg": x.astype(np.float64).mean(axis=(2, 3), keepdims=True).astype(np.float32)}


@pytest.mark.parametrize("target", TARGETS)
def test_pools_propagate_nan(target):
    # Channel 0 all NaN, 1 one NaN and one +Inf, 2 a -Inf, 3 finite.
    x = np.linspace(-2, 2, 4 * 25, dtype=np.float32).reshape(1, 4, 5, 5)
    x[0, 0] = NAN
    x[0, 1, 2, 2], x[0, 1, 0, 4] = NAN, INF
    x[0, 2, 4, 0] = -INF
    nodes = [helper.make_node("MaxPool", ["x"], ["maxpool"], kernel_shape=[2, 2]),
             helper.make_node("AveragePool", ["x"], ["avgpool"], kernel_shape=[2, 2]),
             helper.make_node("LpPool", ["x"], ["lppool"], kernel_shape=[2, 2], p=2),
             helper.make_node("GlobalMaxPool", ["x"], ["gmax"]),
             helper.make_node("GlobalAveragePool", ["x"], ["gavg"])]
    outs = {n: ("float32", (1, 4, 4, 4)) for n in ("maxpool", "avgpool", "lppool")}
    outs.update({n: ("float32", (1, 4, 1, 1)) for n in ("gmax", "gavg")})
    model = make_model(nodes, {"x": ("float32", x.shape)}, outs, opset=17)
    _check(model, {"x": x}, {"x": np.full_like(x, NAN)}, target,
           lambda feeds: _pool_oracle(feeds["x"], 2))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("act", ["Relu", "Clip", "HardSigmoid", "HardSwish", "LeakyRelu"])
def test_fused_epilogues_propagate_nan(target, act):
    """Conv (20 output channels: full SIMD vectors and a tail) and Gemm with a fused
    activation: NaN from the input survives the activation; Inf is handled as in onnx."""
    rng = np.random.default_rng(3)
    w = (rng.uniform(0.2, 1.0, (20, 2, 3, 3)) * rng.choice([-1, 1], (20, 2, 3, 3)))
    wg = (rng.uniform(0.2, 1.0, (72, 20)) * rng.choice([-1, 1], (72, 20)))
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    x[0, 0, 0, 0], x[0, 1, 5, 5] = NAN, INF  # windows apart: no Inf - Inf
    act_in = ["lo", "hi"] if act == "Clip" else []
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node(act, ["c", *act_in], ["conv_act"]),
             helper.make_node("Flatten", ["x"], ["f"]),
             helper.make_node("Gemm", ["f", "wg"], ["g"]),
             helper.make_node(act, ["g", *act_in], ["gemm_act"])]
    inits = {"w": w.astype(np.float32), "b": np.linspace(-1, 1, 20, dtype=np.float32),
             "wg": wg.astype(np.float32), "lo": np.float32(0), "hi": np.float32(6)}
    model = make_model(nodes, {"x": ("float32", x.shape)},
                       {"conv_act": ("float32", (1, 20, 6, 6)), "gemm_act": ("float32", (1, 20))},
                       inits, opset=17)
    _check(model, {"x": x}, {"x": np.full_like(x, NAN)}, target)
