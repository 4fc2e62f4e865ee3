#!/usr/bin/env python3
"""Build the edgec model zoo from PyTorch, deterministically and without downloads.

Models (written to --out, default golden/models/):
  mobilenetv2.onnx  MobileNetV2 1.0, 224x224, 1000 classes (untrained; ~14 MB, not committed:
                    tests regenerate it; its graph and weights are checked against
                    EXPECTED_STRUCTURE_SHA256 and EXPECTED_WEIGHTS_L2)
  resnet8.onnx      MLPerf Tiny image classification ResNet-8 (CIFAR-10, 32x32, untrained)
  dscnn.onnx        MLPerf Tiny keyword spotting DS-CNN small (49x10 MFCC, 12 classes, untrained)
  digits_cnn.onnx   a small CNN trained on scikit-learn's digits (8x8, 10 classes), with
                    digits_test.npz (the test split) and digits_calib.npz (calibration data
                    drawn from the training split)
  kws_lstm.onnx     an LSTM keyword spotter (49x10 MFCC-like features, 6 classes) trained on
                    the synthetic tone keywords of tools/kws_synth.py, with kws_test.npz and
                    kws_calib.npz (calibration clips from the training distribution)

The architectures are written here (no torchvision). Untrained models get standard
initialisation; their BatchNorm running statistics are then set from seeded random batches in
train mode, so that activations keep a realistic scale (what int8 calibration needs). Export
uses the legacy TorchScript exporter (dynamo=False, opset 13, eval mode, batch 1), which folds
BatchNorm into the preceding convolutions.

Determinism: every model seeds torch and numpy itself (so `--only` gives the same bytes as a
full run), runs on one thread with deterministic algorithms, and the .npz files are written
with fixed zip timestamps. Two runs on the same machine produce byte-identical files.
Across machines torch's float kernels differ (AVX-512, AVX2, scalar: other summation orders),
so BatchNorm statistics, their folding and training round differently: another host gives the
same graph (`structure_sha256`) and the same .npz data, and weights within `weights_rtol` of
each tensor's largest magnitude (docs/zoo.md, "Reproducibility").

Usage: python tools/make_models.py [--out DIR] [--only NAME[,NAME]] [--docs docs/zoo.md]
`--docs` also writes the zoo documentation, including the digits CNN's accuracy measured
through edgec's generated C (that needs the ops of the model to be supported by edgec).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "golden" / "models"
OPSET = 13

# Files that are not committed (too large), checked after every generation: the graph must be
# identical on every host, the weights' L2 norm within the model's weights_rtol; the sha256 of
# the bytes is the recording host's (another CPU rounds the weights differently: a note only).
EXPECTED_SHA256 = {
    "mobilenetv2.onnx": "bb577a53a53d7a2d08e018345820b05e537c1cde27134f8f759dc750783fd503",
}
EXPECTED_STRUCTURE_SHA256 = {
    "mobilenetv2.onnx": "ed5bc408463ce1e59ae1ed7a43e948a5bdb2a468eddba4937ee2aca4a7ae6113",
}
EXPECTED_WEIGHTS_L2 = {"mobilenetv2.onnx": 187.6042352288736}
# Weights across hosts, relative to each tensor's largest magnitude (tensors below
# WEIGHTS_SCALE_FLOOR count at that scale: the untrained MobileNetV2's folded BatchNorm biases
# are rounding noise, ~5e-8). Measured between torch's AVX-512 kernels and its scalar ones
# (ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41): resnet8 2.8e-6, dscnn 4.2e-6,
# mobilenetv2 8.2e-6; the trained digits CNN 5.5e-3 (40 epochs of Adam amplify the rounding;
# its test accuracy stays 99.26%).
UNTRAINED_WEIGHTS_RTOL = 1e-4
WEIGHTS_SCALE_FLOOR = 1e-2
MOBILENETV2_MEASURED = "8.2e-6"
TRAINED_WEIGHTS_RTOL = 5e-2


# ----------------------------------------------------------------------------- determinism
def deterministic(seed: int) -> None:
    """Seed every generator and make torch single-threaded and deterministic."""
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed .npz with fixed zip metadata (np.savez stamps the current time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    atomic_write(path, buf.getvalue())


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary sibling and a rename (parallel test workers
    may build the same file at once; readers never see a partial file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _initializers(path: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


def structure_sha256(path: Path) -> str:
    """sha256 of an ONNX file with its initializers' values removed (names, types and shapes
    kept): nodes, attributes, constants, names and shapes; the same on every host."""
    import onnx

    model = onnx.load(str(path))
    for t in model.graph.initializer:
        for data in ("raw_data", "float_data", "int32_data", "int64_data", "double_data"):
            t.ClearField(data)
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


def weights_l2(path: Path) -> float:
    """L2 norm of all initializers of an ONNX file, in float64."""
    return float(np.sqrt(sum(float(np.sum(np.square(w.astype(np.float64))))
                             for w in _initializers(path).values())))


def weights_difference(a: Path, b: Path) -> float:
    """Largest difference between the same-named initializers of two ONNX files, relative to
    each tensor's largest magnitude, or to WEIGHTS_SCALE_FLOOR for tensors below it (folded
    BatchNorm biases of the untrained MobileNetV2 are rounding noise, ~3e-8); inf when names
    or shapes differ."""
    wa, wb = _initializers(a), _initializers(b)
    if wa.keys() != wb.keys() or any(wa[k].shape != wb[k].shape for k in wa):
        return float("inf")
    return max((float(np.abs(wa[k].astype(np.float64) - wb[k]).max())
                / max(float(np.abs(wa[k]).max()), WEIGHTS_SCALE_FLOOR)
                for k in wa if wa[k].size), default=0.0)


# ----------------------------------------------------------------------------- architectures
def build_architectures():
    """Define the torch modules (inside a function so that importing this file needs no torch)."""
    import torch
    from torch import nn

    class ConvBNAct(nn.Sequential):
        """Conv (no bias) -> BatchNorm -> optional activation."""

        def __init__(self, cin, cout, kernel, stride=1, padding=None, groups=1,
                     act: type[nn.Module] | None = nn.ReLU):
            if padding is None:
                padding = (kernel - 1) // 2 if isinstance(kernel, int) else \
                    tuple((k - 1) // 2 for k in kernel)
            layers = [nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False),
                      nn.BatchNorm2d(cout)]
            if act is not None:
                layers.append(act())
            super().__init__(*layers)

    class InvertedResidual(nn.Module):
        """MobileNetV2 block: 1x1 expand (ReLU6), 3x3 depthwise (ReLU6), linear 1x1 project."""

        def __init__(self, cin: int, cout: int, stride: int, expansion: int):
            super().__init__()
            hidden = cin * expansion
            layers: list[nn.Module] = []
            if expansion != 1:
                layers.append(ConvBNAct(cin, hidden, 1, act=nn.ReLU6))
            layers.append(ConvBNAct(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6))
            layers.append(ConvBNAct(hidden, cout, 1, act=None))
            self.block = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            y = self.block(x)
            return x + y if self.residual else y

    class MobileNetV2(nn.Module):
        """MobileNetV2 1.0 (Sandler et al. 2018) for 224x224 ImageNet, 1000 classes."""

        # expansion t, output channels c, repeats n, first stride s
        STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                  (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

        def __init__(self, num_classes: int = 1000):
            super().__init__()
            layers: list[nn.Module] = [ConvBNAct(3, 32, 3, 2, act=nn.ReLU6)]
            cin = 32
            for t, c, n, s in self.STAGES:
                for i in range(n):
                    layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                    cin = c
            layers.append(ConvBNAct(cin, 1280, 1, act=nn.ReLU6))
            self.features = nn.Sequential(*layers)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))
            for m in self.modules():  # the reference initialisation of the paper's code
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.zeros_(m.bias)

        def forward(self, x):
            x = self.pool(self.features(x))
            return self.classifier(torch.flatten(x, 1))

    class ResidualStage(nn.Module):
        """ResNet-8 stage: two 3x3 convs; a strided 1x1 conv shortcut when the shape changes."""

        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = ConvBNAct(cin, cout, 3, stride)
            self.conv2 = ConvBNAct(cout, cout, 3, act=None)
            self.shortcut = (nn.Conv2d(cin, cout, 1, stride) if stride != 1 or cin != cout
                             else nn.Identity())
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.shortcut(x) + self.conv2(self.conv1(x)))

    class ResNet8(nn.Module):
        """MLPerf Tiny image classification ResNet-8: 16-32-64 channels, 32x32 in, 10 classes.

        As in the benchmark's Keras model: stem conv, three residual stages (the 2nd and 3rd
        downsample by 2 with a 1x1 conv shortcut without BatchNorm), 8x8 average pooling,
        dense layer and softmax. He-normal initialisation.
        """

        def __init__(self, num_classes: int = 10):
            super().__init__()
            self.stem = ConvBNAct(3, 16, 3)
            self.stages = nn.Sequential(ResidualStage(16, 16, 1), ResidualStage(16, 32, 2),
                                        ResidualStage(32, 64, 2))
            self.pool = nn.AvgPool2d(8)
            self.fc = nn.Linear(64, num_classes)
            self.softmax = nn.Softmax(dim=1)
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(m.weight, mode="fan_in")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

        def forward(self, x):
            x = self.pool(self.stages(self.stem(x)))
            return self.softmax(self.fc(torch.flatten(x, 1)))

    class DSCNN(nn.Module):
        """MLPerf Tiny keyword spotting DS-CNN (small): 49x10 MFCC in, 12 classes.

        A 10x4 stride-2 conv with 64 channels (25x5 out; symmetric padding (5, 1) gives the
        size Keras' 'same' gives), four depthwise-separable blocks (3x3 depthwise + 1x1
        pointwise, BatchNorm + ReLU after each), average pooling over a (24, 5) window (the
        benchmark's int(49/2) x int(10/2) pool, which skips the last row), dense, softmax.
        Glorot-uniform initialisation (the Keras default of the benchmark).
        """

        def __init__(self, num_classes: int = 12, filters: int = 64):
            super().__init__()
            layers: list[nn.Module] = [ConvBNAct(1, filters, (10, 4), 2, padding=(5, 1)),
                                       nn.Dropout(0.2)]
            for _ in range(4):
                layers.append(ConvBNAct(filters, filters, 3, groups=filters))
                layers.append(ConvBNAct(filters, filters, 1))
            layers.append(nn.Dropout(0.4))
            self.features = nn.Sequential(*layers)
            self.pool = nn.AvgPool2d((24, 5))
            self.fc = nn.Linear(filters, num_classes)
            self.softmax = nn.Softmax(dim=1)
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.xavier_uniform_(m.weight)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

        def forward(self, x):
            x = self.pool(self.features(x))
            return self.softmax(self.fc(torch.flatten(x, 1)))

    class DigitsCNN(nn.Module):
        """A small CNN for 8x8 digits: two 3x3 convs, 2x2 max pool, a 3x3 conv, dense."""

        def __init__(self, num_classes: int = 10):
            super().__init__()
            self.features = nn.Sequential(ConvBNAct(1, 16, 3), ConvBNAct(16, 32, 3),
                                          nn.MaxPool2d(2), ConvBNAct(32, 32, 3))
            self.fc = nn.Linear(32 * 4 * 4, num_classes)

        def forward(self, x):
            return self.fc(torch.flatten(self.features(x), 1))

    class KwsLSTM(nn.Module):
        """One LSTM layer over the 49 feature frames; the last hidden state -> Linear."""

        def __init__(self, features: int = 10, hidden: int = 32, num_classes: int = 6):
            super().__init__()
            self.lstm = nn.LSTM(features, hidden, batch_first=True)
            self.fc = nn.Linear(hidden, num_classes)

        def forward(self, x):
            _, (h, _) = self.lstm(x)
            return self.fc(h[-1])

    return {"MobileNetV2": MobileNetV2, "ResNet8": ResNet8, "DSCNN": DSCNN,
            "DigitsCNN": DigitsCNN, "KwsLSTM": KwsLSTM}


# ----------------------------------------------------------------------------- helpers
def set_batchnorm_statistics(model, input_shape: tuple[int, ...], batches: int, seed: int) -> None:
    """Estimate BatchNorm running statistics from seeded N(0, 1) batches in train mode.

    momentum=None makes the running statistics the plain average over the batches.
    """
    import torch
    from torch import nn

    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    gen = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(*input_shape, generator=gen))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()


def export_onnx(model, input_shape: tuple[int, ...], path: Path, input_name: str,
                output_name: str) -> None:
    """Export in eval mode with the legacy exporter (opset 13, batch 1) and check the file."""
    import onnx
    import torch

    model.eval()
    example = torch.zeros(*input_shape)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buf, dynamo=False, opset_version=OPSET,
                          input_names=[input_name], output_names=[output_name],
                          do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    atomic_write(path, buf.getvalue())


@dataclass
class ZooModel:
    """One zoo entry: how to build it and how tests should treat it."""

    name: str
    file: str
    build: Callable[[Path], dict]
    committed: bool
    description: str
    extra_files: tuple[str, ...] = ()
    weights_rtol: float = UNTRAINED_WEIGHTS_RTOL  # across hosts (module docstring)


# ----------------------------------------------------------------------------- builders
def build_mobilenetv2(out: Path) -> dict:
    """MobileNetV2 1.0 at 224x224 (untrained, realistic BatchNorm statistics)."""
    deterministic(1001)
    model = build_architectures()["MobileNetV2"]()
    set_batchnorm_statistics(model, (4, 3, 224, 224), batches=4, seed=2001)
    export_onnx(model, (1, 3, 224, 224), out / "mobilenetv2.onnx", "input", "logits")
    return {}


def build_resnet8(out: Path) -> dict:
    """MLPerf Tiny ResNet-8 (untrained, realistic BatchNorm statistics)."""
    deterministic(1002)
    model = build_architectures()["ResNet8"]()
    set_batchnorm_statistics(model, (32, 3, 32, 32), batches=8, seed=2002)
    export_onnx(model, (1, 3, 32, 32), out / "resnet8.onnx", "input", "probs")
    return {}


def build_dscnn(out: Path) -> dict:
    """MLPerf Tiny DS-CNN small (untrained, realistic BatchNorm statistics)."""
    deterministic(1003)
    model = build_architectures()["DSCNN"]()
    set_batchnorm_statistics(model, (32, 1, 49, 10), batches=8, seed=2003)
    export_onnx(model, (1, 1, 49, 10), out / "dscnn.onnx", "input", "probs")
    return {}


DIGITS_SCALE = 16.0  # sklearn digits pixels are 0..16; the model sees pixel / 16
DIGITS_CALIB_SAMPLES = 200


def load_digits_split():
    """sklearn digits as float32 N x 1 x 8 x 8 in [0, 1]; the fixed 70/30 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images.astype(np.float32) / DIGITS_SCALE).reshape(-1, 1, 8, 8)
    y = data.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0)
    return x_train, x_test, y_train, y_test


