"""pytest plugin (entry point `pytest11: edgec`): a user's `pytest` collects edgec golden
cases as test items.

Every `edgec-golden.json` pytest meets while collecting (in the paths it is given, or its
`testpaths`) becomes a collector with one item per recorded target, named
`CASE_DIR/edgec-golden.json::TARGET` and marked `edgec_golden`. Running an item is
`edgec golden check` for that (case, target): `regression`, `model-changed` and `error`
fail with the check's explanation (first divergent layer included), `skipped` (a missing
cross compiler or emulator) skips. pytest's own `--junitxml`, `-k`, `-m` and xdist's `-n`
work as for any test.

Options: `--edgec-golden-targets T1,T2` checks only those targets; `--no-edgec-golden`
turns the collection off.
"""

from __future__ import annotations

from pathlib import Path

import pytest

MANIFEST = "edgec-golden.json"  # edgec.golden.manifest.MANIFEST; not imported: keep startup light


def pytest_addoption(parser) -> None:
    """The plugin's command-line options."""
    group = parser.getgroup("edgec", "edgec golden cases")
    group.addoption("--edgec-golden-targets", default="", metavar="T1,T2",
                    help="check only these recorded targets of edgec golden cases")
    group.addoption("--no-edgec-golden", action="store_true", default=False,
                    help="do not collect edgec golden cases (edgec-golden.json files)")


def pytest_configure(config) -> None:
    """Register the `edgec_golden` marker."""
    config.addinivalue_line("markers", "edgec_golden: an edgec golden case (edgec golden check)")


def pytest_collect_file(file_path: Path, parent):
    """Collect golden manifests."""
    if file_path.name != MANIFEST or parent.config.getoption("no_edgec_golden"):
        return None
    return GoldenCase.from_parent(parent, path=file_path)


class GoldenCheckFailure(Exception):
    """A (case, target) whose check did not pass; carries the CheckResult."""

    def __init__(self, result):
        super().__init__(result.status)
        self.result = result


class GoldenCase(pytest.File):
    """One golden case directory: an item per recorded target."""

    def collect(self):
        """Yield one GoldenItem per recorded (and selected) target."""
        from edgec.golden.manifest import read_case  # on use: every user's pytest loads this plugin

        case = read_case(self.path)
        wanted = [t.strip() for t in self.config.getoption("edgec_golden_targets").split(",")
                  if t.strip()]
        for target in case.targets:
            if wanted and target not in wanted:
                continue
            item = GoldenItem.from_parent(self, name=target, target=target)
            item.add_marker("edgec_golden")
            yield item


class GoldenItem(pytest.Item):
    """`edgec golden check` of one (case, target)."""

    def __init__(self, *, target: str, **kwargs):
        super().__init__(**kwargs)
        self.target = target

    def runtest(self) -> None:
        """Recompile, rerun and compare; fail or skip like `edgec golden check` reports."""
        from edgec.golden.check import check_target  # on use: the compiler, only for golden items
        from edgec.golden.manifest import read_case  # on use, as above

        result = check_target(read_case(self.path), self.target)
        if result.status == "skipped":
            pytest.skip(result.message or "skipped")
        if result.failed:
            raise GoldenCheckFailure(result)

    def repr_failure(self, excinfo, style=None):
        """The check's explanation instead of a Python traceback."""
        if isinstance(excinfo.value, GoldenCheckFailure):
            r = excinfo.value.result
            lines = [f"edgec golden check: {r.case} on {r.target}: {r.status}"]
            if r.max_abs_err is not None:
                lines.append(f"  max abs err against the recorded outputs: {r.max_abs_err:.6g}")
            if r.first_divergent_layer:
                lines.append(f"  first divergent layer: {r.first_divergent_layer} "
                             f"(tensor {r.first_divergent_tensor})")
            if r.message:
                lines.append(f"  {r.message}")
            lines.extend(f"  note: {n}" for n in r.notes)
            return "\n".join(lines)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        """Location shown in reports."""
        return self.path, None, f"edgec golden {self.path.parent.name} [{self.target}]"
