"""Compile options and target flags as a golden manifest stores them (JSON, paths relative to
the case directory), and back."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from edgec.compiler import CompileOptions
from edgec.quant.images import ImagePreprocess
from edgec.targets import Target

# CompileOptions fields a golden replays; the rest (verify_each, dump_ir, in-memory
# calibration samples) do not change what the compiled model computes.
REPLAYED = ("input_shapes", "prefix", "disabled_passes", "quant", "calib", "calib_method",
            "calib_percentile", "calib_limit", "keep_float", "auto_mixed_precision",
            "target_snr", "seed")


def _relative(path: str, case_dir: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), case_dir.resolve())).as_posix()


def options_to_json(options: CompileOptions, case_dir: Path) -> dict:
    """The options that differ from the defaults (target excluded), JSON-ready."""
    default = CompileOptions()
    out: dict = {}
    for name in REPLAYED:
        value = getattr(options, name)
        if value == getattr(default, name):
            continue
        if name == "calib" and value:
            value = _relative(value, case_dir)
        elif name == "input_shapes":
            value = {k: list(v) for k, v in value.items()}
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    if options.calib and options.preprocess is not None:
        out["preprocess"] = {k: list(v) if isinstance(v, tuple) else v
                             for k, v in dataclasses.asdict(options.preprocess).items()}
    return out


def options_from_json(data: dict, case_dir: Path, target: str) -> CompileOptions:
    """CompileOptions for `target` from a manifest's `options` object."""
    kwargs: dict = {"target": target}
    for name in REPLAYED:
        if name not in data:
            continue
        value = data[name]
        if name == "calib" and value:
            value = str((case_dir / value).resolve())
        elif name == "input_shapes":
            value = {k: tuple(v) for k, v in value.items()}
        elif name in ("disabled_passes", "keep_float"):
            value = tuple(value)
        kwargs[name] = value
    if "preprocess" in data:
        pre = {k: tuple(v) if isinstance(v, list) else v for k, v in data["preprocess"].items()}
        kwargs["preprocess"] = ImagePreprocess(**pre)
    return CompileOptions(**kwargs)


def target_flags(t: Target) -> dict:
    """What a manifest records about a target's build."""
    return {"precision": t.precision, "backend": t.backend, "isa": t.isa, "cc": t.cc,
            "cflags": list(t.cflags), "ldflags": list(t.ldflags), "runner": list(t.runner)}


def flags_changed(recorded: dict, t: Target) -> list[str]:
    """Names of the build flags that differ between a recording and the target today."""
    now = target_flags(t)
    return [k for k in now if k in recorded and recorded[k] != now[k]]