def onnxruntime_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy (%) of an ONNX classifier, run sample by sample (batch 1)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    pred = [int(np.argmax(sess.run(None, {name: x[i:i + 1]})[0])) for i in range(len(x))]
    return 100.0 * float(np.mean(np.asarray(pred) == y))


def build_digits(out: Path) -> dict:
    """Train the digits CNN (Adam, 40 epochs, seeded), export it, write test/calib data."""
    import torch
    from torch import nn

    deterministic(1004)
    x_train, x_test, y_train, y_test = load_digits_split()
    model = build_architectures()["DigitsCNN"]()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    gen = torch.Generator().manual_seed(3004)
    model.train()
    for _ in range(40):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(order), 32):
            idx = order[i:i + 32]
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x_test)).numpy()
    torch_acc = 100.0 * float(np.mean(np.argmax(logits, 1) == y_test))
    path = out / "digits_cnn.onnx"
    export_onnx(model, (1, 1, 8, 8), path, "x", "logits")
    write_npz(out / "digits_test.npz", {"x": x_test, "y": y_test})
    calib = np.random.default_rng(5004).choice(len(x_train), DIGITS_CALIB_SAMPLES, replace=False)
    calib.sort()
    write_npz(out / "digits_calib.npz", {"x": x_train[calib], "y": y_train[calib]})
    return {"torch_accuracy": torch_acc, "ort_accuracy": onnxruntime_accuracy(path, x_test, y_test),
            "test_samples": len(x_test), "train_samples": len(x_train)}


