"""fuse-row-bands: under a memory budget, chains of row-local layers become RowBands nodes.

`--memory-budget BYTES` (CompileOptions.memory_budget) runs this pass after quantisation and
before the final memory plan. A *chain* is a run of channels-last, batch-1 layers where each
layer reads the previous one's output and nothing else reads it: Conv / QConv (any kernel,
stride, group; an fp32 Conv may carry a fused residual) and the QAdd / Add of a residual
connection, whose other operand comes from outside the chain. A fused chain keeps only line
buffers of its intermediates (edgec/ops/row_bands.py), computes every row once (no extra
MACs) and with the unfused layers' kernels and arithmetic.

The decision is greedy and driven by the plan: plan the graph; while the arena is above the
budget, look at the step of the peak (the lower bound): if its node belongs to a chain, fuse
the whole maximal chain (the fewest regions: one per peak removed); if it is a
QuantizeLinear whose float input dies there (a model's float input), let it write its int8
output over that input. Each step is tried on a copy of the graph and re-planned, and kept
unless the arena grows; stop when the budget is met, the peak cannot be lowered or a step
would raise the arena. Without a budget nothing changes, so the default build is untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgec.passes.memory_liveness import NARROWING_IN_PLACE
from edgec.passes.memory_plan import plan_memory

from edgec.ir import Graph, Node, Value
from edgec.ops import get_op
from edgec.ops.row_bands import CONV_OPS, PREVIOUS, schedule_of

ADD_OPS = ("Add", "QAdd")


@dataclass
class BandReport:
    """What the pass did: the arena before and after, the fused regions, extra MACs."""

    budget: int
    arena_before: int
    arena_after: int = 0
    regions: list[dict] = field(default_factory=list)
    in_place: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The `row_bands` section of report.json (docs/report.md)."""
        return {"memory_budget": self.budget, "budget_met": self.arena_after <= self.budget,
                "arena_before_bytes": self.arena_before, "arena_after_bytes": self.arena_after,
                "regions": self.regions, "in_place_quantize": self.in_place,
                "extra_macs": sum(r["extra_macs"] for r in self.regions)}


def _nhwc_batch1(v: Value) -> bool:
    return v.type.rank == 4 and v.shape[0] == 1


def is_row_conv(node: Node) -> bool:
    """A 2-D channels-last Conv/QConv on one image, reading channels-last input."""
    return (node.op in CONV_OPS and node.attrs.get("layout") == "NHWC"
            and not node.attrs.get("input_layout") and _nhwc_batch1(node.input(0))
            and node.input(1) is not None and node.input(1).is_const)


def _next_link(g: Graph, node: Node, inside: set[int]) -> Node | None:
    """The layer that continues the chain after `node`, or None."""
    y = node.outputs[0]
    if len(node.outputs) != 1 or y in g.outputs or len(y.uses) != 1:
        return None
    nxt, index = y.uses[0]
    others = [v for i, v in enumerate(nxt.inputs) if i != index and v is not None
              and not v.is_const]
    if any(id(v.producer) in inside for v in others):  # operands must come from outside
        return None
    if is_row_conv(nxt) and index == 0:
        return nxt
    if nxt.op in ADD_OPS and len(nxt.inputs) == 2 and all(
            v.type == nxt.outputs[0].type for v in nxt.inputs) and not any(
            v.is_const for v in nxt.inputs):
        return nxt
    return None


def maximal_chains(g: Graph) -> list[list[Node]]:
    """Every maximal chain of two or more row-local layers, in graph order."""
    chains, taken = [], set()
    for node in g.nodes:
        if id(node) in taken or not is_row_conv(node):
            continue
        chain = [node]
        inside = {id(node)}
        while (nxt := _next_link(g, chain[-1], inside)) is not None:
            chain.append(nxt)
            inside.add(id(nxt))
        if len(chain) >= 2:
            chains.append(chain)
            taken |= inside
    return chains


