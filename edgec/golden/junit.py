"""JUnit XML for CI systems: one <testsuite> per golden case, one <testcase> per (case,
target). `regression` and `model-changed` are failures, `error` is an error, `skipped`
(a missing cross compiler or emulator) is skipped. Written with xml.etree, so any name is
escaped properly and the file parses with a standard XML parser.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from edgec.golden.check import CheckResult


def _details(r: CheckResult) -> str:
    lines = [f"status: {r.status}"]
    if r.max_abs_err is not None:
        lines.append(f"max abs err: {r.max_abs_err:.6g}")
    if r.first_divergent_layer:
        lines.append(f"first divergent layer: {r.first_divergent_layer} "
                     f"(tensor {r.first_divergent_tensor})")
    if r.message:
        lines.append(r.message)
    lines.extend(r.notes)
    lines.append(f"case directory: {r.path}")
    return "\n".join(lines)


def junit_xml(results: list[CheckResult], suite_name: str = "edgec golden") -> ET.ElementTree:
    """The JUnit document of `results`."""
    by_case: dict[str, list[CheckResult]] = {}
    for r in results:
        by_case.setdefault(r.case, []).append(r)

    def counts(rs: list[CheckResult]) -> dict[str, str]:
        return {"tests": str(len(rs)),
                "failures": str(sum(r.status in ("regression", "model-changed") for r in rs)),
                "errors": str(sum(r.status == "error" for r in rs)),
                "skipped": str(sum(r.status == "skipped" for r in rs)),
                "time": f"{sum(r.seconds for r in rs):.3f}"}

    root = ET.Element("testsuites", {"name": suite_name, **counts(results)})
    for case, rs in by_case.items():
        suite = ET.SubElement(root, "testsuite", {"name": case, **counts(rs)})
        for r in rs:
            tc = ET.SubElement(suite, "testcase", {"classname": f"golden.{case}",
                                                   "name": r.target, "time": f"{r.seconds:.3f}"})
            summary = f"{r.status}: {r.message}" if r.message else r.status
            if r.first_divergent_layer:
                summary += f" (first divergent layer: {r.first_divergent_layer})"
            if r.status in ("regression", "model-changed"):
                ET.SubElement(tc, "failure", {"type": r.status, "message": summary}).text = \
                    _details(r)
            elif r.status == "error":
                ET.SubElement(tc, "error", {"type": "error", "message": summary}).text = \
                    _details(r)
            elif r.status == "skipped":
                ET.SubElement(tc, "skipped", {"message": r.message or "skipped"})
            ET.SubElement(tc, "system-out").text = _details(r)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(results: list[CheckResult], path: str | Path) -> Path:
    """Write the JUnit XML of `results` to `path` (UTF-8, with an XML declaration)."""
    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    junit_xml(results).write(p, encoding="utf-8", xml_declaration=True)
    return p
