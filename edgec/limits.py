"""Resource limits of a compile, checked before anything is allocated or written.

A downloaded model can ask for anything: a 164-byte file whose ConstantOfShape folds to a
gigabyte-sized weight, an input of 1x3x100000x100000 whose arena no device has, a million
nodes. edgec refuses such models with one error line that names the limit and the flag that
raises it, instead of exhausting the host's memory or writing C no compiler can take.

Where each limit is checked (see docs/robustness.md):

- model file size (weights limit + 64 MiB): before the file is read;
- node count: before the graph is imported (frontend);
- tensor rank, per-tensor elements, per-tensor bytes: on every inferred type during import,
  before a constant is folded (activations against the arena limit, constants against the
  weights limit); the multiply-accumulates of constant folding, summed, likewise;
- arena bytes: after memory planning, before the C back-end runs;
- weights bytes and generated source bytes: estimated from the constants before the C is
  rendered, and the rendered text is measured again before anything is written.

The defaults live here and only here; `CompileOptions.limits` and the CLI's `--max-*` flags
override them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from edgec.errors import EdgecError
from edgec.ir.types import TensorType

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30

# Characters of C initializer text per element, by element size: "%#.9gf, " for floats,
# "INT64_C(...), " for int64, a short decimal for the small integer types.
_CHARS_PER_ELEMENT = {1: 6, 2: 8, 4: 18, 8: 32}


class LimitError(EdgecError):
    """The model needs more than a resource limit allows."""


@dataclass(frozen=True)
class Limits:
    """Upper bounds of one compile; every field has a `--max-...` CLI flag (see FLAGS)."""

    max_arena_bytes: int = 1 * GIB
    max_weights_bytes: int = 256 * MIB
    max_tensor_elements: int = 2**31 - 1  # the generated C indexes tensors with 32-bit ints
    max_nodes: int = 1_000_000
    max_source_bytes: int = 256 * MIB  # about 14M float weights of C initializer text
    max_rank: int = 32  # any rank compiles (the tensor table points at per-tensor shapes);
    # a cap keeps hostile models from asking for rank-10^6 shape tables
    max_fold_macs: int = 10**9  # work of constant folding at compile time, all ops together

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise LimitError(f"{FLAGS[f.name]} takes a positive integer, not {value!r}")


FLAGS = {
    "max_arena_bytes": "--max-arena-bytes",
    "max_weights_bytes": "--max-weights-bytes",
    "max_tensor_elements": "--max-tensor-elements",
    "max_nodes": "--max-nodes",
    "max_source_bytes": "--max-source-bytes",
    "max_rank": "--max-rank",
    "max_fold_macs": "--max-fold-macs",
}

HELP = {
    "max_arena_bytes": "largest memory-plan arena, and largest activation tensor",
    "max_weights_bytes": "largest total of constant data, and model file size less 64 MiB",
    "max_tensor_elements": "most elements of any one tensor",
    "max_nodes": "most nodes in the model",
    "max_source_bytes": "largest generated C (estimated before rendering)",
    "max_rank": "most dimensions of any tensor",
    "max_fold_macs": "most multiply-accumulates spent folding constants at compile time",
}

_SUFFIXES = {"": 1, "k": KIB, "kb": KIB, "kib": KIB, "m": MIB, "mb": MIB, "mib": MIB,
             "g": GIB, "gb": GIB, "gib": GIB, "b": 1}


def parse_size(text: str, flag: str) -> int:
    """`1073741824`, `512M`, `1G`, `64KiB` -> bytes (binary units); LimitError if malformed."""
    s = str(text).strip().lower().replace("_", "")
    digits = s.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = s[len(digits):].strip()
    try:
        value = int(digits) * _SUFFIXES[unit]
    except (ValueError, KeyError):
        raise LimitError(f"{flag} takes a size such as 1073741824, 512M or 2G, not "
                         f"'{text}'") from None
    if value <= 0:
        raise LimitError(f"{flag} takes a positive size, not '{text}'")
    return value


def human_bytes(n: int) -> str:
    """A byte count for messages: `1,073,741,824 B (1.0 GiB)`."""
    if n >= 1 << 70:  # absurd sizes from hostile shapes: keep the message one short line
        return f"{n:.3g} B"
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if n >= size:
            return f"{n:,} B ({n / size:.1f} {unit})"
    return f"{n:,} B"


def _exceeds(what: str, need: int, limit: int, field: str, unit_bytes: bool = True) -> LimitError:
    fmt = human_bytes if unit_bytes else (lambda x: f"{x:,}")
    return LimitError(f"{what} needs {fmt(need)}, more than the limit of {fmt(limit)}; "
                      f"raise it with {FLAGS[field]} if this is intended")


def check_node_count(count: int, limits: Limits) -> None:
    """LimitError when the model has more nodes than `limits.max_nodes`."""
    if count > limits.max_nodes:
        raise LimitError(f"the model has {count:,} nodes, more than the limit of "
                         f"{limits.max_nodes:,}; raise it with {FLAGS['max_nodes']} if this "
                         "is intended")


# A model file holds its weights plus the graph; more than this beyond the weights limit is
# refused before the file is read.
MODEL_FILE_SLACK = 64 * MIB


def check_model_file_size(size: int, limits: Limits) -> None:
    """LimitError when a model file is too large to hold weights within the limit."""
    if size > limits.max_weights_bytes + MODEL_FILE_SLACK:
        raise LimitError(f"the model file has {human_bytes(size)}, more than the weights limit "
                         f"of {human_bytes(limits.max_weights_bytes)} allows; raise it with "
                         f"{FLAGS['max_weights_bytes']} if this is intended")


def check_tensor(t: TensorType, what: str, limits: Limits, constant: bool) -> None:
    """Rank, element and byte limits of one tensor type, before any data is made for it.

    A constant must fit the weights limit, any other tensor the arena (it lives there).
    """
    if t.rank > limits.max_rank:
        raise LimitError(f"{what} has rank {t.rank}, more than the limit of {limits.max_rank} "
                         f"dimensions; raise it with {FLAGS['max_rank']} if this is intended")
    numel = t.numel
    if constant and numel * t.dtype.itemsize > limits.max_weights_bytes:
        raise _exceeds(f"{what} (constant {t})", numel * t.dtype.itemsize,
                       limits.max_weights_bytes, "max_weights_bytes")
    if not constant and numel * t.dtype.itemsize > limits.max_arena_bytes:
        raise _exceeds(f"{what} ({t})", numel * t.dtype.itemsize, limits.max_arena_bytes,
                       "max_arena_bytes")
    if numel > limits.max_tensor_elements:
        raise LimitError(f"{what} ({t}) has {numel:,} elements, more than the limit of "
                         f"{limits.max_tensor_elements:,}; raise it with "
                         f"{FLAGS['max_tensor_elements']} if this is intended")


def check_fold_macs(total_macs: int, what: str, limits: Limits) -> None:
    """LimitError when folding `what` to a constant brings the multiply-accumulates spent on
    constant folding to more than `limits.max_fold_macs` (checked before it runs)."""
    if total_macs > limits.max_fold_macs:
        raise LimitError(f"{what} folds to a constant at compile time, which brings constant "
                         f"folding to {total_macs:,} multiply-accumulates, more than the limit "
                         f"of {limits.max_fold_macs:,}; raise it with {FLAGS['max_fold_macs']} "
                         "if this is intended")


def check_arena(arena_bytes: int, limits: Limits) -> None:
    """LimitError when the planned arena is larger than `limits.max_arena_bytes`."""
    if arena_bytes > limits.max_arena_bytes:
        raise _exceeds("the memory plan's arena", arena_bytes, limits.max_arena_bytes,
                       "max_arena_bytes")


def estimate_source_bytes(constants) -> int:
    """Characters of C the constant arrays `constants` (numpy arrays) will take."""
    return sum(a.size * _CHARS_PER_ELEMENT.get(a.dtype.itemsize, 32) for a in constants)


def check_weights(constants, limits: Limits) -> None:
    """Weights and estimated source size of the arrays the C will hold, before rendering."""
    arrays = list(constants)
    total = sum(a.nbytes for a in arrays)
    if total > limits.max_weights_bytes:
        raise _exceeds("the model's constant data (weights)", total, limits.max_weights_bytes,
                       "max_weights_bytes")
    check_source_bytes(estimate_source_bytes(arrays), limits, estimated=True)


def check_source_bytes(size: int, limits: Limits, estimated: bool = False) -> None:
    """LimitError when the generated C is (or would be) larger than `max_source_bytes`."""
    if size > limits.max_source_bytes:
        what = "the generated C (estimated from the weights)" if estimated \
            else "the generated C"
        raise _exceeds(what, size, limits.max_source_bytes, "max_source_bytes")
