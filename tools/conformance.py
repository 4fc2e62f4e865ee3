#!/usr/bin/env python3
"""ONNX backend node-test conformance: compile every claimed case to C, run it, compare.

The cases are generated in memory by `onnx.backend.test.case.node.collect_testcases()`
(1884 of them with onnx 1.23; the wheel ships no test data). Each case is a small model
(one node, or the node's function body for `*_expanded*` cases) with inputs and expected
outputs.

The claim rule, how a case runs and how outputs are compared are written once, in RULES_MD
below, which the runner copies into docs/conformance.md.

Usage: python tools/conformance.py [--jobs 2] [--filter REGEX] [--out docs/conformance.md]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import multiprocessing
import re
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
import onnx.defs
from onnx import numpy_helper

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DOC = REPO / "docs" / "conformance.md"
TARGET = "generic-fp32"
BUILD_CFLAGS = ("-O0",)  # strict warnings stay on; optimisation only costs time here
RUN_TIMEOUT_S = 60.0
FALLBACK_RTOL, FALLBACK_ATOL = 1e-3, 1e-7
MAX_BINDINGS = 16  # compile-time inputs bound per case before giving up

# Outcome of a case: passed, one of the failure kinds, or unsupported (not claimed).
PASSED = "passed"
DECLINED = "declined"  # edgec refused a claimed case (UnsupportedError / ShapeError)
MISMATCH = "mismatch"  # it ran, but an output differs (value, shape or element type)
BUILD = "build error"  # the generated C did not compile
CRASH = "crash"  # edgec raised an unexpected exception, or the compiled program failed

RULES_MD = """\
## Claim rule

A case is **claimed** when every node's op type is registered in edgec's op registry
(`edgec.ops.all_ops()`, default ONNX domain) and every element type on the node's inputs
and outputs is one edgec supports for that op: it must be an edgec element type (float32,
float16, float64, int8/16/32/64, uint8, bool) and, unless the ONNX schema types that input or
output as indices, shapes or masks only (all of its allowed types among int32, int64 and
bool: axes, pads, shapes, repeats, gather indices, comparison results, argmax outputs), it
must be in the op's `dtypes` set (an op without one accepts every edgec type). Fold-only ops
(Constant, Shape, Size, ConstantOfShape, Range) are registered and so count as claimed. Every
other case is **unsupported**. A claimed case that edgec declines (UnsupportedError or
ShapeError while compiling, e.g. an attribute value it does not implement) is **failed
(declined)**, never unsupported, so the pass rate is honest.

## How a case runs

For every data set of the case: graph inputs that edgec needs at compile time (a shape,
axes, weights, clip bounds: the op raises `ConstantInputRequired` naming the value), and the
graph inputs such a value is computed from, are bound to the case's data as initializers,
as they are in a deployed model; the other inputs stay runtime inputs. Then the model is
imported (`edgec.frontend.onnx.import_model`), compiled (`edgec.compiler.compile_graph`,
target generic-fp32), built with gcc (`-std=c99 -Wall -Wextra -Werror -pedantic -O0`: strict
warnings, no optimisation to keep the suite fast) with AddressSanitizer and UBSan (the harness
puts the arena in a heap block of exactly its planned size, so any access outside the memory
plan fails the case), run, and every output must have the
expected shape and element type and match: floats with `np.testing.assert_allclose`
semantics (|got - want| <= atol + rtol * |want|, NaNs equal) using the case's own rtol and
atol, falling back to rtol=1e-3, atol=1e-7 for a case that sets none (every case of onnx
1.23 sets exactly those); integers and booleans exactly. Each op under test counts the case;
an `_expanded` case counts for the op whose function body it inlines.

Failure kinds: *declined* (edgec refused the model), *mismatch* (wrong values, shape or
element type), *build error* (the generated C did not compile), *crash* (an unexpected
exception inside edgec, or the compiled program failed).
"""


@dataclass
class Claim:
    """Whether edgec claims a case, and if not, why."""

    case: str
    op: str  # the op under test
    claimed: bool
    reasons: list[str] = field(default_factory=list)


@dataclass
class CaseResult:
    """What happened to one case."""

    case: str
    op: str
    status: str
    detail: str = ""
    seconds: float = 0.0
    bound: tuple[str, ...] = ()  # graph inputs bound at compile time
    inputs: int = 0  # graph inputs of the case (bound ones included)

    @property
    def folded(self) -> bool:
        """True when every input was bound: the generated C only copies a constant."""
        return bool(self.bound) and len(self.bound) == self.inputs

    @property
    def passed(self) -> bool:
        """True when every output of every data set matched."""
        return self.status == PASSED


# ------------------------------------------------------------------------------- cases
@lru_cache(maxsize=1)
def collect_cases() -> tuple:
    """All ONNX backend node test cases, generated in memory (warnings silenced)."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            return tuple(collect_testcases())


