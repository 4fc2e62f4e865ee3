"""`edgec.compile`: the one way into the compiler for Python and for the command line.

A model is an ONNX file, an `onnx.ModelProto` or a `torch.nn.Module` (exported with torch's
exporter, edgec/frontend/torch.py). Files go through `edgec.compiler.compile_model`, in-memory
models through `compile_proto`; both end in `compile_graph`, so `edgec compile m.onnx -o d`
and `edgec.compile("m.onnx", ...).write(d)` write byte-identical folders.
"""

from __future__ import annotations

import contextlib
import os
import warnings

from edgec.api.compiled import Compiled, EdgecWarning
from edgec.api.model import ModelSource, model_source
from edgec.api.options import make_options
from edgec.compiler import CompileOptions, compile_model, compile_proto
from edgec.console.progress import silenced
from edgec.output_dir import check_output_dir
from edgec.targets import get_target


def compile_with_options(model, options: CompileOptions, *, example_inputs=None,
                         name: str | None = None, exporter: str = "auto",
                         quiet: bool = True) -> Compiled:
    """Compile `model` with ready-made CompileOptions (what the command line builds)."""
    source = model_source(model, example_inputs, name, exporter, quiet)
    return _compile(source, options, quiet)


def _compile(source: ModelSource, options: CompileOptions, quiet: bool) -> Compiled:
    with silenced() if quiet else contextlib.nullcontext():  # calibration's progress bar
        if source.path is not None:
            result = compile_model(source.path, options)
        else:
            result = compile_proto(source.proto, options, source.name)
    if not quiet:
        for message in [*source.notes, *result.warnings]:
            warnings.warn(message, EdgecWarning, stacklevel=3)
    return Compiled(result, source, options)


def compile(model, target: str = "generic-fp32", *, output_dir: str | os.PathLike | None = None,
            calib=None, input_shapes: dict | None = None, example_inputs=None,
            name: str | None = None, exporter: str = "auto", quiet: bool = True,
            **options) -> Compiled:
    """Compile `model` for `target` and return a `Compiled` (docs/api.md).

    model: an .onnx path, an onnx.ModelProto, or a torch.nn.Module with example_inputs=.
    calib (int8 targets): a .npy/.npz file or folder, numpy arrays, a dict of arrays, an
    iterable of input dicts, or a torch DataLoader. input_shapes: {name: shape} for dynamic
    dimensions. output_dir: also write the files there. name: the C prefix and report name
    of an in-memory model. Other options are CompileOptions fields (calib_method,
    keep_float, prefix, ...). quiet=False issues edgec's warnings as EdgecWarning and lets
    calibration show its progress bar on a terminal."""
    get_target(target) if isinstance(target, str) else None  # unknown target: fail first
    if output_dir is not None:
        check_output_dir(output_dir)  # a folder edgec may not replace: refused before the work
    source = model_source(model, example_inputs, name, exporter, quiet)
    needs_names = calib is not None and not isinstance(calib, (str, os.PathLike))
    opts = make_options(target, input_shapes, calib,
                        input_names=source.input_names() if needs_names else None, **options)
    compiled = _compile(source, opts, quiet)
    if output_dir is not None:
        compiled.write(output_dir)
    return compiled
