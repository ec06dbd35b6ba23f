"""The ``up``/``resume`` plan: overrides, providers, prices, autostop, secrets, assets, templates,
the dry-run JSON, and SkyPilot's catalog and optimizer run offline on the shared catalog files."""

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
from gpu_lol.errors import ConfigError, OperationError, UsageError
from gpu_lol.launch import skypilot, state
from gpu_lol.launch.runpod_api import Template, TemplateLookup
from gpu_lol.spec import EnvironmentSpec

FIXTURES = Path(__file__).parent / "fixtures" / "launch"
IMAGE = "runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404"


def make_spec(**kw) -> EnvironmentSpec:
    base = dict(workload_type="training", gpu_type="RTX4090", gpu_count=1, vram_required_gb=18,
                base_image=IMAGE, setup_commands=["python -m pip install 'numpy<2.0'"],
                requirements=["numpy<2.0"])
    base.update(kw)
    return EnvironmentSpec(**base)


@pytest.fixture
def repo(tmp_path) -> Path:
    path = tmp_path / "my-repo"
    shutil.copytree(FIXTURES / "complete", path)
    return path


def plan_for(repo: Path, spec=None, environ=None, **options):
    return launch.build_plan(repo, spec or make_spec(), launch.LaunchOptions(**options),
                             environ=environ or {}, check_offers=False)


# ---------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------

def test_plan_basics(repo):
    plan = plan_for(repo)
    assert plan.cluster_name == "gpu-lol-my-repo"
    assert plan.providers == [("runpod", "RTX4090"), ("vast", "RTX4090")]
    assert any("lambda" in note for note in plan.notes)
    table, _ = launch.price_table(["runpod", "vast"])
    assert plan.cost_per_hour == pytest.approx(table["RTX4090"])
    assert plan.cost_per_day == pytest.approx(round(plan.cost_per_hour * 24, 2))
    assert plan.autostop == {"idle_minutes": 60, "down": True}
    assert plan.task["workdir"] == str(repo.resolve())
    assert plan.sync.files and plan.sync.total_bytes > 0
    rows = dict(launch.plan_rows(plan))
    assert rows["gpu"].startswith("RTX4090 x 1  (24 GB each; needs 18 GB per GPU)")
    assert "RunPod (RTX4090), Vast (RTX4090)" in rows["providers"]
    assert rows["price"].startswith(f"${plan.cost_per_hour:.2f}/hr")
    assert "/day" in rows["price"]
    assert "tear down after 60 idle minutes" in rows["autostop"] and "RunPod cannot stop" in rows["autostop"]
    assert rows["image"] == IMAGE + "  (CUDA 12.8: needs NVIDIA driver 570+ on the host)"  # the driver the image needs
    assert "files" in rows["sync"]


def test_overrides_gpu_count_cloud_ports(repo):
    plan = plan_for(repo, gpu="h100", gpus=8, clouds=["vast,lambda"], ports=[8888], idle_minutes=15)
    assert plan.spec.gpu_type == "H100" and plan.spec.gpu_count == 8
    assert plan.providers == [("vast", "H100"), ("lambda", "H100")]
    assert plan.spec.ports == [8888]
    assert plan.task["resources"]["ports"] == [8888]
    assert plan.autostop == {"idle_minutes": 15, "down": True}  # Lambda cannot stop
    only_vast = plan_for(repo, gpu="H100", clouds=["vast"])
    assert only_vast.autostop == {"idle_minutes": 60, "down": False}  # Vast can stop
    assert "stop after 60 idle minutes" in dict(launch.plan_rows(only_vast))["autostop"]


def test_bad_overrides_are_usage_errors(repo):
    with pytest.raises(UsageError) as err:
        plan_for(repo, gpu="H1000")
    assert "H100" in err.value.hint
    with pytest.raises(UsageError) as err:
        plan_for(repo, gpu="H100-SXM", clouds=["vast"])
    assert "runpod" in err.value.hint
    with pytest.raises(UsageError):
        plan_for(repo, clouds=["aws"])
    with pytest.raises(UsageError):
        plan_for(repo, gpus=0)
    with pytest.raises(UsageError):
        plan_for(repo, idle_minutes=-5)
    with pytest.raises(UsageError):
        plan_for(repo, ports=[70000])
    with pytest.raises(UsageError):
        plan_for(repo, name="Bad_Name")


