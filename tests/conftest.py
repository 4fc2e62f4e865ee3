"""Test configuration: makes tests/helpers.py importable and provides shared fixtures."""

import os
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS_DIR))
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def zoo_dir():
    """Directory holding the zoo models (built on first use by tools/make_models.py)."""
    from helpers import ensure_zoo

    return ensure_zoo()


# ----------------------------------------------------------------------- the toolchain marker
# A test that builds or runs C (a C compiler, qemu, cmake) is marked `toolchain`, so that
# `pytest -m "not toolchain"` is the fast tier that builds no C. The mark comes from what the
# test uses, not from a hand-kept list: the names its code (and the module's functions and the
# fixtures it calls) refers to. Conservative on purpose: any subprocess counts.
TOOLCHAIN_DIRS = ("tests/e2e/", "tests/arm64/", "tests/golden/")  # every test builds C
TOOLCHAIN_MODULES = ("tests/test_conformance.py", "tests/test_bench.py")
TOOLCHAIN_NAMES = frozenset({
    "run_c", "check_against_ort", "run_compiled", "verify_model", "build_result", "toolchain",
    "build", "build_plugin", "count_model", "count_instructions", "bench_model",
    "CompiledModel", "FmaPeak", "measure_fma_peak", "dump_layers", "build_debug", "run_debug",
    "verify_per_layer", "record_case", "check_cases", "check_target", "subprocess", "have",
    "which", "conformance",
})
CLI_BUILD_COMMANDS = frozenset({"verify", "bench", "golden"})  # edgec commands that build C


def _code_names(code) -> tuple[set[str], set[str]]:
    """Global/attribute names and string constants of a code object and its nested code."""
    names, strings, stack = set(), set(), [code]
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        for const in c.co_consts:
            if isinstance(const, str):
                strings.add(const)
            elif hasattr(const, "co_names"):
                stack.append(const)
    return names, strings


def _closure(func, names: set, strings: set, seen: set) -> None:
    """Add the names and strings of `func` and of every test-suite function it refers to."""
    func = getattr(func, "__func__", func)
    code = getattr(func, "__code__", None)
    if code is None or func in seen:
        return
    seen.add(func)
    own_names, own_strings = _code_names(code)
    names |= own_names
    strings |= own_strings
    module_globals = getattr(func, "__globals__", {})
    for name in own_names:
        ref = module_globals.get(name)
        code_file = getattr(getattr(ref, "__code__", None), "co_filename", "")
        if callable(ref) and code_file.startswith(str(TESTS_DIR)):  # helpers of the suite
            _closure(ref, names, strings, seen)


def _item_builds_c(item) -> bool:
    """Whether the test item builds or runs C: its directory or module says so, or the code
    of the test, of the suite's helpers it calls and of its fixtures names a C-building call
    (or runs an `edgec` command that builds C)."""
    path = str(item.fspath).replace("\\", "/")
    if any(d in path for d in TOOLCHAIN_DIRS) or path.endswith(TOOLCHAIN_MODULES):
        return True
    names: set = set()
    strings = {str(v) for v in getattr(getattr(item, "callspec", None), "params", {}).values()}
    seen: set = set()
    _closure(getattr(item, "function", None), names, strings, seen)
    fixture_defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    for defs in fixture_defs.values():
        if defs:
            _closure(defs[-1].func, names, strings, seen)
    runs_cli = bool(names & {"main", "run_cli"})
    return bool(names & TOOLCHAIN_NAMES) or (runs_cli and any(
        word in text for text in strings for word in CLI_BUILD_COMMANDS))


def pytest_collection_modifyitems(config, items):
    """Mark every test that builds or runs C with `toolchain`."""
    for item in items:
        if _item_builds_c(item):
            item.add_marker(pytest.mark.toolchain)
