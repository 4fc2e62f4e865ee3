"""Liveness of activations over a schedule, and which activations may share one buffer.

Steps are positions in the node order (`g.nodes`). A value is live from the step that writes
it (step 0 for graph inputs, which the caller writes before the run) to the last step that
reads it; graph outputs stay live to the last step. The inputs and the outputs of one step
are live together, so a layer never writes over what it reads unless the plan says so.

Two kinds of sharing turn several values into one *storage group* (one buffer in the arena):

- views: the output of Reshape/Flatten/Squeeze/Unsqueeze (ops with `is_view = True`),
  Identity and Dropout is the same bytes as the input, so it is an alias of the input's
  buffer. Always legal: a view is only read, and the group stays live while any member is.
- in-place: an elementwise op (an `ElementwiseOp` subclass, or any op whose registry entry
  has an `in_place_inputs(node)` hook listing input indices) whose output has the size and
  element type of an input may write into that input's buffer when the input's whole group
  (the input, its views, everything already sharing its buffer) is last read by this very
  node and holds no graph output (a node flagged `NARROWING_IN_PLACE` may also write a
  narrower element type over its input). The elementwise template reads every operand of an element
  before it writes that element, at the same index, so the overwrite is safe. Graph inputs
  may be overwritten too: the run consumes its inputs (the harness and `*_infer` refill
  them before every run), exactly as a plan that reuses a dead input's bytes already does.

A group's lifetime is the union of its members' lifetimes (a contiguous interval, since each
member starts where another ends); its size is the aligned size of its largest member (all
members have the same size, except after a narrowing in-place write: from the step after it
the group holds only its narrower members, `group_tails`, and its buffer shrinks to them). `live_bytes[s]` is the total of the groups live at step s: the
lower bound of any arena for this schedule (`arena_lower_bound_bytes`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from edgec.ir import Graph, Node, Value
from edgec.ops import get_op
from edgec.ops.elementwise import ElementwiseOp, Identity


def align_up(n: int, alignment: int) -> int:
    """`n` rounded up to a multiple of `alignment`."""
    return (n + alignment - 1) // alignment * alignment


def activation_values(g: Graph) -> list[Value]:
    """Every non-constant value the generated code must store: inputs, then node outputs."""
    seen: dict[int, Value] = {}
    for v in g.inputs:
        seen[id(v)] = v
    for node in g.nodes:
        for v in node.outputs:
            seen[id(v)] = v
    return list(seen.values())


def view_source(node: Node) -> Value | None:
    """The input whose buffer `node`'s output may alias as a view (None: needs its own)."""
    if len(node.outputs) != 1:
        return None
    opdef = get_op(node.op)
    if not (getattr(opdef, "is_view", False) or isinstance(opdef, Identity)):
        return None
    x, y = node.input(0), node.output
    if x is None or x.is_const or x.type.nbytes != y.type.nbytes or x.dtype != y.dtype:
        return None
    return x


# node.meta flag: the node's kernel may write its narrower elements over its input's (element
# i goes to byte offset i * out_size, at or below where input element i starts, which was read
# before; set by passes/fuse_row_bands.py for QuantizeLinear under --memory-budget).
NARROWING_IN_PLACE = "in_place_narrowing"


def in_place_inputs(node: Node) -> list[int]:
    """Input indices whose buffer `node` may overwrite with its output (when they die here)."""
    if len(node.outputs) != 1 or view_source(node) is not None:
        return []
    opdef = get_op(node.op)
    hook = getattr(opdef, "in_place_inputs", None)
    if hook is not None:
        indices = list(hook(node))
    elif isinstance(opdef, ElementwiseOp):
        indices = list(range(len(node.inputs)))
    else:
        return []
    y = node.output
    narrowing = node.meta.get(NARROWING_IN_PLACE, False)
    keep = []
    for i in indices:
        x = node.input(i)
        if x is None or x.is_const or x.type.numel != y.type.numel:
            continue
        if x.dtype != y.dtype and not (narrowing and y.dtype.itemsize <= x.dtype.itemsize):
            continue
        keep.append(i)
    return keep


class AliasTable(dict):
    """value name -> name of the value whose buffer it shares, with a memo of resolved chains
    (path compression), so resolving every value of a long chain costs O(n), not O(n^2).

    The memo stays correct while the table only grows (a cached ancestor that has become an
    alias itself is followed further); changing or removing an entry clears it.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._roots: dict[str, str] = {}

    def __setitem__(self, name: str, target: str) -> None:
        if name in self:
            self._roots.clear()
        super().__setitem__(name, target)

    def __delitem__(self, name: str) -> None:
        self._roots.clear()
        super().__delitem__(name)

    def pop(self, *args):
        """dict.pop; clears the memo."""
        self._roots.clear()
        return super().pop(*args)

    def clear(self) -> None:
        """dict.clear; clears the memo."""
        self._roots.clear()
        super().clear()

    def update(self, *args, **kwargs) -> None:
        """dict.update; clears the memo."""
        self._roots.clear()
        super().update(*args, **kwargs)

    def root(self, name: str) -> str:
        """The root of `name`'s alias chain (the value that owns the buffer)."""
        path = []
        roots = self._roots
        while name in self:
            path.append(name)
            name = roots.get(name) or dict.__getitem__(self, name)
        for p in path:
            roots[p] = name
        return name


