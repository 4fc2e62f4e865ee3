"""IR graph: self-maintaining use lists, removal rules, verify(), deterministic printing."""

import numpy as np
import pytest

import edgec.ops  # noqa: F401  (installs the op set the IR checks nodes against)
from edgec.ir import DType, Graph, IRError, TensorType, print_graph


def small_graph():
    g = Graph("g")
    x = g.add_input("x", TensorType((1, 4)))
    w = g.const(np.ones((4, 4), np.float32), "w")
    mm = g.add_node("MatMul", [x, w], name="mm")
    r = g.add_node("Relu", [mm.output], name="relu")
    g.outputs.append(r.output)
    return g, x, w, mm, r


def test_uses_follow_input_assignment():
    g, x, w, mm, r = small_graph()
    assert mm.output.uses == [(r, 0)]
    assert x.uses == [(mm, 0)]
    r.set_input(0, x)
    assert mm.output.uses == []
    assert (r, 0) in x.uses
    r.inputs = [mm.output]
    assert x.uses == [(mm, 0)]
    g.verify()


def test_replace_all_uses_includes_graph_outputs():
    g, x, w, mm, r = small_graph()
    s = g.add_node("Sigmoid", [mm.output], name="sig")
    g.replace_all_uses(r.output, s.output)
    assert g.outputs == [s.output]
    g.remove_dead()
    assert [n.name for n in g.nodes] == ["mm", "sig"]
    g.verify()


def test_remove_node_refuses_when_output_is_used():
    g, x, w, mm, r = small_graph()
    with pytest.raises(IRError, match="still used"):
        g.remove_node(mm)


def test_verify_detects_stale_use_list_and_order():
    g, x, w, mm, r = small_graph()
    mm.output.uses.append((r, 5))
    with pytest.raises(IRError, match="stale"):
        g.verify()
    g2, *_ = small_graph()
    g2.nodes.reverse()
    with pytest.raises(IRError, match="before definition"):
        g2.verify()
    g2.toposort()
    g2.verify()


def test_verify_checks_inferred_types():
    g, x, w, mm, r = small_graph()
    r.output.type = TensorType((1, 5))
    with pytest.raises(IRError, match="infers"):
        g.verify()


def test_unknown_attribute_is_refused():
    g, x, *_ = small_graph()
    from edgec.errors import UnsupportedError
    with pytest.raises(UnsupportedError, match="attribute 'bogus'"):
        g.add_node("Relu", [x], attrs={"bogus": 1})


def test_printer_is_deterministic_and_hashes_constants():
    g1, *_ = small_graph()
    g2, *_ = small_graph()
    t1, t2 = print_graph(g1), print_graph(g2)
    assert t1 == t2
    assert "MatMul(%x, %w)" in t1 and "const %w: float32[4x4] #" in t1
    g2.values["w"].data[0, 0] = 2.0
    assert print_graph(g2) != t1


def test_unique_names_and_clone_independence():
    g, x, w, mm, r = small_graph()
    v = g.add_value("x", TensorType((1,), DType.INT64))
    assert v.name == "x_1"
    c = g.clone()
    c.nodes[1].attrs["extra"] = 1
    assert "extra" not in r.attrs
