"""edgec IR -> a MIL Program (one function `main`), built with coremltools' MIL builder.

The graph comes from the CoreML pipeline (edgec/targets.py COREML_PIPELINE: the fp32
pipeline without layout-nhwc, so tensors stay channels-first as MIL wants them and no
Transpose is added). Each node is lowered by the table in registry.py (ops_nn, ops_tensor).
The deployment target is the lowest one the features used need (docs/coreml.md) unless the
user asks for a later one; an earlier one than needed is an error.
"""

from __future__ import annotations

from edgec.codegen.coreml import ops_logic, ops_nn, ops_tensor  # noqa: F401 (lowerings)
from edgec.codegen.coreml._ct import coremltools, mil
from edgec.codegen.coreml.int8 import INT8_FEATURE
from edgec.codegen.coreml.options import COREML_TARGETS
from edgec.codegen.coreml.registry import Ctx, identifier, lower_node
from edgec.codegen.coreml.w8a8 import INT8_ACTIVATIONS, qdq
from edgec.errors import ConstantInputRequired, EdgecError, UnsupportedError
from edgec.ir import Graph

# The lowest deployment target of ML Programs, and what needs more (coremltools opsets).
BASE_TARGET = "iOS15"
FEATURE_TARGETS = {INT8_FEATURE: "iOS16", INT8_ACTIVATIONS: "iOS17"}
TARGET_CHOICES = COREML_TARGETS


class CoreMLTargetError(EdgecError):
    """--coreml-target names an unknown or too early deployment target."""


def deployment_target(requested: str | None, needed: str):
    """The coremltools target enum: `requested` (checked) or the `needed` minimum."""
    ct = coremltools()
    if requested is None:
        return getattr(ct.target, needed)
    if requested not in TARGET_CHOICES:
        raise CoreMLTargetError(f"--coreml-target {requested!r} is not one of "
                                f"{', '.join(TARGET_CHOICES)}")
    want, need = getattr(ct.target, requested), getattr(ct.target, needed)
    if want < need:
        raise CoreMLTargetError(f"--coreml-target {requested} is too early for this model: "
                                f"it needs {needed} or later (int8 weights need iOS16, int8 "
                                "activations iOS17)")
    return want


def needed_target(int8_weights: bool, int8_activations: bool = False) -> str:
    """The lowest deployment target for the features the program will use."""
    if int8_activations:
        return FEATURE_TARGETS[INT8_ACTIVATIONS]
    return FEATURE_TARGETS[INT8_FEATURE] if int8_weights else BASE_TARGET


def public_names(g: Graph) -> tuple[list[str], list[str], dict[str, str]]:
    """Spec names of the inputs and outputs (model names made MIL identifiers, unique) and
    the IR value name -> spec name map of the lowering context."""
    in_names = g.meta.get("input_names") or [v.name for v in g.inputs]
    out_names = g.meta.get("output_names") or [v.name for v in g.outputs]
    used: set[str] = set()
    spec: list[str] = []
    for name in [*in_names, *out_names]:
        base = identifier(name)
        cand, i = base, 1
        while cand in used:
            cand, i = f"{base}_{i}", i + 1
        used.add(cand)
        spec.append(cand)
    mapping = {v.name: s for v, s in zip(g.inputs, spec)}
    for v, s in zip(g.outputs, spec[len(in_names):]):
        mapping.setdefault(v.name, s)
    return spec[:len(in_names)], spec[len(in_names):], mapping


def build_program(g: Graph, int8_weights: bool, opset, activation_params: dict | None = None
                  ) -> tuple[object, Ctx, list, list]:
    """The MIL Program of `g` at `opset`; also the context and the spec I/O names. With
    `activation_params` ({value: (scale, zero point)}), those values pass through int8
    quantize/dequantize (w8a8.py)."""
    act = activation_params or {}
    mb, types, Program, Function = mil()
    spec_in, spec_out, mapping = public_names(g)
    placeholders = {}
    for v, name in zip(g.inputs, spec_in):
        if not v.shape:  # CoreML inputs have rank >= 1: a scalar is bound as a constant
            raise ConstantInputRequired(f"CoreML back-end: input '{v.name}' is a scalar; CoreML "
                                        "inputs need rank >= 1 (make it a constant)", v.name)
        if not v.dtype.is_float or v.dtype.value != "float32":
            raise UnsupportedError(f"CoreML back-end: input '{v.name}' is {v.dtype.value}; "
                                   "only float32 inputs are supported")
        placeholders[name] = mb.placeholder(shape=tuple(int(d) for d in v.shape),
                                            dtype=types.fp32)
    prog = Program()
    with Function(placeholders, opset_version=opset) as func:
        inputs = {v.name for v in g.inputs}
        ctx = Ctx(g, mb, types, int8_weights,
                  {k: name for k, name in mapping.items() if k not in inputs},
                  reserved=set(spec_in) | set(spec_out))
        for v, name in zip(g.inputs, spec_in):
            var = func.inputs[name]
            ctx.bind(v, qdq(mb, var, *act[v.name], ctx.name(v, "_in")) if v.name in act else var)
        for node in g.nodes:
            lower_node(ctx, node)
            for v in node.outputs:
                if v is not None and v.name in act and v.name in ctx.vars:
                    ctx.bind(v, qdq(mb, ctx.vars[v.name], *act[v.name], ctx.name(v, "_a8")))
        outs = []
        for v, name in zip(g.outputs, spec_out):
            var = ctx.x(v)
            if getattr(var, "name", None) != name:  # an input, a constant or a repeat
                var = mb.identity(x=var, name=name)
            outs.append(var)
        func.set_outputs(outs)
        prog.add_function("main", func)
    return prog, ctx, spec_in, spec_out
