"""The on-disk layout of a golden case (documented in docs/golden.md).

A case is one model with one set of inputs, recorded for one or more targets:

    CASE/
      edgec-golden.json            the manifest (format "edgec-golden/1")
      inputs/NAME.npy              the inputs, one file per model input
      reference/NAME.npy           onnxruntime's fp32 outputs
      layers/NNN_TENSOR.npy        --per-layer: every tensor of the fp32 reference run
      targets/TARGET/outputs/NAME.npy      the compiled target's outputs (the approved ones)
      targets/TARGET/reference/NAME.npy    int8 targets: edgec's int8 reference outputs
      targets/TARGET/layers/NNN_TENSOR.npy int8 targets with --per-layer: every dumped
                                           tensor of the int8 reference run

Arrays are plain .npy files (no pickles); names in the manifest map tensor names to files,
so the file names themselves are only sanitised, numbered hints. Every path in the manifest
is relative to the case directory and uses '/'.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgec.errors import DataError

MANIFEST = "edgec-golden.json"
FORMAT = "edgec-golden/1"
STATUSES = ("pass", "regression", "model-changed", "error", "skipped")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(name: str, index: int | None = None, max_len: int = 60) -> str:
    """A file-system-safe stem for tensor `name` (numbered when `index` is given)."""
    stem = _UNSAFE.sub("_", name).strip("._") or "tensor"
    stem = stem[-max_len:].lstrip("._") or "tensor"
    return f"{index:03d}_{stem}" if index is not None else stem


def tensor_record(name: str, rel_path: str, arr: np.ndarray, **extra) -> dict:
    """The manifest row of one stored array."""
    return {"name": name, "file": rel_path, "shape": list(arr.shape), "dtype": str(arr.dtype),
            **extra}


def save_tensors(case_dir: Path, subdir: str, tensors: dict[str, np.ndarray],
                 numbered: bool = False, extra: dict[str, dict] | None = None) -> list[dict]:
    """Save arrays under case_dir/subdir; returns their manifest rows (in the given order)."""
    rows, used = [], set()
    (case_dir / subdir).mkdir(parents=True, exist_ok=True)
    for i, (name, arr) in enumerate(tensors.items()):
        stem = safe_file_name(name, i if numbered else None)
        while stem in used:
            stem += "_"
        used.add(stem)
        rel = f"{subdir}/{stem}.npy"
        arr = np.ascontiguousarray(np.asarray(arr))
        np.save(case_dir / rel, arr, allow_pickle=False)
        rows.append(tensor_record(name, rel, arr, **(extra or {}).get(name, {})))
    return rows


def load_tensors(case_dir: Path, rows: list[dict]) -> dict[str, np.ndarray]:
    """Arrays of manifest rows, by tensor name (DataError naming a missing file)."""
    out = {}
    for row in rows:
        path = case_dir / row["file"]
        try:
            out[row["name"]] = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise DataError(f"golden file '{path}' is missing") from None
        except ValueError as e:
            raise DataError(f"golden file '{path}' is not a readable .npy: {e}") from None
    return out


@dataclass
class Case:
    """A golden case on disk: its directory and parsed manifest."""

    path: Path
    manifest: dict

    @property
    def name(self) -> str:
        """The case name (the manifest's, else the directory's)."""
        return self.manifest.get("case") or self.path.name

    @property
    def targets(self) -> list[str]:
        """Recorded targets, in recording order."""
        return list(self.manifest.get("targets", {}))

    @property
    def model_path(self) -> Path:
        """The model file (the manifest stores it relative to the case directory)."""
        return (self.path / self.manifest["model"]["path"]).resolve()


def read_case(path: str | Path) -> Case:
    """Parse CASE/edgec-golden.json (DataError when it is not a golden manifest)."""
    p = Path(path)
    manifest_path = p / MANIFEST if p.is_dir() else p
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise DataError(f"'{p}' holds no {MANIFEST}") from None
    except json.JSONDecodeError as e:
        raise DataError(f"'{manifest_path}' is not valid JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"'{manifest_path}' is not an edgec golden manifest (format "
                        f"{manifest.get('format') if isinstance(manifest, dict) else None!r}, "
                        f"expected {FORMAT!r})")
    return Case(manifest_path.parent, manifest)


def manifest_json(obj, indent: int = 0) -> str:
    """JSON with one key per line but short lists of numbers or strings (shapes, flags) on
    one line: small diffs when a value changes."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {manifest_json(v, indent + 2)}"
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(obj, (list, tuple)):
        if all(not isinstance(v, (dict, list, tuple)) for v in obj):
            return json.dumps(list(obj))
        items = [f"{inner}{manifest_json(v, indent + 2)}" for v in obj]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(obj)


def write_manifest(case_dir: Path, manifest: dict) -> Path:
    """Write the manifest (see `manifest_json`), with one trailing newline."""
    path = case_dir / MANIFEST
    path.write_text(manifest_json(manifest) + "\n")
    return path


def find_cases(paths: list[str | Path]) -> list[Case]:
    """Every case under `paths` (a case directory, a manifest file, or a directory searched
    recursively), sorted by path; DataError when a path holds none."""
    cases: dict[Path, Case] = {}
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise DataError(f"'{p}' does not exist")
        if p.is_file() or (p / MANIFEST).exists():
            c = read_case(p)
            cases[c.path.resolve()] = c
            continue
        found = sorted(p.rglob(MANIFEST))
        if not found:
            raise DataError(f"'{p}' holds no golden case (no {MANIFEST} below it)")
        for m in found:
            c = read_case(m)
            cases[c.path.resolve()] = c
    return [cases[k] for k in sorted(cases)]