def test_spot_leaves_out_lambda_and_tears_down(repo):
    plan = plan_for(repo, gpu="RTXA6000", spot=True)
    assert [p for p, _ in plan.providers] == ["runpod", "vast"]
    assert any("lambda has no spot" in w for w in plan.warnings)
    assert plan.task["resources"]["use_spot"] is True
    assert plan.autostop["down"] is True


def test_memory_and_autostop_warnings(repo):
    plan = plan_for(repo, spec=make_spec(vram_required_gb=40))
    assert any("needs 40 GB per GPU but RTX4090 has 24 GB" in w for w in plan.warnings)
    plan = plan_for(repo, idle_minutes=0)
    assert plan.autostop is False
    assert any("autostop is off" in w for w in plan.warnings)
    assert dict(launch.plan_rows(plan))["autostop"].startswith("off")


def test_secrets_are_redacted_everywhere_shown(repo):
    environ = {"WANDB_API_KEY": "wandb-secret-value", "MY_TOKEN": "tok-secret", "PLAIN": "p"}
    spec = make_spec(envs={"WANDB_PROJECT": "demo"})
    plan = plan_for(repo, spec=spec, environ=environ,
                    envs=["HF_TOKEN=hf_secret_value", "BATCH=8", "MY_TOKEN", "PLAIN"])
    assert plan.task["secrets"] == {"HF_TOKEN": "hf_secret_value", "MY_TOKEN": "tok-secret",
                                    "WANDB_API_KEY": "wandb-secret-value"}
    assert plan.task["envs"] == {"WANDB_PROJECT": "demo", "BATCH": "8", "PLAIN": "p"}
    assert plan.forwarded == ["WANDB_API_KEY"]
    shown = json.dumps(plan.to_json()) + repr(launch.plan_rows(plan)) + "\n".join(plan.warnings)
    for secret in ("hf_secret_value", "tok-secret", "wandb-secret-value"):
        assert secret not in shown
    env_row = dict(launch.plan_rows(plan))["env"]
    assert "HF_TOKEN=<redacted>" in env_row and "WANDB_API_KEY=<redacted> (from your shell)" in env_row
    with pytest.raises(UsageError):
        plan_for(repo, envs=["UNSET_IN_SHELL"])
    with pytest.raises(UsageError):
        plan_for(repo, envs=["1BAD=x"])


def test_secret_committed_in_the_spec_is_sent_as_secret_with_a_warning(repo):
    plan = plan_for(repo, spec=make_spec(envs={"HF_TOKEN": "committed"}))
    assert plan.task["secrets"] == {"HF_TOKEN": "committed"}
    assert "HF_TOKEN" not in plan.task.get("envs", {})
    assert plan.to_json()["spec"]["envs"]["HF_TOKEN"] == "<redacted>"
    assert any("envs.HF_TOKEN" in w and "secret" in w for w in plan.warnings)


def test_assets_link_a_volume_or_upload_a_local_path(repo):
    (repo / "data").mkdir()
    (repo / "data" / "x.bin").write_bytes(b"\0" * 1000)
    plan = plan_for(repo, assets=["/workspace/datasets:datasets", "./data:/data"])
    assert "/workspace/datasets:datasets" in plan.spec.asset_links
    assert plan.uploads == [("/data", str((repo / "data").resolve()), 1000)]
    assert plan.task["file_mounts"] == {"/data": str((repo / "data").resolve())}
    assert "ln -sfn -- /workspace/datasets datasets" in plan.task["setup"]
    skypilot.validate_task(plan.task)
    with pytest.raises(UsageError):
        plan_for(repo, assets=["./missing:/data"])
    with pytest.raises(UsageError):
        plan_for(repo, assets=["./data:relative"])
    with pytest.raises(ConfigError):
        plan_for(repo, assets=["nocolon"])


def test_name_used_by_a_host_target_is_refused(repo):
    state.save(state.Target(name="gpu-lol-my-repo", kind="host", repo=str(repo)))
    with pytest.raises(UsageError) as err:
        plan_for(repo)
    assert "host" in err.value.message


