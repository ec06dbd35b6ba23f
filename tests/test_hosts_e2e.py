"""End to end on a real OpenSSH server on 127.0.0.1: your own box as a target.

up --host -> exec (output, exit code, quoting, shell line) -> logs -> validate --json (no GPU
here: fails cleanly with the reason) -> snapshot -o -> down --purge -> exec on the removed target.
All through the real `gpu-lol` entry point.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpu_lol.config import config_file
from gpu_lol.launch import state
from gpu_lol.machine import remote
from gpu_lol.spec import EnvironmentSpec
from sshd import control_cleanup, remote_tmp, sshd_server  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def make_repo(root: Path, spec: EnvironmentSpec) -> Path:
    repo = root / "my repo"
    (repo / "data").mkdir(parents=True)
    (repo / "train.py").write_text("import sys\nprint('training', sys.argv[1:])\n")
    (repo / "data" / "shard-000.bin").write_bytes(b"\0" * 4096)
    (repo / ".gitignore").write_text("data/\n")
    config_file.write(repo / ".gpu-lol.yaml", spec)
    return repo


def gpu_spec() -> EnvironmentSpec:
    # Every field set, so the analysis takes the file as given. `packaging` is already in the
    # host's Python: the venv (with system site-packages) satisfies it without a download.
    return EnvironmentSpec(workload_type="training", gpu_type="L4", gpu_count=1, vram_required_gb=16,
                           base_image="runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404",
                           python_version=None, requirements=["packaging>=20"], setup_commands=[],
                           envs={"GREETING": "hello from the spec"}, providers=["runpod"])


@pytest.fixture
def box_repo(tmp_path, remote_tmp):  # noqa: F811
    repo = make_repo(tmp_path, gpu_spec())
    workdir = remote_tmp / "work"
    yield repo, workdir
    target = state.load("box")
    if target is not None:
        remote.close(target)


def interactive_shell(gpu_lol_exe, name: str, typed: bytes) -> tuple[int, list[str]]:
    """Run `gpu-lol ssh NAME` on a pseudo-terminal, type ``typed``; (exit code, output lines
    that answer it)."""
    import os
    import pty
    import select
    import subprocess
    import time

    master, slave = pty.openpty()
    proc = subprocess.Popen([*gpu_lol_exe, "ssh", name], stdin=slave, stdout=slave, stderr=slave,
                            env=os.environ.copy(), start_new_session=True)
    os.close(slave)
    os.write(master, typed)
    data = b""
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data += os.read(master, 4096)
                except OSError:
                    break
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    import re

    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", data.decode(errors="replace"))  # bracketed paste etc.
    lines = [l.strip() for l in text.replace("\r", "").splitlines()]
    wanted = [l for l in lines if l.startswith(("/", "VENV=", "G="))]
    return code, wanted


def test_host_end_to_end(run_cli, sshd_server, box_repo, gpu_lol_exe):  # noqa: F811
    repo, workdir = box_repo
    up = run_cli("up", repo, "--host", sshd_server.spec, "--identity", sshd_server.identity,
                 "--workdir", workdir, "--name", "box", "--yes", "--no-llm")
    assert up.code == 0, up
    # no GPU on this machine: --yes sets it up anyway, saying why
    assert "no NVIDIA driver" in up.err and "--yes" in up.err
    target = state.load("box")
    assert target is not None and target.kind == "host"
    assert target.extra["workdir"] == str(workdir) and target.extra["port"] == sshd_server.port
    assert (workdir / "train.py").is_file() and not (workdir / "data").exists()  # .gitignore honoured
    assert (workdir / ".gpu-lol" / "venv" / "bin" / "python").exists()
    venv_cfg = (workdir / ".gpu-lol" / "venv" / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in venv_cfg

    # exec: output, quoting, exit code, shell line, workdir + venv, spec envs
    out = run_cli("exec", "box", "--", "python", "train.py", "a b", "it's", "$HOME", "x;y")
    assert out.code == 0, out
    assert out.out == "training ['a b', \"it's\", '$HOME', 'x;y']\n"
    assert run_cli("exec", "box", "--", "sh", "-c", "exit 3").code == 3
    line = run_cli("exec", "box", "--", "echo one two three | wc -w")
    assert line.code == 0 and line.out.strip() == "3"
    where = run_cli("exec", "box", "--", 'pwd; python -c "import sys; print(sys.prefix)"; echo "$GREETING"')
    assert where.out.splitlines() == [str(workdir), str(workdir / ".gpu-lol" / "venv"), "hello from the spec"]
    # NAME defaults to the target launched from this repo
    assert run_cli("exec", "--", "true", cwd=repo).code == 0

    # ssh: an interactive login shell in the workdir with the venv and envs, on a terminal
    assert interactive_shell(gpu_lol_exe, "box", b"pwd; echo VENV=$VIRTUAL_ENV; echo G=$GREETING; exit 5\n") == (
        5, [str(workdir), f"VENV={workdir / '.gpu-lol' / 'venv'}", "G=hello from the spec"])

    # exec --sync sends a new file
    (repo / "new.py").write_text("print('new')\n")
    synced = run_cli("exec", "box", "--sync", "--", "python", "new.py")
    assert synced.code == 0 and synced.out == "new\n"

    # logs: the setup log
    logs = run_cli("logs", "box")
    assert logs.code == 0
    assert "gpu-lol: creating a virtualenv" in logs.out and "gpu-lol: setup finished" in logs.out
    assert "packaging" in logs.out  # pip ran inside the venv
    tail = run_cli("logs", "box", "-n", "1")
    assert tail.out.count("\n") == 1 and "setup finished" in tail.out

    # validate: no GPU here, so it fails cleanly with the reason
    validated = run_cli("validate", "box", "--json")
    assert validated.code == 1, validated
    data = validated.json()
    checks = {c["name"]: c for c in data["checks"]}
    assert data["ok"] is False and data["target"] == "box"
    assert checks["gpu"]["status"] == "fail" and "nvidia-smi not found" in checks["gpu"]["reason"]
    assert checks["packages"]["status"] == "pass"
    assert checks["code"]["status"] == "pass", checks["code"]
    assert data["facts"]["python"]["in_venv"] is True
    assert "Traceback" not in validated.err
    human = run_cli("validate", "box")
    assert human.code == 1 and "FAIL" in human.out and "nvidia-smi not found" in human.out

    # a local edit shows as code drift (a warning, not a failure of the machine)
    (repo / "train.py").write_text("print('edited')\n")
    drift = run_cli("validate", "box", "--json").json()
    code = {c["name"]: c for c in drift["checks"]}["code"]
    assert code["status"] == "warn" and "train.py" in code["reason"]

    # snapshot -o FILE
    snap_file = repo / "snapshot.yaml"
    snap = run_cli("snapshot", "box", "-o", snap_file)
    assert snap.code == 0, snap
    loaded = config_file.load(snap_file).data
    # the machine has no GPU, but the spec's GPU need is the repo's, not the machine's (issue 13.4)
    assert (loaded["workload_type"], loaded["gpu_type"], loaded["gpu_count"]) == ("training", "L4", 1)
    assert "this machine has no GPU" in snap.err
    assert loaded["python_version"]
    assert loaded["providers"] == ["runpod"] and loaded["envs"] == {"GREETING": "hello from the spec"}
    assert snap_file.read_text().startswith("# gpu-lol snapshot of box (")

    # down --purge deletes the workdir and the record
    down = run_cli("down", "box", "--purge", "--yes")
    assert down.code == 0, down
    assert not workdir.exists()
    assert state.load("box") is None
    assert not remote.host_ssh_config("box").exists()

    # exec on the removed target: a clear message
    gone = run_cli("exec", "box", "--", "true")
    assert gone.code == 1
    assert "no cluster or host named 'box'" in gone.err and "Traceback" not in gone.err


def test_up_host_refuses_a_gpu_spec_on_a_gpu_less_host_without_yes(run_cli, sshd_server, box_repo):  # noqa: F811
    repo, workdir = box_repo
    result = run_cli("up", repo, "--host", sshd_server.spec, "--identity", sshd_server.identity,
                     "--workdir", workdir, "--name", "box", "--no-llm")
    assert result.code == 1
    assert "no NVIDIA driver (nvidia-smi not found)" in result.err
    assert "--yes`" in result.err and "--identity" in result.err  # the retry line repeats every flag
    assert state.load("box") is None and not workdir.exists()  # nothing done


def test_up_host_cpu_spec_needs_no_gpu_and_reruns(run_cli, sshd_server, tmp_path, remote_tmp):  # noqa: F811
    spec = EnvironmentSpec(workload_type="cpu", gpu_type=None, gpu_count=0, base_image="python:3.11-slim",
                           requirements=[], setup_commands=["echo custom-step > step.txt"])
    repo = make_repo(tmp_path, spec)
    workdir = remote_tmp / "cpu"
    args = ("up", repo, "--host", sshd_server.spec, "--identity", sshd_server.identity,
            "--workdir", workdir, "--name", "cpubox", "--no-llm")
    try:
        first = run_cli(*args)
        assert first.code == 0, first
        assert "no NVIDIA driver" not in first.err and "nvidia-smi not found" not in first.err
        assert (workdir / "step.txt").read_text() == "custom-step\n"
        again = run_cli(*args)  # same name, same host: re-sync and re-run setup
        assert again.code == 0, again
        assert "creating a virtualenv" not in again.err  # the venv is reused
    finally:
        target = state.load("cpubox")
        if target is not None:
            remote.close(target)


def test_failed_setup_keeps_the_record_and_the_log(run_cli, sshd_server, tmp_path, remote_tmp):  # noqa: F811
    spec = EnvironmentSpec(workload_type="cpu", gpu_type=None, gpu_count=0, base_image="python:3.11-slim",
                           setup_commands=["echo before", "false", "echo never"])
    repo = make_repo(tmp_path, spec)
    workdir = remote_tmp / "bad"
    try:
        result = run_cli("up", repo, "--host", sshd_server.spec, "--identity", sshd_server.identity,
                         "--workdir", workdir, "--name", "badbox", "--no-llm")
        assert result.code == 1
        assert "setup failed on" in result.err and "gpu-lol logs badbox" in result.err
        assert state.load("badbox") is not None
        logs = run_cli("logs", "badbox")
        assert "before" in logs.out and "never" not in logs.out
        down = run_cli("down", "badbox", "--purge", "--yes")
        assert down.code == 0 and not workdir.exists()
    finally:
        target = state.load("badbox")
        if target is not None:
            remote.close(target)


def test_up_host_unreachable_is_one_clear_line(run_cli, tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    repo = make_repo(tmp_path, gpu_spec())
    result = run_cli("up", repo, "--host", f"me@127.0.0.1:{port}", "--name", "nobox", "--yes", "--no-llm")
    assert result.code == 1
    lines = [l for l in result.err.splitlines() if l.startswith(("error:", "hint:"))]
    assert lines[0].startswith("error: cannot reach nobox (me@127.0.0.1:") and "Connection refused" in lines[0]
    assert lines[1].startswith("hint: is sshd running on 127.0.0.1 port")
    assert state.load("nobox") is None


def test_purge_never_deletes_a_directory_gpu_lol_does_not_own(sshd_server, tmp_path, remote_tmp):  # noqa: F811
    from gpu_lol.errors import OperationError, UsageError
    from gpu_lol.machine import hosts

    theirs = remote_tmp / "theirs"
    theirs.mkdir()
    (theirs / "precious.txt").write_text("do not delete")
    repo = make_repo(tmp_path, EnvironmentSpec(workload_type="cpu", gpu_type=None, gpu_count=0,
                                               base_image="python:3.11-slim"))
    spec = EnvironmentSpec(workload_type="cpu", gpu_type=None, gpu_count=0, base_image="python:3.11-slim")
    with pytest.raises(UsageError) as err:
        hosts.up_host(repo, spec, sshd_server.spec, identity=str(sshd_server.identity), name="x",
                      workdir=str(theirs))
    assert "was not created by gpu-lol" in err.value.message
    # a record pointing at it (e.g. edited by hand) still cannot purge it
    target = state.Target(name="x", kind="host", repo=str(repo),
                          extra={"host": sshd_server.host, "user": sshd_server.user, "port": sshd_server.port,
                                 "identity": str(sshd_server.identity), "workdir": str(theirs)})
    state.save(target)
    try:
        with pytest.raises(OperationError) as err:
            hosts.forget(target, purge=True)
        assert "no gpu-lol marker" in err.value.message
        assert (theirs / "precious.txt").exists() and state.load("x") is not None
        assert "kept on the host" in hosts.forget(target, purge=False)
        assert state.load("x") is None
    finally:
        remote.close(target)


def test_describe_reports_reachability_and_gpu(sshd_server, remote_tmp, tmp_path):  # noqa: F811
    from gpu_lol.machine import hosts

    target = state.Target(name="d", kind="host", repo=str(tmp_path),
                          extra={"host": sshd_server.host, "user": sshd_server.user, "port": sshd_server.port,
                                 "identity": str(sshd_server.identity), "workdir": str(remote_tmp)})
    try:
        info = hosts.describe(target)
        assert info["status"] == "reachable" and info["gpu"] == "no GPU"
        assert info["detail"] == f"workdir {remote_tmp}"
        json.dumps(info)
    finally:
        remote.close(target)
    down = state.Target(name="e", kind="host", repo=str(tmp_path),
                        extra={"host": "127.0.0.1", "port": 1, "workdir": "/tmp/none"})
    info = hosts.describe(down)
    assert info["status"] == "unreachable" and "Connection refused" in info["detail"]
