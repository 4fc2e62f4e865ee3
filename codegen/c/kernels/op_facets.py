"""Transitional family: ops whose C lowering still sits on the op class (`c_template_for`,
`c_params`, `c_runtime_for`; today the elementwise family: the `c_expr` of ~60 ops in
edgec/ops/elementwise.py, logic.py, clip.py and Cast). Each is asked once per node; a family
moved to codegen/c registers its own candidates and drops out of this list."""

from __future__ import annotations

from edgec.ir import Node
from edgec.ops import all_ops, get_op
from edgec.ops.base import OpDef
from edgec.codegen.c.kernel import PORTABLE, Candidate, Kernel, NodeScratch, has_kernels, \
    register_candidates


def _from_op_facets(node: Node, target, scratch: NodeScratch) -> Kernel:
    opdef = get_op(node.op)
    # The template first: c_template_for refuses nodes a kernel cannot handle (3-D, NCHW)
    # before c_params has to make sense of them.
    template = opdef.c_template_for(node, target)
    params = opdef.c_params(node, target)
    return Kernel(template, params, opdef.c_runtime_for(node, target))


def _has_c_facet(opdef) -> bool:
    return getattr(opdef, "c_template", None) is not None or \
        type(opdef).c_template_for is not OpDef.c_template_for


def register_remaining() -> None:
    """Register the op-facet candidate for every op with a C facet no other family lowers."""
    for name, opdef in all_ops().items():
        if not has_kernels(name) and _has_c_facet(opdef):
            register_candidates(name, PORTABLE, [Candidate("op-facets", _from_op_facets)])
