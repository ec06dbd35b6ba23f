"""CPU work lands on CPU machines: the plan pins a CPU-only instance per cloud, SkyPilot's own
optimizer (offline, on the shared v8 catalog files) picks exactly it, Vast is left out, RunPod's
CPU pods get a disk within their limit. The only stand-in is SkyPilot's list of enabled clouds
(a cloud account cannot exist here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gpu_lol import launch
from gpu_lol.errors import UsageError
from gpu_lol.launch import skypilot
from gpu_lol.sizing import catalog
from gpu_lol.spec import EnvironmentSpec


def cpu_spec(**kw) -> EnvironmentSpec:
    return EnvironmentSpec(workload_type="cpu", gpu_type=None, gpu_count=0, base_image="python:3.11-slim",
                           **kw)


@pytest.fixture
def repo(tmp_path) -> Path:
    path = tmp_path / "cpu-repo"
    path.mkdir()
    (path / "main.py").write_text("print('hi')\n")
    return path


@pytest.fixture
def cached(shared_dir) -> Path:
    dest = Path.home() / ".sky" / "catalogs" / "v8"
    shutil.copytree(shared_dir / "skypilot-catalog" / "v8", dest)
    return dest


@pytest.mark.parametrize("with_catalog", [True, False])
def test_a_cpu_plan_pins_cpu_instances_and_leaves_vast_out(repo, with_catalog, request, monkeypatch):
    if with_catalog:
        request.getfixturevalue("cached")
    # SkyPilot fixes its catalog directory from HOME when first imported (an earlier test's HOME
    # here), so its "is the catalog cached" answer is set to match this test's HOME; the
    # subprocess test below runs it for real.
    monkeypatch.setattr(skypilot, "catalog_cached", lambda provider: with_catalog)
    plan = launch.build_plan(repo, cpu_spec(), environ={}, check_offers=False)
    res = plan.task["resources"]
    assert res["cpus"] == "2+" and res["memory"] == "4+"
    if with_catalog:  # pinned (checking an instance type needs the catalog)
        assert res["any_of"] == [{"infra": "runpod", "instance_type": "cpu3c-2-4", "disk_size": 20},
                                 {"infra": "lambda", "instance_type": "cpu_4x_general"}]
    else:  # cpus/memory alone: the cheapest instance that meets them is the CPU one
        assert res["any_of"] == [{"infra": "runpod", "disk_size": 20}, {"infra": "lambda"}]
    assert any("Vast has no CPU-only machines" in n for n in plan.notes)
    assert any("RunPod CPU pods hold at most 10 GB of disk per vCPU" in w for w in plan.warnings)
    assert plan.cost_per_hour == pytest.approx(0.08)
    rows = dict(launch.plan_rows(plan))
    assert rows["machine"].startswith("RunPod cpu3c-2-4 (2 vCPU, 4 GB) $0.08/hr, Lambda cpu_4x_general")
    skypilot.validate_task(plan.task)


def test_a_small_disk_is_kept_and_vast_alone_is_a_usage_error(repo, monkeypatch):
    monkeypatch.setattr(skypilot, "catalog_cached", lambda provider: False)  # see above
    plan = launch.build_plan(repo, cpu_spec(disk_gb=15), environ={}, check_offers=False)
    assert plan.task["resources"]["any_of"][0] == {"infra": "runpod"}
    assert not any("CPU pods hold" in w for w in plan.warnings)
    with pytest.raises(UsageError) as err:
        launch.build_plan(repo, cpu_spec(providers=["vast"]), environ={}, check_offers=False)
    assert err.value.message == "no CPU machine on Vast: a cpu workload never gets a GPU box"


def test_cpu_instances_come_from_the_catalog_rows_without_accelerators(cached):
    runpod = catalog.cpu_instances("runpod")
    assert [i.instance_type for i in runpod] == ["cpu3c-2-4"] and runpod[0].source == catalog.SOURCE_SKY
    assert catalog.cpu_instances("vast") == []
    assert catalog.cpu_instance_for("lambda").instance_type == "cpu_4x_general"
    assert catalog.cpu_instance_for("lambda", cpus=8) is None


OPTIMIZE = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from unittest import mock
    import sky
    from sky import check as sky_check, clouds
    from gpu_lol import launch
    from gpu_lol.launch import skypilot
    from gpu_lol.spec import EnvironmentSpec

    out = {}
    for provider in ("runpod", "lambda"):
        spec = EnvironmentSpec(workload_type="cpu", gpu_type=None, gpu_count=0,
                               base_image="python:3.11-slim", providers=[provider])
        plan = launch.build_plan(Path(sys.argv[1]), spec, launch.LaunchOptions(), environ={},
                                 check_offers=False)
        dag = sky.Dag()
        dag.add(skypilot.validate_task(plan.task))
        enabled = lambda *a, **k: [clouds.RunPod(), clouds.Vast(), clouds.Lambda()]
        with mock.patch.object(sky_check, "get_cached_enabled_clouds_or_refresh", enabled):
            sky.Optimizer.optimize(dag, quiet=True)
        best = dag.tasks[0].best_resources
        out[provider] = {"instance": best.instance_type, "accelerators": best.accelerators,
                         "disk": best.disk_size, "price": best.get_cost(3600)}
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_skypilots_optimizer_launches_the_cpu_instance_not_a_gpu_box(repo, shared_dir, tmp_path):
    home = tmp_path / "sky-home"
    shutil.copytree(shared_dir / "skypilot-catalog" / "v8", home / ".sky" / "catalogs" / "v8")
    env = {**os.environ, "HOME": str(home), "GPU_LOL_HOME": str(home / ".gpu-lol")}
    proc = subprocess.run([sys.executable, "-c", OPTIMIZE, str(repo)], env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["runpod"] == {"instance": "cpu3c-2-4", "accelerators": None, "disk": 20, "price": 0.08}
    assert got["lambda"]["instance"] == "cpu_4x_general" and got["lambda"]["accelerators"] is None
