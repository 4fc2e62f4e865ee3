"""edgec's Python API (docs/api.md): `compile` a model (ONNX file, ModelProto or
torch.nn.Module) for a target and get a `Compiled` back, with its `Report` and methods to
write, verify, run and benchmark the generated code. The command line goes through the
same driver (edgec/api/driver.py)."""

from __future__ import annotations

from edgec.api.compiled import Compiled, EdgecWarning
from edgec.api.driver import compile, compile_with_options
from edgec.api.golden import GoldenCheck, golden_check, golden_record
from edgec.api.model import ModelSource
from edgec.api.prune import prune_model
from edgec.api.report import Report
from edgec.frontend.torch import export_torch
from edgec.workbench.compare import VerifyResult

__all__ = ["Compiled", "EdgecWarning", "GoldenCheck", "ModelSource", "Report", "VerifyResult",
           "compile", "compile_with_options", "export_torch", "golden_check", "golden_record",
           "prune_model"]
