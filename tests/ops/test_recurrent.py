"""LSTM, GRU and RNN: the reference interpreter and the generated C against onnxruntime
(layout 1, which onnxruntime refuses, against onnx.reference), every attribute the ops take,
100-step sequences, streaming in chunks with the state fed back, and a torch.nn.LSTM export;
on the portable kernel and on the x86_64 / arm64 kernels built on the GEMM micro-kernels."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from helpers import check_against_ort, compile_model_proto, ort_run, run_c
from onnx import TensorProto, helper, numpy_helper

from edgec.frontend.onnx import import_model
from edgec.interp import run_graph

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def recurrent_model(op: str, seq=5, batch=3, inp=4, hidden=6, direction="forward", layout=0,
                    lens=True, init=True, peep=True, outputs=("Y", "Y_h", "Y_c"), seed=0,
                    r_scale=0.5, **attrs) -> tuple[onnx.ModelProto, dict]:
    """One recurrent node with random weights, and feeds (sequence_lens include 0 and S)."""
    rng = np.random.default_rng(seed)
    g, d = GATES[op], 2 if direction == "bidirectional" else 1
    xs = (seq, batch, inp) if layout == 0 else (batch, seq, inp)
    st = (d, batch, hidden) if layout == 0 else (batch, d, hidden)
    inits = {"W": rng.standard_normal((d, g * hidden, inp)) * 0.5,
             "R": rng.standard_normal((d, g * hidden, hidden)) * r_scale,
             "B": rng.standard_normal((d, 2 * g * hidden)) * 0.3}
    peepholes = rng.standard_normal((d, 3 * hidden)) * 0.5  # drawn first: same for any seq
    graph_in = [helper.make_tensor_value_info("X", TensorProto.FLOAT, xs)]
    feeds = {"X": rng.standard_normal(xs).astype(np.float32)}
    names = ["X", "W", "R", "B", "", ""]
    if lens:
        names[4] = "lens"
        graph_in.append(helper.make_tensor_value_info("lens", TensorProto.INT32, (batch,)))
        feeds["lens"] = np.array([seq, 0, *rng.integers(1, seq + 1, batch - 2)], np.int32)
    if init:
        names[5] = "h0"
        graph_in.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, st))
        feeds["h0"] = rng.standard_normal(st).astype(np.float32)
    if op == "LSTM":
        names.append("c0" if init else "")
        if init:
            graph_in.append(helper.make_tensor_value_info("c0", TensorProto.FLOAT, st))
            feeds["c0"] = rng.standard_normal(st).astype(np.float32)
        if peep:
            names.append("P")
            inits["P"] = peepholes
    outs = list(outputs if op == "LSTM" else outputs[:2])
    node = helper.make_node(op, names, outs, hidden_size=hidden, direction=direction,
                            layout=layout, **attrs)
    graph = helper.make_graph(
        [node], "rnn", graph_in,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outs if n],
        [numpy_helper.from_array(a.astype(np.float32), n) for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model, feeds


CASES = [
    ("RNN", {}),
    ("RNN", {"direction": "bidirectional", "activations": ["Affine", "ScaledTanh"],
             "activation_alpha": [0.5, 0.7], "activation_beta": [0.1, 1.3]}),
    ("RNN", {"activations": ["LeakyRelu"], "activation_alpha": [0.3], "clip": 0.8}),
    ("GRU", {}),
    ("GRU", {"linear_before_reset": 1, "direction": "reverse"}),
    ("GRU", {"direction": "bidirectional", "clip": 0.5,
             "activations": ["HardSigmoid", "Elu", "Sigmoid", "Softplus"],
             "activation_alpha": [0.3, 0.7], "activation_beta": [0.4]}),
    ("LSTM", {}),
    ("LSTM", {"direction": "bidirectional", "clip": 0.7}),
    ("LSTM", {"direction": "reverse", "input_forget": 1, "peep": False}),
    ("LSTM", {"init": False, "lens": False, "outputs": ("", "Y_h", "")}),
    ("LSTM", {"activations": ["Sigmoid", "Tanh", "Relu"], "clip": 0.3}),
]


@pytest.mark.parametrize("op, kw", CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(CASES)])
def test_reference_matches_onnxruntime(op, kw):
    model, feeds = recurrent_model(op, **kw)
    got = run_graph(import_model(model, {}, name="t"), feeds)
    for name, ref in ort_run(model, feeds).items():
        np.testing.assert_allclose(got[name], ref, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("op, kw", CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(CASES)])
def test_c_matches_onnxruntime(op, kw):
    """Portable C, built with ASan/UBSan."""
    model, feeds = recurrent_model(op, **kw)
    check_against_ort(model, feeds, "generic-fp32", sanitize=True)


SIMD = ["x86_64-fp32", "arm64-fp32"]
# The GEMM micro-kernels each SIMD target's recurrent kernel must call.
SIMD_KERNELS = {"x86_64-fp32": ("edgec_f32_tile_fma(", "edgec_f32_gemv_panel("),
                "arm64-fp32": ("edgec_f32_tile(",)}


def _skip_without(target):
    if target.startswith("arm64") and not all(map(shutil.which, ("aarch64-linux-gnu-gcc",
                                                                 "qemu-aarch64"))):
        pytest.skip("needs gcc-aarch64-linux-gnu and qemu-user")


@pytest.mark.parametrize("target", SIMD)
@pytest.mark.parametrize("op, kw", CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(CASES)])
def test_c_on_simd_targets(op, kw, target):
    """The x86_64 / arm64 kernels (input and recurrent projections on the GEMM micro-kernels)
    against onnxruntime, every attribute case."""
    _skip_without(target)
    model, feeds = recurrent_model(op, **kw)
    check_against_ort(model, feeds, target)


@pytest.mark.parametrize("op, kw", [CASES[5], CASES[7]], ids=["GRU", "LSTM"])
def test_x86_kernel_under_sanitizers(op, kw):
    """ASan/UBSan on the x86_64 kernel (stack blocks of projections, whole tiles)."""
    model, feeds = recurrent_model(op, **kw)
    check_against_ort(model, feeds, "x86_64-fp32", sanitize=True)


@pytest.mark.parametrize("target", SIMD)
@pytest.mark.parametrize("op", ["RNN", "GRU", "LSTM"])
def test_simd_targets_run_the_gemm_kernels(op, target):
    """The SIMD targets select the GEMM-based kernel, not the portable loops; a computed W
    (not a constant) falls back to the portable kernel."""
    model, _ = recurrent_model(op)
    src = compile_model_proto(model, target).files["test.c"]
    assert all(k in src for k in SIMD_KERNELS[target]), target
    assert "input projections" in src
    w_input = onnx.ModelProto()
    w_input.CopyFrom(model)
    w_init = next(i for i in w_input.graph.initializer if i.name == "W")
    w_input.graph.input.append(helper.make_tensor_value_info("W", TensorProto.FLOAT,
                                                             list(w_init.dims)))
    w_input.graph.initializer.remove(w_init)
    assert "input projections" not in compile_model_proto(w_input, target).files["test.c"]


@pytest.mark.parametrize("target", SIMD)
@pytest.mark.parametrize("op, kw", [("RNN", {}), ("GRU", {}), ("GRU", {"linear_before_reset": 1}),
                                    ("LSTM", {}), ("LSTM", {"peep": False})],
                         ids=["RNN", "GRU", "GRU-lbr", "LSTM-peep", "LSTM"])
def test_simd_hundred_steps_bidirectional(op, kw, target):
    """100 steps, both directions, sequence_lens (100, 0, 37), hidden 40: the input
    projection runs in several blocks of steps and a short last tile. R is scaled to keep
    the recurrence contractive: with R ~ N(0, 0.5^2) a 40-unit tanh RNN is chaotic, and after
    100 steps onnxruntime, the float64 reference and the portable C differ by up to 0.04."""
    _skip_without(target)
    model, feeds = recurrent_model(op, seq=100, batch=3, inp=24, hidden=40,
                                   direction="bidirectional", seed=5, r_scale=0.1, **kw)
    feeds["lens"] = np.array([100, 0, 37], np.int32)
    check_against_ort(model, feeds, target)


@pytest.mark.parametrize("target", ["generic-fp32", *SIMD])
@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_batch_major_layout_matches_onnx_reference(op, target):
    """layout = 1 (onnxruntime refuses it): onnx.reference is the oracle."""
    from onnx.reference import ReferenceEvaluator

    _skip_without(target)
    model, feeds = recurrent_model(op, layout=1, lens=False, direction="bidirectional")
    names = [o.name for o in model.graph.output]
    ref = dict(zip(names, ReferenceEvaluator(model).run(None, feeds)))
    got = run_c(model, feeds, target)
    for name in names:
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("target", ["generic-fp32", *SIMD])
@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_hundred_steps_streamed_in_chunks(op, target):
    """100 steps at once (onnxruntime) == ten calls of 10 steps to the C, each fed the
    previous call's Y_h (and Y_c) as its initial state: the streaming pattern."""
    _skip_without(target)
    whole, feeds = recurrent_model(op, seq=100, batch=1, inp=8, hidden=16, lens=False, seed=3)
    ref = ort_run(whole, feeds)
    chunk, _ = recurrent_model(op, seq=10, batch=1, inp=8, hidden=16, lens=False, seed=3)
    state = {"h0": feeds["h0"]} | ({"c0": feeds["c0"]} if op == "LSTM" else {})
    ys = []
    for k in range(10):
        out = run_c(chunk, {"X": feeds["X"][10 * k:10 * (k + 1)], **state}, target)
        ys.append(out["Y"])
        state = {"h0": out["Y_h"]} | ({"c0": out["Y_c"]} if op == "LSTM" else {})
    np.testing.assert_allclose(np.concatenate(ys), ref["Y"], rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(state["h0"], ref["Y_h"], rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("target", ["generic-fp32", "generic-int8"])
def test_header_documents_the_streaming_state(target):
    """The generated header names each state output and the input it feeds next call."""
    model, feeds = recurrent_model("LSTM", lens=False)
    calib = [feeds] if "int8" in target else None
    header = compile_model_proto(model, target, calib_samples=calib).files["test.h"]
    op = "QLSTM" if "int8" in target else "LSTM"  # int8: the hybrid LSTM, state float32
    assert f'output 1 ("Y_h") -> input 1 ("h0")   ({op} node "lstm")' in header
    assert 'output 2 ("Y_c") -> input 2 ("c0")' in header
    plain, feeds = recurrent_model("LSTM", lens=False, init=False)
    calib = [feeds] if "int8" in target else None
    assert "Streaming" not in compile_model_proto(plain, target, calib_samples=calib
                                                  ).files["test.h"]


def test_torch_lstm_export():
    torch = pytest.importorskip("torch")
    import io

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(12, 20, num_layers=2, batch_first=True)
            self.head = torch.nn.Linear(20, 3)

        def forward(self, x):
            y, _ = self.lstm(x)
            return self.head(y[:, -1])

    torch.manual_seed(0)
    x = torch.randn(1, 30, 12)
    buf = io.BytesIO()
    torch.onnx.export(Net().eval(), (x,), buf, dynamo=False, input_names=["x"],
                      output_names=["y"], opset_version=17)
    model = onnx.load_from_string(buf.getvalue())
    assert any(n.op_type == "LSTM" for n in model.graph.node)
    check_against_ort(model, {"x": x.numpy()}, "generic-fp32")
