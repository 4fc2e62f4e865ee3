#!/usr/bin/env python3
"""ONNX backend node tests through a CoreML target: edgec's claimed cases of the conv, pool,
activation, shape, normalisation, resize and softmax families are compiled to an
`.mlpackage`, the package's MIL program is evaluated in numpy (codegen/coreml/evaluate.py)
and each output is compared with the case's expected output by the rule of
tools/conformance.py (the case's rtol/atol, else 1e-3/1e-7).

  python tools/coreml_conformance.py [-t coreml-fp32] [--ops Conv,Relu] [--markdown]

Compile-time inputs are bound the way tools/conformance.py binds them. A case edgec or the
CoreML back-end declines (UnsupportedError, ShapeError) is *declined*; a wrong value is a
*mismatch*; anything else raised is a *crash*. docs/coreml.md holds the last run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conformance  # noqa: E402

FAMILIES = {
    "conv": ("Conv",),
    "pool": ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"),
    "activation": ("Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Elu",
                   "Softplus", "Softsign", "PRelu", "Clip", "Gelu", "ThresholdedRelu"),
    "shape": ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split",
              "Slice", "Pad", "Identity"),
    "normalisation": ("BatchNormalization", "InstanceNormalization", "LayerNormalization"),
    "resize": ("Resize", "Upsample"),
    "softmax": ("Softmax", "LogSoftmax"),
}
OPS = tuple(op for ops in FAMILIES.values() for op in ops)


def _compile(case, feeds: dict, target: str):
    from edgec.compiler import CompileOptions, compile_graph
    from edgec.errors import ConstantInputRequired
    from edgec.frontend.onnx import import_model

    bound: dict = {}
    for _ in range(conformance.MAX_BINDINGS):
        try:
            g = import_model(conformance._bind_inputs(case.model, bound), name="case")
            return compile_graph(g, CompileOptions(target=target), model_name="case")
        except ConstantInputRequired as e:
            names = [n for n in conformance._upstream_inputs(case.model, e.value_name or "",
                                                             feeds) if n not in bound]
            if not names:
                raise
            bound.update({n: feeds[n] for n in names})
    raise RuntimeError("too many compile-time inputs")


def run_case(case, target: str = "coreml-fp32") -> tuple[str, str]:
    """(status, detail) of one case: passed, declined, mismatch or crash."""
    from edgec.workbench.coreml_verify import run_package
    from edgec.errors import ShapeError, UnsupportedError

    graph = case.model.graph
    init = {t.name for t in graph.initializer}
    names = [vi.name for vi in graph.input if vi.name not in init]
    for i, (inputs, expected) in enumerate(case.data_sets):
        feeds = dict(zip(names, map(conformance.as_array, inputs)))
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                result = _compile(case, feeds, target)
                run_in = result.source_graph.meta["input_names"]
                with tempfile.TemporaryDirectory(prefix="edgec-coreml-conf-") as tmp:
                    got = run_package(result, [{n: feeds[n] for n in run_in}], Path(tmp))[0]
        except (UnsupportedError, ShapeError) as e:
            return conformance.DECLINED, conformance._first_line(e)
        except Exception as e:  # a bug in edgec or in the evaluator
            return conformance.CRASH, conformance._first_line(e)
        rtol = case.rtol if case.rtol is not None else conformance.FALLBACK_RTOL
        atol = case.atol if case.atol is not None else conformance.FALLBACK_ATOL
        for vi, want in zip(graph.output, expected):
            problem = conformance.compare_output(vi.name, np.asarray(got[vi.name]), want, rtol,
                                                 atol)
            if problem:
                return conformance.MISMATCH, f"data set {i}: {problem}"
    return conformance.PASSED, ""


def cases_for(ops=OPS) -> list:
    """edgec's claimed cases whose op under test is in `ops`."""
    return [c for c in conformance.claimed_cases() if conformance.op_under_test(c) in ops]


def markdown(rows: list[tuple[str, str, str, str]], target: str) -> str:
    """Totals per family and the list of cases that did not pass."""
    family_of = {op: fam for fam, ops in FAMILIES.items() for op in ops}
    per = Counter()
    for _, op, status, _ in rows:
        per[(family_of[op], status)] += 1
    lines = [f"| family ({target}) | claimed | passed | declined | mismatch | crash |",
             "|---|---:|---:|---:|---:|---:|"]
    for fam in FAMILIES:
        n = sum(v for (f, _), v in per.items() if f == fam)
        lines.append(f"| {fam} | {n} | " + " | ".join(
            str(per[(fam, s)]) for s in (conformance.PASSED, conformance.DECLINED,
                                         conformance.MISMATCH, conformance.CRASH)) + " |")
    lines += ["", "Not passed:", ""]
    lines += [f"- `{name}` ({status}): {detail}" for name, _, status, detail in rows
              if status != conformance.PASSED]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the cases and print one line per case that did not pass, then the totals."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-t", "--target", default="coreml-fp32")
    p.add_argument("--ops", help="comma-separated op types (default: every family)")
    p.add_argument("--markdown", action="store_true", help="print the docs table")
    args = p.parse_args(argv)
    ops = tuple(args.ops.split(",")) if args.ops else OPS
    t0 = time.perf_counter()
    rows = []
    for case in cases_for(ops):
        status, detail = run_case(case, args.target)
        rows.append((case.name, conformance.op_under_test(case), status, detail))
        if status != conformance.PASSED and not args.markdown:
            print(f"{case.name}: {status}: {detail}")
    passed = sum(r[2] == conformance.PASSED for r in rows)
    if args.markdown:
        print(markdown(rows, args.target))
    print(f"{passed}/{len(rows)} passed on {args.target} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
