"""Graph.clone: a deep copy of a graph, built value by value and node by node.

`copy.deepcopy` of the whole graph would recurse along the use-def chain and overflow the
stack on graphs of a few hundred nodes; and deepcopy of every attribute and meta dict
dominated the compile time of large graphs, so dicts, lists and tuples of plain scalars are
copied directly (sharing inside the graph is kept through the deepcopy memo).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the copies are built with the source's own classes,
    from edgec.ir.graph import Graph, Value  # so this module needs no import of graph

_SCALARS = (str, int, float, bool, type(None))


def _copy_plain(obj, memo: dict):
    """copy.deepcopy(obj, memo) with a fast path for the dicts, lists and tuples of scalars
    that attributes and meta mostly hold (deepcopy dominated `clone` on large graphs)."""
    if isinstance(obj, _SCALARS):
        return obj
    kind = type(obj)
    if kind not in (dict, list, tuple):
        return copy.deepcopy(obj, memo)
    done = memo.get(id(obj))
    if done is not None:  # shared inside the graph: shared in the copy too, as deepcopy does
        return done
    if kind is dict:
        out = {k: _copy_plain(v, memo) for k, v in obj.items()}
    elif kind is list:
        out = [_copy_plain(v, memo) for v in obj]
    else:
        out = tuple(_copy_plain(v, memo) for v in obj)
    memo[id(obj)] = out
    return out


def clone_graph(src: Graph) -> Graph:
    """A deep copy of `src` (constants included)."""
    values: dict[int, Value] = {}
    for v in [*src.values.values(), *src.inputs, *src.outputs,
              *(v for n in src.nodes for v in (*n.inputs, *n.outputs))]:
        if v is not None:
            values.setdefault(id(v), v)
    memo: dict[int, object] = {}  # old object id -> copy, shared by every deepcopy below
    for key, v in values.items():
        memo[key] = type(v)(v.name, v.type, None if v.data is None else v.data.copy())
    for n in src.nodes:
        memo[id(n)] = type(n)(n.op, n.name, None, n.domain)
    for key, v in values.items():
        memo[key].quant = None if v.quant is None else copy.deepcopy(v.quant, memo)
        memo[key].meta = _copy_plain(v.meta, memo)
    g = type(src)(src.name)
    nodes = []
    for n in src.nodes:
        new = memo[id(n)]
        new.attrs = _copy_plain(n.attrs, memo)
        new.meta = _copy_plain(n.meta, memo)
        new.inputs = [None if v is None else memo[id(v)] for v in n.inputs]
        new.outputs = [memo[id(v)] for v in n.outputs]
        for v in new.outputs:
            v.producer = new
        nodes.append(new)
    g.nodes = nodes
    g._by_name = {n.name: n for n in nodes}
    g.values.update((name, memo[id(v)]) for name, v in src.values.items())
    g.inputs = [memo[id(v)] for v in src.inputs]
    g.outputs = [memo[id(v)] for v in src.outputs]
    g.meta = copy.deepcopy(src.meta, memo)
    g._node_names.update(src._node_names)
    return g
