"""EnvironmentSpec -> SkyPilot task: every rendered task passes SkyPilot's own validator, names are
SkyPilot's per-provider accelerator names, autostop/secrets/setup follow the rules, and a hostile
repo's requirements never reach the shell unquoted (the setup script runs under real bash)."""

from __future__ import annotations

import ast
import csv
import json
import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from gpu_lol.errors import ConfigError, OperationError
from gpu_lol.launch import skypilot
from gpu_lol.sizing import catalog
from gpu_lol.spec import PROVIDERS, EnvironmentSpec

IMAGE = "runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404"


def make_spec(**kw) -> EnvironmentSpec:
    base = dict(workload_type="training", gpu_type="RTX4090", gpu_count=1, vram_required_gb=18,
                base_image=IMAGE)
    base.update(kw)
    return EnvironmentSpec(**base)


def render(spec: EnvironmentSpec, tmp_path: Path, *, providers=None, secrets=None, uploads=None,
           name="gpu-lol-test"):
    if providers is None:
        gpu = catalog.get_gpu(spec.gpu_type) if spec.gpu_type else None
        providers = [(p, gpu.providers[p] if gpu else None) for p in spec.providers
                     if gpu is None or p in gpu.providers]
    return skypilot.render_task(spec, skypilot.RenderInput(
        name=name, workdir=tmp_path, providers=providers, secrets=secrets or {}, uploads=uploads or []))


