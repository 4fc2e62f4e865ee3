"""ONNX -> edgec IR.

Steps: load the file (external-data weights resolved next to it), check the opset, fix every
input's shape (from the file or `--input-shape`), clean up and sort with onnx-graphsurgeon,
then import node by node. Each node is brought to canonical form by its registry entry
(`import_onnx`), typed by `infer`, and folded to a constant on the spot when all of its inputs
are constant (or, like Shape, when it needs only static shapes). Shape arithmetic exported by
PyTorch or Paddle therefore disappears at import time once the input sizes are known.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from edgec.errors import EdgecError, ModelLoadError, ShapeError, UnsupportedError
from edgec.frontend.control_flow import lower_control_flow
from edgec.frontend.validate import (
    check_declared_outputs,
    check_input_types,
    check_tensor_proto,
    validate_model,
)
from edgec.ir import DType, Graph, Node, TensorType, Value
from edgec.limits import Limits, check_fold_macs, check_model_file_size, check_tensor
from edgec.ops import get_op, has_op
from edgec.ops.contrib_quant import CONTRIB_DOMAIN, CONTRIB_OPS

MIN_OPSET = 11
# Ops evaluated from static shapes alone: they never need their input's data.
SHAPE_ONLY_OPS = {"Shape", "Size"}
# Ops kept as nodes even when their inputs are constant: int8 targets read quantised weights
# through them (passes/import_qdq.py); canonicalize folds them for float targets.
KEEP_AT_IMPORT = {"DequantizeLinear"}


def parse_input_shapes(specs: list[str] | None) -> dict[str, tuple[int, ...]]:
    """Parse `NAME=1x3x224x224` strings (several may be given, or comma-separated)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for spec in specs or []:
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            name, sep, dims = item.rpartition("=")
            try:
                if not sep:
                    raise ValueError
                shape = tuple(int(d) for d in dims.lower().split("x")) if dims else ()
                if any(d <= 0 for d in shape):
                    raise ValueError
            except ValueError:
                raise ShapeError(
                    f"bad --input-shape '{item}': write NAME=DxDx...D with positive sizes, "
                    "e.g. input=1x3x224x224"
                ) from None
            shapes[name] = shape
    return shapes


def load_model_proto(path: str | os.PathLike, limits: Limits | None = None) -> onnx.ModelProto:
    """Read an ONNX file with its external data; ModelLoadError on any problem.

    External tensors are checked against `limits` before their files are read."""
    p = Path(path)
    if not p.exists():
        raise ModelLoadError(f"model file '{p}' does not exist")
    if p.is_dir():
        raise ModelLoadError(f"'{p}' is a directory; give the path of an .onnx file")
    if p.stat().st_size == 0:
        raise ModelLoadError(f"'{p}' is empty; give an ONNX model file")
    check_model_file_size(p.stat().st_size, limits or Limits())
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as e:  # protobuf raises several types for damaged files
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelLoadError(
            f"'{p}' is not a readable ONNX model (truncated or not ONNX: {reason}); "
            "re-export it or check the download"
        ) from None
    check_model_proto(model, f"'{p}'")
    stored = list(model.graph.initializer) + [
        a.t for n in model.graph.node for a in n.attribute if a.type == onnx.AttributeProto.TENSOR]
    for t in stored:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            check_tensor_proto(t, f"tensor '{t.name}' (external data)", limits or Limits())
    try:
        onnx.load_external_data_for_model(model, str(p.parent))
    except Exception as e:
        raise ModelLoadError(
            f"'{p}': cannot load its external weight data ({str(e).splitlines()[0]}); "
            "keep the weight files next to the model"
        ) from None
    return model


def check_model_proto(model: onnx.ModelProto, where: str) -> None:
    """ModelLoadError unless `model` has a graph and an opset (`where` names it)."""
    if model.ir_version <= 0 or not model.HasField("graph") or not model.opset_import:
        raise ModelLoadError(
            f"{where} is not an ONNX model (no graph or opset found); re-export it or check the "
            "file"
        )


