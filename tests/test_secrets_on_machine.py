"""Secrets where work runs: setup copies SkyPilot's secrets into a mode-600 file that `exec`,
`ssh` and `run` jobs source; the value is never in the task text, a dry run or a log. Vast
community hosts are warned about and `vast.datacenter_only` reaches SkyPilot's task config.
The setup lines run under real bash; `exec` goes over a real loopback sshd."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from gpu_lol import launch
from gpu_lol.config import user_config
from gpu_lol.launch import skypilot
from gpu_lol.launch.state import Target
from gpu_lol.machine import remote
from gpu_lol.spec import EnvironmentSpec
from sshd import control_cleanup, remote_tmp, sshd_server  # noqa: F401 - fixtures

FIXTURES = Path(__file__).parent / "fixtures" / "launch"
NASTY = "hf_x'y\"z $(touch /tmp/gpu-lol-pwned) `id` \\ ; end"


@pytest.fixture
def repo(tmp_path) -> Path:
    path = tmp_path / "my-repo"
    shutil.copytree(FIXTURES / "complete", path)
    return path


def _spec(**kw) -> EnvironmentSpec:
    base = dict(workload_type="training", gpu_type="RTX4090", gpu_count=1, vram_required_gb=18,
                base_image="runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404")
    base.update(kw)
    return EnvironmentSpec(**base)


def _write_secrets_file(home: Path, secrets: dict[str, str]) -> str:
    """Run the setup's secrets lines as SkyPilot would: bash, the secrets in the environment."""
    script = skypilot.secrets_file_setup(secrets)
    proc = subprocess.run(["bash", "-c", script], env={**os.environ, "HOME": str(home), **secrets},
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and NASTY not in proc.stderr  # never printed
    return script


def test_setup_writes_a_private_file_with_the_exact_values(tmp_path, repo):
    plan = launch.build_plan(repo, _spec(providers=["runpod"]), launch.LaunchOptions(envs=["MY_API_KEY"]),
                             environ={"HF_TOKEN": NASTY, "MY_API_KEY": "k-1"}, check_offers=False)
    setup = plan.task["setup"]
    assert "HF_TOKEN MY_API_KEY" in setup and NASTY not in setup and "k-1" not in setup
    assert NASTY not in skypilot.task_yaml(skypilot.redact_task(plan.task))  # the dry-run text
    home = tmp_path / "home"
    home.mkdir()
    _write_secrets_file(home, {"HF_TOKEN": NASTY, "MY_API_KEY": "k-1"})
    secrets = home / ".gpu-lol" / "secrets.env"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    out = subprocess.run(["bash", "-c", f'. {secrets}; printf "%s|%s" "$HF_TOKEN" "$MY_API_KEY"'],
                         capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"]})
    assert out.stdout == f"{NASTY}|k-1"
    assert not Path("/tmp/gpu-lol-pwned").exists()


def test_a_plan_without_secrets_writes_no_file():
    assert skypilot.secrets_file_setup({}) == ""
    assert skypilot.secrets_file_setup({"not a name": "x"}) == ""


@pytest.mark.slow
def test_exec_on_a_cluster_sources_the_secrets_file(sshd_server, remote_tmp, monkeypatch, capfd):  # noqa: F811
    # The remote side is this machine with the real HOME: the file lives in remote_tmp instead.
    secrets_path = remote_tmp / "dot-gpu-lol" / "secrets.env"
    monkeypatch.setattr(skypilot, "SECRETS_FILE", str(secrets_path))
    _write_secrets_file(remote_tmp, {"HF_TOKEN": NASTY})
    assert stat.S_IMODE(secrets_path.stat().st_mode) == 0o600
    name = "gpu-lol-sec"
    config = Path.home() / ".sky" / "generated" / "ssh" / name
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f"Host {name}\n  HostName {sshd_server.host}\n  User {sshd_server.user}\n"
        f"  IdentityFile {sshd_server.identity}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
        f"  UserKnownHostsFile=/dev/null\n  Port {sshd_server.port}\n")
    target = Target(name=name, kind="sky", repo=str(remote_tmp), extra={"workdir": str(remote_tmp)})
    try:
        capfd.readouterr()
        assert remote.run(target, 'printf "%s" "$HF_TOKEN"; python3 -c "import os; print(); print(os.environ[\'HF_TOKEN\'])"') == 0
        out = capfd.readouterr().out.splitlines()
        assert out == [NASTY, NASTY]  # in the shell, and exported to its children
    finally:
        remote.close(target)


def test_vast_community_hosts_are_warned_about_and_datacenter_only_reaches_skypilot(repo):
    plan = launch.build_plan(repo, _spec(providers=["runpod", "vast"]), environ={"HF_TOKEN": "hf_1"},
                             check_offers=False)
    assert any("Vast community hosts" in w and "HF_TOKEN" in w for w in plan.warnings)
    assert "config" not in plan.task
    no_secret = launch.build_plan(repo, _spec(providers=["vast"]), environ={}, check_offers=False)
    assert not any("Vast community hosts" in w for w in no_secret.warnings)
    user_config.set_value("vast.datacenter_only", "true")
    kept = launch.build_plan(repo, _spec(providers=["runpod", "vast"]), environ={"HF_TOKEN": "hf_1"},
                             check_offers=False)
    assert kept.task["config"] == {"vast": {"datacenter_only": True}}
    assert not any("Vast community hosts" in w for w in kept.warnings)
    sky_task = skypilot.validate_task(kept.task)  # SkyPilot's loader takes it
    assert all(r.cluster_config_overrides == {"vast": {"datacenter_only": True}} for r in sky_task.resources)
    only_runpod = launch.build_plan(repo, _spec(providers=["runpod"]), environ={}, check_offers=False)
    assert "config" not in only_runpod.task
