"""Offset assignment: pack buffers with fixed lifetimes into the smallest arena.

Each buffer is a rectangle: its lifetime (steps first..last) on the time axis, its aligned
size on the address axis. Two buffers whose lifetimes intersect may not share an address.
Every strategy below produces a *placement order*; `place` then puts each buffer, in that
order, at the lowest aligned offset (first fit) or in the tightest gap (best fit) where it
overlaps no already placed buffer of intersecting lifetime. First fit over all orders is
complete: sort an optimal packing by offset and first fit in that order puts every buffer at
or below its optimal offset (a buffer below it stays below it), so searching orders can
reach the optimum.

    address                       greedy-by-size on four buffers (one unit = 1 x alignment):
     6 +-------------------+       B: 3 units, steps 1-3     A: 2 units, steps 0-1
     5 | D   D   D   D   D |       C: 2 units, steps 3-4     D: 1 unit,  steps 0-4
     4 | A   A   .   C   C |     Order B, A, C, D (largest first). B goes to 0. A and C
     3 | A   A   .   C   C |     meet B in time: lowest free offset is on top of it, 3.
     2 | .   B   B   B   . |     A and C never meet, so they share 3..4. D meets all of
     1 | .   B   B   B   . |     them: it lands at 5. Arena 6 = the lower bound (the
     0 | .   B   B   B   . |     total live at steps 1 and 3), so no search is needed.
       +-------------------+
         0   1   2   3   4   step

Strategies, tried in this order; the first to reach the lower bound (the largest total of
sizes live at one step, which no packing can beat) wins, otherwise the smallest arena does:
  greedy-by-size       largest buffer first (TFLM's greedy memory planner)
  greedy-by-breadth    steps by total live bytes, largest first; each step's buffers by size
                       (Pisarchyk & Lee 2020, "Efficient memory management for DNN inference")
  greedy-by-conflict   buffers live at the busiest steps first, then by size
  greedy-by-lifetime   longest-lived first, then by size (long buffers fragment the most)
  each of them again with best fit
  exact                branch and bound over placement orders, for <= EXACT_MAX_BUFFERS
  random-restarts      size order with random perturbation, first and best fit
  hill-climbing        swaps in the best order found, keeping those that do not hurt
The searches are deterministic: fixed seeds, and every search is bounded by *work*, never by
time, so the plan is the same on any machine, loaded or not. The unit of work is one entry of
a conflict list examined while placing a buffer (a whole placement costs `place_cost` = the
number of buffers plus twice the number of conflicting pairs); random restarts and hill
climbing stop once they have spent `work_budget` units each, the exact search after
`EXACT_MAX_NODES` visits. Everything before the searches is O(n log n) plus the conflicts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

EXACT_MAX_BUFFERS = 12
EXACT_MAX_NODES = 120_000  # visits: about 1.7 s at worst (12 buffers) here
DEFAULT_PACKING_BUDGET = 4_000_000  # work units per search (see the module doc)


@dataclass
class Buffer:
    """One buffer to place: its aligned size and inclusive lifetime in execution steps."""

    name: str
    size: int
    first: int
    last: int
    offset: int = -1
    tail_from: int = -1  # from this step on, only the first `tail_size` bytes are in use
    tail_size: int = 0

    def overlaps_in_time(self, other: Buffer) -> bool:
        """True when both buffers are live at some common step."""
        return self.first <= other.last and other.first <= self.last

    def extent_against(self, other: Buffer) -> int:
        """The bytes this buffer occupies at the steps it shares with `other` (its size, or
        its tail when they meet only after it shrank)."""
        if self.tail_from < 0 or max(self.first, other.first) < self.tail_from:
            return self.size
        return self.tail_size


class _RangeArgmax:
    """Sparse table: the first index of the largest value in values[lo..hi], O(1) a query."""

    def __init__(self, values: list[int]):
        self.values = values
        self.table = [list(range(len(values)))]
        width = 1
        while 2 * width <= len(values):
            prev = self.table[-1]
            self.table.append([self._better(prev[i], prev[i + width])
                               for i in range(len(values) - 2 * width + 1)])
            width *= 2

    def _better(self, a: int, b: int) -> int:
        return a if self.values[a] >= self.values[b] else b

    def query(self, lo: int, hi: int) -> int:
        """First argmax over the inclusive range (-1 when it is empty)."""
        lo, hi = max(lo, 0), min(hi, len(self.values) - 1)
        if lo > hi:
            return -1
        level = (hi - lo + 1).bit_length() - 1
        row = self.table[level]
        return self._better(row[lo], row[hi - (1 << level) + 1])


class Packing:
    """Buffers indexed 0..n-1 with their time conflicts, and placement in a given order."""

    def __init__(self, buffers: list[Buffer]):
        self.buffers = buffers
        self.sizes = [b.size for b in buffers]
        n = len(buffers)
        self.conflicts: list[list[int]] = [[] for _ in range(n)]
        by_start = sorted((i for i in range(n) if self.sizes[i]), key=lambda i: buffers[i].first)
        for pos, i in enumerate(by_start):  # sweep: later starters until one starts too late
            for j in by_start[pos + 1:]:
                if buffers[j].first > buffers[i].last:
                    break
                self.conflicts[i].append(j)
                self.conflicts[j].append(i)
        self.conflict_sets = [set(c) for c in self.conflicts]
        self.place_cost = n + sum(len(c) for c in self.conflicts)
        steps = max((b.last for b in buffers), default=-1) + 1
        delta = [0] * (steps + 1)
        for b in buffers:
            if b.first <= b.last:
                delta[b.first] += b.size
                delta[b.last + 1] -= b.size
                if 0 <= b.tail_from <= b.last:
                    delta[b.tail_from] -= b.size - b.tail_size
                    delta[b.last + 1] += b.size - b.tail_size
        # shrinking buffers (a narrowing in-place write) need pairwise extents (offset_for)
        self.shrinking = any(b.tail_from >= 0 for b in buffers)
        self.breadth = [0] * steps
        running = 0
        for s in range(steps):
            running += delta[s]
            self.breadth[s] = running
        self.lower_bound = max(self.breadth, default=0)
        self._busiest = _RangeArgmax(self.breadth)

    def busiest_step(self, i: int) -> int:
        """The step of buffer i's lifetime with the most live bytes (the first such; -1 when
        its lifetime is empty)."""
        b = self.buffers[i]
        return self._busiest.query(b.first, b.last)

    def offset_for(self, b: int, offsets: list[int], best_fit: bool = False) -> int:
        """Where buffer `b` goes given the buffers placed so far (offset -1: not placed)."""
        size = self.sizes[b]
        if size == 0:
            return 0
        if self.shrinking:
            return self._first_fit_extents(b, offsets)
        taken = sorted((offsets[c], offsets[c] + self.sizes[c])
                       for c in self.conflicts[b] if offsets[c] >= 0)
        candidate = 0
        best, best_slack = -1, None
        for start, end in taken:
            if candidate + size <= start:
                if not best_fit:
                    return candidate
                slack = start - candidate - size
                if best_slack is None or slack < best_slack:
                    best, best_slack = candidate, slack
            candidate = max(candidate, end)
        return best if best >= 0 else candidate

    def _first_fit_extents(self, b: int, offsets: list[int]) -> int:
        """First fit where each pair of buffers uses its extents against each other (a
        shrinking buffer meets later buffers with its tail only)."""
        me = self.buffers[b]
        taken = [(offsets[c], offsets[c] + self.buffers[c].extent_against(me),
                  me.extent_against(self.buffers[c]))
                 for c in self.conflicts[b] if offsets[c] >= 0]
        for candidate in sorted({0} | {end for _, end, _ in taken}):
            if all(candidate + mine <= start or candidate >= end
                   for start, end, mine in taken):
                return candidate
        return 0  # unreachable: the highest end always fits

    def place(self, order: list[int], best_fit: bool = False, limit: int | None = None
              ) -> tuple[list[int], int]:
        """Offsets after placing in `order`, and the arena; stops early past `limit`."""
        offsets = [-1] * len(self.sizes)
        arena = 0
        for b in order:
            off = self.offset_for(b, offsets, best_fit)
            offsets[b] = off
            arena = max(arena, off + self.sizes[b])
            if limit is not None and arena > limit:
                return offsets, arena
        return offsets, arena


# ------------------------------------------------------------------------------ orders
def order_by_size(p: Packing) -> list[int]:
    """Largest first; earlier start, then index, break ties."""
    return sorted(range(len(p.sizes)), key=lambda i: (-p.sizes[i], p.buffers[i].first, i))


def order_by_breadth(p: Packing) -> list[int]:
    """Busiest step first; within a step, its not yet ordered buffers largest first.

    A buffer is ordered at the first step of its lifetime in that step order, which is its
    busiest step (ties: the earliest), so one sort by that step does it."""
    steps = [p.busiest_step(i) for i in range(len(p.sizes))]
    timed = [i for i in range(len(p.sizes)) if steps[i] >= 0]
    order = sorted(timed, key=lambda i: (-p.breadth[steps[i]], steps[i], -p.sizes[i], i))
    order.extend(i for i in range(len(p.sizes)) if steps[i] < 0)
    return order


def order_by_conflict(p: Packing) -> list[int]:
    """Buffers live at the busiest step of their lifetime first, then by size."""
    def busiest(i: int) -> int:
        s = p.busiest_step(i)
        return p.breadth[s] if s >= 0 else 0
    return sorted(range(len(p.sizes)), key=lambda i: (-busiest(i), -p.sizes[i], i))


def order_by_lifetime(p: Packing) -> list[int]:
    """Longest lifetime first, then by size."""
    return sorted(range(len(p.sizes)), key=lambda i: (
        -(p.buffers[i].last - p.buffers[i].first), -p.sizes[i], i))


GREEDY_ORDERS: list[tuple[str, Callable[[Packing], list[int]]]] = [
    ("greedy-by-size", order_by_size),
    ("greedy-by-breadth", order_by_breadth),
    ("greedy-by-conflict", order_by_conflict),
    ("greedy-by-lifetime", order_by_lifetime),
]


# ------------------------------------------------------------------------------ searches
def exact_order(p: Packing, upper: int,
                max_nodes: int = EXACT_MAX_NODES) -> list[int] | None:
    """Branch and bound over placement orders (first fit): an order beating `upper`, or None.

    Adjacent buffers whose lifetimes do not intersect give the same packing in either order,
    so only the order with the smaller index first is explored. A branch ends when its arena
    reaches the best found; the search ends at the lower bound or after `max_nodes` visits.
    """
    n = len(p.sizes)
    offsets = [-1] * n
    order: list[int] = []
    best: list = [upper, None]
    visits = [0]

    def dfs(prev: int, arena: int) -> bool:
        visits[0] += 1
        if len(order) == n:
            best[0], best[1] = arena, list(order)
            return arena <= p.lower_bound
        if visits[0] > max_nodes:
            return True
        for b in range(n):
            if offsets[b] >= 0:
                continue
            if prev >= 0 and b < prev and b not in p.conflict_sets[prev]:
                continue
            off = p.offset_for(b, offsets)
            new_arena = max(arena, off + p.sizes[b])
            if max(new_arena, p.lower_bound) >= best[0]:
                continue
            offsets[b] = off
            order.append(b)
            done = dfs(b, new_arena)
            order.pop()
            offsets[b] = -1
            if done:
                return True
        return False

    dfs(-1, 0)
    return best[1]


def affordable_rounds(p: Packing, rounds: int, work_budget: int, placements: int = 1) -> int:
    """`rounds`, or fewer when that many rounds of `placements` placements each would cost
    more than `work_budget` units (at least one round)."""
    return max(1, min(rounds, work_budget // max(1, placements * p.place_cost)))


def random_restarts(p: Packing, rng: random.Random, rounds: int, work_budget: int,
                    best_arena: int) -> tuple[list[int], bool, int] | None:
    """Size orders perturbed by +-30 %, first and best fit; the best that beats best_arena.
    Runs `rounds` rounds, or as many as `work_budget` units pay for."""
    found = None
    for _ in range(affordable_rounds(p, rounds, work_budget, placements=2)):
        if best_arena <= p.lower_bound:
            break
        keys = {i: p.sizes[i] * rng.uniform(0.7, 1.3) for i in range(len(p.sizes))}
        order = sorted(range(len(p.sizes)), key=lambda i: (-keys[i], i))
        for best_fit in (False, True):
            _, arena = p.place(order, best_fit, limit=best_arena)
            if arena < best_arena:
                best_arena, found = arena, (order, best_fit, arena)
    return found


def hill_climb(p: Packing, order: list[int], best_fit: bool, arena: int, rng: random.Random,
               rounds: int, work_budget: int) -> tuple[list[int], int]:
    """Swap two buffers of the order; keep the swap when the arena does not grow. Runs
    `rounds` rounds, or as many as `work_budget` units pay for."""
    order = list(order)
    n = len(order)
    if n < 2:
        return order, arena
    for _ in range(affordable_rounds(p, rounds, work_budget)):
        if arena <= p.lower_bound:
            break
        i, j = rng.randrange(n), rng.randrange(n)
        if i == j:
            continue
        order[i], order[j] = order[j], order[i]
        _, new_arena = p.place(order, best_fit, limit=arena)
        if new_arena <= arena:
            arena = new_arena
        else:
            order[i], order[j] = order[j], order[i]
    return order, arena


@dataclass
class PackResult:
    """The winning placement."""

    offsets: list[int]
    arena: int
    strategy: str
    lower_bound: int
    tried: dict[str, int]


def pack_buffers(buffers: list[Buffer], strategies: tuple[str, ...] | None = None,
                 work_budget: int = DEFAULT_PACKING_BUDGET, seed: int = 0) -> PackResult:
    """Run the strategies (all by default) and write the best offsets into `buffers`.

    `strategies` may name a subset, e.g. ("greedy-by-size",) for TFLM's planner alone;
    `work_budget` bounds random restarts and hill climbing each (see the module doc).
    """
    p = Packing(buffers)
    rng = random.Random(seed)
    wanted = set(strategies) if strategies is not None else None
    tried: dict[str, int] = {}
    best: tuple[int, str, list[int], bool] | None = None

    def consider(name: str, order: list[int], best_fit: bool) -> None:
        nonlocal best
        arena = p.place(order, best_fit)[1]
        tried[name] = arena
        if best is None or arena < best[0]:
            best = (arena, name, order, best_fit)

    def enabled(name: str) -> bool:
        return wanted is None or name in wanted

    def done() -> bool:
        return best is not None and best[0] <= p.lower_bound

    for best_fit in (False, True):
        for name, fn in GREEDY_ORDERS:
            full = name + ("+best-fit" if best_fit else "")
            if enabled(full) and not done():
                consider(full, fn(p), best_fit)
    if best is None:  # every requested strategy was a search: start from greedy-by-size
        consider("greedy-by-size", order_by_size(p), False)
    n = len(buffers)
    if enabled("exact") and not done() and n <= EXACT_MAX_BUFFERS:
        order = exact_order(p, best[0])
        if order is not None:
            consider("exact", order, False)
    if enabled("random-restarts") and not done():
        found = random_restarts(p, rng, rounds=max(20, 4 * n), work_budget=work_budget,
                                best_arena=best[0])
        if found is not None:
            consider("random-restarts", found[0], found[1])
    if enabled("hill-climbing") and not done():
        order, arena = hill_climb(p, best[2], best[3], best[0], rng,
                                  rounds=max(200, 20 * n), work_budget=work_budget)
        if arena < best[0]:
            consider("hill-climbing", order, best[3])
    arena, name, order, best_fit = best
    offsets, arena = p.place(order, best_fit)
    for b, off in zip(buffers, offsets):
        b.offset = off
    return PackResult(offsets, arena, name, p.lower_bound, tried)
