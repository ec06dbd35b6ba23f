"""Teams sharing one SkyPilot API server: default names include the user, `up` never reuses a
cluster another user launched, and the RunPod template lookup says whose key it used."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_lol import launch
from gpu_lol.errors import UsageError
from gpu_lol.launch import skypilot, state
from gpu_lol.launch.runpod_api import Template, TemplateLookup
from gpu_lol.launch.skypilot import ClusterStatus
from gpu_lol.spec import EnvironmentSpec

IMAGE = "runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404"


def _spec(**kw) -> EnvironmentSpec:
    base = dict(workload_type="training", gpu_type="RTX4090", gpu_count=1, vram_required_gb=18,
                base_image=IMAGE, providers=["runpod"])
    base.update(kw)
    return EnvironmentSpec(**base)


@pytest.fixture
def repo(tmp_path) -> Path:
    path = tmp_path / "My Repo"
    path.mkdir()
    (path / "train.py").write_text("print(1)\n")
    return path


def test_default_names_include_the_user_only_with_a_team_server(repo, monkeypatch):
    monkeypatch.setattr(skypilot, "current_user", lambda: "Alice.Smith")
    assert launch.build_plan(repo, _spec(), environ={}, check_offers=False).cluster_name == "gpu-lol-my-repo"
    monkeypatch.setenv("SKYPILOT_API_SERVER_ENDPOINT", "https://sky.example.com")
    assert launch.build_plan(repo, _spec(), environ={}, check_offers=False).cluster_name == \
        "gpu-lol-alice-smith-my-repo"
    named = launch.build_plan(repo, _spec(), launch.LaunchOptions(name="mine"), environ={}, check_offers=False)
    assert named.cluster_name == "mine"


def test_the_endpoint_in_skypilots_config_file_counts_too(tmp_path, monkeypatch):
    config = Path.home() / ".sky" / "config.yaml"
    config.parent.mkdir(parents=True)
    assert skypilot.team_endpoint() is None
    config.write_text("api_server:\n  endpoint: http://10.0.0.2:46580\n")
    assert skypilot.team_endpoint() == "http://10.0.0.2:46580"
    config.write_text(": not yaml : [\n")
    assert skypilot.team_endpoint() is None


def test_up_never_reuses_a_cluster_another_user_launched(repo, monkeypatch):
    # Stand-ins for the team's API server (no cluster can exist here): it reports the cluster
    # under the name this plan uses as launched by bob.
    plan = launch.build_plan(repo, _spec(), environ={}, check_offers=False)
    monkeypatch.setattr(skypilot, "ensure_api_server", lambda progress=None: None)
    monkeypatch.setattr(skypilot, "current_user", lambda: "alice")
    monkeypatch.setattr(skypilot, "status_one", lambda name: ClusterStatus(name=name, status="UP", user="bob"))
    monkeypatch.setattr(skypilot, "launch", lambda *a, **k: pytest.fail("must not launch onto bob's cluster"))
    with pytest.raises(UsageError) as err:
        launch.execute(plan)
    assert err.value.message == f"'{plan.cluster_name}' is a cluster bob launched: gpu-lol never reuses another user's cluster"
    assert "--name" in err.value.hint
    assert state.load(plan.cluster_name) is None  # no record written for it


def test_template_lookup_warns_that_the_key_is_this_machines(repo, monkeypatch):
    found = TemplateLookup(templates=[Template(id="t", name="mine", image=IMAGE)], has_key=True)
    _, warnings = launch.choose_template(_spec(), ["runpod"], None, True, lambda: found)
    assert not warnings
    monkeypatch.setenv("SKYPILOT_API_SERVER_ENDPOINT", "https://sky.example.com")
    _, warnings = launch.choose_template(_spec(), ["runpod"], None, True, lambda: found)
    assert len(warnings) == 1 and "the team's API server launches with its own RunPod account" in warnings[0]
