"""edgec.workbench.clocks on fake cpufreq trees: the lock sets governor and minimum frequency,
reports what it could not set, and restores every value it changed, even when the block fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgec.workbench.clocks import clocks_line, cpu_status, locked_clocks


def fake_cpufreq(root: Path, cpus: int = 2) -> Path:
    for cpu in range(cpus):
        d = root / f"cpu{cpu}" / "cpufreq"
        d.mkdir(parents=True)
        for name, value in {"scaling_governor": "schedutil", "scaling_min_freq": "408000",
                            "scaling_max_freq": "1800000", "cpuinfo_max_freq": "2400000",
                            "scaling_cur_freq": "408000"}.items():
            (d / name).write_text(value + "\n")
    return root


def test_lock_then_restore(tmp_path):
    root = fake_cpufreq(tmp_path)
    with locked_clocks(cpus=[0, 1], root=root) as state:
        assert state.locked
        for cpu in (0, 1):
            status = cpu_status(cpu, root)
            assert status["governor"] == "performance"
            assert status["min_khz"] == status["max_khz"] == 2400000
        assert clocks_line(state.summary()).startswith("locked: performance 2400000-2400000")
    for cpu in (0, 1):
        d = root / f"cpu{cpu}" / "cpufreq"
        assert (d / "scaling_governor").read_text() == "schedutil"
        assert (d / "scaling_min_freq").read_text() == "408000"
        assert (d / "scaling_max_freq").read_text() == "1800000"


def test_restored_when_the_measurement_fails(tmp_path):
    root = fake_cpufreq(tmp_path, cpus=1)
    with pytest.raises(RuntimeError), locked_clocks(cpus=[0], root=root):
        raise RuntimeError("benchmark failed")
    assert (root / "cpu0" / "cpufreq" / "scaling_governor").read_text() == "schedutil"


def test_refused_writes_are_reported_not_fatal(tmp_path, monkeypatch):
    root = fake_cpufreq(tmp_path, cpus=1)
    original = Path.write_text

    def refuse_governor(self, text, *a, **k):
        if self.name == "scaling_governor":
            raise PermissionError(13, "Permission denied")
        return original(self, text, *a, **k)

    monkeypatch.setattr(Path, "write_text", refuse_governor)
    with locked_clocks(cpus=[0], root=root) as state:
        assert not state.locked
        assert any("scaling_governor" in p and "Permission denied" in p for p in state.problems)
    assert (root / "cpu0" / "cpufreq" / "scaling_min_freq").read_text() == "408000"


def test_host_without_cpufreq(tmp_path):
    (tmp_path / "cpu0").mkdir()
    with locked_clocks(cpus=[0], root=tmp_path) as state:
        assert not state.locked and "no cpufreq" in state.problems[0]
    assert clocks_line(state.summary()).startswith("no cpufreq")
