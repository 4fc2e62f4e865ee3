"""A progress bar for long compile steps (calibration, sensitivity analysis).

Shown only when stderr is a terminal: rich's bar when rich is installed, otherwise a plain
one-line text bar. Both vanish when the step ends (a finished command leaves only its own
lines, edgec/console/). Off a terminal (CI, pipes, tests) it prints nothing.
"""

from __future__ import annotations

import contextvars
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from edgec.console import visible

_SILENCED = contextvars.ContextVar("edgec_progress_silenced", default=False)


@contextmanager
def silenced() -> Iterator[None]:
    """No progress bar inside, even on a terminal (the Python API's quiet=True)."""
    token = _SILENCED.set(True)
    try:
        yield
    finally:
        _SILENCED.reset(token)


class Progress:
    """`with Progress("calibrating", total) as bar: bar.advance(k)`."""

    def __init__(self, label: str, total: int, enabled: bool | None = None):
        self.label = visible(label, limit=60)
        self.total = max(int(total), 1)
        self.done = 0
        self.enabled = (sys.stderr.isatty() and not _SILENCED.get()) if enabled is None \
            else enabled
        self._rich = None
        self._task = None
        self._t0 = time.perf_counter()
        self._last_draw = 0.0

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        try:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeRemainingColumn(),
                                      transient=True)
            self._rich.__enter__()
            self._task = self._rich.add_task(self.label, total=self.total)
        except ImportError:
            self._rich = None
            self._draw(force=True)
        return self

    def advance(self, steps: int = 1) -> None:
        """Mark `steps` more units as done."""
        self.done = min(self.done + steps, self.total)
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.update(self._task, completed=self.done)
        else:
            self._draw()

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last_draw < 0.1 and self.done < self.total:
            return
        self._last_draw = now
        width = 30
        filled = width * self.done // self.total
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(f"\r{self.label} [{bar}] {self.done}/{self.total} "
                         f"{now - self._t0:5.1f}s")
        sys.stderr.flush()

    def __exit__(self, *exc) -> None:
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.__exit__(*exc)
        else:  # erase the bar: the line is free for what comes next
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
