"""The SSH transport against a real OpenSSH server on 127.0.0.1 (tests/sshd.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpu_lol.errors import OperationError
from gpu_lol.launch import state
from gpu_lol.launch.state import Target
from gpu_lol.machine import remote
from sshd import control_cleanup, read_until, remote_tmp, sshd_server  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def host_target(server, workdir: Path, name: str = "box", **spec) -> Target:
    target = Target(name=name, kind="host", repo=str(workdir), spec=spec,
                    extra={"host": server.host, "user": server.user, "port": server.port,
                           "identity": str(server.identity), "workdir": str(workdir), "venv": None})
    state.save(target)
    return target


@pytest.fixture
def box(sshd_server, remote_tmp):  # noqa: F811
    workdir = remote_tmp / "work dir"
    workdir.mkdir()
    target = host_target(sshd_server, workdir, envs={"GREETING": "hello world", "HF_TOKEN": "sekrit"})
    yield target
    remote.close(target)


# ---------------------------------------------------------------------------------------------
# argv and config (no server needed)


def test_host_config_has_own_known_hosts_and_includes_user_config(tmp_path):
    target = Target(name="lab", kind="host", repo=str(tmp_path),
                    extra={"host": "gpu.example.org", "user": "me", "port": 2222,
                           "identity": "/keys/my key", "workdir": "~/gpu-lol/lab"})
    argv = remote.ssh_argv(target)
    config = remote.host_ssh_config("lab")
    assert argv[:3] == ["ssh", "-F", str(config)]
    assert argv[-1] == "gpu.example.org"
    assert "BatchMode=yes" in argv and any(a.startswith("ControlPath=") and a.endswith("-%C") for a in argv)
    text = config.read_text()
    assert "Host gpu.example.org\n  User me\n  Port 2222\n" in text
    assert 'IdentityFile "/keys/my key"' in text
    assert f"UserKnownHostsFile {remote.known_hosts_file()}" in text
    assert "StrictHostKeyChecking accept-new" in text
    assert f"Include {Path.home() / '.ssh' / 'config'}" in text.split("Match all", 1)[1]
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    interactive = remote.ssh_argv(target, interactive=True)
    assert "-tt" in interactive and "BatchMode=yes" not in interactive


def test_sky_target_without_ssh_config_is_a_clear_error(tmp_path):
    target = Target(name="gpu-lol-x", kind="sky", repo=str(tmp_path))
    with pytest.raises(OperationError) as err:
        remote.ssh_argv(target)
    assert "no SSH config for cluster 'gpu-lol-x'" in err.value.message
    assert "sky status gpu-lol-x" in err.value.hint


def test_sky_target_uses_skypilot_generated_config(tmp_path):
    config = Path.home() / ".sky" / "generated" / "ssh" / "gpu-lol-x"
    config.parent.mkdir(parents=True)
    config.write_text("Host gpu-lol-x\n  HostName 10.1.2.3\n")
    target = Target(name="gpu-lol-x", kind="sky", repo=str(tmp_path))
    argv = remote.ssh_argv(target)
    assert argv[:3] == ["ssh", "-F", str(config)] and argv[-1] == "gpu-lol-x"
    assert remote.workdir_of(target) == "~/sky_workdir"


def test_control_dir_falls_back_to_short_path_when_home_is_deep(monkeypatch, tmp_path):
    deep = tmp_path / ("d" * 80) / ".gpu-lol"
    monkeypatch.setenv("GPU_LOL_HOME", str(deep))
    directory = remote.control_dir()
    assert directory is not None and len(str(directory)) + remote._CONTROL_NAME_LEN < 104
    assert not str(directory).startswith(str(deep))
    assert oct(directory.stat().st_mode & 0o777) == "0o700"
    # the same gpu-lol home always maps to the same directory
    assert remote.control_dir() == directory


def test_command_text_quotes_several_words_and_keeps_one_line():
    assert remote.command_text(["echo", "a b", "$HOME", "x;y"]) == "echo 'a b' '$HOME' 'x;y'"
    assert remote.command_text(["python train.py | tee log"]) == "python train.py | tee log"
    assert remote.shell_path("~/sky_workdir") == "~/sky_workdir"
    assert remote.shell_path("~/a b") == "~/'a b'"
    assert remote.shell_path("/x/$(rm -rf ~)") == "'/x/$(rm -rf ~)'"


# ---------------------------------------------------------------------------------------------
# Against the loopback sshd


def test_exec_arguments_arrive_verbatim(box, capfd):
    words = ["a b", "it's", '"double"', "$HOME", "x;y", "`id`", "*", "tab\there", ""]
    rc = remote.run(box, ["printf", "[%s]\\n", *words])
    out = capfd.readouterr().out
    assert rc == 0
    assert out.splitlines() == [f"[{w}]" for w in words]


def test_exec_single_argument_is_a_shell_line_in_the_workdir(box, capfd):
    rc = remote.run(box, ["pwd; echo one two three | wc -w; echo \"$GREETING\"; echo \"token=${HF_TOKEN:-unset}\""])
    out = capfd.readouterr().out.splitlines()
    assert rc == 0
    assert out[0] == box.extra["workdir"]
    assert out[1].strip() == "3"
    assert out[2] == "hello world"  # spec envs are exported ...
    assert out[3] == "token=unset"  # ... but never secret ones


def test_exit_code_and_stderr_come_back(box, capfd):
    assert remote.run(box, ["sh", "-c", "echo oops >&2; exit 3"]) == 3
    assert "oops" in capfd.readouterr().err
    assert remote.run(box, "exit 0") == 0


def test_stdin_is_forwarded(box, tmp_path):
    script = tmp_path / "in.txt"
    script.write_text("from stdin\n")
    out = tmp_path / "out.txt"
    code = (
        "import sys; sys.path.insert(0, %r); from gpu_lol.launch import state; from gpu_lol.machine import remote; "
        "sys.exit(remote.run(state.load('box'), ['cat']))" % str(Path(__file__).resolve().parent.parent))
    with open(script, "rb") as stdin, open(out, "wb") as stdout:
        proc = subprocess.run([sys.executable, "-c", code], stdin=stdin, stdout=stdout, timeout=60,
                              env=os.environ.copy())
    assert proc.returncode == 0
    assert out.read_text() == "from stdin\n"


def test_missing_workdir_fails_clearly(sshd_server, remote_tmp, capfd):  # noqa: F811
    target = host_target(sshd_server, remote_tmp / "not-there", name="gone")
    try:
        assert remote.run(target, ["true"]) == 1
        err = capfd.readouterr().err
        assert "the workdir" in err and "does not exist on gone" in err
    finally:
        remote.close(target)


def test_multiplexing_reuses_one_connection(box):
    remote.run(box, ["true"])
    directory = remote.control_dir()
    sockets = [p for p in directory.iterdir() if p.is_socket()]
    assert len(sockets) == 1
    started = time.perf_counter()
    for _ in range(3):
        assert remote.run(box, ["true"]) == 0
    assert [p for p in directory.iterdir() if p.is_socket()] == sockets
    assert (time.perf_counter() - started) / 3 < 2.0
    remote.close(box)
    assert not [p for p in directory.iterdir() if p.is_socket()]


def test_capture_returns_output_and_code(box):
    result = remote.capture(box, "python3 -c 'import sys; print(sys.stdin.read().upper())'; exit 5",
                            input="hello")
    assert result.returncode == 5 and result.stdout == "HELLO\n"


def test_connection_refused_names_the_host_and_port(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = Target(name="down", kind="host", repo=str(tmp_path),
                    extra={"host": "127.0.0.1", "port": port, "workdir": "/tmp/x"})
    with pytest.raises(OperationError) as err:
        remote.run(target, ["true"])
    assert "cannot reach down (127.0.0.1:" in err.value.message
    assert "Connection refused" in err.value.message
    assert f"port {port}" in err.value.hint


def test_wrong_key_is_permission_denied_with_identity_hint(sshd_server, tmp_path):  # noqa: F811
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    target = Target(name="nokey", kind="host", repo=str(tmp_path),
                    extra={"host": sshd_server.host, "user": sshd_server.user, "port": sshd_server.port,
                           "identity": str(other), "workdir": "/tmp"})
    with pytest.raises(OperationError) as err:
        remote.capture(target, "true")
    assert "Permission denied" in err.value.message
    assert "--identity" in err.value.hint


def test_sync_sends_the_sync_plan_files(box, tmp_path):
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "train.py").write_text("print('hi')\n")
    (repo / "name with space.txt").write_text("x")
    (repo / "data" / "big.bin").write_bytes(b"0" * 1000)
    (repo / ".gitignore").write_text("data/\n")
    remote.sync_repo(box, repo, quiet=True)
    workdir = Path(box.extra["workdir"])
    assert (workdir / "train.py").read_text() == "print('hi')\n"
    assert (workdir / "name with space.txt").exists()
    assert not (workdir / "data").exists()


def test_sky_style_target_over_generated_config(sshd_server, remote_tmp, capfd):  # noqa: F811
    """A cluster record reaches the machine through SkyPilot's generated config format."""
    config = Path.home() / ".sky" / "generated" / "ssh" / "gpu-lol-c"
    config.parent.mkdir(parents=True)
    config.write_text(
        "# Added by sky (use `sky stop/down gpu-lol-c` to remove)\n"
        "Host gpu-lol-c\n"
        f"  HostName {sshd_server.host}\n  User {sshd_server.user}\n  IdentityFile {sshd_server.identity}\n"
        "  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile=/dev/null\n"
        f"  GlobalKnownHostsFile=/dev/null\n  Port {sshd_server.port}\n")
    target = Target(name="gpu-lol-c", kind="sky", repo=str(remote_tmp),
                    extra={"workdir": str(remote_tmp)})
    try:
        assert remote.run(target, ["pwd"]) == 0
        assert capfd.readouterr().out.strip() == str(remote_tmp)
    finally:
        remote.close(target)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_reaches_the_remote_command_and_output_keeps_streaming(box, gpu_lol_exe, tmp_path):
    """SIGINT to `gpu-lol exec` interrupts the remote process group; its handler's output and
    exit code come back."""
    marker = Path(box.extra["workdir"]) / "interrupted"
    line = ("trap 'echo got-int; touch interrupted; exit 7' INT; echo ready; "
            "sleep 30; echo not-interrupted")
    env = os.environ.copy()
    proc = subprocess.Popen([*gpu_lol_exe, "exec", "box", "--", line], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 7, (out, err)
    assert "got-int" in out and "not-interrupted" not in out
    assert marker.exists()
    assert "sending SIGINT" in err


def test_cli_exec_usage_errors(run_cli, box):
    result = run_cli("exec", "box")
    assert result.code == 2 and "no command given" in result.err and "gpu-lol exec -- nvidia-smi" in result.err
    result = run_cli("exec", "nvidia-smi")
    assert result.code == 2 and "gpu-lol exec -- nvidia-smi" in result.err
    result = run_cli("exec", "nosuch", "--", "true")
    assert result.code == 1 and "no cluster or host named 'nosuch'" in result.err


def test_cli_exec_defaults_to_the_target_of_this_repo(run_cli, box):
    result = run_cli("exec", "-T", "--", "sh", "-c", "exit 4", cwd=Path(box.repo))
    assert result.code == 4


def test_cli_ssh_print(run_cli, box):
    result = run_cli("ssh", "box", "--print")
    assert result.code == 0
    assert result.out.startswith("ssh -F ") and result.out.strip().endswith(box.extra["host"])



def test_ssh_with_a_terminal_forwards_ctrl_c_through_the_pty(box, gpu_lol_exe):
    """`gpu-lol ssh NAME -- CMD` on a terminal: ^C typed locally interrupts the remote command."""
    import pty

    master, slave = pty.openpty()
    line = "trap 'echo got-int; exit 7' INT; echo ready; sleep 30; echo not-interrupted"
    proc = subprocess.Popen([*gpu_lol_exe, "ssh", "box", "--", line], stdin=slave, stdout=slave,
                            stderr=slave, env=os.environ.copy(), start_new_session=True)
    os.close(slave)
    try:
        assert b"ready" in read_until(master, b"ready")
        os.write(master, b"\x03")
        rest = read_until(master, b"got-int")
        assert proc.wait(timeout=20) == 7
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert b"got-int" in rest and b"not-interrupted" not in rest


def test_ctrl_c_while_connecting_stops_at_once(tmp_path, gpu_lol_exe):
    """A host that accepts TCP but never answers: Ctrl-C must not wait for the connect timeout."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    try:
        state.save(Target(name="hang", kind="host", repo=str(tmp_path),
                          extra={"host": "127.0.0.1", "port": port, "workdir": "/tmp/x"}))
        proc = subprocess.Popen([*gpu_lol_exe, "exec", "hang", "--", "true"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=os.environ.copy())
        time.sleep(1.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
        assert time.monotonic() - started < 5
        assert proc.returncode == 130
    finally:
        listener.close()


def _lambda_shaped_config(cluster: str, server) -> Path:
    """SkyPilot's own generator writes the config of a cluster whose container runs on a VM
    (Lambda): HostName localhost, Port 10022, a ProxyCommand through the VM. Here the "VM" hop
    is an `ssh -W` to the given loopback sshd, which is also where the session lands."""
    from sky.utils import cluster_utils

    hop = " ".join([
        "ssh", "-i", str(server.identity), "-p", str(server.port), "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
        "-o", "IdentitiesOnly=yes", "-W", f"127.0.0.1:{server.port}", f"{server.user}@127.0.0.1"])
    text = cluster_utils.SSHConfigHelper._get_generated_config(
        f"# Added by sky (use `sky stop/down {cluster}` to remove)", f"{cluster}-2ea4", cluster,
        "localhost", server.user, str(server.identity), None, 10022, hop)
    path = Path.home() / ".sky" / "generated" / "ssh" / cluster
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return path


def test_two_docker_on_vm_clusters_never_share_a_master_connection(sshd_server, remote_tmp, tmp_path, capfd):  # noqa: F811
    """Two Lambda-shaped configs (same HostName/Port/User, so the same %C) and two sshd's:
    each exec reaches its own server, also while the other's master connection is up."""
    from sshd import start_sshd, stop_sshd

    other = start_sshd(tmp_path / "sshd-b")
    targets = []
    try:
        for cluster, server in (("gpu-lol-a", sshd_server), ("gpu-lol-b", other)):
            config = _lambda_shaped_config(cluster, server)
            assert "HostName localhost" in config.read_text() and "Port 10022" in config.read_text()
            targets.append((Target(name=cluster, kind="sky", repo=str(remote_tmp),
                                   extra={"workdir": str(remote_tmp)}), server))
        for _ in range(2):  # the second round goes over the master connections of the first
            for target, server in targets:
                capfd.readouterr()
                assert remote.run(target, 'echo "${SSH_CONNECTION##* }"') == 0
                assert capfd.readouterr().out.strip() == str(server.port), target.name
        sockets = sorted(p.name for p in remote.control_dir().iterdir() if p.is_socket())
        assert len(sockets) == 2
        assert sockets[0].split("-", 1)[1] == sockets[1].split("-", 1)[1]  # same %C ...
        assert sockets[0].split("-", 1)[0] != sockets[1].split("-", 1)[0]  # ... different target key
    finally:
        for target, _ in targets:
            remote.close(target)
        stop_sshd(other.process)


def test_relaunched_cluster_gets_a_new_control_socket(tmp_path):
    config = Path.home() / ".sky" / "generated" / "ssh" / "gpu-lol-x"
    config.parent.mkdir(parents=True)
    config.write_text("Host gpu-lol-x\n  HostName localhost\n  Port 10022\n  ProxyCommand ssh -W %h:%p root@10.0.0.1\n")
    target = Target(name="gpu-lol-x", kind="sky", repo=str(tmp_path))
    first = remote.control_key(remote.endpoint(target))
    config.write_text("Host gpu-lol-x\n  HostName localhost\n  Port 10022\n  ProxyCommand ssh -W %h:%p root@10.0.0.2\n")
    assert remote.control_key(remote.endpoint(target)) != first
    other = Target(name="gpu-lol-y", kind="sky", repo=str(tmp_path))
    (config.parent / "gpu-lol-y").write_text(config.read_text().replace("gpu-lol-x", "gpu-lol-y"))
    assert remote.control_key(remote.endpoint(other)) != remote.control_key(remote.endpoint(target))


def test_loopback_sessions_get_a_scratch_home_not_the_machines(sshd_server):  # noqa: F811
    """The test server's login shells must not run this machine's dotfiles (on the CI image root's
    .bashrc runs `pyenv init`, whose stale lock once stalled every SSH test for 60 s a login)."""
    probe = "bash --login -c 'echo \"$HOME\"; type pyenv 2>&1 | head -1'"
    out = subprocess.run(sshd_server.raw_ssh_argv() + [probe], capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    home, pyenv = out.stdout.splitlines()[:2]
    assert home == str(sshd_server.directory / "home")
    assert "not found" in pyenv
