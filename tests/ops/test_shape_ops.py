"""Data-movement ops (Concat, Split, Slice, Pad, Gather, GatherElements, Cast, Expand, Tile,
DepthToSpace, SpaceToDepth): generated C against onnxruntime (onnx.reference where
onnxruntime lacks a type), bit-exact since nothing here rounds."""

import numpy as np
import pytest
from helpers import compile_model_proto, make_model, ort_run, run_c
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from edgec.errors import UnsupportedError
from edgec.frontend.onnx import import_model

INT_MAX = np.iinfo(np.int64).max
DTYPES = ["float32", "int8", "uint8", "int32", "int64", "bool"]


def sample(shape, dtype="float32", seed=0):
    """Deterministic test data of any supported element type."""
    rng = np.random.default_rng(seed)
    if dtype == "float32":
        return rng.standard_normal(shape).astype(np.float32)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -100), min(info.max, 100), shape).astype(dtype)


def check(model, feeds, oracle="ort", **kw):
    """Run edgec's C and the oracle; every output must match exactly."""
    got = run_c(model, feeds, **kw)
    if oracle == "ort":
        ref = ort_run(model, feeds)
    else:
        sess = ReferenceEvaluator(model)
        ref = dict(zip(sess.output_names, sess.run(None, feeds)))
    assert set(ref) <= set(got)
    for name, r in ref.items():
        r = np.asarray(r)
        assert got[name].shape == r.shape, f"{name}: {got[name].shape} != {r.shape}"
        np.testing.assert_array_equal(got[name], r, err_msg=name)
    return got


def one_node(op, x, attrs=None, inits=None, extra_inputs=(), outputs=("y",), out_dtype=None,
             opset=17, **in_extra):
    """A model with one node reading `x` (plus constant `inits`, in `extra_inputs` order)."""
    node = helper.make_node(op, ["x", *extra_inputs], list(outputs), **(attrs or {}))
    inputs = {"x": (x.dtype, x.shape), **in_extra}
    out_dtype = out_dtype or x.dtype
    return make_model([node], inputs, {o: (out_dtype, None) for o in outputs}, inits,
                      opset=opset)


