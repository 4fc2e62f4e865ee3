"""Named graph passes, registered once, and the pass manager that runs a pipeline of them.

A pass is a function `Graph -> bool` (True when it changed the graph); a pass registered with
`takes_options=True` is called as `fn(graph, options)` with the pipeline's `PassOptions` (the
data it needs besides the graph, and where it reports back). Pipelines are lists of pass
names (data, chosen per target in edgec.targets). The manager can verify the IR after
every pass, dump the IR text after each pass, skip disabled passes, and on failure names the
failing pass and the passes that ran before it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from edgec.errors import EdgecError
from edgec.ir import Graph, print_graph

if TYPE_CHECKING:  # annotations only: the pass registry does not need the quant package
    from edgec.quant.config import QuantOptions

PassFn = Callable[..., bool]
_PASSES: dict[str, PassFn] = {}


@dataclass
class QuantRecord:
    """What the quantize pass did, written by the pass for its caller."""

    # per-layer records for report.json and `edgec report`
    layers: list[dict] = field(default_factory=list)
    # float value name -> name of the int8 value that replaced it (per-layer SNR, debug)
    value_map: dict[str, str] = field(default_factory=dict)
    # node name -> why it stays float32 (`edgec report`, report.json)
    float_reasons: dict[str, str] = field(default_factory=dict)


@dataclass
class PassOptions:
    """Pipeline data for the passes that take options (registered with takes_options=True).

    quant: what the quantize pass is told (static or dynamic, calibration, float layers);
    None leaves the graph float. quant_record: where the quantize pass writes what it did."""

    quant: QuantOptions | None = None
    quant_record: QuantRecord = field(default_factory=QuantRecord)


def register_pass(name: str, takes_options: bool = False):
    """Decorator registering a pass under `name`; a name can be registered only once.
    With `takes_options` the pass manager calls it as fn(graph, PassOptions)."""

    def wrap(fn: PassFn) -> PassFn:
        if name in _PASSES:
            raise ValueError(f"pass {name} is registered twice")
        _PASSES[name] = fn
        fn.pass_name = name
        fn.takes_options = takes_options
        return fn

    return wrap


def get_pass(name: str) -> PassFn:
    """The pass registered as `name` (EdgecError listing the known passes otherwise)."""
    try:
        return _PASSES[name]
    except KeyError:
        known = ", ".join(sorted(_PASSES))
        raise EdgecError(f"unknown pass '{name}' (known passes: {known})") from None


def all_passes() -> dict[str, PassFn]:
    """All registered passes by name."""
    return dict(sorted(_PASSES.items()))


class PassFailure(EdgecError):
    """A pass raised: the message names it and the passes that ran before it."""


@dataclass
class PassManager:
    """Runs a pipeline of named passes over a graph."""

    pipeline: list[str]
    verify_each: bool = False
    dump_dir: Path | None = None
    disabled: set[str] = field(default_factory=set)
    log: list[tuple[str, bool, float]] = field(default_factory=list)
    options: PassOptions = field(default_factory=PassOptions)

    def run(self, g: Graph) -> Graph:
        """Apply every enabled pass in order; returns the same (mutated) graph."""
        for name in self.disabled:
            get_pass(name)  # unknown names are an error, not silently ignored
        if self.dump_dir is not None:
            self.dump_dir.mkdir(parents=True, exist_ok=True)
            (self.dump_dir / "00-input.ir").write_text(print_graph(g))
        ran: list[str] = []
        for step, name in enumerate(self.pipeline, start=1):
            if name in self.disabled:
                continue
            fn = get_pass(name)
            t0 = time.perf_counter()
            try:
                changed = bool(fn(g, self.options) if fn.takes_options else fn(g))
                if self.verify_each:
                    g.verify()
            except EdgecError as e:
                if isinstance(e, PassFailure):
                    raise
                raise type(e)(f"{e} (in pass '{name}')") from None
            except Exception as e:  # a bug in a pass: say which, and what ran before
                before = ", ".join(ran) or "none"
                raise PassFailure(
                    f"pass '{name}' failed: {type(e).__name__}: {e} (passes run before: {before})"
                ) from e
            ran.append(name)
            self.log.append((name, changed, time.perf_counter() - t0))
            if self.dump_dir is not None:
                (self.dump_dir / f"{step:02d}-{name}.ir").write_text(print_graph(g))
        return g
