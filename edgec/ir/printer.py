"""Deterministic text form of a graph, used by tests, `--dump-ir` and error messages.

The form is stable across runs: nodes print in execution order, constants in name order, and
constant data prints as a short content hash so that Before/After tests compare structure and
weights without dumping megabytes.
"""

from __future__ import annotations

import hashlib

import numpy as np

from edgec.ir.graph import Graph, Node, Value


def format_attr(value) -> str:
    """Render one attribute value deterministically."""
    if isinstance(value, float):
        return f"{value:.9g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_attr(v) for v in value) + "]"
    if isinstance(value, np.ndarray):
        return f"array{list(value.shape)}#{data_hash(value)}"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def data_hash(arr: np.ndarray) -> str:
    """First 10 hex digits of the SHA-256 of an array's dtype, shape and bytes."""
    h = hashlib.sha256()
    a = np.ascontiguousarray(arr)
    h.update(str(a.dtype).encode())
    h.update(str(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()[:10]


def _value_decl(v: Value) -> str:
    text = f"%{v.name}: {v.type}"
    if v.quant is not None:
        text += f" {v.quant}"
    return text


def format_node(node: Node) -> str:
    """One line: outputs = Op(inputs) {attrs}  # node name."""
    outs = ", ".join(_value_decl(v) for v in node.outputs)
    ins = ", ".join("_" if v is None else f"%{v.name}" for v in node.inputs)
    attrs = ", ".join(f"{k}={format_attr(node.attrs[k])}" for k in sorted(node.attrs))
    attr_text = f" {{{attrs}}}" if attrs else ""
    return f"  {outs} = {node.op}({ins}){attr_text}  # {node.name}"


def print_graph(g: Graph, with_constants: bool = True) -> str:
    """The whole graph as text."""
    lines = [f"graph {g.name}("]
    lines += [f"    {_value_decl(v)}," for v in g.inputs]
    lines.append(") -> (" + ", ".join(f"%{v.name}" for v in g.outputs) + ")")
    if with_constants:
        for v in g.constants:
            if v.uses:
                lines.append(f"  const {_value_decl(v)} #{data_hash(v.data)}")
    lines += [format_node(n) for n in g.nodes]
    return "\n".join(lines) + "\n"
