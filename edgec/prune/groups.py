"""Dependency groups for structured channel pruning, built on the imported fp32 IR.

Why the imported IR (before any pass): every IR node is then one ONNX node and every IR value
keeps its ONNX tensor name, so the decisions map one to one onto the ONNX file that
edgec.prune.apply rewrites; BatchNorms are still there (their gammas rank channels for the
`bn` criterion) and Flatten/Reshape still sit in front of the Gemm they feed.

Algorithm (DepGraph's idea, on channel indices instead of autograd):
1. Walk the nodes in order. Each op's prune facet (`OpDef.prune_flow`, vocabulary in
   edgec/ops/prune_facet.py) names the channel axis of its outputs and the channel pairs that
   must go together (residual operands, depthwise groups, concat offsets, feature blocks).
2. Every channel of every tracked value is a vertex; coupled pairs are edges. Connected
   components are the units of pruning: removing one removes all of its channels.
3. A node without a facet, the graph's inputs and outputs, and inputs a facet does not account
   for block every component they touch; the first blocker is reported by name.
4. Components touching the same set of values form a dependency group (a conv's output
   channels, or a residual chain's). A group is prunable when it is not blocked and has at
   least one producer (weights with role "filter" owning its channels).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgec.ir import Graph, Node
from edgec.ops import get_op
from edgec.ops.prune_facet import PruneFlow, Ref


@dataclass
class Group:
    """One dependency group: `units[u]` maps value name -> channel indices of unit u."""

    gid: int
    values: list[str]
    units: list[dict[str, np.ndarray]]
    producers: list[str]
    blocked_by: str | None = None

    @property
    def channels(self) -> int:
        """Channels of the group's first producer output (what `round_to` counts)."""
        return len(self.units)

    @property
    def prunable(self) -> bool:
        """True when channels of this group may be removed."""
        return self.blocked_by is None and bool(self.producers)


@dataclass
class Analysis:
    """Result of `build_groups`: channel axes, flows per node, groups."""

    graph: Graph
    axes: dict[str, int]
    sizes: dict[str, int]
    flows: dict[str, PruneFlow | None]
    groups: list[Group] = field(default_factory=list)
    blockers: dict[str, str] = field(default_factory=dict)  # node name -> why

    def prunable(self) -> list[Group]:
        """Groups whose channels may be removed."""
        return [grp for grp in self.groups if grp.prunable]


