"""The C programs of the workbench (timing shim, FMA peak probe, QEMU counting plugin), shipped
as real .c files in edgec/workbench/csrc/ (package data) and read from there."""

from __future__ import annotations

from importlib.resources import files


def c_source(name: str) -> str:
    """The text of edgec/workbench/csrc/`name` (e.g. "bench_shim.c")."""
    return files("edgec.workbench").joinpath("csrc", name).read_text(encoding="utf-8")
