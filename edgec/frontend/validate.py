"""Checks of an ONNX model's structure before edgec imports it, and of its declared outputs
after.

onnx-graphsurgeon and numpy trust the file: an initializer whose data does not fill its
dims, two initializers or two nodes that define the same tensor, or an attribute of another
type than the ONNX schema says would surface deep inside the import as a numpy exception (an
"internal error") or, worse, be accepted silently with one of the definitions winning. These
checks run on the protobuf first, so every such model is refused with one line naming the
tensor or node, before any tensor data is converted or allocated (limits: edgec/limits.py).
"""

from __future__ import annotations

import functools

import onnx
from onnx import AttributeProto, TensorProto

from edgec.errors import ModelLoadError, ShapeError, UnsupportedError
from edgec.ir import DType, Graph, TensorType
from edgec.limits import Limits, check_node_count, check_tensor
from edgec.ops import get_op, has_op

# ONNX element types edgec has an IR type for.
_SUPPORTED = {
    TensorProto.FLOAT: DType.FLOAT32, TensorProto.FLOAT16: DType.FLOAT16,
    TensorProto.DOUBLE: DType.FLOAT64, TensorProto.INT8: DType.INT8,
    TensorProto.UINT8: DType.UINT8, TensorProto.INT16: DType.INT16,
    TensorProto.INT32: DType.INT32, TensorProto.INT64: DType.INT64,
    TensorProto.BOOL: DType.BOOL,
}


def elem_type_name(code: int) -> str:
    """`FLOAT`, `STRING`... for an ONNX element type code (the code itself if unknown)."""
    try:
        return TensorProto.DataType.Name(int(code))
    except ValueError:
        return f"#{code}"


def _tensor_type(t: TensorProto, what: str) -> TensorType:
    """The IR type of an initializer or tensor attribute; errors for what edgec cannot hold."""
    if any(d < 0 for d in t.dims):
        raise ModelLoadError(f"{what} has a negative dimension {list(t.dims)}; the model is "
                             "invalid")
    dtype = _SUPPORTED.get(t.data_type)
    if dtype is None:
        raise UnsupportedError(f"{what} has element type {elem_type_name(t.data_type)}, which "
                               "edgec does not support")
    return TensorType(tuple(t.dims), dtype)


def _check_tensor_data(t: TensorProto, tt: TensorType, what: str) -> None:
    """The stored data must fill the declared dims exactly (raw bytes or the typed field)."""
    if t.HasField("segment"):
        raise UnsupportedError(f"{what} is stored in segments, which edgec does not support")
    if t.data_location == TensorProto.EXTERNAL:
        return  # resolved and checked once the external file is read (load_model_proto)
    if t.HasField("raw_data"):
        have, want, unit = len(t.raw_data), tt.nbytes, "bytes"
    else:
        field = onnx.helper.tensor_dtype_to_field(t.data_type)
        have, want, unit = len(getattr(t, field)), tt.numel, "values"
    if have != want:
        raise ModelLoadError(f"{what} declares dims {list(t.dims)} ({want:,} {unit}) but holds "
                             f"{have:,} {unit}; the model is invalid (re-export it)")


def check_tensor_proto(t: TensorProto, what: str, limits: Limits) -> None:
    """Type, size limits and data length of one stored tensor, before numpy sees it."""
    tt = _tensor_type(t, what)
    check_tensor(tt, what, limits, constant=True)
    _check_tensor_data(t, tt, what)


def _node_desc(n: onnx.NodeProto, index: int) -> str:
    if n.name:
        return f"{n.op_type} node '{n.name}'"
    return f"{n.op_type} node #{index} (unnamed)" + (f" with output '{n.output[0]}'"
                                                      if n.output and n.output[0] else "")


def _check_attribute_types(n: onnx.NodeProto, index: int, opset: int) -> None:
    """Every attribute the ONNX schema knows must have the schema's type."""
    if n.domain not in ("", "ai.onnx"):
        return
    try:
        schema = onnx.defs.get_schema(n.op_type, opset, "")
    except Exception:  # no schema at this opset: the op's own import decides
        return
    given_names = {a.name for a in n.attribute}
    for spec in schema.attributes.values():
        if spec.required and spec.name not in given_names:
            raise ModelLoadError(f"{_node_desc(n, index)}: required attribute '{spec.name}' of "
                                 f"ONNX {n.op_type}-{schema.since_version} is missing; the model "
                                 "is invalid")
    for a in n.attribute:
        spec = schema.attributes.get(a.name)
        if spec is None:
            _check_extension_attribute(n, index, a, schema)
            continue
        if a.type == spec.type:
            continue
        given = onnx.AttributeProto.AttributeType.Name(a.type)
        want = onnx.AttributeProto.AttributeType.Name(spec.type)
        raise ModelLoadError(f"{_node_desc(n, index)}: attribute '{a.name}' is {given} but ONNX "
                             f"{n.op_type}-{schema.since_version} defines it as {want}; the "
                             "model is invalid")


