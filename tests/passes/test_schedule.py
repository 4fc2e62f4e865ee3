"""Operator scheduling for peak memory (passes/memory_schedule.py): Before/After orders, the
exact dynamic program against brute force over every topological order, the beam fallback,
and random DAGs (the schedule's peak never exceeds the original order's)."""

from __future__ import annotations

import random

import networkx as nx
import numpy as np
import pytest
from edgec.passes import memory_schedule
from edgec.passes.memory_liveness import analyse_liveness
from edgec.passes.memory_plan import check_no_overlap, plan_memory
from edgec.passes.memory_schedule import apply_schedule, schedule_for_memory

from edgec.ir import Graph, TensorType

UNIT = 16  # bytes: one alignment unit = 4 floats


# ------------------------------------------------------------------------------ builders
def vec_input(g: Graph, name: str, units: int):
    """A graph input of `units` x 16 bytes."""
    return g.add_input(name, TensorType((1, 4 * units)))


def dense(g: Graph, x, units: int, name: str):
    """MatMul by a constant: an output of `units` x 16 bytes (a size-changing op)."""
    w = g.const(np.full((x.shape[-1], 4 * units), 0.01, np.float32), name + "_w")
    return g.add_node("MatMul", [x, w], name=name).output


def op(g: Graph, kind: str, inputs, name: str):
    """A node of any registered op with inferred output."""
    return g.add_node(kind, list(inputs), name=name).output


def branches_graph() -> Graph:
    """x -> a1 (4u) -> a2 (1u); x -> b1 (4u) -> b2 (1u); c = a2 + b2, in the bad order."""
    g = Graph("branches")
    x = vec_input(g, "x", 1)
    a1 = dense(g, x, 4, "a1")
    b1 = dense(g, x, 4, "b1")
    a2 = dense(g, a1, 1, "a2")
    b2 = dense(g, b1, 1, "b2")
    g.outputs = [op(g, "Add", [a2, b2], "c")]
    return g


def names(g: Graph) -> list[str]:
    return [n.name for n in g.nodes]


def peak_units(g: Graph, nodes=None) -> float:
    return analyse_liveness(g, UNIT, nodes).peak_bytes / UNIT