KWS_TRAIN, KWS_TEST, KWS_CALIB = 3000, 180, 60  # clips
KWS_EPOCHS = 40
KWS_OTHER_HOST = "97.22% in onnxruntime"  # the build with torch's scalar kernels


def kws_synth():
    """tools/kws_synth.py (loaded by path: this file is also imported by path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("kws_synth", Path(__file__).parent /
                                                  "kws_synth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_kws(out: Path) -> dict:
    """Train the LSTM keyword spotter (Adam 5e-3, gradient norm 1, 40 epochs, seeded) on
    synthetic clips, export it, write test and calibration data."""
    import torch
    from torch import nn

    synth = kws_synth()
    deterministic(1005)
    x_train, y_train = synth.dataset(KWS_TRAIN, 2105)
    x_test, y_test = synth.dataset(KWS_TEST, 3105)
    x_calib, y_calib = synth.dataset(KWS_CALIB, 4105)
    model = build_architectures()["KwsLSTM"]()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    gen = torch.Generator().manual_seed(5105)
    model.train()
    for _ in range(KWS_EPOCHS):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(order), 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x_test)).numpy()
    torch_acc = 100.0 * float(np.mean(np.argmax(logits, 1) == y_test))
    path = out / "kws_lstm.onnx"
    export_onnx(model, (1, synth.FRAMES, synth.COEFFS), path, "x", "logits")
    write_npz(out / "kws_test.npz", {"x": x_test, "y": y_test})
    write_npz(out / "kws_calib.npz", {"x": x_calib, "y": y_calib})
    return {"torch_accuracy": torch_acc, "ort_accuracy": onnxruntime_accuracy(path, x_test, y_test),
            "test_samples": len(x_test), "train_samples": len(x_train)}


ZOO = {
    "mobilenetv2": ZooModel(
        "mobilenetv2", "mobilenetv2.onnx", build_mobilenetv2, False,
        "MobileNetV2 1.0, 224x224 ImageNet classifier (untrained)"),
    "resnet8": ZooModel(
        "resnet8", "resnet8.onnx", build_resnet8, True,
        "MLPerf Tiny ResNet-8, CIFAR-10 32x32 (untrained)"),
    "dscnn": ZooModel(
        "dscnn", "dscnn.onnx", build_dscnn, True,
        "MLPerf Tiny DS-CNN small keyword spotting, 49x10 MFCC (untrained)"),
    "digits_cnn": ZooModel(
        "digits_cnn", "digits_cnn.onnx", build_digits, True,
        "small CNN trained on scikit-learn digits, 8x8 grayscale",
        extra_files=("digits_test.npz", "digits_calib.npz"),
        weights_rtol=TRAINED_WEIGHTS_RTOL),
    "kws_lstm": ZooModel(
        "kws_lstm", "kws_lstm.onnx", build_kws, True,
        "LSTM keyword spotting (32 units) trained on synthetic tone keywords, 49x10 MFCC-like",
        extra_files=("kws_test.npz", "kws_calib.npz"), weights_rtol=TRAINED_WEIGHTS_RTOL),
}


# ----------------------------------------------------------------------------- docs
def model_summary(path: Path) -> dict:
    """Input/output shapes, parameter count and op histogram of an ONNX file."""
    import onnx

    proto = onnx.load(str(path))
    init = {t.name for t in proto.graph.initializer}

    def dims(vi):
        return "x".join(str(d.dim_value) for d in vi.type.tensor_type.shape.dim)

    ops: dict[str, int] = {}
    for n in proto.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    params = sum(int(np.prod(t.dims)) for t in proto.graph.initializer)
    return {
        "inputs": ", ".join(f"{vi.name} {dims(vi)}" for vi in proto.graph.input
                            if vi.name not in init),
        "outputs": ", ".join(f"{vi.name} {dims(vi)}" for vi in proto.graph.output),
        "params": params,
        "ops": ", ".join(f"{k} {v}" for k, v in sorted(ops.items())),
        "bytes": path.stat().st_size,
        "sha256": sha256_of(path),
    }


def edgec_digits_accuracy(out: Path) -> tuple[float | None, str]:
    """Accuracy (%) of the digits CNN through edgec's generated C (generic-fp32), or a reason."""
    try:
        from edgec.compiler import CompileOptions
        from edgec.errors import EdgecError
        from edgec.workbench.verify import verify_model
    except ImportError as e:
        return None, f"edgec is not importable ({e})"
    data = np.load(out / "digits_test.npz")
    try:
        res = verify_model(out / "digits_cnn.onnx", CompileOptions(target="generic-fp32"),
                           inputs_path=str(out / "digits_test.npz"))
    except EdgecError as e:
        return None, str(e)
    logits = res.compiled_outputs["logits"].reshape(len(data["y"]), -1)
    return 100.0 * float(np.mean(np.argmax(logits, 1) == data["y"])), ""


