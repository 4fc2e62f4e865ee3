"""fuse-row-bands and its planner pieces: the band schedule (hand-worked and simulated), the
chains it finds, the budget loop, the shrinking buffer of a narrowing in-place quantize."""

from __future__ import annotations

import pytest
from edgec.passes.fuse_row_bands import maximal_chains
from edgec.passes.memory_offsets import Buffer, pack_buffers
from edgec.passes.memory_plan import check_no_overlap
from helpers import compile_model_proto
from row_band_models import mbv2_blocks

from edgec.ops.row_bands import RowGeometry, Run, Shift, band_schedule


def simulate(geoms, band_rows):
    """Replay a schedule: every layer reads only rows its input window holds, every row of
    every intermediate is computed exactly once, the final output row by row in order.
    Returns the steps and the window capacities."""
    steps, cap = band_schedule(geoms, band_rows)
    n = len(geoms)
    held = [[] for _ in range(n - 1)]  # rows currently in each window, in order
    computed = [[] for _ in range(n)]
    for st in steps:
        if isinstance(st, Shift):
            w = held[st.window]
            assert len(w) == st.drop + st.keep
            held[st.window] = w[st.drop:]
            continue
        assert isinstance(st, Run)
        lo, hi = geoms[st.stage].rows_needed(st.a, st.b)
        assert (lo, hi) == (st.in_lo, st.in_hi)
        if st.stage > 0:
            w = held[st.stage - 1]
            assert w[st.in_offset:st.in_offset + hi - lo] == list(range(lo, hi))
        if st.stage < n - 1:
            if st.out_offset == 0:  # nothing held is needed any more: the window restarts
                held[st.stage] = []
            assert len(held[st.stage]) == st.out_offset
            held[st.stage] += list(range(st.a, st.b))
            assert len(held[st.stage]) <= cap[st.stage]
        computed[st.stage] += list(range(st.a, st.b))
    for s, g in enumerate(geoms):
        rows = computed[s]
        assert rows == sorted(set(rows)), "a row was computed twice"
    assert computed[-1] == list(range(geoms[-1].out_rows))
    return steps, cap


def test_hand_worked_schedule_3x3_then_1x1():
    """3x3 stride 1 pad 1 on 4 rows, then a 1x1: the 1x1 reads one row of the window, the
    3x3 computes each row once from x, and the window keeps 1 row (drop 1 per band)."""
    geoms = [RowGeometry(4, 4, kernel=3, stride=1, pad_top=1), RowGeometry(4, 4)]
    steps, cap = simulate(geoms, 1)
    assert cap == [1]
    runs = [(s.stage, s.a, s.b) for s in steps if isinstance(s, Run)]
    assert runs == [(0, 0, 1), (1, 0, 1), (0, 1, 2), (1, 1, 2), (0, 2, 3), (1, 2, 3),
                    (0, 3, 4), (1, 3, 4)]
    first = steps[0]
    assert (first.in_lo, first.in_hi) == (0, 2)  # row 0 reads rows -1..1: one pad row on top


def test_hand_worked_schedule_expand_depthwise():
    """1x1 expand then 3x3 depthwise (stride 1, pad 1) on 5 rows: the expanded window holds
    3 rows, each expanded row is computed once."""
    geoms = [RowGeometry(5, 5), RowGeometry(5, 5, kernel=3, stride=1, pad_top=1)]
    steps, cap = simulate(geoms, 1)
    assert cap == [3]
    expanded = [(s.a, s.b) for s in steps if isinstance(s, Run) and s.stage == 0]
    assert expanded == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]


@pytest.mark.parametrize("band_rows", [1, 2, 3])
@pytest.mark.parametrize("chain", [
    [(21, 1, 1, 0), (21, 3, 1, 1), (21, 3, 2, 1), (11, 1, 1, 0)],        # MobileNetV2 block
    [(224, 3, 2, 1), (112, 3, 1, 1), (112, 1, 1, 0), (112, 3, 2, 1)],    # stem + blocks
    [(13, 5, 2, 2), (7, 5, 1, 2), (7, 1, 2, 0), (4, 3, 1, 1)],          # 5x5, 1x1 stride 2
    [(10, 3, 1, 0), (8, 3, 3, 2)],                                       # no pad, stride 3
])
def test_simulated_schedules(chain, band_rows):
    geoms, h = [], None
    for rows, k, s, p in chain:
        h = rows if h is None else h
        out = (h + 2 * p - k) // s + 1
        geoms.append(RowGeometry(h, out, k, s, p))
        h = out
    simulate(geoms, band_rows)


