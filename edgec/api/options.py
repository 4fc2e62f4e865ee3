"""Keyword arguments of `edgec.compile` as CompileOptions, and calibration data from Python
(numpy arrays, dicts, an iterable of input dicts, a torch DataLoader) as the batches the int8
driver splits into model-shaped samples (edgec/quant/driver.py). A bad value is one
EdgecError naming the argument, never a TypeError from inside."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from edgec.compiler import CompileOptions
from edgec.console import quote
from edgec.errors import DataError, EdgecError, ShapeError
from edgec.frontend.onnx import parse_input_shapes
from edgec.limits import Limits

# Fields edgec.compile sets itself or that only the command line uses.
_NOT_OPTIONS = {"target", "input_shapes", "calib", "calib_samples", "calib_batches"}


def option_names() -> list[str]:
    """The keyword options `edgec.compile` accepts besides its named parameters."""
    return [f.name for f in dataclasses.fields(CompileOptions) if f.name not in _NOT_OPTIONS]


def input_shapes_option(shapes) -> dict[str, tuple[int, ...]]:
    """input_shapes as {name: (dims)}: values are sequences of ints or "1x3x224x224"."""
    if shapes is None:
        return {}
    if not isinstance(shapes, Mapping):
        raise ShapeError("input_shapes takes a dict {input name: shape}, e.g. "
                         "{'input': (1, 3, 224, 224)}")
    out = {}
    for name, shape in shapes.items():
        if isinstance(shape, str):
            out.update(parse_input_shapes([f"{name}={shape}"]))
            continue
        try:
            dims = tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            raise ShapeError(f"input_shapes[{quote(name)}] must be a sequence of positive "
                             f"integers, not {quote(shape)}") from None
        if not dims or any(d < 1 for d in dims) or any(
                isinstance(d, float) and not float(d).is_integer() for d in shape):
            raise ShapeError(f"input_shapes[{quote(name)}] must be a sequence of positive "
                             f"integers, not {quote(shape)}")
        out[str(name)] = dims
    return out


# Options whose default is None but whose values have a type.
_OPTIONAL_TYPES = {"calib_limit": int, "prefix": str, "coreml_target": str}
_KINDS = {bool: "True or False", int: "an integer", float: "a number", str: "a string"}
_CHOICES = {"tflite_io": ("float", "int8"), "quant": ("static", "dynamic")}


def _check_types(options: dict) -> None:
    """EdgecError for an option of the wrong type (the command line's argparse does this)."""
    defaults = CompileOptions()
    for key, value in options.items():
        default = getattr(defaults, key)
        want = _OPTIONAL_TYPES.get(key) if default is None else type(default)
        if want is None or (value is None and default is None):
            continue
        ok = isinstance(value, want) and not (isinstance(value, bool) and want is not bool)
        if want is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok and want in (bool, int, float, str):
            raise EdgecError(f"option {key} takes {_KINDS[want]}, not {quote(value)}")
        if key in _CHOICES and value not in _CHOICES[key]:
            raise EdgecError(f"option {key} must be one of {', '.join(_CHOICES[key])}, not "
                             f"{quote(value)}")


def make_options(target: str, input_shapes=None, calib=None, input_names=None,
                 **options) -> CompileOptions:
    """CompileOptions of edgec.compile's arguments. `input_names` (the model's inputs in
    order) maps tuples of a DataLoader's batches to inputs; needed only for Python data."""
    if not isinstance(target, str):
        raise EdgecError(f"target must be a target name such as 'generic-fp32' (see "
                         f"edgec.targets()), not a {type(target).__name__}")
    unknown = sorted(set(options) - set(option_names()))
    if unknown:
        raise EdgecError(f"unknown option {quote(unknown[0])}; edgec.compile takes "
                         f"{', '.join(option_names())}")
    _check_types(options)
    if isinstance(options.get("limits"), Mapping):
        try:
            options["limits"] = Limits(**options["limits"])
        except TypeError as e:
            raise EdgecError(f"limits: {e}") from None
    for key in ("keep_float", "disabled_passes"):
        if isinstance(options.get(key), str):
            options[key] = (options[key],)
        elif key in options:
            options[key] = tuple(options[key])
    if options.get("dump_ir") is not None:
        options["dump_ir"] = Path(options["dump_ir"])
    opts = CompileOptions(target=target, input_shapes=input_shapes_option(input_shapes),
                          **options)
    if calib is None:
        return opts
    if isinstance(calib, (str, os.PathLike)):
        opts.calib = os.fspath(calib)
    else:
        opts.calib_batches = calibration_batches(calib, list(input_names or []))
    return opts


def to_numpy(x, where: str) -> np.ndarray:
    """A tensor or array-like as numpy (torch tensors via .detach().cpu())."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor; torch stays unimported
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception:  # noqa: BLE001 - anything numpy cannot read is the user's data
        raise DataError(f"{where} is a {type(x).__name__}, not an array") from None
    if arr.dtype == object:
        raise DataError(f"{where} is a {type(x).__name__}, not an array of numbers")
    return arr


def _batch(item, names: list[str], where: str) -> dict[str, np.ndarray]:
    """One batch as {input name: array}: a dict by name, an array (single-input models), or
    a tuple/list whose first len(inputs) items are the inputs (labels after them ignored)."""
    if isinstance(item, Mapping):
        return {str(k): to_numpy(v, f"{where}[{quote(k)}]") for k, v in item.items()}
    if isinstance(item, (tuple, list)):
        if len(item) < len(names):
            raise DataError(f"{where} holds {len(item)} item(s) but the model has "
                            f"{len(names)} inputs")
        return {n: to_numpy(v, f"{where}[{i}]") for i, (n, v) in enumerate(zip(names, item))}
    if len(names) != 1:
        raise DataError(f"{where} is one array but the model has {len(names)} inputs; give "
                        "dicts keyed by input name")
    return {names[0]: to_numpy(item, where)}


def calibration_batches(calib, input_names: list[str]) -> list[dict[str, np.ndarray]]:
    """Calibration data from Python as batches {input name: one sample or N stacked}.

    Accepts a numpy array or tensor (single-input models), a dict {name: array}, or an
    iterable of batches (a list or generator of dicts, or a torch DataLoader yielding
    tensors, (inputs, labels) tuples or dicts)."""
    if isinstance(calib, (bytes, bytearray)):
        raise DataError("calib takes a path, arrays, an iterable of input dicts or a "
                        "DataLoader, not bytes")
    if isinstance(calib, (Mapping, np.ndarray)) or hasattr(calib, "detach"):
        return [_batch(calib, input_names, "calib")]
    if not isinstance(calib, Iterable):
        raise DataError(f"calib is a {type(calib).__name__}; give a path, a numpy array, a "
                        "dict of arrays, an iterable of input dicts or a torch DataLoader")
    batches = [_batch(item, input_names, f"calib batch {i}") for i, item in enumerate(calib)]
    if not batches:
        raise DataError("the calibration data is empty")
    return batches