def edgec_kws_accuracy(out: Path, target: str) -> tuple[float | None, str]:
    """Accuracy (%) of the LSTM keyword spotter through edgec's generated C on `target` (int8
    targets calibrate on kws_calib.npz), or a reason."""
    try:
        from edgec.compiler import CompileOptions
        from edgec.errors import EdgecError
        from edgec.workbench.verify import verify_model
    except ImportError as e:
        return None, f"edgec is not importable ({e})"
    data = np.load(out / "kws_test.npz")
    calib = str(out / "kws_calib.npz") if "int8" in target else None
    try:
        res = verify_model(out / "kws_lstm.onnx", CompileOptions(target=target, calib=calib),
                           inputs_path=str(out / "kws_test.npz"))
    except EdgecError as e:
        return None, str(e)
    logits = res.compiled_outputs["logits"].reshape(len(data["y"]), -1)
    return 100.0 * float(np.mean(np.argmax(logits, 1) == data["y"])), ""


DOC_INTRO = """\
# The edgec model zoo

Written by `python tools/make_models.py --docs docs/zoo.md`; do not edit by hand.

All models are built from PyTorch by `tools/make_models.py` (architectures written there, no
downloads) and exported with the legacy TorchScript exporter (opset {opset}, eval mode, batch
1; the exporter folds BatchNorm into the convolutions). Generation is deterministic: seeded,
one thread, deterministic algorithms, fixed zip timestamps; see "Reproducibility" below for
what that promises on one host and across hosts. Built with torch {torch}, onnx {onnx}.

Untrained models use the standard initialisation of their reference implementation; their
BatchNorm running statistics are then estimated from seeded N(0, 1) batches in train mode,
so every layer's activations have a realistic scale (neither vanishing nor exploding), which
int8 calibration relies on.

| file | model | inputs | outputs | params | bytes | committed |
|---|---|---|---|---|---|---|
"""

