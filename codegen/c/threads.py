"""Multi-threaded layers (`--threads N`): a layer's work items split over the pool's threads.

A kernel template that can be split counts its independent work items (output rows, pixel
blocks, or pixel-block x channel-panel pairs) through the `split` object it is rendered with:

    {{ split.work(ITEMS) }}           declares the item counter (once, before the loops)
    for (...) {
        {{ split.skip() }}            at the top of each item's loop body: other threads' items
                                      are skipped (`continue`)
    {{ split.when() }}{               or before a block that is one item

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


def param_name(param: str) -> str:
    """The identifier of a C parameter declaration such as `const float *restrict x0`."""
    return re.split(r"[\s*]+", param.strip())[-1]


def split_layer(fn: str, params: list[str], body: str, comment: str, items: int,
                layer_macro: str) -> tuple[str, str]:
    """(text before the layer function, the layer's new body) of a layer split into `items`
    work items: a `_part` function with the original body, an argument struct, the task the
    pool calls, and a body that runs the task over [0, items)."""
    names = [param_name(p) for p in params]
    members = "".join(f"    {p.replace('restrict ', '')};\n" for p in params)
    part_params = ", ".join(params + ["size_t work_begin", "size_t work_end"])
    indented = "\n".join(("    " + line) if line else line for line in body.splitlines())
    unpack = ", ".join([f"args->{n}" for n in names] + ["(size_t)begin", "(size_t)end"])
    before = (
        f"\n/* {comment}: work items [work_begin, work_end) of {items} */\n"
        f"static {layer_macro} void {fn}_part({part_params})\n{{\n{indented}\n}}\n"
        f"typedef struct {{\n{members}    int unused; /* C99: no empty structs */\n}} {fn}_args;\n"
        f"static void {fn}_task(void *ctx, int begin, int end)\n{{\n"
        f"    const {fn}_args *args = (const {fn}_args *)ctx;\n"
        f"    {fn}_part({unpack});\n}}\n")
    assigns = "".join(f"args.{n} = {n};\n" for n in names)
    new_body = (f"{fn}_args args;\n{assigns}args.unused = 0;\n"
                f"edgec_parallel_for({fn}_task, &args, {items});")
    return before, new_body
