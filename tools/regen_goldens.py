#!/usr/bin/env python3
"""Regenerate the project's golden cases in golden/cases/ - deliberately, by hand.

Tests never run this: they check the committed cases (tests/golden/, and `pytest golden/`
through edgec's pytest plugin). Run it after a change that is meant to change outputs (an
int8 rounding fix, a new target), review `git diff --stat golden/cases`, and commit.

One case per committed zoo model (golden/models, docs/zoo.md), recorded for every target
edgec defines (`edgec targets`); a target whose cross compiler or emulator is missing here
is reported as skipped and keeps no entry:
  resnet8, dscnn  seeded random inputs (seed 0), int8 calibrated on seeded random inputs
  digits_cnn      the first 4 digits of the test split, int8 calibrated on digits_calib.npz,
                  recorded with --per-layer (its tensors are small), so that the suite also
                  exercises the first-divergent-layer machinery on committed files
  kws_lstm        the first 4 clips of kws_test.npz, int8 calibrated on kws_calib.npz
MobileNetV2 is not committed (about 14 MB), so it has no case.

usage: python tools/regen_goldens.py [--models resnet8,dscnn,digits_cnn,kws_lstm] [--targets T1,T2]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO / "golden" / "models"
CASES_DIR = REPO / "golden" / "cases"
MODELS = ("resnet8", "dscnn", "digits_cnn", "kws_lstm")
# Models recorded on the first DIGITS_SAMPLES of their test data, int8 calibrated on their
# calibration data: (test file, calibration file, the name the case records as its source)
DATA_FILES = {"digits_cnn": ("digits_test.npz", "digits_calib.npz", "digits_first4.npz"),
              "kws_lstm": ("kws_test.npz", "kws_calib.npz", "kws_first4.npz")}
DIGITS_SAMPLES = 4


def record(model: str, targets: list[str], out: Path) -> list:
    """Record the case of one zoo model afresh; returns its RecordRows."""
    from edgec.compiler import CompileOptions
    from edgec.golden import record_case, record_text

    shutil.rmtree(out / model, ignore_errors=True)
    options = CompileOptions()
    with tempfile.TemporaryDirectory(prefix="edgec-regen-") as tmp:
        inputs, per_layer = None, False
        if model in DATA_FILES:
            test, calib, source = DATA_FILES[model]
            x = np.load(MODELS_DIR / test)["x"][:DIGITS_SAMPLES]
            inputs = str(Path(tmp) / source)
            np.savez(inputs, x=x)
            options = CompileOptions(calib=str(MODELS_DIR / calib))
            per_layer = model == "digits_cnn"
        case_dir, rows = record_case(MODELS_DIR / f"{model}.onnx", targets, out, options,
                                     inputs_path=inputs, seed=0, per_layer=per_layer)
    print(record_text(case_dir.relative_to(REPO), rows))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Regenerate; exit 1 when a target could not be recorded (skips excepted)."""
    from edgec.targets import all_targets

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated zoo models")
    ap.add_argument("--targets", default="all", help="comma-separated targets (default all)")
    ap.add_argument("--out", type=Path, default=CASES_DIR, help="cases directory")
    args = ap.parse_args(argv)
    targets = list(all_targets()) if args.targets == "all" else args.targets.split(",")
    bad = 0
    for model in args.models.split(","):
        rows = record(model, targets, args.out)
        bad += sum(r.status not in ("recorded", "skipped") for r in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
