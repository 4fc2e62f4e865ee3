"""Resize and Upsample: generated C against onnxruntime for the modes it implements, and
against onnx.reference.ReferenceEvaluator for the shapes onnxruntime rejects (1-D linear,
linear over the channel axis). Variants share a model (one output each) to compile once.

Sizes are chosen so that no nearest-mode coordinate is an exact half in float32: there
onnxruntime's rounding depends on how its compiler evaluated the coordinate (see report).
"""

import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from helpers import check_against_ort, compile_model_proto, make_model, ort_run, run_c
from onnx import helper
from onnx.reference import ReferenceEvaluator

from edgec.compiler import CompileOptions, compile_graph
from edgec.errors import ShapeError, UnsupportedError
from edgec.frontend.onnx import import_model
from edgec.ir import Graph, Node, TensorType
from edgec.ops import get_op
from edgec.workbench.compare import compare
from edgec.workbench.verify import run_compiled

ort.set_default_logger_severity(3)  # tf_half_pixel_for_nn is deprecated: a warning per run
X_SHAPE = (1, 3, 6, 7)


def resize_node(out: str, scales=None, sizes=None, roi=None, **attrs):
    """A Resize node reading x and the named constant inputs (roi/scales/sizes)."""
    names = ["x", roi or "", scales or "", sizes or ""]
    while names[-1] == "":
        names.pop()
    return helper.make_node("Resize", names, [out], **attrs)


def batch_model(variants, opset=19, shape=X_SHAPE, dtype="float32"):
    """variants: list of (attrs, kind, values, out_shape) with kind 'scales' or 'sizes'."""
    nodes, outs, inits = [], {}, {}
    for i, (attrs, kind, values, out_shape, *roi) in enumerate(variants):
        attrs = dict(attrs)
        if roi:
            inits[f"roi{i}"] = np.array(roi[0], np.float32)
        if kind == "scales":
            inits[f"s{i}"] = np.array(values, np.float32)
            nodes.append(resize_node(f"y{i}", scales=f"s{i}", roi=roi and f"roi{i}", **attrs))
        else:
            inits[f"s{i}"] = np.array(values, np.int64)
            nodes.append(resize_node(f"y{i}", sizes=f"s{i}", roi=roi and f"roi{i}", **attrs))
        outs[f"y{i}"] = (dtype, out_shape)
    return make_model(nodes, {"x": (dtype, shape)}, outs, inits, opset=opset)


def _x(seed=0, shape=X_SHAPE):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _sizes_variant(attrs, hw):
    return (attrs, "sizes", [1, 3, *hw], (1, 3, *hw))


# ------------------------------------------------------------------------------ onnxruntime
@pytest.mark.parametrize("nearest_mode", ["round_prefer_floor", "round_prefer_ceil", "floor",
                                          "ceil"])
def test_nearest_modes_and_coordinate_transforms(nearest_mode):
    variants = []
    for ctm in ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                "tf_half_pixel_for_nn"]:
        for hw in ([12, 14], [3, 5], [9, 10], [4, 3]):
            variants.append(_sizes_variant(
                {"mode": "nearest", "nearest_mode": nearest_mode,
                 "coordinate_transformation_mode": ctm}, hw))
    check_against_ort(batch_model(variants, opset=13), {"x": _x(1)})


@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_interpolating_modes_and_coordinate_transforms(mode):
    variants = []
    for ctm in ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                "half_pixel_symmetric"]:
        attrs = {"mode": mode, "coordinate_transformation_mode": ctm}
        variants.append(_sizes_variant(attrs, [12, 14]))
        variants.append(_sizes_variant(attrs, [3, 5]))
        variants.append((attrs, "scales", [1, 1, 1.7, 0.6], (1, 3, 10, 4)))
        variants.append(_sizes_variant(attrs, [1, 1]))
    if mode == "cubic":
        for a, exclude in ((-0.5, 1), (-0.75, 1), (-0.5, 0)):
            variants.append(_sizes_variant({"mode": "cubic", "cubic_coeff_a": a,
                                            "exclude_outside": exclude}, [9, 4]))
    check_against_ort(batch_model(variants), {"x": _x(2)})


