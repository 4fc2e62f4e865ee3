"""Users' array files (.npy / .npz) for `--calib` and `--inputs`, read defensively.

Every way such a file can be wrong becomes one DataError line naming the file and what to
do: not a regular file (a folder, /dev/zero, a FIFO that would block), unreadable, not .npy or
.npz, truncated, an array larger than MAX_DATA_BYTES (checked against the header or the zip
directory before anything is allocated, so a small compressed file cannot expand into
gigabytes), an .npz member that is not an .npy array, and arrays that are not numbers
(strings, structured records, objects, complex, dates). `as_input_dtype` then converts a
numeric array to a model input's element type: to floats any numbers (values beyond the
float32 range become inf, which calibration counts apart); to integers and booleans only
values that the type holds exactly.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import numpy as np

from edgec.console import quote, quote_path
from edgec.errors import DataError
from edgec.ir import DType

# Largest array data one file may hold (all members of an .npz together).
MAX_DATA_BYTES = 2 * 2**30
# numpy kinds accepted as data: bool, signed and unsigned integers, floats.
NUMERIC_KINDS = "biuf"
HINT = "give an .npy array or an .npz of arrays keyed by input name"


def _npy_header(fp) -> tuple[tuple[int, ...], np.dtype] | None:
    """(shape, dtype) from an .npy header, or None for header versions not read here."""
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
    else:
        return None
    return tuple(shape), dtype


def _declared_bytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    count = 1
    for d in shape:
        count *= int(d)
    return count * dtype.itemsize


def _check_npy_header(fp, size: int, where: str) -> None:
    """Refuse an .npy stream (of `size` bytes) whose header declares more data than allowed
    or than the stream holds, before numpy allocates the array."""
    header = _npy_header(fp)
    if header is None:
        return
    data_bytes = _declared_bytes(*header)
    if data_bytes > MAX_DATA_BYTES:
        raise DataError(f"{where} declares {data_bytes} bytes of data, more than the "
                        f"{MAX_DATA_BYTES} bytes edgec reads from one file; split it")
    if not header[1].hasobject and data_bytes > size - fp.tell():  # objects: refused later
        raise DataError(f"{where} is truncated: its header declares "
                        f"{'x'.join(map(str, header[0])) or '()'} {header[1]} but the data is "
                        "shorter; write it again")


def _check_npy(p: Path, what: str) -> None:
    with open(p, "rb") as fp:
        _check_npy_header(fp, os.fstat(fp.fileno()).st_size, f"{what} {quote_path(p)}")


def _check_npz(p: Path, what: str) -> None:
    """Refuse an .npz with members that are not .npy or that expand beyond the limit."""
    with zipfile.ZipFile(p) as zf:
        infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        if total > MAX_DATA_BYTES:
            raise DataError(f"{what} {quote_path(p)} expands to {total} bytes, more than the "
                            f"{MAX_DATA_BYTES} bytes edgec reads from one file; split it")
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise DataError(f"{what} {quote_path(p)} holds {quote(info.filename)}, which is "
                                f"not an .npy array; {HINT}")
            with zf.open(info) as fp:
                _check_npy_header(fp, info.file_size, f"{what} {quote_path(p)}, array "
                                  f"{quote(info.filename[:-4])},")


def _checked_array(arr, p: Path, what: str, key: str | None) -> np.ndarray:
    where = f"{what} {quote_path(p)}" + (f", array {quote(key)}," if key is not None else "")
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{where} is not an array; {HINT}")
    if arr.dtype.kind not in NUMERIC_KINDS or arr.dtype.fields is not None:
        raise DataError(f"{where} holds {arr.dtype} values, not numbers; save it as float32 "
                        "(or the model input's integer type)")
    return arr


def read_arrays(path: str | Path, what: str) -> np.ndarray | dict[str, np.ndarray]:
    """The numeric array of an .npy file, or the arrays of an .npz by key (DataError else).

    `what` names the file's role in messages ("calibration file", "inputs file").
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except OSError as e:
        raise DataError(f"{what} {quote_path(p)} cannot be read: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        raise DataError(f"{what} {quote_path(p)} is not a regular file; {HINT}")
    try:
        with open(p, "rb") as fp:
            is_zip = fp.read(4) in (b"PK\x03\x04", b"PK\x05\x06")  # as np.load decides
        if is_zip:
            _check_npz(p, what)
            with np.load(p, allow_pickle=False) as data:
                return {k: _checked_array(data[k], p, what, k) for k in data.files}
        _check_npy(p, what)
        return _checked_array(np.load(p, allow_pickle=False), p, what, None)
    except DataError:
        raise
    except MemoryError:
        raise DataError(f"{what} {quote_path(p)} holds more data than fits in memory; "
                        "split it") from None
    except Exception as e:  # numpy's and zipfile's many ways of saying "not an array file"
        first = (str(e).splitlines() or [""])[0] or type(e).__name__
        raise DataError(f"cannot read {what} {quote_path(p)}: {first}; {HINT}") from None


def as_input_dtype(arr: np.ndarray, dtype: DType, where: str) -> np.ndarray:
    """`arr` converted to a model input's element type, refusing values it cannot hold."""
    target = dtype.np
    if arr.dtype == target:
        return arr
    if dtype.is_float:
        # beyond float32: inf; NaN stays NaN (long double NaN warns): counted apart downstream
        with np.errstate(over="ignore", invalid="ignore"):
            return arr.astype(target)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise DataError(f"{where} holds non-integer values but the model input is "
                            f"{dtype.value}; save integers")
    if dtype is DType.BOOL:
        if arr.size and not np.all((arr == 0) | (arr == 1)):
            raise DataError(f"{where} holds values other than 0 and 1 but the model input is "
                            "bool")
        return arr.astype(np.bool_)
    info = np.iinfo(target)
    if arr.size and (arr.min() < info.min or arr.max() > info.max):
        raise DataError(f"{where} holds values outside the {dtype.value} range "
                        f"[{info.min}, {info.max}] of the model input")
    return arr.astype(target)
