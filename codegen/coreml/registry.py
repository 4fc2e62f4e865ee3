"""The lowering table (IR op -> MIL ops) and the context every lowering works in.

A lowering is a function `(ctx, node) -> Var` registered with `@lowers("Op", ...)`; it reads
its inputs through `ctx.x(value)` (a MIL Var, or the numpy array of a constant), its weights
through `ctx.weight(array)` (float, or int8 with a per-channel scale on coreml-int8) and
returns the MIL Var holding the node's first output (`ctx.bind` for more outputs). Names:
MIL ops get `ctx.name(value)`, an identifier derived from the IR value name; graph inputs and
outputs keep the model's names where they are identifiers (docs/coreml.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from edgec.codegen.coreml.int8 import int8_weight
from edgec.errors import ConstantInputRequired, EdgecError, UnsupportedError
from edgec.ir import Graph, Node, Value

Lowering = Callable[["Ctx", Node], object]
LOWERINGS: dict[str, Lowering] = {}
_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]")
MAX_RANK = 5  # CoreML's limit on tensor rank


def lowers(*ops: str) -> Callable[[Lowering], Lowering]:
    """Register a lowering for IR ops `ops` (each op once)."""
    def register(fn: Lowering) -> Lowering:
        for op in ops:
            if op in LOWERINGS:
                raise ValueError(f"CoreML lowering for {op} registered twice")
            LOWERINGS[op] = fn
        return fn
    return register


def identifier(text: str) -> str:
    """`text` as a MIL identifier: other characters become '_', a leading digit gets '_'."""
    name = _NOT_IDENT.sub("_", text) or "_"
    return "_" + name if name[0].isdigit() else name


class Ctx:
    """State of one lowering run: the MIL Var of every IR value built so far."""

    def __init__(self, g: Graph, mb, types, int8_weights: bool, public_names: dict[str, str],
                 reserved: set[str] = frozenset()):
        self.g = g
        self.mb = mb
        self.types = types
        self.int8_weights = int8_weights
        self.vars: dict[str, object] = {}
        self.features: set[str] = set()  # "int8-weights" -> iOS16 (docs/coreml.md)
        self.public = public_names  # IR value name -> spec name (graph inputs and outputs)
        self._used: set[str] = set(public_names.values()) | set(reserved)
        self.int8_weight_bytes = 0
        self.float_weight_bytes = 0

    # --------------------------------------------------------------------- names
    def name(self, v: Value | str, suffix: str = "") -> str:
        """A fresh MIL name for value `v` (its public name when it is a graph output)."""
        key = v.name if isinstance(v, Value) else v
        if not suffix and key in self.public and key not in self.vars:
            return self.public[key]
        base = identifier(f"{key}{suffix}")
        name, i = base, 1
        while name in self._used:
            name, i = f"{base}_{i}", i + 1
        self._used.add(name)
        return name

    # --------------------------------------------------------------------- values
    def x(self, v: Value | None):
        """The MIL Var of IR value `v`, or its numpy data (float32) when it is a constant."""
        if v is None:
            return None
        if v.is_const:
            data = np.asarray(v.data)
            return data.astype(np.float32) if data.dtype == np.float64 else data
        try:
            return self.vars[v.name]
        except KeyError:
            raise UnsupportedError(f"CoreML: value '{v.name}' is used before it is computed") \
                from None

    def const(self, v: Value, what: str, node: Node) -> np.ndarray:
        """The data of a value that must be constant (weights, shapes) for the MIL op."""
        if v is None or not v.is_const:
            raise ConstantInputRequired(f"CoreML: {node.op} node '{node.name}' needs a constant "
                                        f"{what}; this one is computed at run time",
                                        None if v is None else v.name)
        return np.asarray(v.data)

    def weight(self, data: np.ndarray, axis: int = 0, name: str = "w"):
        """A weight tensor for a MIL op: the float32 array, or on coreml-int8 edgec's int8
        per-channel symmetric weights (passes/quantize.py) as constexpr_affine_dequantize."""
        data = np.asarray(data, np.float32)
        if not self.int8_weights or data.ndim < 2:
            self.float_weight_bytes += data.size * 4
            return data
        return int8_weight(self, data, axis, name)

    def bind(self, v: Value, var) -> None:
        """Record the MIL Var computing IR value `v`."""
        self.vars[v.name] = var


def lower_node(ctx: Ctx, node: Node):
    """Lower one IR node; UnsupportedError naming it when no lowering exists."""
    fn = LOWERINGS.get(node.op)
    if fn is None:
        raise UnsupportedError(f"CoreML back-end: node '{node.name}' ({node.op}) has no MIL "
                               "lowering; use a C target, or see docs/coreml.md for the "
                               "supported operators")
    for v in (*node.inputs, *node.outputs):
        if v is not None and (len(v.shape) > MAX_RANK or 0 in v.shape):
            raise UnsupportedError(f"CoreML back-end: node '{node.name}' ({node.op}) has a "
                                   f"tensor of shape {tuple(v.shape)}; CoreML tensors have rank "
                                   f"<= {MAX_RANK} and no empty axes")
    try:
        var = fn(ctx, node)
    except EdgecError:
        raise
    except (ValueError, TypeError, NotImplementedError) as e:  # coremltools' builder refused
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise UnsupportedError(f"CoreML back-end: node '{node.name}' ({node.op}) cannot be "
                               f"expressed in MIL: {reason}") from None
    if var is not None:
        ctx.bind(node.outputs[0], var)
