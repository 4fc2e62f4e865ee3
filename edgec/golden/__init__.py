"""Golden-output regression testing: record approved outputs per model and target, check
them again after a retrain, a compiler upgrade or a flag change (docs/golden.md).

- `record_case` (`edgec golden record`): edgec/golden/record.py
- `check_cases` (`edgec golden check`): edgec/golden/check.py
- the case layout and manifest: edgec/golden/manifest.py
- JUnit XML: edgec/golden/junit.py; the pytest plugin: edgec/pytest_plugin.py
"""

from __future__ import annotations

from collections import Counter

from edgec.console.tables import fmt_err, fmt_snr, shorten, table
from edgec.golden.check import CheckResult, check_cases, check_target, count_checks
from edgec.golden.junit import junit_xml, write_junit
from edgec.golden.manifest import MANIFEST, Case, find_cases, read_case
from edgec.golden.record import RecordRow, record_case

__all__ = [
    "MANIFEST", "Case", "CheckResult", "RecordRow", "check_cases", "check_target",
    "check_text", "count_checks", "find_cases", "junit_xml", "read_case", "record_case",
    "record_text", "write_junit",
]


def check_text(results: list[CheckResult]) -> str:
    """The human report of `edgec golden check`: table, failure details, summary line."""
    header = ["case", "target", "max abs err", "SNR dB", "status", "first divergent layer"]
    rows = [[shorten(r.case, 32), r.target, fmt_err(r.max_abs_err), fmt_snr(r.snr_db),
             r.status, shorten(r.first_divergent_layer or "", 48)] for r in results]
    plural = "s" if len(results) != 1 else ""
    lines = [f"edgec golden check: {len(results)} (case, target) pair{plural}",
             table(header, rows, right={2, 3}, status_col=4)]
    details = [r for r in results if r.status != "pass" and (r.message or r.notes)]
    if details:
        lines.append("details:")
        for r in details:
            text = r.message or ""
            if r.first_divergent_layer:
                text += (f"; first divergent layer {r.first_divergent_layer} "
                         f"(tensor {r.first_divergent_tensor})")
            lines.append(f"  {r.case} / {r.target}: {r.status}: {text.lstrip('; ')}")
            lines.extend(f"    note: {n}" for n in r.notes)
    counts = Counter(r.status for r in results)
    failed = sum(r.failed for r in results)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    lines.append(f"edgec golden check: {summary or 'nothing to check'} -> "
                 f"{'FAIL' if failed else 'PASS'}")
    return "\n".join(lines)


def record_text(case_dir, rows: list[RecordRow]) -> str:
    """The human report of `edgec golden record`."""
    header = ["target", "max abs err", "max rel err", "SNR dB", "status"]
    body = [[r.target, fmt_err(r.max_abs_err), fmt_err(r.max_rel_err), fmt_snr(r.snr_db),
             r.status] for r in rows]
    head = (f"edgec golden record: {case_dir} (errors against the reference: onnxruntime "
            "fp32; int8 targets are bit-exact with edgec's int8 reference)")
    lines = [head, table(header, body, right={1, 2, 3}, status_col=4)]
    lines.extend(f"  {r.target}: {r.message}" for r in rows if r.message)
    recorded = sum(r.status == "recorded" for r in rows)
    lines.append(f"edgec golden record: {recorded} of {len(rows)} target"
                 f"{'s' if len(rows) != 1 else ''} recorded")
    return "\n".join(lines)
