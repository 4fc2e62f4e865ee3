"""`--coreml-format neuralnetwork`: a NeuralNetwork .mlmodel (iOS 13/14) that loads in
coremltools without a CoreML runtime, whose layers, evaluated in numpy
(codegen/coreml/evaluate_neuralnetwork.py), match onnxruntime; int8 weights are edgec's."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import make_model
from onnx import helper

from edgec.cli import main
from edgec.codegen.coreml.evaluate_neuralnetwork import LAYERS
from edgec.codegen.coreml.options import CoreMLOptions
from edgec.compiler import CompileOptions, compile_model
from edgec.ops.int8_scheme import quantize_weights
from edgec.quant.calibrate import snr_db
from edgec.workbench.compare import onnxruntime_outputs, random_inputs
from edgec.workbench.coreml_verify import run_package

NN = CoreMLOptions(format="neuralnetwork")


def small_net() -> onnx.ModelProto:
    """conv, relu, max pool, depthwise conv + residual add, clip, global average pool, flatten,
    gemm, softmax: the layers the zoo's NeuralNetwork specs use."""
    rng = np.random.default_rng(2)
    c = 16
    inits = {"w1": rng.standard_normal((c, 3, 3, 3)).astype(np.float32) * 0.3,
             "b1": rng.standard_normal(c).astype(np.float32) * 0.1,
             "w2": rng.standard_normal((c, 1, 3, 3)).astype(np.float32) * 0.3,
             "b2": rng.standard_normal(c).astype(np.float32) * 0.1,
             "wf": rng.standard_normal((10, c)).astype(np.float32) * 0.3,
             "bf": rng.standard_normal(10).astype(np.float32) * 0.1,
             "lo": np.array(0, np.float32), "hi": np.array(6, np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], group=c),
             helper.make_node("Add", ["c2", "p1"], ["a"]),
             helper.make_node("Clip", ["a", "lo", "hi"], ["k"]),
             helper.make_node("GlobalAveragePool", ["k"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["z"], transB=1),
             helper.make_node("Softmax", ["z"], ["y"], axis=1)]
    return make_model(nodes, {"x": ("float32", (1, 3, 12, 12))}, {"y": ("float32", (1, 10))},
                      inits)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    path = tmp_path_factory.mktemp("nn") / "small.onnx"
    onnx.save(small_net(), str(path))
    return path


@pytest.mark.parametrize("target, min_snr", [("coreml-fp32", 120.0), ("coreml-fp16", 50.0),
                                             ("coreml-int8", 30.0)])
def test_spec_loads_and_layers_match_onnxruntime(net, tmp_path, target, min_snr):
    result = compile_model(net, CompileOptions(target=target, coreml=NN))
    assert result.report["format"] == "neuralnetwork"
    assert result.report["package"] == "small.mlmodel" and "small.mlmodel" in result.files
    import coremltools as ct

    (tmp_path / "m.mlmodel").write_bytes(result.files["small.mlmodel"])
    spec = ct.models.MLModel(str(tmp_path / "m.mlmodel"), skip_model_load=True).get_spec()
    assert spec.WhichOneof("Type") == "neuralNetwork" and spec.specificationVersion <= 5
    assert result.report["deployment_target"] in ("iOS13", "iOS14")
    assert set(result.report["nn_layers"]) >= {"convolution", "pooling", "add",
                                               "innerProduct", "softmaxND"}
    assert [o.name for o in spec.description.output] == ["y"]
    assert list(spec.description.output[0].type.multiArrayType.shape) == [1, 10]
    samples = [random_inputs(result.source_graph, s) for s in range(4)]
    got = np.concatenate([o["y"].ravel() for o in run_package(result, samples, tmp_path)])
    ref = np.concatenate([onnxruntime_outputs(net, s)["y"].ravel() for s in samples])
    assert snr_db(ref, got) >= min_snr, target
    if target == "coreml-fp32":
        assert np.abs(got - ref).max() <= 1e-5 * np.abs(ref).max()


def test_int8_weights_are_edgecs(net):
    result = compile_model(net, CompileOptions(target="coreml-int8", coreml=NN))
    spec = result.coreml.mlmodel.get_spec()
    conv = next(lay.convolution for lay in spec.neuralNetwork.layers
                if lay.WhichOneof("layer") == "convolution")
    w1 = next(n for n in small_net().graph.initializer if n.name == "w1")
    q, scale = quantize_weights(onnx.numpy_helper.to_array(w1), 0)
    wp = conv.weights
    stored = np.frombuffer(wp.rawValue, np.uint8).astype(np.int16) - 128
    assert wp.quantization.numberOfBits == 8 and not len(wp.floatValue)
    np.testing.assert_array_equal(stored.reshape(q.shape), q)
    np.testing.assert_array_equal(np.asarray(wp.quantization.linearQuantization.scale,
                                             np.float32), np.asarray(scale, np.float32))


def test_verify_cli_passes_and_a_wrong_layer_fails(net, capsys, monkeypatch):
    argv = ["verify", str(net), "-t", "coreml-fp32", "--coreml-format", "neuralnetwork"]
    assert main(argv) == 0
    assert "PASS" in capsys.readouterr().out
    real = LAYERS["innerProduct"]

    def off(p, xs):  # one logit 1e-3 x max off: outside the fp32 band
        y = np.array(real(p, xs), np.float32)
        y.flat[5] += 1e-3 * np.abs(y).max()
        return y

    monkeypatch.setitem(LAYERS, "innerProduct", off)
    assert main(argv) == 1
    assert "FAIL" in capsys.readouterr().out


def test_coreml_target_with_neuralnetwork_is_one_line(net, tmp_path, capsys):
    code = main(["compile", str(net), "-t", "coreml-fp16", "--coreml-format", "neuralnetwork",
                 "--coreml-target", "iOS16", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--coreml-target" in err
