"""Stable CPU clocks while measuring: cpufreq governor `performance`, minimum = maximum.

Latency measured under the default governor (schedutil/ondemand/powersave) mixes the model's
speed with the governor's ramp-up; phones and boards also boost and throttle. `locked_clocks`
sets, for the cores a benchmark runs on, `scaling_governor` to `performance` and
`scaling_min_freq` to `cpuinfo_max_freq` where the kernel lets it (root, a cpufreq driver that
exposes them), records what it could and could not set, and restores every value it changed
on the way out, even when the measurement fails. Virtual machines usually have no cpufreq at
all: then nothing is set and the status says so.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

CPU_ROOT = Path("/sys/devices/system/cpu")


@dataclass
class ClockState:
    """What each CPU ran under, and what was changed (to restore)."""

    cpus: dict[int, dict] = field(default_factory=dict)
    changed: list[tuple[Path, str]] = field(default_factory=list)  # (file, previous value)
    problems: list[str] = field(default_factory=list)

    @property
    def locked(self) -> bool:
        """True when every CPU runs the performance governor at its maximum frequency."""
        return bool(self.cpus) and all(c.get("governor") == "performance"
                                       and c.get("min_khz") == c.get("max_khz")
                                       for c in self.cpus.values())

    def summary(self) -> dict:
        """The report's `clocks` entry: per-CPU governor and frequencies, and what failed."""
        return {"locked": self.locked, "cpus": {str(k): v for k, v in self.cpus.items()},
                "problems": list(self.problems)}


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _khz(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def cpu_status(cpu: int, root: Path = CPU_ROOT) -> dict:
    """Governor and frequencies (kHz) of one CPU, or {'cpufreq': False} without cpufreq."""
    freq = root / f"cpu{cpu}" / "cpufreq"
    if not freq.is_dir():
        return {"cpufreq": False}
    return {"cpufreq": True, "governor": _read(freq / "scaling_governor"),
            "min_khz": _khz(_read(freq / "scaling_min_freq")),
            "max_khz": _khz(_read(freq / "cpuinfo_max_freq")),
            "cur_khz": _khz(_read(freq / "scaling_cur_freq"))}


def _write(state: ClockState, path: Path, value: str) -> bool:
    old = _read(path)
    if old is None:
        state.problems.append(f"{path} is missing")
        return False
    if old == value:
        return True
    try:
        path.write_text(value)
    except OSError as e:
        state.problems.append(f"cannot set {path} to {value}: {e.strerror or e}")
        return False
    state.changed.append((path, old))
    return True


def lock_clocks(cpus: Iterable[int] | None = None, root: Path = CPU_ROOT) -> ClockState:
    """Set the performance governor and minimum = maximum frequency on `cpus` (default: the
    CPUs this process may run on) as far as permitted; the returned state restores them."""
    cpus = sorted(os.sched_getaffinity(0) if cpus is None else cpus)
    state = ClockState()
    for cpu in cpus:
        freq = root / f"cpu{cpu}" / "cpufreq"
        if not freq.is_dir():
            state.problems.append(f"cpu{cpu}: no cpufreq (virtual machine or fixed clock)")
        else:
            _write(state, freq / "scaling_governor", "performance")
            top = _read(freq / "cpuinfo_max_freq")
            if top:
                # raise the ceiling first so the kernel accepts min = max
                _write(state, freq / "scaling_max_freq", top)
                _write(state, freq / "scaling_min_freq", top)
        state.cpus[cpu] = cpu_status(cpu, root)
    return state


def restore_clocks(state: ClockState) -> None:
    """Put back every value `lock_clocks` changed, last change first."""
    for path, old in reversed(state.changed):
        try:
            path.write_text(old)
        except OSError as e:
            state.problems.append(f"cannot restore {path} to {old}: {e.strerror or e}")
    state.changed.clear()


@contextlib.contextmanager
def locked_clocks(enabled: bool = True, cpus: Iterable[int] | None = None,
                  root: Path = CPU_ROOT) -> Iterator[ClockState]:
    """Clocks locked for the `with` block (or only observed when not enabled)."""
    if not enabled:
        cpus = sorted(os.sched_getaffinity(0) if cpus is None else cpus)
        yield ClockState(cpus={c: cpu_status(c, root) for c in cpus})
        return
    state = lock_clocks(cpus, root)
    try:
        yield state
    finally:
        restore_clocks(state)


def clocks_line(summary: dict) -> str:
    """One line for the bench printout: governor and frequency range, or why not locked."""
    cpus = summary.get("cpus") or {}
    if not cpus or not any(c.get("cpufreq") for c in cpus.values()):
        return "no cpufreq on this host (clocks as the hypervisor or firmware set them)"
    parts = sorted({f"{c.get('governor')} {c.get('min_khz')}-{c.get('max_khz')} kHz"
                    for c in cpus.values() if c.get("cpufreq")})
    state = "locked" if summary.get("locked") else "not locked"
    return f"{state}: " + "; ".join(parts)
