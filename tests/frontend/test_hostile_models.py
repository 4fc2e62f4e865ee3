"""Broken and hostile models (issue 12, items 5, 7 and 8): each is refused with exit code 2
and one `edgec: error:` line naming the problem, before any output is written and before a
large tensor is allocated; the resource limits have flags that raise them.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import make_model
from onnx import TensorProto, helper, numpy_helper

from edgec.cli import main
from edgec.limits import GIB, MIB, LimitError, Limits, parse_size

F = TensorProto.FLOAT


def run_cli(capfd, *args) -> tuple[int, str, str]:
    """`edgec ARGS` in this process: (exit code, stdout, stderr)."""
    capfd.readouterr()
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out, err


def refused(capfd, tmp_path: Path, model: onnx.ModelProto | Path, *fragments: str,
            extra: tuple = (), command: str = "compile") -> str:
    """The model gives exit 2, exactly one error line holding `fragments`, and no output."""
    path = model if isinstance(model, Path) else tmp_path / "m.onnx"
    if not isinstance(model, Path):
        onnx.save(model, str(path))
    out_dir = tmp_path / "out"
    args = [command, path, *extra] + (["-o", out_dir] if command == "compile" else [])
    code, out, err = run_cli(capfd, *args)
    lines = err.splitlines()
    assert code == 2, f"exit {code}: {err!r}"
    assert len(lines) == 1 and lines[0].startswith("edgec: error: "), lines
    for frag in fragments:
        assert frag in lines[0], f"{frag!r} not in {lines[0]!r}"
    assert not out_dir.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    return lines[0]


def graph_model(nodes, inputs, outputs, initializers=(), opset=17) -> onnx.ModelProto:
    """A model from raw protos (for initializers onnx.helper would refuse to build)."""
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(*i) for i in inputs],
                          [helper.make_tensor_value_info(*o) for o in outputs], list(initializers))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def add_const_model(t: onnx.TensorProto, shape=(4, 4)) -> onnx.ModelProto:
    """y = x + t, t an initializer."""
    return graph_model([helper.make_node("Add", ["x", t.name], ["y"], name="add")],
                       [("x", F, list(shape))], [("y", F, list(shape))], [t])


def conv_model(**attrs) -> onnx.ModelProto:
    """One 3x3 convolution with the given attributes."""
    return make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)],
                      {"x": ("float32", (1, 1, 8, 8))}, {"y": ("float32", None)},
                      {"w": np.ones((1, 1, 3, 3), np.float32)})


# ------------------------------------------------------------------ item 5: exit 2, not 3
def test_initializer_raw_data_shorter_than_dims(capfd, tmp_path):
    t = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    t.dims[:] = [4, 4]
    refused(capfd, tmp_path, add_const_model(t), "initializer 'w'", "[4, 4]", "24 bytes")


def test_initializer_typed_data_shorter_than_dims(capfd, tmp_path):
    t = helper.make_tensor("w", F, [2, 3], [1.0] * 6)
    t.dims[:] = [4, 4]
    refused(capfd, tmp_path, add_const_model(t), "initializer 'w'", "16 values", "6 values")


def test_external_data_shorter_than_dims(capfd, tmp_path):
    model = add_const_model(numpy_helper.from_array(np.ones((4, 4), np.float32), "w"))
    path = tmp_path / "ext.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location="w.bin", size_threshold=0)
    with open(tmp_path / "w.bin", "r+b") as f:
        f.truncate(24)
    refused(capfd, tmp_path, path, "external weight data")


def test_external_data_length_field_smaller_than_dims(capfd, tmp_path):
    model = add_const_model(numpy_helper.from_array(np.ones((4, 4), np.float32), "w"))
    path = tmp_path / "ext.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location="w.bin", size_threshold=0)
    stored = onnx.load(str(path), load_external_data=False)
    for entry in stored.graph.initializer[0].external_data:
        if entry.key == "length":
            entry.value = "24"
    onnx.save(stored, str(path))
    refused(capfd, tmp_path, path, "initializer 'w'", "24 bytes")


def test_string_initializer(capfd, tmp_path):
    t = helper.make_tensor("s", TensorProto.STRING, [2], [b"a", b"b"])
    model = graph_model([helper.make_node("Identity", ["s"], ["z"]),
                         helper.make_node("Relu", ["x"], ["y"])], [("x", F, [4])],
                        [("y", F, [4]), ("z", TensorProto.STRING, [2])], [t])
    refused(capfd, tmp_path, model, "initializer 's'", "STRING")


@pytest.mark.parametrize("value, given, want", [(1.5, "FLOAT", "INTS"), ("ab", "STRING", "INTS")])
def test_attribute_of_the_wrong_type(capfd, tmp_path, value, given, want):
    refused(capfd, tmp_path, conv_model(strides=value), "Conv node 'conv'", "'strides'", given,
            want)


def test_required_attribute_missing(capfd, tmp_path):
    model = make_model([helper.make_node("Cast", ["x"], ["y"], name="cast")],
                       {"x": ("float32", (3,))}, {"y": ("int64", (3,))})
    refused(capfd, tmp_path, model, "Cast node 'cast'", "'to'")


@pytest.mark.parametrize("attr", ["strides", "dilations"])
def test_zero_stride_or_dilation(capfd, tmp_path, attr):
    refused(capfd, tmp_path, conv_model(**{attr: [0, 0]}), "Conv node 'conv'", attr)


def test_max_pool_zero_stride(capfd, tmp_path):
    model = make_model([helper.make_node("MaxPool", ["x"], ["y"], name="pool",
                                         kernel_shape=[2, 2], strides=[1, 0])],
                       {"x": ("float32", (1, 1, 4, 4))}, {"y": ("float32", None)})
    refused(capfd, tmp_path, model, "MaxPool node 'pool'", "strides")


def test_reshape_copying_dims_past_the_rank(capfd, tmp_path):
    model = make_model([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")],
                       {"x": ("float32", (2, 3))}, {"y": ("float32", None)},
                       {"s": np.array([0, 0, 0], np.int64)})
    refused(capfd, tmp_path, model, "Reshape node 'rs'", "[0, 0, 0]")


def test_global_average_pool_over_an_empty_dim(capfd, tmp_path):
    model = make_model([helper.make_node("GlobalAveragePool", ["x"], ["y"], name="gap")],
                       {"x": ("float32", (1, 3, 0, 4))}, {"y": ("float32", None)})
    refused(capfd, tmp_path, model, "GlobalAveragePool node 'gap'", "empty")


def test_constant_of_shape_2_62_squared(capfd, tmp_path):
    model = make_model([helper.make_node("ConstantOfShape", ["s"], ["c"], name="cos"),
                        helper.make_node("Add", ["x", "c"], ["y"])],
                       {"x": ("float32", (1,))}, {"y": ("float32", None)},
                       {"s": np.array([2**62, 2**62], np.int64)})
    refused(capfd, tmp_path, model, "ConstantOfShape node 'cos'", "--max-weights-bytes")


def test_constant_of_shape_negative_size(capfd, tmp_path):
    model = make_model([helper.make_node("ConstantOfShape", ["s"], ["c"], name="cos"),
                        helper.make_node("Add", ["x", "c"], ["y"])],
                       {"x": ("float32", (1,))}, {"y": ("float32", None)},
                       {"s": np.array([-2, 3], np.int64)})
    refused(capfd, tmp_path, model, "ConstantOfShape node 'cos'")


@pytest.mark.parametrize("limit", [np.inf, np.nan])
def test_range_without_a_finite_length(capfd, tmp_path, limit):
    model = make_model([helper.make_node("Range", ["a", "b", "d"], ["r"], name="range"),
                        helper.make_node("Add", ["x", "r"], ["y"])],
                       {"x": ("float32", (1,))}, {"y": ("float32", None)},
                       {"a": np.array(0, np.float32), "b": np.array(limit, np.float32),
                        "d": np.array(1, np.float32)})
    refused(capfd, tmp_path, model, "Range node 'range'")


def test_slice_with_float_starts(capfd, tmp_path):
    model = make_model([helper.make_node("Slice", ["x", "st", "en"], ["y"], name="sl")],
                       {"x": ("float32", (4,))}, {"y": ("float32", None)},
                       {"st": np.array([0.0], np.float32), "en": np.array([np.inf], np.float32)})
    refused(capfd, tmp_path, model, "Slice node 'sl'", "float32")


def test_add_of_float_and_int64(capfd, tmp_path):
    model = make_model([helper.make_node("Add", ["x", "k"], ["y"], name="add")],
                       {"x": ("float32", (4,))}, {"y": ("float32", None)},
                       {"k": np.ones(4, np.int64)})
    refused(capfd, tmp_path, model, "Add node 'add'", "float32", "int64")


def test_gemm_bias_that_does_not_broadcast_to_the_output(capfd, tmp_path):
    model = make_model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc")],
                       {"x": ("float32", (1, 4))}, {"y": ("float32", None)},
                       {"w": np.ones((4, 10), np.float32), "b": np.ones((10, 1), np.float32)})
    refused(capfd, tmp_path, model, "Gemm node 'fc'", "(10, 1)")


def test_int8_verify_of_a_scalar_model(capfd, tmp_path):
    """The int8 reference interpreter kept a scalar input scalar (it became shape (1,))."""
    path = tmp_path / "scalar.onnx"
    onnx.save(make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": ("float32", ())},
                         {"y": ("float32", ())}), str(path))
    code, out, err = run_cli(capfd, "verify", path, "-t", "generic-int8")
    assert code == 0, err
    assert "PASS" in out
    assert "error" not in err


# ------------------------------------------------------------------ item 7: invalid models
def test_duplicate_initializer_names(capfd, tmp_path):
    model = graph_model([helper.make_node("Add", ["x", "w"], ["y"])], [("x", F, [4])],
                        [("y", F, [4])],
                        [numpy_helper.from_array(np.ones(4, np.float32), "w"),
                         numpy_helper.from_array(np.full(4, 2, np.float32), "w")])
    refused(capfd, tmp_path, model, "initializer 'w'", "twice")


def test_two_nodes_write_one_tensor(capfd, tmp_path):
    model = make_model([helper.make_node("Relu", ["x"], ["t"], name="a"),
                        helper.make_node("Neg", ["x"], ["t"], name="b"),
                        helper.make_node("Abs", ["t"], ["y"], name="c")],
                       {"x": ("float32", (4,))}, {"y": ("float32", (4,))})
    refused(capfd, tmp_path, model, "'t'", "Neg node 'b'", "one producer")


def test_node_overwrites_a_graph_input(capfd, tmp_path):
    model = make_model([helper.make_node("Relu", ["x"], ["x"], name="a"),
                        helper.make_node("Abs", ["x"], ["y"], name="c")],
                       {"x": ("float32", (4,))}, {"y": ("float32", (4,))})
    refused(capfd, tmp_path, model, "'x'", "Relu node 'a'")


def test_graph_input_and_initializer_of_one_name_with_other_types(capfd, tmp_path):
    model = graph_model([helper.make_node("Relu", ["x"], ["y"])], [("x", F, [4])],
                        [("y", F, [4])], [numpy_helper.from_array(np.ones(5, np.float32), "x")])
    refused(capfd, tmp_path, model, "graph input 'x'", "ambiguous")


def test_declared_output_shape_contradicts_the_inferred_one(capfd, tmp_path):
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": ("float32", (1, 4))},
                       {"y": ("float32", (7, 7))})
    refused(capfd, tmp_path, model, "graph output 'y'", "[7x7]", "[1x4]")


def test_declared_output_rank_contradicts_the_inferred_one(capfd, tmp_path):
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": ("float32", (1, 4))},
                       {"y": ("float32", (4,))})
    refused(capfd, tmp_path, model, "graph output 'y'", "[4]", "[1x4]")


def test_declared_output_with_symbolic_dims_is_accepted(capfd, tmp_path):
    """Symbolic and unknown dims declare nothing; a fixed dim that matches is fine."""
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": ("float32", (1, 4))},
                       {"y": ("float32", ("N", 4))})
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    code, _, err = run_cli(capfd, "compile", path, "-o", tmp_path / "out")
    assert code == 0, err
    assert (tmp_path / "out" / "report.json").is_file()


# ------------------------------------------------------------------ item 8: limits
def test_tiny_model_expanding_to_a_huge_constant(capfd, tmp_path):
    """A model of under 200 bytes asks ConstantOfShape for 10^10 floats: refused before
    anything of that size is allocated."""
    model = make_model([helper.make_node("ConstantOfShape", ["s"], ["c"]),
                        helper.make_node("Add", ["x", "c"], ["y"])],
                       {"x": ("float32", (1,))}, {"y": ("float32", None)},
                       {"s": np.array([100000, 100000], np.int64)})
    assert len(model.SerializeToString()) < 200
    tracemalloc.start()
    try:
        refused(capfd, tmp_path, model, "40,000,000,000 B", "--max-weights-bytes")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * MIB


def test_expand_to_a_huge_activation(capfd, tmp_path):
    model = make_model([helper.make_node("Expand", ["x", "s"], ["y"], name="ex")],
                       {"x": ("float32", (1, 1))}, {"y": ("float32", None)},
                       {"s": np.array([100000, 100000], np.int64)})
    refused(capfd, tmp_path, model, "Expand node 'ex'", "--max-arena-bytes")


def test_huge_input_names_the_arena_limit(capfd, tmp_path):
    model = make_model([helper.make_node("Relu", ["x"], ["y"])],
                       {"x": ("float32", (1, 3, 100000, 100000))}, {"y": ("float32", None)})
    refused(capfd, tmp_path, model, "graph input 'x'", "120,000,000,000 B", "--max-arena-bytes")
    # Raising the arena limit reaches the next one: 3e10 elements overflow 32-bit indexing.
    refused(capfd, tmp_path, model, "--max-tensor-elements",
            extra=("--max-arena-bytes", "200G"))


def small_chain() -> onnx.ModelProto:
    """y = (relu(x) + neg(x)) + w: two 64-byte activations live at once, a 64-byte weight."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["x"], ["n"]),
             helper.make_node("Add", ["r", "n"], ["s"]), helper.make_node("Add", ["s", "w"], ["y"])]
    return make_model(nodes, {"x": ("float32", (1, 16))}, {"y": ("float32", (1, 16))},
                      {"w": np.arange(16, dtype=np.float32)})