def test_chains_of_the_mobilenet_style_model():
    model, _ = mbv2_blocks()
    g = compile_model_proto(model, "generic-int8").graph
    chains = maximal_chains(g)
    # stem .. block 2 projection (its output feeds block 3 and the residual: two readers),
    # then block 3 with its residual QAdd and block 4
    assert [[n.op for n in c] for c in chains] == [["QConv"] * 6,
                                                   ["QConv"] * 3 + ["QAdd"] + ["QConv"] * 3]


def test_budget_fuses_the_peak_and_reports_it():
    model, _ = mbv2_blocks()
    plain = compile_model_proto(model, "generic-int8")
    fused = compile_model_proto(model, "generic-int8", memory_budget=7600)
    rb = fused.report["row_bands"]
    assert rb["arena_before_bytes"] == plain.report["arena_bytes"]
    assert rb["arena_after_bytes"] == fused.report["arena_bytes"] < plain.report["arena_bytes"]
    assert rb["budget_met"] and rb["extra_macs"] == 0
    assert fused.report["macs"] == plain.report["macs"]
    assert [len(r["layers"]) for r in rb["regions"]] == [6]
    assert rb["in_place_quantize"] == []  # the peak was the expanded tensors, not the input
    check_no_overlap(fused.plan)
    windows = [v for n in fused.graph.nodes if n.op == "RowBands" for v in n.outputs[1:]]
    assert windows and all(fused.plan.sizes[v.name] < 4096 for v in windows)


def test_budget_above_the_arena_changes_nothing():
    model, _ = mbv2_blocks()
    plain = compile_model_proto(model, "generic-int8")
    same = compile_model_proto(model, "generic-int8", memory_budget=1 << 30)
    assert {k: v for k, v in same.files.items() if k != "report.json"} == \
        {k: v for k, v in plain.files.items() if k != "report.json"}
    assert same.report["row_bands"]["regions"] == []


def test_shrinking_buffer_packs_below_its_size():
    """A 4-unit buffer that keeps 1 unit after step 0 (a narrowing in-place quantize) lets a
    3-unit buffer born at step 1 sit on its freed bytes: arena 4, not 7."""
    a = Buffer("input", 64, 0, 3)
    a.tail_from, a.tail_size = 1, 16
    b = Buffer("transposed", 48, 1, 2)
    res = pack_buffers([a, b])
    assert res.arena == 64 and res.lower_bound == 64
    assert b.offset == 16


def test_narrowed_plan_has_no_overlap():
    """Width 8: after fusing the stem chain, the float input is the peak; the quantize then
    writes its int8 output over it and the arena is the input's size."""
    model, _ = mbv2_blocks(width=8)
    res = compile_model_proto(model, "generic-int8", memory_budget=1)
    assert res.report["row_bands"]["in_place_quantize"] == ["x_quantize"]
    assert res.report["arena_bytes"] == 5296  # 1 x 3 x 21 x 21 floats, aligned
    plan = res.plan
    q = res.graph.nodes[0]
    assert q.op == "QuantizeLinear" and plan.alias_kinds[q.output.name] == "in-place"
    check_no_overlap(plan)
    # the float input's bytes serve later tensors once it is quantised
    x = q.input(0)
    later = [n for n, (f, _) in plan.lifetimes.items() if f >= 1 and plan.storage_of(n) !=
             plan.storage_of(x.name)]
    x0, x1 = plan.offsets[x.name], plan.offsets[x.name] + plan.sizes[x.name]
    assert any(x0 <= plan.offsets[plan.storage_of(n)] < x1 for n in later)