def test_dry_run_json_object(repo):
    plan = plan_for(repo)
    data = plan.to_json()
    assert {"spec", "task", "cost_per_hour", "cluster_name", "warnings", "sync"} <= set(data)
    assert data["cluster_name"] == "gpu-lol-my-repo"
    assert data["task"]["resources"]["any_of"][0] == {"infra": "runpod", "accelerators": {"RTX4090": 1}}
    assert data["sync"]["files"] == len(plan.sync.files)
    json.dumps(data)
    skypilot.validate_task(data["task"])


def test_alternatives_are_cheaper_or_next_cheapest_with_enough_memory():
    spec = make_spec(gpu_type="L40S", vram_required_gb=40)
    alts = launch.alternatives(spec, ["runpod", "vast"])
    assert alts and all(a.startswith("--gpu ") for a in alts)
    from gpu_lol.sizing import catalog

    for alt in alts:
        gpu = catalog.get_gpu(alt.split()[1])
        assert gpu.vram_gb >= 40 and gpu.id != "L40S"


# ---------------------------------------------------------------------------------------------
# Templates in the plan
# ---------------------------------------------------------------------------------------------

MY_TEMPLATE = Template(id="tpl1", name="my-torch291", image="me/pytorch:cu1281-torch291-extra")


def test_automatic_template_with_matching_torch_and_cuda(repo):
    found = TemplateLookup(templates=[Template(id="old", name="old", image="runpod/pytorch:0.7.0-cu1241-torch251"),
                                      MY_TEMPLATE], has_key=True)
    plan = launch.build_plan(repo, make_spec(), launch.LaunchOptions(), environ={},
                             template_lookup=lambda: found, check_offers=False)
    assert plan.template.template.id == "tpl1"
    assert plan.spec.base_image == MY_TEMPLATE.image
    assert plan.task["resources"]["image_id"] == f"docker:{MY_TEMPLATE.image}"
    assert "RunPod template 'my-torch291'" in dict(launch.plan_rows(plan))["image"]
    assert plan.to_json()["template"]["id"] == "tpl1"


def test_template_none_pinned_missing_and_failed_lookup(repo):
    def boom():
        raise AssertionError("must not look templates up")

    plan = launch.build_plan(repo, make_spec(), launch.LaunchOptions(template="none"), environ={},
                             template_lookup=boom, check_offers=False)
    assert plan.template is None and plan.spec.base_image == IMAGE
    plan = launch.build_plan(repo, make_spec(), launch.LaunchOptions(clouds=["vast"]), environ={},
                             template_lookup=boom, check_offers=False)  # RunPod not a provider
    assert plan.template is None
    found = TemplateLookup(templates=[MY_TEMPLATE], has_key=True)
    with pytest.raises(OperationError) as err:  # exit 1, nothing launches
        launch.build_plan(repo, make_spec(), launch.LaunchOptions(template="nope"), environ={},
                          template_lookup=lambda: found, check_offers=False)
    assert "my-torch291" in err.value.hint
    plan = launch.build_plan(repo, make_spec(), launch.LaunchOptions(template="MY-TORCH291"), environ={},
                             template_lookup=lambda: found, check_offers=False)
    assert plan.template.reason == "pinned with --template"
    failed = TemplateLookup(has_key=True, warning="RunPod templates unavailable (timeout); using the spec's image")
    plan = launch.build_plan(repo, make_spec(), launch.LaunchOptions(), environ={},
                             template_lookup=lambda: failed, check_offers=False)
    assert plan.spec.base_image == IMAGE and failed.warning in plan.warnings


# ---------------------------------------------------------------------------------------------
# resume: exactly the spec file, its directory is the workdir
# ---------------------------------------------------------------------------------------------

