"""Normalisations: generated C against onnxruntime (BatchNormalization with the folding pass
disabled so that its own kernel runs), errors for what is unsupported, and the layout facet
of LayerNormalization."""

import numpy as np
import pytest
from helpers import check_against_ort, compile_model_proto, make_model
from onnx import helper

from edgec.errors import UnsupportedError
from edgec.frontend.onnx import import_model

KEEP_BN = {"disabled_passes": ("fold-batchnorm",)}


def _rand(shape, seed=0, lo=None, hi=None):
    rng = np.random.default_rng(seed)
    if lo is not None:
        return rng.uniform(lo, hi, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def _bn_model(shape, opset=15, name="bn", outputs=("y",), inputs=None, **attrs):
    c = shape[1]
    params = {"s": _rand(c, 1), "b": _rand(c, 2), "m": _rand(c, 3), "v": _rand(c, 4, 0.2, 2.0)}
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], list(outputs),
                            name=name, **attrs)
    graph_inputs = {"x": ("float32", shape)}
    for key in inputs or ():
        graph_inputs[key] = ("float32", (c,))
        params.pop(key)
    return make_model([node], graph_inputs, {o: ("float32", None) for o in outputs}, params,
                      opset=opset)


@pytest.mark.parametrize("opset", [9, 14, 15])
@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 7), (2, 3, 5, 4), (1, 2, 3, 4, 3)])
def test_batchnorm_kernel_matches_onnxruntime(shape, opset):
    model = _bn_model(shape, opset=opset, epsilon=1e-3)
    got = compile_model_proto(model, **KEEP_BN)
    assert "BatchNormalization" in [n.op for n in got.graph.nodes]
    check_against_ort(model, {"x": _rand(shape, 5)}, **KEEP_BN)


def test_batchnorm_under_sanitizers_with_clang():
    model = _bn_model((2, 3, 5, 4))
    check_against_ort(model, {"x": _rand((2, 3, 5, 4), 6)}, sanitize=True, cc="clang",
                      **KEEP_BN)


def test_batchnorm_training_mode_is_unsupported():
    with pytest.raises(UnsupportedError, match="bn7.*training_mode"):
        import_model(_bn_model((2, 3, 4, 4), name="bn7", training_mode=1))


def test_batchnorm_extra_outputs_are_unsupported():
    model = _bn_model((2, 3, 4, 4), opset=9, name="bn8", outputs=("y", "rm", "rv"))
    with pytest.raises(UnsupportedError, match="bn8.*optional output 'rm'"):
        import_model(model)


def test_batchnorm_needs_constant_statistics():
    model = _bn_model((2, 3, 4, 4), name="bn9", inputs=("m",))
    with pytest.raises(UnsupportedError, match="bn9.*input_mean.*compile-time constant"):
        import_model(model)


@pytest.mark.parametrize("shape", [(2, 3, 7), (2, 4, 5, 3), (1, 3, 2, 3, 4)])
def test_instancenorm_matches_onnxruntime(shape):
    c = shape[1]
    node = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-4)
    model = make_model([node], {"x": ("float32", shape)}, {"y": ("float32", shape)},
                       {"s": _rand(c, 1), "b": _rand(c, 2)})
    x = _rand(shape, 3) * 3 + 1  # a visible mean and variance per channel
    check_against_ort(model, {"x": x})


