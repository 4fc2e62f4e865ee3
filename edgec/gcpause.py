"""Pausing Python's cyclic garbage collector while a model compiles.

A full (generation 2) collection walks every live object, and a large model's IR is hundreds
of thousands of them (values, nodes, use tuples, attribute dicts), so the collections the
allocator triggers while the passes build and drop nodes cost a third of the compile time of
a 50,000-node graph and grow faster than the graph. The compiler breaks the reference cycles
it creates (removing a node clears its inputs and its outputs' producer), so reference
counting frees nearly everything without the collector; what is left is collected as usual
once the collector is back on. The import of a model always runs with the collector paused
(it builds the graph; the importer's own objects are collected afterwards); the compile of a
graph only when it has `LARGE_GRAPH_NODES` nodes or more: on small graphs with big weights
it saves nothing, and discarded copies of the weights would wait for the collector.
"""

from __future__ import annotations

import functools
import gc
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

LARGE_GRAPH_NODES = 1000
F = TypeVar("F", bound=Callable)


@contextmanager
def paused_gc(pause: bool = True) -> Iterator[None]:
    """Disable the cyclic collector for the block when `pause` (nestable; restores the
    previous state)."""
    was_enabled = gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def gc_paused_for_large_graphs(fn: F) -> F:
    """Decorator for functions whose first argument is a Graph: run them with the collector
    paused when the graph has at least LARGE_GRAPH_NODES nodes."""
    @functools.wraps(fn)
    def wrapper(g, *args, **kwargs):
        with paused_gc(len(g.nodes) >= LARGE_GRAPH_NODES):
            return fn(g, *args, **kwargs)
    return wrapper  # type: ignore[return-value]
