"""Static memory planning: every activation gets a fixed offset in one arena.

Algorithm (first version, TFLM's greedy-by-size): compute each activation's lifetime over the
execution order (first step that writes it, last step that reads it; graph inputs are live from
the start, graph outputs to the end). Visit buffers from largest to smallest and place each at
the lowest aligned offset where it overlaps no already-placed buffer whose lifetime intersects
its own. The arena is the highest end offset.

`arena_lower_bound_bytes` is the largest sum of sizes live at one step: no plan of this schedule
can use less.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Graph, Value


@dataclass
class Buffer:
    """One activation to place: its size and inclusive lifetime in execution steps."""

    name: str
    size: int
    first: int
    last: int
    offset: int = -1

    def overlaps_in_time(self, other: "Buffer") -> bool:
        """True when both buffers are live at some common step."""
        return self.first <= other.last and other.first <= self.last


@dataclass
class MemoryPlan:
    """Where each activation lives in the arena, and how good the plan is."""

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

    def storage_of(self, name: str) -> str:
        """The buffer that holds value `name` (itself, or the value it is a view of)."""
        while name in self.aliases:
            name = self.aliases[name]
        return name


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


def lifetimes(g: Graph) -> dict[str, tuple[int, int]]:
    """Inclusive (first, last) execution step of each activation; inputs start at step 0."""
    last_step = max(len(g.nodes) - 1, 0)
    life: dict[str, list[int]] = {v.name: [0, 0] for v in g.inputs}
    for step, node in enumerate(g.nodes):
        for v in node.inputs:
            if v is not None and v.name in life:
                life[v.name][1] = max(life[v.name][1], step)
        for v in node.outputs:
            life[v.name] = [step, step]
    for v in g.outputs:
        if v.name in life:
            life[v.name][1] = last_step
    return {k: (a, b) for k, (a, b) in life.items()}


def lower_bound_bytes(buffers: list[Buffer], alignment: int) -> int:
    """The largest total of aligned sizes live at any one step."""
    if not buffers:
        return 0
    steps = max(b.last for b in buffers) + 1
    live = [0] * steps
    for b in buffers:
        for s in range(b.first, b.last + 1):
            live[s] += align_up(b.size, alignment)
    return max(live)


def greedy_by_size(buffers: list[Buffer], alignment: int) -> int:
    """Place buffers largest first at the lowest free offset; returns the arena size."""
    placed: list[Buffer] = []
    order = sorted(buffers, key=lambda b: (-b.size, b.first, b.name))
    for buf in order:
        conflicts = sorted(
            (p for p in placed if p.overlaps_in_time(buf)), key=lambda p: p.offset
        )
        offset = 0
        for p in conflicts:
            if offset + buf.size <= p.offset:
                break
            offset = max(offset, align_up(p.offset + p.size, alignment))
        buf.offset = offset
        placed.append(buf)
    return max((align_up(b.offset + b.size, alignment) for b in buffers), default=0)


def check_no_overlap(buffers: list[Buffer]) -> None:
    """O(n^2) safety check used by tests: buffers live together never share bytes."""
    for i, a in enumerate(buffers):
        for b in buffers[i + 1 :]:
            if a.overlaps_in_time(b) and a.size and b.size:
                if a.offset < b.offset + b.size and b.offset < a.offset + a.size:
                    raise AssertionError(f"buffers {a.name} and {b.name} overlap")


def plan_memory(g: Graph, alignment: int = 16) -> MemoryPlan:
    """Plan the arena for `g` in its current node order."""
    life = lifetimes(g)
    values = activation_values(g)
    buffers = [Buffer(v.name, v.type.nbytes, *life[v.name]) for v in values]
    arena = greedy_by_size(buffers, alignment)
    check_no_overlap(buffers)
    return MemoryPlan(
        offsets={b.name: b.offset for b in buffers},
        sizes={b.name: b.size for b in buffers},
        lifetimes=life,
        arena_bytes=max(arena, alignment),
        alignment=alignment,
        arena_lower_bound_bytes=lower_bound_bytes(buffers, alignment),
        naive_bytes=sum(align_up(b.size, alignment) for b in buffers),
    )
