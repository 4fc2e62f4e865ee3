"""Which int8 layers the Cortex-M kernels (codegen/c/runtime/edgec_cm_dsp.h, edgec_cm_mve.h)
can run, with which template (codegen/c/templates/ops/cortexm/): the candidate list that
kernel selection will hold for the Cortex-M ISAs once `codegen/c/select.py` exists (issue
13). Until then `cortexm_kernels()` routes QConv and QGemm to them by patching the two op
classes' template and runtime facets for the duration of a `with` block: the tests and
tools/cortexm_bench.py use it to check the kernels bit-exact inside whole models and to
measure them; normal compiles are unchanged.

A layer qualifies when the target's isa is armv7em-dsp or armv8.1m-mve, its activations and
packed weights are int8, its requantisation is edgec's fixed point with one shift for the
layer (requant_attrs gives one whenever the channels' exponents are within 8 bits), and it
is a GEMM (QGemm, pointwise QConv), a depthwise QConv (channel multiplier 1; Helium only:
on M4/M7 the portable depthwise loop measured faster than edgec_cm_depthwise_s8) or a QConv
with group 1.
"""

from __future__ import annotations

from contextlib import contextmanager

from edgec.ops import get_op

KERNEL_ISAS = {"armv7em-dsp": "edgec_cm_dsp.h", "armv8.1m-mve": "edgec_cm_mve.h"}
TEMPLATES = {"gemm": "ops/cortexm/qgemm.c.j2", "pointwise": "ops/cortexm/qgemm.c.j2",
             "depthwise": "ops/cortexm/qconv_depthwise.c.j2",
             "general": "ops/cortexm/qconv.c.j2"}


def cortexm_template(node, target, p: dict) -> str | None:
    """The Cortex-M template for a QConv/QGemm node with c_params `p`, or None."""
    if getattr(target, "isa", "") not in KERNEL_ISAS:
        return None
    if p.get("rq_kind") != "fixed" or "rq_shift" in p or p.get("x_ctype") != "int8_t" \
            or p.get("w_ctype") != "int8_t":
        return None
    if node.op == "QGemm":
        return TEMPLATES["gemm"]
    kind = p.get("kind")
    if kind == "general" and p.get("G") != 1:
        return None
    if kind == "depthwise" and target.isa == "armv7em-dsp":
        return None  # the portable depthwise loop is faster on M4/M7 today (docs/cortex-m.md)
    return TEMPLATES.get(kind)


def runtime_headers(target) -> tuple[str, ...]:
    """Runtime headers a Cortex-M kernel call needs (copied next to the generated C)."""
    return ("edgec_qmath.h", "edgec_cm_requant.h", KERNEL_ISAS[target.isa])


@contextmanager
def cortexm_kernels():
    """Within the block, int8 QConv/QGemm layers on Cortex-M DSP/Helium targets use the
    edgec_cm kernels (module docstring)."""
    classes = [type(get_op("QConv")), type(get_op("QGemm"))]
    saved = [(cls, cls.c_template_for, cls.c_runtime_for) for cls in classes]

    def patch(cls, template_for, runtime_for):
        def c_template_for(self, node, target):
            chosen = cortexm_template(node, target, self.c_params(node, target))
            return chosen or template_for(self, node, target)

        def c_runtime_for(self, node, target):
            if cortexm_template(node, target, self.c_params(node, target)):
                return runtime_headers(target)
            return runtime_for(self, node, target)

        cls.c_template_for, cls.c_runtime_for = c_template_for, c_runtime_for

    try:
        for cls, template_for, runtime_for in saved:
            patch(cls, template_for, runtime_for)
        yield
    finally:
        for cls, template_for, runtime_for in saved:
            cls.c_template_for, cls.c_runtime_for = template_for, runtime_for
