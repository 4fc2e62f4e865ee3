"""Every ```python example of docs/api.md runs as written, from the repository root."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "api.md").read_text(),
                      re.DOTALL)


def test_docs_have_examples():
    assert len(EXAMPLES) >= 5


@pytest.mark.toolchain  # the examples call verify() and run(), which build C
@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_runs(index, monkeypatch):
    if "torch" in EXAMPLES[index]:
        pytest.importorskip("torch")
    monkeypatch.chdir(REPO)
    exec(compile(EXAMPLES[index], f"docs/api.md example {index + 1}", "exec"), {})  # noqa: S102 - the docs' own examples
    assert os.getcwd() == str(REPO)
