r"""Operator scheduling for peak memory: the node order that needs the fewest live bytes.

In a branched graph the order of independent nodes decides what is live together: finishing
one branch before starting the next, or running the node that frees a big buffer first, can
lower the peak a lot. The cost of an order is the largest total of live buffer bytes at one
step, measured exactly as the planner measures it (memory_liveness.py): views share their
input's buffer, an in-place node's output takes no new bytes when the input it may overwrite
dies at that node.

Search (the "Serenity" idea, Ahn et al., MLSys 2020): the memory live after a set S of
scheduled nodes depends on S only, not on the order inside it. So a dynamic program over
states S (downward-closed node sets: every next node is one whose producers are all in S,
the zero-indegree frontier) keeps, per state, the smallest peak by which it can be reached.
States are expanded level by level (|S| = 0, 1, ...); a state whose peak already exceeds the
best complete order known (the original order, or the greedy one) is dropped. Graphs whose
state count stays under `max_states` per level are solved exactly; wider ones fall back to a
beam search of the same form that keeps the `beam_width` best states per level (peak, then
bytes live after), which for width 1 is the greedy rule "run the ready node whose step needs
the least memory, preferring the one that frees most". Each search is bounded by *work*, not
time: `work_budget` units, one unit being one step evaluated against one 64-node word of
the state's node set (so a graph of n nodes pays ceil(n/64) units per step). The same graph
therefore gets the same schedule on any machine, loaded or not. A graph whose greedy pass
alone would exceed the budget is not searched at all: it keeps its original order (the
planner's cost stays linear in the graph size); so does a graph whose every node reads the
node before it (a chain: its order is the only one, hence optimal). The original order is
kept unless another order has a strictly lower peak.

Before/after (sizes in units of the alignment; c is an in-place Add):

    x (1) --> a1 (4) --> a2 (1) --\
      \----> b1 (4) --> b2 (1) ----> c = a2 + b2 (1)
    original   a1 b1 a2 b2 c    during b1: x + a1 + b1 = 9 live      peak 9
    scheduled  a1 a2 b1 b2 c    during b1: x + a2 + b1 = 6 live      peak 6
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgec.ir import Graph, Node
from edgec.passes.memory_liveness import (Liveness, align_up, analyse_liveness, in_place_inputs,
                              view_source)

DEFAULT_WORK_BUDGET = 2_000_000  # units per search (greedy, exact, beam): about 1 s here
MAX_STATES_PER_LEVEL = 4000
BEAM_WIDTH = 48


@dataclass
class ScheduleResult:
    """The chosen node order and its memory profile."""

    order: list[Node]
    peak_bytes: int
    original_peak_bytes: int
    strategy: str
    live_bytes: list[int] = field(default_factory=list)
    states: int = 0


class _Model:
    """Static view groups of `g` and, per node, what executing it allocates and frees."""

    def __init__(self, g: Graph, alignment: int):
        self.nodes = list(g.nodes)
        n = len(self.nodes)
        index = {id(node): i for i, node in enumerate(self.nodes)}
        parent: dict[int, int] = {}  # id(view output value) -> id(source value)
        values = {id(v): v for v in g.inputs}
        for node in self.nodes:
            for v in node.outputs:
                values[id(v)] = v
            x = view_source(node)
            if x is not None:
                parent[id(node.output)] = id(x)

        def root(vid: int) -> int:
            while vid in parent:
                vid = parent[vid]
            return vid

        self.root = root
        roots = list(dict.fromkeys(root(vid) for vid in values))
        self.group_index = {r: k for k, r in enumerate(roots)}
        m = len(roots)
        self.group_bytes = [0] * m
        self.creator = [-1] * m
        self.consumers = [0] * m
        self.is_output = [False] * m
        outputs = {id(v) for v in g.outputs}
        for vid, v in values.items():
            k = self.group_index[root(vid)]
            self.group_bytes[k] = max(self.group_bytes[k], align_up(v.type.nbytes, alignment))
            if vid in outputs:
                self.is_output[k] = True
            if root(vid) == vid and v.producer is not None and id(v.producer) in index:
                self.creator[k] = index[id(v.producer)]
        self.preds = [0] * n
        self.succs: list[list[int]] = [[] for _ in range(n)]
        self.touched: list[list[int]] = [[] for _ in range(n)]
        self.created: list[list[int]] = [[] for _ in range(n)]
        self.in_place: list[list[int]] = [[] for _ in range(n)]
        for i, node in enumerate(self.nodes):
            for v in node.inputs:
                if v is None or id(v) not in values:
                    continue
                k = self.group_index[root(id(v))]
                self.consumers[k] |= 1 << i
                if k not in self.touched[i]:
                    self.touched[i].append(k)
                if v.producer is not None and id(v.producer) in index:
                    p = index[id(v.producer)]
                    if not self.preds[i] >> p & 1:
                        self.succs[p].append(i)
                    self.preds[i] |= 1 << p
            for v in node.outputs:
                k = self.group_index[root(id(v))]
                if self.creator[k] == i and k not in self.created[i]:
                    self.created[i].append(k)
            for j in in_place_inputs(node):
                self.in_place[i].append(self.group_index[root(id(node.input(j)))])
        input_groups = [k for k in range(m) if self.creator[k] < 0]
        self.initial_live = sum(self.group_bytes[k] for k in input_groups)
        self.unused_input_bytes = sum(self.group_bytes[k] for k in input_groups
                                      if not self.consumers[k] and not self.is_output[k])
        self.new_bytes = [sum(self.group_bytes[k] for k in self.created[i]) for i in range(n)]
        self.releases = [list(dict.fromkeys(self.touched[i] + self.created[i]))
                         for i in range(n)]
        for i in range(n):  # an in-place output reuses the input's bytes: one output group
            if len(self.created[i]) != 1:
                self.in_place[i] = []

    def step(self, mask: int, live: int, i: int) -> tuple[int, int]:
        """(bytes live during node i's step, bytes live after it) from state `mask`."""
        done = mask | (1 << i)
        during = after = live + self.new_bytes[i]
        for k in self.in_place[i]:
            if not self.is_output[k] and not (self.consumers[k] & ~done):
                during -= self.new_bytes[i]
                break
        for k in self.releases[i]:
            if not self.is_output[k] and not (self.consumers[k] & ~done):
                after -= self.group_bytes[k]
        if mask == 0:
            after -= self.unused_input_bytes
        return during, after

    def initial_ready(self) -> tuple[int, ...]:
        """Nodes that read no node output."""
        return tuple(i for i in range(len(self.nodes)) if not self.preds[i])

    def ready_after(self, ready: tuple[int, ...], mask: int, i: int) -> tuple[int, ...]:
        """The ready nodes once node i (one of `ready`) has run after state `mask`."""
        done = mask | (1 << i)
        new = [j for j in self.succs[i] if not (self.preds[j] & ~done)]
        return tuple(sorted([j for j in ready if j != i] + new))

    def peak_of(self, order: list[int]) -> tuple[int, list[int]]:
        """Peak and per-step live bytes of a complete order."""
        mask, live, steps = 0, self.initial_live, []
        for i in order:
            during, live = self.step(mask, live, i)
            steps.append(during)
            mask |= 1 << i
        return max(steps, default=self.initial_live), steps


def _only_order(nodes: list[Node]) -> bool:
    """True when every node reads an output of the node before it: then the (topological)
    order is the only one, and there is nothing to search. O(nodes + inputs)."""
    for prev, node in zip(nodes, nodes[1:]):
        if not any(v is not None and v.producer is prev for v in node.inputs):
            return False
    return True


def mask_words(n_nodes: int) -> int:
    """64-bit words in a state's node set: the work units one evaluated step costs."""
    return max(1, (n_nodes + 63) // 64)


def _search(model: _Model, upper: int, width: int | None, work_budget: int, strict: bool
            ) -> tuple[list[int] | None, int, bool]:
    """Level-by-level search for an order whose peak is below `upper` (or equal to it, unless
    `strict`); exact when `width` is None. Gives up (not finished) once the steps evaluated
    cost more than `work_budget` units. Returns (order or None, states, finished)."""
    n = len(model.nodes)
    words = mask_words(n)
    work = 0
    # state: mask -> (peak, live_after, previous mask, node, ready nodes)
    State = tuple[int, int, int, int, tuple[int, ...]]
    levels: list[dict[int, State]] = [{0: (0, model.initial_live, -1, -1,
                                           model.initial_ready())}]
    states = 1
    for _ in range(n):
        nxt: dict[int, State] = {}
        for mask, (peak, live, _, _, ready) in levels[-1].items():
            work += words * len(ready)
            for i in ready:
                during, after = model.step(mask, live, i)
                new_peak = max(peak, during)
                if new_peak > upper or strict and new_peak == upper:
                    continue
                key = mask | (1 << i)
                old = nxt.get(key)
                if old is None or new_peak < old[0]:
                    nxt[key] = (new_peak, after, mask, i, old[4] if old else
                                model.ready_after(ready, mask, i))
            if work > work_budget:
                return None, states, False
        if not nxt:
            return None, states, True
        if len(nxt) > (width or MAX_STATES_PER_LEVEL):
            if width is None:
                return None, states, False
            kept = sorted(nxt.items(), key=lambda kv: (kv[1][0], kv[1][1]))[:width]
            nxt = dict(kept)
        states += len(nxt)
        levels.append(nxt)
    mask, order = next(iter(levels[-1])), []
    for level in reversed(levels[1:]):
        _, _, prev, i, _ = level[mask]
        order.append(i)
        mask = prev
    return order[::-1], states, True


def schedule_for_memory(g: Graph, alignment: int = 16,
                        work_budget: int = DEFAULT_WORK_BUDGET,
                        current: Liveness | None = None) -> ScheduleResult:
    """The node order of lowest peak live bytes that the search finds (does not modify g).

    `work_budget` bounds each search in deterministic work units (see the module doc); a
    graph too large for even the greedy pass keeps its order without building the search.
    `current` may pass in analyse_liveness(g, alignment) of the current order, to be reused.
    """
    n = len(g.nodes)
    forced = n > 1 and _only_order(g.nodes)
    if forced or n > 1 and n * mask_words(n) > work_budget:
        live = current or analyse_liveness(g, alignment)
        label = "original (optimal)" if forced else "original (too large to search)"
        return ScheduleResult(list(g.nodes), live.peak_bytes, live.peak_bytes, label,
                              list(live.live_bytes), 0)
    model = _Model(g, alignment)
    original = list(range(n))
    original_peak = model.peak_of(original)[0]
    best_order, best_peak, strategy = original, original_peak, "original"
    states = 0
    if n > 1:
        greedy, count, _ = _search(model, best_peak, 1, work_budget, strict=False)
        states += count
        if greedy is not None:
            peak, _ = model.peak_of(greedy)
            if peak < best_peak:
                best_order, best_peak, strategy = greedy, peak, "greedy"
        # Exact: only orders strictly better than the best known survive the pruning, so
        # finishing without one proves the best known optimal.
        exact, count, finished = _search(model, best_peak, None, work_budget, strict=True)
        states += count
        if exact is not None:
            best_order, best_peak, strategy = exact, model.peak_of(exact)[0], "exact-dp"
        elif finished:
            strategy += " (optimal)"
        else:
            beam, count, _ = _search(model, best_peak, BEAM_WIDTH, work_budget, strict=True)
            states += count
            if beam is not None:
                best_order, best_peak, strategy = beam, model.peak_of(beam)[0], "beam"
    _, steps = model.peak_of(best_order)
    return ScheduleResult([model.nodes[i] for i in best_order], best_peak, original_peak,
                          strategy, steps, states)


def apply_schedule(g: Graph, result: ScheduleResult) -> bool:
    """Reorder `g.nodes` to the schedule (checked to be topological); True when it changed."""
    order = result.order
    if len(order) != len(g.nodes) or {id(n) for n in order} != {id(n) for n in g.nodes}:
        raise ValueError("the schedule does not cover the graph's nodes")
    done: set[int] = {id(v) for v in g.inputs}
    for node in order:
        for v in node.inputs:
            if v is not None and not v.is_const and id(v) not in done:
                raise ValueError(f"schedule runs {node.name} before its input {v.name}")
        done.update(id(v) for v in node.outputs)
    changed = any(a is not b for a, b in zip(order, g.nodes))
    g.nodes = list(order)
    return changed


def schedule_peak_bytes(g: Graph, alignment: int = 16) -> int:
    """Peak live bytes of `g` in its current order, as the planner measures it."""
    return analyse_liveness(g, alignment).peak_bytes
