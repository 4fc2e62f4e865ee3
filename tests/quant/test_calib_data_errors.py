"""Bad calibration and --inputs data: every case is one DataError line naming the file or flag
(exit 2 through the CLI), never a numpy warning or an internal error; extreme but valid data
(1e-40, denormal weights) calibrates to finite, positive, normal float32 scales."""

from __future__ import annotations

import struct
import warnings
import zipfile
import zlib
from contextlib import contextmanager

import numpy as np
import onnx
import pytest
from helpers import make_model
from onnx import helper

from edgec import cli, datafiles
from edgec.compiler import CompileOptions, compile_graph, run_pipeline
from edgec.errors import DataError
from edgec.frontend.onnx import import_model
from edgec.quant import ImagePreprocess, load_calibration_inputs
from edgec.quant.calibrate import snr_db
from edgec.quant.images import preprocess_image
from edgec.quant.observers import MIN_RANGE, TensorStats
from edgec.targets import get_target
from edgec.workbench.compare import load_inputs

RNG = np.random.default_rng(5)
SHAPE = (1, 3, 6, 6)


def conv_model(weights: np.ndarray | None = None):
    w = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32) if weights is None else weights
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["y"])]
    return make_model(nodes, {"x": (np.float32, list(SHAPE))}, {"y": (np.float32, [1, 4, 1, 1])},
                      {"W": w})


@pytest.fixture(scope="module")
def graph():
    g = import_model(conv_model(), name="t")
    return run_pipeline(g, get_target("generic-fp32"), CompileOptions())


