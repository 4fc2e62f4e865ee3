"""The TFLite flatbuffer schema (object API), imported once for the whole back-end.

The generated Python schema ships in the ai-edge-litert wheel (`ai_edge_litert/
schema_py_generated.py`) and needs only `flatbuffers` and numpy: no TensorFlow.
"""

from __future__ import annotations

from edgec.errors import TargetError


def load_schema():
    """The schema module (ModelT, SubGraphT, OperatorT, BuiltinOperator, ...)."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        raise TargetError("the TFLite targets need the ai-edge-litert package: "
                          "pip install ai-edge-litert") from None
    return schema_py_generated
