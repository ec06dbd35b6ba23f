"""Option values as configs and command lines write them: ``8``, ``"8"``, ``true``, a bare flag.

Shared by the config readers (:mod:`gpu_lol.analyzer.configs`) and the command-line parser
(:mod:`gpu_lol.analyzer.launch_commands`), which both read what the other finds.
"""

from __future__ import annotations

from typing import Any


def as_int(value: Any) -> int | None:
    """A whole number from a config or command value (``8``, ``"8"``), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def truthy(value) -> bool:
    """An option value that means "on": a bare flag, true/yes/1 in any case."""
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"))