def test_crop_and_resize_with_extrapolation():
    variants = []
    for mode in ("nearest", "linear", "cubic"):
        for roi in ([0, 0, 0.4, 0.6, 1, 1, 0.6, 0.8], [0, 0, -0.2, 0.1, 1, 1, 1.3, 0.7]):
            for value in (0.0, 10.0):
                attrs = {"mode": mode, "coordinate_transformation_mode": "tf_crop_and_resize",
                         "extrapolation_value": value}
                variants.append((attrs, "sizes", [1, 3, 5, 4], (1, 3, 5, 4), roi))
    check_against_ort(batch_model(variants), {"x": _x(3)})


def test_antialias_downscaling():
    x = _x(4, (1, 2, 12, 13))
    variants = []
    for mode in ("linear", "cubic"):
        for ctm in ("half_pixel", "align_corners", "asymmetric"):
            for exclude in (0, 1):
                attrs = {"mode": mode, "antialias": 1, "coordinate_transformation_mode": ctm,
                         "exclude_outside": exclude}
                variants.append((attrs, "sizes", [1, 2, 5, 6], (1, 2, 5, 6)))
                variants.append((attrs, "scales", [1, 1, 0.3, 1.0], (1, 2, 3, 13)))
    check_against_ort(batch_model(variants, shape=x.shape), {"x": x})


def test_axes_and_keep_aspect_ratio_policy():
    x = _x(5, (1, 3, 6, 8))
    cases = [([2, 3], "sizes", [9, 10], "stretch", (1, 3, 9, 10)),
             ([3, 2], "sizes", [10, 9], "stretch", (1, 3, 9, 10)),
             ([2, 3], "sizes", [9, 10], "not_larger", (1, 3, 8, 10)),
             ([2, 3], "sizes", [9, 10], "not_smaller", (1, 3, 9, 12)),
             ([-1], "sizes", [12], "stretch", (1, 3, 6, 12)),
             ([3, 2], "scales", [0.5, 1.5], "stretch", (1, 3, 9, 4))]
    nodes, outs, inits = [], {}, {}
    for i, (axes, kind, values, policy, out) in enumerate(cases):
        for mode in ("nearest", "linear"):
            name = f"y{i}{mode[0]}"
            attrs = {"axes": axes, "mode": mode}
            if kind == "sizes":
                inits[name + "s"] = np.array(values, np.int64)
                attrs["keep_aspect_ratio_policy"] = policy
                nodes.append(resize_node(name, sizes=name + "s", **attrs))
            else:
                inits[name + "s"] = np.array(values, np.float32)
                nodes.append(resize_node(name, scales=name + "s", **attrs))
            outs[name] = ("float32", out)
    model = make_model(nodes, {"x": ("float32", x.shape)}, outs, inits, opset=19)
    check_against_ort(model, {"x": x})


def test_other_ranks_and_integer_types():
    """1-D, 2-D, 3-D and 5-D tensors, batch/channel axes, int8/uint8/int32: one model."""
    rng = np.random.default_rng(6)
    cases = [((4, 5), [2, 0.6], "linear", "float32"), ((4, 5), [2, 0.6], "cubic", "float32"),
             ((1, 2, 7), [1, 1, 2.0], "linear", "float32"),
             ((1, 2, 3, 4, 5), [1, 1, 2, 1.5, 0.6], "linear", "float32"),
             ((1, 2, 3, 4, 5), [1, 1, 2, 1.5, 0.6], "nearest", "float32"),
             ((2, 3, 4, 5), [2, 1.5, 1, 1], "nearest", "float32"),
             ((7,), [0.5], "nearest", "float32"), ((1, 2, 3, 4), [1, 1, 2, 1.5], "nearest", "int8"),
             ((1, 2, 3, 4), [1, 1, 2, 1.5], "nearest", "uint8"),
             ((1, 2, 3, 4), [1, 1, 2, 1.5], "nearest", "int32")]
    nodes, ins, outs, inits, feeds = [], {}, {}, {}, {}
    for i, (shape, scales, mode, dtype) in enumerate(cases):
        if dtype == "float32":
            feeds[f"x{i}"] = rng.standard_normal(shape).astype(np.float32)
        else:
            feeds[f"x{i}"] = rng.integers(0 if dtype == "uint8" else -60, 60, shape).astype(dtype)
        ins[f"x{i}"] = (dtype, shape)
        inits[f"s{i}"] = np.array(scales, np.float32)
        nodes.append(helper.make_node("Resize", [f"x{i}", "", f"s{i}"], [f"y{i}"], mode=mode))
        outs[f"y{i}"] = (dtype, [int(np.float32(s) * d) for s, d in zip(scales, shape)])
    check_against_ort(make_model(nodes, ins, outs, inits, opset=13), feeds)