_KIND_TYPES = {"int": AttributeProto.INT, "float": AttributeProto.FLOAT,
               "str": AttributeProto.STRING, "ints": AttributeProto.INTS,
               "floats": AttributeProto.FLOATS, "strs": AttributeProto.STRINGS,
               "tensor": AttributeProto.TENSOR}


def _check_extension_attribute(n: onnx.NodeProto, index: int, a: AttributeProto, schema) -> None:
    """An attribute the installed ONNX schema lacks is accepted only when edgec's op knows it
    (a newer opset's attribute, or a legacy one such as ReduceMean-18 'axes') with that type;
    anything else is refused, as onnxruntime does."""
    spec = get_op(n.op_type).attrs.get(a.name) if has_op(n.op_type) else None
    want = None if spec is None else _KIND_TYPES.get(spec.kind, a.type)
    if want == a.type:
        return
    given = AttributeProto.AttributeType.Name(a.type)
    raise ModelLoadError(f"{_node_desc(n, index)}: attribute '{a.name}' ({given}) is not defined "
                         f"by ONNX {n.op_type}-{schema.since_version}; the model is invalid")


def _check_output_count(n: onnx.NodeProto, index: int, opset: int) -> None:
    """A default-domain node has as many outputs as its ONNX schema allows."""
    schema = _schema(n.op_type, opset) if n.domain in ("", "ai.onnx") else None
    if schema is None:
        return
    if not schema.min_output <= len(n.output) <= schema.max_output:
        raise ModelLoadError(f"{_node_desc(n, index)} has {len(n.output)} output(s) but ONNX "
                             f"{n.op_type}-{schema.since_version} has {schema.min_output} to "
                             f"{schema.max_output}; the model is invalid")


def _declared_type(vi: onnx.ValueInfoProto) -> tuple[int, list | None]:
    tt = vi.type.tensor_type
    dims = None
    if tt.HasField("shape"):  # -1 and 0 stand for "unknown" in some exporters' files
        dims = [int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None
                for d in tt.shape.dim]
    return tt.elem_type, dims


def validate_model(model: onnx.ModelProto, opset: int, limits: Limits, name: str) -> None:
    """Refuse structurally invalid models and those past the limits (see the module doc)."""
    graph = model.graph
    check_node_count(len(graph.node), limits)
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    inits: dict[str, TensorProto] = {}
    for t in graph.initializer:
        what = f"initializer '{t.name}'"
        if t.name in inits:
            raise ModelLoadError(f"{what} is defined twice; the model is invalid")
        inits[t.name] = t
        if t.name in used or t.data_type in _SUPPORTED:
            check_tensor_proto(t, what, limits)
    if graph.sparse_initializer:
        raise UnsupportedError(f"model '{name}' has sparse initializers, which edgec does not "
                               "support; densify them when exporting")
    defined = set(inits)
    for vi in graph.input:
        if vi.name in inits:
            _check_input_matches_initializer(vi, inits[vi.name])
            continue
        if vi.name in defined:
            raise ModelLoadError(f"graph input '{vi.name}' is declared twice; the model is "
                                 "invalid")
        defined.add(vi.name)
    produced = {o for n in graph.node for o in n.output}
    for index, n in enumerate(graph.node):
        _check_attribute_types(n, index, opset)
        _check_output_count(n, index, opset)
        for name in n.input:
            if name and name not in defined and name not in produced:
                raise ModelLoadError(f"tensor '{name}', an input of {_node_desc(n, index)}, is "
                                     "not defined by any node, initializer or graph input; the "
                                     "model is invalid")
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                check_tensor_proto(a.t, f"attribute '{a.name}' of {_node_desc(n, index)}",
                                   limits)
        for out in n.output:
            if not out:
                continue
            if out in defined:
                raise ModelLoadError(
                    f"tensor '{out}' is written by {_node_desc(n, index)} but is already "
                    "defined (by another node, an initializer or a graph input); every tensor "
                    "must have one producer; the model is invalid")
            defined.add(out)


