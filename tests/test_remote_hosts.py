"""Host target parsing and safety rules (no server needed)."""

from __future__ import annotations

import pytest

from gpu_lol.errors import UsageError
from gpu_lol.launch.state import Target
from gpu_lol.machine import hosts, remote
from gpu_lol.spec import EnvironmentSpec


@pytest.mark.parametrize("text,host,user,port", [
    ("ubuntu@10.0.0.5", "10.0.0.5", "ubuntu", None),
    ("me@box:2222", "box", "me", 2222),
    ("box", "box", None, None),
    ("gpu.lab.example.org", "gpu.lab.example.org", None, None),
    ("[::1]:2222", "::1", None, 2222),
    ("root@[fe80::1]", "fe80::1", "root", None),
    ("::1", "::1", None, None),
])
def test_parse_host(text, host, user, port):
    address = hosts.parse_host(text)
    assert (address.host, address.user, address.port) == (host, user, port)


@pytest.mark.parametrize("text", ["", "-oProxyCommand=x", "me@", "@box", "a b", "box:0", "box:99999",
                                  "box:http", "me@box;rm", "[::1", "user@host/path", "$(id)@box"])
def test_parse_host_rejects(text):
    with pytest.raises(UsageError):
        hosts.parse_host(text)


def test_host_label_round_trips():
    assert str(hosts.parse_host("me@[::1]:2222")) == "me@[::1]:2222"
    target = Target(name="t", kind="host", repo="/r", extra={"host": "::1", "user": "me", "port": 2222})
    assert remote.host_label(target) == "me@[::1]:2222"


@pytest.mark.parametrize("text,expected", [
    ("~/gpu-lol/box", "~/gpu-lol/box"),
    ("~/a//b/", "~/a/b"),
    ("/data/me/repo", "/data/me/repo"),
    ("/tmp/x", "/tmp/x"),
])
def test_workdir_accepted(text, expected):
    assert hosts.check_workdir(text) == expected


@pytest.mark.parametrize("text", ["~", "~/", "~/..", "~/a/../..", "relative/dir", "/", "/home", "/home/me",
                                  "/tmp", "/usr", "/data/../etc", "/x\n/y"])
def test_workdir_rejected(text):
    with pytest.raises(UsageError):
        hosts.check_workdir(text)


def test_preflight_parsing():
    pre = hosts._parse_preflight("home=/home/me\nrsync=yes\npython=python3.11\npython_version=3.11.9\n"
                                 "workdir=exists\nworkdir_nonempty=yes\n"
                                 'marker={"name": "box", "repo": "/r"}\n'
                                 "gpu=NVIDIA GeForce RTX 4090, 24564\ngpu=NVIDIA GeForce RTX 4090, 24564\n"
                                 "nvidia_smi_rc=0\n")
    assert pre.rsync and pre.python == "python3.11" and pre.python_version == "3.11.9"
    assert pre.workdir_exists and pre.workdir_nonempty and pre.marker["name"] == "box"
    assert pre.gpus == [("NVIDIA GeForce RTX 4090", 24.0)] * 2
    broken = hosts._parse_preflight("rsync=no\ngpu=NVIDIA-SMI has failed because it couldn't communicate "
                                    "with the NVIDIA driver\nnvidia_smi_rc=9\n")
    assert broken.nvidia_smi == "error" and "couldn't communicate" in broken.gpu_error


def test_gpu_problems_need_yes():
    spec = EnvironmentSpec(workload_type="training", gpu_type="H100", gpu_count=2, vram_required_gb=60)
    pre = hosts._parse_preflight("gpu=NVIDIA GeForce RTX 4090, 24564\nnvidia_smi_rc=0\n")
    problems, notes = hosts._gpu_problems(spec, pre, "box")
    assert any("has 1 GPU(s) but the spec needs 2" in p for p in problems)
    assert any("24 GiB but the spec needs 60 GiB" in p for p in problems)
    assert any("RTX4090" in n for n in notes)
    missing = hosts._parse_preflight("nvidia_smi=missing\n")
    assert "nvidia-smi not found" in hosts._gpu_problems(spec, missing, "box")[0][0]
    cpu = EnvironmentSpec(workload_type="cpu", gpu_type=None, gpu_count=0)
    assert hosts._gpu_problems(cpu, missing, "box") == ([], [])


def test_setup_script_is_strict_and_quotes_everything():
    spec = EnvironmentSpec(workload_type="training", requirements=["numpy<2", "torch>=2.1"],
                           envs={"MSG": "it's $x", "HF_TOKEN": "never-in-a-script"},
                           system_packages=["ffmpeg"])
    target = Target(name="box", kind="host", repo="/r",
                    extra={"host": "h", "workdir": "~/gpu lol/box", "venv": "~/gpu lol/box/.gpu-lol/venv"})
    script, warnings = hosts.render_setup(target, spec, "python3")
    assert script.startswith("set -euo pipefail\n")
    assert "cd ~/'gpu lol/box'" in script
    assert "-m venv --system-site-packages ~/'gpu lol/box/.gpu-lol/venv'" in script
    assert "python -m pip install 'numpy<2' 'torch>=2.1'" in script
    assert "export MSG='it'\"'\"'s $x'" in script
    assert "never-in-a-script" not in script and "HF_TOKEN" not in script
    assert any("ffmpeg" in w for w in warnings)


def test_up_host_validates_before_connecting(tmp_path):
    spec = EnvironmentSpec(workload_type="cpu", gpu_type=None, gpu_count=0)
    with pytest.raises(UsageError, match="no such key file"):
        hosts.up_host(tmp_path, spec, "me@box", identity=str(tmp_path / "nokey"), name="box")
    with pytest.raises(UsageError, match="not USER@HOST"):
        hosts.up_host(tmp_path, spec, "-oProxyCommand=touch /tmp/pwned", identity=None, name="box")
    with pytest.raises(UsageError, match="home directory"):
        hosts.up_host(tmp_path, spec, "me@box", identity=None, name="box", workdir="~")


def test_name_of_a_cluster_is_not_reused_for_a_host(tmp_path):
    from gpu_lol.launch import state

    state.save(Target(name="gpu-lol-x", kind="sky", repo=str(tmp_path)))
    spec = EnvironmentSpec(workload_type="cpu", gpu_type=None, gpu_count=0)
    with pytest.raises(UsageError, match="SkyPilot cluster"):
        hosts.up_host(tmp_path, spec, "me@box", identity=None, name="gpu-lol-x")
    state.save(Target(name="mine", kind="host", repo=str(tmp_path), extra={"host": "other", "workdir": "~/w"}))
    with pytest.raises(UsageError, match="already names host other"):
        hosts.up_host(tmp_path, spec, "me@box", identity=None, name="mine")