def test_resume_dry_run_uses_the_spec_files_directory(repo, tmp_path, run_cli):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "huge.bin").write_bytes(b"x" * 10)
    result = run_cli("resume", str(repo / ".gpu-lol.yaml"), "--dry-run", "--json", cwd=elsewhere)
    assert result.code == 0, result.err
    data = result.json()
    assert data["task"]["workdir"] == str(repo.resolve())
    assert data["cluster_name"] == "gpu-lol-my-repo"
    assert data["spec"]["requirements"] == ["numpy<2.0", "peft==0.11.1", "trl>=0.9"]
    assert data["task"]["setup"].splitlines()[-1] == "python -m pip install 'numpy<2.0' peft==0.11.1 'trl>=0.9'"
    skypilot.validate_task(data["task"])
    # a directory works too, and the default is ./.gpu-lol.yaml
    assert run_cli("resume", str(repo), "--dry-run", "--json", cwd=elsewhere).json()["task"]["workdir"] == \
        str(repo.resolve())
    assert run_cli("resume", "--dry-run", "--json", cwd=repo).json()["task"]["workdir"] == str(repo.resolve())


def test_resume_human_plan(repo, run_cli):
    result = run_cli("resume", "--dry-run", cwd=repo)
    assert result.code == 0, result.err
    assert "RTX4090 x 1" in result.out and "$" in result.out and "tear down after 60" in result.out
    assert "nothing launched" in result.err


def test_resume_incomplete_or_missing_spec(tmp_path, run_cli):
    incomplete = tmp_path / "inc"
    shutil.copytree(FIXTURES / "incomplete", incomplete)
    result = run_cli("resume", "--dry-run", cwd=incomplete)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and ".gpu-lol.yaml" in lines[0]
    assert "base_image" in lines[0] and lines[1].startswith("hint: ")
    result = run_cli("resume", "--dry-run", cwd=tmp_path)
    assert result.code == 2 and "no spec file" in result.err and "Traceback" not in result.err


def test_launch_needs_confirmation_without_a_terminal(repo, run_cli):
    result = run_cli("resume", cwd=repo)
    assert result.code == 2
    assert "pass -y/--yes" in result.err
    assert state.load("gpu-lol-my-repo") is None


def test_launch_flag_errors_are_one_line(repo, run_cli):
    result = run_cli("resume", "--dry-run", "--env", "NOT_SET_ANYWHERE", cwd=repo)
    assert result.code == 2 and result.err.startswith("error: --env NOT_SET_ANYWHERE: not set in your shell")


# ---------------------------------------------------------------------------------------------
# SkyPilot's catalog and optimizer, offline, on the shared catalog files (subprocesses: SkyPilot
# fixes its catalog directory from HOME when it is imported)
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def catalog_home(tmp_path, shared_dir) -> dict[str, str]:
    home = tmp_path / "sky-home"
    shutil.copytree(shared_dir / "skypilot-catalog" / "v8", home / ".sky" / "catalogs" / "v8")
    env = {k: v for k, v in os.environ.items()}
    env.update(HOME=str(home), GPU_LOL_HOME=str(home / ".gpu-lol"))
    return env


def _write_spec(repo: Path, **changes) -> None:
    import yaml

    data = yaml.safe_load((repo / ".gpu-lol.yaml").read_text())
    data.update(changes)
    (repo / ".gpu-lol.yaml").write_text(yaml.safe_dump(data))