def _base_name(name: str) -> str:
    return re.sub(r"_expanded(_ver\d+)?$", "", name)


@lru_cache(maxsize=1)
def _ops_under_test() -> dict[str, str]:
    """Case name -> tested op: the single node of the case (or of its non-expanded twin)."""
    single = {c.name: c.model.graph.node[0].op_type
              for c in collect_cases() if len(c.model.graph.node) == 1}
    return {c.name: single.get(c.name) or single.get(_base_name(c.name)) or "(graph)"
            for c in collect_cases()}


def op_under_test(case) -> str:
    """The op a case tests (expanded cases count for the op whose body they expand)."""
    known = _ops_under_test().get(case.name)
    if known:
        return known
    nodes = case.model.graph.node
    return nodes[0].op_type if len(nodes) == 1 else "(graph)"


def _element_types(model: onnx.ModelProto) -> dict[str, object]:
    """Tensor name -> ONNX elem_type for graph inputs, outputs, initializers, intermediates.

    Non-tensor values (sequences, optionals) map to their type's kind name instead.
    """
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference is a convenience here; unknown types are simply not checked
        pass
    g = model.graph
    types: dict[str, object] = {}
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        kind = vi.type.WhichOneof("value")
        types[vi.name] = vi.type.tensor_type.elem_type if kind == "tensor_type" else kind
    for t in g.initializer:
        types[t.name] = t.data_type
    return types


def _dtype_name(elem) -> str:
    if isinstance(elem, str):
        return elem.replace("_type", "")
    return onnx.TensorProto.DataType.Name(elem).lower()


INDEX_TYPES = {"tensor(int32)", "tensor(int64)", "tensor(bool)"}


def _index_like_params(op_type: str, opset: int) -> tuple[set[int], set[int]]:
    """Input and output positions that the ONNX schema types as indices, shapes or masks.

    A formal parameter whose allowed types are all among int32, int64 and bool (axes, pads,
    shapes, repeats, gather indices, comparison results, argmax outputs) is not a data
    tensor of the op: its element type is not checked against the op's `dtypes`.
    """
    try:
        schema = onnx.defs.get_schema(op_type, opset, "")
    except Exception:  # no schema at that version: check every tensor
        return set(), set()
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}

    def index_like(params, count: int) -> set[int]:
        out = set()
        for i in range(count):
            if not params:
                break
            formal = params[min(i, len(params) - 1)]
            types = allowed.get(formal.type_str, {formal.type_str})
            if types <= INDEX_TYPES:
                out.add(i)
        return out

    return index_like(schema.inputs, 64), index_like(schema.outputs, 64)


def claim(case) -> Claim:
    """Apply the claim rule (see the module docstring and docs/conformance.md) to one case."""
    from edgec.ir import DType
    from edgec.ops import all_ops

    ops = all_ops()
    types = _element_types(case.model)
    opset = next((imp.version for imp in case.model.opset_import
                  if imp.domain in ("", "ai.onnx")), 0)
    reasons: list[str] = []
    for node in case.model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            reasons.append(f"op {node.domain}.{node.op_type} is not in the default domain")
            continue
        opdef = ops.get(node.op_type)
        if opdef is None:
            reasons.append(f"op {node.op_type} is not registered")
            continue
        data_types = getattr(opdef, "dtypes", None) or set(DType)
        index_in, index_out = _index_like_params(node.op_type, opset)
        tensors = [(name, i in index_in) for i, name in enumerate(node.input)]
        tensors += [(name, i in index_out) for i, name in enumerate(node.output)]
        for name, is_index in tensors:
            elem = types.get(name) if name else None
            if elem is None or elem == 0:
                continue  # omitted optional input, or a type shape inference left unknown
            try:
                dtype = DType.from_numpy(onnx.helper.tensor_dtype_to_np_dtype(elem))
            except (TypeError, KeyError, ValueError):
                dtype = None
            if dtype is None or not (is_index or dtype in data_types):
                reasons.append(f"{node.op_type} on {_dtype_name(elem)} is not supported")
    reasons = list(dict.fromkeys(reasons))
    return Claim(case.name, op_under_test(case), not reasons, reasons)


@lru_cache(maxsize=1)
def claims() -> tuple[Claim, ...]:
    """The claim of every case, in collection order."""
    return tuple(claim(c) for c in collect_cases())