DOC_HASHES = """
## sha256

MobileNetV2 is not committed (about 14 MB): tests build it on demand
(`tests/helpers.py: ensure_zoo`) and the tool checks its graph against
`EXPECTED_STRUCTURE_SHA256` and its weights' L2 norm against `EXPECTED_WEIGHTS_L2` in
tools/make_models.py; the byte hash below is the recording host's. "(graph only)": sha256 of
the file with initializer values removed (`structure_sha256`).

```
{hashes}
```

## Reproducibility

- **One host, same torch and onnx versions**: byte-identical files
  (`tests/e2e/test_zoo.py` builds DS-CNN twice and compares the bytes).
- **Any host**: the same graph (nodes, attributes, constants, names, shapes, opset: equal
  `structure_sha256`), byte-identical `.npz` data, and weights within a tolerance relative
  to each tensor's largest magnitude: {untrained_rtol:g} for the untrained models,
  {trained_rtol:g} for the trained digits CNN. torch's float kernels differ between CPUs
  (AVX-512, AVX2, scalar: other summation orders), so BatchNorm statistics, their folding
  into the convolutions and training round differently. Measured between torch's AVX-512
  kernels and its scalar ones (`ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41`, which
  tests/e2e/test_zoo.py uses to regenerate the committed models as another host would):
  resnet8 2.8e-6, dscnn 4.2e-6, mobilenetv2 {mnv2_rel}, digits CNN 5.5e-3 (test accuracy
  99.26% both ways). Tensors whose largest magnitude is below {floor:g} count at {floor:g}
  (the untrained MobileNetV2's folded BatchNorm biases are rounding noise, ~5e-8).
- The committed files hold the recording host's bytes: on another CPU a regenerated file
  differs in its weight bytes, never in its graph.
"""