# ------------------------------------------------------------------------------ Concat
@pytest.mark.parametrize("axis,shapes", [
    (0, [(1, 3, 4), (2, 3, 4)]),
    (1, [(2, 1, 4), (2, 3, 4), (2, 2, 4)]),
    (-1, [(2, 3, 1), (2, 3, 5)]),
    (2, [(2, 3, 2), (2, 3, 0)]),                 # empty constant piece
])
def test_concat_axes_with_constant_input(axis, shapes):
    xs = {f"x{i}": sample(s, seed=i) for i, s in enumerate(shapes[:-1])}
    const = sample(shapes[-1], seed=9)
    names = [*xs, "c"]
    model = make_model([helper.make_node("Concat", names, ["y"], axis=axis)],
                       {k: ("float32", v.shape) for k, v in xs.items()},
                       {"y": ("float32", None)}, {"c": const})
    check(model, xs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_concat_split_slice_dtypes(dtype):
    """Concat -> Split -> Slice per element type, one model (sanitizers on)."""
    a, b = sample((2, 3, 4), dtype, 1), sample((2, 2, 4), dtype, 2)
    nodes = [
        helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
        helper.make_node("Split", ["c", "sizes"], ["s0", "s1"], axis=2),
        helper.make_node("Slice", ["s1", "st", "en", "ax", "sp"], ["y"]),
    ]
    inits = {"sizes": np.array([1, 3], np.int64), "st": np.array([-1, 0], np.int64),
             "en": np.array([-INT_MAX, 5], np.int64), "ax": np.array([1, 0], np.int64),
             "sp": np.array([-2, 1], np.int64)}
    model = make_model(nodes, {"a": (dtype, a.shape), "b": (dtype, b.shape)},
                       {"s0": (dtype, None), "y": (dtype, None)}, inits)
    check(model, {"a": a, "b": b}, sanitize=True)


# ------------------------------------------------------------------------------ Split
@pytest.mark.parametrize("opset,axis,split,n_out,dim", [
    (11, 1, [2, 3, 1], 3, 6),      # attribute
    (13, -1, [4, 1], 2, 5),        # input
    (13, 0, None, 3, 6),           # equal parts
    (18, 1, None, 3, 7),           # num_outputs, uneven last chunk (3, 3, 1)
    (18, 2, None, 2, 5),           # num_outputs, uneven (3, 2)
])
def test_split_variants(opset, axis, split, n_out, dim):
    shape = [2, 3, 4]
    shape[axis] = dim
    x = sample(tuple(shape))
    outs = [f"y{i}" for i in range(n_out)]
    attrs, extra, inits = {"axis": axis}, [], {}
    if split is not None and opset < 13:
        attrs["split"] = split
    elif split is not None:
        extra, inits = ["split"], {"split": np.array(split, np.int64)}
    if opset >= 18 and split is None:
        attrs["num_outputs"] = n_out
    model = one_node("Split", x, attrs, inits, extra, outputs=outs, opset=opset)
    check(model, {"x": x})


# ------------------------------------------------------------------------------ Slice
SLICES = [  # starts, ends, axes, steps
    ([1], [3], [1], [1]),
    ([0, 1], [INT_MAX, -1], [2, 3], None),
    ([-1], [-INT_MAX], [3], [-1]),               # full reversal of the last axis
    ([4, 3], [0, -INT_MAX], [-1, 1], [-2, -3]),  # negative steps, negative axis
    ([-100, 2], [100, 100], [0, 2], [1, 2]),     # clamping
    ([2], [1], [2], [1]),                        # empty result
    ([1, 0, 1], [2, 2, 3], [0, 1, 2], None),
]


def test_slice_variants_against_onnxruntime():
    """Every variant as one output of one model (one compile)."""
    x = sample((2, 3, 4, 5))
    nodes, inits, outs = [], {}, {}
    for i, (st, en, ax, sp) in enumerate(SLICES):
        names = [f"st{i}", f"en{i}", f"ax{i}"] + ([f"sp{i}"] if sp else [])
        for n, v in zip(names, (st, en, ax, sp)):
            inits[n] = np.array(v, np.int64)
        nodes.append(helper.make_node("Slice", ["x", *names], [f"y{i}"]))
        outs[f"y{i}"] = ("float32", None)
    model = make_model(nodes, {"x": ("float32", x.shape)}, outs, inits, opset=13)
    check(model, {"x": x}, sanitize=True)


def test_slice_generates_memcpy_for_contiguous_runs():
    x = sample((2, 8, 6))
    model = one_node("Slice", x, inits={"s": np.array([2], np.int64),
                                        "e": np.array([6], np.int64),
                                        "a": np.array([1], np.int64)}, extra_inputs=("s", "e", "a"))
    code = compile_model_proto(model).files["test.c"]
    body = code[code.index("layer_000_slice("):]
    assert "memcpy(y0 + i0 * 24u, x0 + (12u + i0 * 48u), 24u * sizeof(float));" in body
    check(model, {"x": x})


# ------------------------------------------------------------------------------ Pad
PADS = [  # mode, pads, constant value, axes (opset 18)
    ("constant", [0, 0, 1, 2, 0, 0, 2, 1], 0.5, None),
    ("constant", [1, 1, -1, 0, 0, -1, 2, 3], -2.0, None),   # cropping and padding
    ("constant", [1, 2, 1, 0], 3.0, [1, -1]),                # axes input
    ("reflect", [0, 0, 2, 1, 0, 0, 1, 3], None, None),
    ("reflect", [0, 1, 0, 2, 0, 1, 0, 1], None, None),
    ("edge", [1, 0, 2, 2, 0, 3, 1, 1], None, None),
    ("edge", [0, 0, -1, 3, 0, 0, 2, -2], None, None),        # crop then edge
    ("wrap", [0, 1, 2, 3, 0, 1, 2, 1], None, None),
    ("constant", [0, 0, 0, -1, 0, 0, 0, -2], None, None),    # crop only
    ("edge", [1, 0, 0, 0, 2, 0, 0, 0], None, None),          # outermost axis only: no loops
    ("reflect", [0] * 8, None, None),                        # nothing to do: one memcpy
]


@pytest.mark.parametrize("mode,pads,value,axes", PADS)
def test_pad_modes(mode, pads, value, axes):
    x = sample((2, 3, 4, 5))
    opset = 19 if mode == "wrap" else 18
    inits = {"pads": np.array(pads, np.int64)}
    extra = ["pads"]
    if value is not None:
        inits["cv"] = np.array(value, np.float32)
        extra.append("cv")
    if axes is not None:
        extra += [""] if value is None else []  # constant_value omitted
        inits["axes"] = np.array(axes, np.int64)
        extra.append("axes")
    model = one_node("Pad", x, {"mode": mode}, inits, extra, opset=opset)
    check(model, {"x": x})


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64", "bool"])
def test_pad_integer_types_with_value(dtype):
    x = sample((3, 4, 2), dtype)
    value = np.array(True if dtype == "bool" else 7, dtype)
    model = one_node("Pad", x, {"mode": "constant"},
                     {"pads": np.array([1, 0, 1, 0, 2, 0], np.int64), "cv": value},
                     ("pads", "cv"), opset=13)
    check(model, {"x": x})


def test_pad_opset11_reflect_with_clang_and_sanitizers():
    x = sample((1, 2, 5, 6))
    model = one_node("Pad", x, {"mode": "reflect"},
                     {"pads": np.array([0, 0, 2, 3, 0, 0, 1, 2], np.int64)}, ("pads",), opset=11)
    check(model, {"x": x}, sanitize=True, cc="clang")


# ------------------------------------------------------------------------------ Gather
@pytest.mark.parametrize("axis,indices", [
    (0, np.array(1)),                          # scalar: rank drops
    (1, np.array([2, -1, 0, 2])),              # negative, repeated
    (-1, np.array([[0, 4], [-5, 3]])),         # 2-D indices, last axis
    (2, np.array([], np.int64)),               # no indices: empty output
])
def test_gather_constant_indices(axis, indices):
    x = sample((2, 3, 5))
    model = one_node("Gather", x, {"axis": axis}, {"i": indices.astype(np.int64)}, ("i",))
    check(model, {"x": x})


@pytest.mark.parametrize("index_dtype", ["int64", "int32"])
def test_gather_runtime_indices_embedding(index_dtype):
    """Constant table, runtime indices (an embedding lookup), with sanitizers and clang."""
    table = sample((10, 4), seed=3)
    ids = np.array([[3, -1, 0], [9, 2, -10]], index_dtype)
    model = make_model([helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)],
                       {"ids": (index_dtype, ids.shape)}, {"y": ("float32", None)},
                       {"table": table})
    check(model, {"ids": ids}, sanitize=True, cc="clang")


