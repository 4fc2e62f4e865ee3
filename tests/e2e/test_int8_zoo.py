"""int8 on the model zoo, through the generated C: bit-exact with the int8 interpreter, output
SNR against onnxruntime fp32, agreement with onnxruntime running the exported QDQ model,
digits accuracy on real data, weights size and calibration time of MobileNetV2.

The measures come from tools/int8_accuracy.py (which also writes docs/benchmarks.md).
"""

from __future__ import annotations

import importlib.util
import time

import numpy as np
import pytest
from helpers import REPO

from edgec.compiler import CompileOptions
from edgec.frontend.onnx import load_onnx
from edgec.quant import calibrate, random_calibration_inputs
from edgec.workbench.verify import verify_model

SMALL = ["resnet8", "dscnn", "digits_cnn"]


def tool():
    """tools/int8_accuracy.py as a module."""
    spec = importlib.util.spec_from_file_location("int8_accuracy",
                                                  REPO / "tools" / "int8_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model", SMALL)
def test_small_zoo_int8_snr_and_qdq_agreement(zoo_dir, model):
    row = tool().evaluate(model, calib_count=32, eval_count=4, with_ort_int8=False)
    if model != "digits_cnn":  # digits: N(0, 1) is not its data; scored on real data below
        assert row["snr_db"] >= 20.0, row
    # onnxruntime running edgec's exported QDQ model (float requantisation, one rounding)
    # against edgec (TFLite's double rounding, docs/int8.md): measured within 1 LSB on 92.5 %
    # (resnet8), 100 %, 100 % of the logits, and the same accuracy against fp32 within
    # 1.1 dB (resnet8: onnxruntime's single rounding 35.8 dB, edgec 34.7 dB). A wrong scale
    # or zero point in the export costs tens of dB.
    assert row["qdq_within_1lsb"] >= 0.9, row
    assert abs(row["qdq_snr_db"] - row["snr_db"]) <= 1.5, row


@pytest.mark.parametrize("target", ["generic-int8", "x86_64-int8"])
def test_int8_verify_is_bit_exact(zoo_dir, target):
    for model in ("resnet8", "dscnn"):
        res = verify_model(zoo_dir / f"{model}.onnx", CompileOptions(target=target), seed=5)
        assert res.ok and res.exact, [o.as_dict() for o in res.outputs]


def test_int8_zoo_under_sanitizers_and_clang(zoo_dir):
    res = verify_model(zoo_dir / "resnet8.onnx", CompileOptions(target="generic-int8"),
                       sanitize=True, seed=6)
    assert res.ok
    res = verify_model(zoo_dir / "dscnn.onnx", CompileOptions(target="generic-int8"),
                       cc="clang", seed=7)
    assert res.ok


def test_digits_int8_accuracy_on_real_data(zoo_dir):
    acc = tool().digits_accuracy()
    assert acc["samples"] == 540
    assert acc["fp32"] - acc["int8"] <= 0.5, acc


@pytest.mark.slow
def test_mobilenetv2_int8(zoo_dir):
    res = verify_model(zoo_dir / "mobilenetv2.onnx", CompileOptions(target="generic-int8"),
                       seed=8)
    assert res.ok and res.exact  # bit-exact with the int8 interpreter
    row = tool().evaluate("mobilenetv2", eval_count=4, with_ort_int8=False)
    # 0.2608 measured: int8 weights and int32 biases, plus one multiplier and one int8 shift
    # per output channel (TFLite's per-channel requantisation keeps each channel's shift)
    assert row["weights_ratio"] <= 0.262, row
    if row["snr_db"] < 20.0 or row["qdq_within_1lsb"] < 0.999:
        # The untrained zoo MobileNetV2 amplifies any perturbation (docs/int8.md): onnxruntime
        # running the same QDQ model with and without its optimisations agrees within 1 LSB
        # on about half of the outputs only, and its own int8 reaches the same SNR as edgec.
        pytest.xfail(f"known miss on the chaotic zoo MobileNetV2 (docs/int8.md): {row}")


