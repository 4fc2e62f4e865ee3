"""`edgec.golden_record` and `edgec.golden_check`: golden-output regression cases
(docs/golden.md) from Python, doing what `edgec golden record / check` do
(edgec/golden/record.py, check.py).

A case points at its model file and replays its compile options, so the model must be a file;
calibration data given as arrays is saved beside the case folder (`<case>.calib.npz`; input
arrays are stored in the case by the record step), which keeps the case replayable by
`edgec golden check` alone.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgec.api.model import ModelSource
from edgec.api.options import calibration_batches, make_options
from edgec.console.html import TextTableView
from edgec.console.tables import fmt_err, fmt_snr
from edgec.errors import EdgecError
from edgec.golden import (
    CheckResult,
    RecordRow,
    check_cases,
    find_cases,
    record_case,
)
from edgec.targets import all_targets


def _targets(targets) -> list[str]:
    names = [targets] if isinstance(targets, str) else list(targets)
    names = [n.strip() for t in names for n in t.split(",") if n.strip()]
    return list(all_targets()) if "all" in names else list(dict.fromkeys(names))


def _stacked(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Batches {input: array} concatenated on axis 0 per input, as one .npz holds them."""
    names = list(batches[0])
    try:
        return {n: np.concatenate([np.asarray(b[n]) for b in batches]) for n in names}
    except (KeyError, ValueError) as e:
        raise EdgecError(f"the batches do not stack into one array per input ({e})") from None


def golden_record(model: str | os.PathLike, targets, directory: str | os.PathLike, *,
                  inputs=None, seed: int = 0, calib=None, name: str | None = None,
                  per_layer: bool = False, rtol: float = 1e-4, input_shapes=None,
                  **options) -> tuple[Path, list[RecordRow]]:
    """Record (or extend) the golden case of the ONNX file `model` under `directory` for
    `targets` (names, comma-separated or a list; "all"). inputs: a path, arrays or a dict
    by input name (None: seeded random); calib (int8 targets): a path or Python data as for
    edgec.compile. Returns (case folder, one RecordRow per target)."""
    if not isinstance(model, (str, os.PathLike)):
        raise EdgecError("a golden case points at its model file: save the model (onnx.save) "
                         "and pass its path")
    source = ModelSource(Path(model), None, Path(model).stem)
    case_dir = Path(directory) / (name or source.name)  # where record_case puts it
    names = _targets(targets)
    if not names:
        raise EdgecError("golden_record needs at least one target")
    python_calib = calib is not None and not isinstance(calib, (str, os.PathLike))
    if python_calib:  # into the case, so that `edgec golden check` replays it
        arrays = _stacked(calibration_batches(calib, source.input_names()))
        Path(directory).mkdir(parents=True, exist_ok=True)
        calib = case_dir.with_name(f"{case_dir.name}.calib.npz")
        np.savez(calib, **arrays)
    opts = make_options(names[0], input_shapes, calib, **options)
    with tempfile.TemporaryDirectory(prefix="edgec-golden-") as tmp:
        inputs_path = None
        if isinstance(inputs, (str, os.PathLike)):
            inputs_path = str(inputs)
        elif inputs is not None:
            batch = calibration_batches(inputs, source.input_names())
            inputs_path = str(Path(tmp) / "inputs.npz")
            np.savez(inputs_path, **_stacked(batch))
        return record_case(source.path, names, directory, opts, inputs_path=inputs_path,
                           seed=seed, per_layer=per_layer, rtol=rtol, name=name)


@dataclass
class GoldenCheck(TextTableView):
    """The outcome of golden_check: one CheckResult per (case, target)."""

    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no (case, target) regressed or failed (`edgec golden check` exit 0)."""
        return not any(r.failed for r in self.results)

    def _table(self):
        rows = [[r.case, r.target, r.status, fmt_err(r.max_abs_err), fmt_snr(r.snr_db),
                 r.first_divergent_layer or "-"] for r in self.results]
        failed = sum(r.failed for r in self.results)
        return (f"edgec golden check: {len(self.results)} checked, {failed} failed",
                ["case", "target", "status", "max abs err", "SNR dB", "first divergent layer"],
                rows)


def golden_check(directories, targets=None, *, sanitize: bool = False) -> GoldenCheck:
    """Rerun every recorded case found in `directories` (a path or a list), optionally only
    `targets`, and compare with the approved outputs, as `edgec golden check` does."""
    dirs = [directories] if isinstance(directories, (str, os.PathLike)) else list(directories)
    cases = find_cases(dirs)
    only = _targets(targets) if targets else None
    return GoldenCheck(check_cases(cases, only, sanitize=sanitize))
