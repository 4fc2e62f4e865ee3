"""Operands computed at run time where ONNX allows them (issue 19).

Clip with a runtime min / max (the log-mel top-dB clamp `Clip(x, ReduceMax(x) - 80)`):
generated C against onnxruntime, bit for bit, on generic and x86_64 targets, and against the
constant-bound form of the same clamp. Ops that still need a compile-time constant say so
accurately: `--input-shape` is suggested only when a dynamic input dimension is involved.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import have, make_model, ort_run, run_c
from onnx import TensorProto, helper

from edgec.errors import ConstantInputRequired
from edgec.frontend.onnx import import_model
from edgec.interp import run_graph

RNG = np.random.default_rng(19)
F32 = np.float32


def _same_bits(got: np.ndarray, want: np.ndarray) -> bool:
    got, want = np.asarray(got), np.asarray(want)
    return got.dtype == want.dtype and got.shape == want.shape and \
        got.tobytes() == want.tobytes()


def _top_db_model(shape=(1, 8, 20)):
    """y = Clip(x, ReduceMax(x) - 80): min computed at run time, no max."""
    nodes = [
        helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
        helper.make_node("Sub", ["m", "db"], ["lo"]),
        helper.make_node("Clip", ["x", "lo"], ["y"], name="Clip_28"),
    ]
    return make_model(nodes, {"x": (F32, shape)}, {"y": (F32, shape)},
                      {"db": np.array(80, F32)})


def _log_mel_like(shape=(1, 8, 20)) -> np.ndarray:
    x = (RNG.standard_normal(shape) * 40 - 20).astype(F32)
    x.reshape(-1)[:2] = [-1e4, 88.0]  # -1e4 clamps; max 88 puts the bound at 8
    return x


@pytest.mark.parametrize("target", ["generic-fp32", "x86_64-fp32", "arm64-fp32"])
def test_clip_runtime_min_matches_onnxruntime(target):
    if target.startswith("arm64") and not (have("aarch64-linux-gnu-gcc") and have("qemu-aarch64")):
        pytest.skip("needs gcc-aarch64-linux-gnu and qemu-user")
    model = _top_db_model()
    x = _log_mel_like()
    want = ort_run(model, {"x": x})["y"]
    got = run_c(model, {"x": x}, target)["y"]
    assert _same_bits(got, want)
    lo = x.max() - F32(80)
    assert (got >= lo).all() and (got == lo).sum() >= 1 and got.reshape(-1)[0] == lo


def test_clip_runtime_nan_in_data_and_nan_bound_match_onnxruntime():
    """A NaN in x propagates; a NaN bound clamps nothing (onnxruntime's behaviour): C and
    the reference interpreter agree with onnxruntime bit for bit. (The bound is a graph
    input: how ReduceMax treats NaN is ReduceMax's business, not Clip's.)"""
    model = make_model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
                       {"x": (F32, (2, 9)), "lo": (F32, ()), "hi": (F32, ())},
                       {"y": (F32, (2, 9))})
    x = (RNG.standard_normal((2, 9)) * 3).astype(F32)
    x[0, 3] = np.nan
    g = import_model(model, None, name="t")
    for lo, hi in ((F32(-1), F32(1)), (F32(np.nan), F32(1)), (F32(-1), F32(np.nan))):
        feeds = {"x": x, "lo": np.array(lo), "hi": np.array(hi)}
        want = ort_run(model, feeds)["y"]
        for out in (run_c(model, feeds)["y"], run_graph(g, feeds)["y"]):
            assert np.array_equal(out, want, equal_nan=True), (lo, hi)
            assert np.isnan(out[0, 3])


def test_clip_runtime_bounds_equal_constant_bounds_bit_for_bit():
    """Runtime min and max (graph inputs) give the bits of the constant form with the same
    values, on both targets; the constant form is compiled from a separate model."""
    shape = (3, 50)
    x = (RNG.standard_normal(shape) * 4).astype(F32)
    x[0, :4] = [np.nan, np.inf, -np.inf, -0.0]
    lo, hi = F32(-1.25), F32(2.5)
    runtime = make_model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
                         {"x": (F32, shape), "lo": (F32, ()), "hi": (F32, ())},
                         {"y": (F32, shape)})
    const = make_model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
                       {"x": (F32, shape)}, {"y": (F32, shape)},
                       {"lo": np.array(lo), "hi": np.array(hi)})
    feeds = {"x": x, "lo": np.array(lo), "hi": np.array(hi)}
    g = import_model(runtime, None, name="t")
    assert [n.op for n in g.nodes] == ["RuntimeClip"]
    want = ort_run(runtime, feeds)["y"]
    for target in ("generic-fp32", "x86_64-fp32"):
        a = run_c(runtime, feeds, target)["y"]
        b = run_c(const, {"x": x}, target)["y"]
        assert _same_bits(a, b), target
        finite = ~np.isnan(want)
        assert _same_bits(a[finite], want[finite]) and np.isnan(a[~finite]).all()


def test_clip_runtime_max_only_and_integer():
    """Only max at run time (min constant), and an int32 Clip with both bounds at run time."""
    x = (RNG.standard_normal((4, 6)) * 3).astype(F32)
    m = make_model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
                   {"x": (F32, (4, 6)), "hi": (F32, ())}, {"y": (F32, (4, 6))},
                   {"lo": np.array(-0.5, F32)})
    feeds = {"x": x, "hi": np.array(1.5, F32)}
    assert _same_bits(run_c(m, feeds)["y"], ort_run(m, feeds)["y"])
    xi = RNG.integers(-100, 100, (5, 7)).astype(np.int32)
    mi = make_model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
                    {"x": (np.int32, (5, 7)), "lo": (np.int32, ()), "hi": (np.int32, ())},
                    {"y": (np.int32, (5, 7))})
    feeds = {"x": xi, "lo": np.array(-20, np.int32), "hi": np.array(33, np.int32)}
    assert np.array_equal(run_c(mi, feeds)["y"], np.clip(xi, -20, 33))


def test_clip_non_scalar_runtime_bound_is_refused():
    m = make_model([helper.make_node("Clip", ["x", "lo"], ["y"])],
                   {"x": (F32, (2, 3)), "lo": (F32, (3,))}, {"y": (F32, (2, 3))})
    with pytest.raises(Exception, match="must be a scalar"):
        import_model(m, None, name="t")


def test_constant_input_error_does_not_suggest_input_shape_when_shapes_are_fixed():
    """Reshape's shape computed from data (fixed input shapes): the error names the value
    and says edgec does not support a computed shape here; no --input-shape advice."""
    m = make_model([helper.make_node("ReduceMax", ["s"], ["m"], keepdims=1),
                    helper.make_node("Cast", ["s"], ["si"], to=TensorProto.INT64),
                    helper.make_node("Reshape", ["x", "si"], ["y"])],
                   {"x": (F32, (2, 6)), "s": (F32, (2,))}, {"y": (F32, (3, 4))})
    with pytest.raises(ConstantInputRequired) as e:
        import_model(m, None, name="t")
    msg = str(e.value)
    assert "--input-shape" not in msg
    assert "compile-time constant" in msg and "computed" in msg


def test_dynamic_input_dims_are_refused_with_input_shape_advice():
    """A dynamic input dimension is refused before any op is imported, with --input-shape as
    the fix; so an op's constant-input error never needs to suggest it."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Reshape", ["x", "s"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6])
    m = helper.make_model(helper.make_graph(nodes, "t", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    with pytest.raises(Exception, match="--input-shape"):
        import_model(m, None, name="t")
    g = import_model(m, {"x": (2, 6)}, name="t")  # fixed: the shape folds
    assert [n.op for n in g.nodes] == ["Reshape"] or len(g.nodes) <= 1


def _shape_chain(prefix: str, idx: int):
    """Nodes computing Shape(x)[idx] as a 1-element int64 tensor (folds on fixed shapes)."""
    return [helper.make_node("Shape", ["x"], [f"{prefix}_s"]),
            helper.make_node("Gather", [f"{prefix}_s", f"{prefix}_i"], [f"{prefix}_d"], axis=0)]


def test_shape_computed_operands_fold_and_match_onnxruntime():
    """Pad pads, Expand shape and Resize scales computed by Shape arithmetic fold at import
    (the shapes are fixed), and the C matches onnxruntime. (edgec has no TopK yet.)"""
    x = RNG.standard_normal((1, 2, 4, 6)).astype(F32)
    idx = {"p_i": np.array([1], np.int64),
           "two": np.array([2], np.int64), "zeros6": np.zeros(6, np.int64),
           "ones2": np.array([1, 2], np.int64), "sc": np.array([1, 1, 2, 2], F32),
           "half": np.array(2, F32), "lead": np.array([3, 1, 1, 1], np.int64)}
    nodes = [
        *_shape_chain("p", 1),  # pads: end pads [0, 0, C, C] with C = 2
        helper.make_node("Concat", ["zeros6", "p_d", "p_d"], ["pads0"], axis=0),
        helper.make_node("Slice", ["pads0", "zero1", "eight"], ["pads"]),
        helper.make_node("Pad", ["x", "pads"], ["padded"]),
        helper.make_node("Shape", ["x"], ["xs"]),
        helper.make_node("Mul", ["xs", "lead"], ["eshape"]),
        helper.make_node("Expand", ["x", "eshape"], ["expanded"]),
        helper.make_node("Div", ["sc", "half"], ["sc_half"]),
        helper.make_node("Mul", ["sc_half", "half"], ["scales"]),
        helper.make_node("Resize", ["x", "", "scales"], ["resized"], mode="nearest"),
    ]
    idx.update({"zero1": np.array([0], np.int64), "eight": np.array([8], np.int64)})
    outs = {"padded": (F32, (1, 2, 6, 8)),
            "expanded": (F32, (3, 2, 4, 6)), "resized": (F32, (1, 2, 8, 12))}
    model = make_model(nodes, {"x": (F32, x.shape)}, outs, idx)
    want = ort_run(model, {"x": x})
    got = run_c(model, {"x": x})
    for name in outs:
        assert np.array_equal(got[name], want[name]), name


@pytest.mark.parametrize("op", ["Pad", "Expand"])
def test_data_computed_operands_name_the_input_without_bad_advice(op):
    """The same operands computed from data: one accurate error naming the op, the operand
    and the graph input it comes from; no --input-shape advice."""
    if op == "Pad":
        node = helper.make_node("Pad", ["x", "v"], ["y"])
    else:
        node = helper.make_node("Expand", ["x", "v"], ["y"])
    nodes = [helper.make_node("Cast", ["d"], ["v"], to=TensorProto.INT64), node]
    model = make_model(nodes, {"x": (F32, (2, 6)), "d": (F32, (4 if op == "Pad" else 2,))},
                       {"y": (F32, (2, 6))})
    with pytest.raises(ConstantInputRequired) as e:
        import_model(model, None, name="t")
    msg = str(e.value)
    assert op in msg and "'d'" in msg and "--input-shape" not in msg
    assert "does not support a computed" in msg
