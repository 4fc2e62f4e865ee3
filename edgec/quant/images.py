"""Calibration from a folder of images: decoding and the documented preprocessing.

Preprocessing (flags of `edgec compile --calib DIR`, see docs/int8.md), in this order:
  1. decode to 8-bit RGB (or grayscale for 1-channel models); alpha is dropped;
  2. resize to the model's spatial size (or --calib-size HxW) with bilinear interpolation
     (half-pixel centres, as PIL and OpenCV use), after an optional centre crop to the
     target aspect ratio (--calib-resize crop, the default; `stretch` skips the crop);
  3. x = (pixel * scale - mean[c]) / std[c], scale = --calib-scale (default 1/255);
  4. channel order --calib-channels rgb|bgr, layout --calib-layout nchw|nhwc (default: the
     model input's layout, guessed from where its 1- or 3-sized channel axis is).

Decoders: PNG (8/16-bit gray, gray+alpha, RGB, RGBA, palette; non-interlaced) and binary or
ASCII PPM/PGM are built in; other formats (JPEG, BMP, ...) use Pillow when it is installed.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError

BUILTIN_SUFFIXES = {".png", ".ppm", ".pgm", ".pnm"}
PILLOW_SUFFIXES = {".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
IMAGE_SUFFIXES = BUILTIN_SUFFIXES | PILLOW_SUFFIXES


@dataclass
class ImagePreprocess:
    """How images become model inputs (None fields are derived from the model input)."""

    size: tuple[int, int] | None = None
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    scale: float = 1.0 / 255.0
    channels: str = "rgb"
    layout: str | None = None
    resize: str = "crop"
    extra: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------ decoding
def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _unfilter(raw: bytes, height: int, stride: int, bpp: int) -> np.ndarray:
    data = np.frombuffer(raw, np.uint8)
    if data.size != height * (stride + 1):
        raise ValueError("PNG image data has the wrong size")
    rows = data.reshape(height, stride + 1)
    out = np.zeros((height, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: running sum per byte lane
            pad = (-stride) % bpp
            lanes = np.concatenate([line, np.zeros(pad, np.int32)]).reshape(-1, bpp)
            cur = (np.cumsum(lanes, axis=0) & 0xFF).reshape(-1)[:stride]
        elif kind == 2:
            cur = (line + prev) & 0xFF
        elif kind in (3, 4):  # Average / Paeth: sequential over pixels
            cur = np.zeros(stride, np.int32)
            for x in range(0, stride, bpp):
                left = cur[x - bpp:x] if x >= bpp else np.zeros(min(bpp, stride - x), np.int32)
                up = prev[x:x + bpp]
                if kind == 3:
                    pred = (left + up) >> 1
                else:
                    ul = prev[x - bpp:x] if x >= bpp else np.zeros_like(up)
                    pred = _paeth(left, up, ul)
                cur[x:x + bpp] = (line[x:x + bpp] + pred) & 0xFF
        else:
            raise ValueError(f"unknown PNG filter type {kind}")
        out[y] = cur
        prev = cur
    return out.astype(np.uint8)


def decode_png(blob: bytes) -> np.ndarray:
    """An 8-bit PNG as uint8 [H, W, C] with C in (1, 3) (alpha dropped, palette expanded)."""
    if blob[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat, palette, header = 8, [], None, None
    while pos + 8 <= len(blob):
        length, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        body = blob[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("PNG without IHDR")
    width, height, depth, color, _, _, interlace = header
    if interlace:
        raise ValueError("interlaced PNG is not supported (re-save without interlacing)")
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    if depth not in (8, 16) or (color == 3 and depth != 8):
        raise ValueError(f"PNG bit depth {depth} is not supported (use 8 or 16 bits)")
    bpp = channels * depth // 8
    pixels = _unfilter(zlib.decompress(b"".join(idat)), height, width * bpp, bpp)
    if depth == 16:
        pixels = pixels.reshape(height, width * channels, 2)[:, :, 0]  # high bytes
    img = pixels.reshape(height, width, channels)
    if color == 3:
        if palette is None:
            raise ValueError("palette PNG without PLTE")
        return palette[img[:, :, 0]]
    if channels in (2, 4):
        img = img[:, :, :channels - 1]
    return np.ascontiguousarray(img)


def decode_pnm(blob: bytes) -> np.ndarray:
    """A PGM/PPM (P2, P3, P5, P6; maxval <= 255 or 16-bit) as uint8 [H, W, C]."""
    magic = blob[:2]
    if magic not in (b"P2", b"P3", b"P5", b"P6"):
        raise ValueError("not a PGM/PPM file")
    channels = 3 if magic in (b"P3", b"P6") else 1
    tokens, pos = [], 2
    while len(tokens) < 3:
        while pos < len(blob) and blob[pos:pos + 1].isspace():
            pos += 1
        if blob[pos:pos + 1] == b"#":
            pos = blob.index(b"\n", pos) + 1
            continue
        start = pos
        while pos < len(blob) and not blob[pos:pos + 1].isspace():
            pos += 1
        tokens.append(int(blob[start:pos]))
    width, height, maxval = tokens
    count = width * height * channels
    if magic in (b"P5", b"P6"):
        pos += 1
        dtype = np.uint8 if maxval < 256 else np.dtype(">u2")
        data = np.frombuffer(blob, dtype, count, pos).astype(np.float64)
    else:
        data = np.array(blob[pos:].split()[:count], dtype=np.float64)
    data = np.round(data * (255.0 / maxval)).astype(np.uint8)
    return data.reshape(height, width, channels)


def read_image(path: Path) -> np.ndarray:
    """Decode one image file to uint8 [H, W, C] (C = 1 or 3)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".png":
            return decode_png(path.read_bytes())
        if suffix in (".ppm", ".pgm", ".pnm"):
            return decode_pnm(path.read_bytes())
    except (ValueError, KeyError, zlib.error, struct.error, IndexError) as e:
        raise DataError(f"cannot decode image '{path}': {e}") from None
    try:
        from PIL import Image
    except ImportError:
        raise DataError(f"'{path}': {suffix} images need Pillow (pip install pillow); PNG, PPM "
                        "and PGM are read without it") from None
    try:
        with Image.open(path) as im:
            im = im.convert("L" if im.mode in ("L", "I", "I;16", "1") else "RGB")
            arr = np.asarray(im, dtype=np.uint8)
    except Exception as e:
        raise DataError(f"cannot decode image '{path}': {e}") from None
    return arr[:, :, None] if arr.ndim == 2 else arr


