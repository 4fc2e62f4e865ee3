"""Image decoding for calibration folders: PNGs written here byte by byte (every row Paeth
filtered, 16-bit, gray+alpha, palette) decode to the pixels they were made from; Pillow's
decompression-bomb limit and truncated files are one DataError naming the file."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from edgec.errors import DataError
from edgec.quant import images
from edgec.quant.images import decode_png, decode_pnm, read_image

RNG = np.random.default_rng(11)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(raw_rows: np.ndarray, width: int, depth: int, color: int, filter_type: int = 0,
        palette: bytes | None = None) -> bytes:
    """A PNG of the given raw scanlines (bytes per row), every row with one filter type."""
    height, stride = raw_rows.shape
    bpp = max(1, stride // width)
    cur = raw_rows.astype(np.int32)
    up = np.vstack([np.zeros((1, stride), np.int32), cur[:-1]])
    left = np.hstack([np.zeros((height, bpp), np.int32), cur[:, :-bpp]])
    upleft = np.hstack([np.zeros((height, bpp), np.int32), up[:, :-bpp]])
    if filter_type == 4:  # Paeth, on the unfiltered neighbours (vectorised: no recursion)
        p = left + up - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
        pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    else:
        pred = np.zeros_like(cur)
    body = np.hstack([np.full((height, 1), filter_type, np.int32), (cur - pred) & 0xFF])
    head = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    extra = _chunk(b"PLTE", palette) if palette is not None else b""
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", head) + extra
            + _chunk(b"IDAT", zlib.compress(body.astype(np.uint8).tobytes(), 9))
            + _chunk(b"IEND", b""))


def test_a_large_paeth_png_decodes_to_its_pixels():
    img = RNG.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    blob = png(img.reshape(256, -1), 256, 8, 2, filter_type=4)
    assert len(blob) > 60_000
    assert np.array_equal(decode_png(blob), img)


def test_sixteen_bit_gray_alpha_and_palette_pngs():
    gray16 = RNG.integers(0, 65536, (5, 7), dtype=np.uint16)
    blob = png(gray16.astype(">u2").view(np.uint8).reshape(5, 14), 7, 16, 0, filter_type=4)
    assert np.array_equal(decode_png(blob)[:, :, 0], (gray16 >> 8).astype(np.uint8))
    gray_alpha16 = RNG.integers(0, 65536, (4, 3, 2), dtype=np.uint16)
    blob = png(gray_alpha16.astype(">u2").view(np.uint8).reshape(4, 12), 3, 16, 4)
    got = decode_png(blob)
    assert got.shape == (4, 3, 1)
    assert np.array_equal(got[:, :, 0], (gray_alpha16[:, :, 0] >> 8).astype(np.uint8))
    rgba = RNG.integers(0, 256, (3, 4, 4), dtype=np.uint8)
    assert np.array_equal(decode_png(png(rgba.reshape(3, 16), 4, 8, 6, 4)), rgba[:, :, :3])
    palette = RNG.integers(0, 256, (256, 3), dtype=np.uint8)
    index = RNG.integers(0, 256, (6, 5), dtype=np.uint8)
    blob = png(index, 5, 8, 3, palette=palette.tobytes())
    assert np.array_equal(decode_png(blob), palette[index])


def test_pnm_with_any_maxval_scales_to_eight_bits():
    values = np.array([0, 1, 500, 999, 1000], dtype=np.int64)
    blob = b"P5 5 1 1000\n" + values.astype(">u2").tobytes()
    want = np.floor(values * 255 / 1000 + 0.5).astype(np.uint8)  # no ties for these values
    assert decode_pnm(blob).reshape(-1).tolist() == want.tolist()
    assert decode_pnm(b"P2 3 1 7 0 7 9").reshape(-1).tolist() == [0, 255, 255]  # 9 clamps


def test_decompression_bomb_and_truncation_name_the_file(tmp_path, monkeypatch):
    img = RNG.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    blob = png(img.reshape(20, -1), 20, 8, 2)
    path = tmp_path / "big.png"
    path.write_bytes(blob)
    assert np.array_equal(read_image(path), img)
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 400 pixels: over twice the limit
    with pytest.raises(DataError, match="big.png.*(bomb|limit)"):
        read_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # over the limit, under twice it
    with pytest.raises(DataError, match="big.png.*(bomb|limit)"):
        read_image(path)
    pgm = tmp_path / "big.pgm"
    pgm.write_bytes(b"P5 20 20 255\n" + bytes(400))
    with pytest.raises(DataError, match="big.pgm.*limit of 300"):
        read_image(pgm)
    monkeypatch.undo()
    cut = tmp_path / "cut.png"
    cut.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(DataError, match="cut.png") as info:
        read_image(cut)
    assert "\n" not in str(info.value)


def test_jpeg_and_bmp_go_through_pillow(tmp_path):
    from PIL import Image

    img = RNG.integers(0, 256, (8, 9, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.bmp")
    assert np.array_equal(read_image(tmp_path / "a.bmp"), img)
    smooth = np.repeat(np.linspace(0, 255, 16, dtype=np.uint8)[None, :, None], 16, 0)
    Image.fromarray(np.repeat(smooth, 3, axis=2)).save(tmp_path / "a.jpg", quality=95)
    got = read_image(tmp_path / "a.jpg")
    assert got.shape == (16, 16, 3) and np.abs(got.astype(int) - smooth).max() <= 8
    assert images.IMAGE_SUFFIXES >= {".png", ".jpg", ".bmp", ".pgm", ".ppm"}


def test_pillow_opens_only_the_listed_formats(tmp_path):
    """An EPS (Pillow would run Ghostscript on it) or TGA named .png is refused."""
    from PIL import Image

    eps = tmp_path / "eps.png"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 4 4\nshowpage\n")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "x.tga")
    tga = tmp_path / "tga.png"
    tga.write_bytes((tmp_path / "x.tga").read_bytes())
    for path in (eps, tga):
        with pytest.raises(DataError, match=path.name):
            read_image(path)
