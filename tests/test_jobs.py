"""`gpu-lol run` / `exec --detach` / `logs NAME JOB`: long work as a SkyPilot job.

The task is loaded by SkyPilot's own loader; its run script runs under real bash; the exit code
is read back over a real loopback sshd. A SkyPilot cluster cannot exist here (no cloud account),
so where a test needs one, SkyPilot's client calls (sky.status / sky.exec / sky.stream_and_get /
sky.tail_logs) are replaced by a stand-in "cluster" that runs the submitted task's own `run`
script with bash on this machine, as SkyPilot's job runner would; this is said at each use.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from gpu_lol.errors import OperationError, UsageError
from gpu_lol.launch import skypilot, state
from gpu_lol.launch.state import Target
from gpu_lol.machine import jobs, remote
from sshd import control_cleanup, remote_tmp, sshd_server  # noqa: F401 - fixtures


def _cluster_target(repo: Path, name: str = "gpu-lol-job", **spec) -> Target:
    target = Target(name=name, kind="sky", repo=str(repo),
                    spec={"gpu_type": "RTXA6000", "gpu_count": 1, **spec},
                    extra={"workdir": "~/sky_workdir", "cloud": "lambda", "secret_names": ["MY_API_KEY"]})
    state.save(target)
    return target


def test_the_job_task_is_one_skypilot_loads(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    monkeypatch.setenv("MY_API_KEY", "k-123")
    target = _cluster_target(repo, envs={"GREETING": "hi there", "WANDB_API_KEY": "never-as-env"})
    task_dict = jobs.job_task(target, ["python", "train.py", "--lr", "3e-4"], "a" * 32,
                              accelerators={"A6000": 1}, secrets=jobs.job_secrets(target))
    task = skypilot.validate_task(task_dict)  # SkyPilot's own loader
    assert task.workdir == str(repo)  # sky.exec syncs the repo first
    assert {str(r.accelerators) for r in task.resources} == {"{'A6000': 1}"}  # else no GPU is visible
    assert task.envs == {"GREETING": "hi there"}
    assert {k: v.get_secret_value() for k, v in task.secrets.items()} == {"HF_TOKEN": "hf_secret_value", "MY_API_KEY": "k-123"}
    assert "python train.py --lr 3e-4" in task.run and "hf_secret_value" not in task.run
    assert task.name.startswith("gpu-lol-run-")
    no_sync = jobs.job_task(target, "true", "b" * 32, accelerators=None, sync=False)
    assert "workdir" not in no_sync and "resources" not in no_sync


@pytest.mark.parametrize("command, code", [("exit 7", 7), ("false", 1), ("echo ok", 0),
                                          ("sh -c 'kill -TERM $$'", 143)])
def test_the_run_script_records_the_commands_exit_code(tmp_path, command, code):
    home = tmp_path / "home"
    (home / "sky_workdir").mkdir(parents=True)
    script = jobs.run_script(command, "tok")
    proc = subprocess.run(["bash", "-c", script], env={**os.environ, "HOME": str(home)},
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == code
    assert (home / ".gpu-lol" / "jobs" / "tok.rc").read_text().strip() == str(code)


def test_the_run_script_sources_the_secrets_file(tmp_path):
    home = tmp_path / "home"
    (home / ".gpu-lol").mkdir(parents=True)
    (home / ".gpu-lol" / "secrets.env").write_text("HF_TOKEN='from the file'\n")
    proc = subprocess.run(["bash", "-c", jobs.run_script('echo "$HF_TOKEN"; bash -c \'echo "$HF_TOKEN"\'', "t")],
                          env={**os.environ, "HOME": str(home)}, capture_output=True, text=True, timeout=30)
    assert proc.stdout.splitlines() == ["from the file", "from the file"]  # exported to children too


class _StandInCluster:
    """Stands in for SkyPilot's API server and a cluster (neither can exist without a cloud
    account): `exec` runs the submitted task's own `run` with bash, HOME=home, cwd=its workdir."""

    def __init__(self, home: Path, status: str = "UP"):
        self.home, self.status, self.tasks, self.output = home, status, [], ""
        self.code = None

    def install(self, monkeypatch):
        import sky

        handle = SimpleNamespace(launched_resources=SimpleNamespace(accelerators={"A6000": 1}))
        monkeypatch.setattr(sky, "status", lambda names, all_users=False: "status-request")
        monkeypatch.setattr(sky, "get", lambda rid: [{"name": "gpu-lol-job", "status": self.status,
                                                      "handle": handle}])
        monkeypatch.setattr(sky, "exec", self.exec)
        monkeypatch.setattr(sky, "stream_and_get", lambda rid, output_stream=None: (4, handle))
        monkeypatch.setattr(sky, "tail_logs", self.tail_logs)

    def exec(self, task, cluster_name):
        self.tasks.append(task)
        workdir = self.home / "sky_workdir"
        workdir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["bash", "-c", task.run], cwd=workdir, capture_output=True, text=True,
                              env={**os.environ, "HOME": str(self.home), **task.envs}, timeout=60)
        self.output, self.code = proc.stdout, proc.returncode
        return "exec-request"

    def tail_logs(self, name, job_id, follow, tail=0, output_stream=None):
        assert job_id == 4 and follow
        (output_stream or io.StringIO()).write(self.output)
        return 0 if self.code == 0 else 100  # SkyPilot's JobExitCode: it only knows failed