# ------------------------------------------------------------------------------ geometry
def resize_bilinear(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of float [H, W, C] with half-pixel centres (edges clamped)."""
    h, w = img.shape[:2]

    def axis(n_in: int, n_out: int):
        pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        pos = np.clip(pos, 0, n_in - 1)
        i0 = np.floor(pos).astype(np.int64)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, (pos - i0)

    y0, y1, fy = axis(h, height)
    x0, x1, fx = axis(w, width)
    top = img[y0][:, x0] * (1 - fx)[None, :, None] + img[y0][:, x1] * fx[None, :, None]
    bot = img[y1][:, x0] * (1 - fx)[None, :, None] + img[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bot * fy[:, None, None]


def centre_crop_to_aspect(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """The largest centred crop of `img` with the aspect ratio height:width."""
    h, w = img.shape[:2]
    if h * width > w * height:  # too tall
        ch = max(1, round(w * height / width))
        top = (h - ch) // 2
        return img[top:top + ch]
    cw = max(1, round(h * width / height))
    left = (w - cw) // 2
    return img[:, left:left + cw]


def model_image_geometry(shape: tuple[int, ...], layout: str | None) -> tuple[str, int, int, int]:
    """(layout, channels, height, width) of a 4-D image input shape."""
    if len(shape) != 4:
        raise DataError(f"an image folder can calibrate only 4-D image inputs, not "
                        f"{'x'.join(map(str, shape))}")
    if layout is None:
        layout = "nhwc" if shape[3] in (1, 3) and shape[1] not in (1, 3) else "nchw"
    if layout == "nchw":
        return layout, shape[1], shape[2], shape[3]
    return layout, shape[3], shape[1], shape[2]


def preprocess_image(img: np.ndarray, shape: tuple[int, ...], pp: ImagePreprocess) -> np.ndarray:
    """One decoded image -> float32 array of the model input's shape without the batch axis."""
    layout, c, h, w = model_image_geometry(shape, pp.layout)
    if pp.size is not None:
        h, w = pp.size
    x = img.astype(np.float64)
    if c == 1 and x.shape[2] == 3:
        x = (x @ np.array([0.299, 0.587, 0.114]))[:, :, None]  # ITU-R 601 luma, as PIL "L"
    elif c == 3 and x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    elif c not in (1, 3):
        raise DataError(f"image inputs need 1 or 3 channels, the model input has {c}")
    if pp.resize == "crop":
        x = centre_crop_to_aspect(x, h, w)
    if x.shape[:2] != (h, w):
        x = resize_bilinear(x, h, w)
    if pp.channels == "bgr" and c == 3:
        x = x[:, :, ::-1]
    mean = np.broadcast_to(np.asarray(pp.mean, np.float64), (c,))
    std = np.broadcast_to(np.asarray(pp.std, np.float64), (c,))
    x = (x * pp.scale - mean) / std
    if layout == "nchw":
        x = np.transpose(x, (2, 0, 1))
    return x.astype(np.float32)


def load_image_folder(folder: Path, shape: tuple[int, ...], pp: ImagePreprocess,
                      limit: int | None = None) -> np.ndarray:
    """Every image in `folder` (sorted by name, recursively) preprocessed: float32 [N, ...]."""
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"calibration folder '{folder}' holds no images "
                        f"({', '.join(sorted(IMAGE_SUFFIXES))}) and no .npy/.npz files")
    if limit is not None:
        files = files[:limit]
    batch = shape[0]
    arrays = [preprocess_image(read_image(p), shape, pp) for p in files]
    stacked = np.stack(arrays)
    usable = len(arrays) - len(arrays) % batch
    if usable == 0:
        raise DataError(f"'{folder}': {len(arrays)} image(s) cannot fill one batch of {batch}")
    return stacked[:usable].reshape(usable // batch * batch, *shape[1:])
