"""The outcome rules every hostile case must meet (imported by the tests and conftest)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from hostile_cases import MARK, SECRET  # noqa: E402


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


def loose_modes(root: Path) -> list[str]:
    """Anything under ``root`` readable or writable by group/others."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode) or stat.S_ISSOCK(st.st_mode):
                continue
            if stat.S_IMODE(st.st_mode) & 0o077:
                out.append(f"{path} {stat.S_IMODE(st.st_mode):04o}")
    st = os.stat(root)
    if stat.S_IMODE(st.st_mode) & 0o077:
        out.append(f"{root} {stat.S_IMODE(st.st_mode):04o}")
    return out