def accelerator_clouds(shared_dir: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    with open(shared_dir / "skypilot-catalog" / "v8" / "common" / "accelerators.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            out[row["AcceleratorName"]] = {c.lower() for c in ast.literal_eval(row["Clouds"])}
    return out


def every_catalog_task(tmp_path: Path):
    """One task per GPU per provider subset, plus the option combinations the CLI can produce."""
    for gpu in catalog.all_gpus():
        offered = [p for p in PROVIDERS if p in gpu.providers]
        for subset in [offered] + [[p] for p in offered]:
            for count in (1, 2, 8):
                spec = make_spec(gpu_type=gpu.id, gpu_count=count, providers=subset)
                yield spec, render(spec, tmp_path)
    spec = make_spec(ports=[8888, 6006], spot=True, providers=["runpod", "vast"], idle_minutes=15,
                     envs={"WANDB_PROJECT": "x", "N": 3, "FLAG": True}, disk_gb=250,
                     system_packages=["git-lfs", "ffmpeg"],
                     asset_links=["/workspace/hf:~/.cache/huggingface", "/workspace/data:data"])
    yield spec, render(spec, tmp_path, secrets={"HF_TOKEN": "hf_secret"},
                       uploads=[skypilot.Upload("/data/small", str(tmp_path))])
    spec = make_spec(idle_minutes=0)
    yield spec, render(spec, tmp_path)
    spec = EnvironmentSpec(workload_type="cpu", gpu_type=None, gpu_count=0, base_image="python:3.11-slim")
    yield spec, render(spec, tmp_path, providers=[("runpod", None)])


def test_every_rendered_task_passes_skypilots_validator(tmp_path):
    import sky

    count = 0
    for spec, task in every_catalog_task(tmp_path):
        sky_task = sky.Task.from_yaml_config(json.loads(json.dumps(task)))
        assert sky_task.name == "gpu-lol-test"
        clouds = {str(r.cloud).lower() for r in sky_task.resources}
        assert clouds == {entry["infra"] for entry in task["resources"]["any_of"]}
        for resources in sky_task.resources:
            if spec.is_cpu:
                assert not resources.accelerators
            else:
                assert list(resources.accelerators.values()) == [spec.gpu_count]
            assert resources.image_id == {None: f"docker:{spec.base_image}"}
        count += 1
    assert count > 40


def test_accelerator_names_are_skypilots_names_per_provider(shared_dir):
    clouds_of = accelerator_clouds(shared_dir)
    for gpu in catalog.all_gpus():
        for provider, name in gpu.providers.items():
            assert name in clouds_of, f"{gpu.id}: {name} is not in accelerators.csv"
            assert provider in clouds_of[name], f"{gpu.id}: {name} is not offered on {provider}"


def test_rendered_any_of_uses_each_providers_own_name(tmp_path, shared_dir):
    clouds_of = accelerator_clouds(shared_dir)
    spec = make_spec(gpu_type="RTXA6000", providers=["lambda", "runpod", "vast"])
    task = render(spec, tmp_path)
    names = {e["infra"]: next(iter(e["accelerators"])) for e in task["resources"]["any_of"]}
    assert names == {"lambda": "A6000", "runpod": "RTXA6000", "vast": "RTXA6000"}
    for provider, name in names.items():
        assert provider in clouds_of[name]
    # order of preference is kept
    assert [e["infra"] for e in task["resources"]["any_of"]] == ["lambda", "runpod", "vast"]


def test_validation_failure_is_a_clear_error_not_a_launch(tmp_path):
    task = render(make_spec(), tmp_path)
    task["resources"]["disk_size"] = "a lot"
    with pytest.raises(OperationError) as err:
        skypilot.validate_task(task)
    assert err.value.message.startswith("SkyPilot rejected the task:")
    assert "\n" not in err.value.message and "\x1b" not in err.value.message


@pytest.mark.parametrize("providers,spot,idle,expected", [
    (["runpod"], False, 60, {"idle_minutes": 60, "down": True}),
    (["lambda"], False, 30, {"idle_minutes": 30, "down": True}),
    (["vast"], False, 60, {"idle_minutes": 60, "down": False}),
    (["vast", "runpod"], False, 60, {"idle_minutes": 60, "down": True}),
    (["vast"], True, 60, {"idle_minutes": 60, "down": True}),
    (["vast"], False, 0, False),
    (["runpod"], False, 0, False),
])
def test_autostop_rules(tmp_path, providers, spot, idle, expected):
    assert skypilot.autostop_for(providers, idle, spot) == expected
    spec = make_spec(providers=providers, spot=spot, idle_minutes=idle, gpu_type="RTX4090" if
                     "lambda" not in providers else "RTXA6000")
    task = render(spec, tmp_path)
    assert task["resources"]["autostop"] == expected
    import sky

    sky_task = sky.Task.from_yaml_config(json.loads(json.dumps(task)))
    for resources in sky_task.resources:
        config = resources.autostop_config
        if expected is False:
            assert config is None or not config.enabled
        else:
            assert config.enabled and config.idle_minutes == idle and config.down == expected["down"]


def test_secrets_go_to_skypilot_secrets_never_envs(tmp_path):
    spec = make_spec(envs={"WANDB_PROJECT": "demo", "MY_API_KEY": "from-yaml"})
    task = render(spec, tmp_path, secrets={"HF_TOKEN": "hf_abc123"})
    assert task["envs"] == {"WANDB_PROJECT": "demo"}
    assert task["secrets"] == {"HF_TOKEN": "hf_abc123", "MY_API_KEY": "from-yaml"}
    shown = skypilot.redact_task(task)
    assert shown["secrets"] == {"HF_TOKEN": "<redacted>", "MY_API_KEY": "<redacted>"}
    assert "hf_abc123" not in json.dumps(shown) and "from-yaml" not in skypilot.task_yaml(shown)
    assert task["secrets"]["HF_TOKEN"] == "hf_abc123"  # the original is untouched
    import sky

    sky_task = sky.Task.from_yaml_config(json.loads(json.dumps(task)))
    assert "HF_TOKEN" not in sky_task.envs
    value = sky_task.secrets["HF_TOKEN"]
    assert getattr(value, "get_secret_value", lambda: value)() == "hf_abc123"
    assert "hf_abc123" not in repr(sky_task)


def test_setup_and_run_shape(tmp_path):
    spec = make_spec(setup_commands=["python -m pip install 'numpy<2.0'", "python prepare.py"])
    task = render(spec, tmp_path)
    setup = task["setup"].splitlines()
    assert setup[0] == "set -euo pipefail"
    assert not any("apt-get" in line for line in setup)  # no system packages: no apt
    assert setup[-2:] == spec.setup_commands
    assert any(line == 'cd "$HOME"/sky_workdir' for line in setup)
    text = task["setup"] + task["run"]
    for unasked in ("jupyter", "gpu-lol-agent", "sleep infinity", "pip install gpu-lol"):
        assert unasked not in text
    assert "sleep" not in task["run"] and "while" not in task["run"]


def test_run_ends_so_autostop_can_fire(tmp_path):
    """``run`` exits at once even with no GPU tool present (it is a few quick commands)."""
    task = render(make_spec(), tmp_path)
    result = subprocess.run(["bash", "-c", task["run"]], capture_output=True, text=True, timeout=20,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0
    assert "is ready" in result.stdout


def test_requirements_without_setup_commands_are_installed_quoted(tmp_path):
    spec = make_spec(requirements=["numpy<2.0", "torch==2.3.1"], setup_commands=[])
    lines = render(spec, tmp_path)["setup"].splitlines()
    assert lines[-1] == "python -m pip install 'numpy<2.0' torch==2.3.1"
    # with setup commands present they are the complete install: nothing is added
    spec = make_spec(requirements=["numpy<2.0", "torch==2.3.1"],
                     setup_commands=["python -m pip install 'numpy<2.0'"])
    setup = render(spec, tmp_path)["setup"]
    assert setup.count("pip install") == 1


def test_empty_image_and_bad_asset_link_are_config_errors(tmp_path):
    with pytest.raises(ConfigError):
        render(make_spec(base_image=""), tmp_path)
    with pytest.raises(ConfigError):
        skypilot.parse_asset_link("no-colon")


def test_clean_message_strips_colour_and_keeps_one_line():
    assert skypilot.clean_message("\x1b[31mBoom\x1b[0m happened\nsecond line") == "Boom happened"


# ---------------------------------------------------------------------------------------------
# A hostile repo: the setup script runs under bash with recorders in place of pip/apt-get
# ---------------------------------------------------------------------------------------------

HOSTILE_REQUIREMENTS = [
    "numpy<2.0",
    "torch==2.3.1",
    "pandas>=1.5,<3",
    "requests; touch PWNED_SEMICOLON",
    "$(touch PWNED_DOLLAR)",
    "`touch PWNED_BACKTICK`",
    "scipy && touch PWNED_AND",
    "x | touch PWNED_PIPE",
    "it's>1 \"quoted\" > PWNED_REDIRECT",
    "${HOME:?}/../PWNED_EXPANSION",
    "line\nbreak; touch PWNED_NEWLINE",
]

RECORDER = """#!/bin/bash
# records its name and every argument, NUL-separated, one record per call
{ printf '%s\\0' "$(basename "$0")"; for a in "$@"; do printf '%s\\0' "$a"; done; printf '\\n'; } >> "$RECORD_LOG"
"""


def _recorded_calls(log: Path) -> list[list[str]]:
    calls = []
    for record in log.read_bytes().split(b"\0\n"):
        if record:
            calls.append([part.decode() for part in record.split(b"\0")])
    return calls


def _run_setup(tmp_path: Path, setup: str) -> tuple[subprocess.CompletedProcess, Path, Path]:
    home = tmp_path / "machine-home"
    (home / "sky_workdir").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("pip", "pip3", "python", "python3", "apt-get", "sudo"):
        path = bin_dir / tool
        path.write_text(RECORDER)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "calls.log"
    log.write_bytes(b"")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home), "RECORD_LOG": str(log)}
    script = tmp_path / "setup.sh"
    script.write_text(setup)
    result = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=30)
    return result, log, home


