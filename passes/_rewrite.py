"""A tiny fixpoint driver for declarative rewrite rules (tinygrad's habit).

A rule is `rule(g, node) -> bool`: it looks at one node, and either rewrites the graph around
it and returns True, or returns False and leaves everything untouched. `apply_rules` sweeps
the nodes, applying the first rule that fires, until a sweep changes nothing.

A sweep costs O(n) plus the rules' own work: membership is `Graph.has_node` (a dict lookup),
the nodes a rule inserts are placed in O(1) (the order is settled once, when `g.nodes` is
next read), and dead nodes are dropped and the order repaired once per sweep, not per rewrite.
"""

from __future__ import annotations

from typing import Callable, Iterable

from edgec.ir import Graph, Node, Value

Rule = Callable[[Graph, Node], bool]


def apply_rules(g: Graph, rules: Iterable[Rule], max_sweeps: int = 200) -> bool:
    """Apply `rules` to a fixpoint; True when anything changed."""
    rules = list(rules)
    changed_any = False
    for _ in range(max_sweeps):
        changed = False
        for node in list(g.nodes):
            if not g.has_node(node):
                continue
            for rule in rules:
                if rule(g, node):
                    changed = True
                    break
        if changed:
            g.remove_dead()
            g.toposort()
            changed_any = True
        else:
            return changed_any
    raise RuntimeError("rewrite rules did not reach a fixpoint")


def single_user(v: Value, g: Graph) -> bool:
    """True when exactly one node reads `v` (once) and it is not a graph output."""
    return len(v.uses) == 1 and v not in g.outputs


def replace_node_output(g: Graph, old: Value, new: Value) -> None:
    """Redirect all readers of `old` to `new` (graph outputs included)."""
    g.replace_all_uses(old, new)
