"""Shared checks for the hostile suite: the outcome rules every case must meet."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import MARK, SECRET  # noqa: E402


def expected_code(expect: str) -> set[int]:
    if expect.startswith("works or error"):
        return {0, 1, 2}
    if expect.startswith("works"):
        return {0}
    match = re.match(r"error (\d+)", expect)
    assert match, expect
    return {int(match.group(1))}


def check_outcome(result, expect: str, *, where: Path | None = None) -> None:
    """The rules: allowed exit code, one `error:` line when failing, no traceback, no secret,
    no marker file a shell payload would have created."""
    text = result.out + result.err
    assert "Traceback" not in text, result
    assert SECRET not in text, "a planted secret was printed"
    assert result.code in expected_code(expect), result
    if result.code in (1, 2):
        lines = [line for line in result.err.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == 1, result
        assert "\n" not in errors[0]
    if where is not None:
        assert not list_marks(where), list_marks(where)


def list_marks(*roots: Path) -> list[str]:
    found = []
    todo = [str(r) for r in roots]
    while todo:  # iterative: os.walk recurses and a 1000-deep test tree exceeds the limit
        top = todo.pop()
        try:
            entries = list(os.scandir(top))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(MARK):  # what `touch HOSTILE_MARK-…` would have made
                found.append(entry.path)
            if entry.is_dir(follow_symlinks=False):
                todo.append(entry.path)
    return found


@pytest.fixture
def no_marks(tmp_path, isolated_home):
    """After the test: no marker file anywhere a payload could have written one."""
    yield
    roots = [tmp_path, isolated_home, Path.cwd()]
    assert not list_marks(*roots)
    assert not [n for n in os.listdir("/tmp") if n.startswith(MARK)]