def default_opset(model: onnx.ModelProto) -> int:
    """The version of the default ONNX domain the model imports."""
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return 0


def _upgrade_opset(model: onnx.ModelProto, where: str) -> onnx.ModelProto:
    from onnx import version_converter

    try:
        converted = version_converter.convert_version(model, 13)
    except Exception:
        raise UnsupportedError(
            f"{where} uses ONNX opset {default_opset(model)}; edgec needs opset {MIN_OPSET} or "
            "newer and could not convert it; re-export with a newer opset"
        ) from None
    _keep_legacy_resize_semantics(model, converted)
    return converted


def _keep_legacy_resize_semantics(old: onnx.ModelProto, new: onnx.ModelProto) -> None:
    """Upsample and Resize-10 map coordinates asymmetrically (x_out / scale) and round down
    (up when shrinking, as onnxruntime does); the version converter turns them into
    Resize-13 nodes with the half_pixel default, which changes linear results. Restore it."""
    # Only the scales of these nodes are read: an unused initializer may hold anything.
    wanted = {n.input[1] for n in old.graph.node
              if n.op_type in ("Upsample", "Resize") and len(n.input) > 1}
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in old.graph.initializer
              if t.name in wanted}
    for n in old.graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value" \
                and n.output and n.output[0] in wanted:
            consts[n.output[0]] = onnx.numpy_helper.to_array(n.attribute[0].t)
    legacy = {}
    for n in old.graph.node:
        if n.op_type in ("Upsample", "Resize"):
            scales = [a.floats for a in n.attribute if a.name == "scales"]
            data = consts.get(n.input[1]) if len(n.input) > 1 else None
            values = list(scales[0]) if scales else ([] if data is None else data.ravel().tolist())
            shrinks = bool(values) and all(s <= 1 for s in values) and any(s < 1 for s in values)
            legacy[n.output[0]] = "ceil" if shrinks else "floor"
    for n in new.graph.node:
        if n.op_type == "Resize" and n.output[0] in legacy:
            present = {a.name for a in n.attribute}
            if "coordinate_transformation_mode" not in present:
                n.attribute.append(onnx.helper.make_attribute(
                    "coordinate_transformation_mode", "asymmetric"))
            if "nearest_mode" not in present:
                n.attribute.append(onnx.helper.make_attribute(
                    "nearest_mode", legacy[n.output[0]]))


def _value_info_dims(vi) -> list:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return []
    dims = []
    for d in tt.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:  # 0 is a static, empty dimension
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or "?")
    return dims


def _fix_input_shapes(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]) -> None:
    init_names = {t.name for t in model.graph.initializer}
    real_inputs = [vi for vi in model.graph.input if vi.name not in init_names]
    names = [vi.name for vi in real_inputs]
    for name in shapes:
        if name not in names:
            raise ShapeError(
                f"--input-shape names '{name}', which is not a model input "
                f"(inputs: {', '.join(names)})"
            )
    dynamic = []
    example = ""
    for vi in real_inputs:
        tt = vi.type.tensor_type
        dims = _value_info_dims(vi)
        if vi.name in shapes:
            want = shapes[vi.name]
            if tt.HasField("shape") and len(dims) != len(want):
                raise ShapeError(
                    f"--input-shape {vi.name}: rank {len(want)} given but the model input has "
                    f"rank {len(dims)} ({'x'.join(map(str, dims))})"
                )
            for d, w in zip(dims, want):
                if isinstance(d, int) and d != w:
                    raise ShapeError(
                        f"--input-shape {vi.name}={'x'.join(map(str, want))} does not match the "
                        f"model's fixed shape {'x'.join(map(str, dims))}"
                    )
            del tt.shape.dim[:]
            for w in want:
                tt.shape.dim.add().dim_value = w
        elif not tt.HasField("shape") or any(not isinstance(d, int) for d in dims):
            shown = "x".join(str(d) for d in dims) if tt.HasField("shape") else "unknown"
            dynamic.append(f"{vi.name} [{shown}]")
            if len(dynamic) == 1:  # the example keeps the fixed dims, batch 1
                example = "x".join(str(d) if isinstance(d, int) else "1" if i == 0 else f"<{d}>"
                                   for i, d in enumerate(dims)) or "DxD..."
                example = f"{vi.name}={example}"
    if dynamic:
        raise ShapeError(
            f"dynamic input shape in {', '.join(dynamic)}; give sizes with --input-shape, "
            f"e.g. --input-shape {example}"
        )


