"""`edgec golden check`: recompile and rerun every recorded (case, target), compare with the
approved outputs.

Per (case, target):
1. The model file's sha256 is compared with the recorded one; a difference makes the status
   `model-changed` (a failure: the approved outputs describe another model) whatever the
   outputs do, and the check goes on to show how far the outputs moved.
2. The model is compiled with the recorded options for the target as edgec defines it today
   (so a compiler upgrade or a target flag change is what the check exercises), built, and
   run on the recorded inputs.
3. Each output is compared with the recorded target output: int8 targets bit for bit (except
   outputs of a float island, e.g. a final Softmax, which use the tolerance), fp32 targets
   with max |new - recorded| / max |recorded| <= the recorded rtol. Any difference makes the
   status `regression`.
4. When the status is not `pass` and the case was recorded with --per-layer, the debug
   build dumps every layer and the first layer (execution order) whose tensor differs from
   the recorded one names the place where things started to go wrong.
Build tools that are missing (a cross compiler, qemu) make the status `skipped`; anything
else that fails is `error`. CoreML targets run as their package's MIL program in numpy
(edgec/workbench/coreml_verify.py) and have no per-layer location.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgec import __version__
from edgec.compiler import compile_model, file_sha256
from edgec.errors import EdgecError, TargetError
from edgec.golden.manifest import Case, load_tensors
from edgec.golden.options import flags_changed, options_from_json
from edgec.targets import get_target
from edgec.workbench.compare import DEFAULT_RTOL, compare, split_batches
from edgec.workbench.debug import dump_layers
from edgec.workbench.per_layer import compare_to_source, first_divergent
from edgec.workbench.verify import run_compiled

FAILING = ("regression", "model-changed", "error")


@dataclass
class CheckResult:
    """The outcome of one (case, target)."""

    case: str
    target: str
    status: str  # pass | regression | model-changed | error | skipped
    max_abs_err: float | None = None
    snr_db: float | None = None
    first_divergent_layer: str | None = None
    first_divergent_tensor: str | None = None
    message: str = ""
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    path: str = ""

    @property
    def failed(self) -> bool:
        """True for statuses that make `edgec golden check` exit 1."""
        return self.status in FAILING

    def as_dict(self) -> dict:
        """The row of `--json` (`cases` list)."""
        snr = None if self.snr_db is None or math.isinf(self.snr_db) else round(self.snr_db, 3)
        err = self.max_abs_err if self.max_abs_err is None or math.isfinite(self.max_abs_err) \
            else None  # JSON has no infinity: shapes that no longer match
        return {"case": self.case, "target": self.target, "status": self.status,
                "max_abs_err": err, "first_divergent_layer":
                self.first_divergent_layer, "first_divergent_tensor":
                self.first_divergent_tensor, "snr_db": snr, "message": self.message,
                "notes": list(self.notes), "path": self.path, "seconds": round(self.seconds, 3)}


def _samples(case: Case, result) -> list[dict[str, np.ndarray]]:
    feeds = load_tensors(case.path, case.manifest["inputs"]["tensors"])
    return split_batches(result.source_graph, feeds)


def _compare_outputs(entry: dict, case: Case, outputs: dict[str, np.ndarray]
                     ) -> tuple[bool, float, float, list[str]]:
    """(ok, worst max abs err, worst SNR, failure descriptions) against the recorded outputs."""
    rtol = float(entry.get("tolerance", {}).get("rtol", DEFAULT_RTOL))
    recorded = load_tensors(case.path, entry["outputs"])
    ok, worst_abs, worst_snr, why = True, 0.0, math.inf, []
    for row in entry["outputs"]:
        name = row["name"]
        if name not in outputs:
            ok = False
            why.append(f"output '{name}' no longer exists")
            continue
        exact = row.get("compare") == "exact"
        c = compare(name, np.asarray(outputs[name]), recorded[name], rtol, exact=exact)
        worst_abs = max(worst_abs, c.max_abs_err)
        worst_snr = min(worst_snr, c.snr_db)
        if not c.ok:
            ok = False
            why.append(f"{name}: {c.mismatched}/{c.numel} elements differ (bit-exact expected)"
                       if exact else f"{name}: max rel err {c.max_rel_err:.3g} > rtol {rtol:g}")
    return ok, worst_abs, worst_snr, why


def _locate(case: Case, entry: dict, result, sample, rtol: float):
    """The first divergent layer against the recorded per-layer tensors, or None when the
    case has none for this target."""
    if result.target.is_int8:
        per_layer = entry.get("per_layer")
    else:
        per_layer = case.manifest.get("per_layer")
    if not per_layer:
        return None
    recorded = load_tensors(case.path, per_layer["tensors"])
    with tempfile.TemporaryDirectory(prefix="edgec-golden-debug-") as tmp:
        entries, dumps, _ = dump_layers(result, sample, Path(tmp))
    rows = compare_to_source(entries, dumps, recorded, rtol, exact=result.target.is_int8)
    return first_divergent(rows)


def check_target(case: Case, target: str, sanitize: bool = False,
                 cc: str | None = None) -> CheckResult:
    """Recompile, rerun and compare one recorded target of `case`."""
    t0 = time.perf_counter()
    res = CheckResult(case.name, target, "error", path=str(case.path))
    try:
        _check(case, target, res, sanitize, cc)
    except TargetError as e:
        if "not installed" in str(e):
            res.status = "skipped"
        res.message = str(e)
    except EdgecError as e:
        res.message = str(e)
    except Exception as e:  # noqa: BLE001 - a bug in edgec: report this pair, check the rest
        first = (str(e).splitlines() or [""])[0]
        res.message = f"internal error: {type(e).__name__}: {first} (please report it)"
    res.seconds = time.perf_counter() - t0
    return res


def _check(case: Case, target: str, res: CheckResult, sanitize: bool, cc: str | None) -> None:
    m = case.manifest
    entry = m["targets"][target]
    model = case.model_path
    if not model.is_file():
        raise EdgecError(f"model file '{model}' (recorded as '{m['model']['path']}') is missing")
    changed = file_sha256(model) != m["model"]["sha256"]
    t = get_target(target)
    notes = []
    if flags_changed(entry, t):
        notes.append(f"target flags changed since recording: {', '.join(flags_changed(entry, t))}")
    if m.get("edgec_version") != __version__:
        notes.append(f"recorded by edgec {m.get('edgec_version')}, checked by {__version__}")
    res.notes = tuple(notes)
    options = options_from_json(entry.get("options", {}), case.path, target)
    try:
        result = compile_model(model, options)
        samples = _samples(case, result)
    except TargetError:
        raise
    except EdgecError as e:
        if not changed:
            raise
        res.status, res.message = "model-changed", f"the changed model no longer compiles: {e}"
        return
    with tempfile.TemporaryDirectory(prefix="edgec-golden-") as tmp:
        compiled = run_compiled(result, samples, Path(tmp), sanitize=sanitize, cc=cc)
    names = list(compiled[0])
    outputs = {n: np.concatenate([c[n] for c in compiled]) if len(compiled) > 1
               else compiled[0][n] for n in names}
    ok, res.max_abs_err, res.snr_db, why = _compare_outputs(entry, case, outputs)
    if changed:
        res.status = "model-changed"
        why.insert(0, f"model sha256 {file_sha256(model)[:12]} differs from the recorded "
                      f"{m['model']['sha256'][:12]}; re-record once the new outputs are "
                      "approved")
    else:
        res.status = "pass" if ok else "regression"
    res.message = "; ".join(why)
    if res.status == "pass":
        return
    if result.target.backend == "coreml":  # no C to dump layers from (docs/coreml.md)
        res.notes += ("CoreML targets have no per-layer dump: the first divergent layer "
                      "is not located"),
        return
    rtol = float(entry.get("tolerance", {}).get("rtol", DEFAULT_RTOL))
    try:
        first = _locate(case, entry, result, samples[0], rtol)
    except EdgecError as e:  # the outputs already tell the story; say why layers could not
        res.message += f"; per-layer comparison failed: {e}"
        return
    if first is not None:
        res.first_divergent_layer = first.entry.layer_name
        res.first_divergent_tensor = first.entry.key


def check_cases(cases: list[Case], targets: list[str] | None = None, sanitize: bool = False,
                cc: str | None = None, progress=None) -> list[CheckResult]:
    """Check every recorded target of every case (only `targets` when given), in order.
    `progress()` is called after each (case, target)."""
    results = []
    for case in cases:
        for target in case.targets:
            if targets and target not in targets:
                continue
            results.append(check_target(case, target, sanitize=sanitize, cc=cc))
            if progress:
                progress()
    return results


def count_checks(cases: list[Case], targets: list[str] | None = None) -> int:
    """How many (case, target) pairs `check_cases` will run."""
    return sum(1 for c in cases for t in c.targets if not targets or t in targets)
