"""Calibration from a folder of images: decoding and the documented preprocessing.

Preprocessing (flags of `edgec compile --calib DIR`, see docs/int8.md), in this order:
  1. decode to 8-bit RGB (or grayscale for 1-channel models); alpha is dropped;
  2. resize to the model's spatial size (or --calib-size HxW) with bilinear interpolation
     (half-pixel centres, as PIL and OpenCV use), after an optional centre crop to the
     target aspect ratio (--calib-resize crop, the default; `stretch` skips the crop);
  3. x = (pixel * scale - mean[c]) / std[c], scale = --calib-scale (default 1/255);
  4. channel order --calib-channels rgb|bgr, layout --calib-layout nchw|nhwc (default: the
     model input's layout, guessed from where its 1- or 3-sized channel axis is).

Decoders: Pillow (a dependency) reads PNG, JPEG, BMP, GIF, TIFF and WebP, and may identify
no other format whatever the suffix (no EPS, which Pillow hands to Ghostscript); 16-bit
samples keep their high byte. PPM/PGM (P2, P3, P5, P6) are read here with numpy, because Pillow
decodes a maxval other than 255 and the ASCII forms pixel by pixel in Python. Images over
Pillow's MAX_IMAGE_PIXELS (its decompression-bomb limit) are refused before decoding;
truncated or corrupt files are a DataError naming the file.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgec.console import quote
from edgec.datafiles import quote_path
from edgec.errors import DataError

PNM_SUFFIXES = {".ppm", ".pgm", ".pnm"}
PILLOW_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
IMAGE_SUFFIXES = PNM_SUFFIXES | PILLOW_SUFFIXES
# The only formats Pillow may identify (whatever the suffix): no EPS (runs Ghostscript), PSD...
PILLOW_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's default MAX_IMAGE_PIXELS (2^32 / 4 / 3)
FLOAT32_MAX = float(np.finfo(np.float32).max)
GRAY_MODES = ("1", "L", "LA", "La", "I", "F") + ("I;16", "I;16B", "I;16L", "I;16N")


@dataclass
class ImagePreprocess:
    """How images become model inputs (None fields are derived from the model input).

    Checked when made: a size of at least 1x1, finite means, finite positive stds and scale.
    """

    size: tuple[int, int] | None = None
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    scale: float = 1.0 / 255.0
    channels: str = "rgb"
    layout: str | None = None
    resize: str = "crop"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 1):
            raise DataError(f"--calib-size must be at least 1x1, not "
                            f"{'x'.join(map(str, self.size))}")
        for flag, values, positive in (("--calib-mean", self.mean, False),
                                       ("--calib-std", self.std, True),
                                       ("--calib-scale", (self.scale,), True)):
            if not values:
                raise DataError(f"{flag} needs one number (or one per channel)")
            for v in values:
                if not np.isfinite(v) or (positive and not v > 0):
                    need = "finite numbers above 0" if positive else "finite numbers"
                    raise DataError(f"{flag} takes {need}, not {v}")
        if self.channels not in ("rgb", "bgr") or self.resize not in ("crop", "stretch") \
                or self.layout not in (None, "nchw", "nhwc"):
            raise DataError(f"unknown image preprocessing: channels {quote(self.channels)}, "
                            f"layout {quote(self.layout)}, resize {quote(self.resize)}")


# ------------------------------------------------------------------------------ decoding
def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise DataError("decoding calibration images needs Pillow: pip install pillow") \
            from None
    return Image


def max_image_pixels() -> int:
    """The largest image (in pixels) edgec decodes: Pillow's MAX_IMAGE_PIXELS."""
    try:
        from PIL import Image
    except ImportError:
        return DEFAULT_MAX_PIXELS
    return int(Image.MAX_IMAGE_PIXELS or DEFAULT_MAX_PIXELS)


def _is_gray_alpha_16(im) -> bool:
    """Pillow opens 16-bit gray+alpha PNGs as RGBA (rawmode LA;16B): still a gray image."""
    for tile in im.tile:
        args = tile[3]
        if (args[0] if isinstance(args, tuple) and args else args) == "LA;16B":
            return True
    return False


