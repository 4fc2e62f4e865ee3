"""The ONNX frontend on models as real exporters write them: PyTorch (legacy and dynamo),
external-data weights, Paddle-style graphs (Constant-node weights, dynamic batch, shape
arithmetic), TFLite-converter-style graphs (NHWC edges, explicit Pad, PRelu) and several
opset versions. Each model is compiled, its C built and run, and compared with onnxruntime.
"""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
import onnx
import pytest
from helpers import check_against_ort, compile_model_proto, make_model, ort_run
from onnx import TensorProto, helper, numpy_helper

from edgec.compiler import CompileOptions
from edgec.errors import ModelLoadError, ShapeError
from edgec.workbench.compare import compare
from edgec.workbench.verify import run_compiled, verify_model


class Rand:
    """Seeded float32 N(0, scale^2) arrays; each model builder owns one (order-independent)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def __call__(self, *shape, scale: float = 1.0) -> np.ndarray:
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def uniform(self, lo: float, hi: float, shape) -> np.ndarray:
        """Seeded float32 U(lo, hi) data."""
        return self.rng.uniform(lo, hi, shape).astype(np.float32)


rand = Rand(7)  # for test inputs


def ops_of(result) -> list[str]:
    """Op names of the compiled IR, in execution order."""
    return [n.op for n in result.graph.nodes]


def check_compiled(result, reference_model: onnx.ModelProto, feeds: dict, tmp_path) -> dict:
    """Build and run an existing CompileResult; assert it matches onnxruntime on
    `reference_model` (fp32 tolerance); returns edgec's outputs."""
    got = run_compiled(result, [feeds], tmp_path)[0]
    for name, ref in ort_run(reference_model, feeds).items():
        c = compare(name, got[name], np.asarray(ref), 1e-4)
        assert c.ok, f"{name}: max_rel_err {c.max_rel_err:.3g}"
    return got


