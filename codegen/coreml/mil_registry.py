"""The table of the numpy MIL evaluator (codegen/coreml/evaluate.py): op type -> kernel.
Kernel modules (evaluate_nn.py, evaluate_ops.py) register into it with `@evaluates`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

EVALUATORS: dict[str, Callable] = {}
F32 = np.float32


def evaluates(*op_types: str):
    """Register an evaluator `fn(get, op) -> array or list of arrays` for MIL op types."""
    def register(fn):
        for t in op_types:
            EVALUATORS[t] = fn
        return fn
    return register


def _f(a) -> np.ndarray:
    """`a` as a float32 array."""
    return np.asarray(a, F32)
