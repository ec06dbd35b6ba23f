"""Strings that reach shells or ssh: refused before any connection, or carried verbatim through
a real OpenSSH server on 127.0.0.1 — proven by marker files that must never appear."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hostile_cases import (HOST_CASES, HOST_FLAG_CASES, MARK, PLAN_FLAG_CASES, PROBE_CASES, REMOTE_FAULT_CASES,
                   SSH_ENV_CASES, SSH_EXEC_CASES, SSH_MODE_CASES, SSH_WORKDIR_CASES)
from hostile_checks import check_outcome, list_marks
from sshd import control_cleanup, remote_tmp, sshd_server  # noqa: F401 - fixtures


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text("import torch\n")
    return repo


def _no_marks(*roots: Path) -> None:
    assert not list_marks(*roots)
    assert not [n for n in os.listdir("/tmp") if n.startswith(MARK)]


@pytest.mark.parametrize("case", HOST_CASES, ids=[c.id for c in HOST_CASES])
def test_host_spec_refused(case, run_cli, tmp_path, no_marks):
    result = run_cli("up", _repo(tmp_path), "--host", case.build, "--yes", "--no-llm", cwd=tmp_path)
    check_outcome(result, case.expect, where=tmp_path)


@pytest.mark.parametrize("case", HOST_FLAG_CASES, ids=[c.id for c in HOST_FLAG_CASES])
def test_host_flag_refused(case, run_cli, tmp_path, no_marks):
    flag, value = case.build
    result = run_cli("up", _repo(tmp_path), "--host", "me@127.0.0.1:1", flag, value, "--yes", "--no-llm",
                     cwd=tmp_path)
    check_outcome(result, case.expect, where=tmp_path)


@pytest.mark.parametrize("case", PLAN_FLAG_CASES, ids=[c.id for c in PLAN_FLAG_CASES])
def test_plan_flag(case, run_cli, tmp_path, no_marks):
    flag, value = case.build
    result = run_cli("up", _repo(tmp_path), "--dry-run", "--json", "--no-llm", flag, value, cwd=tmp_path)
    check_outcome(result, case.expect, where=tmp_path)
    if result.code == 0:
        import shlex

        data = result.json()
        payloads = [value.partition("=")[2]] if flag == "--env" else value.split(":")
        if flag == "--env":
            assert data["spec"]["envs"][value.partition("=")[0]] == payloads[0]  # data, verbatim
        for script in (data["task"].get("setup") or "", data["task"].get("run") or ""):
            run_stubbed(script, tmp_path)
        _no_marks(tmp_path)


# Every command a rendered script could change the machine with is a no-op function; the
# shell itself (quoting, $(), backticks, ;) is real bash, and `touch` is the real one.
STUBS = "".join(f"{name}() {{ :; }}\n" for name in (
    "mkdir", "ln", "rm", "cp", "mv", "python", "python3", "pip", "pip3", "cd", "nvidia-smi", "sudo",
    "apt-get", "conda", "uv", "git", "curl", "wget", "chmod", "export", "source", "."))


def run_stubbed(script: str, cwd: Path) -> None:
    work = cwd / "stubbed"
    work.mkdir(exist_ok=True)
    (work / "script.sh").write_text(STUBS + script)
    subprocess.run(["bash", "script.sh"], cwd=work, capture_output=True, timeout=60,
                   env={"PATH": "/usr/bin:/bin", "HOME": str(work)})


@pytest.mark.parametrize("case", PROBE_CASES, ids=[c.id for c in PROBE_CASES])
def test_probe_output_runs_nothing(case, tmp_path, no_marks):
    """A host whose probe prints a hostile interpreter name: the setup script gpu-lol renders
    from it, run by a real bash, fails to find that interpreter and runs nothing else."""
    from gpu_lol.launch.state import Target
    from gpu_lol.machine import hosts
    from gpu_lol.spec import EnvironmentSpec

    pre = hosts._parse_preflight(f"home=/root\nrsync=yes\npython={case.build}\npython_version=3.11.7\n")
    assert pre.python == case.build.split("\n")[0]
    work = tmp_path / "work"
    work.mkdir()
    target = Target(name="box", kind="host", repo=str(tmp_path), extra={
        "host": "127.0.0.1", "workdir": str(work), "venv": str(work / ".gpu-lol" / "venv")})
    script, _ = hosts.render_setup(target, EnvironmentSpec(workload_type="cpu", gpu_count=0), pre.python)
    (work / "setup.sh").write_text(script)
    proc = subprocess.run(["bash", "setup.sh"], capture_output=True, text=True, cwd=work, timeout=60)
    assert proc.returncode != 0  # the hostile "interpreter" does not exist
    _no_marks(tmp_path)


# ---- a real sshd ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hostile_box(sshd_server, tmp_path_factory):  # noqa: F811
    """`up --host` once, with every hostile value as a spec env and a hostile workdir name."""
    import tempfile

    from gpu_lol.config import config_file
    from gpu_lol.launch import state
    from gpu_lol.machine import remote
    from gpu_lol.spec import EnvironmentSpec

    base = tmp_path_factory.mktemp("hostile-box")
    home = base / "home"
    home.mkdir()
    saved = {k: os.environ.get(k) for k in ("HOME", "GPU_LOL_HOME")}
    os.environ["HOME"], os.environ["GPU_LOL_HOME"] = str(home), str(home / ".gpu-lol")
    remote_root = Path(tempfile.mkdtemp(prefix="gpu-lol-remote-"))
    workdir = remote_root / "w; touch HOSTILE_MARK-wd 'q' * &"
    repo = base / "repo"
    repo.mkdir()
    (repo / "train.py").write_text("print('hi')\n")
    envs = {f"HOSTILE_{i}": value for i, value in enumerate(v.build for v in SSH_ENV_CASES)}
    spec = EnvironmentSpec(workload_type="cpu", gpu_count=0, vram_required_gb=0, base_image="x",
                           requirements=["packaging>=20"], envs=envs, providers=["runpod"])
    config_file.write(repo / ".gpu-lol.yaml", spec)
    import sys

    proc = subprocess.run([sys.executable, "-m", "gpu_lol", "up", str(repo), "--host", sshd_server.spec,
                           "--identity", str(sshd_server.identity), "--workdir", str(workdir),
                           "--name", "hbox", "--yes", "--no-llm"], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ))
    code = (proc.returncode, proc.stderr[-2000:])
    try:
        yield {"code": code, "repo": repo, "workdir": workdir, "envs": envs, "base": base,
               "remote": remote_root}
    finally:
        target = state.load("hbox")
        if target is not None:
            remote.close(target)
        import shutil

        shutil.rmtree(remote_root, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def box_env(hostile_box, monkeypatch):
    home = hostile_box["base"] / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GPU_LOL_HOME", str(home / ".gpu-lol"))
    return hostile_box


pytestmark_slow = pytest.mark.slow


@pytest.mark.slow
@pytest.mark.parametrize("case", SSH_WORKDIR_CASES, ids=[c.id for c in SSH_WORKDIR_CASES])
def test_ssh_workdir(case, box_env, run_cli):
    assert box_env["code"][0] == 0, box_env["code"]
    assert (box_env["workdir"] / "train.py").is_file()
    result = run_cli("exec", "hbox", "--", "pwd", "-P")
    check_outcome(result, case.expect)
    assert result.out.strip() == str(box_env["workdir"])
    _no_marks(box_env["base"], box_env["remote"])


@pytest.mark.slow
@pytest.mark.parametrize("case", SSH_ENV_CASES, ids=[c.id for c in SSH_ENV_CASES])
def test_ssh_env_value_verbatim(case, box_env, run_cli):
    assert box_env["code"][0] == 0, box_env["code"]
    key = next(k for k, v in box_env["envs"].items() if v == case.build)
    result = run_cli("exec", "hbox", "--", "printenv", key)
    check_outcome(result, case.expect)
    assert result.out == case.build + "\n"
    _no_marks(box_env["base"], box_env["remote"])


@pytest.mark.slow
@pytest.mark.parametrize("case", SSH_EXEC_CASES, ids=[c.id for c in SSH_EXEC_CASES])
def test_ssh_exec_word_verbatim(case, box_env, run_cli):
    result = run_cli("exec", "hbox", "--", "printf", "%s|", case.build, "end")
    check_outcome(result, case.expect)
    assert result.out == case.build + "|end|"
    _no_marks(box_env["base"], box_env["remote"])


@pytest.mark.slow
@pytest.mark.parametrize("case", SSH_MODE_CASES, ids=[c.id for c in SSH_MODE_CASES])
def test_ssh_home_is_private(case, box_env):
    """After a real `up --host` and execs: ssh config, known_hosts, logs, sockets, records."""
    from hostile_checks import loose_modes

    assert box_env["code"][0] == 0, box_env["code"]
    assert not loose_modes(box_env["base"] / "home" / ".gpu-lol")


@pytest.mark.slow
@pytest.mark.parametrize("case", REMOTE_FAULT_CASES, ids=[c.id for c in REMOTE_FAULT_CASES])
def test_remote_fault(case, box_env, run_cli):
    if case.id == "remote-exit-code":
        result = run_cli("exec", "hbox", "--", "sh", "-c", "exit 7")
        assert result.code == 7 and "Traceback" not in result.err
        return
    # the remote shell's sshd session is killed under the running command
    result = run_cli("exec", "hbox", "--", "sh", "-c", "kill -9 $PPID; sleep 5")
    assert "Traceback" not in result.out + result.err
    assert result.code != 0
    assert run_cli("exec", "hbox", "--", "true").code == 0  # the next command reconnects
