#!/usr/bin/env python3
"""int8 LSTM schemes side by side: edgec's hybrid QLSTM and TFLite's fully integer LSTM.

On the zoo's LSTM keyword spotter (golden/models/kws_lstm.onnx, its test and calibration
clips) this measures, against the float LSTM, the SNR of the last hidden state and the
accuracy of the float head on it, for:

- hybrid: edgec's QLSTM (edgec/ops/quantized_lstm.py), run by the int8 reference
  interpreter on the LSTM alone, compiled for generic-int8 and calibrated on the clips;
- integer: a numpy model of TFLite's 8x8_16 integer LSTM: per-gate per-tensor int8
  weights, int8 x and h with calibrated scales, each gate's two int32 projections rescaled
  to Q3.12 (int16) and added, sigmoid/tanh to Q0.15, the cell state int16 at a power-of-two
  scale from its calibrated range, h = o * tanh(c) requantised to int8 every step. It rounds
  at TFLite's quantisation points but takes sigmoid/tanh in float64 (TFLite's fixed-point
  polynomials add ~1e-4 relative error, far below these steps): not bit-exact with LiteRT,
  a measure of the scheme's accuracy.

Usage: python tools/lstm_int8_schemes.py   (prints a markdown table; ~1 minute)
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MODELS = "golden/models"


def lstm_parts(path: str) -> dict:
    """W, R, B of the model's LSTM and the head's Gemm weights (float64)."""
    model = onnx.load(path)
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    lstm = next(n for n in model.graph.node if n.op_type == "LSTM")
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    return {"W": init[lstm.input[1]][0].astype(np.float64),
            "R": init[lstm.input[2]][0].astype(np.float64),
            "B": init[lstm.input[3]][0].astype(np.float64),
            "fc_w": init[gemm.input[1]].astype(np.float64),
            "fc_b": init[gemm.input[2]].astype(np.float64)}


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def float_lstm(p: dict, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(last h, every h, every c) of the float LSTM over x [S, I] (gates i, o, f, c)."""
    h_dim = p["R"].shape[1]
    h, c = np.zeros(h_dim), np.zeros(h_dim)
    hs, cs = [], []
    for xt in x:
        pre = p["W"] @ xt + p["R"] @ h + p["B"][:4 * h_dim] + p["B"][4 * h_dim:]
        i, o, f, g = (pre[k * h_dim:(k + 1) * h_dim] for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        hs.append(h)
        cs.append(c)
    return h, np.array(hs), np.array(cs)


def asym(lo: float, hi: float) -> tuple[float, int]:
    """int8 scale and zero point of a range (containing 0)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0 or 1.0
    return scale, int(np.clip(round(-128 - lo / scale), -128, 127))


def integer_lstm(p: dict, calib: np.ndarray, clips: np.ndarray) -> np.ndarray:
    """Last h of each clip under the TFLite-style integer scheme (module docstring)."""
    h_dim = p["R"].shape[1]
    runs = [float_lstm(p, x) for x in calib]
    sx, zx = asym(float(calib.min()), float(calib.max()))
    sh, zh = asym(min(r[1].min() for r in runs), max(r[1].max() for r in runs))
    cmax = max(float(np.abs(r[2]).max()) for r in runs)
    k = 15 - max(0, math.ceil(math.log2(cmax)))  # cell scale 2^-k
    gates = []
    for g in range(4):
        rows = slice(g * h_dim, (g + 1) * h_dim)
        w, r = p["W"][rows], p["R"][rows]
        sw, sr = np.abs(w).max() / 127, np.abs(r).max() / 127
        bias = p["B"][rows] + p["B"][4 * h_dim:][rows]
        gates.append((np.round(w / sw), np.round(r / sr), sw, sr,
                      np.round(bias * 4096)))

    def q15(v):
        return np.clip(np.round(v * 32768), -32768, 32767)

    out = []
    for x in clips:
        hq = np.full(h_dim, zh, np.float64)
        c = np.zeros(h_dim)  # int16 codes at 2^-k
        for xt in x:
            xq = np.clip(np.round(xt / sx) + zx, -128, 127) - zx
            pre = []
            for wq, rq, sw, sr, bq in gates:
                part_x = np.round(wq @ xq * (sx * sw) * 4096)
                part_h = np.round(rq @ (hq - zh) * (sh * sr) * 4096)
                pre.append(np.clip(part_x + part_h + bq, -32768, 32767) / 4096)  # Q3.12
            i, o, f, g = (q15(sigmoid(pre[0])), q15(sigmoid(pre[1])), q15(sigmoid(pre[2])),
                          q15(np.tanh(pre[3])))
            c = np.clip(np.round(f * c / 32768) + np.round(i * g / 2.0 ** (30 - k)),
                        -32768, 32767)
            t = q15(np.tanh(c / 2.0 ** k))
            hq = np.clip(np.round(o * t / 2.0 ** 30 / sh) + zh, -128, 127)
        out.append((hq - zh) * sh)
    return np.array(out)


def hybrid_lstm(p: dict, calib: np.ndarray, clips: np.ndarray) -> np.ndarray:
    """Last h of each clip from edgec's QLSTM (the LSTM alone, compiled for generic-int8)."""
    from edgec.compiler import CompileOptions, compile_graph
    from edgec.frontend.onnx import import_model
    from edgec.interp import run_graph

    s, i = clips.shape[1:]
    h_dim = p["R"].shape[1]
    inits = [numpy_helper.from_array(p[n][None].astype(np.float32), n) for n in "WRB"]
    node = helper.make_node("LSTM", ["X", "W", "R", "B"], ["Y", "Y_h", "Y_c"],
                            hidden_size=h_dim)
    graph = helper.make_graph(
        [node], "lstm", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [s, 1, i])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("Y_h",)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    samples = [{"X": x[:, None, :].astype(np.float32)} for x in calib]
    result = compile_graph(import_model(model, {}, name="lstm"),
                           CompileOptions(target="generic-int8", calib_samples=samples),
                           model_name="lstm")
    assert "QLSTM" in [n.op for n in result.graph.nodes]
    return np.array([run_graph(result.graph, {"X": x[:, None, :].astype(np.float32)})["Y_h"]
                     .reshape(-1) for x in clips])


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """Signal-to-noise ratio in dB."""
    return float(10 * np.log10(np.sum(ref ** 2) / np.sum((ref - got) ** 2)))


def main() -> None:
    """Print the comparison table."""
    p = lstm_parts(f"{MODELS}/kws_lstm.onnx")
    test, calib = np.load(f"{MODELS}/kws_test.npz"), np.load(f"{MODELS}/kws_calib.npz")
    clips, labels = test["x"].astype(np.float64), test["y"]
    ref = np.array([float_lstm(p, x)[0] for x in clips])
    print("| LSTM | SNR of the last h vs float | accuracy (float head) |")
    print("|---|---:|---:|")
    for name, h in (("float64", ref), ("hybrid (edgec QLSTM)",
                                       hybrid_lstm(p, calib["x"], clips)),
                    ("integer (TFLite 8x8_16 model)",
                     integer_lstm(p, calib["x"].astype(np.float64), clips))):
        logits = h @ p["fc_w"].T + p["fc_b"]
        acc = 100 * float(np.mean(np.argmax(logits, 1) == labels))
        snr = "-" if h is ref else f"{snr_db(ref, h):.1f} dB"
        print(f"| {name} | {snr} | {acc:.2f}% |")


if __name__ == "__main__":
    main()
