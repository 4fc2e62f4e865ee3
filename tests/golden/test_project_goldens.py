"""The project's own golden cases (golden/cases/, regenerated only by tools/regen_goldens.py)
still pass: every zoo model on every recorded target, through the library and through the
pytest plugin as a user's `pytest` would run them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import REPO

from edgec.golden import check_target, find_cases

CASES_DIR = REPO / "golden" / "cases"
CASES = find_cases([CASES_DIR]) if CASES_DIR.exists() else []
PAIRS = [pytest.param(case, target, id=f"{case.name}-{target}")
         for case in CASES for target in case.targets]


def test_every_committed_zoo_model_has_a_case():
    assert {c.name for c in CASES} >= {"resnet8", "dscnn", "digits_cnn"}
    for case in CASES:
        assert {"generic-fp32", "generic-int8"} <= set(case.targets), case.name


@pytest.mark.parametrize("case, target", PAIRS)
def test_project_golden_case_passes(case, target):
    result = check_target(case, target)
    if result.status == "skipped":
        pytest.skip(result.message)
    assert result.status == "pass", (
        f"{result.status}: {result.message} (first divergent layer "
        f"{result.first_divergent_layer}); if the change is intended, regenerate with "
        "python tools/regen_goldens.py")


def test_pytest_plugin_collects_and_passes_the_project_cases():
    """A user's pytest (the plugin comes in through its pytest11 entry point) collects one
    item per (case, target) of golden/cases and runs them (here the digits case on the two
    portable targets; every pair runs above, in-process)."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "no:xdist",
            "-p", "no:benchmark", "-o", "addopts="]
    collected = subprocess.run([*base, "--collect-only", str(CASES_DIR)], cwd=REPO, env=env,
                               capture_output=True, text=True, check=False)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    items = [line for line in collected.stdout.splitlines() if "edgec-golden.json::" in line]
    assert len(items) == len(PAIRS)
    run = subprocess.run([*base, "--edgec-golden-targets", "generic-fp32,generic-int8",
                          str(CASES_DIR / "digits_cnn")], cwd=REPO, env=env,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout, run.stdout
