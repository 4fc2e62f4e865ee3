"""The generated C is byte-identical to the record in golden/c_hashes.json (tools/c_hashes.py),
taken from the tree before the "one house for many back-ends" refactor: every zoo model on
every C target, and every claimed ONNX conformance case on the fp32 targets. A refactor
changes no behaviour; an intended change of the generated code regenerates the record with
the tool and says why in its commit."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
from helpers import REPO

RECORD = json.loads((REPO / "golden" / "c_hashes.json").read_text())


def tool():
    """tools/c_hashes.py as a module."""
    spec = importlib.util.spec_from_file_location("c_hashes", REPO / "tools" / "c_hashes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("c_hashes", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model", ["digits_cnn", "dscnn", "resnet8", "mobilenetv2",
                                   "mobilenetv2_trained"])
def test_zoo_c_is_byte_identical_to_the_record(zoo_dir, model):
    t = tool()
    want = {k: v for k, v in RECORD["zoo"].items() if k.startswith(model + "/")}
    got = {f"{model}/{target}": t.zoo_hash(model, target) for target in t.c_targets()}
    assert set(got) == set(want), "targets changed: regenerate with tools/c_hashes.py"
    changed = sorted(k for k in want if got[k] != want[k])
    assert not changed, f"generated C changed for {changed}"


@pytest.mark.parametrize("target", ["generic-fp32", "x86_64-fp32", "arm64-fp32"])
def test_conformance_c_is_byte_identical_to_the_record(target):
    got = tool().conformance_hashes(targets=(target,))
    want = {k: v for k, v in RECORD["conformance"].items() if k.endswith("/" + target)}
    assert set(got) == set(want), sorted(set(got) ^ set(want))[:10]
    changed = sorted(k for k in want if got[k] != want[k])
    assert not changed, f"{len(changed)} cases changed, e.g. {changed[:10]}"