def test_instancenorm_with_computed_scale_under_sanitizers():
    shape = (2, 3, 4, 5)
    nodes = [helper.make_node("Relu", ["s_in"], ["s"]),
             helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"])]
    model = make_model(nodes, {"x": ("float32", shape), "s_in": ("float32", (3,))},
                       {"y": ("float32", shape)}, {"b": _rand(3, 2)})
    check_against_ort(model, {"x": _rand(shape, 3), "s_in": _rand(3, 4)}, sanitize=True)


LN_CASES = [
    # (input shape, axis, Scale shape, B shape or None)
    ((2, 3, 8), -1, (8,), (8,)),
    ((2, 3, 8), -2, (3, 8), (3, 8)),
    ((2, 3, 8), 1, (8,), None),  # Scale broadcasts over the normalised shape [3, 8]
    ((4, 6), 0, (4, 6), (1, 6)),
    ((2, 3, 4, 5), 2, (1, 5), (4, 1)),
]


@pytest.mark.parametrize("shape,axis,s_shape,b_shape", LN_CASES)
def test_layernorm_matches_onnxruntime(shape, axis, s_shape, b_shape):
    inits = {"s": _rand(s_shape, 1)}
    ins = ["x", "s"]
    if b_shape is not None:
        inits["b"] = _rand(b_shape, 2)
        ins.append("b")
    node = helper.make_node("LayerNormalization", ins, ["y"], axis=axis, epsilon=1e-3)
    model = make_model([node], {"x": ("float32", shape)}, {"y": ("float32", shape)}, inits)
    check_against_ort(model, {"x": _rand(shape, 3) * 2 + 0.5})


def test_layernorm_with_computed_scale_and_bias_under_sanitizers_with_clang():
    shape = (3, 2, 6)
    nodes = [helper.make_node("Neg", ["s_in"], ["s"]),
             helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=-1)]
    model = make_model(nodes, {"x": ("float32", shape), "s_in": ("float32", (6,)),
                               "b": ("float32", (6,))}, {"y": ("float32", shape)})
    feeds = {"x": _rand(shape, 1), "s_in": _rand(6, 2), "b": _rand(6, 3)}
    check_against_ort(model, feeds, sanitize=True, cc="clang")


@pytest.mark.parametrize("outputs", [("y", "mean"), ("y", "mean", "inv_std"),
                                     ("y", "", "inv_std")])
def test_layernorm_statistics_outputs_match_onnxruntime(outputs):
    shape = (2, 3, 4, 5)
    node = helper.make_node("LayerNormalization", ["x", "s", "b"], list(outputs), axis=-2)
    model = make_model([node], {"x": ("float32", shape)},
                       {o: ("float32", None) for o in outputs if o},
                       {"s": _rand((4, 5), 1), "b": _rand((5,), 2)})
    check_against_ort(model, {"x": _rand(shape, 3) * 2 + 1}, sanitize=True)


def test_layernorm_runs_channels_last_without_transposes():
    """Conv -> Transpose to NHWC -> LayerNorm(axis=-1) -> Transpose back (ConvNeXt style):
    after the layout pass the LayerNorm reads the channels-last Conv output directly."""
    w = _rand((6, 3, 3, 3), 1)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("LayerNormalization", ["t", "s", "b"], ["n"], axis=-1),
        helper.make_node("Transpose", ["n"], ["y"], perm=[0, 3, 1, 2]),
    ]
    model = make_model(nodes, {"x": ("float32", (1, 3, 5, 4))}, {"y": ("float32", None)},
                       {"w": w, "s": _rand(6, 2), "b": _rand(6, 3)})
    check_against_ort(model, {"x": _rand((1, 3, 5, 4), 4)})
    ops = [n.op for n in compile_model_proto(model).graph.nodes]
    assert ops == ["Conv", "LayerNormalization", "Transpose"], ops  # conv reads NCHW input


def test_layernorm_sink_transpose_facet():
    from edgec.ops import get_op

    node = import_model(make_model(
        [helper.make_node("LayerNormalization", ["x", "s"], ["y"], axis=-2)],
        {"x": ("float32", (2, 3, 4, 5))}, {"y": ("float32", None)}, {"s": _rand((4, 5))},
    )).nodes[0]
    ln = get_op("LayerNormalization")
    assert ln.sink_transpose(node, [1, 0, 2, 3]) == node.attrs
    assert ln.sink_transpose(node, [0, 2, 1, 3]) is None
    assert ln.sink_transpose(node, [0, 1, 3, 2]) is None
