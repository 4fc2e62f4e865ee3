"""Graph passes and analyses (installed as edgec.passes). One pass per module.

Importing this package registers every pass module in it.
"""

import importlib
import pkgutil

from edgec.passes.registry import (
    PassFailure,
    PassManager,
    PassOptions,
    QuantRecord,
    all_passes,
    get_pass,
    register_pass,
)

_SKIP = {"registry"}

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _mod not in _SKIP and not _mod.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod}")

__all__ = ["PassFailure", "PassManager", "PassOptions", "QuantRecord", "all_passes",
           "get_pass", "register_pass"]
