"""layout-nhwc sinks Transposes through the data-movement ops (Pad, Slice, Concat, Split,
Gather, Cast, Tile, Expand, DepthToSpace) between convolutions: after the pipeline only the
Transposes at the graph's input and output remain, and the numbers match onnxruntime."""

import numpy as np
import pytest
from helpers import check_against_ort, compile_model_proto, make_model
from onnx import TensorProto, helper

C = 4  # channels of every feature map
INPUT = (1, C, 6, 6)


def conv(name, src, dst):
    """A 3x3 'same' convolution node C -> C (its weights are named w_<name>)."""
    return helper.make_node("Conv", [src, f"w_{name}"], [dst], pads=[1, 1, 1, 1], name=name)


def conv_weights(names, cin=C, seed=0):
    """Weights for the convolutions `names`."""
    rng = np.random.default_rng(seed)
    return {f"w_{n}": (rng.standard_normal((C, cin, 3, 3)) * 0.3).astype(np.float32)
            for n in names}


def ints(*values):
    return np.array(values, np.int64)


# name -> (middle nodes from "a" (and "b") to "m", extra initializers, input channels of c2)
CASES = {
    "pad": ([helper.make_node("Pad", ["a", "pads"], ["m"], mode="reflect")],
            {"pads": ints(0, 0, 1, 2, 0, 0, 2, 1)}, C),
    "slice": ([helper.make_node("Slice", ["a", "s", "e", "ax"], ["m"])],
              {"s": ints(1, 1), "e": ints(5, 100), "ax": ints(2, 3)}, C),
    "slice_channels": ([helper.make_node("Slice", ["a", "s", "e", "ax", "st"], ["m"])],
                       {"s": ints(-1), "e": ints(-100), "ax": ints(1), "st": ints(-2)}, 2),
    "concat": ([helper.make_node("Concat", ["a", "b"], ["m"], axis=1)], {}, 2 * C),
    "split": ([helper.make_node("Split", ["a"], ["p", "q"], axis=1, num_outputs=2),
               helper.make_node("Mul", ["p", "q"], ["m"])], {}, C // 2),
    "gather": ([helper.make_node("Gather", ["a", "idx"], ["m"], axis=1)],
               {"idx": ints(3, 0, -1)}, 3),
    "cast": ([helper.make_node("Cast", ["a"], ["ai"], to=TensorProto.INT32),
              helper.make_node("Cast", ["ai"], ["m"], to=TensorProto.FLOAT)], {}, C),
    "tile": ([helper.make_node("Tile", ["a", "reps"], ["m"])], {"reps": ints(1, 1, 2, 1)}, C),
    "expand": ([helper.make_node("Expand", ["a", "shape"], ["m"])], {"shape": ints(2, 1, 1, 1)},
               C),
    "depth_to_space": ([helper.make_node("DepthToSpace", ["a"], ["m"], blocksize=2)], {},
                       C // 4),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_transposes_remain_only_at_the_edges(case):
    middle, inits, c2_in = CASES[case]
    uses_b = any("b" in n.input for n in middle)
    nodes = [conv("c1", "x", "a")] + ([conv("c1b", "x", "b")] if uses_b else [])
    nodes += middle + [conv("c2", "m", "y")]
    weights = conv_weights(["c1", "c1b"]) | conv_weights(["c2"], cin=c2_in, seed=1)
    model = make_model(nodes, {"x": ("float32", INPUT)}, {"y": ("float32", None)},
                       {**weights, **inits}, opset=18)

    g = compile_model_proto(model).graph
    inner = [n.name for n in g.nodes if n.op == "Transpose"
             and n.input(0) not in g.inputs and n.output not in g.outputs]
    assert not inner, f"Transposes left inside the graph: {inner}"
    assert sum(n.op == "Transpose" and n.output in g.outputs for n in g.nodes) <= 1

    x = np.random.default_rng(2).standard_normal(INPUT).astype(np.float32)
    check_against_ort(model, {"x": x}, sanitize=case in ("pad", "split"))
