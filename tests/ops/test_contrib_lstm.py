"""com.microsoft DynamicQuantizeLSTM as onnxruntime's dynamic quantiser writes it for a
torch-exported LSTM (edgec/ops/contrib_lstm.py: imported onto LSTM, weights dequantised).

Two references: the same model with the contrib node replaced by an ONNX LSTM whose weights
the test dequantises itself (onnxruntime, float: edgec must match it within fp32 rounding),
and onnxruntime's DynamicQuantizeLSTM, which also quantises X and each hidden state to uint8
at run time (edgec keeps them float), so it is compared within that rounding's size.
"""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import onnx
import pytest
from helpers import have, run_c
from onnx import helper, numpy_helper

from edgec.cli import main
from edgec.errors import ShapeError
from edgec.frontend.onnx import import_model
from edgec.workbench.compare import onnxruntime_outputs

ARM64 = have("aarch64-linux-gnu-gcc") and have("qemu-aarch64")


def _quantised_lstm_model(tmp_path, per_channel: bool, lstm_only: bool = True
                          ) -> onnx.ModelProto:
    """A bidirectional torch LSTM (12 -> 16, 20 steps) and a Linear head, exported to ONNX
    and passed through quantize_dynamic, LSTM only, so that the float reference isolates the
    LSTM (the MatMul chain it writes for a Linear is tested in
    tests/passes/test_fuse_dynamic_quant_matmul.py)."""
    torch = pytest.importorskip("torch")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    torch.manual_seed(19)

    class Recogniser(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(12, 16, batch_first=True, bidirectional=True)
            self.head = torch.nn.Linear(32, 10)

        def forward(self, x):
            return self.head(self.lstm(x)[0])

    buf = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's tracer and deprecation notes
        warnings.simplefilter("ignore")
        torch.onnx.export(Recogniser().eval(), torch.randn(1, 20, 12), buf, input_names=["x"],
                          output_names=["y"], opset_version=17, dynamo=False)
    (tmp_path / "f.onnx").write_bytes(buf.getvalue())
    quantize_dynamic(tmp_path / "f.onnx", tmp_path / "q.onnx", weight_type=QuantType.QInt8,
                     per_channel=per_channel,
                     op_types_to_quantize=["LSTM"] if lstm_only else None)
    return onnx.load(tmp_path / "q.onnx")


def _as_float_lstm(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with each DynamicQuantizeLSTM replaced by an ONNX LSTM on dequantised
    weights (written independently of edgec's import: [D, K, 4H] codes -> [D, 4H, K])."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    inits = {t.name: numpy_helper.to_array(t) for t in out.graph.initializer}
    for node in out.graph.node:
        if node.op_type != "DynamicQuantizeLSTM":
            continue
        names = list(node.input)
        for codes, scale, zp in ((1, 8, 9), (2, 10, 11)):
            q = inits[names[codes]].astype(np.float64)
            d = q.shape[0]
            s = inits[names[scale]].astype(np.float64).reshape(d, 1, -1)
            z = inits[names[zp]].astype(np.float64).reshape(d, 1, -1)
            w = ((q - z) * s).astype(np.float32).transpose(0, 2, 1)
            out.graph.initializer.append(numpy_helper.from_array(
                np.ascontiguousarray(w), names[codes] + "_float"))
            names[codes] += "_float"
        node.op_type, node.domain = "LSTM", ""
        node.ClearField("input")
        node.input.extend(names[:8])
    return out


@pytest.mark.parametrize("per_channel", [False, True])
def test_dynamic_quantize_lstm_matches_onnxruntime(tmp_path, per_channel):
    """Generated C on generic, x86_64 and arm64 (QEMU): within fp32 rounding of onnxruntime's
    float LSTM on the dequantised weights, and within onnxruntime's own activation rounding
    of its DynamicQuantizeLSTM (measured here: 8.9e-8 from the float LSTM; 0.0010 and
    0.0011 from onnxruntime's hybrid, per direction and per column, of max |y| 0.30; bound
    2 % of max |y|)."""
    model = _quantised_lstm_model(tmp_path, per_channel)
    assert any(n.op_type == "DynamicQuantizeLSTM" for n in model.graph.node)
    x = np.random.default_rng(7).standard_normal((1, 20, 12)).astype(np.float32)
    float_ref = onnxruntime_outputs(_as_float_lstm(model), {"x": x}, optimize=False)["y"]
    hybrid = onnxruntime_outputs(model, {"x": x}, optimize=False)["y"]
    scale = float(np.abs(float_ref).max())
    targets = ("generic-fp32", "x86_64-fp32") + (("arm64-fp32",) if ARM64 else ())
    for target in targets[: 3 if per_channel else 1]:
        got = run_c(model, {"x": x}, target)["y"]
        np.testing.assert_allclose(got, float_ref, rtol=1e-4, atol=1e-5 * scale,
                                   err_msg=target)
        assert np.abs(got - hybrid).max() < 0.02 * scale, target
    assert np.abs(float_ref - hybrid).max() > 1e-4 * scale  # onnxruntime's does round


def test_dynamic_quantize_lstm_refuses_a_mis_shaped_scale():
    """A W_scale of neither D nor D * 4H values is refused with the node named."""
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.integers(-127, 128, (1, 3, 8)).astype(np.int8), "W"),
             numpy_helper.from_array(rng.integers(-127, 128, (1, 2, 8)).astype(np.int8), "R"),
             numpy_helper.from_array(np.full(3, 0.01, np.float32), "ws"),
             numpy_helper.from_array(np.zeros(1, np.int8), "wz"),
             numpy_helper.from_array(np.full(1, 0.01, np.float32), "rs"),
             numpy_helper.from_array(np.zeros(1, np.int8), "rz")]
    node = helper.make_node("DynamicQuantizeLSTM", ["x", "W", "R", "", "", "", "", "", "ws",
                                                    "wz", "rs", "rz"], ["y"],
                            domain="com.microsoft", hidden_size=2, name="lstm0")
    g = helper.make_graph([node], "t", [helper.make_tensor_value_info("x", 1, (4, 1, 3))],
                          [helper.make_tensor_value_info("y", 1, (4, 1, 1, 2))], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid("com.microsoft", 1)])
    with pytest.raises(ShapeError, match="lstm0.*W_scale has 3 values"):
        import_model(m)


def test_edgec_verify_of_a_whole_dynamic_quantised_model(tmp_path, capsys):
    """quantize_dynamic on the whole model (the LSTM and the Linear head's MatMul chain):
    `edgec verify` passes, its onnxruntime reference running the DynamicQuantizeLSTM as an
    LSTM on the dequantised weights, which it says in a warning."""
    _quantised_lstm_model(tmp_path, per_channel=False, lstm_only=False)
    rc = main(["verify", str(tmp_path / "q.onnx"), "-t", "generic-fp32", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    row = json.loads(out)["outputs"][0]
    assert row["ok"] and row["max_rel_err"] <= 1e-4
    assert "DynamicQuantizeLSTM" in err and "dequantised weights" in err
