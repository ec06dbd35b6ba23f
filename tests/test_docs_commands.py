"""Every `gpu-lol` command shown in README.md and docs/*.md code blocks.

Those that can run offline run for real (the console script, in a copy of the bundled example
repo, with a temporary HOME): they must exit 0 without a traceback. Those that need a cloud
account or a running machine are listed in NEEDS_A_MACHINE with the reason, and every command
found must be one or the other, so a command added to the docs is either run here or
classified on purpose. Docs must also not point at files outside the repository.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# first words after `gpu-lol` -> why the command is not run here
NEEDS_A_MACHINE = {
    "up": "launches a cloud machine (needs a provider account); `up --dry-run` runs here",
    "exec": "runs on a cluster",
    "ssh": "opens a shell on a cluster",
    "validate": "checks a cluster (validate --local is tested in test_validator)",
    "down": "tears down a cluster",
    "run": "submits a job to a cluster",
    "logs": "reads a cluster's logs",
    "pull": "copies from a cluster",
    "push": "copies to a cluster",
    "notebook": "starts Jupyter on a cluster",
    "code": "opens VS Code on a cluster",
    "forward": "forwards a cluster's port",
    "start": "starts a cluster",
    "stop": "stops a cluster",
    "snapshot": "probes a cluster (snapshot --local is tested in test_snapshot)",
    "templates": "asks RunPod's API (needs a key)",
}


def shown_commands() -> list[tuple[str, str]]:
    """(where, command) for each `gpu-lol ...` line in a fenced code block."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for block in re.finditer(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M):
            start = text[: block.start()].count("\n") + 2
            for offset, line in enumerate(block.group(1).splitlines()):
                line = line.strip().removeprefix("$ ")
                if line.startswith("gpu-lol ") or line == "gpu-lol":
                    command = re.split(r"\s+#\s", line, maxsplit=1)[0].strip()
                    found.append((f"{doc.relative_to(ROOT)}:{start + offset}", command))
    return found


def is_template(command: str) -> bool:
    """A synopsis (`gpu-lol exec [NAME] ... -- CMD...`), not a command to type."""
    return bool(re.search(r"\[[^\]]*\]|\.\.\.|\bUSER@HOST\b|\|", command))


COMMANDS = shown_commands()
RUNNABLE = [(w, c) for w, c in COMMANDS if not is_template(c)
            and not (shlex.split(c)[1:2] and shlex.split(c)[1] in NEEDS_A_MACHINE
                     and "--dry-run" not in shlex.split(c))]


def test_docs_show_commands():
    assert len(COMMANDS) >= 10
    assert len(RUNNABLE) >= 5


@pytest.mark.parametrize("where,command", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_every_shown_command_is_classified(where, command):
    if is_template(command):
        return
    words = shlex.split(command)
    sub = words[1] if len(words) > 1 else "--help"
    if "--dry-run" in words or sub.startswith("-"):
        return
    from gpu_lol.cli import COMMANDS as TABLE

    assert sub in TABLE, f"{where}: `{command}` uses an unknown command {sub!r}"
    if sub in NEEDS_A_MACHINE:
        return
    assert (where, command) in RUNNABLE


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    base = tmp_path_factory.mktemp("docs")
    repo = base / "my-ml-repo"
    shutil.copytree(ROOT / "examples" / "qlora-finetune", repo)
    home = base / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPU_LOL_", "SKYPILOT_"))}
    env.update(HOME=str(home), GPU_LOL_HOME=str(home / ".gpu-lol"), NO_COLOR="1")
    return repo, env


@pytest.mark.parametrize("where,command", RUNNABLE, ids=[w for w, _ in RUNNABLE])
def test_shown_command_runs_offline(where, command, sandbox, gpu_lol_exe):
    repo, env = sandbox
    words = shlex.split(command)
    args = [*gpu_lol_exe, *words[1:]]
    if words[1:2] in (["analyze"], ["init"], ["up"]) and "--no-llm" not in words:
        args.append("--no-llm")  # no LLM endpoint is configured: the same path, said explicitly
    stdin = "sk-docs-test-key\n" if words[-1] == "-" else ""
    proc = subprocess.run(args, cwd=repo, env=env, input=stdin, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, f"{where}: {command}\n{proc.stderr[-2000:]}"
    assert proc.returncode == 0, f"{where}: `{command}` exited {proc.returncode}\n{proc.stderr[-2000:]}"
    assert "sk-docs-test-key" not in proc.stdout + proc.stderr


def test_the_readme_demo_command_runs(sandbox, gpu_lol_exe):
    """`make demo` is this command (Makefile); the README says what it prints."""
    recipe = re.search(r"^demo:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    words = shlex.split(recipe.replace("$(BIN)/gpu-lol", "gpu-lol"))
    assert words[0] == "gpu-lol" and "--dry-run" in words
    _, env = sandbox
    proc = subprocess.run([*gpu_lol_exe, *words[1:]], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "$" in proc.stdout + proc.stderr  # a price is shown


def test_docs_link_only_to_files_in_the_repo():
    bad = []
    for doc in [*DOCS, *sorted((ROOT / ".claude").rglob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        prose = re.sub(r"`[^`\n]*`", "``", text)  # a `[x](` in inline code is not a link
        for m in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", prose):
            link = m.group(1)
            if re.match(r"[a-z]+:", link):
                continue
            target = (doc.parent / link).resolve()
            if not target.is_relative_to(ROOT) or not target.exists():
                bad.append(f"{doc.relative_to(ROOT)}: {link}")
        for m in re.finditer(r"\.\./shared/|/work/", text):
            line = text[: m.start()].count("\n") + 1
            bad.append(f"{doc.relative_to(ROOT)}:{line}: points outside the repository")
    assert not bad, "\n".join(bad)
