"""Kernel selection: `select(node, target) -> Kernel`, once per node.

How an op becomes C. Each op's kernel family (a module under codegen/c/kernels/, one per op
family: conv, gemm, quantized, pool, reduce, copy ...) registers ordered `Candidate`s per ISA
family (`x86`, `arm64`) and a `portable` list. `select`:

  1. runs the op's guard, if any (refuses nodes no C kernel of the op handles);
  2. walks the preferred candidates (every target; e.g. CSR weights, kernels/sparse.py), the
     target's ISA candidates, then the portable ones;
  3. the first candidate whose `accepts(node, target, scratch)` is true builds the Kernel:
     template name, template params (weights packed for that kernel), runtime files.

Predicates and builders share a per-node `NodeScratch`, so work both need (the portable
weight packing an ISA predicate inspects) is done once. The back-end calls `select` once
per node and keeps the Kernel: weights are packed once.

Adding an ISA (e.g. `cortex-m`) means a new ISA family name in kernel.ISA_FAMILIES, a
module registering candidate lists for it, and its templates; no op and no existing family
changes. ISA helper code (packers, kernel shape rules) lives under codegen/c/isa/.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgec.errors import UnsupportedError
from edgec.ir import Node
from edgec.codegen.c import kernels  # noqa: F401  (registers every kernel family)
from edgec.codegen.c.kernel import Kernel, NodeScratch, candidates_for, guard_for


def select(node: Node, target, options: Mapping[str, Any] | None = None) -> Kernel:
    """The kernel that emits `node` for `target`; UnsupportedError when none accepts it.
    `options` (e.g. `sparse_weights`, kernels/sparse.py) seed the candidates' scratch."""
    guard = guard_for(node.op)
    if guard is not None:
        guard(node)
    scratch = NodeScratch(options or {})
    for candidate in candidates_for(node.op, target):
        if candidate.accepts(node, target, scratch):
            return candidate.build(node, target, scratch)
    raise UnsupportedError(f"{node.op} node '{node.name}' has no C implementation")
