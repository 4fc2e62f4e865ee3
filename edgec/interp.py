"""Reference interpreter: runs an IR graph with each op's numpy `reference` facet.

It is the definition of what a compiled model must compute (fp32 within tolerance; int8
bit for bit), and it powers `edgec run`, constant folding and calibration.

Quantized graphs run under `edgec.detmath.deterministic_math`: the float islands between
their int8 layers (a Softmax, a Sigmoid kept float) call exp/log/tanh through IEEE-exact
float64 code instead of numpy's SIMD dispatch, so the reference bits of an int8 model, and
the golden outputs recorded from them, do not depend on the host's CPU.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from edgec.detmath import deterministic_math
from edgec.errors import DataError
from edgec.ir import Graph
from edgec.ops import get_op


def check_inputs(g: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Validate and convert user inputs (by graph input name) to the graph's types."""
    out = {}
    for v in g.inputs:
        if v.name not in feeds:
            raise DataError(
                f"input '{v.name}' is missing from the given inputs "
                f"(given: {', '.join(sorted(feeds)) or 'none'})"
            )
        arr = np.asarray(feeds[v.name])
        if tuple(arr.shape) != v.shape:
            raise DataError(
                f"input '{v.name}' has shape {'x'.join(map(str, arr.shape))} but the model "
                f"expects {'x'.join(map(str, v.shape))}"
            )
        # np.array, not np.ascontiguousarray: the latter turns a scalar into shape (1,).
        out[v.name] = np.array(arr, dtype=v.dtype.np, order="C")
    return out


def run_graph(
    g: Graph,
    feeds: dict[str, np.ndarray],
    observer: Callable[[str, np.ndarray], None] | None = None,
    keep_all: bool = False,
) -> dict[str, np.ndarray]:
    """Execute `g`; returns outputs by public output name (every value with `keep_all`).

    `observer(value_name, array)` is called for every node output (calibration, per-layer
    debugging).
    """
    if g.meta.get("quantized"):
        with deterministic_math():
            env = execute(g, dict(check_inputs(g, feeds)), observer=observer,
                          keep_all=keep_all)
    else:
        env = execute(g, dict(check_inputs(g, feeds)), observer=observer, keep_all=keep_all)
    if keep_all:
        return env
    names = g.meta.get("output_names") or [v.name for v in g.outputs]
    return {name: env[v.name] for name, v in zip(names, g.outputs)}


def reference_kernel(node, args: list) -> tuple:
    """Run one node with its registry `reference` facet."""
    return get_op(node.op).reference(node, *args)


def execute(
    g: Graph,
    env: dict[str, np.ndarray],
    observer: Callable[[str, np.ndarray], None] | None = None,
    keep_all: bool = False,
    kernel: Callable = reference_kernel,
) -> dict[str, np.ndarray]:
    """The interpreter loop over `g.nodes` from an environment holding the graph inputs (by
    value name). `kernel(node, args)` computes a node's outputs (the registry reference by
    default; calibration passes faster float kernels). Values are dropped once their last
    reader ran, unless `keep_all`; returns the environment (graph outputs at least).
    """
    remaining: dict[str, int] = {}
    if not keep_all:
        for node in g.nodes:
            for v in node.inputs:
                if v is not None and not v.is_const:
                    remaining[v.name] = remaining.get(v.name, 0) + 1
    out_names = {v.name for v in g.outputs}
    for node in g.nodes:
        args = [None if v is None else (v.data if v.is_const else env[v.name]) for v in node.inputs]
        results = kernel(node, args)
        for v, r in zip(node.outputs, results):
            arr = np.asarray(r)
            if arr.shape != v.shape or arr.dtype != v.dtype.np:
                arr = arr.astype(v.dtype.np).reshape(v.shape)
            env[v.name] = arr
            if observer is not None:
                observer(v.name, arr)
        if not keep_all:
            for v in node.inputs:
                if v is not None and not v.is_const:
                    remaining[v.name] -= 1
                    if remaining[v.name] == 0 and v.name not in out_names:
                        env.pop(v.name, None)
    return env