@pytest.fixture
def sky_box(sshd_server, remote_tmp, tmp_path, monkeypatch):  # noqa: F811
    """A cluster record whose SSH config (SkyPilot's format) reaches the loopback sshd; the job
    rc files live in remote_tmp (the remote side is this machine, its HOME the real one)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    target = _cluster_target(repo)
    config = Path.home() / ".sky" / "generated" / "ssh" / target.name
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f"Host {target.name}\n  HostName {sshd_server.host}\n  User {sshd_server.user}\n"
        f"  IdentityFile {sshd_server.identity}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
        f"  UserKnownHostsFile=/dev/null\n  Port {sshd_server.port}\n")
    monkeypatch.setattr(jobs, "JOB_RC_DIR", str(remote_tmp / "jobs"))
    yield target
    remote.close(target)


@pytest.mark.slow
def test_run_streams_the_log_and_returns_the_commands_own_exit_code(sky_box, remote_tmp, monkeypatch, capsys):
    cluster = _StandInCluster(remote_tmp / "home")  # stand-in: see its docstring
    cluster.install(monkeypatch)
    assert jobs.run(sky_box, ["sh", "-c", "echo training; exit 3"]) == 3  # not SkyPilot's 100
    assert "training" in capsys.readouterr().out
    assert not (remote_tmp / "jobs").exists() or not list((remote_tmp / "jobs").iterdir())  # read and removed
    task = cluster.tasks[0]
    assert task.workdir == sky_box.repo and {str(r.accelerators) for r in task.resources} == {"{'A6000': 1}"}
    assert jobs.run(sky_box, "echo fine") == 0


@pytest.mark.slow
def test_detach_returns_the_job_id_at_once(sky_box, remote_tmp, monkeypatch, capsys):
    cluster = _StandInCluster(remote_tmp / "home")  # stand-in: see its docstring
    cluster.install(monkeypatch)
    monkeypatch.setattr(cluster, "tail_logs", lambda *a, **k: pytest.fail("detach must not follow"))
    assert jobs.run(sky_box, "sleep 0", detach=True) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "4" and "gpu-lol logs gpu-lol-job 4" in captured.err


def test_a_stopped_cluster_is_a_clear_error(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    target = _cluster_target(repo)
    _StandInCluster(tmp_path, status="STOPPED").install(monkeypatch)  # stand-in: see its docstring
    with pytest.raises(OperationError) as err:
        jobs.submit(target, "true")
    assert err.value.message == "cluster 'gpu-lol-job' is STOPPED, not UP"
    assert "gpu-lol start gpu-lol-job" in err.value.hint


def test_accelerators_fall_back_to_the_spec_with_the_clouds_name(tmp_path):
    target = _cluster_target(tmp_path)
    assert jobs._accelerators_from_spec({}, target.name) == {"A6000": 1}  # Lambda's name for RTXA6000


@pytest.mark.slow
def test_cli_run_on_a_host_runs_inline_and_detach_is_a_usage_error(run_cli, sshd_server, remote_tmp):  # noqa: F811
    workdir = remote_tmp / "w"
    workdir.mkdir()
    host = Target(name="box", kind="host", repo=str(workdir), spec={},
                  extra={"host": sshd_server.host, "user": sshd_server.user, "port": sshd_server.port,
                         "identity": str(sshd_server.identity), "workdir": str(workdir), "venv": None})
    state.save(host)
    try:
        res = run_cli("run", "box", "--no-sync", "--", "sh", "-c", "pwd; exit 4")
        assert res.code == 4 and res.out.strip() == str(workdir), res
        res = run_cli("exec", "box", "--detach", "--", "true")
        assert res.code == 2 and "no SkyPilot job queue" in res.err
        res = run_cli("logs", "box", "3")
        assert res.code == 2 and "has no SkyPilot jobs" in res.err
        res = run_cli("run", "box")
        assert res.code == 2 and "gpu-lol run -- " in res.err
    finally:
        remote.close(host)
