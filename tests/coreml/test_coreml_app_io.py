"""Image input (--coreml-image-input, --scale, --bias, --color-layout) and classifier labels
(--labels) of an ML Program: the spec declares them, the program turns pixels into the
model's tensor with the bias on the right channels, and the evaluated package matches
onnxruntime on pixel inputs; misuse is a one-line error."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import make_model
from onnx import helper

from edgec.cli import main
from edgec.codegen.coreml.evaluate import evaluate, load_package
from edgec.codegen.coreml.options import CoreMLOptions
from edgec.compiler import CompileOptions, compile_model
from edgec.quant.calibrate import snr_db
from edgec.workbench.compare import onnxruntime_outputs
from edgec.workbench.coreml_verify import image_samples, package_feeds, verify_coreml

LABELS = ["cat", "dog", "bird", "fish", "frog"]
SCALE, BIAS_RGB = 1 / 128, (-1.0, -0.5, 0.25)


def classifier_net() -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["image", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["z"], transB=1),
             helper.make_node("Softmax", ["z"], ["probs"], axis=1)]
    return make_model(nodes, {"image": ("float32", (1, 3, 8, 8))},
                      {"probs": ("float32", (1, 5))},
                      {"w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
                       "b": rng.standard_normal(4).astype(np.float32),
                       "wf": rng.standard_normal((5, 4)).astype(np.float32),
                       "bf": rng.standard_normal(5).astype(np.float32)})


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    d = tmp_path_factory.mktemp("appio")
    onnx.save(classifier_net(), str(d / "cls.onnx"))
    (d / "labels.txt").write_text("\n".join(LABELS) + "\n")
    return d / "cls.onnx", d / "labels.txt"


def _options(labels, layout="BGR", target="coreml-fp16"):
    return CompileOptions(target=target, coreml=CoreMLOptions(
        image_input="image", image_scale=SCALE, image_bias=BIAS_RGB, color_layout=layout,
        labels=str(labels)))


def test_image_classifier_package(paths, tmp_path):
    model, labels = paths
    result = compile_model(model, _options(labels))
    spec = result.coreml.mlmodel.get_spec()
    (inp,) = spec.description.input
    assert inp.type.WhichOneof("Type") == "imageType"
    assert inp.type.imageType.colorSpace == inp.type.imageType.BGR
    assert (inp.type.imageType.width, inp.type.imageType.height) == (8, 8)
    outs = {o.name: o.type.WhichOneof("Type") for o in spec.description.output}
    assert outs == {"classLabel": "stringType", "classLabel_probs": "dictionaryType"}
    image = result.report["inputs"][0]["image"]
    assert image["bias"] == [0.25, -0.5, -1.0]  # BGR: channel 0 is blue, the third number
    out = tmp_path / "pkg"
    from edgec.workbench.coreml_verify import write_package

    prog = load_package(write_package(result, out))
    adds = [op for op in prog.functions["main"].operations if op.op_type == "add"]
    np.testing.assert_allclose(np.asarray(adds[0].inputs["y"].val).reshape(-1),
                               image["bias"], rtol=1e-3)  # fp16 program: fp16 constant
    # pixels in, the model's tensor as onnxruntime sees it: label and probabilities agree
    samples = image_samples(result.report, result.source_graph, 0, 4)
    got_probs, ref_probs = [], []
    for s in samples:
        ref = onnxruntime_outputs(model, s)["probs"].reshape(-1)
        got = evaluate(prog, package_feeds(result.report, s))
        assert got["classLabel"] == LABELS[int(np.argmax(ref))]
        got_probs.append(got["classLabel_probs"])
        ref_probs.append(ref)
        px = package_feeds(result.report, s)["image"]
        assert px.min() >= -0.01 and px.max() <= 255.01  # the package sees 0..255 pixels
    assert snr_db(np.concatenate(ref_probs), np.concatenate(got_probs)) >= 50


@pytest.mark.parametrize("layout", ["RGB", "BGR"])
def test_verify_passes_on_pixel_inputs(paths, layout):
    model, labels = paths
    res = verify_coreml(model, _options(labels, layout, "coreml-fp32"))
    assert res.ok and res.outputs[0].max_rel_err < 1e-5


@pytest.mark.parametrize("extra, words", [
    (["--labels", "{short}"], "has 3 labels"),
    (["--coreml-image-input", "nope"], "no such input"),
    (["--coreml-image-input", "image", "--coreml-format", "neuralnetwork"], "ML Programs only"),
    (["--labels", "{labels}", "--coreml-format", "neuralnetwork"], "ML Programs only"),
    (["--coreml-image-input", "image", "--bias", "1,2"], "three numbers"),
])
def test_misuse_is_one_line(paths, tmp_path, capsys, extra, words):
    model, labels = paths
    short = tmp_path / "short.txt"
    short.write_text("a\nb\nc\n")
    extra = [e.format(short=short, labels=labels) for e in extra]
    code = main(["compile", str(model), "-t", "coreml-fp32", "-o", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and words in err, err
