"""The static memory planner (passes/memory_plan.py and friends): hand-worked graphs with exact
arena sizes, views and in-place sharing, every offset strategy on random buffers, the exact
search against brute force, real lifetimes of a small conv net, the zoo's acceptance bound,
ASan runs of the generated C, and the `edgec report` command."""

from __future__ import annotations

import itertools
import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import onnx
import pytest
from edgec.passes.memory_liveness import analyse_liveness, value_lifetimes
from edgec.passes.memory_offsets import Buffer, Packing, pack_buffers
from edgec.passes.memory_plan import MemoryPlan, check_no_overlap, plan_memory
from helpers import ZOO_DIR, check_against_ort, compile_model_proto, make_model
from onnx import helper

from edgec.cli import main as cli_main
from edgec.ir import Graph, TensorType

UNIT = 16  # bytes: one alignment unit = 4 floats


def vec_input(g: Graph, name: str, units: int):
    return g.add_input(name, TensorType((1, 4 * units)))


def dense(g: Graph, x, units: int, name: str):
    """MatMul by a constant: an output of `units` x 16 bytes."""
    w = g.const(np.full((x.shape[-1], 4 * units), 0.01, np.float32), name + "_w")
    return g.add_node("MatMul", [x, w], name=name).output


def op(g: Graph, kind: str, inputs, name: str, **attrs):
    return g.add_node(kind, list(inputs), name=name, attrs=attrs or None).output


def planned(g: Graph, **kw) -> MemoryPlan:
    plan = plan_memory(g, UNIT, **kw)
    check_no_overlap(plan)
    return plan


