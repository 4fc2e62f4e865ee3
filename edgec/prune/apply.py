"""Write a pruned ONNX model: the groups' decisions applied to the source model itself.

Why the ONNX file and not an IR -> ONNX writer: the groups are built on the freshly imported
IR, whose nodes and values carry the model's own names, so every decision is a local edit of
the source model (slice an initializer, rewrite `group`, a Reshape target, Split sizes, Slice
bounds). Everything else in the model (opset, names, ops edgec would fold) stays as it was,
and the result is a real, smaller model that onnxruntime runs.

Each sliced constant becomes a new initializer (NAME__pruned, NAME__pruned_1...) fed to the
node that needs it, so a weight shared by several nodes is sliced per node; constants and
nodes nobody reads any more are dropped; stale value_info is removed.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.errors import EdgecError
from edgec.prune.groups import Analysis, ref_value


class PruneError(EdgecError):
    """The pruned model could not be written (a bug if the groups said it could)."""

    exit_code = 3


def kept_refs(node, masks: dict[str, np.ndarray]) -> dict:
    """Kept channel indices of every tracked ref of `node`."""
    kept = {}
    for kind, values in (("in", node.inputs), ("out", node.outputs)):
        for i, v in enumerate(values):
            if v is not None and v.name in masks:
                kept[(kind, i)] = np.flatnonzero(masks[v.name])
    return kept


def sliced_params(node, flow, masks: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
    """input index -> the node's constant input with pruned channels removed (changed only)."""
    out: dict[int, np.ndarray] = {}
    for p in flow.params:
        v = ref_value(node, p.ref)
        if v.name not in masks or masks[v.name].all():
            continue
        data = out.get(p.input, node.inputs[p.input].data)
        index = p.index if p.index is not None else np.arange(data.shape[p.axis])
        out[p.input] = np.take(data, np.flatnonzero(masks[v.name][index]), axis=p.axis)
    return out


class _Model:
    """Small helpers over a mutable ModelProto."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          1)
        self.inits = {t.name: t for t in self.graph.initializer}
        self.consts = {n.output[0]: n for n in self.graph.node if n.op_type == "Constant"}
        self.by_output = {n.output[0]: n for n in self.graph.node if n.output}
        self.names = set(self.inits) | {o for n in self.graph.node for o in n.output} | \
            {i.name for i in self.graph.input}

    def fresh(self, hint: str) -> str:
        """An unused tensor name derived from `hint`."""
        name, k = f"{hint}__pruned", 0
        while name in self.names:
            k += 1
            name = f"{hint}__pruned_{k}"
        self.names.add(name)
        return name

    def add_init(self, data: np.ndarray, hint: str) -> str:
        """Add `data` as a new initializer; returns its name."""
        name = self.fresh(hint)
        t = numpy_helper.from_array(np.ascontiguousarray(data), name)
        self.graph.initializer.append(t)
        self.inits[name] = t
        return name

    def const(self, name: str):
        """The data of an initializer or Constant output, None when computed."""
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        if name in self.consts:
            return numpy_helper.to_array(self.consts[name].attribute[0].t)
        return None

    def cleanup(self) -> None:
        """Drop nodes whose outputs nobody reads, then unread initializers."""
        keep_out = {o.name for o in self.graph.output}
        while True:
            used = {i for n in self.graph.node for i in n.input} | keep_out
            dead = [n for n in self.graph.node if n.output and not any(o in used for o in n.output)]
            if not dead:
                break
            for n in dead:
                self.graph.node.remove(n)
        used = {i for n in self.graph.node for i in n.input} | keep_out
        for t in [t for t in self.graph.initializer if t.name not in used]:
            self.graph.initializer.remove(t)
        del self.graph.value_info[:]


def prune_model(model: onnx.ModelProto, analysis: Analysis,
                masks: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The ONNX model with the channels that `masks` drops removed (see module docstring)."""
    out = onnx.ModelProto.FromString(model.SerializeToString())
    m = _Model(out)
    for node in analysis.graph.nodes:
        flow = analysis.flows.get(node.name)
        if flow is None or not node.outputs:
            continue
        kept = kept_refs(node, masks)
        if all(len(k) == _channels(node, r, masks) for r, k in kept.items()):
            continue
        onode = m.by_output.get(node.outputs[0].name)
        if onode is None:
            raise PruneError(f"{node.op} node '{node.name}' has no ONNX node to prune")
        for index, data in sliced_params(node, flow, masks).items():
            onode.input[index] = m.add_init(data, node.inputs[index].name)
        for up in flow.updates:
            _apply_update(m, onode, node, up, kept)
    m.cleanup()
    try:
        onnx.checker.check_model(out)
    except onnx.checker.ValidationError as e:
        raise PruneError(f"the pruned model does not pass onnx.checker: {e}") from None
    return out


def _channels(node, ref, masks) -> int:
    """Channel count of a ref before pruning."""
    return len(masks[ref_value(node, ref).name])


def _as_input(attr: str, opset: int) -> bool:
    """Whether the model's opset passes `attr` as an input (Split from 13, Slice from 10)."""
    since = {"split": 13, "starts": 10, "ends": 10, "axes": 10, "steps": 10, "shape": 5}
    return opset >= since.get(attr, 1 << 30)


def _apply_update(m: _Model, onode, node, up, kept) -> None:
    attr = next((a for a in onode.attribute if a.name == up.attr), None)
    if attr is not None:
        new = up.value(kept, helper.get_attribute_value(attr))
        onode.attribute.remove(attr)
        onode.attribute.append(helper.make_attribute(up.attr, new))
        return
    if up.onnx_input is not None and up.onnx_input < len(onode.input) \
            and onode.input[up.onnx_input]:
        old = m.const(onode.input[up.onnx_input])
        if old is None:  # computed in the model (a Shape subgraph): edgec folded it
            old = node.attrs.get(up.attr)
        new = np.asarray(up.value(kept, old), np.int64)
        if np.array_equal(new, np.asarray(old).reshape(new.shape) if np.size(old) == new.size
                          else None):
            return  # e.g. Reshape to [N, -1]: keep the model's own (maybe dynamic) shape
        onode.input[up.onnx_input] = m.add_init(new, f"{node.name}_{up.attr}")
        return
    if up.onnx_input is not None and _as_input(up.attr, m.opset):
        while len(onode.input) < up.onnx_input:
            onode.input.append("")
        new = np.asarray(up.value(kept, node.attrs.get(up.attr)), np.int64)
        name = m.add_init(new, f"{node.name}_{up.attr}")
        if len(onode.input) == up.onnx_input:
            onode.input.append(name)
        else:
            onode.input[up.onnx_input] = name
        return
    if up.attr == "group":  # ONNX default 1 never needs rewriting (group 1 has no update)
        return
    new = up.value(kept, node.attrs.get(up.attr))
    onode.attribute.append(helper.make_attribute(up.attr, new))
