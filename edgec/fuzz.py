"""A seeded fuzzer of `edgec compile`: mutated models must give exit 0 with a complete output
folder, or exit 2 with exactly one `edgec: error:` line; never an internal error (exit 3),
a traceback, a hang or a half-written folder.

Models come from a few seeds (two zoo models and tiny onnx.helper graphs) and are mutated two
ways. Structure-aware: dims of inputs, outputs and initializers, attribute values and types,
op types, tensor names, initializer data and sizes, element types, node order and count,
the opset. Byte-level: bit flips, truncation and inserted bytes in the serialized protobuf.
Case `i` of seed `s` is a pure function of (s, i), so every failure is reproducible with
`tools/fuzz.py --seed S --start I --cases 1 --keep DIR`.

Used by tests/test_fuzz.py (a few hundred cases) and tools/fuzz.py (as many as wanted).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from edgec import cli

ZOO_SEEDS = ("digits_cnn.onnx", "dscnn.onnx")
# Ops the mutator swaps in: a mix of supported ops of every arity, and a few edgec lacks.
OP_POOL = ("Relu", "Add", "Mul", "Conv", "MaxPool", "AveragePool", "GlobalAveragePool",
           "Reshape", "Flatten", "Gemm", "MatMul", "Softmax", "Transpose", "Concat", "Slice",
           "Gather", "Expand", "Tile", "ConstantOfShape", "Range", "ReduceMean", "Squeeze",
           "Unsqueeze", "Pad", "Resize", "Sigmoid", "Clip", "Split", "Cast", "Shape", "Div",
           "Sub", "Where", "BatchNormalization", "Identity", "Loop", "NoSuchOp", "")
INT_VALUES = (0, 1, 2, 3, -1, -2, 7, 64, 100000, 2**31 - 1, 2**31, 2**62, -(2**62))
ELEM_TYPES = (TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32, TensorProto.INT8,
              TensorProto.UINT8, TensorProto.BOOL, TensorProto.FLOAT16, TensorProto.DOUBLE,
              TensorProto.STRING, TensorProto.BFLOAT16, TensorProto.COMPLEX64, 0, 99)
NAMES = ("", "x", "y", "w", "a\nedgec: error: forged", "*/ int z; /*", "\x1b[31mred",
         "stdint", "../../etc/passwd", "ü" * 300, "0bad", "a" * 5000)


class CaseTimeout(BaseException):
    """A case ran past its time budget (a hang, for the fuzzer's purposes)."""


@dataclass
class Outcome:
    """What one case did: kind is ok, error, internal, traceback, lines, partial or hang."""

    kind: str
    code: int | None
    stderr: str
    seconds: float
    mutation: str = ""

    @property
    def bad(self) -> bool:
        """True when the case broke the contract (see the module doc)."""
        return self.kind not in ("ok", "error")


@dataclass
class Stats:
    """Counts of outcomes over a run, and the bad cases kept for the report."""

    counts: dict = field(default_factory=dict)
    bad: list = field(default_factory=list)
    seconds: float = 0.0

    def add(self, index: int, outcome: Outcome) -> None:
        """Count one case; remember it if it was bad."""
        self.counts[outcome.kind] = self.counts.get(outcome.kind, 0) + 1
        self.seconds += outcome.seconds
        if outcome.bad:
            self.bad.append((index, outcome))


# ----------------------------------------------------------------------------- seed models
def _tiny(nodes, inputs, outputs, inits=None, opset=17) -> onnx.ModelProto:
    ins = [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs]
    outs = [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs]
    inits = [numpy_helper.from_array(np.asarray(a), n) for n, a in (inits or {}).items()]
    model = helper.make_model(helper.make_graph(nodes, "fuzz", ins, outs, inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def tiny_models() -> list[onnx.ModelProto]:
    """Small valid models covering shape arithmetic, folding and the common layers."""
    F, I64 = TensorProto.FLOAT, TensorProto.INT64
    x4 = [("x", F, [1, 3, 8, 8])]
    return [
        _tiny([helper.make_node("Relu", ["x"], ["y"])], [("x", F, [2, 3])], [("y", F, [2, 3])]),
        _tiny([helper.make_node("Add", ["x", "w"], ["y"])], [("x", F, [2, 3])],
              [("y", F, [2, 3])], {"w": np.ones((1, 3), np.float32)}),
        _tiny([helper.make_node("Reshape", ["x", "s"], ["y"])], [("x", F, [2, 3])],
              [("y", F, [3, 2])], {"s": np.array([3, 2], np.int64)}),
        _tiny([helper.make_node("ConstantOfShape", ["s"], ["c"],
                                value=helper.make_tensor("v", F, [1], [1.0])),
               helper.make_node("Add", ["x", "c"], ["y"])], [("x", F, [2, 3])],
              [("y", F, [2, 3])], {"s": np.array([2, 3], np.int64)}),
        _tiny([helper.make_node("Expand", ["x", "s"], ["y"])], [("x", F, [1, 3])],
              [("y", F, [4, 3])], {"s": np.array([4, 3], np.int64)}),
        _tiny([helper.make_node("Range", ["a", "b", "d"], ["r"]),
               helper.make_node("Cast", ["r"], ["rf"], to=F),
               helper.make_node("Add", ["x", "rf"], ["y"])], [("x", F, [5])], [("y", F, [5])],
              {"a": np.array(0, np.int64), "b": np.array(5, np.int64),
               "d": np.array(1, np.int64)}),
        _tiny([helper.make_node("Tile", ["x", "r"], ["y"])], [("x", F, [2, 3])],
              [("y", F, [4, 3])], {"r": np.array([2, 1], np.int64)}),
        _tiny([helper.make_node("Conv", ["x", "w"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1]),
               helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
               helper.make_node("GlobalAveragePool", ["p"], ["y"])], x4,
              [("y", F, [1, 4, 1, 1])], {"w": np.ones((4, 3, 3, 3), np.float32)}),
        _tiny([helper.make_node("MatMul", ["x", "w"], ["m"]),
               helper.make_node("Softmax", ["m"], ["y"], axis=-1)], [("x", F, [2, 4])],
              [("y", F, [2, 5])], {"w": np.ones((4, 5), np.float32)}),
        _tiny([helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
               helper.make_node("Slice", ["t", "st", "en"], ["s"]),
               helper.make_node("Concat", ["s", "s"], ["y"], axis=0)], [("x", F, [2, 3])],
              [("y", F, [4, 2])], {"st": np.array([1], np.int64), "en": np.array([3], np.int64)}),
        _tiny([helper.make_node("Gather", ["x", "i"], ["g"], axis=1),
               helper.make_node("ReduceMean", ["g"], ["y"], axes=[1], keepdims=0)],
              [("x", F, [2, 5])], [("y", F, [2])], {"i": np.array([0, 4, 2], np.int64)},
              opset=13),
        _tiny([helper.make_node("Shape", ["x"], ["s"]),
               helper.make_node("Reshape", ["x", "s"], ["y"])], [("x", F, [2, 3])],
              [("y", F, [2, 3])]),
        _tiny([helper.make_node("Relu", ["x"], ["y"])], [("x", F, [])], [("y", F, [])]),
        _tiny([helper.make_node("Cast", ["x"], ["y"], to=I64)], [("x", F, [3])],
              [("y", I64, [3])]),
    ]


def seed_models(zoo_dir: Path) -> list[bytes]:
    """Serialized seed models: the zoo models found in `zoo_dir`, then the tiny ones."""
    seeds = [(zoo_dir / name).read_bytes() for name in ZOO_SEEDS if (zoo_dir / name).exists()]
    return seeds + [m.SerializeToString() for m in tiny_models()]


# ----------------------------------------------------------------------------- mutators
def _pick_int(rng: random.Random) -> int:
    return rng.choice(INT_VALUES) if rng.random() < 0.7 else rng.randint(-3, 40)


def _mutate_dims(m: onnx.ModelProto, rng: random.Random) -> str:
    vis = list(m.graph.input) + list(m.graph.output) + list(m.graph.value_info)
    if rng.random() < 0.4 and m.graph.initializer:
        t = rng.choice(m.graph.initializer)
        i = rng.randrange(len(t.dims) + 1)
        if i < len(t.dims):
            t.dims[i] = abs(_pick_int(rng))
        else:
            t.dims.append(rng.choice((1, 2, 3)))
        return f"initializer {t.name!r} dims -> {list(t.dims)}"
    if not vis:
        return "no dims"
    vi = rng.choice(vis)
    shape = vi.type.tensor_type.shape
    choice = rng.random()
    if choice < 0.15:
        shape.dim.add().dim_value = rng.choice((1, 2, 3))
    elif choice < 0.3 and shape.dim:
        del shape.dim[rng.randrange(len(shape.dim))]
    elif choice < 0.4:
        vi.type.tensor_type.ClearField("shape")
    elif shape.dim:
        d = shape.dim[rng.randrange(len(shape.dim))]
        if rng.random() < 0.2:
            d.dim_param = rng.choice(("N", "batch", ""))
        else:
            d.dim_value = _pick_int(rng)
    return f"value {vi.name!r} shape mutated"


def _mutate_attribute(m: onnx.ModelProto, rng: random.Random) -> str:
    nodes = [n for n in m.graph.node if n.attribute] or list(m.graph.node)
    if not nodes:
        return "no nodes"
    n = rng.choice(nodes)
    if not n.attribute or rng.random() < 0.15:
        name = rng.choice(("strides", "pads", "axis", "perm", "group", "kernel_shape", "to",
                           "keepdims", "alpha", "mode", "bogus"))
        n.attribute.append(helper.make_attribute(name, rng.choice(
            ([_pick_int(rng)] * rng.randint(1, 5), _pick_int(rng), 0.5, "x"))))
        return f"{n.op_type} gains attribute {name}"
    a = rng.choice(n.attribute)
    r = rng.random()
    if r < 0.15:
        n.attribute.remove(a)
        return f"{n.op_type} loses attribute {a.name}"
    if r < 0.3:  # another type under the same name
        new = helper.make_attribute(a.name, rng.choice((1.5, "abc", [1, 2], [0.5], 3)))
        a.CopyFrom(new)
        return f"{n.op_type} attribute {a.name} changes type"
    if a.type == AttributeProto.INT:
        a.i = _pick_int(rng)
    elif a.type == AttributeProto.INTS:
        vals = list(a.ints) or [1]
        if rng.random() < 0.3:
            vals = vals[: rng.randrange(len(vals) + 1)] + [_pick_int(rng)] * rng.randint(0, 2)
        else:
            vals[rng.randrange(len(vals))] = _pick_int(rng)
        del a.ints[:]
        a.ints.extend(vals)
    elif a.type == AttributeProto.FLOAT:
        a.f = rng.choice((0.0, -1.0, 1e30, float("nan"), float("inf"), 2.5))
    elif a.type == AttributeProto.STRING:
        a.s = rng.choice((b"", b"SAME_UPPER", b"VALID", b"NHWC", b"garbage", b"\xff\xfe"))
    elif a.type == AttributeProto.TENSOR:
        _mutate_tensor(a.t, rng)
    return f"{n.op_type} attribute {a.name} value"


def _mutate_tensor(t: TensorProto, rng: random.Random) -> None:
    r = rng.random()
    if r < 0.3 and t.raw_data:
        cut = rng.randrange(len(t.raw_data) + 1)
        t.raw_data = t.raw_data[:cut]
    elif r < 0.5:
        t.data_type = rng.choice(ELEM_TYPES)
    elif r < 0.75:
        shape = tuple(rng.choice((0, 1, 2, 3, 5)) for _ in range(rng.randint(0, 4)))
        dtype = rng.choice((np.float32, np.int64, np.int32, np.int8, np.bool_))
        arr = np.asarray(np.random.default_rng(rng.randrange(2**32)).integers(-3, 4, shape),
                         dtype=dtype)
        t.CopyFrom(numpy_helper.from_array(arr, t.name))
    else:
        special = rng.choice((np.nan, np.inf, -np.inf, 1e-42, 3e38, 0.0))
        arr = np.full(tuple(t.dims), special, np.float32) if 0 < np.prod(t.dims) <= 1 << 16 \
            else np.array([special], np.float32)
        t.CopyFrom(numpy_helper.from_array(arr, t.name))


def _mutate_initializer(m: onnx.ModelProto, rng: random.Random) -> str:
    if not m.graph.initializer or rng.random() < 0.1:
        t = numpy_helper.from_array(np.ones(rng.choice(((2,), (3, 3), ())), np.float32),
                                    rng.choice([n.name for n in m.graph.initializer] or ["w"]))
        m.graph.initializer.append(t)
        return f"extra initializer {t.name!r}"
    t = rng.choice(m.graph.initializer)
    if rng.random() < 0.15:
        _make_external(t, rng)
        return f"initializer {t.name!r} moved to external data"
    _mutate_tensor(t, rng)
    return f"initializer {t.name!r} data"


def _make_external(t: TensorProto, rng: random.Random) -> None:
    """Point a tensor at external data: missing files, paths leaving the folder, the model
    file itself, odd offsets and lengths."""
    t.ClearField("raw_data")
    for name in ("float_data", "int32_data", "int64_data", "double_data"):
        t.ClearField(name)
    t.data_location = TensorProto.EXTERNAL
    del t.external_data[:]
    entries = {"location": rng.choice(("fuzzed.onnx", "missing.bin", "../fuzzed.onnx",
                                       "/etc/hostname", "", "out", "a/../fuzzed.onnx"))}
    if rng.random() < 0.7:
        entries["offset"] = str(rng.choice((0, 1, 7, 4096, -1, 2**40)))
    if rng.random() < 0.7:
        entries["length"] = str(rng.choice((0, 4, 16, 64, -8, 2**40, "x")))
    for key, value in entries.items():
        entry = t.external_data.add()
        entry.key, entry.value = key, value


def _mutate_op_type(m: onnx.ModelProto, rng: random.Random) -> str:
    if not m.graph.node:
        return "no nodes"
    n = rng.choice(m.graph.node)
    old, n.op_type = n.op_type, rng.choice(OP_POOL)
    if rng.random() < 0.1:
        n.domain = rng.choice(("com.microsoft", "ai.onnx.ml", "custom"))
    return f"{old} -> {n.op_type}"


def _all_names(m: onnx.ModelProto) -> list[str]:
    names = [v.name for v in m.graph.input] + [t.name for t in m.graph.initializer]
    return names + [o for n in m.graph.node for o in n.output]


def _mutate_name(m: onnx.ModelProto, rng: random.Random) -> str:
    names = _all_names(m)
    r = rng.random()
    pool = names + list(NAMES)
    if r < 0.5 and m.graph.node:
        n = rng.choice(m.graph.node)
        slots = n.input if (rng.random() < 0.6 and n.input) or not n.output else n.output
        if not slots:
            return "no slots"
        i = rng.randrange(len(slots))
        slots[i] = rng.choice(pool)
        return f"{n.op_type} tensor name {i}"
    if r < 0.7 and m.graph.node:
        rng.choice(m.graph.node).name = rng.choice(NAMES)
        return "node name"
    vis = list(m.graph.input) + list(m.graph.output)
    rng.choice(vis).name = rng.choice(pool)
    return "graph input/output name"


def _mutate_dtype(m: onnx.ModelProto, rng: random.Random) -> str:
    vis = list(m.graph.input) + list(m.graph.output)
    if vis and rng.random() < 0.6:
        vi = rng.choice(vis)
        vi.type.tensor_type.elem_type = rng.choice(ELEM_TYPES)
        return f"elem type of {vi.name!r}"
    if m.graph.initializer:
        t = rng.choice(m.graph.initializer)
        t.data_type = rng.choice(ELEM_TYPES)
        return f"data type of initializer {t.name!r}"
    return "no dtype"


def _mutate_structure(m: onnx.ModelProto, rng: random.Random) -> str:
    nodes = list(m.graph.node)
    r = rng.random()
    if r < 0.3 and nodes:
        del m.graph.node[rng.randrange(len(nodes))]
        return "node removed"
    if r < 0.55 and nodes:
        m.graph.node.append(onnx.NodeProto.FromString(rng.choice(nodes).SerializeToString()))
        return "node duplicated"
    if r < 0.7 and len(nodes) > 1:
        i, j = rng.randrange(len(nodes)), rng.randrange(len(nodes))
        a, b = onnx.NodeProto(), onnx.NodeProto()
        a.CopyFrom(nodes[i])
        b.CopyFrom(nodes[j])
        m.graph.node[i].CopyFrom(b)
        m.graph.node[j].CopyFrom(a)
        return "nodes swapped"
    if r < 0.85 and nodes:
        n = rng.choice(m.graph.node)
        if n.input and rng.random() < 0.5:
            del n.input[rng.randrange(len(n.input))]
        else:
            n.input.append(rng.choice(_all_names(m) + [""]))
        return f"{n.op_type} arity changed"
    m.opset_import[0].version = rng.choice((1, 7, 9, 10, 11, 13, 17, 18, 21, 22, 99))
    return f"opset {m.opset_import[0].version}"


STRUCTURED = (_mutate_dims, _mutate_attribute, _mutate_initializer, _mutate_op_type,
              _mutate_name, _mutate_dtype, _mutate_structure)


def mutate_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Byte-level damage: flips, truncation, insertion, overwrite with boundary values."""
    buf = bytearray(data)
    r = rng.random()
    if r < 0.4:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        return bytes(buf), "bit flips"
    if r < 0.6:
        return bytes(buf[: rng.randrange(len(buf))]), "truncated"
    if r < 0.8:
        i = rng.randrange(len(buf) + 1)
        return bytes(buf[:i]) + rng.randbytes(rng.randint(1, 16)) + bytes(buf[i:]), "inserted"
    i = rng.randrange(len(buf))
    buf[i: i + 4] = rng.choice((b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\x80\x01\x08"))
    return bytes(buf), "overwritten"


def make_case(seeds: list[bytes], seed: int, index: int) -> tuple[bytes, str]:
    """The model bytes of case `index` of fuzz seed `seed`, and what was done to it."""
    rng = random.Random(f"{seed}:{index}")
    base = rng.choice(seeds)
    if rng.random() < 0.25:
        return mutate_bytes(base, rng)
    m = onnx.ModelProto.FromString(base)
    done = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        mutator = rng.choice(STRUCTURED)
        done.append(mutator(m, rng))
    return m.SerializeToString(), "; ".join(done)


# ----------------------------------------------------------------------------- running
def _on_alarm(signum, frame):
    raise CaseTimeout()


def _leftovers(workdir: Path) -> list[str]:
    """Hidden temporaries next to the output folder (a half-finished write)."""
    return sorted(p.name for p in workdir.iterdir() if p.name.startswith(".out"))


def _classify(code: int, err: str, out_dir: Path, workdir: Path) -> str:
    lines = err.splitlines()
    if "Traceback" in err:
        return "traceback"
    if _leftovers(workdir):
        return "partial"
    if code == 0:
        report = out_dir / "report.json"
        if not report.is_file() or not any(out_dir.glob("*.c")):
            return "partial"
        try:
            json.loads(report.read_text())
        except ValueError:
            return "partial"
        return "ok"
    if code == 2:
        if out_dir.exists():
            return "partial"
        if len(lines) != 1 or not lines[0].startswith("edgec: error: "):
            return "lines"
        return "error"
    return "internal"


_PARSER: list = []


@contextlib.contextmanager
def _one_parser():
    """Reuse one argument parser across cases: building it is half the cost of a failing
    case, and parsing leaves it unchanged (the CLI builds a fresh one per process)."""
    if not _PARSER:
        _PARSER.append(cli.build_parser())
    original = cli.build_parser
    cli.build_parser = lambda: _PARSER[0]
    try:
        yield cli.main
    finally:
        cli.build_parser = original


def run_case(data: bytes, workdir: Path, timeout: float = 60.0, target: str = "generic-fp32"
             ) -> Outcome:
    """Compile model bytes `data` in this process through the CLI's `main` and judge it."""

    workdir.mkdir(parents=True, exist_ok=True)
    model, out_dir = workdir / "fuzzed.onnx", workdir / "out"
    shutil.rmtree(out_dir, ignore_errors=True)
    model.write_bytes(data)
    err, out = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), \
                _one_parser() as main:
            try:
                code = main(["compile", str(model), "-o", str(out_dir), "-t", target])
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 2
        kind = _classify(code, err.getvalue(), out_dir, workdir)
    except CaseTimeout:
        code, kind = None, "hang"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    outcome = Outcome(kind, code, err.getvalue(), time.perf_counter() - start)
    shutil.rmtree(out_dir, ignore_errors=True)
    for name in _leftovers(workdir):
        shutil.rmtree(workdir / name, ignore_errors=True)
    return outcome


# Targets by case index: mostly the portable C, every tenth case of a few others (their
# kernels and the int8 quantiser see the mutants too).
TARGETS = ("generic-fp32",) * 7 + ("x86_64-fp32", "generic-int8", "arm64-int8")


def run_cases(seeds: list[bytes], seed: int, indices, workdir: Path, timeout: float = 60.0,
              keep: Path | None = None) -> Stats:
    """Run the cases `indices` of fuzz seed `seed`; bad models are saved under `keep`."""
    stats = Stats()
    for index in indices:
        data, what = make_case(seeds, seed, index)
        target = TARGETS[index % len(TARGETS)]
        outcome = run_case(data, workdir, timeout, target)
        outcome.mutation = f"{target}: {what}"
        stats.add(index, outcome)
        if outcome.bad and keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            (keep / f"case_{seed}_{index}.onnx").write_bytes(data)
    return stats
