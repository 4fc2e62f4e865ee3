"""Control flow (If, Loop, Scan) lowered to plain ONNX nodes before import.

edgec's IR is a static dataflow graph, so subgraphs are inlined on the ONNX model first:

- `If` whose condition is known at compile time (a constant, or computed from constants and
  static shapes: Shape -> Gather -> Equal chains, comparisons of initializer values...) is
  replaced by the taken branch;
- `If` whose condition depends on input data gets both branches inlined and one `Where`
  per output selecting the taken branch's value (ONNX ops have no side effects, so running
  the untaken branch only costs time; both branches must give outputs of one shape);
- `Loop` with a compile-time trip count and a condition that stays true (or is absent) is
  unrolled: each iteration is the body with its iteration number as a constant, the
  loop-carried values threaded through, and scan outputs stacked with Unsqueeze + Concat;
- `Scan` over statically shaped inputs is unrolled the same way, slicing each scan input
  with Gather at the step's index (in the input's direction) and stacking the outputs.

Names produced inside a subgraph are renamed with a unique prefix per inlined copy;
references to outer-scope names are kept. Unrolling is capped (`MAX_UNROLLED_NODES`) so a
huge trip count is a clear error rather than a huge graph. Constant values are computed with
onnx.reference, only for small tensors (`MAX_FOLD_ELEMENTS`).
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.errors import UnsupportedError

MAX_UNROLLED_NODES = 200_000
MAX_FOLD_ELEMENTS = 1 << 16
CONTROL_FLOW = ("If", "Loop", "Scan")


def has_control_flow(model: onnx.ModelProto) -> bool:
    """True when the main graph has an If, Loop or Scan node."""
    return any(n.op_type in CONTROL_FLOW and n.domain in ("", "ai.onnx")
               for n in model.graph.node)


def lower_control_flow(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` without If/Loop/Scan in its main graph (see the module docstring)."""
    if not has_control_flow(model):
        return model
    model = onnx.ModelProto.FromString(model.SerializeToString())
    counter = itertools.count()
    for _ in range(64):  # inlining may expose nested control flow: repeat
        if not has_control_flow(model):
            return model
        known, shapes = _known_values(model)
        nodes = []
        for node in model.graph.node:
            if node.op_type in CONTROL_FLOW and node.domain in ("", "ai.onnx"):
                nodes.extend(_lower(node, known, shapes, model.graph, counter))
            else:
                nodes.append(node)
        if len(nodes) > MAX_UNROLLED_NODES:
            raise UnsupportedError(f"inlining control flow gives {len(nodes)} nodes (limit "
                                   f"{MAX_UNROLLED_NODES}); the loops' trip counts are too large")
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    raise UnsupportedError("control flow nested more than 64 levels deep")


# ---------------------------------------------------------------------- constants
def _known_values(model: onnx.ModelProto) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    """Values computable at compile time (initializers, Constant nodes, Shape of statically
    shaped tensors, small nodes whose inputs are all known, by onnx.reference) and the
    static shapes that shape inference finds."""
    from onnx.reference import ReferenceEvaluator

    known = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    shapes = {}
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
        infos = list(inferred.graph.value_info) + list(inferred.graph.input)
    except Exception:  # an invalid model is reported by the importer, with its own words
        infos = list(model.graph.input)
    for vi in infos:
        dims = vi.type.tensor_type.shape.dim
        if vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = [d.dim_value for d in dims]
    opset = [o for o in model.opset_import]
    for node in model.graph.node:
        if node.op_type in CONTROL_FLOW or node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type == "Shape" and node.input[0] in shapes:
            shape = np.array(shapes[node.input[0]], np.int64)
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            known[node.output[0]] = shape[attrs.get("start", 0):attrs.get("end", None)]
            continue
        ins = [n for n in node.input if n]
        if not all(n in known for n in ins):
            continue
        if any(known[n].size > MAX_FOLD_ELEMENTS for n in ins):
            continue
        try:
            graph = helper.make_graph(
                [node], "fold",
                [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(
                    known[n].dtype), known[n].shape) for n in dict.fromkeys(ins)],
                [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None)
                 for o in node.output if o])
            single = helper.make_model(graph, opset_imports=opset, ir_version=model.ir_version)
            outs = ReferenceEvaluator(single).run(None, {n: known[n] for n in ins})
        except Exception:  # not foldable here: the node stays and runs in the model
            continue
        for name, value in zip([o for o in node.output if o], outs):
            if np.asarray(value).size <= MAX_FOLD_ELEMENTS:
                known[name] = np.asarray(value)
    for t in model.graph.initializer:
        shapes[t.name] = list(t.dims)
    return known, shapes


