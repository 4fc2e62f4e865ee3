"""The edgec IR graph: values, nodes and a graph whose use-def links maintain themselves.

Every tensor is a `Value` with a static `TensorType`. A value is either a graph input, a
constant (`data` set, no producer) or the output of exactly one `Node`. Each value keeps the
list of (node, input index) pairs that read it; that list is updated whenever a node's inputs
are assigned, so passes never patch use lists by hand (the torch.fx habit). `Node.meta` and
`Value.meta` are scratch space for passes and analyses.

Provenance (docs/golden.md): `Graph.mark_sources` records in `Value.meta["source"]` which
tensor of the imported model a value holds, as (source name, perm) with
`source = np.transpose(value, perm)` (perm None: same layout), and in
`Node.meta["source_nodes"]` the imported nodes a node computes. Passes keep both without
doing anything: `replace_all_uses(old, new)` hands old's record to `new` (and through the
Transposes that produce `new` to their inputs, with the permutation composed), and
`add_node(..., name=existing_node_name)`, the passes' way of rebuilding a node, inherits the
existing node's source nodes. Per-layer debugging uses this to name compiled values.

Cost: every edit is O(1) amortised or linear in what it touches, so passes stay linear in
the graph size: the node order is kept by `order.NodeOrder` (insertions and removals are
settled in one pass when `nodes` is next read; `has_node` is a dict lookup), names by
`names.first_free`, and `remove_dead` walks back from the outputs once. The IR knows no op
set: `add_node` and `verify` ask the one edgec.ops installs (`install_op_set`) when imported.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import networkx as nx
import numpy as np

from edgec.ir.clone import clone_graph
from edgec.ir.names import NameSet, ValueTable, first_free
from edgec.ir.order import NodeOrder
from edgec.ir.types import DType, QuantParams, TensorType

SOURCE = "source"  # Value.meta key: (source value name, perm or None); see the module doc
SOURCE_NODES = "source_nodes"  # Node.meta key: names of the imported nodes a node computes


class IRError(Exception):
    """An inconsistency inside the IR (a bug in edgec or in a pass, not in the user's model)."""


_op_lookup: Callable[[str], Any] | None = None


def install_op_set(lookup: Callable[[str], Any]) -> None:
    """Install the op set: `lookup(name)` gives an op's definition or raises if unknown."""
    global _op_lookup
    _op_lookup = lookup


def op_definition(name: str):
    """The definition of op `name` in the installed op set."""
    if _op_lookup is None:
        raise IRError("no op set is installed: import edgec.ops before building graphs")
    return _op_lookup(name)


class Value:
    """A tensor: graph input, constant (initializer) or node output."""

    def __init__(self, name: str, type: TensorType, data: np.ndarray | None = None):
        self.name = name
        self.type = type
        self.data = data
        self.producer: Node | None = None
        self.uses: list[tuple[Node, int]] = []
        self.quant: QuantParams | None = None
        self.meta: dict = {}

    @property
    def is_const(self) -> bool:
        """True for constants (initializers, folded values)."""
        return self.data is not None

    @property
    def shape(self) -> tuple[int, ...]:
        """The static shape."""
        return self.type.shape

    @property
    def dtype(self) -> DType:
        """The element type."""
        return self.type.dtype

    @property
    def users(self) -> list["Node"]:
        """Distinct nodes reading this value, in order of first use."""
        seen: dict[int, Node] = {}
        for node, _ in self.uses:
            seen.setdefault(id(node), node)
        return list(seen.values())

    def __repr__(self) -> str:
        return f"Value({self.name!r}, {self.type})"


class Node:
    """One operation. Assign `inputs` (or call `set_input`) to rewire: uses update themselves."""

    def __init__(self, op: str, name: str, attrs: dict | None = None, domain: str = ""):
        self.op = op
        self.name = name
        self.domain = domain
        self.attrs: dict = dict(attrs or {})
        self._inputs: list[Value | None] = []
        self.outputs: list[Value] = []
        self.meta: dict = {}

    @property
    def inputs(self) -> tuple[Value | None, ...]:
        """Input values; None marks an omitted optional input."""
        return tuple(self._inputs)

    @inputs.setter
    def inputs(self, values: Sequence[Value | None]) -> None:
        for i, v in enumerate(self._inputs):
            if v is not None:
                v.uses.remove((self, i))
        self._inputs = list(values)
        for i, v in enumerate(self._inputs):
            if v is not None:
                v.uses.append((self, i))

    def set_input(self, index: int, value: Value | None) -> None:
        """Replace one input, keeping use lists exact."""
        old = self._inputs[index]
        if old is not None:
            old.uses.remove((self, index))
        self._inputs[index] = value
        if value is not None:
            value.uses.append((self, index))

    def input(self, index: int) -> Value | None:
        """The input at `index`, or None when it is omitted or absent."""
        return self._inputs[index] if index < len(self._inputs) else None

    @property
    def output(self) -> Value:
        """The single output (raises when the node has several)."""
        if len(self.outputs) != 1:
            raise IRError(f"node {self.name} has {len(self.outputs)} outputs")
        return self.outputs[0]

    def __repr__(self) -> str:
        return f"Node({self.op}, {self.name!r})"


class Graph(NodeOrder):
    """A dataflow graph in a valid execution order (`nodes`), with named inputs and outputs."""

    def __init__(self, name: str = "model"):
        self.name = name
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.values: dict[str, Value] = ValueTable()
        self.meta: dict = {}
        self._node_names: set[str] = NameSet()
        self._name_memo: dict = {}
        self._by_name: dict[str, Node] = {}  # node name -> node (checked before trusted)
        self._init_order()

    # ----------------------------------------------------------------- construction
    def unique_value_name(self, hint: str) -> str:
        """`hint`, or `hint_1`, `hint_2`... whichever is not yet a value name."""
        return first_free(hint or "v", self.values, self._name_memo.setdefault("v", {}))

    def unique_node_name(self, hint: str) -> str:
        """`hint`, or a suffixed variant that no node uses yet."""
        return first_free(hint or "node", self._node_names, self._name_memo.setdefault("n", {}))

    def add_value(self, name: str, type: TensorType, data: np.ndarray | None = None) -> Value:
        """Create a value with a fresh name derived from `name`."""
        v = Value(self.unique_value_name(name), type, data)
        self.values[v.name] = v
        return v

    def add_input(self, name: str, type: TensorType) -> Value:
        """Create a graph input."""
        v = self.add_value(name, type)
        self.inputs.append(v)
        return v

    def const(self, data, name: str = "const") -> Value:
        """Create a constant value holding a copy of `data`."""
        arr = np.array(data)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        return self.add_value(name, TensorType(arr.shape, DType.from_numpy(arr.dtype)), arr)

    def add_node(
        self,
        op: str,
        inputs: Sequence[Value | None],
        output_types: Sequence[TensorType] | None = None,
        attrs: dict | None = None,
        name: str | None = None,
        output_names: Sequence[str] | None = None,
        before: Node | None = None,
        after: Node | None = None,
    ) -> Node:
        """Append (or insert before `before`, or after `after` and the nodes already inserted
        after it) a node; output types are inferred when omitted.

        Attributes are checked and completed with defaults by the op's registry entry.
        """
        opdef = op_definition(op)
        rebuilt = self._source_nodes_of(name) if name else None
        node = Node(op, self.unique_node_name(name or op.lower()),
                    opdef.normalize_attrs(attrs or {}))
        if rebuilt is not None:  # a pass rebuilding node `name`: the new node computes it too
            node.meta[SOURCE_NODES] = list(rebuilt)
        node.inputs = list(inputs)
        if output_types is None:
            output_types = opdef.infer(node)
        names = list(output_names or [])
        for i, t in enumerate(output_types):
            hint = names[i] if i < len(names) else f"{node.name}_out{i}" if i else node.name
            v = self.add_value(hint, t)
            v.producer = node
            node.outputs.append(v)
        self._place(node, before, after)
        self._register_name(node)
        return node

    def adopt_node(
        self,
        node: Node,
        output_types: Sequence[TensorType],
        output_names: Sequence[str] | None = None,
        before: Node | None = None,
    ) -> Node:
        """Add a node built outside the graph (inputs already set), creating its outputs."""
        node.name = self.unique_node_name(node.name)
        names = list(output_names or [])
        for i, t in enumerate(output_types):
            hint = names[i] if i < len(names) and names[i] else f"{node.name}_out{i}"
            v = self.add_value(hint, t)
            v.producer = node
            node.outputs.append(v)
        self._place(node, before)
        self._register_name(node)
        return node

    # ----------------------------------------------------------------- mutation
    def remove_node(self, node: Node) -> None:
        """Remove a node whose outputs have no users (refuses otherwise, like torch.fx)."""
        for v in node.outputs:
            if v.uses or v in self.outputs:
                raise IRError(f"cannot remove {node.name}: output {v.name} is still used")
        self._check_sync()
        if self._members.get(id(node)) is not node:
            raise ValueError(f"{node!r} is not a node of the graph")
        node.inputs = []
        self._forget(node)
        self._dropped.add(id(node))

    def _register_name(self, node: Node) -> None:
        """Enter a new node's name in the name tables."""
        self._by_name[node.name] = node
        self._node_names.add(node.name)

    def _forget(self, node: Node) -> None:
        """Drop a node from the membership and name tables and its outputs from the values."""
        del self._members[id(node)]
        self._node_names.discard(node.name)
        if self._by_name.get(node.name) is node:
            del self._by_name[node.name]
        for v in node.outputs:
            self.values.pop(v.name, None)
            v.producer = None

    def replace_all_uses(self, old: Value, new: Value) -> None:
        """Make every reader of `old` (graph outputs included) read `new` instead."""
        if old is new:
            return
        uses = list(old.uses)
        old.uses.clear()
        for node, idx in uses:  # node.set_input(idx, new) for each, without the list scans
            node._inputs[idx] = new
            new.uses.append((node, idx))
        self.outputs = [new if v is old else v for v in self.outputs]
        hand_over_provenance(old, new)

    def replace_output_keep_name(self, old: Value, new: Value) -> None:
        """Replace graph output `old` by `new`, handing over the public name of `old`."""
        self.replace_all_uses(old, new)
        if old.producer is None or not old.uses:
            public = old.name
            self.values.pop(public, None)
            old.name = self.unique_value_name(public + "_dead")
            self.values[old.name] = old
            self.rename_value(new, public)

    def rename_value(self, v: Value, name: str) -> None:
        """Give `v` a new name (which must be free)."""
        if name in self.values and self.values[name] is not v:
            raise IRError(f"value name {name} is taken")
        self.values.pop(v.name, None)
        v.name = name
        self.values[name] = v

    def remove_dead(self) -> int:
        """Drop nodes and constants that no graph output depends on; returns nodes removed.

        One backward walk from the graph outputs (and from readers outside the graph), then
        one pass that drops the rest and filters the use lists they appear in: O(n + uses).
        """
        nodes = self.nodes
        output_ids = {id(v) for v in self.outputs}
        members = self._members
        live: set[int] = set()
        stack: list[Node] = []
        for node in nodes:
            if any(id(v) in output_ids or any(members.get(id(u)) is not u for u, _ in v.uses)
                   for v in node.outputs):
                live.add(id(node))
                stack.append(node)
        while stack:
            for v in stack.pop()._inputs:
                p = None if v is None else v.producer
                if p is not None and id(p) not in live and members.get(id(p)) is p:
                    live.add(id(p))
                    stack.append(p)
        dead = [n for n in nodes if id(n) not in live]
        if dead:
            dead_ids = {id(n) for n in dead}
            touched: dict[int, Value] = {}
            for n in dead:
                for v in n._inputs:
                    if v is not None:
                        touched[id(v)] = v
                n._inputs = []
            for v in touched.values():
                v.uses[:] = [(u, i) for u, i in v.uses if id(u) not in dead_ids]
            for n in reversed(dead):
                self._forget(n)
            nodes[:] = [n for n in nodes if id(n) in live]
            self._synced_len = len(nodes)
        removed = len(dead)
        live = set(map(id, self.inputs)) | set(map(id, self.outputs))
        for name, v in list(self.values.items()):
            if v.is_const and not v.uses and id(v) not in live:
                del self.values[name]
        return removed

    # ----------------------------------------------------------------- provenance
    def mark_sources(self) -> None:
        """Record every activation as its own source and every node as its own source node
        (the compile driver calls this on the imported graph, before any pass)."""
        for v in self.values.values():
            if not v.is_const:
                v.meta.setdefault(SOURCE, (v.name, None))
        for n in self.nodes:
            n.meta.setdefault(SOURCE_NODES, [n.name])

    def _source_nodes_of(self, name: str) -> list[str] | None:
        """Source nodes of the existing node called `name` (None when there is none)."""
        if name not in self._node_names:
            return None
        node = self._by_name.get(name)
        if node is None or node.name != name or not self.has_node(node):  # renamed outside
            node = next((n for n in self.nodes if n.name == name), None)
        return None if node is None else node.meta.get(SOURCE_NODES)

    # ----------------------------------------------------------------- queries
    @property
    def constants(self) -> list[Value]:
        """Constant values, in name order."""
        return sorted((v for v in self.values.values() if v.is_const), key=lambda v: v.name)

    def to_networkx(self) -> nx.DiGraph:
        """A DiGraph over nodes (by index in `nodes`) with an edge per producer->consumer."""
        g = nx.DiGraph()
        index = {id(n): i for i, n in enumerate(self.nodes)}
        g.add_nodes_from(range(len(self.nodes)))
        for i, n in enumerate(self.nodes):
            for v in n.inputs:
                if v is not None and v.producer is not None and id(v.producer) in index:
                    g.add_edge(index[id(v.producer)], i)
        return g

    def toposort(self) -> None:
        """Reorder `nodes` topologically, keeping the current order wherever it is legal.

        An order that is already topological is kept as it is (the lexicographic sort would
        return it unchanged), after one O(n + edges) check instead of building a DiGraph."""
        nodes = self.nodes
        position = {id(n): i for i, n in enumerate(nodes)}
        if all(v is None or v.producer is None or position.get(id(v.producer), -1) < i
               for i, n in enumerate(nodes) for v in n.inputs):
            self._resync()  # as assigning the same order would (forgets in-place reorders)
            return
        g = self.to_networkx()
        try:
            order = list(nx.lexicographical_topological_sort(g, key=lambda i: i))
        except nx.NetworkXUnfeasible:
            raise IRError("the graph has a cycle") from None
        self.nodes = [self.nodes[i] for i in order]

    def clone(self) -> "Graph":
        """A deep copy (constants included), for Before/After comparisons (see ir/clone.py)."""
        return clone_graph(self)

    def verify(self) -> None:
        """Check structural invariants and that every node's types match its op's inference.

        Raises IRError naming the first problem found.
        """
        for name, v in self.values.items():
            if v.name != name:
                raise IRError(f"value table key {name} names value {v.name}")
        defined: set[int] = {id(v) for v in self.inputs}
        defined |= {id(v) for v in self.values.values() if v.is_const}
        seen_nodes: set[str] = set()
        expected_uses: dict[int, list] = {}
        for node in self.nodes:
            if node.name in seen_nodes:
                raise IRError(f"duplicate node name {node.name}")
            seen_nodes.add(node.name)
            for i, v in enumerate(node.inputs):
                if v is None:
                    continue
                if id(v) not in defined:
                    raise IRError(f"{node.name} input {i} ({v.name}) is used before definition")
                if self.values.get(v.name) is not v:
                    raise IRError(f"{node.name} input {v.name} is not in the value table")
                expected_uses.setdefault(id(v), []).append((node, i))
            for v in node.outputs:
                if v.producer is not node:
                    raise IRError(f"{v.name} does not name {node.name} as its producer")
                if v.is_const:
                    raise IRError(f"node output {v.name} carries constant data")
                if self.values.get(v.name) is not v:
                    raise IRError(f"{node.name} output {v.name} is not in the value table")
                defined.add(id(v))
            opdef = op_definition(node.op)
            opdef.check_attrs(node)
            inferred = opdef.infer(node)
            if len(inferred) != len(node.outputs):
                raise IRError(f"{node.name}: {node.op} infers {len(inferred)} outputs")
            for v, t in zip(node.outputs, inferred):
                if v.type != t:
                    raise IRError(f"{node.name}: {v.name} is {v.type} but {node.op} infers {t}")
        for v in self.values.values():
            want = sorted(((n.name, i) for n, i in expected_uses.get(id(v), [])))
            have = sorted(((n.name, i) for n, i in v.uses))
            if want != have:
                raise IRError(f"use list of {v.name} is stale: {have} != {want}")
        for v in self.outputs:
            if id(v) not in defined:
                raise IRError(f"graph output {v.name} is never defined")

    def producers_of(self, values: Iterable[Value]) -> list[Node]:
        """The distinct producing nodes of `values` (constants and inputs have none)."""
        out: dict[int, Node] = {}
        for v in values:
            if v is not None and v.producer is not None:
                out.setdefault(id(v.producer), v.producer)
        return list(out.values())


def compose_perm(transpose_perm: list[int], source_perm) -> tuple[int, ...] | None:
    """Provenance perm of x when y = np.transpose(x, transpose_perm) has `source_perm`:
    transpose(transpose(x, p), q) = transpose(x, p[q]). None when it is the identity."""
    q = range(len(transpose_perm)) if source_perm is None else source_perm
    composed = tuple(int(transpose_perm[i]) for i in q)
    return None if composed == tuple(range(len(composed))) else composed


def push_source_through_transposes(v: Value) -> None:
    """Give the inputs of the Transposes that produce `v` (and so on upwards) `v`'s source,
    each in its own layout, unless they already have one."""
    while v.producer is not None and v.producer.op == "Transpose" and SOURCE in v.meta:
        x = v.producer.input(0)
        if x is None or x.is_const or SOURCE in x.meta:
            return
        name, perm = v.meta[SOURCE]
        x.meta[SOURCE] = (name, compose_perm(op_definition("Transpose").perm(v.producer), perm))
        v = x


def hand_over_provenance(old: Value, new: Value) -> None:
    """`new` now stands for `old` (same type and layout): it inherits old's source unless it
    has its own, and its producer, when that computes imported nodes, absorbs old's producer's
    source nodes (Conv rebuilt with a fused Relu computes both)."""
    if new.is_const:
        return
    if SOURCE in old.meta and SOURCE not in new.meta:
        new.meta[SOURCE] = old.meta[SOURCE]
        push_source_through_transposes(new)
    before, after = old.producer, new.producer
    if before is None or after is None or before is after or SOURCE_NODES not in after.meta:
        return
    for name in before.meta.get(SOURCE_NODES, ()):
        if name not in after.meta[SOURCE_NODES]:
            after.meta[SOURCE_NODES].append(name)