@contextmanager
def no_warnings():
    """Any Python or numpy warning (numpy's default error handling) fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="warn", invalid="warn", divide="warn"):
            yield


def one_line_error(fn, *fragments: str) -> str:
    with no_warnings(), pytest.raises(DataError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bytes(width: int, height: int, rows: bytes = b"") -> bytes:
    head = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", head) + _chunk(b"IDAT", zlib.compress(rows))
            + _chunk(b"IEND", b""))


# ------------------------------------------------------------------------- array files
def _npz_with_text_member(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.txt", "hello")


ARRAY_CASES = {
    "string": (lambda p: np.save(p, np.array(["a", "b"])), "not numbers"),
    "bytes": (lambda p: np.save(p, np.zeros(SHAPE, "S3")), "not numbers"),
    "structured": (lambda p: np.save(p, np.zeros(SHAPE, [("a", "f4"), ("b", "i4")])),
                   "not numbers"),
    "complex": (lambda p: np.save(p, np.zeros(SHAPE, np.complex64)), "not numbers"),
    "datetime": (lambda p: np.save(p, np.zeros(SHAPE, "M8[s]")), "not numbers"),
    "wrong shape": (lambda p: np.save(p, np.zeros((2, 3, 5, 5), np.float32)), "expects 1x3x6x6"),
    "no samples": (lambda p: np.save(p, np.zeros((0, 3, 6, 6), np.float32)), "0x3x6x6"),
    "scalar": (lambda p: np.save(p, np.float32(1)), "has shape ()"),
    "truncated": (lambda p: p.write_bytes(_saved(np.zeros(SHAPE, np.float32))[:-7]),
                  "truncated"),
    "garbage": (lambda p: p.write_bytes(b"\x93NUMPY\x01\x00garbage"), "cannot read"),
    "huge header": (lambda p: p.write_bytes(_with_shape(np.zeros(4, np.float32), 2**43)),
                    "declares"),
}


def _with_shape(arr: np.ndarray, length: int) -> bytes:
    """An .npy of the 1-D `arr` whose header claims `length` elements (same header size)."""
    blob = _saved(arr)
    old, new = f"({arr.size},), }}".encode(), f"({length},), }}".encode()
    end = blob.index(b"\n")  # the header is padded with spaces up to its newline
    return blob[:end].replace(old, new).rstrip(b" ").ljust(end, b" ") + blob[end:]


def _saved(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.mark.parametrize("case", sorted(ARRAY_CASES))
def test_bad_npy_is_one_line_for_calib_and_inputs(graph, tmp_path, case):
    write, fragment = ARRAY_CASES[case]
    path = tmp_path / "bad.npy"
    write(path)
    one_line_error(lambda: load_calibration_inputs(graph, path), "bad.npy", fragment)
    one_line_error(lambda: load_inputs(path, graph), "bad.npy", fragment)


def test_bad_npz_and_special_files(graph, tmp_path, monkeypatch):
    _npz_with_text_member(tmp_path / "text.npz")
    # A zip bomb: the members' declared sizes are refused before anything is decompressed.
    monkeypatch.setattr(datafiles, "MAX_DATA_BYTES", 10_000)
    np.savez_compressed(tmp_path / "bomb.npz", x=np.zeros((100, 3, 6, 6), np.float32))
    for load in (lambda p: load_calibration_inputs(graph, p), lambda p: load_inputs(p, graph)):
        one_line_error(lambda: load(tmp_path / "text.npz"), "'x.txt'", "not an .npy")
        one_line_error(lambda: load("/dev/zero"), "/dev/zero", "not a regular file")
        np.savez(tmp_path / "two.npz", a=np.zeros(SHAPE, np.float32),
                 b=np.zeros(SHAPE, np.float32))
        one_line_error(lambda: load(tmp_path / "two.npz"), "lacks input(s) 'x'", "'a', 'b'")
        np.savez(tmp_path / "none.npz")
        one_line_error(lambda: load(tmp_path / "none.npz"), "lacks input(s) 'x'", "nothing")
        one_line_error(lambda: load(tmp_path / "bomb.npz"), "expands to", "split it")
        with zipfile.ZipFile(tmp_path / "liar.npz", "w") as z:  # header claims 32 TiB
            z.writestr("x.npy", _with_shape(np.zeros(4, np.float32), 2**43))
        one_line_error(lambda: load(tmp_path / "liar.npz"), "array 'x'", "declares")
        with zipfile.ZipFile(tmp_path / "short.npz", "w") as z:  # header claims 9 values, has 4
            z.writestr("x.npy", _with_shape(np.zeros(4, np.float32), 9))
        one_line_error(lambda: load(tmp_path / "short.npz"), "array 'x'", "truncated")
    (tmp_path / "folder" / "dir.npy").mkdir(parents=True)
    one_line_error(lambda: load_calibration_inputs(graph, tmp_path / "folder"), "dir.npy",
                   "not a regular file")
    (tmp_path / "dangling").mkdir()
    (tmp_path / "dangling" / "a.npy").symlink_to(tmp_path / "nowhere.npy")
    one_line_error(lambda: load_calibration_inputs(graph, tmp_path / "dangling"), "a.npy",
                   "cannot be read")


def test_integer_inputs_take_only_values_their_type_holds(tmp_path):
    nodes = [helper.make_node("Identity", ["i"], ["o"])]
    g = import_model(make_model(nodes, {"i": (np.int32, [2])}, {"o": (np.int32, [2])}), name="i")
    cases = {"frac": (np.array([1.5, 2.0]), "non-integer"),
             "nan": (np.array([np.nan, 2.0]), "non-integer"),
             "big": (np.array([2**40, 1], np.int64), "outside the int32 range")}
    for name, (arr, fragment) in cases.items():
        np.save(tmp_path / f"{name}.npy", arr)
        one_line_error(lambda: load_inputs(tmp_path / f"{name}.npy", g), fragment)
    np.save(tmp_path / "ok.npy", np.array([3.0, -4.0]))
    got = load_inputs(tmp_path / "ok.npy", g)["i"]
    assert got.dtype == np.int32 and got.tolist() == [3, -4]


def test_float64_inputs_convert_and_overflow_to_inf_quietly(graph, tmp_path):
    data = np.full(SHAPE, 1e300)
    data[0, 0, 0, 0] = 0.25
    np.save(tmp_path / "wide.npy", data)
    with no_warnings():
        got = load_calibration_inputs(graph, tmp_path / "wide.npy")[0]["x"]
    assert got.dtype == np.float32 and got[0, 0, 0, 0] == 0.25 and np.isinf(got).sum() == 107


# ------------------------------------------------------------------------- image folders
def test_bad_images_name_the_file(graph, tmp_path):
    cases = {"maxval0.pgm": b"P5 2 2 0\n\0\0\0\0",
             "empty.png": png_bytes(0, 0),
             "trunc.ppm": b"P6 4 4 255\n" + bytes(20),
             "words.pgm": b"P2 2 1 255 10 abc",
             "huge.pgm": b"P5 100000 100000 255\n",
             "cut.png": png_bytes(4, 4, bytes(4 * 13))[:-30],
             "junk.png": b"\x89PNG\r\n\x1a\nxx",
             "bomb.png": png_bytes(30000, 30000)}
    for name, blob in cases.items():
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        (folder / name).write_bytes(blob)
        one_line_error(lambda: load_calibration_inputs(graph, folder), name)
    empty = tmp_path / "nothing"
    empty.mkdir()
    one_line_error(lambda: load_calibration_inputs(graph, empty), "holds no .npy/.npz files")


def test_preprocessing_flags_are_checked():
    bad = [dict(size=(0, 0)), dict(std=(0.0,)), dict(std=(-1.0,)), dict(std=(np.nan,)),
           dict(mean=(np.inf,)), dict(scale=0.0), dict(scale=np.inf), dict(mean=())]
    for kwargs in bad:
        one_line_error(lambda: ImagePreprocess(**kwargs), "--calib-")
    img = RNG.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    one_line_error(lambda: preprocess_image(img, SHAPE, ImagePreprocess(mean=(1, 2, 3, 4))),
                   "--calib-mean has 4 values", "3 channel(s)")
    one_line_error(lambda: preprocess_image(img, SHAPE, ImagePreprocess(size=(3, 3))),
                   "--calib-size 3x3 differs", "6x6")
    one_line_error(lambda: preprocess_image(img, SHAPE, ImagePreprocess(scale=1e300)),
                   "beyond float32")
    one_line_error(lambda: preprocess_image(img, SHAPE, ImagePreprocess(std=(1e-320,))),
                   "beyond float32")


# ------------------------------------------------------------------------- extreme data
def _int8_scales(report: dict) -> list[float]:
    layers = report["quantization"]["layers"]
    return [layer[k] for layer in layers for k in ("x_scale", "y_scale") if k in layer]


def test_tiny_calibration_data_gets_the_minimal_scale(tmp_path):
    g = import_model(conv_model(), name="t")
    np.save(tmp_path / "tiny.npy", np.full((4, *SHAPE[1:]), 1e-40, np.float32))
    with no_warnings():
        result = compile_graph(g, CompileOptions(target="generic-int8",
                                                 calib=str(tmp_path / "tiny.npy")),
                               model_name="t")
    scales = _int8_scales(result.report)
    assert scales and all(np.isfinite(s) and s >= np.finfo(np.float32).tiny for s in scales)
    # The input range [0, 1e-40] is widened to [0, MIN_RANGE]: scale exactly 2^-63.
    assert result.report["quantization"]["layers"][0]["x_scale"] == 2.0**-63


def test_denormal_weights_calibrate_quietly(tmp_path):
    g = import_model(conv_model(np.full((4, 3, 3, 3), 1e-40, np.float32)), name="d")
    np.save(tmp_path / "calib.npy", RNG.standard_normal((4, *SHAPE[1:])).astype(np.float32))
    with no_warnings():
        result = compile_graph(g, CompileOptions(target="generic-int8",
                                                 calib=str(tmp_path / "calib.npy")),
                               model_name="d")
    scales = _int8_scales(result.report)
    assert scales and all(np.isfinite(s) and s >= np.finfo(np.float32).tiny for s in scales)


def test_histogram_of_extreme_values_keeps_counts_and_ranges_finite():
    cases = [[np.full(100, 1e-40, np.float32)],
             [np.full(10, 1e-40, np.float32), np.ones(10, np.float32)],
             [np.float32([-3e38, 3e38])],
             [np.float32([1e-45, -1e-45]), np.float32([3.4e38])],
             [np.zeros(5, np.float32), np.float32([1e-44])],
             # One outlier after ordinary data: growing the histogram used to loop ~1e9 times
             # (found by test_calib_fuzz.py).
             [RNG.standard_normal(108).astype(np.float32), np.float32([-6.57e25, 33375.7])]]
    for parts in cases:
        s = TensorStats()
        with no_warnings():
            for p in parts:
                s.update(p)
            for method in ("minmax", "percentile", "mse", "entropy"):
                lo, hi = s.range_for(method)
                assert np.isfinite(lo) and np.isfinite(hi) and lo <= 0 <= hi
                assert hi - lo >= MIN_RANGE
        allx = np.concatenate(parts)
        assert s.count == allx.size == s.hist.sum()
        assert s.min == allx.min() and s.max == allx.max()


# ------------------------------------------------------------------------- through the CLI
def test_cli_exit_codes_and_one_line(tmp_path, capfd):
    onnx.save(conv_model(), tmp_path / "m.onnx")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    (imgs / "a.pgm").write_bytes(b"P5 6 6 255\n" + bytes(range(36)))
    np.save(tmp_path / "tiny.npy", np.full((2, *SHAPE[1:]), 1e-40, np.float32))
    model, out = str(tmp_path / "m.onnx"), str(tmp_path / "out")
    compile_ = ["compile", model, "-t", "generic-int8", "-o", out, "--calib"]
    bad = [[*compile_, "/dev/zero"],
           [*compile_, str(imgs), "--calib-size", "0x0"],
           [*compile_, str(imgs), "--calib-mean", "1,2,3,4"],
           [*compile_, str(imgs), "--calib-std", "0"],
           [*compile_, str(imgs), "--calib-std", "nan"]]
    for argv in bad:
        capfd.readouterr()
        code = cli.main(argv)
        err = capfd.readouterr().err
        assert code == 2 and len(err.splitlines()) == 1, (argv, err)
        assert err.startswith("edgec: error: "), err
    capfd.readouterr()
    assert cli.main([*compile_, str(tmp_path / "tiny.npy")]) == 0
    assert capfd.readouterr().err == ""


def test_snr_leaves_out_positions_where_the_reference_is_not_finite():
    ref = np.float32([1.0, 2.0, np.inf, np.nan, 3e38])
    got = np.float32([1.0, 2.5, np.inf, 0.0, 3e38])
    with no_warnings():
        assert snr_db(ref, got) == pytest.approx(10 * np.log10((1 + 4 + 9e76) / 0.25))
        assert snr_db(ref[:2], np.float32([1.0, np.nan])) == -np.inf


def test_calibration_outlier_near_float_max_is_a_data_error_with_advice():
    """One value near 3e38 in digits' calibration data makes a layer's input range over 2^30
    times its output's: the int8 multiplier cannot be held; the error says what to check and
    which flag helps (it used to be an exit-3-style ValueError from the pass)."""
    from helpers import ZOO_DIR

    from edgec.compiler import compile_model

    x = np.load(ZOO_DIR / "digits_calib.npz")["x"][:8].copy()
    x[0, 0, 0, 0] = 3e38
    options = CompileOptions(target="generic-int8", calib_samples=[{"x": xi[None]} for xi in x])
    one_line_error(lambda: compile_model(ZOO_DIR / "digits_cnn.onnx", options),
                   "calibration data", "--keep-float")
