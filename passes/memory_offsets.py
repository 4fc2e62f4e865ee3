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
The searches are deterministic (fixed seeds, iteration counts) with a wall-time safety cap.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

EXACT_MAX_BUFFERS = 12
EXACT_MAX_NODES = 200_000


@dataclass
class Buffer:
    """One buffer to place: its aligned size and inclusive lifetime in execution steps."""

    name: str
    size: int
    first: int
    last: int
    offset: int = -1

    def overlaps_in_time(self, other: Buffer) -> bool:
        """True when both buffers are live at some common step."""
        return self.first <= other.last and other.first <= self.last


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
        steps = max((b.last for b in buffers), default=-1) + 1
        self.breadth = [0] * steps
        for b in buffers:
            for s in range(b.first, b.last + 1):
                self.breadth[s] += b.size
        self.lower_bound = max(self.breadth, default=0)

    def offset_for(self, b: int, offsets: list[int], best_fit: bool = False) -> int:
        """Where buffer `b` goes given the buffers placed so far (offset -1: not placed)."""
        size = self.sizes[b]
        if size == 0:
            return 0
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
    """Busiest step first; within a step, its not yet ordered buffers largest first."""
    live_at: list[list[int]] = [[] for _ in p.breadth]
    for i, b in enumerate(p.buffers):
        for s in range(b.first, b.last + 1):
            live_at[s].append(i)
    order, seen = [], set()
    for s in sorted(range(len(p.breadth)), key=lambda s: (-p.breadth[s], s)):
        for i in sorted(live_at[s], key=lambda i: (-p.sizes[i], i)):
            if i not in seen:
                seen.add(i)
                order.append(i)
    order.extend(i for i in range(len(p.sizes)) if i not in seen)
    return order


def order_by_conflict(p: Packing) -> list[int]:
    """Buffers live at the busiest step of their lifetime first, then by size."""
    def busiest(i: int) -> int:
        b = p.buffers[i]
        return max(p.breadth[b.first:b.last + 1], default=0)
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
def exact_order(p: Packing, upper: int, deadline: float,
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
        if visits[0] > max_nodes or visits[0] % 1024 == 0 and time.perf_counter() > deadline:
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


def random_restarts(p: Packing, rng: random.Random, rounds: int, deadline: float,
                    best_arena: int) -> tuple[list[int], bool, int] | None:
    """Size orders perturbed by +-30 %, first and best fit; the best that beats best_arena."""
    found = None
    for _ in range(rounds):
        if time.perf_counter() > deadline or best_arena <= p.lower_bound:
            break
        keys = {i: p.sizes[i] * rng.uniform(0.7, 1.3) for i in range(len(p.sizes))}
        order = sorted(range(len(p.sizes)), key=lambda i: (-keys[i], i))
        for best_fit in (False, True):
            _, arena = p.place(order, best_fit, limit=best_arena)
            if arena < best_arena:
                best_arena, found = arena, (order, best_fit, arena)
    return found


def hill_climb(p: Packing, order: list[int], best_fit: bool, arena: int, rng: random.Random,
               rounds: int, deadline: float) -> tuple[list[int], int]:
    """Swap two buffers of the order; keep the swap when the arena does not grow."""
    order = list(order)
    n = len(order)
    if n < 2:
        return order, arena
    for _ in range(rounds):
        if time.perf_counter() > deadline or arena <= p.lower_bound:
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
                 time_budget: float = 2.0, seed: int = 0) -> PackResult:
    """Run the strategies (all by default) and write the best offsets into `buffers`.

    `strategies` may name a subset, e.g. ("greedy-by-size",) for TFLM's planner alone.
    """
    p = Packing(buffers)
    deadline = time.perf_counter() + time_budget
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
        return best is not None and (best[0] <= p.lower_bound or time.perf_counter() > deadline)

    for best_fit in (False, True):
        for name, fn in GREEDY_ORDERS:
            full = name + ("+best-fit" if best_fit else "")
            if enabled(full) and not done():
                consider(full, fn(p), best_fit)
    if best is None:  # every requested strategy was a search: start from greedy-by-size
        consider("greedy-by-size", order_by_size(p), False)
    n = len(buffers)
    if enabled("exact") and not done() and n <= EXACT_MAX_BUFFERS:
        order = exact_order(p, best[0], deadline)
        if order is not None:
            consider("exact", order, False)
    if enabled("random-restarts") and not done():
        found = random_restarts(p, rng, rounds=max(20, 4 * n), deadline=deadline,
                                best_arena=best[0])
        if found is not None:
            consider("random-restarts", found[0], found[1])
    if enabled("hill-climbing") and not done():
        order, arena = hill_climb(p, best[2], best[3], best[0], rng,
                                  rounds=max(200, 20 * n), deadline=deadline)
        if arena < best[0]:
            consider("hill-climbing", order, best[3])
    arena, name, order, best_fit = best
    offsets, arena = p.place(order, best_fit)
    for b, off in zip(buffers, offsets):
        b.offset = off
    return PackResult(offsets, arena, name, p.lower_bound, tried)
