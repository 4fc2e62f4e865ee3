"""Kernel families of the C back-end, one module per op family; importing this package
registers them all (see codegen/c/select.py for the mechanism)."""

import importlib
import pkgutil

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")
