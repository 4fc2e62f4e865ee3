"""MobileNetV2-style ONNX models for the row-band tests (tests/e2e/test_row_bands.py,
tests/passes/test_fuse_row_bands.py): a stem, inverted-residual blocks with strides 1 and 2,
a residual Add, 3x3 and 5x5 depthwise kernels, odd sizes."""

from __future__ import annotations

import numpy as np
from helpers import make_model
from onnx import helper


def mbv2_blocks(size: int = 21, width: int = 16, expand: int = 6, seed: int = 0):
    """(model, input feed) of a stem and four inverted-residual blocks on a size x size image."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], {"lo": np.array(0, np.float32), "hi": np.array(6, np.float32)}

    def conv(x, y, cin, cout, k, s, group=1, relu6=True):
        w = rng.standard_normal((cout, cin // group, k, k)) / np.sqrt(cin // group * k * k)
        inits[y + "_w"] = w.astype(np.float32)
        inits[y + "_b"] = (rng.standard_normal(cout) * 0.1).astype(np.float32)
        out = y + "_c" if relu6 else y
        nodes.append(helper.make_node("Conv", [x, y + "_w", y + "_b"], [out], kernel_shape=[k, k],
                                      strides=[s, s], pads=[k // 2] * 4, group=group))
        if relu6:
            nodes.append(helper.make_node("Clip", [out, "lo", "hi"], [y]))

    c, e = width, width * expand
    conv("x", "stem", 3, c, 3, 2)
    conv("stem", "b1dw", c, c, 3, 1, c)
    conv("b1dw", "b1p", c, c, 1, 1, relu6=False)
    conv("b1p", "b2e", c, e, 1, 1)
    conv("b2e", "b2dw", e, e, 3, 2, e)
    conv("b2dw", "b2p", e, c, 1, 1, relu6=False)
    conv("b2p", "b3e", c, e, 1, 1)
    conv("b3e", "b3dw", e, e, 3, 1, e)
    conv("b3dw", "b3p", e, c, 1, 1, relu6=False)
    nodes.append(helper.make_node("Add", ["b3p", "b2p"], ["b3"]))
    conv("b3", "b4e", c, e, 1, 1)
    conv("b4e", "b4dw", e, e, 5, 2, e)
    conv("b4dw", "y", e, c, 1, 1, relu6=False)
    oh = size
    for _ in range(3):
        oh = (oh - 1) // 2 + 1
    model = make_model(nodes, {"x": (np.float32, [1, 3, size, size])},
                       {"y": (np.float32, [1, c, oh, oh])}, inits)
    feed = {"x": np.random.default_rng(seed + 1).standard_normal((1, 3, size, size))
            .astype(np.float32)}
    return model, feed
