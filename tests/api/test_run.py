"""Compiled.run() and .verify() build and run the generated C: numbers against independent
references (onnxruntime, the torch module itself), int8 bit-exactness against edgec's int8
interpreter, and accuracy on the digits test split."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import edgec
from edgec.workbench.compare import onnxruntime_outputs
from tests.api.conftest import DIGITS

pytestmark = pytest.mark.toolchain


def test_fp32_run_matches_onnxruntime(digits_test, tmp_path):
    images, _ = digits_test
    compiled = edgec.compile(DIGITS, "generic-fp32")
    got = compiled.run({"x": images[:8]})["logits"]
    want = np.concatenate([onnxruntime_outputs(DIGITS, {"x": images[i:i + 1]})["logits"]
                           for i in range(8)])
    assert got.shape == (8, 10)
    np.testing.assert_array_equal(compiled.run(images[:1])["logits"], got[:1])  # built once
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    np.savez(tmp_path / "inputs.npz", x=images[:12])
    result = compiled.verify(tmp_path / "inputs.npz")  # a path, like `edgec verify --inputs`
    assert result.ok and result.samples == 12
    assert "PASS" in result._repr_html_()


def test_int8_calibrated_from_a_dataloader_is_exact_and_accurate(digits_calib, digits_test):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    images, labels = digits_test[0][:32], digits_test[1][:32]
    loader = DataLoader(TensorDataset(torch.from_numpy(digits_calib),
                                      torch.zeros(len(digits_calib))), batch_size=25)
    compiled = edgec.compile(DIGITS, "x86_64-int8", calib=loader)
    assert compiled.calibration["samples"] == 200
    result = compiled.verify(images[:8])
    assert result.ok and result.exact  # bit-exact against the int8 interpreter
    int8_pred = compiled.run(images)["logits"].argmax(1)
    fp32_pred = np.concatenate([onnxruntime_outputs(DIGITS, {"x": images[i:i + 1]})["logits"]
                                for i in range(len(images))]).argmax(1)
    assert (int8_pred == fp32_pred).mean() >= 0.95
    assert (int8_pred == labels).mean() >= (fp32_pred == labels).mean() - 0.05


def test_torch_module_runs_like_torch(torch_model, torch_compiled):
    import torch

    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = torch_model(x).numpy()
    got = next(iter(torch_compiled.run(x).values()))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert torch_compiled.verify().ok  # against onnxruntime on the exported ModelProto


@pytest.mark.parametrize("target", ["x86_64-int8", "arm64-int8"])
def test_torch_module_int8(torch_compiled, digits_calib, target):
    """The exported module (its ModelProto, exported once) for int8 targets, calibrated from
    a DataLoader (x86_64) or a generator of dicts (arm64, run under QEMU): bit-exact against
    the int8 interpreter, and close to onnxruntime fp32 through .run()."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    if target.startswith("arm64") and not (shutil.which("qemu-aarch64")
                                           and shutil.which("aarch64-linux-gnu-gcc")):
        pytest.skip("arm64 needs qemu-aarch64 and aarch64-linux-gnu-gcc (tools/setup.sh)")
    proto = torch_compiled.source.proto
    name = proto.graph.input[0].name
    if target.startswith("x86"):
        calib = DataLoader(TensorDataset(torch.from_numpy(digits_calib)), batch_size=50)
    else:
        calib = ({name: digits_calib[i:i + 40]} for i in range(0, 200, 40))
    compiled = edgec.compile(proto, target, calib=calib, name="tinynet")
    assert compiled.calibration["samples"] == 200
    result = compiled.verify(digits_calib[:4])
    assert result.ok and result.exact
    got = compiled.run(digits_calib[4:8])[compiled.report.outputs[0]["name"]]
    want = np.concatenate([next(iter(onnxruntime_outputs(proto, {name: digits_calib[i:i + 1]})
                                      .values())) for i in range(4, 8)])
    snr = 10 * np.log10((want ** 2).sum() / ((got - want) ** 2).sum())
    assert snr > 20  # int8 close to onnxruntime fp32
