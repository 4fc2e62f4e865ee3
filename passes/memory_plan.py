"""Static memory planning: every activation gets a fixed offset in one arena.

The plan is made in four steps, one module each:

1. schedule (memory_schedule.py): reorder `g.nodes` to the topological order with the
   smallest peak of live bytes (exact dynamic program for small graphs, beam search for
   large ones, bounded by deterministic work budgets, never by time). Optional:
   `plan_memory(..., schedule=False)`.
2. liveness (memory_liveness.py): each activation's lifetime over that order; views and
   Identity alias their input's buffer, elementwise ops write in place into an input that
   dies at them. The result is a set of storage groups (buffers) with lifetimes.
3. offsets (memory_offsets.py): pack the buffers; greedy-by-size (TFLite Micro's planner)
   and stronger strategies (greedy by breadth/conflict/lifetime, best fit, exact branch and
   bound for small graphs, random restarts, hill climbing). The smallest arena wins and its
   strategy is recorded in `MemoryPlan.strategy`.
4. this module assembles the `MemoryPlan` and holds the O(n^2) checker the tests run over
   every plan (`check_no_overlap`).

`arena_lower_bound_bytes` is the largest total of aligned buffer bytes live at one step of
the chosen schedule, after aliasing and in-place decisions: no packing of these buffers can
be smaller. `naive_bytes` is what giving every activation its own buffer would cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgec.ir import Graph
from edgec.passes.memory_liveness import (AliasTable, activation_values, align_up, analyse_liveness,
                              storage_root)
from edgec.passes.memory_offsets import DEFAULT_PACKING_BUDGET, Buffer, pack_buffers
from edgec.passes.memory_schedule import DEFAULT_WORK_BUDGET, apply_schedule, schedule_for_memory

__all__ = [
    "Buffer",
    "MemoryPlan",
    "activation_values",
    "align_up",
    "check_no_overlap",
    "plan_memory",
]


@dataclass
class MemoryPlan:
    """Where each activation lives in the arena, and how good the plan is.

    `offsets`, `sizes` and `lifetimes` have an entry for every activation (aliased values
    carry the offset of the buffer they share). `aliases` maps a value to the value whose
    buffer it shares (`alias_kinds` says "view" or "in-place"); `storage_of` follows the chain
    to the buffer's root value. `live_bytes[s]` is the total of buffers live at step s.
    """

    offsets: dict[str, int]
    sizes: dict[str, int]
    lifetimes: dict[str, tuple[int, int]]
    arena_bytes: int
    alignment: int
    arena_lower_bound_bytes: int
    naive_bytes: int
    strategy: str = "greedy-by-size"
    aliases: dict[str, str] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    alias_kinds: dict[str, str] = field(default_factory=dict)
    live_bytes: list[int] = field(default_factory=list)
    schedule_strategy: str = "original"
    buffers: list[Buffer] = field(default_factory=list)

    def storage_of(self, name: str) -> str:
        """The buffer that holds value `name` (itself, or the value it is a view of).

        Alias chains are resolved once and remembered (O(1) amortised per call) when
        `aliases` is an AliasTable, as plan_memory makes it."""
        return storage_root(self.aliases, name)


def plan_memory(g: Graph, alignment: int = 16, schedule: bool = True,
                views: bool = True, in_place: bool = True,
                strategies: tuple[str, ...] | None = None,
                schedule_budget: int = DEFAULT_WORK_BUDGET,
                packing_budget: int = DEFAULT_PACKING_BUDGET) -> MemoryPlan:
    """Schedule `g` for memory (reordering `g.nodes` unless schedule=False) and plan its arena.

    `strategies` restricts the offset strategies (see memory_offsets.py). The searches are
    bounded by work, so the plan is the same on every machine: `schedule_budget` in the
    units of memory_schedule.py, `packing_budget` in those of memory_offsets.py.
    """
    schedule_strategy = "original"
    live = None
    if schedule and len(g.nodes) > 1:
        current = analyse_liveness(g, alignment) if views and in_place else None
        result = schedule_for_memory(g, alignment, schedule_budget, current)
        if not apply_schedule(g, result):
            live = current  # same order: the liveness is already known
        schedule_strategy = result.strategy
    if live is None:
        live = analyse_liveness(g, alignment, views=views, in_place=in_place)
    buffers = [Buffer(root, live.group_bytes[root], *live.group_lifetimes[root])
               for root in live.groups]
    for b in buffers:
        if b.name in live.group_tails:
            b.tail_from, b.tail_size = live.group_tails[b.name]
    packed = pack_buffers(buffers, strategies, packing_budget)
    group_offset = {b.name: b.offset for b in buffers}
    values = activation_values(g)
    plan = MemoryPlan(
        offsets={v.name: group_offset[live.storage_of(v.name)] for v in values},
        sizes={v.name: v.type.nbytes for v in values},
        lifetimes=dict(live.lifetimes),
        arena_bytes=max(packed.arena, alignment),
        alignment=alignment,
        arena_lower_bound_bytes=live.peak_bytes,
        naive_bytes=sum(align_up(v.type.nbytes, alignment) for v in values),
        strategy=packed.strategy,
        aliases=AliasTable(live.aliases),
        alias_kinds=dict(live.alias_kinds),
        live_bytes=list(live.live_bytes),
        schedule_strategy=schedule_strategy,
        buffers=buffers,
        meta={"strategies_tried": packed.tried, "schedule": [n.name for n in g.nodes]},
    )
    return plan


def _content_root(plan: MemoryPlan, name: str) -> str:
    """The value whose bytes `name` shows: follow view aliases only (not in-place ones)."""
    while plan.alias_kinds.get(name) == "view":
        name = plan.aliases[name]
    return name


def check_no_overlap(plan: MemoryPlan | list[Buffer]) -> None:
    """O(n^2) safety check used by tests; AssertionError naming the first violation.

    For a list of buffers: buffers live at a common step never share bytes. For a plan,
    every pair of activations: if both are live at a common step and their bytes overlap,
    they must share a buffer, and unless one is a view of the other (same content), the
    earlier one's last step must be the later one's first (an in-place overwrite). Offsets
    must be aligned and every value must fit in the arena.
    """
    if isinstance(plan, list):
        for i, a in enumerate(plan):
            for b in plan[i + 1:]:
                if a.overlaps_in_time(b) and a.size and b.size and \
                        a.offset < b.offset + b.size and b.offset < a.offset + a.size:
                    raise AssertionError(f"buffers {a.name} and {b.name} overlap")
        return
    names = list(plan.offsets)
    content_life: dict[str, tuple[int, int]] = {}
    for name in names:
        root = _content_root(plan, name)
        first, last = plan.lifetimes[name]
        old = content_life.get(root, (first, last))
        content_life[root] = (min(old[0], first), max(old[1], last))
    for name in names:
        off, size = plan.offsets[name], plan.sizes[name]
        if off % plan.alignment:
            raise AssertionError(f"{name} at offset {off} is not {plan.alignment}-aligned")
        if off < 0 or off + size > plan.arena_bytes:
            raise AssertionError(f"{name} [{off}, {off + size}) is outside the arena")
        if plan.offsets[plan.storage_of(name)] != off:
            raise AssertionError(f"{name} is not at the offset of its buffer")
    for i, a in enumerate(names):
        a0, an = plan.offsets[a], plan.sizes[a]
        af, al = plan.lifetimes[a]
        for b in names[i + 1:]:
            b0, bn = plan.offsets[b], plan.sizes[b]
            bf, bl = plan.lifetimes[b]
            if not (af <= bl and bf <= al) or not an or not bn:
                continue
            if not (a0 < b0 + bn and b0 < a0 + an):
                continue
            if plan.storage_of(a) != plan.storage_of(b):
                raise AssertionError(f"{a} and {b} are live together and overlap "
                                     f"([{a0}, {a0 + an}) and [{b0}, {b0 + bn}))")
            ra, rb = _content_root(plan, a), _content_root(plan, b)
            if ra == rb:
                continue
            (xf, xl), (yf, yl) = content_life[ra], content_life[rb]
            if not (xl <= yf or yl <= xf):
                raise AssertionError(f"{a} and {b} share a buffer but their contents are "
                                     f"live together (steps {xf}-{xl} and {yf}-{yl})")
