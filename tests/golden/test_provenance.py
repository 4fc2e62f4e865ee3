"""Provenance in the IR (edgec/ir/graph.py): what per-layer debugging relies on to name
compiled values after the imported model's tensors and to undo layout changes."""

from __future__ import annotations

import numpy as np

from edgec.ir import Graph, TensorType
from edgec.ir.graph import SOURCE, SOURCE_NODES, compose_perm


def graph_with_relu():
    g = Graph("g")
    x = g.add_input("x", TensorType((1, 2, 3, 4)))
    relu = g.add_node("Relu", [x], name="relu")
    g.outputs.append(relu.output)
    g.mark_sources()
    return g, x, relu


def test_mark_sources_names_every_activation_and_node():
    _, x, relu = graph_with_relu()
    assert x.meta[SOURCE] == ("x", None) and relu.output.meta[SOURCE] == ("relu", None)
    assert relu.meta[SOURCE_NODES] == ["relu"]


def test_replacement_through_a_transpose_records_the_permutation():
    """Relu(x) replaced by T_back(Relu(T_fwd(x))): the channels-last Relu output carries
    the original name and the perm that restores the original layout."""
    g, x, relu = graph_with_relu()
    fwd = g.add_node("Transpose", [x], attrs={"perm": [0, 2, 3, 1]}, name="to_nhwc")
    inner = g.add_node("Relu", [fwd.output], name="relu")
    back = g.add_node("Transpose", [inner.output], attrs={"perm": [0, 3, 1, 2]}, name="back")
    g.replace_all_uses(relu.output, back.output)
    assert back.output.meta[SOURCE] == ("relu", None)
    name, perm = inner.output.meta[SOURCE]
    assert name == "relu" and perm == (0, 3, 1, 2)
    data = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    nhwc = np.transpose(data, (0, 2, 3, 1))
    assert np.array_equal(np.transpose(nhwc, perm), data)
    assert SOURCE not in fwd.output.meta  # an inserted transpose is no model tensor
    assert inner.meta[SOURCE_NODES] == ["relu"]  # rebuilt under the same name
    assert SOURCE_NODES not in back.meta  # helpers absorb no node names


def test_fusion_accumulates_source_nodes_and_keeps_existing_sources():
    g = Graph("g")
    x = g.add_input("x", TensorType((1, 4)))
    w = g.const(np.ones((4, 4), np.float32), "w")
    mm = g.add_node("MatMul", [x, w], name="mm")
    act = g.add_node("Relu", [mm.output], name="act")
    g.outputs.append(act.output)
    g.mark_sources()
    fused = g.add_node("MatMul", [x, w], name="mm")  # a pass rebuilding mm ...
    g.replace_all_uses(act.output, fused.output)  # ... with the Relu folded in
    assert fused.meta[SOURCE_NODES] == ["mm", "act"]
    assert fused.output.meta[SOURCE] == ("act", None)
    ident = g.add_node("Identity", [fused.output], name="ident")
    ident.output.meta[SOURCE] = ("alias", None)
    g.replace_all_uses(ident.output, fused.output)  # an existing source is kept
    assert fused.output.meta[SOURCE] == ("act", None)


def test_compose_perm():
    assert compose_perm([0, 2, 3, 1], None) == (0, 2, 3, 1)
    assert compose_perm([0, 2, 3, 1], (0, 3, 1, 2)) is None  # they cancel
    assert compose_perm([1, 0], (1, 0)) is None
