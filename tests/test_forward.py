"""`gpu-lol forward` and `gpu-lol ssh -L`: ports over SSH, against a real loopback sshd and a
real HTTP server on 127.0.0.1 (the "machine" side is this machine)."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from gpu_lol.errors import UsageError
from gpu_lol.launch import state
from gpu_lol.launch.state import Target
from gpu_lol.machine import remote
from sshd import control_cleanup, remote_tmp, sshd_server  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def web(tmp_path):
    (tmp_path / "index.html").write_text("hello from the machine\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(tmp_path), **k)

        def log_message(self, *args):  # noqa: ARG002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture
def box(sshd_server, remote_tmp):  # noqa: F811
    target = Target(name="box", kind="host", repo=str(remote_tmp), spec={},
                    extra={"host": sshd_server.host, "user": sshd_server.user, "port": sshd_server.port,
                           "identity": str(sshd_server.identity), "workdir": str(remote_tmp), "venv": None})
    state.save(target)
    yield target
    remote.close(target)


def _get(port: int, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as resp:
                return resp.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_parse_forward():
    assert remote.parse_forward("8888") == (8888, 8888)
    assert remote.parse_forward("18888:8888") == (18888, 8888)
    for bad in ("x", "1:2:3", "0", "70000", ""):
        with pytest.raises(UsageError):
            remote.parse_forward(bad)
    assert remote.forward_options([(1, 2)]) == ["-o", "ExitOnForwardFailure=yes", "-L", "127.0.0.1:1:localhost:2"]


def test_forward_reaches_a_port_on_the_machine_and_stops_on_ctrl_c(box, web, gpu_lol_exe, remote_tmp):
    local = _free_port()
    proc = subprocess.Popen([*gpu_lol_exe, "forward", "box", f"{local}:{web}"], cwd=remote_tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy(), start_new_session=True)
    try:
        assert _get(local) == "hello from the machine\n"
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"forwarding http://127.0.0.1:{local} -> box:{web}" in err
    with pytest.raises(OSError):  # the forward ended with the command
        urllib.request.urlopen(f"http://127.0.0.1:{local}/index.html", timeout=2)


def test_a_taken_local_port_is_a_clear_error(box, web, run_cli):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        res = run_cli("forward", "box", f"{port}:{web}")
    assert res.code == 1 and "cannot forward" in res.err and "LOCAL:REMOTE" in res.err, res


def test_ssh_dash_l_forwards_while_the_session_runs(box, web, gpu_lol_exe, remote_tmp):
    local = _free_port()
    proc = subprocess.Popen([*gpu_lol_exe, "ssh", "box", "-L", f"{local}:{web}", "--", "sleep", "20"],
                            cwd=remote_tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=os.environ.copy(), start_new_session=True)
    try:
        assert _get(local) == "hello from the machine\n"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)


def test_ssh_print_shows_the_forward(run_cli, box):
    res = run_cli("ssh", "box", "--print", "-L", "8888")
    assert res.code == 0 and "-L 127.0.0.1:8888:localhost:8888" in res.out


def test_the_plan_warns_what_each_provider_does_with_ports(tmp_path):
    from gpu_lol import launch
    from gpu_lol.spec import EnvironmentSpec

    repo = tmp_path / "r"
    repo.mkdir()
    spec = EnvironmentSpec(workload_type="training", gpu_type="RTXA6000", gpu_count=1,
                           base_image="runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404")
    plan = launch.build_plan(repo, spec, launch.LaunchOptions(ports=[8888]), environ={}, check_offers=False)
    text = "\n".join(plan.warnings)
    assert "Vast exposes one port only" in text and "8080" in text
    assert "RunPod maps each port to a random public port" in text
    assert "Lambda firewall rules are account-wide" in text
    assert "gpu-lol forward NAME 8888" in text
    quiet = launch.build_plan(repo, spec, launch.LaunchOptions(), environ={}, check_offers=False)
    assert not any("ports" in w for w in quiet.warnings)


def test_endpoints_come_from_skypilot_and_never_fail_the_command(monkeypatch):
    import sky

    from gpu_lol.launch import skypilot

    # Stand-in for the API server's answer about a cluster (none can exist without a cloud account).
    monkeypatch.setattr(sky, "endpoints", lambda name, port=None: "request")
    monkeypatch.setattr(sky, "get", lambda rid: {"8888": "203.0.113.7:41234", 6006: "203.0.113.7:41235"})
    assert skypilot.endpoints("c") == {6006: "203.0.113.7:41235", 8888: "203.0.113.7:41234"}

    def no_ports(rid):
        raise RuntimeError("Cluster c does not have any ports to be exposed.")

    monkeypatch.setattr(sky, "get", no_ports)
    assert skypilot.endpoints("c") == {}


def test_one_forward_for_the_cli_and_the_notebook(box, web):
    """`gpu-lol forward` and the notebook tunnel are one implementation (remote.open_forward):
    own connection, ExitOnForwardFailure, 127.0.0.1 only; close() ends ssh and frees the ports."""
    from gpu_lol.machine import notebook

    first, second = _free_port(), _free_port()
    handle = remote.open_forward(box, [(first, web), (second, web)])
    try:
        assert _get(first) == _get(second) == "hello from the machine\n"
        argv = handle.process.args
        assert "ExitOnForwardFailure=yes" in argv and "ControlPath=none" in argv and "-N" in argv
        assert f"127.0.0.1:{first}:localhost:{web}" in argv
    finally:
        handle.close()
    assert not handle.alive() and not handle.log.exists()
    for port in (first, second):
        assert not remote.local_port_taken(port)
    nb = notebook.forward_argv(box, [(first, web)])
    assert nb == remote.forward_argv(box, [(first, web)], far_host="127.0.0.1", hold_terminal=True)
