"""Importing coremltools quietly, and one error when it is missing.

coremltools logs a warning per missing native proxy on Linux (it has no CoreML runtime there)
and draws tqdm progress bars for every MIL pass pipeline; edgec's console shows neither.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

from edgec.errors import EdgecError

_QUIET_LOGGERS = ("coremltools",)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence coremltools' logging and progress bars (stderr) inside the block."""
    saved = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def coremltools():
    """The coremltools module; EdgecError saying how to install it when it is missing."""
    try:
        with quiet():
            import coremltools as ct
    except ImportError:
        raise EdgecError("the CoreML targets need coremltools: pip install 'coremltools>=9'") \
            from None
    return ct


def mil():
    """(Builder, types, Program, Function) from coremltools' MIL package."""
    coremltools()
    from coremltools.converters.mil import Builder
    from coremltools.converters.mil.mil import Function, Program, types

    return Builder, types, Program, Function
