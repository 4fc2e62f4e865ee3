"""The model behind a compile: an ONNX file, an in-memory `onnx.ModelProto`, or a
`torch.nn.Module` exported to one (edgec/frontend/torch.py)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from edgec.errors import EdgecError, ModelLoadError
from edgec.frontend.onnx import load_model_proto
from edgec.frontend.torch import EXPORT_NOTE, export_torch, is_torch_module


@dataclass
class ModelSource:
    """The model a Compiled came from: a file, or an in-memory ONNX model and its name."""

    path: Path | None
    proto: onnx.ModelProto | None
    name: str
    notes: list[str] = field(default_factory=list)  # warnings about the export of a module

    def onnx_file(self, directory: str | os.PathLike) -> Path:
        """The model as a file: its own path, or the ModelProto saved under `directory`."""
        if self.path is not None:
            return self.path
        path = Path(directory) / f"{self.name}.onnx"
        if not path.exists():
            path.write_bytes(self.proto.SerializeToString())
        return path

    def reference(self):
        """What onnxruntime runs as the fp32 reference: the file, or the ModelProto."""
        return self.path if self.path is not None else self.proto

    def input_names(self) -> list[str]:
        """The graph inputs that are not initializers, in order."""
        proto = self.proto if self.proto is not None else load_model_proto(self.path)
        stored = {t.name for t in proto.graph.initializer}
        return [i.name for i in proto.graph.input if i.name not in stored]


def model_source(model, example_inputs=None, name: str | None = None, exporter: str = "auto",
                 quiet: bool = True) -> ModelSource:
    """Resolve what the user passed as a model (path, ModelProto, torch.nn.Module)."""
    if isinstance(model, (str, os.PathLike)):
        if example_inputs is not None:
            raise EdgecError("example_inputs= is for torch.nn.Module models; an ONNX file "
                             "has its shapes (fix dynamic ones with input_shapes=)")
        path = Path(model)
        return ModelSource(path, None, name or path.stem)
    if isinstance(model, onnx.ModelProto):
        copy = onnx.ModelProto()
        copy.CopyFrom(model)  # the import may fix shapes in place: the caller's stays as it is
        return ModelSource(None, copy, name or _graph_name(model))
    if is_torch_module(model):
        proto = export_torch(model, example_inputs, exporter=exporter, quiet=quiet)
        notes = [p.value for p in proto.metadata_props if p.key == EXPORT_NOTE]
        return ModelSource(None, proto, name or _identifier(type(model).__name__), notes)
    raise ModelLoadError(f"the model is a {type(model).__name__}; give the path of an .onnx "
                         "file, an onnx.ModelProto or a torch.nn.Module")


def _identifier(text: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in text).strip("_")
    return cleaned or "model"


def _graph_name(model: onnx.ModelProto) -> str:
    """A ModelProto's name for prefixes and the report: its graph name, else "model"."""
    name = _identifier(model.graph.name) if model.HasField("graph") else "model"
    return name if name[0].isalpha() and name not in ("main_graph", "torch_jit") else "model"


def temporary_model_dir() -> tempfile.TemporaryDirectory:
    """A scratch folder for a ModelProto saved as a file (bench, golden, CoreML verify)."""
    return tempfile.TemporaryDirectory(prefix="edgec-model-")
