"""Pooling ops: generated C against onnxruntime (and onnx.reference where onnxruntime lacks a
case), covering every attribute variant in 1-D, 2-D and 3-D, global pools in 1-D to 3-D."""

import numpy as np
import pytest
from helpers import check_against_ort, compile_model_proto, make_model, ort_run, run_c
from onnx import helper
from onnx.reference import ReferenceEvaluator

from edgec.errors import UnsupportedError
from edgec.frontend.onnx import import_model
from edgec.interp import run_graph
from edgec.workbench.compare import compare

X2D = (2, 3, 9, 8)
X1D = (2, 3, 11)
X3D = (1, 2, 5, 4, 6)


def _pool_model(op, shape, dtype="float32", opset=19, **attrs):
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    return make_model([node], {"x": (dtype, shape)}, {"y": (dtype, None)}, opset=opset)


def _multi_pool_model(shape, variants, opset=19):
    """One model computing several pools of the same input: {output name: (op, attrs)}."""
    nodes = [helper.make_node(op, ["x"], [name], **attrs) for name, (op, attrs) in variants.items()]
    return make_model(nodes, {"x": ("float32", shape)},
                      {name: ("float32", None) for name in variants}, opset=opset)


def _input(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


POOL_CASES = [
    # (shape, attributes) shared by MaxPool and AveragePool
    (X2D, {"kernel_shape": [2, 2], "strides": [2, 2]}),
    (X2D, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    (X2D, {"kernel_shape": [3, 2], "strides": [2, 3], "pads": [1, 0, 2, 1]}),  # asymmetric
    (X2D, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
    (X2D, {"kernel_shape": [2, 3], "strides": [3, 2], "pads": [0, 1, 0, 1], "ceil_mode": 1}),
    (X2D, {"kernel_shape": [2, 3], "dilations": [2, 3], "pads": [1, 1, 1, 2]}),
    (X2D, {"kernel_shape": [2, 2], "strides": [2, 2], "dilations": [2, 1], "ceil_mode": 1}),
    (X2D, {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    (X2D, {"kernel_shape": [4, 3], "strides": [2, 3], "auto_pad": "SAME_LOWER"}),
    (X2D, {"kernel_shape": [3, 2], "strides": [2, 2], "auto_pad": "VALID"}),
    (X2D, {"kernel_shape": [3, 3], "auto_pad": "SAME_LOWER", "ceil_mode": 1}),
    (X1D, {"kernel_shape": [3], "strides": [2]}),
    (X1D, {"kernel_shape": [4], "strides": [3], "pads": [2, 1], "ceil_mode": 1}),
    (X1D, {"kernel_shape": [2], "dilations": [3], "pads": [1, 0]}),
    (X1D, {"kernel_shape": [3], "strides": [2], "auto_pad": "SAME_UPPER"}),
    (X3D, {"kernel_shape": [2, 3, 2], "strides": [2, 1, 2], "pads": [1, 0, 1, 0, 1, 1],
           "ceil_mode": 1}),
    (X3D, {"kernel_shape": [3, 2, 2], "dilations": [1, 2, 1], "pads": [1, 1, 0, 1, 0, 1]}),
    (X3D, {"kernel_shape": [2, 2, 3], "strides": [2, 2, 2], "auto_pad": "SAME_LOWER"}),
]


def _case_id(case):
    shape, attrs = case
    return f"{len(shape) - 2}d-" + "-".join(f"{k}{v}" for k, v in attrs.items())


@pytest.mark.parametrize("case", POOL_CASES, ids=map(_case_id, POOL_CASES))
def test_max_and_average_pool_match_onnxruntime(case):
    """MaxPool and AveragePool (count_include_pad 0 and 1) of one geometry, one compile."""
    shape, attrs = case
    model = _multi_pool_model(shape, {
        "max": ("MaxPool", attrs),
        "avg": ("AveragePool", attrs),
        "avg_pad": ("AveragePool", dict(attrs, count_include_pad=1)),
    })
    check_against_ort(model, {"x": _input(shape)})


@pytest.mark.parametrize("shape,attrs", [
    (X2D, {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 1]}),
    (X1D, {"kernel_shape": [3], "strides": [2]}),
])
def test_lppool_matches_onnxruntime(shape, attrs):
    model = _multi_pool_model(shape, {f"p{p}": ("LpPool", dict(attrs, p=p)) for p in (1, 2, 3)})
    check_against_ort(model, {"x": _input(shape)})


@pytest.mark.parametrize("shape", [(2, 5, 7), (2, 5, 4, 6), (1, 3, 2, 3, 4)])
def test_global_pools_match_onnxruntime(shape):
    model = _multi_pool_model(shape, {
        "avg": ("GlobalAveragePool", {}), "max": ("GlobalMaxPool", {}),
        "lp2": ("GlobalLpPool", {"p": 2}), "lp3": ("GlobalLpPool", {"p": 3}),
    })
    check_against_ort(model, {"x": _input(shape)})


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_maxpool_integer_types_are_exact(dtype):
    info = np.iinfo(dtype)
    x = np.random.default_rng(4).integers(info.min, info.max + 1, X2D).astype(dtype)
    model = _pool_model("MaxPool", X2D, dtype=dtype, kernel_shape=[3, 3], strides=[2, 2],
                        pads=[1, 1, 1, 1])
    got = run_c(model, {"x": x})["y"]
    np.testing.assert_array_equal(got, ort_run(model, {"x": x})["y"])
    # ONNX types GlobalMaxPool as float only; edgec also runs it on quantised data.
    got = run_c(_pool_model("GlobalMaxPool", X2D, dtype=dtype), {"x": x})["y"]
    np.testing.assert_array_equal(got, x.max(axis=(2, 3), keepdims=True))


def _explicit_same_pads(shape, kernel, strides, dilations, mode):
    """pads of the ONNX spec for SAME_UPPER/LOWER: total = (out - 1) * s + d * (k - 1) + 1 - in."""
    begins, ends = [], []
    for size, k, s, d in zip(shape[2:], kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begins.append(small if mode == "SAME_UPPER" else big)
        ends.append(big if mode == "SAME_UPPER" else small)
    return begins + ends


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("mode", ["SAME_UPPER", "SAME_LOWER"])
def test_same_padding_with_dilations_follows_the_spec(op, mode):
    """onnxruntime sizes SAME padding with the undilated kernel; the spec (and edgec) use the
    dilated one. Compare with onnxruntime running the spec's explicit pads."""
    kernel, strides, dilations = [2, 3], [1, 2], [2, 2]
    x = _input(X2D, 5)
    got = run_c(_pool_model(op, X2D, kernel_shape=kernel, strides=strides, dilations=dilations,
                            auto_pad=mode), {"x": x})["y"]
    pads = _explicit_same_pads(X2D, kernel, strides, dilations, mode)
    ref = ort_run(_pool_model(op, X2D, kernel_shape=kernel, strides=strides,
                              dilations=dilations, pads=pads), {"x": x})["y"]
    assert got.shape == (2, 3, 9, 4)
    c = compare("y", got, ref)
    assert c.ok, c


def test_maxpool_same_with_dilations_matches_onnx_reference():
    x = _input(X2D, 6)
    model = _pool_model("MaxPool", X2D, kernel_shape=[2, 3], dilations=[2, 2],
                        auto_pad="SAME_UPPER")
    ref = ReferenceEvaluator(model).run(None, {"x": x})[0]
    np.testing.assert_array_equal(run_c(model, {"x": x})["y"], ref)


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_pools_under_sanitizers(cc):
    model = _multi_pool_model(X2D, {
        "max": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                "ceil_mode": 1}),
        "avg": ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 1, 1],
                                    "ceil_mode": 1, "count_include_pad": 1}),
        "avg_dil": ("AveragePool", {"kernel_shape": [2, 2], "dilations": [2, 2],
                                    "pads": [1, 1, 0, 0]}),
        "lp": ("LpPool", {"kernel_shape": [2, 2], "pads": [1, 1, 1, 1], "p": 2}),
        "gavg": ("GlobalAveragePool", {}),
        "gmax": ("GlobalMaxPool", {}),
    })
    check_against_ort(model, {"x": _input(X2D, 7)}, sanitize=True, cc=cc)