# ------------------------------------------------------------------------------ Before/After
def test_branches_finish_one_branch_before_the_next():
    g = branches_graph()
    assert names(g) == ["a1", "b1", "a2", "b2", "c"]
    assert peak_units(g) == 9  # during b1: x + a1 + b1
    result = schedule_for_memory(g, UNIT)
    assert result.strategy in ("exact-dp", "greedy (optimal)")
    assert (result.original_peak_bytes, result.peak_bytes) == (9 * UNIT, 6 * UNIT)
    assert apply_schedule(g, result)
    g.verify()
    assert names(g) == ["a1", "a2", "b1", "b2", "c"]
    assert peak_units(g) == 6
    # the scheduler's own step accounting is the planner's
    assert result.live_bytes == analyse_liveness(g, UNIT).live_bytes
    assert [b // UNIT for b in result.live_bytes] == [5, 6, 6, 6, 2]


def test_plan_memory_schedules_unless_told_not_to():
    g = branches_graph()
    plan = plan_memory(g, UNIT, schedule=False)
    assert names(g) == ["a1", "b1", "a2", "b2", "c"]
    assert plan.arena_lower_bound_bytes == 9 * UNIT and plan.schedule_strategy == "original"
    plan = plan_memory(g, UNIT)
    assert names(g) == ["a1", "a2", "b1", "b2", "c"]
    assert plan.arena_bytes == plan.arena_lower_bound_bytes == 6 * UNIT
    assert plan.schedule_strategy != "original" and plan.live_bytes == [b * UNIT for b in
                                                                        (5, 6, 6, 6, 2)]
    check_no_overlap(plan)


def test_chain_keeps_its_order_and_is_proven_optimal():
    g = Graph("chain")
    x = vec_input(g, "x", 2)
    a = dense(g, x, 3, "a")
    b = op(g, "Relu", [a], "b")
    g.outputs = [dense(g, b, 1, "c")]
    result = schedule_for_memory(g, UNIT)
    assert result.strategy == "original (optimal)"
    assert not apply_schedule(g, result)
    assert names(g) == ["a", "b", "c"]


def test_small_buffer_first_frees_the_shared_input():
    """Two readers of a big x: running the one whose output is small first does not help
    (x lives until both ran), but running the branch that frees its big intermediate first
    does: big1 must be consumed before big2 is made."""
    g = Graph("frees")
    x = vec_input(g, "x", 2)
    big1 = dense(g, x, 6, "big1")
    big2 = dense(g, x, 6, "big2")
    s1 = dense(g, big1, 1, "s1")
    s2 = dense(g, big2, 1, "s2")
    g.outputs = [op(g, "Add", [s1, s2], "y")]
    before = peak_units(g)
    plan = plan_memory(g, UNIT)
    assert names(g).index("s1") < names(g).index("big2")
    assert plan.arena_lower_bound_bytes < before * UNIT
    check_no_overlap(plan)


# ------------------------------------------------------------------------------ exactness
def random_dag(seed: int, n_nodes: int, max_units: int = 6) -> Graph:
    """A random DAG of MatMul (resizes), unary (in place), Add (in place) and Reshape (view)."""
    rng = random.Random(seed)
    g = Graph(f"dag{seed}")
    values = [vec_input(g, "x0", rng.randint(1, max_units))]
    if rng.random() < 0.5:
        values.append(vec_input(g, "x1", rng.randint(1, max_units)))
    for i in range(n_nodes):
        kind = rng.choice(["dense", "dense", "unary", "add", "view"])
        x = rng.choice(values)
        if kind == "dense":
            v = dense(g, x, rng.randint(1, max_units), f"n{i}")
        elif kind == "unary":
            v = op(g, rng.choice(["Relu", "Sigmoid", "Neg"]), [x], f"n{i}")
        elif kind == "view":
            shape = [1, x.shape[-1]] if len(x.shape) == 3 else [1, 1, x.shape[-1]]
            v = g.add_node("Reshape", [x], attrs={"shape": shape}, name=f"n{i}").output
        else:
            same = [w for w in values if w.shape == x.shape]
            v = op(g, "Add", [x, rng.choice(same)], f"n{i}")
        values.append(v)
    produced = [v for v in values if v.producer is not None]
    unread = [v for v in produced if not v.uses]
    g.outputs = list(dict.fromkeys(unread + rng.sample(produced, min(2, len(produced)))))
    return g


@pytest.mark.parametrize("seed", range(30))
def test_dp_is_optimal_over_every_topological_order(seed):
    g = random_dag(seed, n_nodes=random.Random(seed).randint(4, 7))
    result = schedule_for_memory(g, UNIT)
    dag = g.to_networkx()
    best = min(analyse_liveness(g, UNIT, [g.nodes[i] for i in order]).peak_bytes
               for order in nx.all_topological_sorts(dag))
    assert result.peak_bytes == best
    assert result.peak_bytes <= result.original_peak_bytes
    assert result.live_bytes == analyse_liveness(g, UNIT, result.order).live_bytes


@pytest.mark.parametrize("seed", range(12))
def test_random_dags_schedule_never_worse_and_plans_are_safe(seed):
    g = random_dag(100 + seed, n_nodes=random.Random(seed).randint(10, 30))
    original = analyse_liveness(g, UNIT).peak_bytes
    plan = plan_memory(g, UNIT)
    g.verify()
    assert plan.arena_lower_bound_bytes <= original
    assert plan.arena_lower_bound_bytes == max(plan.live_bytes)
    check_no_overlap(plan)


def test_wide_graph_falls_back_to_beam_search(monkeypatch):
    """Eight independent branches: too many states for the exact search at a small cap."""
    monkeypatch.setattr(memory_schedule, "MAX_STATES_PER_LEVEL", 20)
    g = Graph("wide")
    x = vec_input(g, "x", 1)
    tips = []
    for b in range(8):
        h = dense(g, x, 4, f"b{b}_0")
        h = dense(g, h, 1 + b % 3, f"b{b}_1")
        tips.append(dense(g, h, 1, f"b{b}_2"))
    g.nodes.sort(key=lambda n: n.name.split("_")[1])  # breadth first: the worst order
    y = tips[0]
    for i, t in enumerate(tips[1:]):
        y = op(g, "Add", [y, t], f"sum{i}")
    g.outputs = [y]
    g.verify()
    result = schedule_for_memory(g, UNIT)
    assert result.strategy in ("beam", "greedy")
    assert result.peak_bytes < result.original_peak_bytes
    apply_schedule(g, result)
    g.verify()


def test_work_budget_bounds_the_search():
    """A tiny work budget stops the exact and beam searches early (the result is still a
    legal order no worse than the original), and the states counted grow with the budget."""
    g = Graph("wide")
    x = vec_input(g, "x", 1)
    ys = [dense(g, dense(g, x, 2, f"a{i}"), 1, f"b{i}") for i in range(14)]
    y = ys[0]
    for i, t in enumerate(ys[1:]):
        y = op(g, "Add", [y, t], f"s{i}")
    g.outputs = [y]
    small = schedule_for_memory(g, UNIT, work_budget=200)
    large = schedule_for_memory(g, UNIT)
    assert small.states < large.states
    assert small.peak_bytes <= small.original_peak_bytes
    assert large.peak_bytes <= small.peak_bytes
    apply_schedule(g, small)
    g.verify()


def test_graph_too_large_for_the_budget_keeps_its_order():
    g = branches_graph()
    result = schedule_for_memory(g, UNIT, work_budget=len(g.nodes) - 1)
    assert result.strategy == "original (too large to search)" and result.states == 0
    assert [n.name for n in result.order] == names(g)
    assert result.peak_bytes == result.original_peak_bytes == 9 * UNIT
    assert result.live_bytes == analyse_liveness(g, UNIT).live_bytes


def test_apply_schedule_refuses_a_non_topological_order():
    g = branches_graph()
    result = schedule_for_memory(g, UNIT)
    result.order = list(reversed(result.order))
    with pytest.raises(ValueError, match="before its input"):
        apply_schedule(g, result)
