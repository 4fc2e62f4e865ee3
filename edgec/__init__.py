"""edgec: an ahead-of-time compiler from ONNX to code for edge devices.

The Python API (docs/api.md) is loaded on first use, so that `import edgec` stays instant
and imports no onnx, torch, onnxruntime or jinja2:

    import edgec
    compiled = edgec.compile("model.onnx", "x86_64-int8", calib="calib.npz")
    compiled.verify().ok
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> the module that defines it. The API sits above every other layer
# (docs/architecture.md), so it is loaded by name on first use rather than imported here.
_API = {
    "compile": "edgec.api.driver",
    "Compiled": "edgec.api.compiled",
    "EdgecWarning": "edgec.api.compiled",
    "Report": "edgec.api.report",
    "VerifyResult": "edgec.workbench.compare",
    "export_torch": "edgec.frontend.torch",
    "targets": "edgec.api.listing",
    "prune_model": "edgec.api.prune",
    "distill": "edgec.prune.distill",
    "golden_record": "edgec.api.golden",
    "golden_check": "edgec.api.golden",
    "EdgecError": "edgec.errors",
    "ModelLoadError": "edgec.errors",
    "UnsupportedError": "edgec.errors",
    "ShapeError": "edgec.errors",
    "TargetError": "edgec.errors",
    "DataError": "edgec.errors",
    "ToolchainError": "edgec.errors",
}

__all__ = [
    "Compiled",
    "DataError",
    "EdgecError",
    "EdgecWarning",
    "ModelLoadError",
    "Report",
    "ShapeError",
    "TargetError",
    "ToolchainError",
    "UnsupportedError",
    "VerifyResult",
    "__version__",
    "compile",
    "distill",
    "export_torch",
    "targets",
]


def __getattr__(name: str):
    """PEP 562: the public API, imported when first used."""
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edgec' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
