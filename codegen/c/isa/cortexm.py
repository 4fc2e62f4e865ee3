"""Which int8 layers the Cortex-M kernels (codegen/c/runtime/edgec_cm_dsp.h, edgec_cm_mve.h)
can run, and with which template (codegen/c/templates/ops/cortexm/). The candidates in
codegen/c/kernels/cortexm.py ask `cortexm_template` for QConv and QGemm nodes on the Cortex-M
ISAs; a node it declines takes the portable kernel.

A layer qualifies when the target's isa is armv7em-dsp or armv8.1m-mve, its activations and
packed weights are int8, its requantisation is edgec's fixed point with one shift for the
layer (requant_attrs gives one whenever the channels' exponents are within 8 bits), and it
is a GEMM (QGemm, pointwise QConv), a depthwise QConv (channel multiplier 1; Helium only:
on M4/M7 the portable depthwise loop measured faster than edgec_cm_depthwise_s8) or a QConv
with group 1.
"""

from __future__ import annotations

KERNEL_ISAS = {"armv7em-dsp": "edgec_cm_dsp.h", "armv8.1m-mve": "edgec_cm_mve.h"}
TEMPLATES = {"gemm": "ops/cortexm/qgemm.c.j2", "pointwise": "ops/cortexm/qgemm.c.j2",
             "depthwise": "ops/cortexm/qconv_depthwise.c.j2",
             "general": "ops/cortexm/qconv.c.j2"}


def cortexm_template(node, target, p: dict) -> str | None:
    """The Cortex-M template for a QConv/QGemm node with template parameters `p`, or None."""
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
