"""Shell completion through click's real protocol: the ``gpu-lol`` executable run as a shell runs
it (``_GPU_LOL_COMPLETE=bash_complete COMP_WORDS=... COMP_CWORD=...``), and once through bash
itself with the script ``_GPU_LOL_COMPLETE=bash_source`` prints (the setup line of the docs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _exe() -> str:
    path = Path(sys.executable).with_name("gpu-lol")
    assert path.exists(), f"{path} missing"
    return str(path)


def complete(line: str, shell: str = "bash") -> list[str]:
    """What ``gpu-lol`` offers for the last word of ``line`` (a trailing space: a new, empty word)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    env = {**os.environ, "_GPU_LOL_COMPLETE": f"{shell}_complete", "COMP_WORDS": line, "COMP_CWORD": str(cword)}
    proc = subprocess.run([_exe()], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    if shell == "bash":
        return [row.split(",", 1)[1] for row in proc.stdout.splitlines() if row.startswith("plain,")]
    return proc.stdout.splitlines()


@pytest.fixture
def targets(isolated_home):
    folder = isolated_home / ".gpu-lol" / "targets"
    folder.mkdir(parents=True)
    for name, kind, spec in (("gpu-lol-trainer", "sky", {"gpu_type": "H100", "gpu_count": 2}),
                             ("gpu-lol-notes", "sky", {"workload_type": "interactive"}),
                             ("box", "host", {})):
        record = {"name": name, "kind": kind, "repo": str(isolated_home), "created_at": time.time(),
                  "spec": spec, "extra": {}}
        (folder / f"{name}.json").write_text(json.dumps(record))
    return folder


def test_command_names_complete_from_the_table():
    assert complete("gpu-lol an") == ["analyze"]
    assert complete("gpu-lol s") == ["start", "stop", "ssh", "snapshot"]
    offered = complete("gpu-lol ")
    from gpu_lol.cli import COMMANDS

    assert offered == list(COMMANDS)


def test_gpu_ids_complete_for_gpu_options():
    from gpu_lol.sizing.catalog import gpu_ids

    ids = gpu_ids()
    assert complete("gpu-lol up --gpu ") == ids
    h100 = complete("gpu-lol up --gpu h1")  # any case
    assert h100 and all(g.startswith("H1") for g in h100) and "H100" in h100
    assert complete("gpu-lol up --gpu 4090") == ["RTX4090"]  # no prefix match: a substring one
    assert complete("gpu-lol up . --gpus 2 --gpu A100-8") == [g for g in ids if g.startswith("A100-8")]
    assert complete("gpu-lol estimate meta-llama/Llama-3.1-8B --gpu RTX40") == \
        [g for g in ids if g.startswith("RTX40")]
    assert complete("gpu-lol up --gpu nosuchcard") == []


def test_zsh_gets_the_help_text_too():
    rows = complete("gpu-lol up --gpu RTX409", shell="zsh")
    assert rows[:2] == ["plain", "RTX4090"] and "GB" in rows[2] and "$" in rows[2]


def test_target_names_complete_for_name_arguments(targets):
    assert complete("gpu-lol down ") == ["box", "gpu-lol-notes", "gpu-lol-trainer"]
    assert complete("gpu-lol down box ") == ["gpu-lol-notes", "gpu-lol-trainer"]  # not twice
    assert complete("gpu-lol ssh gpu-lol-t") == ["gpu-lol-trainer"]
    assert complete("gpu-lol info B") == ["box"]
    assert complete("gpu-lol logs gpu-lol-n") == ["gpu-lol-notes"]
    assert complete("gpu-lol pull gpu") == ["gpu-lol-notes", "gpu-lol-trainer"]  # the first word only
    assert complete("gpu-lol pull gpu-lol-trainer ") == []
    assert complete("gpu-lol forward b") == ["box"]
    rows = complete("gpu-lol stop gpu-lol-tr", shell="zsh")
    assert rows == ["plain", "gpu-lol-trainer", "cluster, 2x H100"]


def test_no_names_and_no_traceback_without_records():
    assert complete("gpu-lol down ") == []


def test_a_completion_imports_no_skypilot(targets):
    env = {**os.environ, "_GPU_LOL_COMPLETE": "bash_complete", "COMP_WORDS": "gpu-lol down ", "COMP_CWORD": "2",
           "PYTHONPROFILEIMPORTTIME": "1"}
    proc = subprocess.run([_exe()], env=env, capture_output=True, text=True, timeout=60)
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "gpu_lol.launch.state" in imported
    assert not {"sky", "openai", "httpx", "rich"} & imported


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_documented_bash_setup_line_works(targets, tmp_path):
    bin_dir = Path(_exe()).parent
    script = f"""
        eval "$(_GPU_LOL_COMPLETE=bash_source gpu-lol)"
        complete -p gpu-lol
        COMP_WORDS=(gpu-lol down gpu-lol-t); COMP_CWORD=2
        _gpu_lol_completion gpu-lol
        printf 'reply:%s\\n' "${{COMPREPLY[@]}}"
        COMPREPLY=(); COMP_WORDS=(gpu-lol up --gpu L40); COMP_CWORD=3
        _gpu_lol_completion gpu-lol
        printf 'reply:%s\\n' "${{COMPREPLY[@]}}"
    """
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("complete ") and lines[0].endswith(" gpu-lol")
    from gpu_lol.sizing.catalog import gpu_ids

    assert lines[1:] == ["reply:gpu-lol-trainer"] + [f"reply:{g}" for g in gpu_ids() if g.startswith("L40")]


@pytest.mark.parametrize("shell,marker", [("bash", "complete -o nosort -F _gpu_lol_completion gpu-lol"),
                                          ("zsh", "#compdef gpu-lol"), ("fish", "complete --no-files --command gpu-lol")])
def test_each_documented_shell_gets_a_script(shell, marker):
    env = {**os.environ, "_GPU_LOL_COMPLETE": f"{shell}_source"}
    proc = subprocess.run([_exe()], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and marker in proc.stdout, proc.stdout[:500]
