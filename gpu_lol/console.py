"""Output helpers: JSON to stdout, rich rendering only when something is drawn."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def stdout():
    """A rich Console on stdout (imported on first use)."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def human_bytes(n: int) -> str:
    """``1536`` -> ``1.5 KB``: sizes in plans and listings."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def warn(message: str) -> None:
    """One-line warning on stderr."""
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()


def info(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def confirm(question: str, default: bool = False) -> bool:
    """Ask y/n on the terminal; with no terminal, the answer is no (use --yes)."""
    import click

    if not sys.stdin.isatty():
        return False
    return click.confirm(question, default=default)