def _assert_nothing_ran(*roots: Path) -> None:
    for root in roots:
        for path in root.rglob("*"):
            # a command from the repo would have created a file named exactly PWNED_*
            assert not path.name.startswith("PWNED"), f"repo text executed: {path}"


def test_hostile_requirements_execute_nothing_and_arrive_intact(tmp_path):
    from gpu_lol.analyzer.setup_commands import build

    setup_plan = build(HOSTILE_REQUIREMENTS)  # the analyzer's own command builder
    volume = tmp_path / "volume"
    spec = make_spec(requirements=HOSTILE_REQUIREMENTS, setup_commands=setup_plan.commands,
                     system_packages=["git-lfs", "vim; touch PWNED_APT"],
                     asset_links=[f"{volume}/$(touch PWNED_LINK):~/.cache/`touch PWNED_LINK2`"])
    task = render(spec, tmp_path)
    skypilot.validate_task(task)
    result, log, home = _run_setup(tmp_path, task["setup"])
    assert result.returncode == 0, result.stderr
    _assert_nothing_ran(tmp_path, home)
    calls = _recorded_calls(log)
    pip_calls = [c for c in calls if c[0] == "python"]
    assert len(pip_calls) == 1
    assert pip_calls[0][1:4] == ["-m", "pip", "install"]
    assert pip_calls[0][4:] == HOSTILE_REQUIREMENTS  # every pin, one argument each, unchanged
    apt = [c for c in calls if "apt-get" in c]
    assert any(c[-2:] == ["git-lfs", "vim; touch PWNED_APT"] for c in apt)
    link = home / ".cache" / "`touch PWNED_LINK2`"
    assert link.is_symlink() and os.readlink(link) == f"{volume}/$(touch PWNED_LINK)"
    assert link.resolve().is_dir()  # a missing volume path is created, never left dangling


