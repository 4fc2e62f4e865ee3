"""Cortex-M int8 kernels: QConv and QGemm on the DSP (ARMv7E-M: cortex-m4/m7) and Helium
(ARMv8.1-M: cortex-m55) ISAs, written for edgec in codegen/c/runtime/edgec_cm_*.h. Which
layers they take is codegen/c/isa/cortexm.py's rule; the others fall back to the portable
kernels, whose parameters these templates share (docs/cortex-m.md)."""

from __future__ import annotations

from edgec.codegen.c.isa.cortexm import cortexm_params, cortexm_template, runtime_headers
from edgec.codegen.c.kernel import Candidate, Kernel, NodeScratch, register_candidates
from edgec.codegen.c.kernels.quantized import portable_int8_params
from edgec.ir import Node

CORTEX_M = "cortex-m"


def _template(node: Node, target, scratch: NodeScratch) -> str | None:
    return scratch.once("cortexm", lambda: cortexm_template(
        node, target, portable_int8_params(node, scratch)))


def _build(node: Node, target, scratch: NodeScratch) -> Kernel:
    return Kernel(_template(node, target, scratch),
                  cortexm_params(node, target, portable_int8_params(node, scratch)),
                  runtime_headers(target))


def _accepts(node: Node, target, scratch: NodeScratch) -> bool:
    return _template(node, target, scratch) is not None


register_candidates(("QConv", "QGemm"), CORTEX_M, [Candidate("cortexm-int8", _build, _accepts)])