DOC_ARCHITECTURES = """
## Architectures

- **MobileNetV2 1.0**: 3x3 stride-2 stem (32 ch), 17 inverted residual blocks (expansion 6
  except the first; ReLU6 after the expansion and depthwise convs, linear bottleneck;
  residual when stride 1 and channels match), 1x1 conv to 1280 channels, global average
  pool, dropout 0.2, Linear(1280, 1000).
- **ResNet-8** (MLPerf Tiny IC): 3x3 stem (16 ch), three residual stages of two 3x3 convs
  (16, 32, 64 ch; stages 2 and 3 stride 2 with a 1x1 strided conv shortcut), 8x8 average
  pool, Linear(64, 10), softmax. Stride-2 3x3 convs pad 1 on every side (PyTorch); Keras'
  'same' pads only bottom/right there, so the weights are not interchangeable with the
  benchmark's, but shapes and compute are the same.
- **DS-CNN small** (MLPerf Tiny KWS): 10x4 stride-2 conv (64 ch, 25x5 out), four
  depthwise-separable blocks (3x3 depthwise + 1x1, 64 ch), average pool over a (24, 5)
  window (as in the benchmark: int(49/2) x int(10/2)), Linear(64, 12), softmax.
- **digits CNN**: conv 3x3 (16) - conv 3x3 (32) - max pool 2x2 - conv 3x3 (32), each conv
  with BatchNorm + ReLU, Linear(512, 10); trained 40 epochs with Adam on sklearn's digits
  (`train_test_split(test_size=0.3, random_state=0)`). Input is `pixel / 16` in [0, 1],
  float32 1x1x8x8.

## Digits CNN accuracy

Test split: {test_samples} samples (`golden/models/digits_test.npz`, keys `x`, `y`);
calibration: {calib_samples} samples drawn from the training split (`digits_calib.npz`, same
keys). The generated C is measured with
`edgec.workbench.verify.verify_model(..., inputs_path=digits_test.npz)`, which runs the compiled model
sample by sample; tests/e2e/test_zoo.py checks that it stays within 0.5 points of
onnxruntime.

| measured with | top-1 accuracy |
|---|---|
| PyTorch fp32 | {torch_accuracy:.2f}% |
| onnxruntime fp32 | {ort_accuracy:.2f}% |
| edgec generic-fp32 (generated C) | {c_accuracy} |
"""


