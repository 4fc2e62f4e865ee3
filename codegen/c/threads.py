"""Multi-threaded layers (`--threads N`): a layer's work items split over the pool's threads.

A kernel template that can be split counts its independent work items (output rows, pixel
blocks, or pixel-block x channel-panel pairs) through the `split` object it is rendered with:

    {{ split.work(ITEMS) }}           declares the item counter (once, before the loops)
    for (...) {
        {{ split.skip() }}            at the top of each item's loop body: other threads' items
                                      are skipped (`continue`)
    {{ split.when() }}{               or before a block that is one item
    {{ split.stream(W, BYTES) }}      (optional) item t reads bytes [t*BYTES, (t+1)*BYTES) of
                                      the constant W only: with `--weights external` a
                                      partition of the weights file may start inside W, and
                                      the layer enters it between two items (external_weights)

In a single-threaded build (`split.active` false) all three render nothing, so the C is
byte-identical to what the template gave before it learnt to split. In a threaded build the
layer's body becomes `LAYER_part(..., work_begin, work_end)`, which computes the items whose
index lies in [work_begin, work_end) with exactly the single-threaded code, and the layer
function calls `edgec_parallel_for` (codegen/c/runtime/edgec_pool.h) over [0, ITEMS). Every
output element is computed by one thread in the same order as with one thread, so int8 and
fp32 results are bit-identical to one thread for every thread count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise

# Runtime files a threaded library ships: the pool (and the OS helpers it pins threads with).
THREAD_HEADERS = ("edgec_pool.h", "edgec_os.h")
THREAD_SOURCES = ("edgec_pool.c", "edgec_os.c")
MAX_THREADS = 16  # EDGEC_POOL_MAX_THREADS in edgec_pool.h

_COUNTER = "edgec_work"
_MINE = f"{_COUNTER}++ - work_begin < work_end - work_begin"  # unsigned: wraps below begin


class WorkSplit:
    """The `split` object a kernel template sees (see the module docstring)."""

    def __init__(self, active: bool):
        self.active = active
        self.items = 0
        self.streams: list[tuple[str, int]] = []  # (constant, bytes per item)

    def work(self, items) -> str:
        """Declare the item counter of a layer with `items` independent work items (a layer
        of fewer than 2 items stays single-threaded)."""
        if not self.active or int(items) < 2:
            return ""
        self.items = int(items)
        return f"size_t {_COUNTER} = 0; /* work items: {self.items} */\n"

    def skip(self) -> str:
        """`continue` past an item another thread computes (top of the item's loop body)."""
        return f"if (!({_MINE})) continue;" if self.items else ""

    def when(self) -> str:
        """`if (...) ` guarding a block that is one item."""
        return f"if ({_MINE}) " if self.items else ""

    def stream(self, ident: str, item_bytes) -> str:
        """Record that item t reads bytes [t*item_bytes, (t+1)*item_bytes) of the constant
        `ident` only, in item order (renders nothing)."""
        if self.items:
            self.streams.append((str(ident), int(item_bytes)))
        return ""


def param_name(param: str) -> str:
    """The identifier of a C parameter declaration such as `const float *restrict x0`."""
    return re.split(r"[\s*]+", param.strip())[-1]


def split_layer(fn: str, params: list[str], body: str, comment: str, items: int,
                layer_macro: str, threaded: bool = True,
                enters: Sequence[tuple[int, str]] = ()) -> tuple[str, str]:
    """(text before the layer function, the layer's new body) of a layer split into `items`
    work items: a `_part` function with the original body and, when `threaded`, an argument
    struct, the task the pool calls, and a body that runs the task over [0, items).

    `enters` are (item, C statement) pairs, items increasing in 1..items-1: the statement (a
    weights partition entered) runs once every item before it has finished, so the body runs
    the items in segments [0, i1), [i1, i2), ... with the statements between them."""
    names = [param_name(p) for p in params]
    part_params = ", ".join(params + ["size_t work_begin", "size_t work_end"])
    indented = "\n".join(("    " + line) if line else line for line in body.splitlines())
    before = (f"\n/* {comment}: work items [work_begin, work_end) of {items} */\n"
              f"static {layer_macro} void {fn}_part({part_params})\n{{\n{indented}\n}}\n")
    bounds = [0] + [item for item, _ in enters] + [items]
    if not threaded:
        calls = []
        for seg, (begin, end) in enumerate(pairwise(bounds)):
            if seg:
                calls.append(enters[seg - 1][1])
            calls.append(f"{fn}_part({', '.join(names)}, {begin}u, {end}u);")
        return before, "\n".join(calls)
    members = "".join(f"    {p.replace('restrict ', '')};\n" for p in params)
    first = "args->first + " if enters else ""
    unpack = ", ".join([f"args->{n}" for n in names]
                       + [f"{first}(size_t)begin", f"{first}(size_t)end"])
    last = "    size_t first; /* the segment's first item */\n" if enters else \
        "    int unused; /* C99: no empty structs */\n"
    before += (
        f"typedef struct {{\n{members}{last}}} {fn}_args;\n"
        f"static void {fn}_task(void *ctx, int begin, int end)\n{{\n"
        f"    const {fn}_args *args = (const {fn}_args *)ctx;\n"
        f"    {fn}_part({unpack});\n}}\n")
    assigns = "".join(f"args.{n} = {n};\n" for n in names)
    if not enters:
        return before, (f"{fn}_args args;\n{assigns}args.unused = 0;\n"
                        f"edgec_parallel_for({fn}_task, &args, {items});")
    calls = [f"{fn}_args args;\n{assigns}".rstrip("\n")]
    for seg, (begin, end) in enumerate(pairwise(bounds)):
        if seg:
            calls.append(enters[seg - 1][1])
        calls.append(f"args.first = {begin}u;\nedgec_parallel_for({fn}_task, &args, {end - begin});")
    return before, "\n".join(calls)
