"""The wheel ships edgec, edgec.passes and edgec.codegen (with templates) at the right paths."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_contents(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(REPO)], check=True)
    wheel = next(tmp_path.glob("edgec-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ["edgec/__init__.py", "edgec/ir/graph.py", "edgec/ops/conv.py",
                     "edgec/passes/__init__.py", "edgec/passes/layout_nhwc.py",
                     "edgec/codegen/c/backend.py", "edgec/codegen/c/templates/model.c.j2",
                     "edgec/codegen/c/templates/ops/conv.c.j2", "edgec/workbench/verify.py",
                     "edgec/workbench/csrc/bench_shim.c", "edgec/workbench/csrc/fma_peak.c",
                     "edgec/workbench/csrc/icount_plugin.c"]:
        assert required in names, f"{required} missing from the wheel"
    assert not any(n.startswith(("passes/", "codegen/", "tests/")) for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    assert "edgec = edgec.cli:main" in text


def test_passes_and_codegen_import_through_edgec():
    """passes/ and codegen/ are installed as edgec.passes and edgec.codegen: their modules
    import each other as `edgec.passes...` / `edgec.codegen...` (absolute, as the house style
    asks, so readers and tools can follow them) or relatively, never as the top-level names
    `passes` / `codegen`, which exist only in a source checkout."""
    import re

    top_level = re.compile(r"^\s*(from|import)\s+(passes|codegen)\b", re.MULTILINE)
    for folder in ("passes", "codegen", "edgec"):
        for path in (REPO / folder).rglob("*.py"):
            assert not top_level.search(path.read_text()), path