DOC_KWS = """
## LSTM keyword spotting (kws_lstm)

Data (tools/kws_synth.py, numpy only): 1 s clips at 8 kHz of six classes, `silence` (noise),
`unknown` (a steady tone or two-tone chord, 250-3000 Hz) and four tone "keywords" at a random
base pitch f0 of 400-900 Hz, 0.3-0.5 s long at a random position: `up` (chirp f0 -> 2 f0),
`down` (2 f0 -> f0), `beep2` (two 120 ms beeps) and `trill` (f0 / 1.5 f0 every 50 ms), in
white plus low-passed noise at an SNR of -6 to 20 dB. Features: 49 frames of 40 ms every
20 ms, 20 mel bands over 0-4 kHz, log, DCT to 10 coefficients, fixed standardisation,
rounded to 1/1024 (input `x` [1, 49, 10] like DS-CNN's MFCC). {train} training clips,
{test} test clips (`golden/models/kws_test.npz`, keys `x`, `y`) and {calib} calibration
clips (`kws_calib.npz`), each set from its own seed.

Model: `nn.LSTM(10, 32, batch_first=True)`, its last hidden state into `Linear(32, 6)`
(an ONNX LSTM, Gather, Gemm after export); {params:,} parameters, {weights:,} bytes of fp32
weights. Trained {epochs} epochs with Adam (lr 5e-3, batch 64, gradient norm clipped at 1).
int8 builds run the LSTM as QLSTM (int8 weights and activations, float32 state;
docs/int8.md) and the head as QGemm: no float node remains (`float_node_reasons` empty).
Accuracy through the generated C (`edgec.workbench.verify.verify_model(...,
inputs_path=kws_test.npz)`, int8 calibrated on kws_calib.npz; every int8 target gives the
int8 reference's bits, so the same accuracy):

| measured with | top-1 accuracy |
|---|---|
| PyTorch fp32 | {torch_accuracy:.2f}% |
| onnxruntime fp32 | {ort_accuracy:.2f}% |
| edgec generic-fp32 (generated C) | {c_fp32} |
| edgec generic-int8 (generated C) | {c_int8} |

Reproducibility: the same host gives the same bytes; another host gives the same graph
and data but other weights: measured between torch's vector and scalar kernels the weights
differ by 1.2 of each tensor's largest magnitude (training in float64 diverged as much, 1.1):
the last-bit differences of the float kernels send an LSTM's 40 epochs of training elsewhere
(test accuracy of that build: {other_host}).
"""


def write_docs(doc_path: Path, out: Path, digits_info: dict, kws_info: dict) -> None:
    """Write docs/zoo.md from the files in `out` (every model must exist)."""
    import onnx
    import torch

    text = DOC_INTRO.format(opset=OPSET, torch=torch.__version__.split("+")[0],
                            onnx=onnx.__version__)
    summaries = {m.name: model_summary(out / m.file) for m in ZOO.values()}
    for m in ZOO.values():
        s = summaries[m.name]
        text += (f"| `{m.file}` | {m.description} | {s['inputs']} | {s['outputs']} | "
                 f"{s['params']:,} | {s['bytes']:,} | {'yes' if m.committed else 'no'} |\n")
    text += "\n## Operators\n\n"
    text += "".join(f"- `{m.file}`: {summaries[m.name]['ops']}\n" for m in ZOO.values())
    hashes = []
    for m in ZOO.values():
        hashes.append(f"{summaries[m.name]['sha256']}  {m.file}")
        if not m.committed:
            hashes.append(f"{structure_sha256(out / m.file)}  {m.file} (graph only)")
        hashes += [f"{sha256_of(out / extra)}  {extra}" for extra in m.extra_files]
    text += DOC_HASHES.format(hashes="\n".join(hashes), untrained_rtol=UNTRAINED_WEIGHTS_RTOL,
                              trained_rtol=TRAINED_WEIGHTS_RTOL, mnv2_rel=MOBILENETV2_MEASURED,
                              floor=WEIGHTS_SCALE_FLOOR)
    c_acc, reason = edgec_digits_accuracy(out)
    text += DOC_ARCHITECTURES.format(
        test_samples=digits_info["test_samples"], calib_samples=DIGITS_CALIB_SAMPLES,
        torch_accuracy=digits_info["torch_accuracy"], ort_accuracy=digits_info["ort_accuracy"],
        c_accuracy=f"{c_acc:.2f}%" if c_acc is not None else f"not measured: {reason}")
    measured = {}
    for target in ("generic-fp32", "generic-int8"):
        acc, why = edgec_kws_accuracy(out, target)
        measured[target] = f"{acc:.2f}%" if acc is not None else f"not measured: {why}"
    s = summaries["kws_lstm"]
    text += DOC_KWS.format(train=KWS_TRAIN, test=KWS_TEST, calib=KWS_CALIB, epochs=KWS_EPOCHS,
                           params=s["params"], weights=4 * s["params"],
                           torch_accuracy=kws_info["torch_accuracy"],
                           ort_accuracy=kws_info["ort_accuracy"], c_fp32=measured["generic-fp32"],
                           c_int8=measured["generic-int8"], other_host=KWS_OTHER_HOST)
    text += kept_section(doc_path)
    doc_path.parent.mkdir(parents=True, exist_ok=True)
    doc_path.write_text(text)


