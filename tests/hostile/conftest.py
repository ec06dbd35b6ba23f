"""Fixtures for the hostile suite (the outcome rules live in hostile_checks.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hostile_cases import MARK  # noqa: E402
from hostile_checks import list_marks  # noqa: E402

@pytest.fixture
def no_marks(tmp_path, isolated_home):
    """After the test: no marker file anywhere a payload could have written one."""
    yield
    roots = [tmp_path, isolated_home, Path.cwd()]
    assert not list_marks(*roots)
    assert not [n for n in os.listdir("/tmp") if n.startswith(MARK)]
