"""Test configuration: makes tests/helpers.py importable and provides shared fixtures."""

import os
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS_DIR))
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def zoo_dir():
    """Directory holding the zoo models (built on first use by tools/make_models.py)."""
    from helpers import ensure_zoo

    return ensure_zoo()