def test_cached_catalog_prices_the_plan(repo, catalog_home, gpu_lol_exe):
    result = subprocess.run([*gpu_lol_exe, "resume", "--dry-run", "--json"], cwd=repo, env=catalog_home,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["offers"][0] == {"provider": "vast", "instance_type": "1x-RTX4090-16-64",
                                 "accelerator": "RTX4090", "count": 1, "price_hr": 0.35,
                                 "region": data["offers"][0]["region"]}
    assert data["offers"][1]["provider"] == "runpod" and data["offers"][1]["instance_type"] == "1x_RTX4090_SECURE"
    assert data["cost_per_hour"] == 0.35
    assert "SkyPilot catalog" in data["price_source"]


def test_impossible_request_is_our_clear_error(repo, catalog_home, gpu_lol_exe):
    _write_spec(repo, gpu_type="H100", gpu_count=3, providers=["runpod"])
    result = subprocess.run([*gpu_lol_exe, "resume", "--dry-run"], cwd=repo, env=catalog_home,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2  # a count no cloud rents is a usage error, not "no capacity"
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "error: 3x H100 is not rented on RunPod (GPU counts offered: RunPod 1, 2, 4 or 8)"
    assert lines[1].startswith("hint: ask for one of those counts")
    assert "Traceback" not in result.stderr and "\x1b" not in result.stderr


@pytest.mark.parametrize("with_catalog", [True, False])
def test_per_cloud_counts_decide_the_providers(repo, with_catalog, request):
    """The issue's cases, with SkyPilot's cached catalog (the shared v8 files) and without it
    (the built-in table): same answers either way."""
    if with_catalog:
        request.getfixturevalue("sky_catalog_here")
    with pytest.raises(UsageError) as err:
        plan_for(repo, gpu="B200", gpus=2, clouds=["lambda"])
    assert err.value.message == "2x B200 is not rented on Lambda (GPU counts offered: Lambda 8)"
    with pytest.raises(UsageError) as err:
        plan_for(repo, gpu="H100", gpus=3)
    assert err.value.message == ("3x H100 is not rented on RunPod, Vast, Lambda (GPU counts offered: "
                                 "RunPod 1, 2, 4 or 8; Vast 1, 2, 4 or 8; Lambda 1 or 8)")
    six = plan_for(repo, gpu="RTXA6000", gpus=8)
    assert [p for p, _ in six.providers] == ["runpod", "vast"]  # no 8x A6000 on Lambda
    assert any("not rented on Lambda (Lambda 1 only)" in n for n in six.notes)
    assert six.cost_per_hour == pytest.approx(3.60)
    a100 = plan_for(repo, gpu="A100-80GB", gpus=1)
    assert [p for p, _ in a100.providers] == ["runpod"]  # Vast's "A100" may be 40 GB; Lambda rents 8
    b200 = plan_for(repo, gpu="B200", gpus=8, clouds=["lambda"])
    assert b200.cost_per_hour == pytest.approx(39.92)


@pytest.fixture
def sky_catalog_here(shared_dir):
    dest = Path.home() / ".sky" / "catalogs" / "v8"
    shutil.copytree(shared_dir / "skypilot-catalog" / "v8", dest)
    return dest


OPTIMIZE_SCRIPT = textwrap.dedent("""
    # SkyPilot's real optimizer on the shared catalog files. The only stand-in is the list of
    # enabled clouds: a cloud account cannot exist here, and SkyPilot asks for one first.
    import json, sys
    from pathlib import Path
    from unittest import mock
    import sky
    from sky import check as sky_check, clouds
    from gpu_lol import launch
    from gpu_lol.launch import skypilot
    from gpu_lol.spec import EnvironmentSpec

    spec = EnvironmentSpec(**json.loads(sys.argv[1]))
    plan = launch.build_plan(Path(sys.argv[2]), spec, launch.LaunchOptions(), environ={}, check_offers=False)
    task = skypilot.validate_task(plan.task)
    dag = sky.Dag()
    dag.add(task)
    enabled = lambda *a, **k: [clouds.RunPod(), clouds.Vast(), clouds.Lambda()]
    try:
        with mock.patch.object(sky_check, "get_cached_enabled_clouds_or_refresh", enabled):
            sky.Optimizer.optimize(dag, quiet=True)
    except Exception as exc:
        err = skypilot.explain(exc, what=launch._what(plan), tried=[p for p, _ in plan.providers],
                               alternatives=launch.alternatives(plan.spec, [p for p, _ in plan.providers]))
        print(json.dumps({"error": err.message, "hint": err.hint}))
        raise SystemExit(0)
    best = dag.tasks[0].best_resources
    print(json.dumps({"cloud": str(best.cloud), "instance": best.instance_type,
                      "price": best.get_cost(3600)}))
""")


def _optimize(spec: dict, repo: Path, env: dict) -> dict:
    result = subprocess.run([sys.executable, "-c", OPTIMIZE_SCRIPT, json.dumps(spec), str(repo)],
                            env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("spec,expected", [
    ({"gpu_type": "RTX4090", "gpu_count": 1}, {"cloud": "Vast", "instance": "1x-RTX4090-16-64"}),
    ({"gpu_type": "H100-SXM", "gpu_count": 1}, {"cloud": "RunPod", "instance": "1x_H100-SXM_SECURE"}),
    ({"gpu_type": "RTXA6000", "gpu_count": 1, "providers": ["lambda"]},
     {"cloud": "Lambda", "instance": "gpu_1x_a6000"}),
])
def test_skypilot_optimizer_picks_the_expected_instance(repo, catalog_home, spec, expected):
    full = dict(workload_type="training", base_image=IMAGE, vram_required_gb=10, **spec)
    got = _optimize(full, repo, catalog_home)
    assert got["cloud"] == expected["cloud"] and got["instance"] == expected["instance"], got


def test_skypilot_optimizer_impossible_request_gives_our_error(repo, catalog_home):
    # H100-NVL is in gpu-lol's table but not in the cached RunPod catalog: SkyPilot refuses it
    spec = dict(workload_type="training", base_image=IMAGE, gpu_type="H100-NVL", gpu_count=1,
                providers=["runpod"], vram_required_gb=60)
    got = _optimize(spec, repo, catalog_home)
    assert got["error"] == "no capacity: no H100-NVL x 1 available on RunPod right now"
    assert got["hint"].startswith("next cheapest options: --gpu ")


# ---------------------------------------------------------------------------------------------
# Error mapping (real SkyPilot exception types)
# ---------------------------------------------------------------------------------------------

def test_errors_map_to_one_line_with_the_fix():
    from sky import exceptions as sky_exc

    err = skypilot.explain(sky_exc.NoCloudAccessError("Cloud access is not set up. Run: \x1b[1msky check"),
                           tried=["runpod", "vast"])
    assert err.message == ("no cloud credentials: SkyPilot has no usable account for the providers in this "
                           "plan (RunPod, Vast)")
    assert "~/.runpod/config.toml" in err.hint and "gpu-lol check" in err.hint
    err = skypilot.explain(sky_exc.ResourcesUnavailableError(
        "Task requires RunPod which is not enabled. To enable access ... sky check runpod"), tried=["runpod"])
    assert err.message.startswith("no cloud credentials")
    err = skypilot.explain(sky_exc.ResourcesUnavailableError("Failed to acquire resources in all zones"),
                           what="H100 x 1", tried=["runpod"], alternatives=["--gpu H100-SXM ($2.99/hr, 80 GB)"])
    assert err.message == "no capacity: no H100 x 1 available on RunPod right now"
    assert err.hint == "next cheapest options: --gpu H100-SXM ($2.99/hr, 80 GB)"
    err = skypilot.explain(sky_exc.ApiServerConnectionError("http://10.1.2.3:46580"))
    assert err.message.startswith("cannot reach") and "\n" not in err.message
    err = skypilot.explain(sky_exc.ApiServerAuthenticationError("https://sky.example.com"))
    assert "log in" in err.message and err.hint == "run: sky api login -e https://sky.example.com"
    err = skypilot.explain(RuntimeError("\x1b[31mweird\x1b[0m\nmore"))
    assert err.message == "SkyPilot failed: RuntimeError: weird" and err.exit_code == 1
    for err in (skypilot.explain(sky_exc.ClusterDoesNotExist("Cluster 'x' does not exist.")),
                skypilot.explain(sky_exc.NotSupportedError("Stopping not supported."))):
        assert isinstance(err, OperationError) and "\n" not in err.message


def test_a_token_written_into_a_setup_command_is_not_printed(repo, run_cli):
    token = "hf_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3"
    spec = make_spec(setup_commands=[f"huggingface-cli login --token {token}", "python -m pip install x"])
    plan = plan_for(repo, spec=spec, envs=["MY_SECRET=supersecretvalue1", "NOTE=has supersecretvalue1 inside"])
    shown = json.dumps(plan.to_json()) + repr(launch.plan_rows(plan))
    assert token not in shown and "supersecretvalue1" not in shown
    assert token in plan.task["setup"]  # what launches is unchanged


# ---------------------------------------------------------------------------------------------
# gpu-lol up (through the analyzer, which applies .gpu-lol.yaml)
# ---------------------------------------------------------------------------------------------

def test_up_dry_run_json_and_human(repo, run_cli, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_from_the_shell_0123456789abcdef")
    result = run_cli("up", "--dry-run", "--json", "--no-llm", cwd=repo)
    assert result.code == 0, result.err
    data = result.json()
    assert data["cluster_name"] == "gpu-lol-my-repo" and data["spec"]["gpu_type"] == "RTX4090"
    assert data["task"]["secrets"] == {"HF_TOKEN": "<redacted>"}
    assert "hf_from_the_shell" not in result.out + result.err
    skypilot.validate_task(data["task"])
    result = run_cli("up", str(repo), "--dry-run", "--no-llm", "--gpu", "l40s", "--gpus", "2")
    assert result.code == 0, result.err
    assert "L40S x 2" in result.out and "HF_TOKEN=<redacted> (from your shell)" in result.out
    assert "hf_from_the_shell" not in result.out + result.err
    assert state.all_targets() == []  # a dry run records nothing


def test_up_usage_errors(repo, run_cli, tmp_path):
    result = run_cli("up", str(tmp_path / "missing"), "--dry-run")
    assert result.code == 2
    result = run_cli("up", "--identity", "key", "--dry-run", cwd=repo)
    assert result.code == 2 and "--host" in result.err
    result = run_cli("up", "--dry-run", "--no-llm", "--gpu", "TPU", cwd=repo)
    assert result.code == 2 and result.err.startswith("error: unknown GPU 'TPU'")


def test_up_host_dry_run_and_name_clash(repo, run_cli):
    result = run_cli("up", "--host", "me@box.example:2222", "--dry-run", "--json", "--no-llm", cwd=repo)
    assert result.code == 0, result.err
    data = result.json()
    assert data["host"] == "me@box.example:2222" and data["name"] == "gpu-lol-my-repo"
    state.save(state.Target(name="gpu-lol-my-repo", kind="sky", repo=str(repo)))
    result = run_cli("up", "--host", "me@box.example", "--dry-run", "--no-llm", cwd=repo)
    assert result.code == 2 and "already the name of a SkyPilot cluster" in result.err


def test_hostile_repo_through_the_analyzer_runs_nothing(tmp_path, run_cli):
    from test_skypilot_render import _assert_nothing_ran, _recorded_calls, _run_setup

    hostile = tmp_path / "hostile"
    shutil.copytree(FIXTURES / "hostile", hostile)
    result = run_cli("up", str(hostile), "--dry-run", "--json", "--no-llm")
    assert result.code == 0, result.err
    data = result.json()
    requirements = data["spec"]["requirements"]
    assert "numpy<2.0" in requirements and "pandas>=1.5,<3" in requirements
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    outcome, log, home = _run_setup(run_dir, data["task"]["setup"])
    assert outcome.returncode == 0, outcome.stderr
    _assert_nothing_ran(run_dir, home, hostile)
    installed = [arg for call in _recorded_calls(log) if call[:4] == ["python", "-m", "pip", "install"]
                 for arg in call[4:] if not arg.startswith("-")]
    assert "numpy<2.0" in installed and "pandas>=1.5,<3" in installed
    assert set(installed) <= set(requirements)  # every argument is a whole requirement, intact


def test_docs_example_is_what_the_renderer_produces():
    """docs/launch.md shows a task rendered by this code; keep it true."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "launch.md").read_text()
    shown = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    spec_file, spec = launch.load_spec_file(FIXTURES / "complete")
    plan = launch.build_plan(spec_file.parent, spec, launch.LaunchOptions(auto_template=False,
                             envs=["HF_TOKEN=hf_not_a_real_token_000"]), environ={}, check_offers=False)
    task = plan.redacted_task()
    task["workdir"] = "/home/me/code/complete"
    assert skypilot.task_yaml(task).strip() == shown.strip()


def test_plan_warns_about_secret_files_and_a_large_workdir(repo):
    (repo / ".env").write_text("HF_TOKEN=hf_abc\n")
    with open(repo / "weights.bin", "wb") as fh:  # sparse: 101 MB on paper, nothing on disk
        fh.truncate(101 * 1024 * 1024)
    plan = plan_for(repo)
    text = "\n".join(plan.warnings)
    # secret files are left out of the sync (and said so), never uploaded
    assert ".env" in plan.sync.excluded and ".env" not in [rel for rel, _ in plan.sync.files]
    assert "left out: .env" in plan.sync.summary()
    assert "the workdir is 101.0 MB to upload" in text and "weights.bin" in text
    (repo / ".gitignore").write_text(".env\n*.bin\n")
    plan = plan_for(repo)
    assert not any(".env" in w or "MB to upload" in w for w in plan.warnings)
