"""The op registry: every operator is defined once, with all of its facets.

A registry entry (`OpDef` subclass, registered with `@register_op("Name")`) carries:

- `attrs`: the attribute schema (kind, default, allowed values), used to validate nodes;
- `import_onnx`: turns an ONNX node's attributes and inputs into the IR's canonical form
  (constant shape-like inputs become attributes, opset differences are absorbed here);
- `infer`: static output types from input types (and constant data where needed);
- `reference`: numpy semantics, used by the reference interpreter and constant folding;
- `fold_only = True` for ops that only ever fold to constants (every other op has C kernels,
  registered by its kernel family under codegen/c/kernels: the lowering is not an op facet);
- `quant`: the int8 facet (edgec/ops/int8_facet.py): how the op quantises, and how it maps
  from and back to ONNX QDQ;
- `prune` / `prune_flow`: the prune facet, how channel pruning flows through the op;
- `macs`: multiply-accumulates, for reports and benchmarks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgec.errors import ConstantInputRequired, UnsupportedError
from edgec.ir.graph import IRError, Node, Value
from edgec.ir.types import DType, TensorType
from edgec.ops.int8_facet import Int8Facet, QuantRule
from edgec.ops.prune_facet import broadcast_flow, concat_flow

_REQUIRED = object()


class PruneRule(enum.Enum):
    """How structured channel pruning flows through an op."""

    BLOCK = "block"  # channels cannot be removed across this op
    PASSTHROUGH = "passthrough"  # channel i of the output is channel i of the input
    PRODUCER = "producer"  # owns output channels (conv, gemm): pruning starts here
    CONCAT = "concat"  # output channels are the inputs' channels side by side


@dataclass(frozen=True)
class Attr:
    """Schema of one attribute: kind is int, float, str, ints, floats, strs or tensor."""

    kind: str
    default: Any = _REQUIRED
    choices: tuple | None = None

    @property
    def required(self) -> bool:
        """True when the attribute has no default."""
        return self.default is _REQUIRED


def _coerce(kind: str, value):
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "str":
        return value.decode() if isinstance(value, bytes) else str(value)
    if kind == "ints":
        return [int(v) for v in value]
    if kind == "floats":
        return [float(v) for v in value]
    if kind == "strs":
        return [v.decode() if isinstance(v, bytes) else str(v) for v in value]
    if kind == "tensor":
        return np.asarray(value)
    if kind == "any":
        return value
    raise IRError(f"unknown attribute kind {kind}")


class OpDef:
    """Base class of registry entries. Subclasses override the facets they need."""

    name: str = ""
    attrs: dict[str, Attr] = {}
    quant: Int8Facet = QuantRule.FLOAT_ONLY
    prune: PruneRule = PruneRule.BLOCK
    fold_only: bool = False
    # Ops whose layout the channels-last pass may change; see passes/layout_nhwc.py.
    spatial: bool = False
    # Inputs of a spatial op that are activations in the op's layout (data, residual...).
    layout_inputs: tuple[int, ...] = (0,)

    # --------------------------------------------------------------- attributes
    def normalize_attrs(self, attrs: dict) -> dict:
        """Validate `attrs` against the schema and fill defaults; raises UnsupportedError."""
        out = {}
        for key, value in attrs.items():
            spec = self.attrs.get(key)
            if spec is None:
                raise UnsupportedError(
                    f"{self.name}: attribute '{key}' is not supported by edgec"
                )
            if value is None and spec.default is None:
                out[key] = None
                continue
            try:
                out[key] = _coerce(spec.kind, value)
            except (TypeError, ValueError):
                raise UnsupportedError(f"{self.name}: attribute '{key}' has a bad value") from None
            if spec.choices is not None and out[key] not in spec.choices:
                raise UnsupportedError(
                    f"{self.name}: {key}={out[key]!r} is not supported "
                    f"(supported: {', '.join(map(repr, spec.choices))})"
                )
        for key, spec in self.attrs.items():
            if key not in out:
                if spec.required:
                    raise UnsupportedError(f"{self.name}: required attribute '{key}' is missing")
                default = spec.default
                out[key] = list(default) if isinstance(default, (list, tuple)) else default
        return out

    def check_attrs(self, node: Node) -> None:
        """Raise IRError when a node's attributes do not follow the schema."""
        try:
            normalized = self.normalize_attrs(node.attrs)
        except UnsupportedError as e:
            raise IRError(f"{node.name}: {e}") from None
        if set(normalized) != set(node.attrs):
            missing = sorted(set(normalized) - set(node.attrs))
            raise IRError(f"{node.name}: attributes {missing} were not normalised")

    # --------------------------------------------------------------- facets
    def import_onnx(self, node: Node, opset: int) -> None:
        """Bring a freshly imported ONNX node into canonical IR form (in place).

        The default accepts the node as is. Overrides move constant inputs into attributes
        (`self.take_const_input`) and absorb differences between opsets.
        """

    def infer(self, node: Node) -> list[TensorType]:
        """Output types of `node` from its input types and attributes."""
        raise NotImplementedError(f"{self.name} lacks shape inference")

    def reference(self, node: Node, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        """numpy semantics: the definition of what the op computes."""
        raise NotImplementedError(f"{self.name} lacks a reference implementation")

    def macs(self, node: Node) -> int:
        """Multiply-accumulate operations of one execution (0 for data movement)."""
        return 0

    def prune_flow(self, node: Node, in_axes: list[int | None]):
        """Prune facet: how channel indices flow through `node` (edgec/ops/prune_facet.py),
        given the channel axis of each input (None: constant or untracked); None blocks.
        The default follows `prune`: elementwise passthrough with broadcasting, or concat."""
        if self.prune == PruneRule.PASSTHROUGH:
            return broadcast_flow(node, in_axes)
        if self.prune == PruneRule.CONCAT:
            return concat_flow(node, in_axes, int(node.attrs.get("axis", 0)))
        return None

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        """Layout facet: let a Transpose on input 0 move below this op.

        Input 0 of `node` is Transpose(x, perm). Return the attributes of a node of the same
        op that, applied to x (other inputs unchanged), gives outputs whose Transpose by
        `perm` equals the current outputs; or None when that is impossible (the default).
        Only ops whose outputs have the rank of input 0 may return attributes.
        """
        return None

    def keep_reduced_dims(self, node: Node) -> dict | None:
        """Layout facet of rank-reducing ops (reductions with keepdims=0): the attributes of
        the same op keeping the reduced dims as size 1, so that a Reshape to this node's
        output shape is equivalent; None when there is no such form (the default)."""
        return None

    # --------------------------------------------------------------- helpers
    @staticmethod
    def const_input(node: Node, index: int, what: str) -> np.ndarray | None:
        """The data of constant input `index`, None if omitted; error when it is computed."""
        v = node.input(index)
        if v is None:
            return None
        if not v.is_const:
            raise ConstantInputRequired(
                f"{node.op} node '{node.name}': input '{what}' must be a compile-time constant, "
                f"but {_computed_from(v)}; edgec does not support a computed '{what}' for "
                f"{node.op} yet",
                value_name=v.name,
            )
        return v.data

    def take_const_input(self, node: Node, index: int, attr: str, kind: str = "ints") -> None:
        """Move constant input `index` into attribute `attr` and drop it from the inputs."""
        data = self.const_input(node, index, attr)
        if data is not None:
            try:
                node.attrs[attr] = _coerce(kind, data.reshape(-1).tolist())
            except (TypeError, ValueError, OverflowError):  # NaN or inf where ints are meant
                raise UnsupportedError(f"{node.op} node '{node.name}': input '{attr}' holds "
                                       f"values that are not {kind}") from None
        ins = list(node.inputs)
        if index < len(ins):
            ins[index] = None
            while ins and ins[-1] is None:
                ins.pop()
        node.inputs = ins


def _computed_from(v: Value, limit: int = 10000) -> str:
    """Where a non-constant value comes from, for error messages: the graph inputs whose
    data it is computed from. (Input shapes are always fixed before import, so shape
    arithmetic has folded: what remains depends on data, and --input-shape cannot help.)"""
    seen: set[int] = set()
    inputs: list[str] = []
    stack = [v]
    while stack and len(seen) < limit:
        cur = stack.pop()
        if id(cur) in seen or cur.is_const:
            continue
        seen.add(id(cur))
        if cur.producer is None:
            inputs.append(cur.name)
        else:
            stack.extend(x for x in cur.producer.inputs if x is not None)
    if not inputs:
        return f"'{v.name}' is computed by ops that do not fold"
    shown = ", ".join(f"'{n}'" for n in sorted(inputs)[:3]) + (" ..." if len(inputs) > 3 else "")
    return f"'{v.name}' is computed at run time from the data of input {shown}"


def in_type(node: Node, index: int = 0) -> TensorType:
    """Type of input `index` of `node`."""
    v: Value | None = node.input(index)
    if v is None:
        raise IRError(f"{node.name}: input {index} is missing")
    return v.type


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """numpy/ONNX multidirectional broadcasting; raises ShapeError when shapes conflict."""
    from edgec.errors import ShapeError

    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(f"shapes {' and '.join(map(str, shapes))} do not broadcast") from None


def normalize_axis(axis: int, rank: int, node: Node | None = None) -> int:
    """Map a possibly negative axis into [0, rank)."""
    from edgec.errors import ShapeError

    a = axis + rank if axis < 0 else axis
    if not 0 <= a < max(rank, 1):
        where = f" in {node.op} node '{node.name}'" if node is not None else ""
        raise ShapeError(f"axis {axis} is out of range for rank {rank}{where}")
    return a


__all__ = [
    "Attr",
    "DType",
    "OpDef",
    "PruneRule",
    "QuantRule",
    "TensorType",
    "broadcast_shapes",
    "in_type",
    "normalize_axis",
]
