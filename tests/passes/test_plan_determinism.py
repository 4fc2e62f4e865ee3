"""The memory plan is the same on every machine (issue #11): the scheduler and the offset
searches are bounded by work, never by the clock. A machine made to look hours slower (every
clock read jumps forward) or kept busy by another thread must get the same order, the same
offsets and byte-identical generated files."""

from __future__ import annotations

import itertools
import random
import threading
import time

import pytest
from edgec.passes.memory_offsets import pack_buffers
from edgec.passes.memory_plan import check_no_overlap, plan_memory
from helpers import ZOO_DIR
from test_memory_plan import random_buffers
from test_schedule import random_dag

UNIT = 16


def _slow_clock(monkeypatch) -> None:
    """Every read of any clock returns a time hours later than the previous read."""
    ticks = itertools.count(1)
    base = time.perf_counter()
    fake = lambda: base + 7200.0 * next(ticks)  # noqa: E731
    for name in ("perf_counter", "monotonic", "time", "process_time"):
        monkeypatch.setattr(time, name, fake)
    monkeypatch.setattr(time, "perf_counter_ns", lambda: int(fake() * 1e9))


def _plan_signature(seed: int, n_nodes: int, **budgets) -> tuple:
    g = random_dag(seed, n_nodes=n_nodes)
    plan = plan_memory(g, UNIT, **budgets)
    check_no_overlap(plan)
    return (tuple(n.name for n in g.nodes), tuple(sorted(plan.offsets.items())),
            plan.arena_bytes, plan.strategy, plan.schedule_strategy)


# A graph wide enough that the exact scheduling search gives up and the beam runs, with
# budgets small enough to be reached (so a clock-based cut-off would show).
CASES = [(4242, 60, {"schedule_budget": 20_000, "packing_budget": 3_000}),
         (4243, 45, {})]


@pytest.mark.parametrize("seed,n_nodes,budgets", CASES)
def test_plan_is_identical_on_a_slowed_clock(monkeypatch, seed, n_nodes, budgets):
    normal = _plan_signature(seed, n_nodes, **budgets)
    _slow_clock(monkeypatch)
    slowed = _plan_signature(seed, n_nodes, **budgets)
    assert slowed == normal


def test_plan_is_identical_while_another_thread_keeps_the_machine_busy():
    normal = _plan_signature(*CASES[0][:2], **CASES[0][2])
    stop = threading.Event()

    def spin() -> None:
        x = 0
        while not stop.is_set():
            x = (x * 31 + 7) % 1_000_003

    busy = [threading.Thread(target=spin, daemon=True) for _ in range(2)]
    for t in busy:
        t.start()
    try:
        loaded = _plan_signature(*CASES[0][:2], **CASES[0][2])
    finally:
        stop.set()
        for t in busy:
            t.join()
    assert loaded == normal


def test_offset_searches_are_identical_on_a_slowed_clock(monkeypatch):
    """Random restarts and hill climbing on buffers greedy does not pack at the bound."""
    def run() -> list[tuple]:
        out = []
        for seed in range(6):
            buffers = random_buffers(random.Random(seed), 40)
            for strategy in ("random-restarts", "hill-climbing", "exact"):
                result = pack_buffers(list(buffers), (strategy,), work_budget=5_000)
                out.append((result.arena, tuple(result.offsets)))
        return out

    normal = run()
    _slow_clock(monkeypatch)
    assert run() == normal


def test_compiling_a_zoo_model_twice_gives_byte_identical_files(monkeypatch):
    from edgec.compiler import CompileOptions, compile_model

    path = ZOO_DIR / "dscnn.onnx"
    first = compile_model(path, CompileOptions(target="generic-fp32")).files
    _slow_clock(monkeypatch)
    second = compile_model(path, CompileOptions(target="generic-fp32")).files
    assert sorted(first) == sorted(second)
    for name in first:
        assert first[name] == second[name], f"{name} differs between the two compiles"
