"""What the C back-end emits for one node (`Kernel`) and the table of kernel candidates.

A kernel family (a module under codegen/c/kernels/) registers, per op name, an ordered list
of `Candidate`s for each ISA family (`x86`, `arm64`, `cortex-m`) and a `portable` list
that every target falls back to. `codegen/c/select.py` walks the target's list, then the
portable one; the first candidate whose `accepts` is true builds the node's Kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np

from edgec.ir import Node
from edgec.ops import get_op

PORTABLE = "portable"
# Candidates tried on every target before its ISA's own (e.g. sparse weights, kernels/sparse.py).
PREFERRED = "preferred"
# Target.isa prefix -> the ISA family whose candidates apply (others: portable only).
ISA_FAMILIES = {"x86_64": "x86", "arm64": "arm64", "armv7em": "cortex-m",
                "armv8.1m": "cortex-m"}


@dataclass
class ConstArray:
    """A compile-time array a kernel wants emitted as a const global (e.g. weights packed for
    it); the template sees its C name. `hint` seeds that name."""

    data: np.ndarray
    hint: str = "k"


@dataclass(frozen=True)
class Kernel:
    """The lowering of one node: the Jinja template that renders its body, the values the
    template reads as `p` (`ConstArray` values become const globals), and the runtime files
    (codegen/c/runtime) the generated C must ship."""

    template: str
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    runtime: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "runtime", tuple(self.runtime))


class NodeScratch(dict):
    """Values a node's candidates share during one selection (e.g. the portable weight
    packing an ISA predicate inspects and its builder reuses): computed once per node."""

    def once(self, key: str, compute: Callable[[], Any]) -> Any:
        """`compute()` the first time `key` is asked for, the stored value afterwards."""
        if key not in self:
            self[key] = compute()
        return self[key]


def _always(node: Node, target, scratch: NodeScratch) -> bool:
    return True


@dataclass(frozen=True)
class Candidate:
    """One kernel an op may lower to: `build` makes its Kernel when `accepts` the node."""

    name: str
    build: Callable[[Node, Any, NodeScratch], Kernel]
    accepts: Callable[[Node, Any, NodeScratch], bool] = _always


_CANDIDATES: dict[tuple[str, str], tuple[Candidate, ...]] = {}
_GUARDS: dict[str, Callable[[Node], None]] = {}


def register_candidates(op_names, isa: str, candidates) -> None:
    """Give every op in `op_names` the ordered `candidates` for ISA family `isa` (or
    `PORTABLE`); registering an (op, isa) pair twice is an error."""
    for op in (op_names,) if isinstance(op_names, str) else op_names:
        if (op, isa) in _CANDIDATES:
            raise ValueError(f"C kernels for {op} on {isa} are registered twice")
        _CANDIDATES[(op, isa)] = tuple(candidates)


def register_guard(op_names, guard: Callable[[Node], None]) -> None:
    """A check run before any candidate of the ops: raises UnsupportedError for nodes no C
    kernel of the op handles (so no predicate has to make sense of them)."""
    for op in (op_names,) if isinstance(op_names, str) else op_names:
        _GUARDS[op] = guard


def isa_family(target) -> str | None:
    """The ISA family of `target` (`x86`, `arm64`, `cortex-m`), or None for portable-only
    targets."""
    isa = getattr(target, "isa", None) or ""
    return ISA_FAMILIES.get(isa.split("-")[0])


def candidates_for(op: str, target) -> tuple[Candidate, ...]:
    """The candidates tried for `op` on `target`, in order: the preferred ones (every target),
    the ISA family's, then portable."""
    family = isa_family(target)
    isa_list = _CANDIDATES.get((op, family), ()) if family else ()
    return _CANDIDATES.get((op, PREFERRED), ()) + isa_list + _CANDIDATES.get((op, PORTABLE), ())


def guard_for(op: str) -> Callable[[Node], None] | None:
    """The op's guard (see register_guard), None when it has none."""
    return _GUARDS.get(op)


_COMPOSITES: set[str] = set()


def register_composite(op: str) -> None:
    """Declare `op` a composite the back-end renders from its parts' own kernels rather than
    through candidates (RowBands: codegen/c/row_bands.py)."""
    _COMPOSITES.add(op)


def has_kernels(op: str) -> bool:
    """True when some C kernel is registered for `op` (or it is a registered composite)."""
    return (op, PORTABLE) in _CANDIDATES or op in _COMPOSITES


def op_lowering(template, params=None) -> Candidate:
    """A portable candidate built from a lowering written against the op's registry entry:
    `template` is a template name or a function (op, node, target) choosing one (and refusing
    nodes no kernel handles, before the parameters have to make sense of them); `params` a
    function (op, node, target) -> dict, or None when the template needs none."""
    def build(node: Node, target, scratch: NodeScratch) -> Kernel:
        op = get_op(node.op)
        name = template(op, node, target) if callable(template) else template
        return Kernel(name, params(op, node, target) if params else {})

    return Candidate(getattr(template, "__name__", str(template)), build)