KEPT_BEGIN, KEPT_END = "<!-- trained-mobilenetv2:begin -->", "<!-- trained-mobilenetv2:end -->"


def kept_section(doc_path: Path) -> str:
    """The hand-written section about mobilenetv2_trained.onnx (built by another tool) from the
    current doc, to append after the generated text; empty when there is none."""
    old = doc_path.read_text() if doc_path.exists() else ""
    start, end = old.find(KEPT_BEGIN), old.find(KEPT_END)
    if start < 0 or end < start:
        return ""
    return "\n" + old[start:end + len(KEPT_END)] + "\n"


# ----------------------------------------------------------------------------- main
def check_expected(m: ZooModel, path: Path, digest: str) -> int:
    """Check an uncommitted model against its recorded graph and weights; 1 on a mismatch."""
    want = EXPECTED_STRUCTURE_SHA256.get(m.file)
    if want is None:
        return 0
    if structure_sha256(path) != want:
        print(f"make_models: error: {m.file}: graph differs from the recorded one (structure "
              f"sha256 {structure_sha256(path)}, expected {want}); torch or onnx version?",
              file=sys.stderr)
        return 1
    l2, want_l2 = weights_l2(path), EXPECTED_WEIGHTS_L2[m.file]
    if abs(l2 - want_l2) > m.weights_rtol * want_l2:
        print(f"make_models: error: {m.file}: weights L2 {l2!r}, expected {want_l2!r} within "
              f"{m.weights_rtol:g}", file=sys.stderr)
        return 1
    if digest != EXPECTED_SHA256.get(m.file):
        print(f"make_models: note: {m.file}: same graph, weights within {m.weights_rtol:g} of "
              "the recorded build, other bytes (this CPU's float kernels round differently)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Build the requested models; returns a process exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help=f"build only these models (repeatable or comma-separated): "
                         f"{', '.join(ZOO)}")
    ap.add_argument("--docs", type=Path, metavar="ZOO.md",
                    help="also write the zoo documentation (needs every model; builds the "
                         "digits CNN and the KWS LSTM to measure their accuracy)")
    args = ap.parse_args(argv)
    names = [n.strip() for spec in args.only for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in ZOO]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(ZOO)}")
    names = names or list(ZOO)
    if args.docs:
        names += [n for n in ("digits_cnn", "kws_lstm") if n not in names]
    args.out.mkdir(parents=True, exist_ok=True)
    status = 0
    infos = {}
    for name in names:
        m = ZOO[name]
        infos[name] = m.build(args.out)
        path = args.out / m.file
        digest = sha256_of(path)
        print(f"make_models: {m.file}  {path.stat().st_size:,} B  sha256 {digest}")
        status |= check_expected(m, path, digest)
        if name == "digits_cnn":
            info = infos[name]
            print(f"make_models: digits CNN accuracy: torch {info['torch_accuracy']:.2f}%, "
                  f"onnxruntime {info['ort_accuracy']:.2f}% on {info['test_samples']} samples")
        if name == "kws_lstm":
            info = infos[name]
            print(f"make_models: KWS LSTM accuracy: torch {info['torch_accuracy']:.2f}%, "
                  f"onnxruntime {info['ort_accuracy']:.2f}% on {info['test_samples']} clips")
    if args.docs:
        missing = [m.file for m in ZOO.values() if not (args.out / m.file).exists()]
        if missing:
            print(f"make_models: error: --docs needs every model; missing {', '.join(missing)}",
                  file=sys.stderr)
            return 1
        write_docs(args.docs, args.out, infos["digits_cnn"], infos["kws_lstm"])
        print(f"make_models: wrote {args.docs}")
    return status


if __name__ == "__main__":
    sys.exit(main())