def _from_pillow(im, gray_alpha_16: bool) -> np.ndarray:
    """A loaded Pillow image as uint8 [H, W, C], C in (1, 3)."""
    if gray_alpha_16:
        arr = np.asarray(im, dtype=np.uint8)[:, :, 0]
    elif im.mode.startswith("I"):  # 16/32-bit gray: the high byte of 16 bits
        arr = np.asarray(im).astype(np.int64)
        arr = (np.clip(arr, 0, 65535) >> 8).astype(np.uint8)
    elif im.mode in GRAY_MODES:
        arr = np.asarray(im.convert("L"), dtype=np.uint8)
    else:  # RGB, RGBA (alpha dropped), palette, CMYK, YCbCr...
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def decode_with_pillow(source) -> np.ndarray:
    """A file (path or binary stream) decoded by Pillow to uint8 [H, W, C], C in (1, 3).

    ValueError for images beyond `max_image_pixels()` or without pixels; Pillow's own
    exceptions for unknown, truncated or corrupt files.
    """
    image = _pillow()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. palette transparency notes: not the user's
        warnings.simplefilter("error", image.DecompressionBombWarning)
        try:
            with image.open(source, formats=PILLOW_FORMATS) as im:
                width, height = im.size
                if width * height > max_image_pixels():
                    raise ValueError(f"{width}x{height} pixels exceed the limit of "
                                     f"{max_image_pixels()} (Pillow's MAX_IMAGE_PIXELS)")
                if width * height == 0:
                    raise ValueError(f"the image has no pixels ({width}x{height})")
                gray_alpha_16 = _is_gray_alpha_16(im)
                im.load()
                return _from_pillow(im, gray_alpha_16)
        except (image.DecompressionBombError, image.DecompressionBombWarning) as e:
            raise ValueError(f"decompression-bomb guard: {e}") from None


