"""Output helpers: JSON to stdout, rich rendering only when something is drawn."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
from typing import Any, Iterator


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def _rich_colour() -> dict[str, Any]:
    # rich's own NO_COLOR support drops colours but keeps bold/dim/underline escapes; no colour
    # system at all means plain text (pipes already get plain text from rich).
    return {"color_system": None} if os.environ.get("NO_COLOR") else {}


def stdout():
    """A rich Console on stdout (imported on first use)."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, **_rich_colour())


def stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False, **_rich_colour())


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
    clear_progress_line()
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()


def info(message: str) -> None:
    clear_progress_line()
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def confirm(question: str, default: bool = False) -> bool:
    """Ask y/n on the terminal; with no terminal, the answer is no (use --yes)."""
    import click

    if not sys.stdin.isatty():
        return False
    return click.confirm(question, default=default)


# ---- progress lines --------------------------------------------------------------------------
# A step that can take over a second (the LLM call, starting SkyPilot's API server, the uv
# resolver, staging the workdir, importing SkyPilot) says what it is doing:
#   * stderr a terminal: a spinner and the message, redrawn in place with ``\r`` (no ANSI escape
#     codes, so NO_COLOR and TERM=dumb terminals get nothing they cannot show) and erased when the
#     step ends; TERM=dumb gets the plain line instead;
#   * stderr a pipe or a file: the message once, as one plain line;
#   * quiet (``--json``; see :func:`set_quiet`): nothing.

_quiet = False
_spinner_lock = threading.RLock()
_active: list["_Spinner"] = []

_FRAMES_UTF8 = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_FRAMES_ASCII = "|/-\\"


def set_quiet(value: bool = True) -> None:
    """Turn progress lines off (a command with ``--json``) or back on."""
    global _quiet
    _quiet = bool(value)


def is_quiet() -> bool:
    return _quiet


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty()) and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError, OSError):
        return False


class _Spinner:
    """The spinner line of one step, drawn by a daemon thread until :meth:`stop`."""

    def __init__(self, message: str, stream):
        self.message = message
        self.stream = stream
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        self.frames = _FRAMES_UTF8 if encoding == "utf8" else _FRAMES_ASCII
        self._stop = threading.Event()
        self._shown = 0  # characters on the line now
        self._thread = threading.Thread(target=self._run, name="gpu-lol-progress", daemon=True)

    def _width(self) -> int:
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            return 80
        return max(20, columns) if columns else 80  # 0: a pty nobody sized

    def draw(self, frame: str) -> None:
        line = f"{frame} {self.message}"
        line = line[: self._width() - 1]  # never wrap: ``\r`` only returns within one line
        pad = " " * max(0, self._shown - len(line))
        try:
            self.stream.write("\r" + line + pad)
            self.stream.flush()
        except (OSError, ValueError):
            return
        self._shown = len(line)

    def erase(self) -> None:
        if not self._shown:
            return
        try:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
        except (OSError, ValueError):
            pass
        self._shown = 0

    def _run(self) -> None:
        i = 0
        while not self._stop.wait(0.1):
            i += 1
            with _spinner_lock:
                if _active and _active[-1] is self:
                    self.draw(self.frames[i % len(self.frames)])

    def start(self) -> None:
        with _spinner_lock:
            if _active:
                _active[-1].erase()
            _active.append(self)
            self.draw(self.frames[0])
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        with _spinner_lock:
            self.erase()
            if self in _active:
                _active.remove(self)
            if _active:
                _active[-1].draw(_active[-1].frames[0])


def clear_progress_line() -> None:
    """Erase a spinner line before other text goes to stderr (it is redrawn on its next tick)."""
    with _spinner_lock:
        if _active:
            _active[-1].erase()


@contextlib.contextmanager
def progress(message: str, *, quiet: bool | None = None, stream=None) -> Iterator[None]:
    """Say ``message`` while the block runs (see the notes above); exceptions pass through."""
    out = stream if stream is not None else sys.stderr
    if _quiet if quiet is None else quiet:
        yield
        return
    if not _is_terminal(out):
        try:
            out.write(message + "\n")
            out.flush()
        except (OSError, ValueError):
            pass
        yield
        return
    spinner = _Spinner(message, out)
    spinner.start()
    try:
        yield
    finally:
        spinner.stop()


# ---- other programs' colours ------------------------------------------------------------------
# SkyPilot writes colorama codes and rich markup whatever its output is (a pipe, a file, a
# NO_COLOR terminal). Its output reaches the user through :func:`plain_stream`, which removes
# every ANSI escape sequence unless the stream is a terminal that wants colour.

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erase
                   r"|\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: titles, hyperlinks
                   r"|[PX^_][^\x1b]*\x1b\\"  # DCS/SOS/PM/APC strings
                   r"|[ -/]*[0-OQ-WYZ\\`-~])")  # the two- and three-byte escapes
_PARTIAL = re.compile(r"\x1b[^\x1b\x07]*$")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def wants_colour(stream) -> bool:
    """A terminal, and neither NO_COLOR (any non-empty value, no-color.org) nor TERM=dumb."""
    return _is_terminal(stream) and not os.environ.get("NO_COLOR")


class _PlainStream:
    """A text stream that passes writes on without ANSI escapes (and says it is no terminal)."""

    def __init__(self, out):
        self._out = out
        self._held = ""  # an escape sequence cut between two writes

    def write(self, text: str) -> int:
        data = self._held + text
        self._held = ""
        partial = _PARTIAL.search(data)
        if partial is not None and not _ANSI.match(data, partial.start()) and len(data) - partial.start() < 64:
            self._held, data = data[partial.start():], data[:partial.start()]
        self._out.write(strip_ansi(data))
        return len(text)

    def flush(self) -> None:
        self._out.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._out.fileno()

    def __getattr__(self, name: str):
        return getattr(self._out, name)


def plain_stream(stream=None):
    """``stream`` (default stderr) itself where colour is wanted, else one that strips ANSI codes."""
    out = stream if stream is not None else sys.stderr
    if isinstance(out, _PlainStream) or wants_colour(out):
        return out
    return _PlainStream(out)
