"""Dependency groups and the pruned ONNX model, one small model per group kind.

Oracle: onnxruntime. Zeroing, in the *original* model, the consumer weights that read the
channels pruning removes makes those channels irrelevant; the pruned model must then compute
the same outputs as that masked original (both run by onnxruntime). The pruned model must also
pass onnx.checker, be smaller, and agree with edgec's reference interpreter run on it.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from edgec.frontend.onnx import import_model
from edgec.interp import run_graph
from edgec.prune.apply import prune_model
from edgec.prune.groups import build_groups, describe_blockers, keep_masks, ref_value
from edgec.prune.select import select, unit_scores
from tests.helpers import make_model, ort_run

RNG = np.random.default_rng(7)
F32 = np.float32


def w(*shape):
    """Seeded weights."""
    return (RNG.standard_normal(shape) * 0.3).astype(F32)


def conv(x, y, wname, bname=None, **attrs):
    ins = [x, wname] + ([bname] if bname else [])
    return helper.make_node("Conv", ins, [y], name=y, **attrs)


def masked_original(model: onnx.ModelProto, analysis, masks) -> onnx.ModelProto:
    """The original with consumer weights of removed channels zeroed (the oracle)."""
    out = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {t.name: t for t in out.graph.initializer}
    for node in analysis.graph.nodes:
        flow = analysis.flows.get(node.name)
        if flow is None:
            continue
        for p in flow.params:
            v = ref_value(node, p.ref)
            if p.role != "consumer" or v.name not in masks or masks[v.name].all():
                continue
            t = inits[node.inputs[p.input].name]
            data = numpy_helper.to_array(t).copy()
            index = p.index if p.index is not None else np.arange(data.shape[p.axis])
            drop = np.flatnonzero(~masks[v.name][index])
            sl = [slice(None)] * data.ndim
            sl[p.axis] = drop
            data[tuple(sl)] = 0
            t.CopyFrom(numpy_helper.from_array(data, t.name))
    return out


def prune_and_check(model: onnx.ModelProto, ratio: float = 0.5, criterion: str = "l2"):
    """Prune every prunable group by `ratio`; check against the oracle; return the analysis,
    masks and the pruned model."""
    onnx.checker.check_model(model)
    g = import_model(model)
    analysis = build_groups(g)
    scores = {grp.gid: unit_scores(analysis, grp, criterion) for grp in analysis.prunable()}
    masks = keep_masks(analysis, select(analysis, scores, ratio))
    pruned = prune_model(model, analysis, masks)
    onnx.checker.check_model(pruned)
    size = lambda m: sum(int(np.prod(t.dims)) for t in m.graph.initializer)  # noqa: E731
    assert size(pruned) < size(model)
    feeds = {v.name: RNG.standard_normal(v.shape).astype(F32) for v in g.inputs}
    want = ort_run(masked_original(model, analysis, masks), feeds)
    got = ort_run(pruned, feeds)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-4)
    ref = run_graph(import_model(pruned), feeds)
    for name in got:
        np.testing.assert_allclose(ref[name], got[name], rtol=1e-4, atol=1e-4)
    return analysis, masks, pruned


def group_of(analysis, producer: str):
    return next(grp for grp in analysis.groups if producer in grp.producers)


def inits(model):
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def head(x, c, hw, extra=()):
    """GlobalAveragePool -> Flatten -> Gemm to 3 outputs."""
    return [helper.make_node("GlobalAveragePool", [x], ["gap"], name="gap"),
            helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
            helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["out"], name="fc", transB=1),
            *extra], {"fc_w": w(3, c), "fc_b": w(3)}


def test_residual_add_couples_both_operands():
    nodes = [conv("x", "c1", "w1", "b1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="r1"),
             conv("r1", "c2", "w2", "b2", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c2", "r1"], ["sum"], name="add"),
             helper.make_node("Relu", ["sum"], ["r2"], name="r2"),
             conv("r2", "c3", "w3", "b3")]
    tail, params = head("c3", 4, 1)
    model = make_model(nodes + tail, {"x": (F32, [1, 3, 6, 6])}, {"out": (F32, [1, 3])},
                       {"w1": w(8, 3, 3, 3), "b1": w(8), "w2": w(8, 8, 3, 3), "b2": w(8),
                        "w3": w(4, 8, 1, 1), "b3": w(4), **params})
    analysis, masks, pruned = prune_and_check(model)
    grp = group_of(analysis, "c2")
    assert grp.producers == ["c1", "c2"] and grp.prunable
    assert masks["c2"].sum() == masks["r1"].sum() == 4
    assert (masks["c2"] == masks["r1"]).all()
    shapes = {n: a.shape for n, a in inits(pruned).items()}
    assert shapes["w2__pruned"] == (4, 4, 3, 3) and shapes["w3__pruned"][1] == 4


def test_depthwise_bn_prelu_follow_the_conv():
    nodes = [conv("x", "c1", "w1", "b1"),
             helper.make_node("BatchNormalization", ["c1", "g", "beta", "mu", "var"], ["bn"],
                              name="bn"),
             helper.make_node("PRelu", ["bn", "slope"], ["p"], name="prelu"),
             conv("p", "dw", "wd", "bd", group=8, pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["dw"], ["mp"], name="mp", kernel_shape=[2, 2],
                              strides=[2, 2]),
             helper.make_node("AveragePool", ["mp"], ["ap"], name="ap", kernel_shape=[1, 1]),
             conv("ap", "c3", "w3")]
    tail, params = head("c3", 4, 1)
    model = make_model(nodes + tail, {"x": (F32, [1, 3, 6, 6])}, {"out": (F32, [1, 3])},
                       {"w1": w(8, 3, 1, 1), "b1": w(8), "g": np.linspace(0.1, 2, 8).astype(F32),
                        "beta": w(8), "mu": w(8), "var": np.abs(w(8)) + 0.5,
                        "slope": w(8, 1, 1), "wd": w(8, 1, 3, 3), "bd": w(8),
                        "w3": w(4, 8, 1, 1), **params})
    analysis, masks, pruned = prune_and_check(model, criterion="bn")
    grp = group_of(analysis, "dw")
    assert grp.producers == ["c1", "dw"]
    # the bn criterion keeps the four largest gammas
    assert np.flatnonzero(masks["bn"]).tolist() == [4, 5, 6, 7]
    dw = next(n for n in pruned.graph.node if n.output[0] == "dw")
    assert helper.get_attribute_value(next(a for a in dw.attribute if a.name == "group")) == 4
    assert inits(pruned)["slope__pruned"].shape == (4, 1, 1)


def test_grouped_conv_prunes_whole_groups():
    nodes = [conv("x", "c1", "w1"), conv("c1", "gc", "wg", "bg", group=4),
             helper.make_node("Relu", ["gc"], ["r"], name="relu"), conv("r", "c3", "w3")]
    tail, params = head("c3", 4, 1)
    model = make_model(nodes + tail, {"x": (F32, [1, 3, 5, 5])}, {"out": (F32, [1, 3])},
                       {"w1": w(8, 3, 1, 1), "wg": w(12, 2, 1, 1), "bg": w(12),
                        "w3": w(4, 12, 1, 1), **params})
    analysis, masks, pruned = prune_and_check(model)
    grp = group_of(analysis, "gc")
    assert len(grp.units) == 4 and grp.producers == ["c1", "gc"]
    assert {len(u["c1"]) for u in grp.units} == {2} and {len(u["gc"]) for u in grp.units} == {3}
    assert masks["c1"].sum() == 4 and masks["gc"].sum() == 6


def test_concat_offsets_and_channel_split_slice():
    nodes = [conv("x", "a", "wa"), conv("x", "b", "wb"),
             helper.make_node("Concat", ["a", "b"], ["cat"], name="cat", axis=1),
             helper.make_node("Split", ["cat", "split"], ["s1", "s2"], name="split", axis=1),
             helper.make_node("Slice", ["s2", "st", "en", "ax"], ["sl"], name="slice"),
             conv("s1", "o1", "w1"), conv("sl", "o2", "w2"),
             helper.make_node("Add", ["o1", "o2"], ["o"], name="add")]
    tail, params = head("o", 4, 1)
    model = make_model(nodes + tail, {"x": (F32, [1, 3, 4, 4])}, {"out": (F32, [1, 3])},
                       {"wa": w(6, 3, 1, 1), "wb": w(10, 3, 1, 1),
                        "split": np.array([8, 8], np.int64), "st": np.array([1], np.int64),
                        "en": np.array([7], np.int64), "ax": np.array([1], np.int64),
                        "w1": w(4, 8, 1, 1), "w2": w(4, 6, 1, 1), **params})
    analysis, masks, pruned = prune_and_check(model, ratio=0.4)
    ga, gb = group_of(analysis, "a"), group_of(analysis, "b")
    assert ga.gid != gb.gid and ga.prunable and gb.prunable
    assert masks["cat"].tolist() == masks["a"].tolist() + masks["b"].tolist()


def test_flatten_and_reshape_into_gemm_take_feature_blocks():
    nodes = [conv("x", "c", "wc", "bc"), helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Reshape", ["r", "shape"], ["flat"], name="reshape"),
             helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["hr"], name="relu2"),
             helper.make_node("Gemm", ["hr", "fc2_w"], ["out"], name="fc2")]
    model = make_model(nodes, {"x": (F32, [1, 2, 3, 3])}, {"out": (F32, [1, 3])},
                       {"wc": w(6, 2, 1, 1), "bc": w(6), "shape": np.array([1, 54], np.int64),
                        "fc_w": w(8, 54), "fc_b": w(8), "fc2_w": w(8, 3)})
    analysis, masks, pruned = prune_and_check(model)
    assert masks["flat"].sum() == 27 and masks["h"].sum() == 4
    params = inits(pruned)
    assert params["fc_w__pruned"].shape == (4, 27)
    assert params["fc2_w__pruned"].shape == (4, 3)
    shape = next(a for n, a in params.items() if n.startswith("reshape_shape"))
    assert shape.tolist() == [1, 27]


def test_reduction_and_resize_pass_channels():
    nodes = [conv("x", "c", "wc"),
             helper.make_node("Resize", ["c", "", "scales"], ["up"], name="up", mode="nearest"),
             helper.make_node("ReduceMean", ["up", "axes"], ["m"], name="mean", keepdims=0),
             helper.make_node("Gemm", ["m", "fc_w"], ["out"], name="fc", transB=1)]
    model = make_model(nodes, {"x": (F32, [1, 2, 3, 3])}, {"out": (F32, [1, 3])},
                       {"wc": w(8, 2, 1, 1), "scales": np.array([1, 1, 2, 2], F32),
                        "axes": np.array([2, 3], np.int64), "fc_w": w(3, 8)}, opset=18)
    analysis, masks, _ = prune_and_check(model)
    assert masks["m"].sum() == 4 and group_of(analysis, "c").prunable


def test_a_node_without_facet_blocks_and_is_named():
    nodes = [conv("x", "c", "wc"),
             helper.make_node("Softmax", ["c"], ["s"], name="channel_softmax", axis=1),
             conv("s", "out", "w2")]
    model = make_model(nodes, {"x": (F32, [1, 2, 3, 3])}, {"out": (F32, [1, 3, 3, 3])},
                       {"wc": w(8, 2, 1, 1), "w2": w(3, 8, 1, 1)})
    analysis = build_groups(import_model(model))
    grp = group_of(analysis, "c")
    assert not grp.prunable
    assert "Softmax node 'channel_softmax'" in grp.blocked_by
    assert any("channel_softmax" in line for line in describe_blockers(analysis))


@pytest.mark.parametrize("ratio", [0.25, 0.75])
def test_round_to_and_never_empty(ratio):
    nodes = [conv("x", "c", "wc"), conv("c", "out", "w2")]
    model = make_model(nodes, {"x": (F32, [1, 2, 3, 3])}, {"out": (F32, [1, 3, 3, 3])},
                       {"wc": w(32, 2, 1, 1), "w2": w(3, 32, 1, 1)})
    analysis = build_groups(import_model(model))
    scores = {grp.gid: unit_scores(analysis, grp, "l1") for grp in analysis.prunable()}
    kept = keep_masks(analysis, select(analysis, scores, ratio, round_to=8))["c"].sum()
    assert kept % 8 == 0 and kept >= 8
    one = keep_masks(analysis, select(analysis, scores, 0.99, max_ratio=1.0))["c"].sum()
    assert one == 1


def test_torch_export_with_dynamic_batch_and_batchnorm(tmp_path):
    """A torch export keeps its BatchNorm (gamma ranks channels) and its dynamic batch: the
    Reshape fed by a Shape subgraph is left alone and the pruned model runs batch 3."""
    import torch

    from edgec.prune.driver import prune_model_file, run_ort

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = torch.nn.Conv2d(1, 8, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(8)
            self.fc = torch.nn.Linear(8 * 4 * 4, 5)

        def forward(self, x):
            x = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.c1(x))), 2)
            return self.fc(x.view(x.size(0), -1))

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        net.bn.weight.copy_(torch.tensor([0.1, 2.0, 0.2, 1.5, 0.3, 1.8, 0.05, 1.2]))
    path = tmp_path / "dyn.onnx"
    torch.onnx.export(net, torch.randn(1, 1, 8, 8), str(path), input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
                      do_constant_folding=False, dynamo=False)
    result = prune_model_file(path, ratio=0.5, criterion="bn", do_recover=False,
                              input_shapes={"x": (1, 1, 8, 8)})
    params = inits(result.model)
    assert params["bn.weight__pruned"].tolist() == pytest.approx([2.0, 1.5, 1.8, 1.2])
    assert params["fc.weight__pruned"].shape == (5, 64)
    x = RNG.standard_normal((3, 1, 8, 8)).astype(F32)
    out = run_ort(result.model, [{"x": x}])[0]
    assert out.shape == (3, 5)
    # the oracle: the original with the fc columns of the removed channels zeroed
    model = onnx.load(str(path))
    g = import_model(model, {"x": (1, 1, 8, 8)})
    analysis = build_groups(g)
    kept = np.zeros(8, bool)
    kept[[1, 3, 5, 7]] = True  # the four largest gammas
    fc = next(t for t in model.graph.initializer if t.name == "fc.weight")
    data = numpy_helper.to_array(fc).copy()
    data[:, ~np.repeat(kept, 16)] = 0
    fc.CopyFrom(numpy_helper.from_array(data, fc.name))
    assert analysis.prunable()
    np.testing.assert_allclose(out, run_ort(model, [{"x": x}])[0], rtol=1e-4, atol=1e-5)


def test_unreachable_budget_names_the_blocker(tmp_path, capsys):
    from edgec.cli import main

    nodes = [conv("x", "c", "wc"),
             helper.make_node("Softmax", ["c"], ["s"], name="channel_softmax", axis=1),
             conv("s", "out", "w2")]
    model = make_model(nodes, {"x": (F32, [1, 2, 3, 3])}, {"out": (F32, [1, 3, 3, 3])},
                       {"wc": w(8, 2, 1, 1), "w2": w(3, 8, 1, 1)})
    path = tmp_path / "blocked.onnx"
    onnx.save(model, str(path))
    assert main(["prune", str(path), "--target-macs", "0.5", "-o", str(tmp_path / "p.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgec: error:") and "channel_softmax" in err


def test_softmax_over_spatial_axes_passes_channels():
    nodes = [conv("x", "c", "wc"),
             helper.make_node("Softmax", ["c"], ["s"], name="spatial_softmax", axis=3),
             conv("s", "out", "w2")]
    model = make_model(nodes, {"x": (F32, [1, 2, 3, 3])}, {"out": (F32, [1, 3, 3, 3])},
                       {"wc": w(8, 2, 1, 1), "w2": w(3, 8, 1, 1)})
    analysis, masks, _ = prune_and_check(model)
    assert group_of(analysis, "c").prunable and masks["s"].sum() == 4
