"""TFLite back-end (docs/tflite.md): edgec's IR -> a .tflite flatbuffer written with the
TFLite schema's object API (no TensorFlow), and a runner for LiteRT and tflite-micro.

Public API: `read_model(path_or_bytes) -> ModelT` (the parsed file, for analysis tools),
`builtin_name(code)`, `TFLiteBackend` (used by the compile driver), `MODEL_FILE`.
"""

from edgec.codegen.tflite.backend import MODEL_FILE, TFLiteBackend, input_layout
from edgec.codegen.tflite.flatbuf import builtin_name, read_model

__all__ = ["MODEL_FILE", "TFLiteBackend", "builtin_name", "input_layout", "read_model"]
