"""Shared fixtures of the Cortex-M tests: skip without arm-none-eabi-gcc and qemu-system-arm
(tools/setup.sh test installs both)."""

from __future__ import annotations

import shutil

import pytest

CORTEXM_TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm")


def pytest_collection_modifyitems(config, items):
    """Every test under tests/cortexm needs the Arm bare-metal toolchain and QEMU."""
    missing = [t for t in CORTEXM_TOOLS if shutil.which(t) is None]
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"needs {', '.join(missing)} (apt-get install "
                                   "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")
    for item in items:
        if "tests/cortexm/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(skip)
