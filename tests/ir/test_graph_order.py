"""Node order bookkeeping (issue #12 item 8): `add_node(before=...)` and `remove_node` are
recorded and settled when `g.nodes` is next read. A random sequence of edits must leave the
same order as plain list operations (the reference), and the work a compile does must grow
linearly with the graph: counted, not timed."""

from __future__ import annotations

import random

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.frontend.onnx import import_model
from edgec.ir import Graph, TensorType
from edgec.ir import graph as graph_module
from edgec.ir import names as names_module


def chain(n: int) -> tuple[Graph, list]:
    g = Graph("chain")
    x = g.add_input("x", TensorType((1, 4)))
    for i in range(n):
        x = g.add_node("Relu", [x], name=f"r{i}").output
    g.outputs = [x]
    return g, list(g.nodes)


@pytest.mark.parametrize("seed", range(30))
def test_random_edits_match_list_semantics(seed):
    """Insert-before, append, remove and read in random interleavings, against a list."""
    rng = random.Random(seed)
    g, ref = chain(6)
    x = g.inputs[0]
    spare = 0
    for _ in range(60):
        action = rng.random()
        if action < 0.45:  # a free-standing node (reads x, unused), before a random node
            anchor = rng.choice(ref) if ref and rng.random() < 0.8 else None
            node = g.add_node("Sigmoid", [x], name=f"s{spare}", before=anchor)
            spare += 1
            if anchor is None:
                ref.append(node)
            else:
                ref.insert(ref.index(anchor), node)
        elif action < 0.75:
            removable = [n for n in ref if not n.output.uses and n.output not in g.outputs]
            if removable:
                node = rng.choice(removable)
                g.remove_node(node)
                ref.remove(node)
        else:
            assert g.nodes == ref
        for node in rng.sample(ref, min(3, len(ref))):
            assert g.has_node(node)
    assert g.nodes == ref
    assert [g.order_index(n) for n in ref] == sorted(g.order_index(n) for n in ref)
    g.verify()


def test_insert_before_a_node_inserted_before_another():
    g, (r0, r1, r2) = chain(3)
    a = g.add_node("Sigmoid", [g.inputs[0]], name="a", before=r1)
    b = g.add_node("Sigmoid", [g.inputs[0]], name="b", before=a)
    c = g.add_node("Sigmoid", [g.inputs[0]], name="c", before=r1)
    g.remove_node(a)
    assert [n.name for n in g.nodes] == ["r0", "b", "c", "r1", "r2"]
    assert not g.has_node(a) and g.has_node(b) and g.has_node(c)


def test_before_a_removed_node_is_refused_like_a_list():
    g, (r0, r1) = chain(2)
    s = g.add_node("Sigmoid", [g.inputs[0]], name="s")
    g.remove_node(s)
    with pytest.raises(ValueError):
        g.add_node("Sigmoid", [g.inputs[0]], name="t", before=s)
    with pytest.raises(ValueError):
        g.remove_node(s)


def test_in_place_edits_of_the_list_are_noticed():
    g, (r0, r1, r2) = chain(3)
    g.nodes.remove(r2)  # outside the Graph methods
    assert not g.has_node(r2)
    g.nodes.append(r2)
    assert g.has_node(r2)
    g.nodes = [r0, r1, r2]
    assert all(g.has_node(n) for n in (r0, r1, r2))


def test_remove_dead_drops_only_what_no_output_needs():
    g, (r0, r1, r2) = chain(3)
    x = g.inputs[0]
    dead = g.add_node("Sigmoid", [r0.output], name="dead")
    dead2 = g.add_node("Sigmoid", [dead.output], name="dead2", before=r1)
    assert g.remove_dead() == 2
    assert [n.name for n in g.nodes] == ["r0", "r1", "r2"]
    assert r0.output.uses == [(r1, 0)] and x.uses == [(r0, 0)]
    assert "dead" not in g.values and "dead2_out0" not in g.values and dead2.inputs == ()
    g.verify()


def test_unique_names_with_a_memo_still_reuse_freed_names():
    g = Graph("names")
    x = g.add_input("x", TensorType((1, 4)))
    nodes = [g.add_node("Relu", [x]) for _ in range(5)]
    assert [n.name for n in nodes] == ["relu", "relu_1", "relu_2", "relu_3", "relu_4"]
    g.remove_node(nodes[2])
    assert g.add_node("Relu", [x]).name == "relu_2"  # the lowest free suffix, as before
    assert g.add_node("Relu", [x]).name == "relu_5"


def _unnamed_chain_model(blocks: int):
    """An ONNX chain of unnamed MatMul -> Add(bias) -> Relu blocks (every node name comes from
    a hint; the passes rewrite each block twice: into a Gemm, then fuse the Relu)."""
    nodes, inits, prev = [], [], "x"
    w = numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")
    b = numpy_helper.from_array(np.full(4, 0.5, np.float32), "b")
    for i in range(blocks):
        nodes += [helper.make_node("MatMul", [prev, "w"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", "b"], [f"a{i}"]),
                  helper.make_node("Relu", [f"a{i}"], [f"r{i}"])]
        prev = f"r{i}"
    graph = helper.make_graph(nodes, "c", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 4])], [helper.make_tensor_value_info(
            prev, TensorProto.FLOAT, [1, 4])], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _count_work(n: int, monkeypatch) -> dict[str, int]:
    """Deterministic counters of two former hot spots over import + the fp32 pipeline + the
    plan: settling the node order, and probing node names for a free suffix."""
    from edgec.compiler import CompileOptions, run_pipeline
    from edgec.passes.memory_plan import plan_memory
    from edgec.targets import get_target

    counts = {"flushes": 0, "name_probes": 0}
    flush = graph_module.Graph._flush

    def counted_flush(self):
        counts["flushes"] += 1
        flush(self)

    def counted_contains(self, name):
        counts["name_probes"] += 1
        return set.__contains__(self, name)

    with monkeypatch.context() as patch:
        patch.setattr(graph_module.Graph, "_flush", counted_flush)
        patch.setattr(names_module.NameSet, "__contains__", counted_contains)
        target = get_target("generic-fp32")
        g = run_pipeline(import_model(_unnamed_chain_model(n)), target,
                         CompileOptions(target=target.name))
        plan_memory(g, target.alignment)
    assert [n.op for n in g.nodes[:2]] == ["Gemm", "Gemm"]  # the rewrites did happen
    return counts


def test_compile_work_grows_linearly_with_graph_length(monkeypatch):
    """Settling the node order happens a fixed number of times, not once per rewrite, and
    naming n unnamed nodes probes O(n) names, not O(n^2)."""
    small, large = _count_work(100, monkeypatch), _count_work(400, monkeypatch)
    assert 0 < large["flushes"] == small["flushes"]
    assert small["name_probes"] > 300
    assert large["name_probes"] <= 4.5 * small["name_probes"]
