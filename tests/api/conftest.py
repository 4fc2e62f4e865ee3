"""Fixtures of the Python API tests: the digits zoo model, its data, and small torch
modules (a digits-style CNN and a MobileNetV2-style inverted residual block)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ZOO = Path(__file__).resolve().parents[2] / "golden" / "models"
DIGITS = ZOO / "digits_cnn.onnx"
DIGITS_CALIB = ZOO / "digits_calib.npz"
DIGITS_TEST = ZOO / "digits_test.npz"


@pytest.fixture(scope="session")
def digits_calib() -> np.ndarray:
    """The digits calibration images, (200, 1, 8, 8) float32."""
    return np.load(DIGITS_CALIB)["x"]


@pytest.fixture(scope="session")
def digits_test() -> tuple[np.ndarray, np.ndarray]:
    """The first 64 digits test images and labels."""
    data = np.load(DIGITS_TEST)
    return data["x"][:64], data["y"][:64]


def make_torch_model():
    """A digits-style CNN whose middle is a MobileNetV2 inverted residual block (expand 1x1,
    depthwise 3x3, ReLU6, project 1x1, residual add), seeded, in eval mode."""
    import torch
    from torch import nn

    class InvertedResidual(nn.Module):
        def __init__(self, channels: int, expand: int):
            super().__init__()
            hidden = channels * expand
            self.block = nn.Sequential(
                nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
                nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
                nn.BatchNorm2d(hidden), nn.ReLU6(),
                nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels))

        def forward(self, x):
            return x + self.block(x)

    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU())
            self.block = InvertedResidual(8, 2)
            self.pool = nn.MaxPool2d(2)
            self.head = nn.Linear(8 * 4 * 4, 10)

        def forward(self, x):
            return self.head(self.pool(self.block(self.stem(x))).flatten(1))

    torch.manual_seed(0)
    model = TinyNet().eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding is exercised
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="session")
def torch_model():
    """The seeded TinyNet (torch imported on first use)."""
    pytest.importorskip("torch")
    return make_torch_model()


@pytest.fixture(scope="session")
def torch_compiled(torch_model):
    """TinyNet compiled for generic-fp32 straight from the module (dynamo export)."""
    import torch

    import edgec

    return edgec.compile(torch_model, "generic-fp32", example_inputs=torch.zeros(1, 1, 8, 8))