def _check_input_matches_initializer(vi: onnx.ValueInfoProto, t: TensorProto) -> None:
    """A graph input that has an initializer of the same name is a constant with a default;
    its declared type must agree with the data, or which one is meant is ambiguous."""
    elem, dims = _declared_type(vi)
    clash = elem not in (0, t.data_type)
    if dims is not None:
        clash |= len(dims) != len(t.dims) or any(
            d is not None and d != s for d, s in zip(dims, t.dims))
    if clash:
        shown = "x".join("?" if d is None else str(d) for d in dims) if dims is not None else "?"
        raise ModelLoadError(
            f"graph input '{vi.name}' ({elem_type_name(elem)}[{shown}]) has an initializer of "
            f"the same name with another type ({elem_type_name(t.data_type)}"
            f"{list(t.dims)}); which one is meant is ambiguous; rename one of them")


def check_declared_outputs(model: onnx.ModelProto, g: Graph, names: list[str]) -> None:
    """A graph output's declared element type and fixed dims must match what edgec infers;
    symbolic or missing dims declare nothing and are not compared."""
    declared = {o.name: o for o in model.graph.output}
    for v, out_name in zip(g.outputs, names):
        vi = declared.get(out_name)
        if vi is None or not vi.type.HasField("tensor_type"):
            continue
        elem, dims = _declared_type(vi)
        got = "x".join(map(str, v.shape)) or "scalar"
        if elem and _SUPPORTED.get(elem) not in (None, v.dtype):
            raise ShapeError(f"graph output '{out_name}' is declared {elem_type_name(elem)} but "
                             f"the model computes {v.dtype.value}; the model is invalid")
        if dims is None:
            continue
        if len(dims) != len(v.shape) or any(
                d is not None and d != s for d, s in zip(dims, v.shape)):
            want = "x".join("?" if d is None else str(d) for d in dims) or "scalar"
            raise ShapeError(f"graph output '{out_name}' is declared with shape [{want}] but "
                             f"the model computes [{got}]; the model is invalid (fix the "
                             "declared shape or re-export)")


_TYPE_STRS = {DType.FLOAT32: "tensor(float)", DType.FLOAT16: "tensor(float16)",
              DType.FLOAT64: "tensor(double)", DType.INT8: "tensor(int8)",
              DType.UINT8: "tensor(uint8)", DType.INT16: "tensor(int16)",
              DType.INT32: "tensor(int32)", DType.INT64: "tensor(int64)",
              DType.BOOL: "tensor(bool)"}


@functools.lru_cache(maxsize=512)
def _schema(op: str, opset: int):
    try:
        return onnx.defs.get_schema(op, opset, "")
    except Exception:  # not an ONNX op at this opset: the op's own import decides
        return None


def _needs_other_kind(dtype: DType, allowed: set[str]) -> bool:
    """True when an input that ONNX wants as integers (indices, shapes, sizes) or as booleans
    gets floats, or a boolean input gets numbers. edgec accepts more element types than the
    ONNX schema in places (an int8 GlobalMaxPool), so only a change of kind is refused."""
    floats = {"tensor(float)", "tensor(float16)", "tensor(double)", "tensor(bfloat16)"}
    if allowed == {"tensor(bool)"}:
        return dtype != DType.BOOL
    return dtype.is_float and not (allowed & floats)


def check_input_types(op: str, opset: int, dtypes: list, desc: str) -> None:
    """A default-domain node's inputs must be of the kind its ONNX schema allows (floats are
    not indices), and inputs sharing a type parameter must agree (`dtypes[i]` is None for an
    omitted input)."""
    schema = _schema(op, opset)
    if schema is None or not schema.inputs:
        return
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    bound: dict[str, tuple[int, DType]] = {}
    variadic = onnx.defs.OpSchema.FormalParameterOption.Variadic
    for i, dtype in enumerate(dtypes):
        if dtype is None:
            continue
        if i < len(schema.inputs):
            param = schema.inputs[i]
        elif schema.inputs[-1].option == variadic:
            param = schema.inputs[-1]
        else:
            return  # too many inputs: the arity check reports it
        type_str = _TYPE_STRS[dtype]
        allowed_here = allowed.get(param.type_str, {param.type_str})
        if type_str not in allowed_here and _needs_other_kind(dtype, allowed_here):
            raise UnsupportedError(
                f"{desc}: input {i} ('{param.name}') is {dtype.value}, which ONNX "
                f"{op}-{schema.since_version} does not allow there; the model is invalid")
        if param.type_str in allowed and (param.option != variadic or param.is_homogeneous):
            first = bound.setdefault(param.type_str, (i, dtype))
            if first[1] != dtype:
                raise ShapeError(
                    f"{desc}: inputs {first[0]} and {i} must have the same element type but are "
                    f"{first[1].value} and {dtype.value}; the model is invalid")