def ref_value(node: Node, ref: Ref):
    """The IR value a facet ref names."""
    kind, i = ref
    return node.inputs[i] if kind == "in" else node.outputs[i]


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component labels (smallest vertex id) of n vertices with edges a-b."""
    labels = np.arange(n, dtype=np.int64)
    if len(a) == 0:
        return labels
    while True:
        m = np.minimum(labels[a], labels[b])
        new = labels.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        new = new[new]  # pointer jumping
        if np.array_equal(new, labels):
            return labels
        labels = new


def build_groups(g: Graph) -> Analysis:
    """Dependency groups of an imported (unfused, NCHW) fp32 graph (module docstring)."""
    axes: dict[str, int] = {}
    sizes: dict[str, int] = {}
    base: dict[str, int] = {}
    edges_a: list[np.ndarray] = []
    edges_b: list[np.ndarray] = []
    blocks: list[tuple[np.ndarray, str]] = []
    flows: dict[str, PruneFlow | None] = {}
    blockers: dict[str, str] = {}
    total = 0

    def track(v, axis) -> None:
        nonlocal total
        if v is None or v.is_const or axis is None or not v.shape or v.name in base:
            return
        axes[v.name] = axis
        sizes[v.name] = int(v.shape[axis])
        base[v.name] = total
        total += sizes[v.name]

    def ids(name: str, idx=None) -> np.ndarray:
        start = base[name]
        return start + (np.arange(sizes[name]) if idx is None else np.asarray(idx, np.int64))

    def block(name: str, why: str) -> None:
        if name in base:
            blocks.append((ids(name), why))

    for v in g.inputs:
        track(v, 1 if len(v.shape) >= 2 else 0)
        block(v.name, f"graph input '{v.name}'")
    for node in g.nodes:
        in_axes = [axes.get(v.name) if v is not None and not v.is_const else None
                   for v in node.inputs]
        desc = f"{node.op} node '{node.name}'"
        try:
            flow = get_op(node.op).prune_flow(node, in_axes)
        except Exception as e:  # a facet that cannot read this node blocks it, named
            flow, why = None, f"{desc} ({type(e).__name__}: {e})"
        else:
            why = desc
        flows[node.name] = flow
        if flow is None:
            blockers[node.name] = why
            for v in node.inputs:
                if v is not None and not v.is_const:
                    block(v.name, why)
            for v in node.outputs:
                track(v, 1 if len(v.shape) >= 2 else (0 if v.shape else None))
                block(v.name, why)
            continue
        for v, axis in zip(node.outputs, flow.out_axes):
            track(v, axis)
        covered = set(flow.free_inputs)
        for ra, ia, rb, ib in flow.couplings:
            va, vb = ref_value(node, ra), ref_value(node, rb)
            for r in (ra, rb):
                if r[0] == "in":
                    covered.add(r[1])
            if va.name not in base or vb.name not in base:
                continue
            edges_a.append(ids(va.name, ia))
            edges_b.append(ids(vb.name, ib))
        covered |= {p.ref[1] for p in flow.params if p.ref[0] == "in"}
        for i, v in enumerate(node.inputs):
            if v is not None and not v.is_const and i not in covered:
                blockers.setdefault(node.name, f"{desc} (input {i} '{v.name}')")
                block(v.name, f"{desc} (its input '{v.name}')")
    for v in g.outputs:
        block(v.name, f"graph output '{v.name}'")

    a = np.concatenate(edges_a) if edges_a else np.zeros(0, np.int64)
    b = np.concatenate(edges_b) if edges_b else np.zeros(0, np.int64)
    labels = _components(total, a, b)
    reason: dict[int, str] = {}
    for idx, why in blocks:
        for lab in np.unique(labels[idx]).tolist():
            reason.setdefault(lab, why)
    owner = np.empty(total, dtype=object)
    for name, start in base.items():
        owner[start:start + sizes[name]] = name
    order = np.argsort(labels, kind="stable")
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    by_key: dict[tuple[str, ...], list[np.ndarray]] = {}
    for members in np.split(order, cuts):
        key = tuple(sorted(set(owner[members].tolist())))
        by_key.setdefault(key, []).append(members)
    producers_of = _producers(g, flows)
    analysis = Analysis(g, axes, sizes, flows, blockers=blockers)
    for key, comps in by_key.items():
        units = []
        for members in comps:
            unit: dict[str, np.ndarray] = {}
            for name in key:
                start = base[name]
                sel = members[(members >= start) & (members < start + sizes[name])]
                unit[name] = np.sort(sel - start)
            units.append(unit)
        why = next((reason[int(labels[m[0]])] for m in comps if int(labels[m[0]]) in reason),
                   None)
        prods = sorted({p for name in key for p in producers_of.get(name, [])})
        analysis.groups.append(Group(len(analysis.groups), list(key), units, prods, why))
    return analysis


def _producers(g: Graph, flows: dict[str, PruneFlow | None]) -> dict[str, list[str]]:
    """value name -> nodes whose filter weights own its channels."""
    out: dict[str, list[str]] = {}
    for node in g.nodes:
        flow = flows.get(node.name)
        if flow is None:
            continue
        for p in flow.params:
            if p.role == "filter":
                out.setdefault(ref_value(node, p.ref).name, []).append(node.name)
    return out


def keep_masks(analysis: Analysis, removed: dict[int, list[int]]) -> dict[str, np.ndarray]:
    """Per tracked value, a boolean mask of the channels kept when the given units (group id
    -> unit indices) are removed."""
    masks = {name: np.ones(n, bool) for name, n in analysis.sizes.items()}
    for gid, unit_ids in removed.items():
        grp = analysis.groups[gid]
        for u in unit_ids:
            for name, idx in grp.units[u].items():
                masks[name][idx] = False
    return masks


def describe_blockers(analysis: Analysis) -> list[str]:
    """One line per blocked group with producers: which node keeps it from being pruned."""
    return [f"group {grp.gid} ({', '.join(grp.producers)}): blocked by {grp.blocked_by}"
            for grp in analysis.groups if grp.producers and grp.blocked_by]