def claimed_cases() -> list:
    """The cases edgec claims."""
    return [c for c, cl in zip(collect_cases(), claims()) if cl.claimed]


# ------------------------------------------------------------------------------- running
def _bind_inputs(model: onnx.ModelProto, bound: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of `model` where the graph inputs in `bound` are initializers with that data."""
    if not bound:
        return model
    m = onnx.ModelProto()
    m.CopyFrom(model)
    kept = [vi for vi in m.graph.input if vi.name not in bound]
    del m.graph.input[:]
    m.graph.input.extend(kept)
    for name, data in bound.items():
        m.graph.initializer.append(numpy_helper.from_array(np.asarray(data), name))
    return m


def _upstream_inputs(model: onnx.ModelProto, name: str, feeds: dict) -> list[str]:
    """The graph inputs (among `feeds`) whose data tensor `name` is computed from.

    Shape and Size read only their input's (static) shape, so the search stops at them.
    """
    from edgec.frontend.onnx import SHAPE_ONLY_OPS

    producer = {out: node for node in model.graph.node for out in node.output
                if node.op_type not in SHAPE_ONLY_OPS}
    found, seen, todo = [], set(), [name]
    while todo:
        t = todo.pop()
        if t in seen or not t:
            continue
        seen.add(t)
        if t in feeds:
            found.append(t)
        elif t in producer:
            todo.extend(producer[t].input)
    return sorted(found)


def _compile(model: onnx.ModelProto, feeds: dict[str, np.ndarray]):
    """Import and compile, binding compile-time inputs; returns (CompileResult, bound names)."""
    from edgec.compiler import CompileOptions, compile_graph
    from edgec.errors import ConstantInputRequired
    from edgec.frontend.onnx import import_model

    bound: dict[str, np.ndarray] = {}
    for _ in range(MAX_BINDINGS):
        try:
            g = import_model(_bind_inputs(model, bound), name="case")
            return compile_graph(g, CompileOptions(target=TARGET), model_name="case"), bound
        except ConstantInputRequired as e:
            names = [n for n in _upstream_inputs(model, e.value_name or "", feeds)
                     if n not in bound]
            if not names:
                raise
            bound.update({n: feeds[n] for n in names})
    raise RuntimeError("too many compile-time inputs")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".strip()


def as_array(value) -> np.ndarray:
    """A case's input or expected output as a numpy array (cases mix arrays, numpy scalars
    and TensorProtos)."""
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    return np.asarray(value)


def compare_output(name: str, got: np.ndarray, want, rtol: float,
                   atol: float) -> str | None:
    """None when `got` matches `want`; otherwise one line saying how it differs."""
    want = as_array(want)
    if got.dtype != want.dtype:
        return f"output '{name}': element type {got.dtype} instead of {want.dtype}"
    if got.shape != want.shape:
        return f"output '{name}': shape {got.shape} instead of {want.shape}"
    if want.dtype.kind in "fc":
        g64, w64 = got.astype(np.float64), want.astype(np.float64)
        same = (g64 == w64) | (np.isnan(g64) & np.isnan(w64))
        with np.errstate(invalid="ignore"):
            close = np.abs(g64 - w64) <= atol + rtol * np.abs(w64)
        bad = ~(same | close)
        if bad.any():
            diff = np.abs(g64 - w64)
            worst = np.nanmax(np.where(bad, diff, -np.inf))
            return (f"output '{name}': {int(bad.sum())}/{want.size} values differ "
                    f"(max abs err {worst:.3g}, rtol {rtol:g}, atol {atol:g})")
        return None
    bad = got != want
    if np.any(bad):
        return f"output '{name}': {int(np.sum(bad))}/{want.size} values differ (exact compare)"
    return None


def _run_data_set(case, inputs: list, expected: list, workdir: Path, record: dict,
                  sanitize: bool = False, cc: str | None = None) -> tuple[str, str]:
    """Status and detail of one data set; `record` receives the bound input names."""
    from edgec.workbench import toolchain
    from edgec.errors import ShapeError, ToolchainError, UnsupportedError

    graph = case.model.graph
    init_names = {t.name for t in graph.initializer}
    input_names = [vi.name for vi in graph.input if vi.name not in init_names]
    feeds = dict(zip(input_names, map(as_array, inputs)))
    try:
        result, bound = _compile(case.model, feeds)
        record["bound"] = tuple(sorted(bound))
    except (UnsupportedError, ShapeError) as e:
        return DECLINED, _first_line(e)
    except Exception as e:  # a bug in edgec (PassFailure, IRError, anything unexpected)
        return CRASH, _first_line(e)
    from edgec.compiler import write_output

    try:
        out_dir = write_output(result.files, workdir / "out")
        exe = toolchain.build(out_dir, result.target, cc=cc, sanitize=sanitize,
                              extra_cflags=BUILD_CFLAGS)
    except ToolchainError as e:
        return BUILD, _first_line(e)
    g = result.graph
    run_inputs = []
    for name, v in zip(g.meta["input_names"], g.inputs):
        run_inputs.append(np.ascontiguousarray(np.asarray(feeds[name]).astype(v.dtype.np)))
    specs = [(v.shape, v.dtype.np) for v in g.outputs]
    try:
        outs, _ = toolchain.run(exe, result.target, run_inputs, specs, timeout=RUN_TIMEOUT_S)
    except ToolchainError as e:
        return CRASH, _first_line(e)
    got = dict(zip(g.meta["output_names"], outs))
    rtol = case.rtol if case.rtol is not None else FALLBACK_RTOL
    atol = case.atol if case.atol is not None else FALLBACK_ATOL
    for vi, want in zip(graph.output, expected):
        if vi.name not in got:
            return MISMATCH, f"output '{vi.name}' is missing"
        problem = compare_output(vi.name, got[vi.name], want, rtol, atol)
        if problem:
            return MISMATCH, problem
    return PASSED, ""


def run_case(case, sanitize: bool = True, cc: str | None = None) -> CaseResult:
    """Compile, build, run and check one case on every data set; built with AddressSanitizer
    and UBSan by default (the arena is then a heap block of exactly its planned size)."""
    start = time.perf_counter()
    graph = case.model.graph
    n_inputs = len({vi.name for vi in graph.input} - {t.name for t in graph.initializer})
    result = CaseResult(case.name, op_under_test(case), PASSED, inputs=n_inputs)
    with tempfile.TemporaryDirectory(prefix="edgec-conf-") as tmp:
        for i, (inputs, expected) in enumerate(case.data_sets):
            workdir = Path(tmp) / f"set{i}"
            workdir.mkdir()
            record: dict = {}
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                status, detail = _run_data_set(case, list(inputs), list(expected), workdir,
                                               record, sanitize, cc)
            result.bound = tuple(sorted(set(result.bound) | set(record.get("bound", ()))))
            if status != PASSED:
                prefix = f"data set {i}: " if len(case.data_sets) > 1 else ""
                result.status, result.detail = status, prefix + detail
                break
    result.seconds = time.perf_counter() - start
    return result


def _run_index(index: int) -> CaseResult:
    case = collect_cases()[index]
    try:
        return run_case(case)
    except Exception as e:  # never lose the whole run to one case
        return CaseResult(case.name, op_under_test(case), CRASH, _first_line(e))


def run_all(cases: list, jobs: int = 2, progress: bool = False) -> list[CaseResult]:
    """Run `cases` (items of collect_cases()) on `jobs` worker processes; results in order."""
    index = {c.name: i for i, c in enumerate(collect_cases())}
    indices = [index[c.name] for c in cases]
    results: list[CaseResult] = []
    if jobs <= 1:
        mapped = map(_run_index, indices)
        pool = None
    else:
        # fork: workers inherit the generated cases and the imported compiler
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context("fork"))
        mapped = pool.map(_run_index, indices, chunksize=4)
    try:
        for n, r in enumerate(mapped, 1):
            results.append(r)
            if progress and (n % 50 == 0 or n == len(indices)):
                print(f"  {n}/{len(indices)} cases run", file=sys.stderr, flush=True)
    finally:
        if pool is not None:
            pool.shutdown()
    return results


# ------------------------------------------------------------------------------- reporting
def totals_line(results: list[CaseResult], unsupported: int) -> str:
    """The one-line summary printed by the runner."""
    claimed = len(results)
    passed = sum(r.passed for r in results)
    rate = 100.0 * passed / claimed if claimed else 0.0
    return (f"conformance: {passed}/{claimed} claimed cases pass ({rate:.1f}%); "
            f"{unsupported} unsupported")


def _cc_version() -> str:
    try:
        out = subprocess.run(["gcc", "--version"], capture_output=True, text=True,
                             check=False).stdout
        return out.splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_report(results: list[CaseResult], all_claims: tuple[Claim, ...]) -> str:
    """The text of docs/conformance.md."""
    import edgec

    unsupported = [c for c in all_claims if not c.claimed]
    claimed = len(results)
    passed = sum(r.passed for r in results)
    kinds = Counter(r.status for r in results if not r.passed)
    rate = 100.0 * passed / claimed if claimed else 0.0
    lines = [
        "# ONNX backend node-test conformance",
        "",
        "Written by `python tools/conformance.py`; do not edit by hand.",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d')}",
        (f"- edgec {edgec.__version__}, onnx {onnx.__version__}, target {TARGET}, "
         f"{_cc_version()} with `{' '.join(BUILD_CFLAGS)}`, strict warnings, ASan and UBSan"),
        f"- cases: {len(all_claims)} from `onnx.backend.test.case.node.collect_testcases()`",
        "",
        RULES_MD,
        "## Totals",
        "",
        ("| claimed | passed | failed | declined | mismatch | build error | crash "
         "| unsupported | pass rate |"),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        (f"| {claimed} | {passed} | {claimed - passed} | {kinds[DECLINED]} "
         f"| {kinds[MISMATCH]} | {kinds[BUILD]} | {kinds[CRASH]} | {len(unsupported)} "
         f"| {rate:.1f}% |"),
        "",
        "## Per op",
        "",
        "| op | cases | claimed | passed | failed | unsupported | why failed / unsupported |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    per_op: dict[str, dict] = defaultdict(lambda: {"cases": 0, "claimed": 0, "passed": 0,
                                                   "failed": Counter(), "unsupported": 0,
                                                   "why": Counter()})
    for c in all_claims:
        row = per_op[c.op]
        row["cases"] += 1
        if not c.claimed:
            row["unsupported"] += 1
            row["why"].update(c.reasons)
    for r in results:
        row = per_op[r.op]
        row["claimed"] += 1
        if r.passed:
            row["passed"] += 1
        else:
            row["failed"][r.status] += 1
    for op in sorted(per_op, key=str.lower):
        row = per_op[op]
        failed = sum(row["failed"].values())
        why = [f"{n} {k}" for k, n in sorted(row["failed"].items())]
        why += [f"{reason} ({n})" for reason, n in row["why"].most_common(3)]
        lines.append(f"| {op} | {row['cases']} | {row['claimed']} | {row['passed']} | {failed} "
                     f"| {row['unsupported']} | {_md('; '.join(why))} |")
    lines += ["", "## Failed cases", ""]
    failures = [r for r in results if not r.passed]
    if not failures:
        lines.append("None.")
    else:
        lines += ["| case | op | kind | reason |", "|---|---|---|---|"]
        for r in sorted(failures, key=lambda r: r.case):
            detail = r.detail if len(r.detail) <= 200 else r.detail[:197] + "..."
            lines.append(f"| {r.case} | {r.op} | {r.status} | {_md(detail)} |")
    folded = sorted(r.case for r in results if r.folded)
    lines += ["", "## Cases compiled to a constant", "",
              ("Every input of these cases was needed at compile time, so their C only "
               "copies a constant (what they check is edgec's folding):"), "",
              ", ".join(folded) or "None."]
    missing = Counter()
    for c in unsupported:
        for reason in c.reasons:
            m = re.match(r"op (\S+) is not registered", reason)
            if m:
                missing[m.group(1)] += 1
    lines += ["", "## Unregistered ops by number of cases that need them", ""]
    lines.append(", ".join(f"{op} ({n})" for op, n in
                           sorted(missing.items(), key=lambda kv: (-kv[1], kv[0]))) or "None.")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the suite, print the totals line, write the report; exit 1 below --min-rate."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", "-j", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--filter", "-k", metavar="REGEX",
                    help="run only cases whose name matches (the report is not written)")
    ap.add_argument("--out", type=Path, default=DEFAULT_DOC, help="report path (markdown)")
    ap.add_argument("--no-report", action="store_true", help="do not write the report")
    ap.add_argument("--min-rate", type=float, default=0.0,
                    help="exit 1 when the pass rate (percent) is below this")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every failure")
    args = ap.parse_args(argv)

    all_claims = claims()
    cases = claimed_cases()
    if args.filter:
        pattern = re.compile(args.filter)
        cases = [c for c in cases if pattern.search(c.name)]
    results = run_all(cases, jobs=args.jobs, progress=True)
    if args.verbose or args.filter:
        for r in results:
            if not r.passed:
                print(f"{r.case} [{r.op}] {r.status}: {r.detail}")
    unsupported = sum(not c.claimed for c in all_claims)
    print(totals_line(results, unsupported))
    if not args.filter and not args.no_report:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(render_report(results, all_claims))
        print(f"report written to {args.out}")
    claimed = len(results)
    rate = 100.0 * sum(r.passed for r in results) / claimed if claimed else 100.0
    return 1 if rate < args.min_rate else 0


if __name__ == "__main__":
    sys.exit(main())
