"""Lifecycle without a cloud: host targets are never billed, ls does not start a 1 GB server to list
nothing, an unreachable team API server is one clear line, and the small pure helpers.
(The real API server is exercised in test_sky_api_server.py.)"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time


from gpu_lol.launch import state
from gpu_lol.launch.skypilot import ClusterStatus
from gpu_lol.machine import lifecycle


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**extra) -> dict[str, str]:
    env = dict(os.environ)  # conftest already gave us a scrubbed, temporary HOME
    env.update(extra)
    return env


def test_stop_and_start_on_a_host_explain_it_is_not_billed(run_cli, tmp_path):
    state.save(state.Target(name="my-box", kind="host", repo=str(tmp_path),
                            extra={"host": "box.example", "user": "me"}))
    for command in ("stop", "start"):
        result = run_cli(command, "my-box")
        assert result.code == 0, result.err
        assert "not billed" in result.out and f"nothing to {command}" in result.out
    result = run_cli("stop", "my-box", "--json")
    assert result.json()["action"] == "not_billed"
    assert state.load("my-box") is not None  # nothing was done to it


def test_name_defaults_to_the_target_launched_from_this_repo(run_cli, tmp_path):
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    state.save(state.Target(name="repo-box", kind="host", repo=str(repo), extra={"host": "h"}))
    result = run_cli("stop", cwd=repo / "sub")
    assert result.code == 0 and "repo-box is your own host" in result.out
    result = run_cli("stop", cwd=tmp_path)
    assert result.code == 2 and "no cluster or host was launched from this repo" in result.err


def test_ls_does_not_start_a_server_to_list_nothing(gpu_lol_exe, tmp_path):
    port = _closed_port()
    env = _env(SKYPILOT_API_SERVER_LOCAL_PORT=str(port))
    started = time.monotonic()
    result = subprocess.run([*gpu_lol_exe, "ls", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["targets"] == [] and "not running" in data["notes"][0]
    assert time.monotonic() - started < 10
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # no server was started
    result = subprocess.run([*gpu_lol_exe, "ls"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "Nothing launched" in result.stderr


def test_unreachable_team_server_is_one_clear_line(gpu_lol_exe):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    env = _env(SKYPILOT_API_SERVER_ENDPOINT=endpoint)
    for args in (["ls"], ["down", "some-cluster", "-y"], ["cost"]):
        result = subprocess.run([*gpu_lol_exe, *args], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 1, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert lines[-2] == f"error: cannot reach the SkyPilot API server at {endpoint}", result.stderr
        assert lines[-1].startswith("hint: check the endpoint (SKYPILOT_API_SERVER_ENDPOINT")
        assert "Traceback" not in result.stderr


def test_check_without_a_server_reports_it(gpu_lol_exe):
    env = _env(SKYPILOT_API_SERVER_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    result = subprocess.run([*gpu_lol_exe, "check", "--json"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    data = json.loads(result.stdout)
    by_name = {c["name"]: c for c in data["checks"]}
    assert by_name["api-server"]["status"] == "fail" and "cannot reach" in by_name["api-server"]["detail"]
    assert by_name["ssh"]["status"] in ("ok", "fail")
    assert data["ok"] is False


def test_autostop_text_and_check_passed():
    assert lifecycle.autostop_text(-1, False) == "off"
    assert lifecycle.autostop_text(None, False) == "off"
    assert lifecycle.autostop_text(60, True) == "60m (down)"
    assert lifecycle.autostop_text(30, False) == "30m (stop)"
    ok = [lifecycle.Check("ssh", "ok", ""), lifecycle.Check("rsync", "fail", ""),
          lifecycle.Check("api-server", "ok", ""), lifecycle.Check("runpod", "fail", ""),
          lifecycle.Check("vast", "ok", ""), lifecycle.Check("lambda", "fail", "")]
    assert lifecycle.check_passed(ok)
    assert not lifecycle.check_passed([c if c.name != "vast" else lifecycle.Check("vast", "fail", "") for c in ok])
    assert not lifecycle.check_passed([c if c.name != "ssh" else lifecycle.Check("ssh", "fail", "") for c in ok])


def test_cluster_status_knows_who_can_stop():
    assert not ClusterStatus(name="a", status="UP", provider="runpod").can_stop
    assert not ClusterStatus(name="a", status="UP", provider="lambda").can_stop
    assert ClusterStatus(name="a", status="UP", provider="vast").can_stop
    assert not ClusterStatus(name="a", status="UP", provider="vast", spot=True).can_stop


def test_down_plan_describes_what_goes(tmp_path):
    cluster = ClusterStatus(name="c1", status="UP", provider="runpod", accelerators="RTX4090:1", price_hr=0.69)
    text = lifecycle.DownPlan(name="c1", target=None, cluster=cluster).describe()
    assert text == "c1: UP on runpod (RTX4090:1, $0.69/hr) - tear down, disk deleted"
    gone = lifecycle.DownPlan(name="c2", target=state.Target(name="c2", kind="sky", repo=""), cluster=None)
    assert "already gone" in gone.describe()
    host = lifecycle.DownPlan(name="h", target=state.Target(name="h", kind="host", repo="", extra={"host": "box"}),
                              cluster=None)
    assert "your host box" in host.describe()


def test_down_refuses_both_name_and_all(run_cli):
    result = run_cli("down", "x", "--all")
    assert result.code == 2 and "not both" in result.err


def test_ls_lists_host_targets(gpu_lol_exe, tmp_path):
    """A host row comes from gpu_lol.machine.hosts.describe (an unreachable host is listed, not an error).
    In a subprocess: SkyPilot reads SKYPILOT_API_SERVER_LOCAL_PORT once, when its server module is
    first imported, and an earlier test in this process may have imported it."""
    env = _env(SKYPILOT_API_SERVER_LOCAL_PORT=str(_closed_port()))
    state.save(state.Target(name="lab-box", kind="host", repo=str(tmp_path),
                            extra={"host": "127.0.0.1", "user": "nobody", "port": _closed_port(),
                                   "workdir": "~/gpu-lol/lab"}))
    result = subprocess.run([*gpu_lol_exe, "ls", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (row,) = [r for r in json.loads(result.stdout)["targets"] if r["kind"] == "host"]
    assert row["name"] == "lab-box" and row["status"] == "unreachable"
    assert row["provider"] == "host nobody@127.0.0.1" and row["autostop"] == "n/a" and row["price_hr"] is None


def test_info_on_a_host(run_cli, tmp_path):
    state.save(state.Target(name="lab-box", kind="host", repo=str(tmp_path),
                            extra={"host": "127.0.0.1", "user": "nobody", "port": _closed_port(),
                                   "workdir": "~/gpu-lol/lab"}))
    result = run_cli("info", "lab-box", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["kind"] == "host" and data["status"] == "unreachable"
    assert data["connect"][0] == "gpu-lol ssh lab-box"
    result = run_cli("info", "lab-box")
    assert result.code == 0 and "unreachable" in result.out and "{" not in result.out


def test_skypilot_records_become_plain_rows(monkeypatch):
    """The record shapes SkyPilot's status and cost_report return (dicts; enums for status)."""
    import sky

    from gpu_lol.launch import skypilot

    record = {"name": "c1", "status": sky.ClusterStatus.UP, "cloud": "RunPod", "region": "CA",
              "accelerators": "RTX4090:1", "resources_str": "1x RunPod(1x_RTX4090_SECURE)", "launched_at": 100,
              "autostop": 60, "to_down": True, "nodes": 1, "user_name": "me", "handle": None}
    status = skypilot._to_status(record)
    assert (status.name, status.status, status.provider, status.autostop_minutes, status.autostop_down) == \
        ("c1", "UP", "runpod", 60, True)
    assert not status.can_stop and status.price_hr is None
    assert skypilot._to_status({**record, "autostop": -1, "cloud": "Vast"}).can_stop
    # A cost history with a cluster in it cannot exist without a cloud account: the API server's
    # answer is replaced by one row of the shape sky.core.cost_report returns.
    row = {"name": "c1", "cloud": "Vast", "resources_str": "1x Vast(1x-RTX4090-16-64)", "launched_at": 5,
           "duration": 5400, "total_cost": 0.525, "num_nodes": 1}
    monkeypatch.setattr(sky, "cost_report", lambda days=None: "request-id")
    monkeypatch.setattr(skypilot, "_get", lambda request_id: [row] if request_id == "request-id" else None)
    (got,) = skypilot.cost_report()
    assert got == {"name": "c1", "status": "-", "provider": "vast", "resources": "1x Vast(1x-RTX4090-16-64)",
                   "launched_at": 5, "hours": 1.5, "cost": 0.525}


def test_down_of_an_unknown_name_needs_no_api_server_when_skypilot_never_ran(run_cli, monkeypatch, isolated_home):
    """No ~/.sky/state_db.db and no remote endpoint: SkyPilot has no cluster here, so `down` says so
    at once instead of starting a 1 GB API server to ask."""
    from gpu_lol.launch import skypilot

    def refuse(*_a, **_k):
        raise AssertionError("the API server must not be started")

    monkeypatch.setattr(skypilot, "ensure_api_server", refuse)
    result = run_cli("down", "nosuch", "--yes")
    assert result.code == 1
    assert result.err.startswith("error: no cluster or host named 'nosuch'")
    (isolated_home / ".sky").mkdir(exist_ok=True)
    (isolated_home / ".sky" / "state_db.db").write_bytes(b"")
    assert skypilot.may_have_clusters()
    monkeypatch.setenv("SKYPILOT_API_SERVER_ENDPOINT", "http://127.0.0.1:1")
    (isolated_home / ".sky" / "state_db.db").unlink()
    assert skypilot.may_have_clusters()  # a remote team server may know clusters we do not
