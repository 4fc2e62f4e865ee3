"""Calibration runs and calibration data: batched runs see exactly what single runs see,
.npy/.npz/folders load, images decode (PNG against an independent encoder written here) and
preprocess as documented."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from helpers import make_model
from onnx import helper

from edgec.compiler import CompileOptions, compile_graph
from edgec.errors import DataError
from edgec.frontend.onnx import import_model
from edgec.quant import ImagePreprocess, calibrate, load_calibration_inputs
from edgec.quant.calibrate import RANDOM_WARNING, random_calibration_inputs
from edgec.quant.images import decode_png, decode_pnm, preprocess_image, resize_bilinear

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)


def conv_model():
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["y"])]
    return make_model(nodes, {"x": (np.float32, [1, 3, 6, 6])}, {"y": (np.float32, [1, 4, 1, 1])},
                      {"W": W})


def fp32_graph():
    from edgec.compiler import run_pipeline
    from edgec.targets import get_target

    g = import_model(conv_model(), name="t")
    return run_pipeline(g, get_target("generic-fp32"), CompileOptions())


def test_batched_calibration_sees_what_single_runs_see():
    g = fp32_graph()
    samples = random_calibration_inputs(g, 7, seed=3)
    batched = calibrate(g, samples, chunk=4)
    single = calibrate(g, samples, chunk=1)
    assert batched.batched and not single.batched
    assert batched.stats.keys() == single.stats.keys()
    for name, s in single.stats.items():
        b = batched.stats[name]
        assert b.count == s.count
        assert np.isclose(b.min, s.min, rtol=1e-5, atol=1e-6)
        assert np.isclose(b.max, s.max, rtol=1e-5, atol=1e-6)


def test_calibration_files_and_folders(tmp_path):
    g = fp32_graph()
    batch = RNG.standard_normal((5, 3, 6, 6)).astype(np.float32)
    np.save(tmp_path / "a.npy", batch)
    np.savez(tmp_path / "b.npz", x=batch[:2], labels=np.arange(2))
    assert len(load_calibration_inputs(g, tmp_path / "a.npy")) == 5
    assert len(load_calibration_inputs(g, tmp_path / "b.npz")) == 2
    assert len(load_calibration_inputs(g, tmp_path)) == 7
    assert len(load_calibration_inputs(g, tmp_path, limit=3)) == 3
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 5, 5), np.float32))
    with pytest.raises(DataError, match="expects 1x3x6x6"):
        load_calibration_inputs(g, tmp_path / "bad.npy")
    with pytest.raises(DataError, match="does not exist"):
        load_calibration_inputs(g, tmp_path / "missing.npz")


def test_without_calibration_data_int8_warns_and_uses_random_inputs():
    g = import_model(conv_model(), name="t")
    result = compile_graph(g, CompileOptions(target="generic-int8"), model_name="t")
    assert result.warnings == [RANDOM_WARNING]
    assert result.report["quantization"]["calibration"]["source"].startswith("seeded random")


# ------------------------------------------------------------------------------ images
def _png(img: np.ndarray, color: int, filters: list[int]) -> bytes:
    """A PNG encoder (8-bit), applying the given filter type to each row."""
    h, w = img.shape[:2]
    bpp = img.shape[2] if img.ndim == 3 else 1
    raw = img.reshape(h, w * bpp).astype(np.int32)
    out = b""
    prev = np.zeros(w * bpp, np.int32)
    for y in range(h):
        f = filters[y % len(filters)]
        row = raw[y]
        left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
        if f == 0:
            pred = np.zeros_like(row)
        elif f == 1:
            pred = left
        elif f == 2:
            pred = prev
        elif f == 3:
            pred = (left + prev) // 2
        else:
            p = left + prev - upleft
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        out += bytes([f]) + ((row - pred) & 0xFF).astype(np.uint8).tobytes()
        prev = row

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    head = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(out))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("color,channels", [(2, 3), (0, 1), (6, 4)])
def test_png_decoder_reads_every_filter_type(color, channels):
    img = RNG.integers(0, 256, (7, 5, channels), dtype=np.uint8)
    got = decode_png(_png(img, color, [0, 1, 2, 3, 4]))
    want = img[:, :, :3] if channels == 4 else img
    assert np.array_equal(got, want)


def test_pnm_decoder():
    img = RNG.integers(0, 256, (4, 3, 3), dtype=np.uint8)
    blob = b"P6\n# comment\n3 4\n255\n" + img.tobytes()
    assert np.array_equal(decode_pnm(blob), img)
    ascii_ = b"P2 2 1 255 10 20"
    assert decode_pnm(ascii_).reshape(-1).tolist() == [10, 20]


def test_preprocessing_follows_the_documented_steps():
    img = RNG.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    pp = ImagePreprocess(mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), channels="bgr",
                         resize="crop")
    x = preprocess_image(img, (1, 3, 4, 4), pp)
    crop = img[:, 2:10].astype(np.float64)  # centre crop to a square
    small = resize_bilinear(crop, 4, 4)[:, :, ::-1]
    want = (small / 255.0 - np.array([0.5, 0.4, 0.3])) / np.array([0.2, 0.25, 0.3])
    assert x.shape == (3, 4, 4)
    assert np.allclose(x, np.transpose(want, (2, 0, 1)), atol=1e-5)
    # Downscaling by an integer factor with half-pixel centres averages 2x2 blocks.
    flat = np.arange(16, dtype=np.float64).reshape(4, 4, 1)
    assert np.allclose(resize_bilinear(flat, 2, 2)[:, :, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_image_folder_calibration(tmp_path):
    g = fp32_graph()
    for i in range(3):
        img = RNG.integers(0, 256, (10, 10, 3), dtype=np.uint8)
        (tmp_path / f"im{i}.png").write_bytes(_png(img, 2, [4]))
    samples = load_calibration_inputs(g, tmp_path, ImagePreprocess(mean=(0.5,), std=(0.25,)))
    assert len(samples) == 3 and samples[0]["x"].shape == (1, 3, 6, 6)
    assert -2.0 - 1e-6 <= min(s["x"].min() for s in samples)
    (tmp_path / "x.jpg").write_bytes(b"not really")
    try:
        import PIL  # noqa: F401
    except ImportError:
        with pytest.raises(DataError, match="Pillow"):
            load_calibration_inputs(g, tmp_path)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_fast_conv_kernels_match_the_conv_reference(layout):
    from edgec.ir import Graph, TensorType
    from edgec.ops import get_op
    from edgec.quant import fast_kernels

    cases = [dict(group=1, pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1], k=3, c=4, m=6),
             dict(group=4, pads=[1, 0, 2, 1], strides=[2, 1], dilations=[1, 1], k=3, c=4, m=4),
             dict(group=2, pads=[0, 0, 0, 0], strides=[1, 2], dilations=[2, 1], k=3, c=4, m=6),
             dict(group=1, pads=[0, 0, 0, 0], strides=[1, 1], dilations=[1, 1], k=1, c=4, m=5)]
    for case in cases:
        g = Graph()
        shape = (2, case["c"], 7, 6) if layout == "NCHW" else (2, 7, 6, case["c"])
        x = g.add_input("x", TensorType(shape))
        w = g.const(RNG.standard_normal((case["m"], case["c"] // case["group"], case["k"],
                                         case["k"])).astype(np.float32))
        b = g.const(RNG.standard_normal(case["m"]).astype(np.float32))
        node = g.add_node("Conv", [x, w, b], attrs={
            "group": case["group"], "pads": case["pads"], "strides": case["strides"],
            "dilations": case["dilations"], "kernel_shape": [case["k"]] * 2, "layout": layout,
            "activation": "clip", "act_alpha": -0.5, "act_beta": 1.0})
        xd = RNG.standard_normal(shape).astype(np.float32)
        want = get_op("Conv").reference(node, xd, w.data, b.data)[0]
        got = fast_kernels.conv_fast(node, xd, w.data, b.data)
        assert got.shape == want.shape
        assert np.allclose(got, want, atol=1e-5), case


def test_cli_compile_with_an_image_folder(tmp_path):
    import json
    import subprocess
    import sys

    import onnx

    onnx.save(conv_model(), tmp_path / "m.onnx")
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.png").write_bytes(_png(RNG.integers(0, 256, (9, 7, 3), dtype=np.uint8),
                                               2, [1, 3]))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "edgec.cli", "compile", str(tmp_path / "m.onnx"), "-t",
         "generic-int8", "--calib", str(folder), "--calib-mean", "0.485,0.456,0.406",
         "--calib-std", "0.229,0.224,0.225", "--calib-method", "percentile",
         "--calib-resize", "stretch", "-o", str(out)], capture_output=True, text=True,
        check=False)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr and "int8 (static)" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    cal = report["quantization"]["calibration"]
    assert cal["method"] == "percentile" and cal["samples"] == 4
    assert cal["source"] == str(folder)
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "compile", str(tmp_path / "m.onnx"),
                           "-t", "generic-int8", "--calib", str(folder), "--calib-mean", "a,b",
                           "-o", str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "--calib-mean" in proc.stderr
