"""A read-only view of a .tflite model's operators for the delegate compatibility rules.

The NNAPI and GPU delegates decide per operator, from its builtin code, version, options and
the type, shape, quantisation and constness of its tensors. `read_ops` unpacks the flatbuffer
with the schema object API once and gives each operator as an `OpView` holding just that.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from edgec.errors import ModelLoadError, TargetError

TFLITE_FILE_ID = b"TFL3"


def load_schema():
    """The TFLite schema's object API from the ai-edge-litert wheel (no TensorFlow).

    (codegen/tflite/schema.py has the same loader for the writer; kept separate so the
    compatibility checks stand on their own.)"""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        raise TargetError("reading .tflite files needs the ai-edge-litert package: "
                          "pip install ai-edge-litert") from None
    return schema_py_generated


def _enum_names(enum_class) -> dict[int, str]:
    """{value: NAME} of a generated flatbuffers enum class."""
    return {v: k for k, v in vars(enum_class).items()
            if not k.startswith("_") and isinstance(v, int)}


@dataclass
class TensorView:
    """One tensor as the delegates see it."""

    index: int
    name: str
    type: str  # TensorType name: FLOAT32, INT8, UINT8, INT32, ...
    shape: list[int]
    scales: list[float] = field(default_factory=list)
    zero_points: list[int] = field(default_factory=list)
    is_const: bool = False

    @property
    def scale(self) -> float:
        """The per-tensor scale (TFLite's params.scale: the first scale), 0 if unquantised."""
        return self.scales[0] if self.scales else 0.0

    @property
    def zero_point(self) -> int:
        """The per-tensor zero point (the first one), 0 if unquantised."""
        return self.zero_points[0] if self.zero_points else 0

    @property
    def per_channel(self) -> bool:
        """True when the tensor carries more than one scale."""
        return len(self.scales) > 1

    @property
    def rank(self) -> int:
        """Number of dimensions."""
        return len(self.shape)


@dataclass
class OpView:
    """One operator: builtin name, version, tensors (None for an omitted optional input)."""

    index: int
    subgraph: int
    code: str  # BuiltinOperator name: CONV_2D, ADD, ...; CUSTOM:<name> for custom ops
    version: int
    inputs: list[TensorView | None]
    outputs: list[TensorView]
    options: object | None  # the schema's ...OptionsT object, or None

    def input(self, i: int) -> TensorView | None:
        """Input `i`, None when absent or omitted (-1)."""
        return self.inputs[i] if i < len(self.inputs) else None

    def option(self, name: str, default=None):
        """A field of the builtin options (e.g. "fusedActivationFunction"), or `default`."""
        return getattr(self.options, name, default) if self.options is not None else default

    @property
    def activation(self) -> str:
        """The fused activation's name (NONE, RELU, RELU_N1_TO_1, RELU6, TANH, SIGN_BIT)."""
        schema = load_schema()
        code = self.option("fusedActivationFunction", 0) or 0
        return _enum_names(schema.ActivationFunctionType).get(code, str(code))


def read_model(data: bytes):
    """The ModelT of .tflite bytes; a ModelLoadError when they are not a TFLite flatbuffer."""
    schema = load_schema()
    data = bytes(data)
    if len(data) < 8 or data[4:8] != TFLITE_FILE_ID:
        raise ModelLoadError("not a TFLite flatbuffer (no 'TFL3' identifier): pass the "
                             ".tflite file an edgec tflite target wrote")
    try:
        return schema.ModelT.InitFromPackedBuf(data, 0)
    except (struct.error, IndexError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"cannot read the TFLite flatbuffer ({type(exc).__name__}): "
                             "the file is truncated or corrupt") from None


def _tensor(model, t, index: int) -> TensorView:
    schema = load_schema()
    q = t.quantization
    scales = [float(s) for s in (q.scale if q is not None and q.scale is not None else [])]
    zps = [int(z) for z in (q.zeroPoint if q is not None and q.zeroPoint is not None else [])]
    buf = model.buffers[t.buffer] if model.buffers and 0 < t.buffer < len(model.buffers) \
        else None
    has_data = buf is not None and ((buf.data is not None and len(buf.data) > 0)
                                    or (buf.size or 0) > 0)
    name = t.name.decode() if isinstance(t.name, bytes) else (t.name or "")
    shape = [] if t.shape is None else [int(d) for d in t.shape]
    return TensorView(index, name, _enum_names(schema.TensorType).get(t.type, str(t.type)),
                      shape, scales, zps, has_data)


def read_ops(data: bytes) -> list[OpView]:
    """Every operator of every subgraph of the .tflite `data`, in execution order."""
    schema = load_schema()
    model = read_model(data)
    op_names = _enum_names(schema.BuiltinOperator)
    views = []
    for s_index, sub in enumerate(model.subgraphs or []):
        tensors = [_tensor(model, t, i) for i, t in enumerate(sub.tensors or [])]
        for o_index, op in enumerate(sub.operators or []):
            oc = model.operatorCodes[op.opcodeIndex]
            code_value = max(oc.builtinCode, oc.deprecatedBuiltinCode)
            code = op_names.get(code_value, str(code_value))
            if code == "CUSTOM":
                custom = oc.customCode.decode() if isinstance(oc.customCode, bytes) \
                    else (oc.customCode or "")
                code = f"CUSTOM:{custom}"
            ins = [tensors[i] if i >= 0 else None for i in (op.inputs if op.inputs is not None
                                                             else [])]
            outs = [tensors[i] for i in (op.outputs if op.outputs is not None else [])]
            views.append(OpView(o_index, s_index, code, int(oc.version or 1), ins, outs,
                                op.builtinOptions))
    return views