@pytest.mark.parametrize("dtype", ["int8", "int64", "bool"])
def test_gather_activation_data_types(dtype):
    x = sample((4, 3), dtype)
    model = make_model([helper.make_node("Gather", ["x", "i"], ["y"], axis=1)],
                       {"x": (dtype, x.shape), "i": ("int64", (2,))}, {"y": (dtype, None)})
    check(model, {"x": x, "i": np.array([2, -3], np.int64)})


@pytest.mark.parametrize("const_indices", [True, False])
def test_gather_elements(const_indices):
    x = sample((3, 4, 2))
    idx = np.array([[[0, 3], [-1, 2]], [[1, 1], [0, -4]], [[2, 0], [3, 3]]], np.int64)
    node = helper.make_node("GatherElements", ["x", "i"], ["y"], axis=1)
    if const_indices:
        model = make_model([node], {"x": ("float32", x.shape)}, {"y": ("float32", None)},
                           {"i": idx})
        feeds = {"x": x}
    else:
        model = make_model([node], {"x": ("float32", x.shape), "i": ("int64", idx.shape)},
                           {"y": ("float32", None)})
        feeds = {"x": x, "i": idx}
    check(model, feeds, sanitize=not const_indices)


# ------------------------------------------------------------------------------ Cast
CASTS = [
    ("float32", "int8"), ("float32", "uint8"), ("float32", "int32"), ("float32", "int64"),
    ("float32", "bool"), ("int64", "float32"), ("bool", "float32"), ("int64", "int8"),
    ("int32", "bool"), ("uint8", "int32"), ("int8", "uint8"),
]