def test_sanitizers_and_clang():
    variants = [_sizes_variant({"mode": "linear"}, [11, 5]),
                _sizes_variant({"mode": "cubic", "exclude_outside": 1}, [4, 13]),
                _sizes_variant({"mode": "nearest"}, [13, 3]),
                ({"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize",
                  "extrapolation_value": -1.0}, "sizes", [1, 3, 5, 4], (1, 3, 5, 4),
                 [0, 0, -0.2, 0.1, 1, 1, 1.3, 0.7])]
    model = batch_model(variants)
    check_against_ort(model, {"x": _x(7)}, sanitize=True)
    check_against_ort(model, {"x": _x(7)}, cc="clang")


# ------------------------------------------------------------------------------ onnx.reference
def test_shapes_onnxruntime_rejects_match_onnx_reference():
    """Linear over a 1-D tensor and over the batch/channel axes of a 4-D tensor."""
    rng = np.random.default_rng(8)
    cases = [((7,), [1.6]), ((2, 3, 4, 5), [1, 2, 1.5, 1]), ((1, 4, 5, 6), [1.5, 0.5, 1, 2])]
    nodes, ins, outs, inits, feeds = [], {}, {}, {}, {}
    for i, (shape, scales) in enumerate(cases):
        feeds[f"x{i}"] = rng.standard_normal(shape).astype(np.float32)
        ins[f"x{i}"] = ("float32", shape)
        inits[f"s{i}"] = np.array(scales, np.float32)
        nodes.append(helper.make_node("Resize", [f"x{i}", "", f"s{i}"], [f"y{i}"],
                                      mode="linear"))
        outs[f"y{i}"] = ("float32", [int(np.float32(s) * d) for s, d in zip(scales, shape)])
    model = make_model(nodes, ins, outs, inits, opset=19)
    got = run_c(model, feeds)
    refs = ReferenceEvaluator(model).run(None, feeds)
    for name, ref in zip(outs, refs):
        result = compare(name, got[name], ref)
        assert result.ok, f"{name}: {result.max_rel_err}"


# ------------------------------------------------------------------------------ Upsample
@pytest.mark.parametrize("opset", [7, 9])
def test_upsample_models_match_onnxruntime(opset):
    """Old-opset models are converted to Resize with asymmetric coordinates (Upsample's)."""
    x = _x(9, (1, 2, 3, 4))
    nodes, outs, inits = [], {}, {}
    for i, (mode, scales) in enumerate([("nearest", [1.0, 1.0, 2.0, 3.0]),
                                        ("linear", [1.0, 1.0, 1.5, 2.5])]):
        if opset == 7:
            nodes.append(helper.make_node("Upsample", ["x"], [f"y{i}"], mode=mode,
                                          scales=scales))
        else:
            inits[f"s{i}"] = np.array(scales, np.float32)
            nodes.append(helper.make_node("Upsample", ["x", f"s{i}"], [f"y{i}"], mode=mode))
        outs[f"y{i}"] = ("float32", [int(s * d) for s, d in zip(scales, x.shape)])
    model = make_model(nodes, {"x": ("float32", x.shape)}, outs, inits, opset=opset)
    check_against_ort(model, {"x": x})