def _attr_value(value, node_desc: str):
    if isinstance(value, gs.Constant):
        return np.asarray(value.values)
    if isinstance(value, gs.Tensor):
        raise UnsupportedError(f"{node_desc}: tensor attribute without data is not supported")
    if isinstance(value, gs.Graph) or (
        isinstance(value, (list, tuple)) and value and isinstance(value[0], gs.Graph)
    ):
        raise UnsupportedError(f"{node_desc}: control flow (subgraph attributes) is not supported")
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _text(value) -> str:
    """A name from the model as text (a damaged file can hold bytes that are not UTF-8)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _check_supported(gs_graph) -> None:
    missing: dict[str, list[str]] = {}
    for n in gs_graph.nodes:
        default_domain = n.domain in (None, "", "ai.onnx")
        key = _text(n.op) if default_domain else f"{_text(n.domain)}.{_text(n.op)}"
        if n.domain == CONTRIB_DOMAIN and n.op in CONTRIB_OPS:
            continue  # quantised contrib ops, imported onto edgec's int8 ops
        if not default_domain or not has_op(n.op) or n.op in CONTRIB_OPS:
            missing.setdefault(key, []).append(n.name or "<unnamed>")
    if missing:
        parts = []
        for op in sorted(missing):
            nodes = missing[op]
            shown = ", ".join(f"'{x}'" for x in nodes[:3]) + (" ..." if len(nodes) > 3 else "")
            parts.append(f"{op} (node{'s' if len(nodes) > 1 else ''} {shown})")
        raise UnsupportedError(
            "unsupported operators: " + "; ".join(parts) + "; run 'edgec ops' for the list"
        )


def _name_the_node(e: EdgecError, desc: str, onnx_name: str, node: Node) -> None:
    """Make an op's error message name the node as the model does (in place)."""
    msg = str(e)
    if onnx_name and f"'{onnx_name}'" in msg:
        return
    ir_ref = f"{node.op} node '{node.name}'"
    e.args = (msg.replace(ir_ref, desc, 1) if ir_ref in msg else f"{desc}: {msg}",)


def _check_arity(gn, opset: int, desc: str) -> None:
    """ModelLoadError when a default-domain node has fewer or more inputs than its ONNX schema
    allows (the importers would otherwise fail somewhere deep inside)."""
    if gn.domain not in (None, "", "ai.onnx"):
        return
    try:
        schema = onnx.defs.get_schema(gn.op, opset, "")
    except Exception:  # no schema at this opset: the op's own import decides
        return
    given = len(gn.inputs)
    single = onnx.defs.OpSchema.FormalParameterOption.Single
    required = [i for i, p in enumerate(schema.inputs) if p.option == single]
    missing = [i for i in required if i >= given or not gn.inputs[i].name]
    if missing or given > schema.max_input:
        need = (f"{schema.min_input}" if schema.min_input == schema.max_input else
                f"{schema.min_input} to {schema.max_input}" if schema.max_input < 2**31 - 1
                else f"at least {schema.min_input}")
        raise ModelLoadError(
            f"{desc} has {given} input(s) but ONNX {gn.op}-{schema.since_version} takes {need}; "
            "the model is invalid"
        )