def decode_png(blob: bytes) -> np.ndarray:
    """A PNG as uint8 [H, W, C] with C in (1, 3) (alpha dropped, palette expanded)."""
    if blob[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    return decode_with_pillow(io.BytesIO(blob))


def _pnm_header(blob: bytes) -> tuple[list[int], int]:
    """The three header numbers (width, height, maxval) and the offset after the last."""
    tokens, pos = [], 2
    while len(tokens) < 3:
        while pos < len(blob) and blob[pos:pos + 1].isspace():
            pos += 1
        if blob[pos:pos + 1] == b"#":
            end = blob.find(b"\n", pos)
            if end < 0:
                raise ValueError("the header ends inside a comment")
            pos = end + 1
            continue
        start = pos
        while pos < len(blob) and not blob[pos:pos + 1].isspace() and pos - start <= 10:
            pos += 1
        token = blob[start:pos]
        if not token.isdigit():
            raise ValueError(f"bad header number {token[:12]!r}")
        tokens.append(int(token))
    return tokens, pos


def decode_pnm(blob: bytes) -> np.ndarray:
    """A PGM/PPM (P2, P3, P5, P6; maxval 1..65535) as uint8 [H, W, C]: round(v*255/maxval)."""
    magic = blob[:2]
    if magic not in (b"P2", b"P3", b"P5", b"P6"):
        raise ValueError("not a PGM/PPM file (P2, P3, P5 or P6)")
    channels = 3 if magic in (b"P3", b"P6") else 1
    (width, height, maxval), pos = _pnm_header(blob)
    if width < 1 or height < 1:
        raise ValueError(f"the image has no pixels ({width}x{height})")
    if width * height > max_image_pixels():
        raise ValueError(f"{width}x{height} pixels exceed the limit of {max_image_pixels()}")
    if not 1 <= maxval <= 65535:
        raise ValueError(f"maxval {maxval} is not in 1..65535")
    count = width * height * channels
    if magic in (b"P5", b"P6"):
        dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(">u2")
        if len(blob) < pos + 1 + count * dtype.itemsize:
            raise ValueError("the file is truncated (fewer pixels than its header declares)")
        data = np.frombuffer(blob, dtype, count, pos + 1).astype(np.float64)
    else:
        words = blob[pos:].split(maxsplit=count)[:count]
        if len(words) < count or not all(w.isdigit() for w in words):
            raise ValueError("the pixel values are truncated or not whole numbers")
        data = np.array(words, dtype=np.float64)
    data = np.minimum(data, maxval)  # out-of-range samples clamp (as Pillow does)
    data = np.round(data * (255.0 / maxval)).astype(np.uint8)
    return data.reshape(height, width, channels)


def read_image(path: Path) -> np.ndarray:
    """Decode one image file to uint8 [H, W, C] (C = 1 or 3); DataError naming the file."""
    try:
        if path.suffix.lower() in PNM_SUFFIXES:
            return decode_pnm(path.read_bytes())
        return decode_with_pillow(path)
    except (DataError, MemoryError):
        raise
    except Exception as e:  # Pillow's and our decoders' ways of refusing a file
        first = (str(e).splitlines() or [""])[0] or type(e).__name__
        raise DataError(f"cannot decode image {quote_path(path)}: {first}; remove or re-save it") \
            from None


# ------------------------------------------------------------------------------ geometry
def _bilinear_axis(n_in: int, n_out: int):
    """Source indices (i0, i1) and weights of i1 for each output position along one axis."""
    pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0, n_in - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (pos - i0)


def _bilinear(img: np.ndarray, ys, xs) -> np.ndarray:
    (y0, y1, fy), (x0, x1, fx) = ys, xs
    top = img[y0][:, x0] * (1 - fx)[None, :, None] + img[y0][:, x1] * fx[None, :, None]
    bot = img[y1][:, x0] * (1 - fx)[None, :, None] + img[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bot * fy[:, None, None]


def resize_bilinear(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of float [H, W, C] with half-pixel centres (edges clamped)."""
    h, w = img.shape[:2]
    return _bilinear(img, _bilinear_axis(h, height), _bilinear_axis(w, width))


def _resize_from_uint8(img: np.ndarray, height: int, width: int, to_float) -> np.ndarray:
    """resize_bilinear(to_float(img)) with to_float (a per-pixel map) applied only to the
    rows and columns the interpolation reads: the same numbers, without a float64 copy of a
    large image."""
    ys, xs = _bilinear_axis(img.shape[0], height), _bilinear_axis(img.shape[1], width)
    rows, cols = np.unique(np.concatenate(ys[:2])), np.unique(np.concatenate(xs[:2]))
    sub = to_float(img[rows][:, cols])
    remap_y = (np.searchsorted(rows, ys[0]), np.searchsorted(rows, ys[1]), ys[2])
    remap_x = (np.searchsorted(cols, xs[0]), np.searchsorted(cols, xs[1]), xs[2])
    return _bilinear(sub, remap_y, remap_x)


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
    geometry = (shape[1], shape[2], shape[3]) if layout == "nchw" else \
        (shape[3], shape[1], shape[2])
    if min(geometry) < 1:
        raise DataError(f"an image folder cannot fill the empty input shape "
                        f"{'x'.join(map(str, shape))}")
    return (layout, *geometry)


def _per_channel(values: tuple[float, ...], c: int, flag: str) -> np.ndarray:
    if len(values) not in (1, c):
        raise DataError(f"{flag} has {len(values)} values but the model input has {c} "
                        f"channel(s); give 1 or {c}")
    return np.broadcast_to(np.asarray(values, np.float64), (c,))


def preprocess_image(img: np.ndarray, shape: tuple[int, ...], pp: ImagePreprocess) -> np.ndarray:
    """One decoded image -> float32 array of the model input's shape without the batch axis."""
    layout, c, h, w = model_image_geometry(shape, pp.layout)
    if pp.size is not None and tuple(pp.size) != (h, w):
        raise DataError(f"--calib-size {pp.size[0]}x{pp.size[1]} differs from the model "
                        f"input's {h}x{w}; leave it out or match the model")
    if c not in (1, 3):
        raise DataError(f"image inputs need 1 or 3 channels, the model input has {c}")
    mean = _per_channel(pp.mean, c, "--calib-mean")
    std = _per_channel(pp.std, c, "--calib-std")

    def to_float(pixels: np.ndarray) -> np.ndarray:
        x = pixels.astype(np.float64)
        if c == 1 and x.shape[2] == 3:
            return (x @ np.array([0.299, 0.587, 0.114]))[:, :, None]  # ITU-R 601, PIL "L"
        return np.repeat(x, 3, axis=2) if c == 3 and x.shape[2] == 1 else x

    if pp.resize == "crop":
        img = centre_crop_to_aspect(img, h, w)
    x = to_float(img) if img.shape[:2] == (h, w) else _resize_from_uint8(img, h, w, to_float)
    if pp.channels == "bgr" and c == 3:
        x = x[:, :, ::-1]
    with np.errstate(over="ignore", invalid="ignore"):  # extreme flags: refused just below
        x = (x * pp.scale - mean) / std
        peak = float(np.max(np.abs(x)))
    if not peak <= FLOAT32_MAX:
        raise DataError(f"image preprocessing gives values up to {peak:g}, beyond float32; "
                        "check --calib-scale, --calib-mean and --calib-std")
    if layout == "nchw":
        x = np.transpose(x, (2, 0, 1))
    return x.astype(np.float32)


def load_image_folder(folder: Path, shape: tuple[int, ...], pp: ImagePreprocess,
                      limit: int | None = None) -> np.ndarray:
    """Every image in `folder` (sorted by name, recursively) preprocessed: float32 [N, ...]."""
    try:
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                       and p.is_file())
    except OSError as e:
        raise DataError(f"calibration folder {quote_path(folder)} cannot be listed: "
                        f"{e.strerror or e}") from None
    if not files:
        raise DataError(f"calibration folder {quote_path(folder)} holds no images "
                        f"({', '.join(sorted(IMAGE_SUFFIXES))}) and no .npy/.npz files")
    if limit is not None:
        files = files[:limit]
    batch = shape[0]
    arrays = [preprocess_image(read_image(p), shape, pp) for p in files]
    stacked = np.stack(arrays)
    usable = len(arrays) - len(arrays) % batch
    if usable == 0:
        raise DataError(f"{quote_path(folder)}: {len(arrays)} image(s) cannot fill one batch of "
                        f"{batch}")
    return stacked[:usable].reshape(usable // batch * batch, *shape[1:])
