"""Progress lines (gpu_lol.console.progress) and SkyPilot's colours, seen as a user sees them.

The real ``gpu-lol`` executable runs with stderr on a pty (a terminal: a spinner redrawn with
``\\r``, erased at the end, no ANSI escape) or on a pipe (one plain line), and with ``--json``
(nothing). The slow step is a real one: the LLM call, to the scripted OpenAI-compatible server on
127.0.0.1 (tests/llm_server.py)."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from llm_server import LLMServer, planted_repo
from sshd import read_until

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ANSWER = {"workload_type": "training", "gpu_type": "A100-80GB", "gpu_count": 1, "vram_required_gb": 46,
          "model": {"name": "meta-llama/Llama-3.1-70B", "params_b": 70.6, "method": "qlora"},
          "reasoning": "QLoRA on the 70B base in 4-bit with paged AdamW (train.py)."}
ESC = "\x1b"


def _exe() -> str:
    path = Path(sys.executable).with_name("gpu-lol")
    assert path.exists(), f"{path} missing"
    return str(path)


@pytest.fixture
def server(monkeypatch):
    with LLMServer() as srv:
        monkeypatch.setenv("GPU_LOL_LLM_URL", srv.url)
        monkeypatch.setenv("GPU_LOL_LLM_KEY", "sk-test-progressKq8Wm3Zp1Xr7Tn5Bv")
        monkeypatch.setenv("GPU_LOL_LLM_MODEL", "scripted-model")
        monkeypatch.setenv("GPU_LOL_LLM_TIMEOUT", "10")
        yield srv


def _on_pty(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``gpu-lol ARGS`` with stderr on a pty (stdout on a pipe); (code, stdout, terminal text)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # 160 columns
    proc = subprocess.Popen([_exe(), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=slave, env={**os.environ, "TERM": "xterm", **(env or {})})
    os.close(slave)
    try:
        seen = read_until(master, b"\x00never\x00", timeout=120)  # until the pty closes
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(master)
    return proc.returncode, out.decode(), seen.decode("utf-8", "replace")


def test_llm_call_spins_on_a_terminal_without_escape_codes(server, tmp_path):
    root, _ = planted_repo(FIXTURES, tmp_path)
    server.answer(ANSWER, delay=0.5)  # long enough for the spinner to be redrawn a few times
    code, out, terminal = _on_pty(["analyze", str(root)])
    assert code == 0, terminal
    message = "Asking scripted-model at 127.0.0.1:"
    assert message in terminal and "about the repo..." in terminal
    assert ESC not in terminal  # no colour, no cursor codes: \r and spaces only
    # drawn as "\r<frame> message", then erased by "\r<spaces>\r": the line does not stay
    start = terminal.index("\r", 0)
    drawn = terminal[start:].split("\r")[1]
    assert drawn[0] in "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏|/-\\" and drawn[2:].startswith(message)
    assert "\r" + " " * len(drawn) + "\r" in terminal
    assert "\n" not in terminal[start:terminal.index("\r" + " " * len(drawn) + "\r")]  # one line, redrawn
    assert "gpu-lol analyze" in out  # the panel itself is on stdout
    assert len(server.requests) == 1


def test_llm_call_is_one_plain_line_on_a_pipe(server, tmp_path):
    root, _ = planted_repo(FIXTURES, tmp_path)
    server.answer(ANSWER)
    proc = subprocess.run([_exe(), "analyze", str(root)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("Asking ")]
    assert lines == [f"Asking scripted-model at 127.0.0.1:{server.port} about the repo..."], proc.stderr
    assert "\r" not in proc.stderr and ESC not in proc.stderr and ESC not in proc.stdout


def test_json_prints_no_progress_line(server, tmp_path):
    root, _ = planted_repo(FIXTURES, tmp_path)
    server.answer(ANSWER)
    code, out, terminal = _on_pty(["analyze", str(root), "--json"])
    assert code == 0, terminal
    assert json.loads(out)["source"] == "llm"  # the LLM was asked...
    assert "Asking" not in terminal and "\r" not in terminal  # ...without a word on stderr


def test_cached_answer_needs_no_progress_line(server, tmp_path):
    root, _ = planted_repo(FIXTURES, tmp_path)
    server.answer(ANSWER)
    first = subprocess.run([_exe(), "analyze", str(root)], capture_output=True, text=True, timeout=120)
    again = subprocess.run([_exe(), "analyze", str(root)], capture_output=True, text=True, timeout=120)
    assert "Asking " in first.stderr and "Asking " not in again.stderr, again.stderr
    assert len(server.requests) == 1


# ---- the helper itself, on real streams ----------------------------------------------------------

def test_progress_on_a_pipe_and_quiet():
    from gpu_lol import console

    out = io.StringIO()
    with console.progress("Doing a thing...", stream=out):
        pass
    with console.progress("Not shown", stream=out, quiet=True):
        pass
    assert out.getvalue() == "Doing a thing...\n"
    console.set_quiet(True)
    try:
        with console.progress("Not shown either", stream=out):
            pass
    finally:
        console.set_quiet(False)
    assert out.getvalue() == "Doing a thing...\n"


def test_progress_passes_exceptions_and_erases_its_line_on_a_pty():
    from gpu_lol import console

    master, slave = pty.openpty()
    stream = os.fdopen(slave, "w", encoding="utf-8", closefd=True)
    try:
        with pytest.raises(KeyboardInterrupt):
            with console.progress("Waiting for Ctrl-C...", stream=stream):
                raise KeyboardInterrupt
        with console.progress("outer step..."):
            pass  # sys.stderr is pytest's capture here: a plain line, not our pty
        stream.flush()
        text = read_until(master, b"\r" + b" " * len("x Waiting for Ctrl-C...") + b"\r", timeout=10).decode()
    finally:
        stream.close()
        os.close(master)
    assert text.startswith("\r") and "Waiting for Ctrl-C..." in text and ESC not in text
    assert not console._active  # no spinner left running


def test_plain_stream_strips_what_skypilot_writes(monkeypatch):
    import colorama

    from gpu_lol.console import plain_stream

    out = io.StringIO()
    stream = plain_stream(out)  # not a terminal
    stream.write(f"{colorama.Style.DIM}Failed to connect{colorama.Style.RESET_ALL} {colorama.Fore.YELLOW}"
                 "warn\x1b[")  # an escape cut between two writes
    stream.write("0m done \x1b]8;;https://x\x07link\x1b]8;;\x07\n")
    assert out.getvalue() == "Failed to connect warn done link\n"
    assert stream.isatty() is False

    master, slave = pty.openpty()
    try:
        tty = os.fdopen(slave, "w", closefd=False)
        monkeypatch.delenv("NO_COLOR", raising=False)
        monkeypatch.setenv("TERM", "xterm")
        assert plain_stream(tty) is tty  # a colour terminal gets SkyPilot's colours
        monkeypatch.setenv("NO_COLOR", "1")
        assert plain_stream(tty) is not tty and plain_stream(tty).isatty() is False
    finally:
        os.close(slave)
        os.close(master)


# ---- wrapped lines stay under their bullet (analyze's "why", paths and warnings; the plan's warnings)

def _section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if lines[i] and not lines[i].startswith(" ")), len(lines))
    return lines[start:end]


def test_wrapped_reasoning_is_indented_under_its_bullet(tmp_path):
    repo = FIXTURES / "repos" / "multi-gpu-accelerate"
    env = {**os.environ, "COLUMNS": "50", "GPU_LOL_RESOLVE": "off"}
    proc = subprocess.run([_exe(), "analyze", str(repo), "--no-llm"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    why = _section(proc.stdout, "why")
    assert why and all(len(line) <= 50 for line in why)
    bullets = [line for line in why if line.startswith("  • ")]
    wrapped = [line for line in why if not line.startswith("  • ")]
    assert bullets and wrapped, why  # a 50-column screen wraps at least one reasoning line
    assert all(line.startswith("    ") and line[4] != " " for line in wrapped), why
    assert all(line == line.rstrip() for line in why)  # no padding to the screen width


def test_wrapped_plan_warnings_are_indented(tmp_path):
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "launch" / "complete", repo)
    env = {**os.environ, "COLUMNS": "60", "GPU_LOL_RESOLVE": "off"}
    # --idle-minutes 0: the plan warns (at length) that nothing stops the machine
    proc = subprocess.run([_exe(), "up", str(repo), "--dry-run", "--no-llm", "--idle-minutes", "0"],
                          capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("warning: "))
    block = lines[first:]
    continued = [line for line in block if line and not line.startswith("warning: ")]
    assert continued, block  # at 60 columns a warning wraps
    assert all(line.startswith(" " * len("warning: ")) for line in continued), block


# ---- SkyPilot's own logging, spinner and prints, through gpu-lol's SkyPilot wrapper ----------------

CHATTY = """
import colorama, time
from gpu_lol.launch import skypilot
skypilot.load_sky()
from sky import sky_logging
from sky.utils import rich_utils

