"""Shared fixtures of the arm64 tests: skip without the cross toolchain and QEMU."""

from __future__ import annotations

import shutil

import pytest

ARM64_TOOLS = ("aarch64-linux-gnu-gcc", "qemu-aarch64")


def pytest_collection_modifyitems(config, items):
    """Every test under tests/arm64 needs gcc-aarch64-linux-gnu and qemu-user."""
    missing = [t for t in ARM64_TOOLS if shutil.which(t) is None]
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"needs {', '.join(missing)} (apt-get install "
                                   "gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)")
    for item in items:
        if "tests/arm64/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(skip)