def import_model(
    model: onnx.ModelProto,
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    name: str = "model",
    limits: Limits | None = None,
) -> Graph:
    """Convert an in-memory ONNX model to an IR graph with static shapes.

    The model is validated first (frontend/validate.py) and every tensor type is checked
    against `limits` (edgec/limits.py) before data is made for it."""
    limits = limits or Limits()

    model = onnx.ModelProto.FromString(model.SerializeToString()) if input_shapes else model
    if not model.graph.output:
        raise ModelLoadError(f"model '{name}' declares no graph outputs; nothing to compile")
    validate_model(model, default_opset(model), limits, name)
    if default_opset(model) < MIN_OPSET:
        model = _upgrade_opset(model, f"model '{name}'")
    _fix_input_shapes(model, dict(input_shapes or {}))
    model = lower_control_flow(model)  # If/Loop/Scan inlined (frontend/control_flow.py)
    opset = default_opset(model)
    if opset > onnx.defs.onnx_opset_version():
        raise UnsupportedError(
            f"model '{name}' uses ONNX opset {opset}, newer than this edgec knows "
            f"({onnx.defs.onnx_opset_version()}); re-export with an older opset"
        )
    # onnx-graphsurgeon logs on stdout (warnings about element types, a line before it raises
    # on a cycle...); edgec reports every problem itself as one error line: silence it.
    gs.logger.G_LOGGER.severity = gs.logger.G_LOGGER.CRITICAL + 10
    try:
        gsg = gs.import_onnx(model)
    except Exception as e:
        raise ModelLoadError(f"cannot read the graph of '{name}': {e}") from None
    try:
        gsg.cleanup(remove_unused_graph_inputs=False).toposort()
    except Exception:
        raise ModelLoadError(
            f"the graph of '{name}' has a cycle or several tensors with the same name; "
            "the model is invalid (onnx.checker.check_model shows details)"
        ) from None
    _check_supported(gsg)

    g = Graph(name)
    env = {}  # gs tensor name -> IR value
    fold_macs = 0  # work of constant folding so far (limits.max_fold_macs)

    def lookup(t):
        if t is None or t.name == "":
            return None
        if t.name in env:
            return env[t.name]
        if isinstance(t, gs.Constant):
            v = g.const(np.asarray(t.values), t.name)
            env[t.name] = v
            return v
        raise ShapeError(f"tensor '{t.name}' is used before it is produced (graph not sorted)")

    for t in gsg.inputs:
        if isinstance(t, gs.Constant):
            continue
        if t.dtype is None or t.shape is None:
            raise ShapeError(f"input '{t.name}' has no type or shape in the model")
        dtype = _ir_dtype(t.dtype, f"input '{t.name}'")
        in_type = TensorType(tuple(int(d) for d in t.shape), dtype)
        check_tensor(in_type, f"graph input '{t.name}'", limits, constant=False)
        env[t.name] = g.add_input(t.name, in_type)

    for gn in gsg.nodes:
        opdef = get_op(gn.op)
        node = Node(gn.op, g.unique_node_name(gn.name or gn.op.lower()))
        desc = f"{gn.op} node '{node.name}'"
        if not gn.name:  # say which node is meant: the model has no name for it
            first_output = gn.outputs[0].name if gn.outputs else ""
            desc += f" (unnamed in the model) with output '{first_output}'"
        _check_arity(gn, opset, desc)
        if gn.domain in (None, "", "ai.onnx"):
            check_input_types(gn.op, opset, [None if v is None else v.dtype
                                             for v in (lookup(t) for t in gn.inputs)], desc)
        node.attrs = {k: _attr_value(v, desc) for k, v in gn.attrs.items()}
        node.inputs = [lookup(t) for t in gn.inputs]
        node.meta["onnx_num_outputs"] = len(gn.outputs)  # Split needs it before inference
        try:
            opdef.import_onnx(node, opset)
            node.attrs = opdef.normalize_attrs(node.attrs)
            for i, v in enumerate(node.inputs):  # constants made by import_onnx join the graph
                if v is not None and v.is_const and g.values.get(v.name) is not v:
                    node.set_input(i, g.add_value(v.name, v.type, v.data))
        except UnsupportedError as e:
            _name_the_node(e, desc, gn.name, node)  # keeps the subclass (and its fields)
            raise e from None
        out_names = [t.name for t in gn.outputs]
        try:
            types = opdef.infer(node)
        except EdgecError as e:
            _name_the_node(e, desc, gn.name, node)
            raise e from None
        for extra in gn.outputs[len(types):]:
            if extra.name and (extra.outputs or extra in gsg.outputs):
                raise UnsupportedError(
                    f"{desc}: its optional output '{extra.name}' is not supported")
        out_names = out_names[: len(types)]
        present = [v for v in node.inputs if v is not None]
        folds = gn.op in SHAPE_ONLY_OPS or (all(v.is_const for v in present)
                                            and gn.op not in KEEP_AT_IMPORT)
        for oname, t in zip(out_names, types):
            check_tensor(t, f"output '{oname}' of {desc}", limits, constant=folds)
        if folds and gn.op not in SHAPE_ONLY_OPS:
            fold_macs += _fold_work(opdef, node, types)
            check_fold_macs(fold_macs, desc, limits)
        if folds:
            datas = [None if v is None else v.data for v in node.inputs]
            if gn.op in SHAPE_ONLY_OPS:
                datas = [None if v is None else np.broadcast_to(np.zeros((), v.dtype.np), v.shape)
                         for v in node.inputs]
            results = opdef.reference(node, *datas)
            node.inputs = []
            for oname, data, t in zip(out_names, results, types):
                if oname:
                    arr = np.asarray(data).astype(t.dtype.np).reshape(t.shape)
                    env[oname] = g.add_value(oname, t, arr)
            continue
        if opdef.fold_only:
            raise UnsupportedError(
                f"{desc}: {gn.op} is supported only when it folds to a constant, but it depends "
                "on input data"
            )
        g.adopt_node(node, types, out_names)
        for oname, v in zip(out_names, node.outputs):
            if oname:
                env[oname] = v

    for t in gsg.outputs:
        v = lookup(t)
        if v is None:
            raise ShapeError(f"graph output '{t.name}' is never produced")
        if v.is_const or v in g.inputs or v in g.outputs:
            # The C code must still write every output: copy through an Identity node.
            node = Node("Identity", g.unique_node_name("output_copy"))
            node.inputs = [v]
            g.adopt_node(node, [v.type], [t.name + "_out"])
            v = node.output
        g.outputs.append(v)
    g.meta["input_names"] = [v.name for v in g.inputs]
    g.meta["output_names"] = [t.name for t in gsg.outputs]
    check_declared_outputs(model, g, g.meta["output_names"])
    g.meta["opset"] = opset
    g.remove_dead()
    return g


