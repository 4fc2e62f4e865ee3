#!/usr/bin/env python3
"""SHA-256 of the generated C of every zoo model on every C target, and of the claimed ONNX
conformance cases on the fp32 targets: the record that a refactor changed no behaviour.

`golden/c_hashes.json` was written by this tool from the tree before the "one house for many
back-ends" refactor (issue 13); tests/codegen/test_c_hashes.py recomputes the hashes and
compares. Regenerate only for an intended change of the generated code, and say why in the
commit message.

Usage: python tools/c_hashes.py [--out golden/c_hashes.json] [--only zoo|conformance]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

from edgec.compiler import CompileOptions, compile_graph
from edgec.frontend.onnx import load_onnx
from edgec.quant import random_calibration_inputs
from edgec.targets import all_targets

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "golden" / "models"
DEFAULT_OUT = REPO / "golden" / "c_hashes.json"
ZOO_MODELS = ("digits_cnn", "dscnn", "resnet8", "mobilenetv2", "mobilenetv2_trained", "kws_lstm")
CONFORMANCE_TARGETS = ("generic-fp32", "x86_64-fp32", "arm64-fp32")
CALIB_SAMPLES = 2  # enough to fix every scale; the hashes check code, not accuracy


def files_digest(files: dict[str, str | bytes]) -> str:
    """One SHA-256 over the sorted (name, content) pairs of a compile's output files."""
    h = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        if name == "report.json":  # its timings vary from run to run
            data = json.dumps(_without_timings(json.loads(data)), sort_keys=True)
        data = data.encode() if isinstance(data, str) else data
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def _without_timings(value):
    """`value` (parsed JSON) without its "seconds" entries."""
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def c_targets() -> list[str]:
    """Every built-in target that generates C (sorted). The workbench registers portable
    twins (`<target>-portable`, edgec/workbench/instr_count.py) at run time; they are not
    targets of their own and are left out, whatever ran before in this process."""
    return sorted(name for name, t in all_targets().items()
                  if t.backend == "c" and not name.endswith("-portable"))


def zoo_hash(model: str, target: str) -> str:
    """The digest of `model` compiled for `target` (int8: seeded calibration samples)."""
    path = ZOO / f"{model}.onnx"
    g = load_onnx(path)
    calib = random_calibration_inputs(g, CALIB_SAMPLES, seed=0) if "int8" in target else None
    res = compile_graph(g, CompileOptions(target=target, calib_samples=calib), model_name=model)
    return files_digest(res.files)


def conformance_module():
    """tools/conformance.py as a module."""
    spec = importlib.util.spec_from_file_location("conformance", REPO / "tools" / "conformance.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("conformance", module)  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def conformance_hashes(targets=CONFORMANCE_TARGETS) -> dict[str, str]:
    """{case/target: digest} for every claimed conformance case that compiles."""
    conf = conformance_module()
    out: dict[str, str] = {}
    for case in conf.claimed_cases():
        for target in targets:
            conf.TARGET = target
            try:
                res, _ = conf._compile(case.model, _feeds(case))
            except Exception as e:  # declined cases: their error line is the record
                out[f"{case.name}/{target}"] = "error: " + type(e).__name__
                continue
            out[f"{case.name}/{target}"] = files_digest(res.files)
    return out


def _feeds(case) -> dict[str, np.ndarray]:
    """The first data set's inputs of a conformance case, by graph input name."""
    names = [vi.name for vi in case.model.graph.input]
    inputs = case.data_sets[0][0] if case.data_sets else []
    return {n: np.asarray(v) for n, v in zip(names, inputs) if not isinstance(v, list)}


def zoo_hashes() -> dict[str, str]:
    """{model/target: digest} for the zoo on every C target."""
    return {f"{m}/{t}": zoo_hash(m, t) for m in ZOO_MODELS for t in c_targets()}


def main(argv: list[str] | None = None) -> int:
    """Write the hashes file."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", choices=("zoo", "conformance"))
    args = ap.parse_args(argv)
    record = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.only in (None, "zoo"):
        record["zoo"] = zoo_hashes()
    if args.only in (None, "conformance"):
        record["conformance"] = conformance_hashes()
    args.out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out}: {sum(len(v) for v in record.values())} hashes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
