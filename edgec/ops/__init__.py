"""Operator registry. Importing this package registers every op module in it."""

import importlib
import pkgutil

from edgec.ir.graph import install_op_set
from edgec.ops.base import Attr, OpDef, PruneRule, QuantRule
from edgec.ops.registry import all_ops, get_op, has_op, register_op

_SKIP = {"base", "registry", "common", "epilogue"}

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _mod not in _SKIP:
        importlib.import_module(f"{__name__}.{_mod}")

install_op_set(get_op)  # the IR checks nodes against this registry (it imports no ops)

__all__ = ["Attr", "OpDef", "PruneRule", "QuantRule", "all_ops", "get_op", "has_op", "register_op"]