def _fold_work(opdef, node: Node, types) -> int:
    """Multiply-accumulates of evaluating `node` in numpy at compile time, counted before it
    runs (a 191-byte model can ask for a 4096^3 MatMul)."""
    node.outputs[:] = [Value(f"{node.name}_out{i}", t) for i, t in enumerate(types)]
    try:
        return opdef.macs(node)
    finally:
        node.outputs[:] = []


def _ir_dtype(np_dtype, where: str) -> DType:
    try:
        return DType.from_numpy(np_dtype)
    except TypeError:
        pass
    try:
        name = np.dtype(np_dtype).name
    except TypeError:  # onnx-graphsurgeon keeps ONNX codes it cannot map (bfloat16, float8...)
        name = onnx.TensorProto.DataType.Name(int(np_dtype)).lower() \
            if isinstance(np_dtype, int) else str(np_dtype)
    raise UnsupportedError(f"{where}: element type {name} is not supported")


def load_onnx(
    path: str | os.PathLike, input_shapes: dict[str, tuple[int, ...]] | None = None,
    limits: Limits | None = None,
) -> Graph:
    """Load an ONNX file into an IR graph (see `import_model`)."""
    model = load_model_proto(path, limits)
    stem = Path(path).stem
    return import_model(model, input_shapes, name=stem, limits=limits)
