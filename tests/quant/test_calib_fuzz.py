"""Mutation fuzzing of calibration and --inputs files (.npy, .npz, PNG, PGM/PPM): byte flips,
truncations, insertions, and header-aware mutations (the .npy header's dtype/shape/order, PNG
IHDR/IDAT with valid CRCs, PGM header numbers). Each mutant either loads and calibrates to
finite, positive int8 scales, or is refused with one DataError line; any other exception, a
warning, or a hang (a generous alarm) fails. Seeded; EDGEC_FUZZ_CASES sets the number of
mutants (default 1500, about 10 s), EDGEC_FUZZ_SEED the seed."""

from __future__ import annotations

import io
import os
import signal
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

from edgec import cli
from edgec.compiler import CompileOptions, run_pipeline
from edgec.errors import DataError
from edgec.frontend.onnx import import_model
from edgec.qmath import choose_qparams
from edgec.quant import calibrate, load_calibration_inputs
from edgec.targets import get_target
from edgec.workbench.compare import load_inputs

CASES = int(os.environ.get("EDGEC_FUZZ_CASES", "1500"))
SEED = int(os.environ.get("EDGEC_FUZZ_SEED", "2026"))
HANG_SECONDS = 120  # a hang detector, not a speed bound: one case takes milliseconds
SHAPE = (1, 3, 6, 6)
DTYPES = ["<f4", "<f8", "<f2", "|u1", "<i8", "|b1", "<c8", "<U3", "|S2", "|O", "|V4",
          "<M8[s]", ">f4", "<u8", "[('a', '<f4')]", "<f16", "zz", ""]
SHAPES = ["(1, 3, 6, 6)", "(3, 3, 6, 6)", "(0, 3, 6, 6)", "(3, 6, 6)", "()", "(1,)",
          "(2, 3, 5, 5)", "(4611686018427387904, 3, 6, 6)", "(-1, 3, 6, 6)", "(1, 3, 6)",
          "(1, 3, 6, 6, 1)", "[1, 3, 6, 6]", "(1.5, 3, 6, 6)", "None", "(99999, 3, 6, 6)"]


def conv_model():
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["y"])]
    return make_model(nodes, {"x": (np.float32, list(SHAPE))}, {"y": (np.float32, [1, 4, 1, 1])},
                      {"W": w})


@pytest.fixture(scope="module")
def graph():
    g = import_model(conv_model(), name="f")
    return run_pipeline(g, get_target("generic-fp32"), CompileOptions())


# ------------------------------------------------------------------------- seeds
def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, depth: int, color: int, interlace: int, idat: bytes) -> bytes:
    head = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", head) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def seeds(rng: np.random.Generator) -> dict[str, bytes]:
    """One valid file of each kind."""
    data = rng.standard_normal((3, *SHAPE[1:])).astype(np.float32)
    npz = io.BytesIO()
    np.savez(npz, x=data, labels=np.arange(3))
    pixels = rng.integers(0, 256, (8, 8 * 3), dtype=np.uint8)
    rows = np.hstack([np.full((8, 1), 4, np.uint8), pixels])  # Paeth-filtered rows
    return {"npy": _npy(data), "npz": npz.getvalue(),
            "png": _png(8, 8, 8, 2, 0, zlib.compress(rows.tobytes())),
            "pgm": b"P5\n# seed\n6 6\n255\n" + rng.integers(0, 256, 36, np.uint8).tobytes(),
            "ppm": b"P3 2 2 15 " + b" ".join(b"%d" % v for v in rng.integers(0, 16, 12))}


# ------------------------------------------------------------------------- mutators
def flip_bytes(rng, blob: bytes) -> bytes:
    out = bytearray(blob)
    for _ in range(int(rng.integers(1, 9))):
        if out:
            out[int(rng.integers(len(out)))] = int(rng.integers(256))
    return bytes(out)


def truncate(rng, blob: bytes) -> bytes:
    return blob[:int(rng.integers(0, len(blob) + 1))]


def splice(rng, blob: bytes) -> bytes:
    at = int(rng.integers(0, len(blob) + 1))
    if rng.random() < 0.5:
        return blob[:at] + rng.integers(0, 256, int(rng.integers(1, 64)), np.uint8).tobytes() \
            + blob[at:]
    return blob[:at] + blob[at + int(rng.integers(1, 64)):]


def npy_header(rng, blob: bytes) -> bytes:
    """Rewrite the .npy header dict with another dtype, order or shape (length kept valid)."""
    descr = DTYPES[int(rng.integers(len(DTYPES)))]
    descr = descr if descr.startswith("[") else repr(descr)
    order = "True" if rng.random() < 0.2 else "False"
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    text = f"{{'descr': {descr}, 'fortran_order': {order}, 'shape': {shape}, }}"
    if rng.random() < 0.1:
        text = text.replace("'shape'", "'shap'")
    head = text.encode("latin1")
    head += b" " * ((64 - (10 + len(head) + 1) % 64) % 64) + b"\n"
    version_1 = blob[6:8] == b"\x01\x00" and len(blob) >= 10  # else: all of it is replaced
    start = 10 + struct.unpack("<H", blob[8:10])[0] if version_1 else len(blob)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head + blob[start:]