def fuse_chain(g: Graph, chain: list[Node], band_rows: int = 1) -> Node:
    """Replace `chain` by one RowBands node (placed where its last layer was)."""
    x = chain[0].input(0)
    inputs: list[Value] = [x]
    index = {id(x): 0}
    stages = []
    prev = x
    for node in chain:
        refs = []
        for i, v in enumerate(node.inputs):
            if v is None:
                refs.append(None)
            elif v is prev and i == _chained_index(node, prev):
                refs.append(PREVIOUS)
            else:
                if id(v) not in index:
                    index[id(v)] = len(inputs)
                    inputs.append(v)
                refs.append(index[id(v)])
        stages.append({"op": node.op, "attrs": dict(node.attrs), "inputs": refs,
                       "name": node.name})
        prev = node.outputs[0]
    last = chain[-1]
    fused = g.add_node("RowBands", inputs, attrs={"stages": stages, "band_rows": band_rows},
                       name=f"{chain[0].name}_bands", after=last)
    fused.meta["row_band_nodes"] = [n.name for n in chain]
    g.replace_all_uses(last.outputs[0], fused.outputs[0])
    for node in reversed(chain):
        g.remove_node(node)
    return fused


def _chained_index(node: Node, prev: Value) -> int:
    """Which input of `node` is the chain's data (the first that reads `prev`)."""
    return next(i for i, v in enumerate(node.inputs) if v is prev)


def region_summary(fused: Node, plan) -> dict:
    """One fused region for the report: its layers, windows and MACs."""
    stages, steps, cap = schedule_of(fused)
    windows = [plan.sizes[v.name] for v in fused.outputs[1:]]
    return {"node": fused.name, "layers": list(fused.meta.get("row_band_nodes", [])),
            "band_rows": fused.attrs["band_rows"], "window_rows": cap,
            "window_bytes": int(sum(windows)),
            "intermediate_bytes_unfused": int(sum(st.outputs[0].type.nbytes
                                                  for st in stages[:-1])),
            "calls": sum(1 for s in steps if hasattr(s, "stage")),
            "macs": int(get_op("RowBands").macs(fused)), "extra_macs": 0}


def _quantize_in_place(node: Node, step: int, plan) -> bool:
    """A QuantizeLinear whose input dies at its step may narrow in place (see module doc)."""
    if node.op != "QuantizeLinear" or node.meta.get(NARROWING_IN_PLACE):
        return False
    x, y = node.input(0), node.outputs[0]
    if x is None or x.is_const or x.type.numel != y.type.numel or \
            plan.lifetimes[x.name][1] != step:
        return False
    node.meta[NARROWING_IN_PLACE] = True
    return True


def _lower_peak(g: Graph, step: int, plan, band_rows: int) -> tuple[str, Node] | None:
    """Apply the action that may lower the peak at `step` of `plan` to `g` (a fusion or an
    in-place quantize); None when there is none."""
    peak = g.nodes[step]
    for chain in maximal_chains(g):
        if any(n is peak for n in chain):
            return "fused", fuse_chain(g, chain, band_rows)
    if _quantize_in_place(peak, step, plan):
        return "in-place", peak
    return None


def fuse_row_bands(g: Graph, alignment: int, budget: int,
                   band_rows: int = 1) -> tuple[Graph, BandReport]:
    """Fuse the chains the peak of the plan needs until the arena fits `budget` bytes; each
    step is tried on a copy and kept unless it makes the arena larger. Returns the graph
    (`g` itself when nothing was kept) and the report."""
    plan = plan_memory(g, alignment)
    report = BandReport(budget, plan.arena_bytes)
    fused: list[str] = []
    while plan.arena_bytes > budget:
        step = max(range(len(plan.live_bytes)), key=lambda s: plan.live_bytes[s])
        trial = g.clone()
        action = _lower_peak(trial, step, plan, band_rows)
        if action is None:
            break
        trial_plan = plan_memory(trial, alignment)
        if trial_plan.arena_bytes > plan.arena_bytes:
            break
        g, plan = trial, trial_plan
        kind, node = action
        (fused if kind == "fused" else report.in_place).append(node.name)
    report.arena_after = plan.arena_bytes
    report.regions = [region_summary(n, plan) for n in g.nodes if n.name in fused]
    return g, report