@pytest.mark.slow
def test_trained_mobilenetv2_int8(zoo_dir, tmp_path):
    """The trained MobileNetV2 (docs/zoo.md), measured at its logits on images in [0, 1):
    bit-exact C, SNR >= 20 dB against onnxruntime fp32, and agreement with onnxruntime on the
    exported QDQ model at least as close as onnxruntime's two executions of that model."""
    t = tool()
    logits = t.logits_model(zoo_dir / "mobilenetv2_trained.onnx", tmp_path)
    assert logits != zoo_dir / "mobilenetv2_trained.onnx"  # its Softmax was removed
    res = verify_model(logits, CompileOptions(target="x86_64-int8"), seed=8)
    assert res.ok and res.exact, [o.as_dict() for o in res.outputs]
    row = t.evaluate("mobilenetv2_trained", eval_count=4, with_ort_int8=False)
    assert row["snr_db"] >= 20.0, row
    assert row["weights_ratio"] <= 0.27, row  # 5-class head: Gemm biases weigh more here
    # qdq_within_1lsb: against onnxruntime unfused (float ops between Q and DQ, one rounding;
    # edgec rounds twice as TFLite does), the same on every host: measured 0.50 on these 4
    # samples (0.80 with the old single rounding). Accuracy against fp32 on these 20 logits:
    # edgec 27.2 dB, onnxruntime on the exported QDQ model 29.7 dB (with 32 calibration
    # samples instead of 100: 28.5 vs 27.4 dB); the bound below is that spread, a scale or
    # zero-point error in the export costs far more.
    # onnxruntime's fused int8 is no yardstick: against its unfused self it agrees on 0.85
    # with VNNI but 0.16 with AVX2 (docs/hosts.md).
    assert row["qdq_within_1lsb"] >= 0.4, row
    assert abs(row["qdq_snr_db"] - row["snr_db"]) <= 3.0, row
    if row["qdq_within_1lsb"] < 0.999:
        pytest.xfail("onnxruntime's float ops between Q and DQ land on the other side of a "
                     "rounding tie from edgec's integer arithmetic now and then; 1-LSB steps "
                     f"compound over 52 layers: {row}")


@pytest.mark.slow
def test_mobilenetv2_calibration_time(zoo_dir):
    from edgec.compiler import run_pipeline
    from edgec.targets import get_target

    g = run_pipeline(load_onnx(zoo_dir / "mobilenetv2.onnx"), get_target("generic-int8"),
                     CompileOptions())
    samples = random_calibration_inputs(g, 100, seed=1)
    t0 = time.perf_counter()
    cal = calibrate(g, samples)
    assert time.perf_counter() - t0 < 60.0
    assert cal.batched and cal.samples == 100
    assert all(np.isfinite(s.max) for s in cal.stats.values())


