"""Reductions and ArgMax/ArgMin: generated C against onnxruntime (and onnx.reference where
onnxruntime has no kernel), canonical IR form, layout facets.

Variants of one op share a model (one output per variant) so that each test compiles once.
"""

import numpy as np
import pytest
from helpers import check_against_ort, compile_model_proto, make_model, run_c
from onnx import helper
from onnx.reference import ReferenceEvaluator

from edgec.errors import ShapeError, UnsupportedError
from edgec.frontend.onnx import import_model
from edgec.ops import get_op
from edgec.codegen.c.kernels.reduce import reduction_plan
from edgec.workbench.compare import compare

REDUCE_OPS = ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd",
              "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp"]
SHAPE = (2, 3, 4, 5)
# (axes or None, keepdims, noop_with_empty_axes)
VARIANTS = [([1], 1, 0), ([2, 3], 0, 0), ([0, 2], 1, 0), ([-1], 0, 0), ([3, 0], 1, 0),
            (None, 1, 0), (None, 0, 0), (None, 1, 1), ([1, 2, 3], 1, 0)]


def _input_for(op: str, rng, shape=SHAPE) -> np.ndarray:
    x = rng.standard_normal(shape).astype(np.float32)
    if op == "ReduceLogSum":
        return np.abs(x) + 0.2
    if op == "ReduceProd":
        return (np.sign(x) * (0.6 + 0.8 * np.abs(np.tanh(x)))).astype(np.float32)
    return x


def _out_shape(shape, axes, keepdims, noop):
    if axes is None:
        axes = [] if noop else list(range(len(shape)))
    axes = {a % len(shape) for a in axes}
    if keepdims:
        return tuple(1 if d in axes else n for d, n in enumerate(shape))
    return tuple(n for d, n in enumerate(shape) if d not in axes)


def reduce_model(op: str, opset: int, variants, dtype="float32", shape=SHAPE):
    """One model computing every variant of `op` from input x."""
    axes_as_input = opset >= 18 or (op == "ReduceSum" and opset >= 13)
    nodes, outs, inits = [], {}, {}
    for i, (axes, keepdims, noop) in enumerate(variants):
        attrs = {"keepdims": keepdims}
        if noop:
            attrs["noop_with_empty_axes"] = 1
        ins = ["x"]
        if axes is not None and axes_as_input:
            inits[f"axes{i}"] = np.array(axes, np.int64)
            ins.append(f"axes{i}")
        elif axes is not None:
            attrs["axes"] = axes
        nodes.append(helper.make_node(op, ins, [f"y{i}"], **attrs))
        outs[f"y{i}"] = (dtype, _out_shape(shape, axes, keepdims, noop))
    return make_model(nodes, {"x": (dtype, shape)}, outs, inits, opset=opset)


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_variants_match_onnxruntime(op):
    rng = np.random.default_rng(REDUCE_OPS.index(op))
    x = _input_for(op, rng)
    variants = [v for v in VARIANTS if not (v[2] and op == "ReduceLogSum")]  # log(x) noop: fine
    check_against_ort(reduce_model(op, 18, variants), {"x": x})


