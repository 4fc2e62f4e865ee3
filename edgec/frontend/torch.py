"""A torch.nn.Module as ONNX: torch's own exporter, the dynamo one first, the legacy
TorchScript one when dynamo cannot trace the module (data-dependent Python, unsupported
tracing). When neither can export it, one UnsupportedError names the torch operator that
stopped them (`aten::linalg_svd`), so the user knows what to replace.

torch is imported here only, on use: `import edgec` and every ONNX compile stay free of it.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import re
import sys
import warnings

import numpy as np
import onnx

from edgec.errors import DataError, EdgecError, UnsupportedError

EXPORTERS = ("auto", "dynamo", "legacy")
EXPORT_NOTE = "edgec_export_note"  # metadata_props key of a warning about the export
LEGACY_OPSET = 17  # the legacy exporter's opset: well inside edgec's 11-21

# How the two exporters name an operator they cannot convert.
_OP_PATTERNS = (re.compile(r"op='(aten\.[A-Za-z0-9_]+)"),  # dynamo: DispatchError
                re.compile(r"operator '(aten::[A-Za-z0-9_]+)'"),  # legacy: Unsupported...
                re.compile(r"\b(aten::[A-Za-z0-9_]+)"),
                re.compile(r"\b(aten\.[A-Za-z0-9_]+)\.default"))


def is_torch_module(obj) -> bool:
    """True for a torch.nn.Module, without importing torch when the caller has not."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def unsupported_torch_op(*messages: str) -> str | None:
    """The torch operator an exporter error names (`aten::linalg_svd`), or None."""
    for pattern in _OP_PATTERNS:
        for text in messages:
            found = pattern.search(text or "")
            if found:
                return found.group(1).replace("aten.", "aten::", 1)
    return None


def _as_tensors(example_inputs, torch) -> tuple:
    """example_inputs (a tensor, an array, or a tuple/list of them) as a tuple of tensors."""
    items = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    out = []
    for i, x in enumerate(items):
        if isinstance(x, torch.Tensor):
            out.append(x)
        elif isinstance(x, (np.ndarray, float, int)):
            out.append(torch.from_numpy(np.ascontiguousarray(x)))
        else:
            raise EdgecError(f"example_inputs[{i}] is a {type(x).__name__}; give torch tensors "
                             "or numpy arrays (a tuple of them for several inputs)")
    return tuple(out)


def _input_names(module, count: int) -> list[str]:
    """The forward() parameter names, so both exporters name the ONNX inputs alike."""
    try:
        params = [p.name for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = params[:count]
    return names + [f"input_{i}" for i in range(len(names), count)]


def _first_line(e: BaseException) -> str:
    """The line of an exporter error that says what went wrong: the first line after the
    dynamo exporter's "## Exception summary" (without its "<class ...>: "), else the first."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in str(e).splitlines()]
    lines = [ln for ln in lines if ln]
    if "## Exception summary" in lines[:-1]:
        summary = lines[lines.index("## Exception summary") + 1]
        return re.sub(r"^<class '[^']*'>:\s*", "", summary)
    return lines[0] if lines else type(e).__name__


def _dynamo(module, args, names, torch) -> onnx.ModelProto:
    program = torch.onnx.export(module, args, dynamo=True, input_names=names, verbose=False)
    return program.model_proto


def _legacy(module, args, names, torch) -> onnx.ModelProto:
    buffer = io.BytesIO()
    torch.onnx.export(module, args, buffer, dynamo=False, input_names=names,
                      opset_version=LEGACY_OPSET)
    return onnx.load_from_string(buffer.getvalue())


def export_torch(module, example_inputs, exporter: str = "auto",
                 quiet: bool = True) -> onnx.ModelProto:
    """Export `module` (in eval mode; its mode is restored afterwards) with `example_inputs`
    to an ONNX ModelProto. exporter: "auto" (dynamo, then legacy), "dynamo" or "legacy".
    `quiet` silences the exporters' warnings and progress lines."""
    if exporter not in EXPORTERS:
        raise EdgecError(f"exporter must be one of {', '.join(EXPORTERS)}, not '{exporter}'")
    if example_inputs is None:
        raise EdgecError("a torch.nn.Module needs example_inputs= (a tensor, or a tuple of "
                         "tensors, of the shapes to compile for)")
    try:
        import torch  # on use: ~2 s, and only torch users pay it
    except ImportError:
        raise EdgecError("compiling a torch.nn.Module needs torch (pip install "
                         "'edgec[torch]', which pins the CPU build torch==2.13.0)") from None
    args = _as_tensors(example_inputs, torch)
    names = _input_names(module, len(args))
    tries = {"auto": (_dynamo, _legacy), "dynamo": (_dynamo,), "legacy": (_legacy,)}[exporter]
    errors: list[tuple[str, BaseException]] = []
    was_training = module.training
    module.eval()
    try:
        _check_forward(module, args, torch)
        for fn in tries:
            quiet_ctx = _silenced() if quiet else contextlib.nullcontext()
            try:
                with quiet_ctx, torch.no_grad():
                    proto = fn(module, args, names, torch)
            except Exception as e:  # noqa: BLE001 - every exporter failure is reported below
                errors.append((fn.__name__.strip("_"), e))
                continue
            if errors:  # the legacy tracer after dynamo: say what tracing may have frozen
                note = proto.metadata_props.add()
                note.key, note.value = EXPORT_NOTE, (
                    f"torch's dynamo exporter could not export {type(module).__name__} "
                    f"({_first_line(errors[0][1])}); the legacy exporter traced it, which "
                    "fixes data-dependent Python control flow to the example_inputs' path")
            return proto
    finally:
        module.train(was_training)
    op = unsupported_torch_op(*(str(e) for _, e in errors))
    what = type(module).__name__
    tried = "; ".join(f"{name} exporter: {_first_line(e)}" for name, e in errors)
    if op:
        raise UnsupportedError(f"torch.onnx.export cannot export {what}: torch operator '{op}' "
                               f"has no ONNX conversion ({tried}); replace it in the module")
    raise UnsupportedError(f"torch.onnx.export cannot export {what} ({tried})")


def _check_forward(module, args, torch) -> None:
    """DataError when the module itself fails on example_inputs (a shape or dtype the module
    does not take): the user's problem, named before the exporters bury it."""
    try:
        with torch.no_grad():
            module(*args)
    except Exception as e:  # noqa: BLE001 - whatever the module raises, said in one line
        shapes = ", ".join("x".join(map(str, a.shape)) or "()" for a in args)
        raise DataError(f"{type(module).__name__} fails on example_inputs of shape {shapes}: "
                        f"{type(e).__name__}: {_first_line(e)}") from None


@contextlib.contextmanager
def _silenced():
    """The exporters' warnings, log records and printed progress, swallowed."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()), _native_output_dropped():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _native_output_dropped():
    """File descriptors 1 and 2 to /dev/null: torch's C++ side prints graphs and log lines
    there (the legacy exporter's "Torch IR graph at exception"), past sys.stdout."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
