"""verify's fp32 verdict (edgec/workbench/verify.py): each output within its band, max(8 x
onnxruntime's optimised-vs-unoptimised spread, rtol x max |ref|, 1e-7 absolute). Deep, ill-conditioned models
like real detectors and pose nets pass where a fixed 1e-4 fails them; deliberately wrong
kernels (a one-element shift, a wrong border row, a wrong bias on one channel), injected into
the generated C, still fail on those models and on the zoo."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import ZOO_DIR
from onnx import TensorProto, helper, numpy_helper

from edgec.compiler import CompileOptions, compile_model
from edgec.workbench.compare import compare_outputs, random_inputs
from edgec.workbench.verify import run_compiled

TARGETS = ["generic-fp32", "x86_64-fp32"]


def deep_model(head: str, depth: int = 30, channels: int = 16, size: int = 32,
               seed: int = 0) -> onnx.ModelProto:
    """`depth` x (3x3 Conv -> BatchNormalization -> Relu), then a head: 'ocr' a 1x1 Conv to one
    channel with bias -11 and a Sigmoid (outputs ~1e-5, like a text detector on random input),
    'pose' a 1x1 Conv to 17 heatmaps. onnxruntime folds the BatchNorms only when optimising,
    so its two runs differ by float32 rounding amplified over the depth."""
    rng = np.random.default_rng(seed)
    nodes, inits, x, cin = [], [], "x", 3
    for i in range(depth):
        w = rng.standard_normal((channels, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))
        arrays = {f"w{i}": w, f"b{i}": rng.standard_normal(channels) * 0.1,
                  f"g{i}": rng.uniform(0.5, 1.5, channels), f"be{i}": rng.standard_normal(
                      channels) * 0.1, f"m{i}": rng.standard_normal(channels) * 0.1,
                  f"v{i}": rng.uniform(0.5, 2.0, channels)}
        inits += [numpy_helper.from_array(a.astype(np.float32), k) for k, a in arrays.items()]
        nodes += [helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
                  helper.make_node("BatchNormalization", [f"c{i}", f"g{i}", f"be{i}", f"m{i}",
                                                          f"v{i}"], [f"n{i}"]),
                  helper.make_node("Relu", [f"n{i}"], [f"r{i}"])]
        x, cin = f"r{i}", channels
    out_ch = 1 if head == "ocr" else 17
    wh = rng.standard_normal((out_ch, channels, 1, 1)) * np.sqrt(1.0 / channels)
    bh = np.full(out_ch, -11.0) if head == "ocr" else np.zeros(out_ch)
    inits += [numpy_helper.from_array(wh.astype(np.float32), "wh"),
              numpy_helper.from_array(bh.astype(np.float32), "bh")]
    nodes.append(helper.make_node("Conv", [x, "wh", "bh"], ["h"]))
    if head == "ocr":
        nodes.append(helper.make_node("Sigmoid", ["h"], ["y"]))
    else:
        nodes[-1].output[0] = "y"
    graph = helper.make_graph(
        nodes, f"deep_{head}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, out_ch, size, size])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


# ------------------------------------------------------------------ deliberately wrong kernels
def _layer_bounds(c_text: str, layer: int) -> tuple[int, tuple[int, ...]]:
    """(offset of the closing brace of layer `layer`'s function, its output shape)."""
    m = re.search(rf"/\* \w+ '[^']*': float32\[([0-9x]+)\] <-[^\n]*\*/\n"
                  rf"static \w+ void layer_{layer:03d}_\w+\([^)]*\)\n\{{", c_text)
    assert m, f"layer {layer} not found in the generated C"
    end = c_text.index("\n}\n", m.end())
    return end, tuple(int(d) for d in m.group(1).split("x"))


def inject(c_text: str, layer: int, bug: str) -> str:
    """The generated C with `bug` appended to layer `layer` (its output is y0, channels last):
    'shift' moves the output one element along, 'pad' copies the second output row over the
    first (as a wrong top padding would), 'bias' adds 0.05 to channel 1 everywhere."""
    end, shape = _layer_bounds(c_text, layer)
    numel, channels = int(np.prod(shape)), shape[-1]
    row = int(np.prod(shape[2:]))
    code = {
        "shift": f"memmove(y0 + 1, y0, ({numel}u - 1u) * sizeof(float));",
        "pad": f"memcpy(y0, y0 + {row}u, {row}u * sizeof(float));",
        "bias": f"for (size_t i = 1; i < {numel}u; i += {channels}u) y0[i] += 0.05f;",
    }[bug]
    return c_text[:end] + "\n    { " + code + " }" + c_text[end:]


def verdicts(model_path: Path, target: str, bugs=(None,), layer: int = 0,
             seed: int = 0) -> dict:
    """edgec verify's fp32 result on `model_path` for each bug (None: the C as generated),
    compiling once and editing the C per bug."""
    result = compile_model(model_path, CompileOptions(target=target))
    name = next(k for k in result.files if k.endswith(".c") and k != "edgec_harness.c"
                and not k.endswith("_weights.c"))
    clean = result.files[name]
    samples = [random_inputs(result.source_graph, seed)]
    out = {}
    for bug in bugs:
        result.files[name] = inject(clean, layer, bug) if bug else clean
        with tempfile.TemporaryDirectory(prefix="edgec-band-") as tmp:
            compiled = run_compiled(result, samples, Path(tmp))
        out[bug] = compare_outputs(result, model_path, samples, compiled)
    return out


@pytest.fixture(scope="module")
def deep_models(tmp_path_factory) -> dict[str, Path]:
    """The two deep models as files."""
    d = tmp_path_factory.mktemp("deep")
    paths = {}
    for head in ("ocr", "pose"):
        paths[head] = d / f"deep_{head}.onnx"
        onnx.save(deep_model(head), paths[head])
    return paths


@pytest.mark.parametrize("target", ["generic-fp32",
                                    pytest.param("x86_64-fp32", marks=pytest.mark.slow)])
@pytest.mark.parametrize("head", ["ocr", "pose"])
def test_deep_models_pass_and_wrong_kernels_fail(deep_models, head, target):
    """Measured (both targets): the OCR-like sigmoid head (outputs ~2e-5) errs by 4.4e-3
    relative, onnxruntime against itself by 4.4e-3: the old fixed 1e-4 said MISMATCH. The
    pose-like heatmap stays at 2e-6 here (band: the 1e-4 floor; docs/hosts.md).

    Bugs at layer 12 fail on the pose-like model. On the OCR-like one (band 3.5e-2, since
    onnxruntime disagrees with itself by 4.4e-3 there) a wrong border row errs 2.5e-2 and a
    +0.05 bias on one of 16 channels 5.2e-3 (no bug: 4.4e-3): the sigmoid head damps them
    below what the model's own float sensitivity allows, so only the shift must fail there."""
    bugs = (None, "shift") if head == "ocr" else (None, "shift", "pad", "bias")
    res = verdicts(deep_models[head], target, bugs, layer=12)
    out = res[None].outputs[0]
    assert res[None].ok, out.as_dict()
    assert out.ort_spread_rel > 0 and out.band_rel >= 8 * out.ort_spread_rel, out.as_dict()
    assert "band_rel" in res[None].as_dict()["outputs"][0]
    if head == "ocr":  # a case the old verdict (max_rel_err <= 1e-4) failed
        assert out.max_rel_err > 1e-4, out.as_dict()
    for bug in bugs[1:]:
        assert not res[bug].ok, (bug, res[bug].outputs[0].as_dict())


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("model,layer", [("resnet8", 4), ("dscnn", 5)])
def test_wrong_kernels_fail_on_the_zoo(model, layer, target):
    res = verdicts(ZOO_DIR / f"{model}.onnx", target, (None, "shift", "pad", "bias"), layer)
    assert res[None].ok, res[None].outputs[0].as_dict()
    for bug in ("shift", "pad", "bias"):
        assert not res[bug].ok, (bug, res[bug].outputs[0].as_dict())


@pytest.mark.slow
def test_wrong_kernels_fail_on_mobilenetv2(zoo_dir):
    """The deepest zoo model (52 convolutions): correct C passes, and each bug at layer 20
    still shows at the logits."""
    res = verdicts(zoo_dir / "mobilenetv2.onnx", "generic-fp32",
                   (None, "shift", "pad", "bias"), layer=20)
    assert res[None].ok, res[None].outputs[0].as_dict()
    for bug in ("shift", "pad", "bias"):
        assert not res[bug].ok, (bug, res[bug].outputs[0].as_dict())


def test_band_is_the_largest_of_spread_relative_and_absolute_floors():
    """The formula of edgec/workbench/verify.py on synthetic outputs (no C involved)."""
    from edgec.workbench.compare import ABS_FLOOR, SPREAD_FACTOR, compare

    ref = np.linspace(-1.0, 1.0, 101)
    spread = 1e-3
    ref2 = ref.copy()
    ref2[7] += spread
    for err, ok in ((0.99 * SPREAD_FACTOR * spread, True), (1.01 * SPREAD_FACTOR * spread, False)):
        got = ref.copy()
        got[50] += err
        c = compare("y", got, ref, 1e-4, ref_unoptimized=ref2)
        assert c.ok is ok and np.isclose(c.band_rel, SPREAD_FACTOR * spread), c.as_dict()
        assert np.isclose(c.ort_spread_rel, spread)
    got = ref + 0.9e-4
    assert compare("y", got, ref, 1e-4, ref_unoptimized=ref).ok  # no spread: the rtol floor
    assert not compare("y", ref + 1.1e-4, ref, 1e-4, ref_unoptimized=ref).ok
    tiny = ref * 1e-9  # outputs far below float32 resolution of order-1 values
    assert compare("y", tiny + 0.9 * ABS_FLOOR, tiny, 1e-4, ref_unoptimized=tiny).ok
    assert not compare("y", tiny + 1.1 * ABS_FLOOR, tiny, 1e-4, ref_unoptimized=tiny).ok
    assert compare("y", ref + 1.1e-4, ref, 1e-4).ok is False  # no unoptimised run: plain rtol


def test_verify_cli_prints_and_reports_the_band(capsys):
    import json

    from edgec.cli import main

    model = str(ZOO_DIR / "dscnn.onnx")
    assert main(["verify", model, "-t", "generic-fp32", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["outputs"][0]
    assert row["ok"] and row["band_rel"] >= 1e-4 and row["ort_self_spread_rel"] >= 0, row
    assert row["max_rel_err"] <= row["band_rel"]
    assert main(["verify", model, "-t", "generic-fp32"]) == 0
    out = capsys.readouterr().out
    assert "band" in out and "ort self-spread" in out and "within band" in out, out