def _ort_unfused(model, feeds: dict) -> dict:
    """onnxruntime without graph optimisations, every output by name."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so)
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def layer_agreement(model_path, input_name, shape, calib_count=8):
    """Per int8 layer: (op, share of its elements that differ, largest difference in LSB)
    between edgec's int8 reference and onnxruntime running the exported QDQ model, each layer
    on edgec's own int8 inputs (every QuantizeLinear output exposed, and every consumer of one
    fed edgec's value of it), so that a difference is that layer's and does not spread.

    onnxruntime runs it without graph optimisations (float DequantizeLinear -> float op ->
    QuantizeLinear): its fused integer kernels change bits with the host (VNNI vs saturating
    vpmaddubsw; measured on resnet8 under `qemu-x86_64 -cpu Haswell`: 7 of 15 layers differ,
    the last by 30%; docs/hosts.md). Unfused, a float32 sum can land on the other side of a
    rounding tie from edgec's exact integer sum: rare 1-LSB differences, on any host."""
    import onnx

    from edgec.compiler import compile_model
    from edgec.interp import run_graph
    from edgec.quant.qdq_export import qdq_model

    rng = np.random.default_rng(1)
    calib = [{input_name: rng.standard_normal(shape).astype(np.float32)}
             for _ in range(calib_count)]
    res = compile_model(model_path, CompileOptions(target="generic-int8", calib_samples=calib))
    model = qdq_model(res.graph)
    quantized = [n.output[0] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    exposed = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=q) for q in quantized if q not in exposed)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    shapes = {k: v.shape for k, v in _ort_unfused(model, {input_name: x}).items()}
    env = run_graph(res.graph, {input_name: x}, keep_all=True)

    def onnx_layout(name):  # edgec keeps 4-D activations channels-last
        a = env[name]
        return np.moveaxis(a, -1, 1) if a.shape != shapes[name] and a.ndim == 4 else a

    feeds = {input_name: x}
    for q in quantized:
        feeds[q + ".edgec"] = onnx_layout(q)
        model.graph.input.append(onnx.helper.make_tensor_value_info(
            q + ".edgec", onnx.helper.np_dtype_to_tensor_dtype(env[q].dtype), shapes[q]))
    for n in model.graph.node:
        if n.op_type != "QuantizeLinear":
            n.input[:] = [i + ".edgec" if i + ".edgec" in feeds else i for i in n.input]
    ort_out = _ort_unfused(model, feeds)
    rows = []
    for node in res.graph.nodes:
        v = node.outputs[0]
        if v.name in ort_out and env[v.name].dtype == np.int8:
            diff = np.abs(onnx_layout(v.name).astype(int) - ort_out[v.name].astype(int))
            rows.append((node.op, float(np.mean(diff != 0)), int(diff.max())))
    return rows


def test_int8_layers_agree_with_onnxruntime_layer_by_layer(zoo_dir):
    """Each layer on edgec's inputs: onnxruntime's float requantisation (one rounding) and
    edgec's (TFLite's double rounding, docs/int8.md) differ where the first of edgec's
    roundings lands on a tie of the second: measured at most 0.24 % of a layer's elements,
    never by more than 1 LSB (the average pool, TFLite MEAN's folded multiplier: 2 of 64); a
    wrong rounding or requantisation in edgec changes most of a layer."""
    rows = layer_agreement(zoo_dir / "resnet8.onnx", "input", (1, 3, 32, 32))
    assert len(rows) >= 8
    assert rows[0] == ("QuantizeLinear", 0.0, 0), rows
    assert all(lsb <= 1 for _, _, lsb in rows), rows
    assert all(frac <= (0.1 if op == "QAveragePool" else 5e-3) for op, frac, _ in rows), rows


@pytest.mark.slow
def test_mobilenetv2_layers_agree_with_onnxruntime(zoo_dir):
    """The same arithmetic as onnxruntime layer by layer, up to the rounding: the end-to-end
    miss recorded above is the network amplifying single-LSB rounding differences (edgec
    rounds twice as TFLite does, onnxruntime once), not a scale error. Measured on all 65
    int8 layers: at most 0.4 % of a layer's elements differ, by 1 LSB, except the global
    average pool: TFLite's MEAN folds 1/49 into its multiplier by an integer division and
    rounds twice, onnxruntime divides in float (measured 13.4 % of the 1,280 averages differ,
    by 1 LSB; edgec equals LiteRT's MEAN there, tests/tflite)."""
    rows = layer_agreement(zoo_dir / "mobilenetv2.onnx", "input", (1, 3, 224, 224))
    assert len(rows) >= 60 and rows[0] == ("QuantizeLinear", 0.0, 0), rows[:4]
    assert all(lsb <= 1 for _, _, lsb in rows), rows
    assert all(frac <= (0.2 if op == "QGlobalAveragePool" else 5e-3) for op, frac, _ in rows), \
        rows
