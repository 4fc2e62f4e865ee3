"""arm64-fp32 NEON kernels (pointwise/general/depthwise Conv, Gemm) against onnxruntime.

Each model bundles many independent layers as separate outputs, so that one cross-compile
and one qemu run check a whole family of shapes: channel counts that are not multiples of
4/8/16, row counts that leave a partial tile, strides, dilations, asymmetric pads, groups,
residual adds and every fused activation (vector and scalar epilogues).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check_against_ort, compile_model_proto, have, make_model
from onnx import helper

RNG = np.random.default_rng(7)


def w(*shape):
    """Seeded weights at a realistic scale."""
    return (RNG.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)


def conv(name, x, cin, cout, k, group=1, act=None, **attrs):
    """A Conv node (+ bias and an optional activation node), its initializers and output."""
    inits = {f"{name}_w": w(cout, cin // group, *k), f"{name}_b": w(cout)}
    nodes = [helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"],
                              [name if act is None else f"{name}_c"], group=group, **attrs)]
    if act is not None:
        op, extra = act
        ins = [f"{name}_c"]
        if op == "PRelu":
            inits[f"{name}_slope"] = RNG.uniform(0.05, 0.3, (cout, 1, 1)).astype(np.float32)
            ins.append(f"{name}_slope")
        if op == "Clip":
            inits[f"{name}_lo"] = np.float32(0.0)
            inits[f"{name}_hi"] = np.float32(0.6)
            ins += [f"{name}_lo", f"{name}_hi"]
        nodes.append(helper.make_node(op, ins, [name], **extra))
    return nodes, inits


def conv_zoo():
    """One input, many conv layers: (nodes, initializers, output names).

    Every layer reads `pre` (a pointwise conv of the input), not the model input itself; `pre`
    reads the channels-first model input directly (the stem kernel, im2col rows of 13).
    """
    c = 13
    specs = [  # name, cin, cout, kernel, group, activation, attrs
        ("pw_relu", c, 21, (1, 1), 1, ("Relu", {}), {}),
        ("pw_plain", c, 8, (1, 1), 1, None, {}),
        ("k3_leaky", c, 19, (3, 3), 1, ("LeakyRelu", {"alpha": 0.1}), {"pads": [1, 1, 1, 1]}),
        ("k3_s2_hswish", c, 16, (3, 3), 1, ("HardSwish", {}),
         {"strides": [2, 2], "pads": [0, 1, 1, 0]}),
        ("k3_dil_sigmoid", c, 9, (3, 3), 1, ("Sigmoid", {}),
         {"dilations": [2, 2], "pads": [2, 2, 2, 2]}),
        ("k5x3_tanh", c, 6, (5, 3), 1, ("Tanh", {}), {"pads": [2, 0, 1, 1]}),
        ("dw_clip", c, c, (3, 3), c, ("Clip", {}), {"pads": [1, 1, 1, 1]}),
        ("dw_s2_prelu", c, c, (3, 3), c, ("PRelu", {}), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ]
    nodes, inits = conv("pre", "x", c, c, (1, 1), kernel_shape=[1, 1])
    outs = {}
    for name, cin, cout, k, group, act, attrs in specs:
        n, i = conv(name, "pre", cin, cout, k, group, act, kernel_shape=list(k), **attrs)
        nodes += n
        inits.update(i)
        outs[name] = None
    # wider maps behind a pointwise expansion: 37 channels (16 + 16 + 4 + 1), groups of 12
    n, i = conv("expand", "pre", c, 37, (1, 1), kernel_shape=[1, 1])
    nodes += n
    inits.update(i)
    for name, cin, cout, k, group, act, attrs in [
        ("dw37_hsig", 37, 37, (5, 5), 37, ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
         {"strides": [2, 1], "pads": [2, 2, 2, 2]}),
        ("dw37_relu", 37, 37, (3, 3), 37, ("Relu", {}), {"pads": [1, 1, 1, 1]}),
        ("pw37_prelu", 37, 11, (1, 1), 1, ("PRelu", {}), {}),
        ("g_prelu", 36, 18, (3, 3), 3, ("PRelu", {}), {"pads": [1, 1, 1, 1]}),
    ]:
        src = "expand"
        if name == "g_prelu":  # a grouped conv needs C divisible by its groups
            nodes.append(helper.make_node("Slice", ["expand", "s0", "s1", "s2"], ["expand36"]))
            inits.update({"s0": np.array([0], np.int64), "s1": np.array([36], np.int64),
                          "s2": np.array([1], np.int64)})
            src = "expand36"
        n, i = conv(name, src, cin, cout, k, group, act, kernel_shape=list(k), **attrs)
        nodes += n
        inits.update(i)
        outs[name] = None
    # 3x3 depthwise over a multiple of 4 channels (20): the column-reuse kernel, stride 1 and
    # 2 along the width (odd widths: the unrolled loops' remainders), padding on every side
    n, i = conv("expand20", "pre", c, 20, (1, 1), kernel_shape=[1, 1])
    nodes += n
    inits.update(i)
    for name, act, attrs in [
        ("dw3_clip", ("Clip", {}), {"pads": [1, 1, 1, 1]}),
        ("dw3_s2_prelu", ("PRelu", {}), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
        ("dw3_s12", None, {"strides": [1, 2], "pads": [0, 1, 1, 0]}),
        ("dw3_nopad_relu", ("Relu", {}), {}),
    ]:
        n, i = conv(name, "expand20", 20, 20, (3, 3), 20, act, kernel_shape=[3, 3], **attrs)
        nodes += n
        inits.update(i)
        outs[name] = None
    # residual adds: pointwise and depthwise with an activation after the add
    for name, group, act in [("pw_res", 1, "Relu"), ("dw_res", c, "HardSwish")]:
        k = [1, 1] if group == 1 else [3, 3]
        pads = [0, 0, 0, 0] if group == 1 else [1, 1, 1, 1]
        n, i = conv(f"{name}_conv", "pre", c, c, tuple(k), group, kernel_shape=k, pads=pads)
        nodes += n + [helper.make_node("Add", [f"{name}_conv", "pre"], [f"{name}_sum"]),
                      helper.make_node(act, [f"{name}_sum"], [name])]
        inits.update(i)
        outs[name] = None
    return nodes, inits, outs


def test_conv_family_matches_onnxruntime():
    nodes, inits, outs = conv_zoo()
    x_shape = (1, 13, 9, 11)
    model = make_model(nodes, {"x": (np.float32, x_shape)},
                       {name: (np.float32, None) for name in outs}, inits)
    feeds = {"x": RNG.standard_normal(x_shape).astype(np.float32)}
    res = compile_model_proto(model, "arm64-fp32")
    text = res.files["test.c"]
    assert "edgec_f32_tile(" in text and "vfmaq_f32(a0" in text  # GEMM tiles and depthwise
    assert text.count("static const float zero_row[20]") == 4  # the 3x3 depthwise kernel
    assert "#include \"edgec_neon_f32.h\"" in text
    check_against_ort(model, feeds, "arm64-fp32")


@pytest.mark.parametrize("act", [("Clip", {}), ("Sigmoid", {})])
def test_stem_reading_channels_first_input_matches_onnxruntime(act):
    """A 3x3 stride-2 stem on the NCHW model input: im2col rows of 27 (padded to 28), 8-pixel
    tiles with a tail of 1, padding on every side; Sigmoid takes the scalar epilogue."""
    nodes, inits = conv("stem", "x", 3, 20, (3, 3), 1, act, kernel_shape=[3, 3],
                        strides=[2, 2], pads=[1, 1, 1, 1])
    x_shape = (1, 3, 17, 33)
    model = make_model(nodes, {"x": (np.float32, x_shape)}, {"stem": (np.float32, None)}, inits)
    text = compile_model_proto(model, "arm64-fp32").files["test.c"]
    assert "float col[8][28];" in text and "edgec_f32_tile(" in text
    check_against_ort(model, {"x": RNG.standard_normal(x_shape).astype(np.float32)},
                      "arm64-fp32")


def test_gemm_with_fused_global_pool_matches_onnxruntime():
    """GlobalAveragePool -> Flatten -> Gemm (fused by fuse-pool-gemm): the NEON GEMM over the
    pooled rows (batch 2, K = 22: a channel tail of 2)."""
    nodes, inits = conv("feat", "x", 5, 22, (1, 1), 1, ("Relu", {}), kernel_shape=[1, 1])
    nodes += [helper.make_node("GlobalAveragePool", ["feat"], ["gap"]),
              helper.make_node("Flatten", ["gap"], ["flat"]),
              helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["fc"], transB=1)]
    inits.update({"fc_w": w(11, 22), "fc_b": w(11)})
    x_shape = (2, 5, 6, 7)
    model = make_model(nodes, {"x": (np.float32, x_shape)}, {"fc": (np.float32, None)}, inits)
    assert "float pooled[44];" in compile_model_proto(model, "arm64-fp32").files["test.c"]
    check_against_ort(model, {"x": RNG.standard_normal(x_shape).astype(np.float32)},
                      "arm64-fp32")


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_gemm_matches_onnxruntime(cc):
    if cc == "clang" and not have("clang"):
        pytest.skip("clang is not installed")
    k, n = 37, 29
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["g1c"]),
        helper.make_node("Relu", ["g1c"], ["g1"]),
        helper.make_node("Gemm", ["x", "w2"], ["g2"], transB=1, alpha=0.5),
        helper.make_node("Gemm", ["x", "w3", "b3"], ["g3"], beta=2.0),
    ]
    inits = {"w1": w(k, n), "b1": w(n), "w2": w(8, k), "w3": w(k, 3), "b3": w(1, 3)}
    # and a 1-D convolution pair (the second reads channels-last data: NEON implicit GEMM)
    for name, src, cin, cout, ks, attrs in [("c1", "s", 6, 10, 3, {"pads": [1, 1]}),
                                            ("c2", "c1", 10, 7, 5, {"strides": [2]})]:
        n1, i1 = conv(name, src, cin, cout, (ks,), 1, ("Relu", {}), kernel_shape=[ks], **attrs)
        nodes += n1
        inits.update(i1)
    model = make_model(nodes, {"x": (np.float32, (9, k)), "s": (np.float32, (1, 6, 20))},
                       {"g1": (np.float32, None), "g2": (np.float32, None),
                        "g3": (np.float32, None), "c2": (np.float32, None)}, inits)
    feeds = {"x": RNG.standard_normal((9, k)).astype(np.float32),
             "s": RNG.standard_normal((1, 6, 20)).astype(np.float32)}
    compiler = "clang --target=aarch64-linux-gnu" if cc == "clang" else None
    assert "edgec_f32_tile(" in compile_model_proto(model, "arm64-fp32").files["test.c"]
    check_against_ort(model, feeds, "arm64-fp32", cc=compiler)


def test_conv_family_clean_under_ubsan_and_clang():
    nodes, inits, outs = conv_zoo()
    x_shape = (1, 13, 9, 11)
    model = make_model(nodes, {"x": (np.float32, x_shape)},
                       {name: (np.float32, None) for name in outs}, inits)
    feeds = {"x": RNG.standard_normal(x_shape).astype(np.float32)}
    check_against_ort(model, feeds, "arm64-fp32", sanitize=True)
    if have("clang"):
        check_against_ort(model, feeds, "arm64-fp32", cc="clang --target=aarch64-linux-gnu")
