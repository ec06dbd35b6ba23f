"""Integration: SkyPilot's real API server on 127.0.0.1 (a free port, a temporary HOME with the
shared catalogs), driven by the real ``gpu-lol`` executable. No cloud account exists here, so a
launch must end in our "no cloud credentials" message; nothing is ever sent to a provider."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_FIXTURE = Path(__file__).parent / "fixtures" / "launch" / "complete"
SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
_SCRUB = ("GPU_LOL_", "SKYPILOT_", "RUNPOD_", "VAST_", "LAMBDA_", "OPENAI_", "HF_", "WANDB_", "AWS_", "XDG_")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _exe(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    assert path.exists(), f"{path} missing"
    return str(path)


@pytest.fixture(scope="module")
def sky_server(tmp_path_factory):
    if not (SHARED / "skypilot-catalog" / "v8").is_dir():
        pytest.skip("../shared/skypilot-catalog is not beside the checkout")
    home = tmp_path_factory.mktemp("sky-server-home")
    shutil.copytree(SHARED / "skypilot-catalog" / "v8", home / ".sky" / "catalogs" / "v8")
    # Only the providers gpu-lol uses, so SkyPilot's credential check does not probe 20 clouds.
    (home / ".sky" / "config.yaml").write_text("allowed_clouds: [runpod, vast, lambda]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    port = _free_port()
    env.update(HOME=str(home), GPU_LOL_HOME=str(home / ".gpu-lol"), SKYPILOT_API_SERVER_LOCAL_PORT=str(port),
               SKYPILOT_DISABLE_USAGE_COLLECTION="1")
    try:
        # gpu-lol starts the local server itself on first use, with our progress line (one plain
        # line on a pipe) instead of SkyPilot's "Failed to connect ... Starting a local server."
        # and its spinner; `cost` is the first call here.
        started = subprocess.run([_exe("gpu-lol"), "cost"], env=env, cwd=home,
                                 capture_output=True, text=True, timeout=180)
        assert started.returncode == 0, started.stderr[-3000:]
        lines = started.stderr.splitlines()
        assert lines[:2] == ["Loading SkyPilot...",
                             "Starting SkyPilot's local API server (the first start takes 10-20 s)..."], lines
        assert "Failed to connect" not in started.stderr and "Starting a local server" not in started.stderr
        assert "API server started" not in started.stderr
        assert "\x1b" not in started.stderr + started.stdout  # no colour codes into a pipe
        # exit 1: no provider has credentials; --json: no progress line
        checked = subprocess.run([_exe("gpu-lol"), "check", "--json"], env=env, cwd=home,
                                 capture_output=True, text=True, timeout=180)
        assert "Starting SkyPilot" not in checked.stderr
        check = json.loads(checked.stdout)
        assert {c["name"]: c["status"] for c in check["checks"]}["api-server"] == "ok", check
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) == 0  # listening on loopback, our port
        yield {"env": env, "home": home, "port": port, "check": check}
    finally:
        subprocess.run([_exe("sky"), "api", "stop"], env=env, capture_output=True, text=True, timeout=120)
        # the port is free again: the server is really gone
        deadline = time.time() + 20
        while time.time() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) != 0:
                    break
            time.sleep(0.5)


def gpu_lol(server, *args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([_exe("gpu-lol"), *args], env=server["env"], cwd=cwd or server["home"],
                          capture_output=True, text=True, timeout=timeout)


def _one_error(stderr: str) -> tuple[str, str]:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.strip().splitlines() if line.startswith(("error: ", "hint: "))]
    assert len(lines) == 2, stderr
    return lines[0], lines[1]


def test_ls_and_cost_on_an_empty_server(sky_server):
    result = gpu_lol(sky_server, "ls", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["targets"] == []
    result = gpu_lol(sky_server, "ls")
    assert result.returncode == 0 and "Nothing launched" in result.stderr
    result = gpu_lol(sky_server, "cost", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["clusters"] == []


def test_down_stop_info_on_unknown_names_fail_clearly(sky_server):
    for args in (("down", "nosuch", "-y"), ("stop", "nosuch"), ("start", "nosuch"), ("info", "nosuch")):
        result = gpu_lol(sky_server, *args)
        assert result.returncode == 1, (args, result.stderr)
        error, hint = _one_error(result.stderr)
        assert error == "error: no cluster or host named 'nosuch'"
        assert hint.startswith("hint: known to gpu-lol: none")


def test_launch_without_credentials_ends_in_our_message(sky_server, tmp_path):
    repo = tmp_path / "launch-repo"
    shutil.copytree(REPO_FIXTURE, repo)
    result = gpu_lol(sky_server, "up", "-y", "--no-llm", cwd=repo)
    assert result.returncode == 1, result.stdout + result.stderr
    error, hint = _one_error(result.stderr)
    assert error.startswith("error: no cloud credentials: SkyPilot has no usable account"), error
    assert "~/.runpod/config.toml" in hint and "gpu-lol check" in hint
    assert "RTX4090 x 1" in result.stdout  # the plan was shown before launching
    assert "\x1b" not in result.stdout + result.stderr  # SkyPilot's colours stay out of pipes
    # nothing was left recorded: no cluster exists
    assert not list((sky_server["home"] / ".gpu-lol" / "targets").glob("*.json"))
    # resume, with --json: stdout is only the result; the plan and SkyPilot's chatter go to stderr
    result = gpu_lol(sky_server, "resume", "-y", "--json", cwd=repo)
    assert result.returncode == 1 and result.stdout == ""
    assert "RTX4090 x 1" in result.stderr
    assert _one_error(result.stderr)[0].startswith("error: no cloud credentials")
    assert not list((sky_server["home"] / ".gpu-lol" / "targets").glob("*.json"))


def test_check_reports_each_provider(sky_server):
    result = gpu_lol(sky_server, "check", "--json")
    assert result.returncode == 1, result.stderr
    assert "Starting SkyPilot" not in result.stderr  # already running: not started twice
    data = json.loads(result.stdout)
    by_name = {c["name"]: c for c in data["checks"]}
    assert by_name["api-server"]["status"] == "ok"
    assert f"127.0.0.1:{sky_server['port']}" in by_name["api-server"]["detail"]
    for provider in ("runpod", "vast", "lambda"):
        assert by_name[provider]["status"] == "fail" and by_name[provider]["hint"]
    assert data["ok"] is False


def test_a_record_whose_cluster_is_gone(sky_server):
    targets = sky_server["home"] / ".gpu-lol" / "targets"
    targets.mkdir(parents=True, exist_ok=True)
    record = {"name": "gpu-lol-gone", "kind": "sky", "repo": str(REPO_FIXTURE), "created_at": time.time(),
              "spec": {"gpu_type": "RTX4090", "gpu_count": 1}, "extra": {"cloud": "runpod"}}
    (targets / "gpu-lol-gone.json").write_text(json.dumps(record))
    result = gpu_lol(sky_server, "ls", "--json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["targets"]
    assert row["name"] == "gpu-lol-gone" and row["status"] == "GONE" and "forgets it" in row["detail"]
    result = gpu_lol(sky_server, "stop", "gpu-lol-gone")
    assert result.returncode == 1 and "no longer exists" in result.stderr
    result = gpu_lol(sky_server, "down", "gpu-lol-gone", "-y")
    assert result.returncode == 0, result.stderr
    assert "already gone" in result.stdout
    assert not (targets / "gpu-lol-gone.json").exists()