# ----------------------------------------------------------------------------- PyTorch
def torch_net():
    """A small conv net covering what exporters emit for CNNs: conv + BN, depthwise, ReLU6,
    a residual add, a flatten computed from the tensor's shape, a linear layer, a scale."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.bn = nn.BatchNorm2d(8)
            self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.fc = nn.Linear(8 * 6 * 6, 5)

        def forward(self, x):
            y = torch.relu(self.bn(self.conv(x)))
            y = nn.functional.relu6(self.dw(y)) + y
            return self.fc(y.reshape(y.shape[0], -1)) * 0.5

    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    return net.eval()


def export_torch(net, shape, dynamo: bool, opset: int, dynamic_batch: bool = False,
                 initializers_as_inputs: bool = False):
    """Export `net` to an in-memory ModelProto with input 'x' and output 'y'."""
    import torch

    example = (torch.zeros(*shape),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            logging.disable(logging.WARNING)
            try:
                prog = torch.onnx.export(net, example, dynamo=True, opset_version=opset,
                                         input_names=["x"], output_names=["y"], verbose=False)
            finally:
                logging.disable(logging.NOTSET)
            return prog.model_proto
        buf = io.BytesIO()
        torch.onnx.export(net, example, buf, dynamo=False, opset_version=opset,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}
                          if dynamic_batch else None,
                          keep_initializers_as_inputs=initializers_as_inputs)
        return onnx.load_from_string(buf.getvalue())


@pytest.mark.parametrize("dynamo,opset,initializers_as_inputs", [
    (False, 13, False), (True, 18, False),
    (False, 9, True),  # old exports: opset < 11 (converted on import), weights listed as inputs
], ids=["legacy", "dynamo", "legacy-opset9-initializers-as-inputs"])
def test_pytorch_exporters(dynamo, opset, initializers_as_inputs):
    model = export_torch(torch_net(), (1, 3, 6, 6), dynamo, opset,
                         initializers_as_inputs=initializers_as_inputs)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == opset
    graph_inputs = {vi.name for vi in model.graph.input}
    assert (len(graph_inputs) > 1) == initializers_as_inputs
    check_against_ort(model, {"x": rand(1, 3, 6, 6)})


def test_legacy_export_with_dynamic_batch_folds_shape_arithmetic(tmp_path):
    model = export_torch(torch_net(), (1, 3, 6, 6), dynamo=False, opset=13, dynamic_batch=True)
    exported = {n.op_type for n in model.graph.node}
    assert {"Shape", "Gather", "Concat"} <= exported  # y.reshape(y.shape[0], -1)
    with pytest.raises(ShapeError, match="'?x'? \\[batch"):
        compile_model_proto(model)
    x = rand(3, 3, 6, 6)
    result = compile_model_proto(model, input_shapes={"x": x.shape})
    assert not {"Shape", "Gather", "Concat", "Unsqueeze"} & set(ops_of(result))
    check_compiled(result, model, {"x": x}, tmp_path)


# ----------------------------------------------------------------------------- external data
def small_conv_model(opset: int = 17) -> onnx.ModelProto:
    """Conv -> Relu -> Flatten -> Gemm with weights as initializers."""
    rand = Rand(opset)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1, name="fc"),
    ]
    inits = {"w": rand(4, 2, 3, 3, scale=0.3), "b": rand(4, scale=0.1),
             "fw": rand(3, 4 * 5 * 5, scale=0.1), "fb": rand(3, scale=0.1)}
    return make_model(nodes, {"x": ("float32", (1, 2, 5, 5))}, {"y": ("float32", (1, 3))},
                      inits, opset=opset)


def test_external_data_weights(tmp_path):
    model = small_conv_model()
    path = tmp_path / "net.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="w.bin", size_threshold=0)
    assert (tmp_path / "w.bin").stat().st_size > path.stat().st_size
    assert all(t.data_location == TensorProto.EXTERNAL
               for t in onnx.load(str(path), load_external_data=False).graph.initializer)
    res = verify_model(path, CompileOptions(target="generic-fp32"))
    assert res.ok, [(o.name, o.max_rel_err) for o in res.outputs]
    (tmp_path / "w.bin").rename(tmp_path / "elsewhere.bin")
    with pytest.raises(ModelLoadError, match="external weight data"):
        verify_model(path, CompileOptions(target="generic-fp32"))


# ----------------------------------------------------------------------------- Paddle style
def paddle_style_model(batch_dim) -> onnx.ModelProto:
    """What paddle2onnx writes: weights in Constant nodes, a dynamic batch dim, the flatten
    done as Shape -> Gather -> Unsqueeze -> Concat -> Reshape, and MatMul + Add for the FC."""
    rand = Rand(11)

    def const(name, arr):
        return helper.make_node("Constant", [], [name], name=f"{name}_const",
                                value=numpy_helper.from_array(arr, name))

    nodes = [
        const("conv_w", rand(6, 3, 3, 3, scale=0.3)), const("conv_b", rand(6, scale=0.1)),
        helper.make_node("Conv", ["x", "conv_w", "conv_b"], ["c"], pads=[1, 1, 1, 1],
                         strides=[2, 2], name="conv2d_0"),
        helper.make_node("Relu", ["c"], ["r"], name="relu_0"),
        helper.make_node("Shape", ["r"], ["shape"], name="shape_0"),
        const("zero", np.array(0, np.int64)),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0, name="gather_0"),
        const("unsq_axes", np.array([0], np.int64)),
        helper.make_node("Unsqueeze", ["n", "unsq_axes"], ["n1"], name="unsqueeze_0"),
        const("minus_one", np.array([-1], np.int64)),
        helper.make_node("Concat", ["n1", "minus_one"], ["new_shape"], axis=0, name="concat_0"),
        helper.make_node("Reshape", ["r", "new_shape"], ["flat"], name="reshape_0"),
        const("fc_w", rand(6 * 4 * 4, 4, scale=0.1)), const("fc_b", rand(4, scale=0.1)),
        helper.make_node("MatMul", ["flat", "fc_w"], ["mm"], name="matmul_0"),
        helper.make_node("Add", ["mm", "fc_b"], ["y"], name="add_0"),
    ]
    model = make_model(nodes, {"x": ("float32", (batch_dim, 3, 8, 8))},
                       {"y": ("float32", (batch_dim, 4))}, opset=13)
    assert not model.graph.initializer
    return model


@pytest.mark.parametrize("batch_dim", ["batch_size", -1], ids=["dim_param", "minus_one"])
def test_paddle_style_model(batch_dim, tmp_path):
    model = paddle_style_model(batch_dim)
    with pytest.raises(ShapeError, match="x \\[") as err:
        compile_model_proto(model)
    assert "--input-shape" in str(err.value)
    reference_model = paddle_style_model("batch_size")  # onnxruntime wants a symbolic dim
    for batch in (1, 2):
        x = rand(batch, 3, 8, 8)
        result = compile_model_proto(model, input_shapes={"x": x.shape})
        assert not {"Shape", "Gather", "Concat", "Constant", "Unsqueeze"} & set(ops_of(result))
        got = check_compiled(result, reference_model, {"x": x}, tmp_path / str(batch))
        assert got["y"].shape == (batch, 4)


# ----------------------------------------------------------------------------- TFLite style
def tflite_style_model() -> onnx.ModelProto:
    """What TFLite->ONNX converters write: an NHWC input transposed to NCHW, explicit Pad
    nodes before the convolutions ('SAME' padding), PRelu with [C, 1, 1] slopes, and a
    Transpose back to NHWC at the output."""
    rand = Rand(12)
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_nchw"], perm=[0, 3, 1, 2], name="to_nchw"),
        helper.make_node("Pad", ["x_nchw", "pads1"], ["p1"], mode="constant", name="pad1"),
        helper.make_node("Conv", ["p1", "w1", "b1"], ["c1"], name="conv1"),
        helper.make_node("PRelu", ["c1", "slope1"], ["a1"], name="prelu1"),
        helper.make_node("Pad", ["a1", "pads2", "zero"], ["p2"], mode="constant", name="pad2"),
        helper.make_node("Conv", ["p2", "w2", "b2"], ["c2"], group=8, strides=[2, 2],
                         name="dwconv2"),
        helper.make_node("PRelu", ["c2", "slope2"], ["a2"], name="prelu2"),
        helper.make_node("Conv", ["a2", "w3", "b3"], ["c3"], name="conv3"),
        helper.make_node("Transpose", ["c3"], ["y"], perm=[0, 2, 3, 1], name="to_nhwc"),
    ]
    inits = {
        "pads1": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
        "pads2": np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64),  # TF 'SAME', stride 2: after only
        "zero": np.array(0, np.float32),
        "w1": rand(8, 3, 3, 3, scale=0.3), "b1": rand(8, scale=0.1),
        "slope1": rand.uniform(0.05, 0.3, (8, 1, 1)),
        "w2": rand(8, 1, 3, 3, scale=0.3), "b2": rand(8, scale=0.1),
        "slope2": rand.uniform(0.05, 0.3, (8, 1, 1)),
        "w3": rand(6, 8, 1, 1, scale=0.3), "b3": rand(6, scale=0.1),
    }
    return make_model(nodes, {"x": ("float32", (1, 10, 10, 3))},
                      {"y": ("float32", (1, 5, 5, 6))}, inits, opset=13)


def test_tflite_converter_style_model_has_no_inner_transposes(tmp_path):
    model = tflite_style_model()
    result = compile_model_proto(model)
    g = result.graph
    inner = [n.name for n in g.nodes if n.op == "Transpose"
             and n.input(0) not in g.inputs and not set(n.outputs) & set(g.outputs)]
    assert not inner, f"Transpose kernels left inside the graph: {inner} ({ops_of(result)})"
    assert ops_of(result).count("Transpose") == 0, ops_of(result)
    check_compiled(result, model, {"x": rand(1, 10, 10, 3)}, tmp_path)
    check_against_ort(model, {"x": rand(1, 10, 10, 3)}, sanitize=True, cc="clang")


# ----------------------------------------------------------------------------- opsets
IR_VERSION_OF_OPSET = {11: 6, 13: 7, 17: 8, 21: 10}


def opset_conv_net(opset: int) -> onnx.ModelProto:
    """A small conv net written in the form each opset requires: Clip bounds and Pad as
    inputs (11+), Squeeze/Unsqueeze axes as attributes (11) or inputs (13+), ReduceMean axes
    as attribute (< 18) or input (18+), Softmax's axis semantics (coerced 2-D before 13)."""
    rand = Rand(13)  # the same weights in every opset
    axes_as_input = opset >= 13
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect", name="pad"),
        helper.make_node("Conv", ["p", "w1", "b1"], ["c1"], name="conv1"),
        helper.make_node("Clip", ["c1", "lo", "hi"], ["a1"], name="relu6"),
        helper.make_node("Conv", ["a1", "w2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1],
                         group=4, name="dw"),
        helper.make_node("Unsqueeze", ["c2", "ax0"] if axes_as_input else ["c2"], ["u"],
                         name="unsqueeze", **({} if axes_as_input else {"axes": [0]})),
        helper.make_node("Squeeze", ["u", "ax0"] if axes_as_input else ["u"], ["s"],
                         name="squeeze", **({} if axes_as_input else {"axes": [0]})),
    ]
    if opset >= 18:
        nodes.append(helper.make_node("ReduceMean", ["s", "ax23"], ["m"], keepdims=1,
                                      name="mean"))
    else:
        nodes.append(helper.make_node("ReduceMean", ["s"], ["m"], axes=[2, 3], keepdims=1,
                                      name="mean"))
    nodes += [
        helper.make_node("Flatten", ["m"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["g"], transB=1, name="fc"),
        helper.make_node("Softmax", ["g"], ["y"], axis=1, name="softmax"),
    ]
    inits = {
        "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
        "w1": rand(4, 2, 3, 3, scale=0.4), "b1": rand(4, scale=0.1),
        "lo": np.array(0, np.float32), "hi": np.array(6, np.float32),
        "w2": rand(4, 1, 3, 3, scale=0.4),
        "ax0": np.array([0], np.int64), "ax23": np.array([2, 3], np.int64),
        "fw": rand(5, 4, scale=0.5), "fb": rand(5, scale=0.1),
    }
    used = {i for n in nodes for i in n.input}
    model = make_model(nodes, {"x": ("float32", (1, 2, 7, 7))}, {"y": ("float32", (1, 5))},
                       {k: v for k, v in inits.items() if k in used}, opset=opset)
    model.ir_version = IR_VERSION_OF_OPSET[opset]
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("opset", [11, 13, 17, 21])
def test_opset_versions(opset):
    model = opset_conv_net(opset)
    x = rand(1, 2, 7, 7, scale=2.0)
    got = check_against_ort(model, {"x": x})
    ref = ort_run(opset_conv_net(17), {"x": x})  # the same function in every opset
    np.testing.assert_allclose(got["y"], ref["y"], rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- deep graphs
def test_deep_model_compiles():
    """A 400-node chain (deeper than MobileNetV2's graph): nothing in import, passes or code
    generation may recurse along the graph (Python's stack is ~1000 frames)."""
    rand = Rand(14)
    nodes, prev = [], "x"
    for i in range(200):
        nodes.append(helper.make_node("Mul", [prev, f"s{i % 4}"], [f"m{i}"], name=f"mul{i}"))
        nodes.append(helper.make_node("Tanh", [f"m{i}"], [f"t{i}"], name=f"tanh{i}"))
        prev = f"t{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"], name="out"))
    inits = {f"s{k}": rand.uniform(0.9, 1.3, (4,)) for k in range(4)}
    model = make_model(nodes, {"x": ("float32", (2, 4))}, {"y": ("float32", (2, 4))}, inits)
    check_against_ort(model, {"x": rand(2, 4)})