def npz_member(rng, blob: bytes) -> bytes:
    """Re-zip the .npz with its x member mutated, renamed, or an extra member added."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            members = {name: zf.read(name) for name in zf.namelist()}
    except Exception:  # broken by an earlier mutation: zipfile raises many kinds
        return flip_bytes(rng, blob)
    name = "x.npy"
    if name not in members:
        return flip_bytes(rng, blob)
    members[name] = MUTATORS["npy"][int(rng.integers(len(MUTATORS["npy"])))](rng, members[name])
    roll = rng.random()
    if roll < 0.15:
        members["notes.txt"] = b"hello"
    elif roll < 0.3:
        members["x"] = members.pop(name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for key, value in members.items():
            zf.writestr(key, value)
    return out.getvalue()


def png_fields(rng, blob: bytes) -> bytes:
    """A PNG with random IHDR fields and/or random IDAT content, CRCs valid."""
    width, height = (int(v) for v in rng.choice([0, 1, 7, 8, 9, 40000, 2**31 - 1], 2))
    depth = int(rng.choice([1, 2, 4, 8, 16, 3, 0]))
    color = int(rng.choice([0, 2, 3, 4, 6, 1, 7]))
    interlace = int(rng.choice([0, 0, 1, 2]))
    if rng.random() < 0.5:
        idat = zlib.compress(rng.integers(0, 256, int(rng.integers(0, 400)), np.uint8).tobytes())
    else:
        idat = rng.integers(0, 256, int(rng.integers(0, 64)), np.uint8).tobytes()
    if rng.random() < 0.5:
        width, height, depth, color, interlace = 8, 8, 8, 2, 0
    return _png(width, height, depth, color, interlace, idat)


def pnm_header(rng, blob: bytes) -> bytes:
    """A PGM/PPM with random header numbers (some not numbers) and random pixel bytes."""
    magic = [b"P2", b"P3", b"P5", b"P6", b"P1", b"P7", b"PX"][int(rng.integers(7))]
    numbers = [b"%d" % int(v) for v in rng.choice([0, 1, 6, 255, 256, 65535, 65536,
                                                   10**12], 3)]
    if rng.random() < 0.2:
        numbers[int(rng.integers(3))] = [b"-3", b"1e3", b"x", b"#", b""][int(rng.integers(5))]
    body = rng.integers(0, 256, int(rng.integers(0, 200)), np.uint8).tobytes()
    if magic in (b"P2", b"P3") and rng.random() < 0.7:
        body = b" ".join(b"%d" % v for v in rng.integers(-2, 70000, int(rng.integers(0, 120))))
    return magic + b"\n" + b" ".join(numbers) + b"\n" + body


GENERIC = [flip_bytes, truncate, splice]
MUTATORS = {"npy": GENERIC + [npy_header, npy_header],
            "npz": GENERIC + [npz_member, npz_member],
            "png": GENERIC + [png_fields, png_fields],
            "pgm": GENERIC + [pnm_header],
            "ppm": GENERIC + [pnm_header]}


def mutants(count: int, seed: int):
    """(index, kind, bytes) of `count` mutants, the same for the same seed."""
    rng = np.random.default_rng(seed)
    base = seeds(rng)
    kinds = sorted(base)
    for i in range(count):
        kind = kinds[i % len(kinds)]
        blob = base[kind]
        for _ in range(int(rng.integers(1, 3))):
            blob = MUTATORS[kind][int(rng.integers(len(MUTATORS[kind])))](rng, blob)
        yield i, kind, blob


# ------------------------------------------------------------------------- the checks
@contextmanager
def strict(label: str):
    """Warnings are errors; a case running HANG_SECONDS fails as a hang."""
    def hang(signum, frame):
        raise AssertionError(f"{label}: still running after {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(HANG_SECONDS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with np.errstate(over="warn", invalid="warn", divide="warn"):
                yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _write(tmp_path, i: int, kind: str, blob: bytes):
    """The path to give --calib: the file itself, or a folder holding the image."""
    if kind in ("npy", "npz"):
        path = tmp_path / f"m{i}.{kind}"
        path.write_bytes(blob)
        return path
    folder = tmp_path / f"m{i}"
    folder.mkdir()
    (folder / f"img.{kind}").write_bytes(blob)
    return folder


def check(g, path, kind: str, label: str) -> str:
    """'ok' or 'refused'; anything else raises."""
    outcome = "ok"
    with strict(label):
        try:
            samples = load_calibration_inputs(g, path)
            cal = calibrate(g, samples[:4], progress=False)
            for name in cal.stats:
                scale, _ = choose_qparams(*cal.range_of(name))
                assert np.isfinite(scale) and scale > 0, (label, name, scale)
        except DataError as e:
            assert "\n" not in str(e) and "\r" not in str(e), (label, str(e))
            outcome = "refused"
        if kind in ("npy", "npz"):
            try:
                feeds = load_inputs(path, g)
                assert feeds["x"].dtype == np.float32
            except DataError as e:
                assert "\n" not in str(e), (label, str(e))
    return outcome


def test_mutated_calibration_files_load_or_are_refused_in_one_line(graph, tmp_path):
    outcomes = {"ok": 0, "refused": 0}
    for i, kind, blob in mutants(CASES, SEED):
        label = f"mutant {i} ({kind}, EDGEC_FUZZ_SEED={SEED})"
        outcomes[check(graph, _write(tmp_path, i, kind, blob), kind, label)] += 1
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == CASES
    if CASES >= 100:
        assert outcomes["ok"] > 0  # the mutations do not all break the files


def test_mutants_through_the_cli_exit_0_or_2_with_one_line(tmp_path, capfd):
    onnx.save(conv_model(), tmp_path / "m.onnx")
    for i, kind, blob in mutants(5, SEED + 1):
        path = _write(tmp_path, i, kind, blob)
        capfd.readouterr()
        code = cli.main(["compile", str(tmp_path / "m.onnx"), "-t", "generic-int8", "--calib",
                         str(path), "-o", str(tmp_path / f"out{i}")])
        err = capfd.readouterr().err
        assert (code == 0 and err == "") or \
            (code == 2 and len(err.splitlines()) == 1 and err.startswith("edgec: error: ")), \
            (i, kind, code, err)
