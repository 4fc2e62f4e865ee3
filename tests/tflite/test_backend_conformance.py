"""The ONNX backend node tests that edgec claims (tools/conformance.py), compiled for
tflite-fp32 and run in LiteRT: each either compiles and matches the case's expected outputs
(the case's own rtol/atol, integers exactly) or is declined with a one-line EdgecError;
never an internal error, never a wrong value.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers import REPO

from edgec.errors import EdgecError

pytest.importorskip("ai_edge_litert.interpreter")
from edgec.codegen.tflite.runner import run_compiled  # noqa: E402

sys.path.insert(0, str(REPO / "tools"))
import conformance  # noqa: E402

# Measured with this test's loop (onnx 1.23.2, LiteRT 2.3.0): 313 of 974 claimed cases pass
# (float activations, reductions, resize, pad, transpose, conv, gemm, pools, softmax...).
MIN_PASSING = 313


def _compile_and_run(case, inputs):
    """(result, feeds, LiteRT outputs) of one data set of a case, or None when edgec
    declines it (with a one-line EdgecError, asserted)."""
    names = [i.name for i in case.model.graph.input]
    feeds = {n: conformance.as_array(v) for n, v in zip(names, inputs)}
    try:
        result, _ = conformance._compile(case.model, feeds)
    except EdgecError as e:
        assert len(str(e).splitlines()) == 1, (case.name, str(e))
        return None
    g = result.graph
    in_names = list(g.meta.get("input_names") or [v.name for v in g.inputs])
    feeds = {n: feeds[n] for n in in_names}
    return result, feeds, run_compiled(result, [feeds])[0]


@pytest.mark.slow  # ~20 s: every claimed case compiled and run once per data set
def test_claimed_cases_pass_or_decline_in_one_line(monkeypatch):
    monkeypatch.setattr(conformance, "TARGET", "tflite-fp32")
    passed, failures = 0, []
    for case in conformance.claimed_cases():
        ok = True
        for inputs, expected in case.data_sets:
            ran = _compile_and_run(case, inputs)
            if ran is None:
                ok = False
                break
            got = ran[2]
            for out, want in zip([o.name for o in case.model.graph.output], expected):
                rtol = case.rtol if case.rtol is not None else conformance.FALLBACK_RTOL
                atol = case.atol if case.atol is not None else conformance.FALLBACK_ATOL
                err = conformance.compare_output(out, np.asarray(got[out]), want, rtol, atol)
                if err:
                    failures.append((case.name, err))
                    ok = False
        passed += ok
    assert not failures, failures[:10]
    assert passed >= MIN_PASSING


# Measured with the loop below (onnx 1.23.2, LiteRT 2.3.0): of the claimed cases, 181 compile
# for tflite-int8 with at least one int8 layer (599 are declined, e.g. ops without an int8 or
# TFLite form; 194 stay float); in all of them LiteRT gives edgec's int8 bits.
MIN_INT8_CASES = 175


@pytest.mark.slow  # ~20 s: every claimed case compiled for tflite-int8 and run once
def test_claimed_cases_int8_litert_bit_exact(monkeypatch):
    """Every claimed case that compiles for tflite-int8 (calibrated on seeded random inputs)
    runs in LiteRT with edgec's int8 reference's bits: outputs written by a DequantizeLinear
    (int8 values) exactly; a float tail after the int8 part (a reduction, a division) within
    float32 summation order (rtol 1e-5)."""
    from edgec.interp import run_graph

    monkeypatch.setattr(conformance, "TARGET", "tflite-int8")
    checked, failures = 0, []
    for case in conformance.claimed_cases():
        ran = _compile_and_run(case, case.data_sets[0][0])
        if ran is None:
            continue
        result, f, got = ran
        g = result.graph
        if not any(n.op.startswith("Q") for n in g.nodes):
            continue
        want = run_graph(g, f)
        out_names = g.meta.get("output_names") or [v.name for v in g.outputs]
        for name, v in zip(out_names, g.outputs):
            a = np.asarray(got[name])
            b = np.asarray(want[name]).reshape(a.shape)
            exact = v.producer is not None and v.producer.op == "DequantizeLinear" or \
                not v.dtype.is_float
            if exact and not np.array_equal(a, b):
                failures.append((case.name, name, int(np.count_nonzero(a != b))))
            elif not exact and not np.allclose(a, b, rtol=1e-5, atol=1e-6):
                failures.append((case.name, name, float(np.max(np.abs(a - b)))))
        checked += 1
    assert not failures, failures[:10]
    assert checked >= MIN_INT8_CASES