def storage_root(aliases: dict[str, str], name: str) -> str:
    """The root of `name`'s alias chain in any alias table (memoised for an AliasTable)."""
    if isinstance(aliases, AliasTable):
        return aliases.root(name)
    while name in aliases:
        name = aliases[name]
    return name


def value_lifetimes(g: Graph, nodes: list[Node] | None = None) -> dict[str, tuple[int, int]]:
    """Inclusive (first, last) step of every activation for the node order `nodes`."""
    nodes = g.nodes if nodes is None else nodes
    last_step = max(len(nodes) - 1, 0)
    life: dict[str, list[int]] = {v.name: [0, 0] for v in g.inputs}
    for step, node in enumerate(nodes):
        for v in node.inputs:
            if v is not None and v.name in life:
                life[v.name][1] = max(life[v.name][1], step)
        for v in node.outputs:
            life[v.name] = [step, step]
    for v in g.outputs:
        if v.name in life:
            life[v.name][1] = last_step
    return {k: (a, b) for k, (a, b) in life.items()}


@dataclass
class Liveness:
    """Lifetimes and buffer sharing for one node order."""

    steps: int
    lifetimes: dict[str, tuple[int, int]]
    nbytes: dict[str, int]
    aliases: dict[str, str] = field(default_factory=AliasTable)
    alias_kinds: dict[str, str] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    group_lifetimes: dict[str, tuple[int, int]] = field(default_factory=dict)
    group_bytes: dict[str, int] = field(default_factory=dict)
    live_bytes: list[int] = field(default_factory=list)
    # root -> (step, bytes): a group narrowed in place holds only `bytes` from `step` on
    group_tails: dict[str, tuple[int, int]] = field(default_factory=dict)

    def storage_of(self, name: str) -> str:
        """The group (root value name) whose buffer holds `name` (chains resolved once)."""
        return storage_root(self.aliases, name)

    @property
    def peak_bytes(self) -> int:
        """The largest total of live group bytes at one step."""
        return max(self.live_bytes, default=0)


def analyse_liveness(g: Graph, alignment: int = 16, nodes: list[Node] | None = None,
                     views: bool = True, in_place: bool = True) -> Liveness:
    """Lifetimes, aliases (views, in-place) and per-step live bytes of `g` in order `nodes`."""
    nodes = g.nodes if nodes is None else nodes
    values = [v for v in activation_values(g)]
    lifetimes = value_lifetimes(g, nodes)
    live = Liveness(steps=max(len(nodes), 1), lifetimes=lifetimes,
                    nbytes={v.name: v.type.nbytes for v in values})
    output_names = {v.name for v in g.outputs}

    if views:
        for node in nodes:
            x = view_source(node)
            if x is not None:
                live.aliases[node.output.name] = x.name
                live.alias_kinds[node.output.name] = "view"

    members: dict[str, list[str]] = {}
    for v in values:
        members.setdefault(live.storage_of(v.name), []).append(v.name)
    group_last = {r: max(lifetimes[m][1] for m in ms) for r, ms in members.items()}
    group_is_output = {r: any(m in output_names for m in ms) for r, ms in members.items()}

    narrowed: dict[str, int] = {}  # root -> step of a narrowing in-place write
    if in_place:
        for step, node in enumerate(nodes):
            y = node.outputs[0] if node.outputs else None
            for i in in_place_inputs(node):
                root = live.storage_of(node.input(i).name)
                if group_is_output[root] or group_last[root] != step or y.name in live.aliases:
                    continue
                live.aliases[y.name] = node.input(i).name
                live.alias_kinds[y.name] = "in-place"
                members[root].extend(members.pop(y.name))
                group_last[root] = max(group_last[root], group_last.pop(y.name))
                group_is_output[root] |= group_is_output.pop(y.name)
                if node.input(i).dtype != y.dtype:
                    narrowed[root] = step
                break

    for root, ms in members.items():
        live.groups[root] = ms
        live.group_lifetimes[root] = (min(lifetimes[m][0] for m in ms),
                                      max(lifetimes[m][1] for m in ms))
        live.group_bytes[root] = align_up(max(live.nbytes[m] for m in ms), alignment)
        if root in narrowed:  # after the narrowing step only the later members' bytes stay
            later = [live.nbytes[m] for m in ms if lifetimes[m][1] > narrowed[root]]
            tail = align_up(max(later), alignment) if later else 0
            if later and tail < live.group_bytes[root]:
                live.group_tails[root] = (narrowed[root] + 1, tail)
    delta = [0] * (live.steps + 1)  # difference array: O(groups + steps), not O(lifetimes)
    for root, (first, last) in live.group_lifetimes.items():
        delta[first] += live.group_bytes[root]
        delta[last + 1] -= live.group_bytes[root]
        if root in live.group_tails:
            step, tail = live.group_tails[root]
            delta[step] -= live.group_bytes[root] - tail
            delta[last + 1] += live.group_bytes[root] - tail
    live.live_bytes = list(itertools.accumulate(delta[:live.steps]))
    return live
