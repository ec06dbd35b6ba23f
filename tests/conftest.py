"""Shared test set-up: every test runs with a temporary HOME and GPU_LOL_HOME, no secrets and no
cloud or LLM settings from the developer's environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

_SCRUB_PREFIXES = ("GPU_LOL_", "SKYPILOT_", "RUNPOD_", "VAST_", "LAMBDA_", "OPENAI_", "HF_", "WANDB_",
                   "AWS_", "XDG_")
_SCRUB_NAMES = ("HUGGING_FACE_HUB_TOKEN",)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """A fresh HOME and GPU_LOL_HOME for each test; nothing from the real environment leaks in."""
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith(_SCRUB_PREFIXES) or key in _SCRUB_NAMES:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GPU_LOL_HOME", str(home / ".gpu-lol"))
    # no test reaches the package index unless it asks to (tests/test_resolve.py does)
    monkeypatch.setenv("GPU_LOL_RESOLVE", "off")
    return home


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the checkout")
    return SHARED


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def json(self):
        import json

        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[-500:]!r}, err={self.err[-500:]!r})"


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run ``gpu-lol ARGS`` in-process through the real entry point (error handling included)."""
    from gpu_lol.cli import main

    def _run(*args: str, cwd: Path | None = None) -> CliResult:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return _run


@pytest.fixture
def gpu_lol_exe() -> list[str]:
    """argv prefix to run the real console script in a subprocess."""
    exe = Path(sys.executable).with_name("gpu-lol")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "gpu_lol"]