def test_upsample_registry_entry_imports_directly():
    """The Upsample entry (reached when an Upsample node survives into an opset-11+ import)
    canonicalises to Resize attributes; its C matches onnxruntime on the opset-9 model."""
    x = _x(10, (1, 2, 3, 4))
    for mode, scales in (("nearest", [1.0, 1.0, 2.0, 3.0]), ("linear", [1.0, 1.0, 1.5, 2.5])):
        out = tuple(int(s * d) for s, d in zip(scales, x.shape))
        onnx9 = make_model([helper.make_node("Upsample", ["x", "s"], ["y"], mode=mode)],
                           {"x": ("float32", x.shape)}, {"y": ("float32", out)},
                           {"s": np.array(scales, np.float32)}, opset=9)
        g = Graph("upsample")
        xv = g.add_input("x", TensorType(x.shape))
        node = Node("Upsample", "up", {"mode": mode})
        node.inputs = [xv, g.const(np.array(scales, np.float32), "s")]
        opdef = get_op("Upsample")
        opdef.import_onnx(node, 9)
        node.attrs = opdef.normalize_attrs(node.attrs)
        g.adopt_node(node, opdef.infer(node), ["y"])
        g.outputs.append(node.output)
        g.meta.update(input_names=["x"], output_names=["y"])
        assert node.attrs["coordinate_transformation_mode"] == "asymmetric"
        assert node.output.shape == out
        result = compile_graph(g, CompileOptions(), model_name="up")
        with tempfile.TemporaryDirectory() as tmp:
            got = run_compiled(result, [{"x": x}], Path(tmp))[0]["y"]
        assert compare("y", got, ort_run(onnx9, {"x": x})["y"]).ok, mode


# ------------------------------------------------------------------------------ IR, layout
def test_resize_between_convs_runs_channels_last():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 3, 6, 8)).astype(np.float32)
    w1 = (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32)
    w2 = (rng.standard_normal((5, 4, 1, 1)) * 0.3).astype(np.float32)
    model = make_model(
        [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
         resize_node("r", scales="s", mode="linear"),
         helper.make_node("Conv", ["r", "w2"], ["y"])],
        {"x": ("float32", x.shape)}, {"y": ("float32", (1, 5, 12, 12))},
        {"w1": w1, "w2": w2, "s": np.array([1, 1, 2, 1.5], np.float32)}, opset=13)
    model.graph.node[1].input[0] = "a"
    g = compile_model_proto(model).graph
    assert [n.op for n in g.nodes] == ["Conv", "Resize", "Conv", "Transpose"]  # stem reads NCHW
    resize = g.nodes[1]
    assert resize.attrs["layout"] == "NHWC" and resize.output.shape == (1, 12, 12, 4)
    check_against_ort(model, {"x": x})


def test_canonical_attributes_and_errors():
    model = batch_model([({"mode": "linear", "axes": [3, 2]}, "sizes", [10, 9], (1, 3, 9, 10)),
                         ({"mode": "nearest"}, "scales", [1, 1, 2, 0.5], (1, 3, 12, 3))])
    g = import_model(model)
    lin, near = g.nodes
    assert lin.attrs["sizes"] == [1, 3, 9, 10] and near.attrs["sizes"] == [1, 3, 12, 3]
    assert near.attrs["scales"] == [1.0, 1.0, 2.0, 0.5] and len(lin.inputs) == 1
    op = get_op("Resize")
    assert op.prune.value == "passthrough"

    computed = make_model([resize_node("y", sizes="sz")],
                          {"x": ("float32", X_SHAPE), "sz": ("int64", (4,))},
                          {"y": ("float32", (1, 3, 12, 14))}, opset=13)
    with pytest.raises(UnsupportedError, match="Resize node .*'sizes' must be a compile-time"):
        import_model(computed)
    int_linear = make_model([resize_node("y", scales="s", mode="linear")],
                            {"x": ("int8", X_SHAPE)}, {"y": ("int8", (1, 3, 12, 14))},
                            {"s": np.array([1, 1, 2, 2], np.float32)}, opset=13)
    with pytest.raises(UnsupportedError, match="mode 'linear' needs float32 data"):
        import_model(int_linear)
    both = make_model([resize_node("y", scales="s", sizes="z")], {"x": ("float32", X_SHAPE)},
                      {"y": ("float32", (1, 3, 12, 14))},
                      {"s": np.array([1, 1, 2, 2], np.float32),
                       "z": np.array([1, 3, 12, 14], np.int64)}, opset=13)
    with pytest.raises(ShapeError, match="either scales or sizes"):
        import_model(both)
