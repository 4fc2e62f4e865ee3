"""The node order of a Graph, kept so that every edit is O(1) and membership a dict lookup.

`Graph.nodes` is a plain list. `add_node(before=...)`/`add_node(after=...)` and `remove_node`
do not touch it: they record the change (nodes to insert before or after an anchor, ids of
removed nodes), and the list is brought up to date in one O(n) pass, in place, the next time
`nodes` is read. A pass that rewrites k nodes in a sweep therefore pays O(n + k), not O(n k)
(list.index and list.remove per rewrite made compile time quadratic in graph length).
Membership (`has_node`) is a dict of node ids; in-place edits of the list outside the Graph
methods are noticed when its length changes. Reorder by assigning a new list to `nodes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from edgec.ir.graph import Node


class NodeOrder:
    """Mixin for Graph: the `nodes` list, its pending edits and the membership table."""

    def _init_order(self) -> None:
        self._nodes: list[Node] = []
        self._members: dict[int, Node] = {}  # id -> node, every node of the graph
        self._insert_before: dict[int, list[Node]] = {}  # id(anchor) -> nodes to insert
        self._insert_after: dict[int, list[Node]] = {}  # id(anchor) -> nodes to insert
        self._dropped: set[int] = set()  # ids of removed nodes still in the list
        self._synced_len = 0  # len(self._nodes) as the Graph methods left it
        self._order: dict[int, tuple[Node, int]] = {}  # id -> (node, position) (order_index)

    @property
    def nodes(self) -> list[Node]:
        """The nodes in execution order (brought up to date on reading; see the module doc)."""
        if self._insert_before or self._insert_after or self._dropped:
            self._flush()
        return self._nodes

    @nodes.setter
    def nodes(self, nodes: Sequence[Node]) -> None:
        self._nodes = nodes if isinstance(nodes, list) else list(nodes)
        self._insert_before.clear()
        self._insert_after.clear()
        self._dropped.clear()
        self._resync()

    def order_index(self, node: Node) -> int:
        """A number that orders `node` among the graph's nodes as `nodes` does (its position
        when the table was last built: insertions and removals keep the relative order of
        the other nodes, so the table is rebuilt only for nodes new since then)."""
        self._check_sync()
        entry = self._order.get(id(node))
        if entry is None or entry[0] is not node or self._members.get(id(node)) is not node:
            self._order = {id(n): (n, i) for i, n in enumerate(self.nodes)}
            entry = self._order.get(id(node))
            if entry is None:
                raise ValueError(f"{node!r} is not a node of the graph")
        return entry[1]

    def has_node(self, node: Node) -> bool:
        """True when `node` is one of this graph's nodes (O(1), unlike `node in g.nodes`)."""
        if len(self._nodes) != self._synced_len:
            self._check_sync()
        return self._members.get(id(node)) is node

    def _resync(self) -> None:
        """Rebuild the membership table from the (up to date) list."""
        self._members = {id(n): n for n in self._nodes}
        self._synced_len = len(self._nodes)
        self._order = {}

    def _check_sync(self) -> None:
        """Notice in-place edits of the list made outside the Graph methods."""
        if len(self._nodes) != self._synced_len:
            if self._insert_before or self._insert_after or self._dropped:
                self._flush()
            self._resync()

    def _flush(self) -> None:
        """Apply the recorded insertions and removals to the list, in place, in O(n)."""
        pending, later, dropped = self._insert_before, self._insert_after, self._dropped
        out: list[Node] = []
        stack: list[tuple[Node, bool]] = []
        for node in self._nodes:
            stack.append((node, False))
            while stack:
                n, expanded = stack.pop()
                if expanded:
                    if id(n) not in dropped:
                        out.append(n)
                    continue
                for p in reversed(later.pop(id(n), ())):
                    stack.append((p, False))
                stack.append((n, True))
                for p in reversed(pending.pop(id(n), ())):
                    stack.append((p, False))
        pending.clear()
        later.clear()
        dropped.clear()
        self._nodes[:] = out
        self._synced_len = len(out)

    def _place(self, node: Node, before: Node | None, after: Node | None = None) -> None:
        """Put a new node at the end, just before `before`, or just after `after` and the
        nodes already put after it (ValueError if the anchor is not a node)."""
        self._check_sync()
        if id(node) in self._dropped:  # a removed node added again: settle its old slot first
            self._flush()
        anchor, table = (before, self._insert_before) if before is not None else \
            (after, self._insert_after)
        if anchor is None:
            self._nodes.append(node)
            self._synced_len += 1
        else:
            if self._members.get(id(anchor)) is not anchor:
                raise ValueError(f"{anchor!r} is not a node of the graph")
            table.setdefault(id(anchor), []).append(node)
        self._members[id(node)] = node