def test_hostile_requirements_without_setup_commands(tmp_path):
    spec = make_spec(requirements=HOSTILE_REQUIREMENTS, setup_commands=[])
    result, log, home = _run_setup(tmp_path, render(spec, tmp_path)["setup"])
    assert result.returncode == 0, result.stderr
    _assert_nothing_ran(tmp_path, home)
    (call,) = _recorded_calls(log)
    assert call == ["python", "-m", "pip", "install", *HOSTILE_REQUIREMENTS]


def test_setup_fails_fast_and_never_replaces_a_real_directory(tmp_path):
    spec = make_spec(setup_commands=["false", "touch SHOULD_NOT_EXIST"])
    result, _log, home = _run_setup(tmp_path, render(spec, tmp_path)["setup"])
    assert result.returncode != 0
    assert not (home / "sky_workdir" / "SHOULD_NOT_EXIST").exists()

    other = tmp_path / "second"
    other.mkdir()
    spec = make_spec(asset_links=["/workspace/data:data"], setup_commands=["touch AFTER"])
    setup = render(spec, other)["setup"]
    home2 = other / "machine-home"
    (home2 / "sky_workdir" / "data").mkdir(parents=True)  # the repo ships a real data/ dir
    (home2 / "sky_workdir" / "data" / "keep.txt").write_text("mine")
    script = other / "setup.sh"
    script.write_text(setup)
    result = subprocess.run(["bash", str(script)], env={"PATH": "/usr/bin:/bin", "HOME": str(home2)},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "exists and is not a link" in result.stderr
    assert (home2 / "sky_workdir" / "data" / "keep.txt").read_text() == "mine"
    assert not (home2 / "sky_workdir" / "AFTER").exists()


def test_remote_path_quoting():
    assert skypilot.remote_path("~/.cache/x y") == '"$HOME"/' + shlex.quote(".cache/x y")
    assert skypilot.remote_path("/a/$(b)") == "'/a/$(b)'"
    assert skypilot.remote_path("~") == '"$HOME"'
