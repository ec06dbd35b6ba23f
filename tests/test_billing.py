"""Nothing bills unseen: STOPPED Vast instances and INIT leftovers are named in `ls` and after a
failed launch, the plan warns about Vast's stopped/outbid billing, and `--spot` is priced at
the spot price (the shared v8 catalog's SpotPrice column)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gpu_lol import launch
from gpu_lol.errors import OperationError
from gpu_lol.launch import skypilot, state
from gpu_lol.launch.skypilot import ClusterStatus
from gpu_lol.machine import lifecycle
from gpu_lol.sizing import catalog
from gpu_lol.spec import EnvironmentSpec

IMAGE = "runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404"


def _spec(**kw) -> EnvironmentSpec:
    base = dict(workload_type="training", gpu_type="RTX4090", gpu_count=1, vram_required_gb=18, base_image=IMAGE)
    base.update(kw)
    return EnvironmentSpec(**base)


@pytest.fixture
def repo(tmp_path) -> Path:
    path = tmp_path / "r"
    path.mkdir()
    (path / "train.py").write_text("print(1)\n")
    return path


def test_ls_notes_name_stopped_vast_and_init_clusters():
    notes = lifecycle.billing_notes([
        ClusterStatus(name="a", status="STOPPED", provider="vast"),
        ClusterStatus(name="b", status="STOPPED", provider="vast", spot=True),
        ClusterStatus(name="c", status="INIT", provider="runpod"),
        ClusterStatus(name="d", status="UP", provider="vast"),
        ClusterStatus(name="e", status="STOPPED", provider="lambda"),
    ])
    assert len(notes) == 3
    assert notes[0].startswith("a is STOPPED on Vast: Vast bills its disk") and "gpu-lol down a" in notes[0]
    assert "outbid" in notes[1] and "autostop tear-down never fires" in notes[1]
    assert notes[2].startswith("c is INIT") and "gpu-lol down c" in notes[2]


def test_the_plan_warns_about_vast_billing(repo):
    vast = launch.build_plan(repo, _spec(providers=["vast"]), environ={}, check_offers=False)
    assert any("stopped Vast instance still bills its disk" in w for w in vast.warnings)
    spot = launch.build_plan(repo, _spec(providers=["vast"], spot=True), environ={}, check_offers=False)
    assert any("outbid" in w and "autostop never tears it down" in w for w in spot.warnings)
    runpod = launch.build_plan(repo, _spec(providers=["runpod"]), environ={}, check_offers=False)
    assert not any("Vast" in w for w in runpod.warnings)


def test_spot_plans_show_the_spot_price(repo, shared_dir):
    dest = Path.home() / ".sky" / "catalogs" / "v8"
    shutil.copytree(shared_dir / "skypilot-catalog" / "v8", dest)
    on_demand = launch.build_plan(repo, _spec(gpu_type="A40", providers=["runpod"]), environ={}, check_offers=False)
    spot = launch.build_plan(repo, _spec(gpu_type="A40", providers=["runpod"], spot=True), environ={},
                             check_offers=False)
    assert on_demand.cost_per_hour == pytest.approx(0.40)
    assert spot.cost_per_hour == pytest.approx(0.20)  # the catalog's SpotPrice, not 0.40
    assert spot.price_source.startswith("spot, skypilot-catalog")
    assert catalog.read_sky_prices("vast", spot=True)[("RTX4090", 1)] == pytest.approx(0.20)


def test_spot_without_a_cached_catalog_is_unknown_not_on_demand(repo):
    plan = launch.build_plan(repo, _spec(gpu_type="A40", providers=["runpod"], spot=True), environ={},
                             check_offers=False)
    assert plan.cost_per_hour is None
    assert any("spot price unknown" in w and "on demand it is $0.40/hr" in w for w in plan.warnings)


def test_a_failed_launch_that_left_a_cluster_in_init_says_so(repo, monkeypatch):
    # Stand-ins for the API server (a launch needs a cloud account): the launch fails, and
    # SkyPilot's status then shows the cluster in INIT.
    plan = launch.build_plan(repo, _spec(providers=["runpod"]), environ={}, check_offers=False)
    monkeypatch.setattr(skypilot, "ensure_api_server", lambda progress=None: None)
    calls = []

    def status_one(name):
        calls.append(name)
        return None if len(calls) == 1 else ClusterStatus(name=name, status="INIT", provider="runpod")

    def failing_launch(*args, **kwargs):
        raise OperationError("SkyPilot failed: provisioning timed out", "sky api logs")

    monkeypatch.setattr(skypilot, "status_one", status_one)
    monkeypatch.setattr(skypilot, "launch", failing_launch)
    with pytest.raises(OperationError) as err:
        launch.execute(plan)
    assert err.value.hint == (f"sky api logs; SkyPilot left {plan.cluster_name} in INIT (a machine may exist "
                              f"and bill): `gpu-lol down {plan.cluster_name}` removes it")
    assert state.load(plan.cluster_name) is not None  # kept, so `gpu-lol ls`/`down` find it


@pytest.mark.parametrize("image, cuda", [
    ("runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404", (12, 8)),
    ("runpod/pytorch:0.7.0-cu1241-torch251-ubuntu2204", (12, 4)),
    ("nvidia/cuda:12.9.1-cudnn-runtime-ubuntu22.04", (12, 9)),
    ("runpod/base:1.0.2-cuda1281-ubuntu2204", (12, 8)),
    ("python:3.11-slim", None),
])
def test_image_cuda_from_the_tag(image, cuda):
    assert skypilot.image_cuda(image) == cuda


def test_runpod_cuda_warning(repo):
    plan = launch.build_plan(repo, _spec(providers=["runpod", "vast"]), environ={}, check_offers=False)
    assert any("SkyPilot 0.14 cannot filter RunPod hosts by CUDA" in w for w in plan.warnings)
    safe = launch.build_plan(repo, _spec(base_image=skypilot.RUNPOD_SAFE_IMAGE, providers=["runpod"]),
                             environ={}, check_offers=False)
    assert not any("filter RunPod hosts" in w for w in safe.warnings)
    blackwell = launch.build_plan(repo, _spec(gpu_type="B200", providers=["runpod"]), environ={}, check_offers=False)
    assert not any("filter RunPod hosts" in w for w in blackwell.warnings)
    vast = launch.build_plan(repo, _spec(providers=["vast"]), environ={}, check_offers=False)
    assert not any("filter RunPod hosts" in w for w in vast.warnings)
