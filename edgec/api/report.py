"""`Report`: the content of report.json (docs/report.md) as a typed, read-only dataclass, with
tables for notebooks. Fields a back-end does not fill (a CoreML package has no arena) are
None; `as_dict()` returns report.json's content exactly, sections this class does not name
(e.g. "tflite", "coreml") included."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from edgec.console.html import TextTableView


@dataclass(frozen=True)
class Report(TextTableView):
    """What edgec compiled: target, costs, the memory plan's arena and the int8 calibration."""

    target: str
    precision: str
    edgec_version: str
    model: str | None = None
    model_sha256: str | None = None
    prefix: str | None = None
    ops: dict[str, int] = field(default_factory=dict)
    kernels: int | None = None
    macs: int | None = None
    params: int | None = None
    weights_bytes: int | None = None
    arena_bytes: int | None = None
    arena_lower_bound_bytes: int | None = None
    naive_bytes: int | None = None
    arena_alignment: int | None = None
    memory_strategy: str | None = None
    inputs: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)
    tensors: list[dict] = field(default_factory=list)
    quantization: dict | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, report: dict) -> Report:
        """A Report of report.json's content (unknown keys stay in `raw`)."""
        known = {f.name for f in fields(cls)} - {"raw"}
        values = {k: v for k, v in report.items() if k in known}
        values.setdefault("target", "?")
        values.setdefault("precision", "?")
        values.setdefault("edgec_version", "?")
        return cls(**values, raw=dict(report))

    def as_dict(self) -> dict:
        """report.json's content, exactly as written."""
        return dict(self.raw)

    @property
    def calibration(self) -> dict | None:
        """int8 static targets: how the ranges were calibrated (method, samples, source)."""
        return (self.quantization or {}).get("calibration")

    def _rows(self) -> list[list[object]]:
        def io(rows):
            return ", ".join(f"{r['name']} {r['dtype']}[{'x'.join(map(str, r['shape']))}]"
                             for r in rows)

        rows = [["target", f"{self.target} ({self.precision})"], ["model", self.model or "-"],
                ["inputs", io(self.inputs)], ["outputs", io(self.outputs)],
                ["ops", ", ".join(f"{k} x{v}" for k, v in self.ops.items())]]
        for name in ("kernels", "macs", "params", "weights_bytes", "arena_bytes",
                     "arena_lower_bound_bytes"):
            value = getattr(self, name)
            if value is not None:
                rows.append([name, f"{value:,}"])
        if self.quantization:
            q = self.quantization
            cal = q.get("calibration")
            how = f"{cal['method']} on {cal['samples']} samples" if cal else "-"
            summary = (f"{q.get('mode')}; calibration {how}; "
                       f"{len(q.get('layers', []))} int8 layers, "
                       f"{len(q.get('float_nodes', []))} float nodes")
            rows.append(["int8", summary])
        return rows

    def _table(self) -> tuple[str, list[str], list[list[object]]]:
        return f"edgec report: {self.model or 'model'} for {self.target}", ["field", "value"], self._rows()