# ---------------------------------------------------------------------- inlining
def _inline(body: onnx.GraphProto, prefix: str, bindings: dict[str, str],
            graph: onnx.GraphProto) -> tuple[list[onnx.NodeProto], list[str]]:
    """Copies of `body`'s nodes with every name it produces prefixed, its formal inputs
    replaced by `bindings` (formal name -> outer name); its initializers move into `graph`.
    Returns the nodes and the outer names of the body's outputs."""
    produced = {o for n in body.node for o in n.output if o}
    produced |= {t.name for t in body.initializer}
    rename = {name: prefix + name for name in produced}
    rename.update(bindings)
    for t in body.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(t)
        copy.name = rename[t.name]
        graph.initializer.append(copy)
    nodes = []
    for n in body.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        copy.name = prefix + (n.name or n.op_type)
        copy.input[:] = [rename.get(i, i) if i else i for i in n.input]
        copy.output[:] = [rename.get(o, o) if o else o for o in n.output]
        for attr in copy.attribute:  # nested subgraphs see the renamed outer names
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _rename_references(sub, rename)
        nodes.append(copy)
    outs = [rename.get(o.name, o.name) for o in body.output]
    return nodes, outs


def _rename_references(graph: onnx.GraphProto, rename: dict[str, str]) -> None:
    local = {o for n in graph.node for o in n.output} | {i.name for i in graph.input}
    local |= {t.name for t in graph.initializer}
    for n in graph.node:
        n.input[:] = [rename[i] if i in rename and i not in local else i for i in n.input]
        for attr in n.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _rename_references(sub, {k: v for k, v in rename.items() if k not in local})
    for o in graph.output:
        if o.name in rename and o.name not in local:
            o.name = rename[o.name]


def _node(op: str, inputs, outputs, name: str, **attrs) -> onnx.NodeProto:
    return helper.make_node(op, list(inputs), list(outputs), name=name, **attrs)


def _const(graph: onnx.GraphProto, name: str, value) -> str:
    graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    return name


def _lower(node, known, shapes, graph, counter) -> list[onnx.NodeProto]:
    attrs = {a.name: a for a in node.attribute}
    desc = f"{node.op_type} node '{node.name or node.output[0]}'"
    prefix = f"{node.name or node.op_type}__cf{next(counter)}__"
    if node.op_type == "If":
        return _lower_if(node, attrs, known, graph, prefix, desc)
    if node.op_type == "Loop":
        return _lower_loop(node, attrs, known, graph, prefix, desc)
    return _lower_scan(node, attrs, graph, prefix, desc, shapes)


def _lower_if(node, attrs, known, graph, prefix, desc) -> list[onnx.NodeProto]:
    cond = node.input[0]
    then_g, else_g = attrs["then_branch"].g, attrs["else_branch"].g
    if cond in known:
        value = np.asarray(known[cond])
        if value.size != 1:
            raise UnsupportedError(f"{desc}: condition has {value.size} elements, not 1")
        body = then_g if bool(value.reshape(-1)[0]) else else_g
        nodes, outs = _inline(body, prefix, {}, graph)
        return nodes + [_node("Identity", [o], [y], f"{prefix}out{i}")
                        for i, (o, y) in enumerate(zip(outs, node.output)) if y]
    then_nodes, then_outs = _inline(then_g, prefix + "then_", {}, graph)
    else_nodes, else_outs = _inline(else_g, prefix + "else_", {}, graph)
    cond_b = prefix + "cond"
    nodes = then_nodes + else_nodes + [_node("Cast", [cond], [cond_b], prefix + "cast",
                                             to=onnx.TensorProto.BOOL)]
    for i, (t, e, y) in enumerate(zip(then_outs, else_outs, node.output)):
        if y:
            nodes.append(_node("Where", [cond_b, t, e], [y], f"{prefix}select{i}"))
    return nodes


def _lower_loop(node, attrs, known, graph, prefix, desc) -> list[onnx.NodeProto]:
    body = attrs["body"].g
    trip, cond = node.input[0], node.input[1] if len(node.input) > 1 else ""
    if not trip or trip not in known:
        raise UnsupportedError(f"{desc}: its trip count is not known at compile time; edgec "
                               "unrolls loops with a constant trip count only")
    if cond and (cond not in known or not bool(np.asarray(known[cond]).reshape(-1)[0])):
        raise UnsupportedError(f"{desc}: its start condition is not a constant true")
    if not _condition_stays_true(body):
        raise UnsupportedError(f"{desc}: its condition is computed in the body; edgec "
                               "unrolls loops whose condition stays true")
    trips = int(np.asarray(known[trip]).reshape(-1)[0])
    carried = list(node.input[2:])
    n_carried = len(carried)
    scans: list[list[str]] = [[] for _ in body.output[1 + n_carried:]]
    nodes: list[onnx.NodeProto] = []
    true_name = _const(graph, prefix + "true", np.array(True))
    for it in range(trips):
        binds = {body.input[0].name: _const(graph, f"{prefix}iter{it}", np.array(it, np.int64)),
                 body.input[1].name: true_name}
        binds.update({f.name: a for f, a in zip(body.input[2:], carried)})
        step_nodes, outs = _inline(body, f"{prefix}it{it}_", binds, graph)
        nodes.extend(step_nodes)
        if len(nodes) > MAX_UNROLLED_NODES:
            raise UnsupportedError(f"{desc}: unrolling {trips} iterations exceeds "
                                   f"{MAX_UNROLLED_NODES} nodes")
        carried = outs[1:1 + n_carried]
        for k, o in enumerate(outs[1 + n_carried:]):
            scans[k].append(o)
    outs = list(node.output)
    nodes += [_node("Identity", [c], [y], f"{prefix}final{i}")
              for i, (c, y) in enumerate(zip(carried, outs[:n_carried])) if y]
    for k, (parts, y) in enumerate(zip(scans, outs[n_carried:])):
        if y:
            nodes += _stack(parts, y, 0, f"{prefix}scan{k}", graph, desc)
    return nodes


