"""Errors that reach the user as one line plus an optional hint.

Exit codes: 0 ok, 1 the operation failed, 2 bad usage or bad config.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class GpuLolError(Exception):
    """An error we can explain: printed as one line, never as a traceback."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class OperationError(GpuLolError):
    """The operation was valid but failed (exit 1)."""

    exit_code = EXIT_FAILED


class UsageError(GpuLolError):
    """Bad command-line usage (exit 2)."""

    exit_code = EXIT_USAGE


class ConfigError(GpuLolError):
    """A bad configuration file; the message names the file, field and line (exit 2)."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None, *, path: str | None = None,
                 field: str | None = None, line: int | None = None):
        where = ""
        if path:
            where = path + (f":{line}" if line else "")
        full = f"{where}: {message}" if where else message
        super().__init__(full, hint)
        self.path = path
        self.field = field
        self.line = line
