"""Generated documentation is current: docs/ops.md matches the op registry."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ops_table_is_current():
    spec = importlib.util.spec_from_file_location("ops_table", REPO / "tools" / "ops_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (REPO / "docs" / "ops.md").read_text() == mod.render(), \
        "docs/ops.md is stale: run python tools/ops_table.py"


def test_readme_names_the_documented_commands():
    text = (REPO / "README.md").read_text()
    assert "bash tools/setup.sh test && python3 -m pytest -n 2" in text
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash tools/setup.sh test && python3 -m pytest -n 2" in ci
