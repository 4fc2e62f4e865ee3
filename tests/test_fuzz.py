"""Fuzzing `edgec compile` with mutated models (edgec/fuzz.py): every case ends in exit 0 with
a complete output folder, or exit 2 with exactly one `edgec: error:` line; never exit 3, a
traceback, several lines, a hang or a half-written folder.

A few hundred seeded cases by default; EDGEC_FUZZ_CASES=N runs more, EDGEC_FUZZ_SEED=S
another sequence (tools/fuzz.py runs many in parallel and reports counts).
"""

from __future__ import annotations

import os

from helpers import ZOO_DIR

from edgec.fuzz import make_case, run_cases, seed_models

CASES = int(os.environ.get("EDGEC_FUZZ_CASES", "300"))
SEED = int(os.environ.get("EDGEC_FUZZ_SEED", "12"))


def test_fuzzed_models_exit_0_or_one_error_line(tmp_path):
    seeds = seed_models(ZOO_DIR)
    assert len(seeds) > 10, "the zoo seed models are missing"
    stats = run_cases(seeds, SEED, range(CASES), tmp_path / "work", timeout=120)
    shown = "\n".join(
        f"case {i} ({o.mutation}): {o.kind} exit {o.code}: {o.stderr.strip()[:300]!r}"
        for i, o in stats.bad[:10])
    assert not stats.bad, (f"{len(stats.bad)} of {CASES} fuzzed models broke the contract "
                           f"(reproduce: python3 tools/fuzz.py --seed {SEED} --start I --cases 1 "
                           f"--keep DIR):\n{shown}")
    # The mutations must exercise both sides of the contract, not only one.
    assert stats.counts.get("ok", 0) > CASES // 50
    assert stats.counts.get("error", 0) > CASES // 2


def test_cases_are_reproducible():
    seeds = seed_models(ZOO_DIR)
    assert make_case(seeds, SEED, 7) == make_case(seeds, SEED, 7)
    assert make_case(seeds, SEED, 7)[0] != make_case(seeds, SEED, 8)[0]