@pytest.mark.parametrize("flag, value, fragment", [
    ("--max-arena-bytes", "100", "memory plan's arena"),
    ("--max-weights-bytes", "32", "weights"),
    ("--max-source-bytes", "100", "generated C (estimated"),
    ("--max-nodes", "2", "4 nodes"),
    ("--max-rank", "1", "rank 2"),
    ("--max-tensor-elements", "8", "16 elements"),
])
def test_each_limit_and_its_flag(capfd, tmp_path, flag, value, fragment):
    msg = refused(capfd, tmp_path, small_chain(), fragment, flag, extra=(flag, value))
    assert "limit" in msg


def test_limits_high_enough_compile(capfd, tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(small_chain(), str(path))
    code, _, err = run_cli(capfd, "compile", path, "-o", tmp_path / "out",
                           "--max-arena-bytes", "1K", "--max-weights-bytes", "64",
                           "--max-nodes", "4", "--max-rank", "2")
    assert code == 0, err


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5G", "12Q"])
def test_bad_limit_value(capfd, tmp_path, value):
    refused(capfd, tmp_path, small_chain(), "--max-arena-bytes", extra=("--max-arena-bytes",
                                                                          value))


def test_parse_size_and_defaults():
    assert parse_size("1073741824", "--x") == GIB
    assert parse_size("512M", "--x") == 512 * MIB
    assert parse_size("2g", "--x") == 2 * GIB
    assert parse_size("64KiB", "--x") == 64 * 1024
    assert Limits().max_arena_bytes == GIB
    with pytest.raises(LimitError):
        Limits(max_nodes=0)


def test_model_file_larger_than_the_weights_limit_is_not_read(capfd, tmp_path):
    path = tmp_path / "big.onnx"
    with open(path, "wb") as f:  # sparse: no disk used; refused on its size alone
        f.truncate(400 * MIB)
    refused(capfd, tmp_path, path, "model file", "--max-weights-bytes")


def test_node_input_defined_nowhere(capfd, tmp_path):
    model = make_model([helper.make_node("Add", ["x", "nope"], ["y"], name="add")],
                       {"x": ("float32", (4,))}, {"y": ("float32", (4,))})
    refused(capfd, tmp_path, model, "'nope'", "Add node 'add'", "not defined")


def test_node_without_its_output(capfd, tmp_path):
    model = graph_model([helper.make_node("Relu", ["x"], [], name="r")], [("x", F, [4])],
                        [("x", F, [4])])
    refused(capfd, tmp_path, model, "Relu node 'r'", "0 output(s)")


def test_conv_kernel_shape_differs_from_the_weights(capfd, tmp_path):
    refused(capfd, tmp_path, conv_model(kernel_shape=[1, 2]), "Conv node 'conv'", "[1, 2]")


def test_conv_bias_of_the_wrong_size(capfd, tmp_path):
    model = make_model([helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv")],
                       {"x": ("float32", (1, 1, 8, 8))}, {"y": ("float32", None)},
                       {"w": np.ones((2, 1, 3, 3), np.float32), "b": np.ones(0, np.float32)})
    refused(capfd, tmp_path, model, "Conv node 'conv'", "bias")


def test_conv_transpose_group_0(capfd, tmp_path):
    model = make_model([helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", group=0)],
                       {"x": ("float32", (1, 2, 4, 4))}, {"y": ("float32", None)},
                       {"w": np.ones((2, 1, 3, 3), np.float32)})
    refused(capfd, tmp_path, model, "ConvTranspose node 'up'", "group")


def test_folding_a_huge_matmul_is_refused_before_it_runs(capfd, tmp_path):
    """A 191-byte model asks for a 4096^3 MatMul of constants at compile time."""
    fill = helper.make_tensor("v", F, [1], [1.0])
    model = make_model([helper.make_node("ConstantOfShape", ["s"], ["a"], value=fill),
                        helper.make_node("MatMul", ["a", "a"], ["m"], name="mm"),
                        helper.make_node("ReduceSum", ["m"], ["r"], keepdims=0),
                        helper.make_node("Add", ["x", "r"], ["y"])],
                       {"x": ("float32", ())}, {"y": ("float32", None)},
                       {"s": np.array([4096, 4096], np.int64)})
    refused(capfd, tmp_path, model, "MatMul node 'mm'", "68,719,476,736", "--max-fold-macs")
    # Folding below the limit still happens: the same model with 64x64 compiles.
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.array([64, 64], np.int64),
                                                                "s"))
    path = tmp_path / "small.onnx"
    onnx.save(model, str(path))
    code, _, err = run_cli(capfd, "compile", path, "-o", tmp_path / "ok")
    assert code == 0, err


def test_negative_conv_pads(capfd, tmp_path):
    """ONNX pads are >= 0; the int8 calibration kernels indexed with them (exit 3)."""
    refused(capfd, tmp_path, conv_model(pads=[1, 1, 1, -2]), "Conv node 'conv'", "pads",
            extra=("-t", "generic-int8"))


def test_attribute_the_schema_does_not_define(capfd, tmp_path):
    """ReduceMean-18 takes axes as an input; an 'axes' attribute (here a string) is invalid."""
    model = make_model([helper.make_node("ReduceMean", ["x"], ["y"], name="rm", axes="abc")],
                       {"x": ("float32", (2, 3))}, {"y": ("float32", None)}, opset=18)
    refused(capfd, tmp_path, model, "ReduceMean node 'rm'", "'axes'", "not defined")


def test_clip_with_an_empty_min(capfd, tmp_path):
    model = make_model([helper.make_node("Clip", ["x", "lo"], ["y"], name="clip")],
                       {"x": ("float32", (4,))}, {"y": ("float32", None)},
                       {"lo": np.zeros((0, 2), np.float32)})
    refused(capfd, tmp_path, model, "Clip node 'clip'", "scalar")


def test_fold_limit_counts_all_folded_ops_together(capfd, tmp_path):
    """Two folded 64^3 MatMuls (262,144 multiply-accumulates each): the second passes a limit
    of 400,000 only if each op were judged alone."""
    fill = helper.make_tensor("v", F, [1], [1.0])
    model = make_model([helper.make_node("ConstantOfShape", ["s"], ["a"], value=fill),
                        helper.make_node("MatMul", ["a", "a"], ["m1"], name="mm1"),
                        helper.make_node("MatMul", ["m1", "a"], ["m2"], name="mm2"),
                        helper.make_node("ReduceSum", ["m2"], ["r"], keepdims=0),
                        helper.make_node("Add", ["x", "r"], ["y"])],
                       {"x": ("float32", ())}, {"y": ("float32", None)},
                       {"s": np.array([64, 64], np.int64)})
    refused(capfd, tmp_path, model, "MatMul node 'mm2'", "524,288", "--max-fold-macs",
            extra=("--max-fold-macs", "400000"))


def test_old_opset_with_an_unused_broken_initializer(capfd, tmp_path):
    """Opset 9 goes through the version converter; an unused COMPLEX128 initializer whose
    bytes do not fill it was converted to numpy on the way (exit 3); unused, it is ignored."""
    bad = numpy_helper.from_array(np.ones(2, np.float32), "w")
    bad.data_type = TensorProto.COMPLEX128
    model = graph_model([helper.make_node("Relu", ["x"], ["y"])], [("x", F, [4])],
                        [("y", F, [4])], [bad], opset=9)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    code, _, err = run_cli(capfd, "compile", path, "-o", tmp_path / "out")
    assert code == 0, err
