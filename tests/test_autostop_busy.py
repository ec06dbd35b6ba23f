"""Autostop never kills running work: SkyPilot's own idle check (sky/skylet/autostop_lib.py:
has_active_ssh_sessions, what sky/skylet/events.py's StopEvent asks each minute) run on this
machine against a real loopback sshd while `gpu-lol exec` runs without a terminal.

The machine is shared with other test runs, so SkyPilot's process scan is limited to the
descendants of this test's sshd (psutil.process_iter filtered); the check itself is SkyPilot's.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil
import pytest

from gpu_lol.launch.state import Target
from gpu_lol.machine import remote
from sshd import control_cleanup, remote_tmp, sshd_server  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


@pytest.fixture
def scoped_idle_check(sshd_server, monkeypatch):  # noqa: F811
    from sky.skylet import autostop_lib

    real_iter = psutil.process_iter

    def only_our_sshd(*args, **kwargs):
        try:
            ours = {p.pid for p in psutil.Process(sshd_server.process.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            ours = set()
        for proc in real_iter(*args, **kwargs):
            if proc.pid in ours:
                yield proc

    monkeypatch.setattr(psutil, "process_iter", only_our_sshd)
    return autostop_lib.has_active_ssh_sessions


def _sky_target(server, workdir: Path, name: str = "gpu-lol-busy") -> Target:
    config = Path.home() / ".sky" / "generated" / "ssh" / name
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f"Host {name}\n  HostName {server.host}\n  User {server.user}\n  IdentityFile {server.identity}\n"
        "  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile=/dev/null\n"
        f"  GlobalKnownHostsFile=/dev/null\n  Port {server.port}\n")
    return Target(name=name, kind="sky", repo=str(workdir), extra={"workdir": str(workdir)})


def _busy_while(target: Target, idle_check, command: str, flag: Path) -> tuple[list[bool], int]:
    """Run `command` inline without a pty; from the moment it has touched `flag` (it runs),
    sample SkyPilot's check until it says busy or the command ends; return (samples, rc)."""
    result = {}
    worker = threading.Thread(target=lambda: result.update(rc=remote.run(target, command)))
    worker.start()
    samples = []
    deadline = time.monotonic() + 60
    while worker.is_alive() and time.monotonic() < deadline:
        if flag.exists():
            samples.append(idle_check())
            if samples[-1]:
                break
        time.sleep(0.2)
    worker.join(timeout=90)
    return samples, result.get("rc", -1)


def test_exec_without_a_terminal_keeps_the_cluster_busy(sshd_server, remote_tmp, scoped_idle_check):  # noqa: F811
    target = _sky_target(sshd_server, remote_tmp)
    flag = remote_tmp / "started"
    try:
        assert scoped_idle_check() is False  # nothing runs: idle
        samples, rc = _busy_while(target, scoped_idle_check, f"touch {flag}; sleep 8; exit 3", flag)
        assert rc == 3
        assert samples and samples[-1] is True, samples  # SkyPilot sees an SSH session: not idle
        # the keep-alive session ends with the command: the cluster is idle again
        deadline = time.monotonic() + 20
        while scoped_idle_check() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert scoped_idle_check() is False
    finally:
        remote.close(target)


def test_without_the_keepalive_skypilot_counts_it_idle(sshd_server, remote_tmp, scoped_idle_check, monkeypatch):  # noqa: F811
    """The control: the same exec with the keep-alive off is what SkyPilot would tear down."""
    monkeypatch.setenv("GPU_LOL_NO_KEEPALIVE", "1")
    target = _sky_target(sshd_server, remote_tmp, name="gpu-lol-idle")
    flag = remote_tmp / "started"
    try:
        samples, rc = _busy_while(target, scoped_idle_check, f"touch {flag}; sleep 2", flag)
        assert rc == 0
        assert samples and not any(samples), samples
    finally:
        remote.close(target)


def test_host_targets_need_no_keepalive(tmp_path):
    host = Target(name="box", kind="host", repo=str(tmp_path), extra={"host": "h", "workdir": "/w"})
    sky = Target(name="c", kind="sky", repo=str(tmp_path))
    assert not remote.needs_keepalive(host) and remote.needs_keepalive(sky)
    script = remote.keepalive_script("/tmp/gpu-lol-exec-x.pid")
    assert "kill -0" in script and "/tmp/gpu-lol-exec-x.pid" in script