def test_cast_pairs():
    """All pairs as outputs of one model: truncation toward zero, nonzero -> True, wrapping."""
    values = {
        "float32": np.array([-100.9, -3.7, -0.5, 0.0, 0.4, 2.5, 99.99, 7.0], np.float32),
        "int64": np.array([-300, -129, -1, 0, 1, 127, 255, 70000], np.int64),
        "int32": np.array([-5, 0, 3, 0, 1, 0, -1, 2], np.int32),
        "uint8": np.array([0, 1, 127, 128, 200, 255, 3, 9], np.uint8),
        "int8": np.array([-128, -1, 0, 1, 127, -50, 50, 3], np.int8),
        "bool": np.array([True, False, True, True, False, False, True, False]),
    }
    sources = sorted({s for s, _ in CASTS})
    nodes, outs = [], {}
    for i, (src, dst) in enumerate(CASTS):
        to = helper.np_dtype_to_tensor_dtype(np.dtype(dst))
        nodes.append(helper.make_node("Cast", [src], [f"y{i}"], to=to))
        outs[f"y{i}"] = (dst, None)
    model = make_model(nodes, {s: (s, (8,)) for s in sources}, outs)
    check(model, {s: values[s] for s in sources}, sanitize=True)


def test_cast_of_constant_folds_at_import_even_to_float16():
    c = np.arange(6, dtype=np.float32).reshape(2, 3)
    nodes = [helper.make_node("Cast", ["c"], ["h"], to=TensorProto.FLOAT16),
             helper.make_node("Cast", ["h"], ["ci"], to=TensorProto.INT32),
             helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT32),
             helper.make_node("Add", ["xi", "ci"], ["y"])]
    model = make_model(nodes, {"x": ("float32", (2, 3))}, {"y": ("int32", None)}, {"c": c})
    g = import_model(model)
    assert [n.op for n in g.nodes] == ["Cast", "Add"]
    check(model, {"x": sample((2, 3)) * 10})


def test_cast_to_float16_of_activation_is_unsupported():
    x = sample((2, 3))
    model = one_node("Cast", x, {"to": TensorProto.FLOAT16}, out_dtype="float32")
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.FLOAT16
    with pytest.raises(UnsupportedError, match=r"Cast node '.*': cast to float16"):
        import_model(model)


# ------------------------------------------------------------------------------ Expand, Tile
@pytest.mark.parametrize("x_shape,shape", [
    ((3, 1), (2, 3, 4)),
    ((1, 4), (3, 1)),
    ((2, 1, 3), (2, 5, 3)),
])
def test_expand(x_shape, shape):
    x = sample(x_shape)
    model = one_node("Expand", x, inits={"s": np.array(shape, np.int64)}, extra_inputs=("s",))
    check(model, {"x": x})


@pytest.mark.parametrize("dtype,repeats", [("float32", [2, 1, 3]), ("int32", [1, 3, 1]),
                                           ("bool", [3, 2, 1]), ("uint8", [1, 1, 1])])
def test_tile(dtype, repeats):
    x = sample((2, 3, 2), dtype)
    model = one_node("Tile", x, inits={"r": np.array(repeats, np.int64)}, extra_inputs=("r",))
    check(model, {"x": x})


# ------------------------------------------------------------------------------ DepthToSpace
@pytest.mark.parametrize("op,attrs,shape", [
    ("DepthToSpace", {"blocksize": 2, "mode": "DCR"}, (2, 12, 3, 4)),
    ("DepthToSpace", {"blocksize": 2, "mode": "CRD"}, (1, 8, 3, 2)),
    ("DepthToSpace", {"blocksize": 3, "mode": "DCR"}, (1, 9, 2, 2)),
    ("SpaceToDepth", {"blocksize": 2}, (2, 3, 4, 6)),
    ("SpaceToDepth", {"blocksize": 2, "mode": "CRD"}, (1, 3, 4, 2)),  # opset 25
])
def test_depth_space(op, attrs, shape):
    x = sample(shape)
    new_mode = op == "SpaceToDepth" and "mode" in attrs
    model = one_node(op, x, attrs, opset=25 if new_mode else 17)
    check(model, {"x": x}, oracle="ref" if new_mode else "ort",
          sanitize=attrs.get("mode") == "CRD")


# ------------------------------------------------------------------------------ errors
def test_runtime_slice_bounds_are_refused_with_the_node_name():
    node = helper.make_node("Slice", ["x", "s", "e"], ["y"], name="cut")
    model = make_model([node], {"x": ("float32", (4, 4)), "s": ("int64", (1,)),
                                "e": ("int64", (1,))}, {"y": ("float32", None)})
    with pytest.raises(UnsupportedError, match="Slice node 'cut': input 'starts' must be"):
        import_model(model)
