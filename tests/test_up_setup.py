"""`up` waits for setup, and a launch stuck provisioning is cancelled and torn down.

What is mocked, and only that: the cloud. There is no cloud account here, so the SkyPilot SDK
calls that would reach one (``sky.launch``, ``sky.stream_and_get``, ``sky.tail_logs``,
``sky.api_cancel``, ``sky.down``) and the API-server/SSH helpers around them are replaced by a
fake SkyPilot whose "job" runs the task's **real rendered setup script** under bash on this
machine, with ``python``/``pip`` replaced by recorders (one of which fails, as a pip install
without a wheel does), and streams its output the way ``sky.tail_logs`` does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from gpu_lol.launch import skypilot, state

FIXTURE = Path(__file__).parent / "fixtures" / "launch" / "complete"


class FakeSky:
    def __init__(self, tmp: Path, *, pip_fails: bool, hang: bool = False):
        self.tmp, self.pip_fails, self.hang = tmp, pip_fails, hang
        self.task = None
        self.cancelled = threading.Event()
        self.downed: list[str] = []
        self.tailed: list[tuple[str, int, bool]] = []

    # sky.launch -> a request id; the task object is SkyPilot's own (validated by the real loader)
    def launch(self, task, cluster_name, **_kw):
        self.task = task
        return "req-launch"

    def stream_and_get(self, request_id, output_stream=None):
        if request_id == "req-launch":
            if self.hang:  # a pod that never starts: the request runs until it is cancelled
                if not self.cancelled.wait(30):
                    raise AssertionError("never cancelled")
                raise RuntimeError("Request req-launch cancelled")
            return 1, None  # (job id, handle)
        return None  # sky.down's request

    def api_cancel(self, request_id):
        assert request_id == "req-launch"
        self.cancelled.set()

    def down(self, cluster_name, **_kw):
        self.downed.append(cluster_name)
        return "req-down"

    def tail_logs(self, cluster_name, job_id, follow, tail=0, output_stream=None, **_kw):
        """The job: run the task's setup (then run) for real, in a fake home."""
        self.tailed.append((cluster_name, job_id, follow))
        home = self.tmp / "machine-home"
        work = home / "sky_workdir"
        if not work.exists():
            shutil.copytree(FIXTURE, work)
        shims = self.tmp / "shims"
        shims.mkdir(exist_ok=True)
        log = self.tmp / "pip.log"
        body = ('echo "$0 $*" >> ' + str(log) + '\n'
                + ('if [ "$2" = pip ] && [ "$3" = install ]; then echo "ERROR: Could not find a version that '
                   'satisfies the requirement peft==0.11.1" >&2; exit 1; fi\n' if self.pip_fails else ""))
        for name in ("python", "python3", "nvidia-smi"):
            (shims / name).write_text("#!/bin/bash\n" + body)
            (shims / name).chmod(0o755)
        env = {"PATH": f"{shims}:{os.environ['PATH']}", "HOME": str(home)}
        script = self.task.setup + "\n" + (self.task.run or "")
        proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
        output_stream.write(proc.stdout + proc.stderr)
        return 0 if proc.returncode == 0 else 100  # SkyPilot's JobExitCode


@pytest.fixture
def fake_sky(monkeypatch, tmp_path):
    import sky

    def make(**kw):
        fake = FakeSky(tmp_path, **kw)
        for name in ("launch", "stream_and_get", "api_cancel", "down", "tail_logs"):
            monkeypatch.setattr(sky, name, getattr(fake, name))
        # the API server and the cluster table live with the cloud account: none here
        monkeypatch.setattr(skypilot, "ensure_api_server", lambda progress=None: None)
        monkeypatch.setattr(skypilot, "status_one", lambda name: None)
        monkeypatch.setattr(skypilot, "ensure_ssh_config", lambda name, launched=None: None)
        return fake

    return make


def test_up_fails_with_the_log_tail_when_setup_fails(fake_sky, run_cli):
    fake = fake_sky(pip_fails=True)
    result = run_cli("resume", FIXTURE, "-y")
    assert result.code == 1, result
    assert fake.tailed == [("gpu-lol-complete", 1, True)]  # followed the first job
    assert "Could not find a version that satisfies the requirement peft==0.11.1" in result.err  # live + tail
    assert "last lines of the setup log" in result.err
    assert "error: setup on gpu-lol-complete failed" in result.err
    assert "gpu-lol logs gpu-lol-complete" in result.err
    assert "is ready" not in result.out and "is up" not in result.out
    assert state.load("gpu-lol-complete").extra["setup_exit"] == 100  # recorded: `down` still finds it


def test_up_says_ready_only_when_setup_succeeded(fake_sky, run_cli):
    fake = fake_sky(pip_fails=False)
    result = run_cli("resume", FIXTURE, "-y")
    assert result.code == 0, result
    assert "gpu-lol-complete is ready" in result.out and "setup succeeded" in result.out
    assert "gpu-lol: gpu-lol-complete is ready" in result.err  # the run's own line, streamed live
    assert fake.downed == []
    result = run_cli("resume", FIXTURE, "-y", "--json")
    assert result.json()["ready"] is True and result.json()["setup_exit"] == 0


def test_a_launch_stuck_provisioning_is_cancelled_and_torn_down(fake_sky, run_cli):
    fake = fake_sky(pip_fails=False, hang=True)
    result = run_cli("resume", FIXTURE, "-y", "--provision-timeout", "0.01")  # 0.6 s
    assert result.code == 1, result
    assert fake.cancelled.is_set() and fake.downed == ["gpu-lol-complete"]
    assert "still provisioning after 0.01 min" in result.err and "torn down" in result.err
    assert fake.tailed == []  # never got to setup


def test_provision_timeout_flag_is_validated(run_cli):
    result = run_cli("up", FIXTURE, "--provision-timeout", "-3", "--dry-run")
    assert result.code == 2