# ------------------------------------------------------------------------------ hand-worked
def test_chain_with_an_in_place_relu():
    """x(4u) -> a = dense(8u) -> b = Relu(a) in place -> c = dense(2u).
    Steps: x+a = 12u, a/b = 8u, b+c = 10u: the arena is 12 units; 16 without in-place."""
    g = Graph("chain")
    a = dense(g, vec_input(g, "x", 4), 8, "a")
    b = op(g, "Relu", [a], "b")
    g.outputs = [dense(g, b, 2, "c")]
    plan = planned(g)
    assert plan.aliases == {"b": "a"} and plan.alias_kinds == {"b": "in-place"}
    assert [n // UNIT for n in plan.live_bytes] == [12, 8, 10]
    assert plan.arena_bytes == plan.arena_lower_bound_bytes == 12 * UNIT
    assert plan.naive_bytes == (4 + 8 + 8 + 2) * UNIT
    plan = planned(g, in_place=False)
    assert plan.aliases == {}
    assert plan.arena_bytes == plan.arena_lower_bound_bytes == 16 * UNIT


def test_diamond():
    """x(2u) -> a(6u), b(1u); c = dense(a)(1u); d = b + c in place. Peak: x + a + b = 9u."""
    g = Graph("diamond")
    x = vec_input(g, "x", 2)
    a = dense(g, x, 6, "a")
    b = dense(g, x, 1, "b")
    c = dense(g, a, 1, "c")
    g.outputs = [op(g, "Add", [b, c], "d")]
    plan = planned(g, schedule=False)
    assert [n // UNIT for n in plan.live_bytes] == [8, 9, 8, 2]
    assert plan.alias_kinds == {"d": "in-place"} and plan.storage_of("d") == "b"
    assert plan.arena_bytes == 9 * UNIT
    plan = planned(g)  # b first frees x earlier: x + b + a = 9u still the peak, at step 1
    assert plan.arena_bytes == plan.arena_lower_bound_bytes == 9 * UNIT


def test_residual_block():
    """x(4u) -> a = dense -> b = Relu(a) in place -> c = dense -> d = c + x in place ->
    y = Relu(d) in place. Steps: 8, 8, 12 (x + b + c), 8, 4 units."""
    g = Graph("residual")
    x = vec_input(g, "x", 4)
    b = op(g, "Relu", [dense(g, x, 4, "a")], "b")
    d = op(g, "Add", [dense(g, b, 4, "c"), x], "d")
    g.outputs = [op(g, "Relu", [d], "y")]
    plan = planned(g)
    assert [n // UNIT for n in plan.live_bytes] == [8, 8, 12, 8, 4]
    assert plan.alias_kinds == {"b": "in-place", "d": "in-place", "y": "in-place"}
    assert plan.storage_of("y") == "c"
    assert plan.arena_bytes == plan.arena_lower_bound_bytes == 12 * UNIT


def test_concat_of_branches():
    """x(2u) -> a(2u), b(2u) -> c = Concat(a, b)(4u) -> y = dense(1u). Peak a + b + c = 8u."""
    g = Graph("concat")
    x = vec_input(g, "x", 2)
    c = op(g, "Concat", [dense(g, x, 2, "a"), dense(g, x, 2, "b")], "c", axis=1)
    g.outputs = [dense(g, c, 1, "y")]
    plan = planned(g)
    assert [n // UNIT for n in plan.live_bytes] == [4, 6, 8, 5]
    assert plan.arena_bytes == plan.arena_lower_bound_bytes == 8 * UNIT


def test_in_place_chain_reuses_the_graph_input():
    """Relu -> Sigmoid -> Neg from a graph input: one buffer (the input's) for everything."""
    g = Graph("inplace")
    x = vec_input(g, "x", 3)
    g.outputs = [op(g, "Neg", [op(g, "Sigmoid", [op(g, "Relu", [x], "r")], "s")], "n")]
    plan = planned(g)
    assert {plan.storage_of(n) for n in plan.offsets} == {"x"}
    assert plan.arena_bytes == plan.arena_lower_bound_bytes == 3 * UNIT


def test_no_in_place_when_the_input_lives_on_or_is_an_output():
    """a is read again after Sigmoid, and r is a graph output: neither may be overwritten."""
    g = Graph("keep")
    x = vec_input(g, "x", 2)
    a = dense(g, x, 2, "a")
    s = op(g, "Sigmoid", [a], "s")
    r = op(g, "Add", [a, s], "r")  # in place into a (dies here)
    t = op(g, "Tanh", [r], "t")  # r is an output: no
    g.outputs = [r, t]
    plan = planned(g)
    assert plan.alias_kinds == {"r": "in-place"} and plan.storage_of("r") == "a"
    assert plan.storage_of("s") == "s" and plan.storage_of("t") == "t"


def test_views_alias_their_input_and_keep_it_alive():
    """x -> a = dense -> v = Reshape(a) -> w = Flatten(v) -> y = Relu(a): a may not be
    overwritten by y while its view w is read later."""
    g = Graph("views")
    x = vec_input(g, "x", 2)
    a = dense(g, x, 2, "a")
    v = op(g, "Reshape", [a], "v", shape=[2, 4])
    w = op(g, "Flatten", [v], "w", axis=0)
    y = op(g, "Relu", [a], "y")
    z = op(g, "Add", [w, y], "z")
    g.outputs = [z]
    plan = planned(g, schedule=False)
    assert plan.aliases["v"] == "a" and plan.aliases["w"] == "v"
    assert plan.alias_kinds["v"] == plan.alias_kinds["w"] == "view"
    assert plan.storage_of("w") == "a" and plan.storage_of("y") == "y"
    assert plan.alias_kinds["z"] == "in-place"


def test_overlap_checker_catches_broken_plans():
    g = Graph("chk")
    a = dense(g, vec_input(g, "x", 2), 2, "a")
    g.outputs = [dense(g, op(g, "Relu", [a], "b"), 1, "c")]
    plan = planned(g, in_place=False)
    bad = MemoryPlan(**{**plan.__dict__, "offsets": {**plan.offsets, "b": plan.offsets["a"]}})
    with pytest.raises(AssertionError, match="overlap"):
        check_no_overlap(bad)
    # sharing a buffer while the first content is still read is caught too
    bad = MemoryPlan(**{**plan.__dict__, "aliases": {"b": "a", "x": "a"},
                        "alias_kinds": {"b": "in-place", "x": "in-place"},
                        "offsets": {k: plan.offsets["a"] for k in plan.offsets if k != "c"}
                        | {"c": plan.offsets["c"]}})
    with pytest.raises(AssertionError):
        check_no_overlap(bad)
    with pytest.raises(AssertionError, match="aligned"):
        check_no_overlap(MemoryPlan(**{**plan.__dict__, "offsets": {**plan.offsets, "c": 8}}))


# ------------------------------------------------------------------------------ offsets
def test_greedy_by_size_matches_the_docstring_picture():
    buffers = [Buffer("A", 2, 0, 1), Buffer("B", 3, 1, 3), Buffer("C", 2, 3, 4),
               Buffer("D", 1, 0, 4)]
    result = pack_buffers(buffers, ("greedy-by-size",))
    assert {b.name: b.offset for b in buffers} == {"A": 3, "B": 0, "C": 3, "D": 5}
    assert result.arena == result.lower_bound == 6


def test_search_beats_greedy_by_size_where_it_is_not_optimal():
    def case():
        return [Buffer("A", 64, 0, 1), Buffer("B", 48, 4, 5), Buffer("C", 32, 3, 4),
                Buffer("D", 48, 1, 4)]
    assert pack_buffers(case(), ("greedy-by-size",)).arena == 144
    for strategy in ("exact", "hill-climbing", "random-restarts"):
        buffers = case()
        result = pack_buffers(buffers, (strategy,))
        assert (result.arena, result.strategy) == (128, strategy)
        check_no_overlap(buffers)
    result = pack_buffers(case())
    assert result.arena == result.lower_bound == 128


def random_buffers(rng: random.Random, n: int) -> list[Buffer]:
    out = []
    for i in range(n):
        first = rng.randint(0, 8)
        out.append(Buffer(f"t{i}", UNIT * rng.randint(1, 6), first, first + rng.randint(0, 4)))
    return out


STRATEGIES = ["greedy-by-size", "greedy-by-breadth", "greedy-by-conflict", "greedy-by-lifetime",
              "greedy-by-size+best-fit", "greedy-by-breadth+best-fit", "exact",
              "random-restarts", "hill-climbing"]


@pytest.mark.parametrize("seed", range(40))
def test_every_strategy_packs_random_buffers_safely(seed):
    rng = random.Random(seed)
    n = rng.randint(3, 14)
    greedy = pack_buffers(random_buffers(random.Random(seed), n), ("greedy-by-size",)).arena
    for strategy in STRATEGIES:
        buffers = random_buffers(random.Random(seed), n)
        result = pack_buffers(buffers, (strategy,))
        check_no_overlap(buffers)
        assert all(b.offset % UNIT == 0 for b in buffers)
        assert result.arena == max(b.offset + b.size for b in buffers)
        assert result.lower_bound <= result.arena
    best = pack_buffers(random_buffers(random.Random(seed), n))
    assert best.lower_bound <= best.arena <= greedy


@pytest.mark.parametrize("seed", range(25))
def test_exact_search_equals_brute_force(seed):
    rng = random.Random(1000 + seed)
    buffers = random_buffers(rng, rng.randint(3, 6))
    packing = Packing(buffers)
    optimum = min(packing.place(list(order))[1]
                  for order in itertools.permutations(range(len(buffers))))
    assert pack_buffers(buffers, ("exact",)).arena == optimum


# ------------------------------------------------------------------------------ real models
def conv_net() -> tuple[onnx.ModelProto, dict]:
    """Conv -> Relu -> Conv + residual -> Relu -> Concat with a 1x1 branch -> pool -> Gemm."""
    rng = np.random.default_rng(0)
    w = lambda *s: (rng.standard_normal(s) * 0.3).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["s"]),
        helper.make_node("Relu", ["s"], ["r2"]),
        helper.make_node("Conv", ["r1", "w3"], ["side"]),
        helper.make_node("Concat", ["r2", "side"], ["cat"], axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["y"], transB=1),
    ]
    inits = {"w1": w(8, 3, 3, 3), "b1": w(8), "w2": w(8, 8, 3, 3), "b2": w(8),
             "w3": w(4, 8, 1, 1), "wf": w(5, 12), "bf": w(5)}
    model = make_model(nodes, {"x": ("float32", (1, 3, 6, 6))}, {"y": ("float32", (1, 5))},
                       inits)
    return model, {"x": rng.standard_normal((1, 3, 6, 6)).astype(np.float32)}


def test_conv_net_real_lifetimes_and_plan():
    model, _ = conv_net()
    result = compile_model_proto(model)
    g, plan = result.graph, result.plan
    check_no_overlap(plan)
    # lifetimes, recomputed independently from the final node order
    step_of = {n.name: i for i, n in enumerate(g.nodes)}
    for v in [*g.inputs, *(o for n in g.nodes for o in n.outputs)]:
        first = 0 if v.producer is None else step_of[v.producer.name]
        reads = [step_of[n.name] for n, _ in v.uses]
        last = len(g.nodes) - 1 if v in g.outputs else max([first, *reads])
        assert plan.lifetimes[v.name] == (first, last), v.name
    assert value_lifetimes(g) == plan.lifetimes
    live = analyse_liveness(g, plan.alignment)
    assert plan.live_bytes == live.live_bytes
    assert plan.arena_lower_bound_bytes == max(plan.live_bytes)
    assert plan.arena_bytes <= 1.01 * plan.arena_lower_bound_bytes
    assert plan.arena_bytes < plan.naive_bytes
    greedy = plan_memory(g, plan.alignment, schedule=False, strategies=("greedy-by-size",))
    assert plan.arena_bytes <= greedy.arena_bytes
    report = result.report
    assert report["arena_bytes"] == plan.arena_bytes
    assert report["arena_lower_bound_bytes"] == plan.arena_lower_bound_bytes
    assert report["memory_strategy"] == plan.strategy
    for t in report["tensors"]:
        assert t["offset"] == plan.offsets[t["name"]]


ZOO_LIMITS = {"mobilenetv2": 9_960_064, "dscnn": 72_224, "resnet8": None,
              "mobilenetv2_trained": None}


@pytest.mark.parametrize("name", sorted(ZOO_LIMITS))
def test_zoo_arena_within_one_percent_of_the_lower_bound(name):
    from edgec.compiler import CompileOptions, run_pipeline
    from edgec.frontend.onnx import load_onnx
    from edgec.targets import get_target

    path = ZOO_DIR / f"{name}.onnx"
    if not path.exists():
        pytest.skip(f"{path.name} is not built (tools/make_models.py)")
    for target in map(get_target, ("generic-fp32", "x86_64-fp32")):
        g = run_pipeline(load_onnx(path), target, CompileOptions(target=target.name))
        plan = plan_memory(g, target.alignment)
        check_no_overlap(plan)
        assert plan.arena_bytes <= 1.01 * plan.arena_lower_bound_bytes
        if ZOO_LIMITS[name]:
            assert plan.arena_bytes < ZOO_LIMITS[name]


@pytest.mark.parametrize("name,tflm_bytes", [("resnet8", None), ("dscnn", 24_384)])
def test_int8_zoo_plans(name, tflm_bytes):
    """int8 graphs keep their residual Adds as kernels: the planner runs them in place."""
    from edgec.compiler import CompileOptions, compile_model

    plan = compile_model(ZOO_DIR / f"{name}.onnx", CompileOptions(target="generic-int8")).plan
    check_no_overlap(plan)
    assert plan.arena_bytes <= 1.01 * plan.arena_lower_bound_bytes
    if tflm_bytes:
        assert plan.arena_bytes < tflm_bytes
    else:
        assert "in-place" in plan.alias_kinds.values()


# ------------------------------------------------------------------------------ generated C
def _model(nodes, inputs, outputs, inits=None):
    return make_model(nodes, {k: ("float32", s) for k, s in inputs.items()},
                      {k: ("float32", s) for k, s in outputs.items()}, inits)


def c_cases():
    """(name, model, aliases the plan must make); elementwise joins that no pass fuses."""
    rng = np.random.default_rng(5)
    w = lambda *s: (rng.standard_normal(s) * 0.5).astype(np.float32)
    mk = helper.make_node
    yield "in-place-chain", _model(
        [mk("Relu", ["x"], ["a"]), mk("Sigmoid", ["a"], ["b"]), mk("Add", ["a", "b"], ["c"]),
         mk("Neg", ["c"], ["y"])], {"x": (3, 8)}, {"y": (3, 8)}), {"a", "c", "y"}
    yield "branches", _model(
        [mk("MatMul", ["x", "w1"], ["a1"]), mk("MatMul", ["x", "w2"], ["b1"]),
         mk("MatMul", ["a1", "w3"], ["a2"]), mk("MatMul", ["b1", "w4"], ["b2"]),
         mk("Max", ["a2", "b2"], ["y"]), mk("Abs", ["y"], ["z"])],
        {"x": (2, 4)}, {"y": (2, 4), "z": (2, 4)},
        {"w1": w(4, 16), "w2": w(4, 16), "w3": w(16, 4), "w4": w(16, 4)}), {"y"}
    yield "residual-concat-views", _model(
        [mk("MatMul", ["x", "w1"], ["a"]), mk("Abs", ["a"], ["r"]),
         mk("MatMul", ["r", "w2"], ["c"]), mk("Sub", ["c", "x"], ["s"]),
         mk("Concat", ["s", "r"], ["cat"], axis=1), mk("Reshape", ["cat", "shape"], ["v"]),
         mk("Sin", ["v"], ["y"]), mk("Flatten", ["x"], ["xv"], axis=0)],
        {"x": (2, 8)}, {"y": (4, 8), "xv": (1, 16), "s": (2, 8)},
        {"w1": w(8, 8), "w2": w(8, 8), "shape": np.array([4, 8], np.int64)}), \
        {"r", "s", "v", "y", "xv"}
    yield "outputs-are-views-of-inputs", _model(
        [mk("Reshape", ["x", "shape"], ["y"]), mk("Identity", ["x"], ["z"]),
         mk("Relu", ["x"], ["r"])], {"x": (2, 6)}, {"y": (12,), "z": (2, 6), "r": (2, 6)},
        {"shape": np.array([12], np.int64)}), {"y", "z"}


@pytest.mark.parametrize("case", [c[0] for c in c_cases()])
def test_generated_c_under_asan(case):
    model, shared = {c[0]: c[1:] for c in c_cases()}[case]
    feeds = {i.name: np.random.default_rng(1).standard_normal(
        [d.dim_value for d in i.type.tensor_type.shape.dim]).astype(np.float32)
        for i in model.graph.input}
    plan = compile_model_proto(model).plan
    check_no_overlap(plan)
    assert set(plan.aliases) >= shared
    assert plan.arena_bytes <= plan.arena_lower_bound_bytes * 1.01
    check_against_ort(model, feeds, sanitize=True,
                      cc="clang" if case in ("branches", "outputs-are-views-of-inputs") else None)


def test_conv_net_matches_onnxruntime_under_asan():
    model, feeds = conv_net()
    check_against_ort(model, feeds, sanitize=True, cc="clang")


# ------------------------------------------------------------------------------ edgec report
@pytest.fixture(scope="module")
def conv_net_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "convnet.onnx"
    onnx.save(conv_net()[0], path)
    return path


def test_report_prints_table_and_ascii_plan_and_writes_svg(conv_net_file, tmp_path, capsys):
    svg = tmp_path / "plan.svg"
    assert cli_main(["report", str(conv_net_file), "-t", "x86_64-fp32", "--plot", str(svg)]) == 0
    out = capsys.readouterr().out
    assert "step" in out and "MACs" in out and "weights B" in out and "live B" in out
    assert "memory plan: arena" in out and "lower bound" in out
    assert "buffers (glyph, offset, bytes, steps, tensors" in out
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    texts = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    assert "lower bound" in texts and "arena" in texts
    assert sum(1 for r in root.iter() if r.tag.endswith("rect")) >= 4


def test_report_json(conv_net_file, capsys):
    assert cli_main(["report", str(conv_net_file), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["arena_bytes"] >= data["arena_lower_bound_bytes"] > 0
    assert [r["step"] for r in data["layers"]] == list(range(data["kernels"]))
    assert max(r["live_bytes"] for r in data["layers"]) == data["arena_lower_bound_bytes"]
    assert {t for b in data["buffers"] for t in b["tensors"]} == \
        {t["name"] for t in data["tensors"]}


def test_report_plot_errors(conv_net_file, tmp_path, capsys):
    assert cli_main(["report", str(conv_net_file), "--plot", str(tmp_path / "p.pdf")]) == 2
    assert "svg or .png" in capsys.readouterr().err
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert cli_main(["report", str(conv_net_file), "--plot", str(tmp_path / "p.png")]) == 2
        assert "matplotlib" in capsys.readouterr().err
    else:
        assert cli_main(["report", str(conv_net_file), "--plot", str(tmp_path / "p.png")]) == 0
        assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