def test_storage_order_is_accepted_and_indices_output_is_refused():
    check_against_ort(_pool_model("MaxPool", X2D, kernel_shape=[2, 2], storage_order=1),
                      {"x": _input(X2D)})
    node = helper.make_node("MaxPool", ["x"], ["y", "idx"], kernel_shape=[2, 2], name="mp1")
    model = make_model([node], {"x": ("float32", X2D)},
                       {"y": ("float32", None), "idx": ("int64", None)})
    with pytest.raises(UnsupportedError, match="mp1.*idx"):
        import_model(model)


def test_3d_pooling_reference_matches_onnxruntime():
    model = _pool_model("AveragePool", X3D, kernel_shape=[2, 3, 2], strides=[2, 1, 2],
                        pads=[1, 0, 1, 0, 1, 1], ceil_mode=1, count_include_pad=1)
    x = _input(X3D)
    got = run_graph(import_model(model), {"x": x})["y"]
    assert compare("y", got, ort_run(model, {"x": x})["y"]).ok


def test_pools_after_conv_leave_no_transposes_inside():
    rng = np.random.default_rng(8)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["c"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["m"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["a"], ["y"]),
    ]
    model = make_model(nodes, {"x": ("float32", (1, 3, 8, 8))}, {"y": ("float32", None)},
                       {"w": w})
    check_against_ort(model, {"x": _input((1, 3, 8, 8))})
    ops = [n.op for n in compile_model_proto(model).graph.nodes]
    # The stem conv reads the NCHW input itself; the output transpose is a reshape.
    assert ops.count("Transpose") == 0, ops
