"""Elementwise ops: generated C against onnxruntime, with broadcasting."""

import numpy as np
import pytest
from helpers import check_against_ort, make_model
from onnx import helper

UNARY = ["Relu", "Sigmoid", "Tanh", "Exp", "Abs", "Neg", "Erf", "Sqrt", "Log", "HardSwish",
         "Softplus", "Floor", "Ceil", "Reciprocal", "Sin", "Cos", "Softsign"]


@pytest.mark.parametrize("op", UNARY)
def test_unary_matches_onnxruntime(op):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    if op in ("Sqrt", "Log"):
        x = np.abs(x) + 0.1
    model = make_model([helper.make_node(op, ["x"], ["y"])], {"x": ("float32", x.shape)},
                       {"y": ("float32", x.shape)}, opset=17)
    check_against_ort(model, {"x": x})


@pytest.mark.parametrize("op,attrs", [
    ("LeakyRelu", {"alpha": 0.3}), ("Elu", {"alpha": 0.7}), ("HardSigmoid", {"alpha": 0.3}),
    ("Selu", {}), ("ThresholdedRelu", {"alpha": 0.4}),
])
def test_unary_with_attributes(op, attrs):
    x = np.linspace(-3, 3, 60, dtype=np.float32).reshape(3, 20)
    model = make_model([helper.make_node(op, ["x"], ["y"], **attrs)],
                       {"x": ("float32", x.shape)}, {"y": ("float32", x.shape)})
    check_against_ort(model, {"x": x})


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "PRelu"])
@pytest.mark.parametrize("shapes", [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)),
                                    ((2, 1, 4), (3, 1)), ((1, 3, 1, 5), (2, 1, 4, 1))])
def test_binary_broadcast(op, shapes):
    a_shape, b_shape = shapes
    if op == "PRelu" and len(b_shape) > len(a_shape):
        pytest.skip("PRelu slope must broadcast to X")
    if op == "PRelu" and np.broadcast_shapes(a_shape, b_shape) != a_shape:
        pytest.skip("PRelu output has X's shape")
    rng = np.random.default_rng(2)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    if op == "Pow":
        a = np.abs(a) + 0.5
    out = np.broadcast_shapes(a_shape, b_shape)
    model = make_model([helper.make_node(op, ["a", "b"], ["y"])],
                       {"a": ("float32", a_shape), "b": ("float32", b_shape)},
                       {"y": ("float32", out)})
    check_against_ort(model, {"a": a, "b": b})


def test_clip_with_constant_bounds_and_sanitizers():
    x = np.linspace(-8, 8, 64, dtype=np.float32).reshape(4, 16)
    model = make_model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
                       {"x": ("float32", x.shape)}, {"y": ("float32", x.shape)},
                       {"lo": np.array(-1.5, np.float32), "hi": np.array(6, np.float32)})
    check_against_ort(model, {"x": x}, sanitize=True)


def test_variadic_sum_mean():
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(3)]
    for op in ("Sum", "Mean", "Max"):
        model = make_model([helper.make_node(op, ["a", "b", "c"], ["y"])],
                           {k: ("float32", (3, 4)) for k in "abc"}, {"y": ("float32", (3, 4))})
        check_against_ort(model, dict(zip("abc", xs)))