def chatty():
    logger = sky_logging.init_logger("sky.optimizer")
    with rich_utils.client_status("Optimizing the plan"):
        time.sleep(0.3)
        logger.info(f"{colorama.Fore.CYAN}Considered resources{colorama.Style.RESET_ALL}")
        logger.warning(f"{colorama.Fore.YELLOW}a SkyPilot warning{colorama.Style.RESET_ALL}")
    print(f"{colorama.Style.BRIGHT}printed by SkyPilot{colorama.Style.RESET_ALL}")

skypilot.call(chatty)
"""


def _chatty_on_pty(env: dict[str, str]) -> tuple[str, str]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen([sys.executable, "-c", CHATTY], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=slave, env={**os.environ, "TERM": "xterm", **env})
    os.close(slave)
    try:
        seen = read_until(master, b"\x00never\x00", timeout=120)
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 0, seen
    return out.decode(), seen.decode("utf-8", "replace")


def test_skypilot_output_on_a_no_color_terminal_has_no_escape_codes():
    out, terminal = _chatty_on_pty({"NO_COLOR": "1"})
    assert out == ""  # SkyPilot's chatter goes to stderr: stdout stays the command's result
    for text in ("Considered resources", "a SkyPilot warning", "printed by SkyPilot"):
        assert text in terminal
    assert ESC not in terminal, repr(terminal)


def test_skypilot_output_keeps_its_colours_on_a_colour_terminal():
    out, terminal = _chatty_on_pty({"NO_COLOR": ""})
    assert out == "" and "Considered resources" in terminal
    assert ESC + "[" in terminal  # SkyPilot's colours (and rich's spinner) where they are wanted


def test_skypilot_output_into_a_pipe_has_no_escape_codes():
    proc = subprocess.run([sys.executable, "-c", CHATTY], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TERM": "xterm", "NO_COLOR": ""})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and "Considered resources" in proc.stderr and "printed by SkyPilot" in proc.stderr
    assert ESC not in proc.stderr and "Loading SkyPilot...\n" in proc.stderr