def _condition_stays_true(body: onnx.GraphProto) -> bool:
    """The body's condition output is its condition input (directly or through Identity),
    or a constant true."""
    cond_in, cond_out = body.input[1].name, body.output[0].name
    if cond_out == cond_in:
        return True
    consts = {t.name: numpy_helper.to_array(t) for t in body.initializer}
    for n in body.node:
        if cond_out in n.output:
            if n.op_type == "Identity":
                return n.input[0] == cond_in or n.input[0] in consts and bool(
                    consts[n.input[0]].reshape(-1)[0])
            if n.op_type == "Constant":
                return bool(numpy_helper.to_array(n.attribute[0].t).reshape(-1)[0])
            return False
    return cond_out in consts and bool(consts[cond_out].reshape(-1)[0])


def _stack(parts: list[str], out: str, axis: int, prefix: str, graph, desc) -> list:
    if not parts:
        raise UnsupportedError(f"{desc}: zero iterations give an empty scan output, which "
                               "edgec cannot type")
    axes = _const(graph, prefix + "_axes", np.array([axis], np.int64))
    nodes = [_node("Unsqueeze", [p, axes], [f"{prefix}_u{i}"], f"{prefix}_u{i}")
             for i, p in enumerate(parts)]
    nodes.append(_node("Concat", [f"{prefix}_u{i}" for i in range(len(parts))], [out],
                       prefix + "_concat", axis=axis))
    return nodes


def _lower_scan(node, attrs, graph, prefix, desc, shapes) -> list[onnx.NodeProto]:
    body = attrs["body"].g
    n_scan_in = helper.get_attribute_value(attrs["num_scan_inputs"])
    value = (lambda k, n: list(helper.get_attribute_value(attrs[k])) if k in attrs else [0] * n)
    n_state = len(node.input) - n_scan_in
    scan_in = list(node.input[n_state:])
    in_axes, in_dirs = value("scan_input_axes", n_scan_in), value("scan_input_directions",
                                                                  n_scan_in)
    n_scan_out = len(body.output) - n_state
    out_axes, out_dirs = value("scan_output_axes", n_scan_out), value("scan_output_directions",
                                                                      n_scan_out)
    lengths = set()
    for name, axis in zip(scan_in, in_axes):
        if name not in shapes:
            raise UnsupportedError(f"{desc}: scan input '{name}' has no static shape")
        lengths.add(shapes[name][axis])
    if len(lengths) != 1:
        raise UnsupportedError(f"{desc}: scan inputs have different lengths {sorted(lengths)}")
    steps = lengths.pop()
    state = list(node.input[:n_state])
    outs: list[list[str]] = [[] for _ in range(n_scan_out)]
    nodes: list[onnx.NodeProto] = []
    for t in range(steps):
        binds = {f.name: s for f, s in zip(body.input[:n_state], state)}
        for k, (name, axis, rev) in enumerate(zip(scan_in, in_axes, in_dirs)):
            index = _const(graph, f"{prefix}t{t}_i{k}", np.array(steps - 1 - t if rev else t,
                                                                  np.int64))
            sliced = f"{prefix}t{t}_x{k}"
            nodes.append(_node("Gather", [name, index], [sliced], sliced, axis=axis))
            binds[body.input[n_state + k].name] = sliced
        step_nodes, step_outs = _inline(body, f"{prefix}t{t}_", binds, graph)
        nodes.extend(step_nodes)
        if len(nodes) > MAX_UNROLLED_NODES:
            raise UnsupportedError(f"{desc}: unrolling {steps} steps exceeds "
                                   f"{MAX_UNROLLED_NODES} nodes")
        state = step_outs[:n_state]
        for k, o in enumerate(step_outs[n_state:]):
            outs[k].append(o)
    results = list(node.output)
    nodes += [_node("Identity", [s], [y], f"{prefix}final{i}")
              for i, (s, y) in enumerate(zip(state, results[:n_state])) if y]
    for k, y in enumerate(results[n_state:]):
        if y:
            parts = outs[k][::-1] if out_dirs[k] else outs[k]
            nodes += _stack(parts, y, out_axes[k], f"{prefix}scan{k}", graph, desc)
    return nodes