def test_reduce_axes_attribute_form_before_opset_18():
    """Opset 13: axes is an attribute (an input for ReduceSum); several ops in one model."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal(SHAPE).astype(np.float32)
    nodes, outs, inits = [], {}, {}
    for i, op in enumerate(REDUCE_OPS):
        if op in ("ReduceLogSum", "ReduceProd"):
            continue
        axes, keepdims = ([1, 3], 0) if i % 2 else ([-2], 1)
        if op == "ReduceSum":
            inits["axes"] = np.array(axes, np.int64)
            nodes.append(helper.make_node(op, ["x", "axes"], [f"y{i}"], keepdims=keepdims))
        else:
            nodes.append(helper.make_node(op, ["x"], [f"y{i}"], axes=axes, keepdims=keepdims))
        outs[f"y{i}"] = ("float32", _out_shape(SHAPE, axes, keepdims, 0))
    model = make_model(nodes, {"x": ("float32", SHAPE)}, outs, inits, opset=13)
    check_against_ort(model, {"x": x})


def test_reduce_sanitizers_and_clang():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 6)).astype(np.float32)
    variants = [([1], 1, 0), ([0, 2], 0, 0), (None, 0, 0), (None, 1, 1)]
    for op, cc, sanitize in (("ReduceMean", None, True), ("ReduceLogSumExp", "clang", True),
                             ("ReduceL2", "clang", False)):
        check_against_ort(reduce_model(op, 18, variants, shape=x.shape), {"x": x},
                          sanitize=sanitize, cc=cc)


@pytest.mark.parametrize("op,dtype", [("ReduceMax", "int8"), ("ReduceMin", "uint8"),
                                      ("ReduceSum", "int64"), ("ReduceProd", "int32"),
                                      ("ReduceMax", "int32")])
def test_integer_reductions(op, dtype):
    rng = np.random.default_rng(5)
    lo = 0 if dtype == "uint8" else -4
    x = rng.integers(lo, 5, SHAPE).astype(dtype)
    variants = [([1], 1, 0), ([0, 3], 0, 0), (None, 0, 0)]
    check_against_ort(reduce_model(op, 18, variants, dtype=dtype), {"x": x})


def test_empty_reduced_dimension_gives_the_empty_set_value():
    """A reduced dim of size 0: Sum 0, Prod 1, Max -inf, LogSumExp -inf (onnx.reference)."""
    shape = (2, 0, 3)
    nodes, outs = [], {}
    for i, op in enumerate(["ReduceSum", "ReduceProd", "ReduceMax", "ReduceLogSumExp",
                            "ReduceL2"]):
        nodes.append(helper.make_node(op, ["x", "axes"], [f"y{i}"], keepdims=1))
        outs[f"y{i}"] = ("float32", (2, 1, 3))
    model = make_model(nodes, {"x": ("float32", shape)}, outs,
                       {"axes": np.array([1], np.int64)}, opset=18)
    x = np.zeros(shape, np.float32)
    got = run_c(model, {"x": x})
    ref = dict(zip(outs, ReferenceEvaluator(model).run(None, {"x": x})))
    for name in outs:
        np.testing.assert_array_equal(got[name], ref[name])


def test_argmax_argmin_variants():
    rng = np.random.default_rng(11)
    x = rng.integers(-3, 4, SHAPE).astype(np.float32)  # many ties: exercises select_last_index
    nodes, outs = [], {}
    variants = [(0, 1, 0), (1, 0, 0), (-1, 1, 1), (2, 0, 1), (3, 0, 0)]
    for op in ("ArgMax", "ArgMin"):
        for i, (axis, keepdims, last) in enumerate(variants):
            name = f"{op}{i}"
            nodes.append(helper.make_node(op, ["x"], [name], axis=axis, keepdims=keepdims,
                                          select_last_index=last))
            outs[name] = ("int64", _out_shape(SHAPE, [axis], keepdims, 0))
    model = make_model(nodes, {"x": ("float32", SHAPE)}, outs, opset=13)
    check_against_ort(model, {"x": x}, sanitize=True)
    xi = x.astype(np.int8)
    model_i = make_model([helper.make_node("ArgMax", ["x"], ["y"], axis=1, keepdims=0)],
                         {"x": ("int8", SHAPE)}, {"y": ("int64", (2, 4, 5))}, opset=13)
    check_against_ort(model_i, {"x": xi}, cc="clang")


# ------------------------------------------------------------------------------ IR and layout
def test_canonical_form_and_errors():
    model = reduce_model("ReduceMean", 18, [([-1, 1], 0, 0), (None, 1, 1), (None, 1, 0)])
    g = import_model(model)
    attrs = [n.attrs for n in g.nodes]
    assert attrs == [{"axes": [1, 3], "keepdims": 0}, {"axes": [], "keepdims": 1},
                     {"axes": [0, 1, 2, 3], "keepdims": 1}]
    assert all(len(n.inputs) == 1 for n in g.nodes)

    computed = make_model(
        [helper.make_node("ReduceSum", ["x", "axes"], ["y"])],
        {"x": ("float32", (2, 3)), "axes": ("int64", (1,))}, {"y": ("float32", (1, 3))},
        opset=13)
    with pytest.raises(UnsupportedError, match="ReduceSum node .*'axes' must be a compile-time"):
        import_model(computed)
    bad = make_model([helper.make_node("ReduceMax", ["x"], ["y"], axes=[3])],
                     {"x": ("float32", (2, 3))}, {"y": ("float32", (2, 3))}, opset=13)
    with pytest.raises(ShapeError, match="axis 3 is out of range for rank 2 in ReduceMax"):
        import_model(bad)
    f64 = make_model([helper.make_node("ReduceL1", ["x"], ["y"], keepdims=0)],
                     {"x": ("float64", (2, 3))}, {"y": ("float64", ())}, opset=13)
    with pytest.raises(UnsupportedError, match="element type float64 is not supported"):
        import_model(f64)


def test_reduction_plan_merges_dims():
    # NHWC global mean: batch 1 dropped, H and W merged, channels the contiguous row.
    plan = reduction_plan((1, 7, 7, 32), [1, 2])
    assert plan["kept"] == [{"n": 32, "s": 1}]
    assert plan["red"] == [{"n": 49, "s": 32}]
    plan = reduction_plan((2, 3, 4, 5), [0, 2])
    assert [k["n"] for k in plan["kept"]] == [3, 5] and [r["n"] for r in plan["red"]] == [2, 4]
    assert reduction_plan((4,), [])["red"] == []


def test_layout_facets():
    reduce_op, arg_op = get_op("ReduceMean"), get_op("ArgMax")
    perm = [0, 3, 1, 2]  # NHWC -> NCHW

    class N:  # a stand-in node: the facets read only attrs
        def __init__(self, attrs):
            self.attrs = attrs

    assert reduce_op.sink_transpose(N({"axes": [2, 3], "keepdims": 1}), perm) == {
        "axes": [1, 2], "keepdims": 1}
    assert reduce_op.sink_transpose(N({"axes": [2, 3], "keepdims": 0}), perm) is None
    assert reduce_op.keep_reduced_dims(N({"axes": [1], "keepdims": 0})) == {
        "axes": [1], "keepdims": 1}
    assert arg_op.sink_transpose(N({"axis": 1, "keepdims": 1, "select_last_index": 0}),
                                 perm)["axis"] == 3


@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduction_after_conv_leaves_no_inner_transpose(keepdims):
    """Conv (channels-last) -> ReduceMean over H, W -> Gemm-free tail: no Transpose kernels
    except at the graph edges, and numbers match onnxruntime."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 3, 6, 7)).astype(np.float32)
    w = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    out = (1, 8, 1, 1) if keepdims else (1, 8)
    model = make_model(
        [helper.make_node("Conv", ["x", "w"], ["a"], pads=[1, 1, 1, 1]),
         helper.make_node("ReduceMean", ["a"], ["m"], axes=[2, 3], keepdims=keepdims),
         helper.make_node("Relu", ["m"], ["y"])],
        {"x": ("float32", x.shape)}, {"y": ("float32", out)}, {"w": w}, opset=13)
    g = compile_model_proto(model).graph
    ops = [n.op for n in g.nodes]
    assert "Transpose" not in ops[1:], ops
    assert ops.count("ReduceMean") == 1
    red = next(n for n in g.nodes if n.op == "ReduceMean")
    assert red.attrs["axes"] == [1, 2]
    check_against_ort(model, {"x": x})


def test_reference_matches_onnx_reference_for_noop():
    """noop_with_empty_axes: every op reduces the one-element set (x*x, |x|, log x...)."""
    rng = np.random.default_rng(4)
    x = np.abs(rng.standard_normal((2, 3)).astype(np.float32)) + 0.1
    for op in REDUCE_OPS:
        model = reduce_model(op, 18, [(None, 1, 1)], shape=x.shape)
        g = import_model(model)
        node = g.nodes[0]
        ours = get_op(op).reference(node, x)[0]
        ref = ReferenceEvaluator(model).run(None, {"x": x})[0]
        assert compare(op, ours, ref).ok, op
