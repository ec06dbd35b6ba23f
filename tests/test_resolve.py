"""Resolution before launch (gpu_lol/launch/resolve.py) with the real resolver (uv).

Two indexes: a local folder of tiny wheels built here (tests/wheelhouse.py: real project names
with the wheel tags those projects publish for the pinned versions), used by every test not
marked `network`, so resolution is exercised with no network; and the real package index, in
the `network` tests, skipped when PyPI cannot be reached. Nothing is mocked.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from gpu_lol.analyzer import analyze
from gpu_lol.analyzer import image as image_mod
from gpu_lol.errors import OperationError
from gpu_lol.launch import resolve
from gpu_lol.spec import EnvironmentSpec

import wheelhouse

REPOS = Path(__file__).parent / "fixtures" / "repos"
NEW = "pytorch/pytorch:2.6.0-cuda12.4-cudnn9-devel"  # Python 3.11, torch 2.6.0
PY312 = "runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404"  # Python 3.12, torch 2.9.1


@pytest.fixture(scope="session")
def wheels(tmp_path_factory) -> Path:
    return wheelhouse.build(tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture
def local_index(wheels, monkeypatch) -> Path:
    monkeypatch.setenv("GPU_LOL_RESOLVE", "on")
    monkeypatch.setenv("GPU_LOL_FIND_LINKS", str(wheels))
    monkeypatch.setenv("UV_CACHE_DIR", str(wheels.parent / "uv-cache"))
    return wheels


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.fixture
def offline_index(monkeypatch, tmp_path):
    """The package index is a closed port on loopback (unreachable), with an empty uv cache."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    monkeypatch.setenv("GPU_LOL_RESOLVE", "on")
    monkeypatch.setenv("UV_INDEX_URL", f"http://127.0.0.1:{port}/simple")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "empty-uv-cache"))
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")


@pytest.fixture
def pypi(monkeypatch):
    if not _pypi_reachable():
        pytest.skip("the package index (pypi.org) is unreachable")
    monkeypatch.setenv("GPU_LOL_RESOLVE", "on")
    monkeypatch.delenv("GPU_LOL_FIND_LINKS", raising=False)


# ---- the resolver ----------------------------------------------------------------------------

def test_resolves_to_exact_pins_and_caches_privately(local_index):
    res = resolve.resolve(["alpha"], "3.12")
    assert res.status == "ok" and not res.cached
    assert res.lock == ["alpha==1.0", "beta==2.0"]  # alpha needs beta>=1.5: the newest, 2.0
    files = list((Path(os.environ["GPU_LOL_HOME"]) / "cache" / "resolve").glob("*.json"))
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    again = resolve.resolve(["alpha"], "3.12")
    assert again.cached and again.lock == res.lock
    # another Python is another input: resolved again, not served from the cache
    assert not resolve.resolve(["alpha"], "3.11").cached


def test_conflicting_pins_are_named(local_index):
    res = resolve.resolve(["alpha", "gamma"], "3.11")  # alpha wants beta>=1.5, gamma beta<2
    assert res.status == "conflict"
    assert set(res.conflicts) == {"alpha", "gamma"} and "beta" in res.message
    assert res.works_on == []  # no Python fixes a version conflict


def test_no_cp312_wheel_is_a_conflict_that_other_pythons_solve(local_index):
    res = resolve.resolve(["scikit-learn==1.2.2", "sentencepiece==0.1.99"], "3.12")
    assert res.status == "conflict" and res.conflicts == ["scikit-learn==1.2.2"]
    assert "3.11" in res.works_on and "3.10" in res.works_on and "3.12" not in res.works_on
    assert "cannot be installed on Python 3.12" in res.summary()


def test_a_package_with_no_wheel_at_all_is_left_to_the_machine_and_never_built_here(local_index):
    # the flash-attn sdist's setup.py exits with an error if anything runs it
    res = resolve.resolve(["flash-attn==2.7.4.post1", "alpha"], "3.11")
    assert res.status == "ok"
    assert res.build_on_machine == ["flash-attn==2.7.4.post1"]
    assert res.lock == ["alpha==1.0", "beta==2.0"]


def test_a_dependency_with_no_wheel_at_all_is_read_from_its_sdist(local_index):
    res = resolve.resolve(["wandb==0.15.3"], "3.11")
    assert res.status == "ok", res.message
    assert res.lock == ["pathtools==0.1.2", "wandb==0.15.3"] and res.build_on_machine == ["pathtools"]


def test_what_the_image_ships_is_held_not_reinstalled(local_index):
    res = resolve.resolve(["peft==0.11.1", "torch"], "3.11", provides={"torch": "2.6.0"})
    assert res.status == "ok"
    assert res.held == ["torch==2.6.0"]  # the image's torch, not the newest (2.9.1)
    names = [line.split("==")[0] for line in res.lock]
    assert "torch" not in names and "triton" not in names and not any(n.startswith("nvidia-") for n in names)
    assert "peft==0.11.1" in res.lock and "transformers==4.46.0" in res.lock


def test_urls_and_paths_never_go_to_the_resolver(local_index):
    res = resolve.resolve(["alpha", "git+https://github.com/o/r.git", "x @ https://h/x-1.0.tar.gz"], "3.12")
    assert res.status == "ok" and res.not_checked == ["git+https://github.com/o/r.git", "x @ https://h/x-1.0.tar.gz"]


def test_offline_says_it_could_not_check(offline_index):
    res = resolve.resolve(["alpha"], "3.11")
    assert res.status == "offline" and "could not check" in res.summary()
    assert not list((Path(os.environ["GPU_LOL_HOME"]) / "cache" / "resolve").glob("*.json"))  # not cached


def test_off_switch_and_nothing_to_resolve(monkeypatch):
    monkeypatch.setenv("GPU_LOL_RESOLVE", "off")
    assert resolve.resolve(["alpha"], "3.11").status == "skipped"
    monkeypatch.setenv("GPU_LOL_RESOLVE", "on")
    assert resolve.resolve(["git+https://github.com/o/r"], "3.11").status == "skipped"


# ---- setup commands and the lock -------------------------------------------------------------

def test_setup_installs_the_lock_then_what_the_resolver_left(local_index):
    setup = ["python -m pip install --extra-index-url https://download.pytorch.org/whl/cu124 alpha 'flash-attn==2.7.4.post1'",
             "python -m pip install -e '.[train]'",
             "python -m pip install --no-build-isolation 'flash-attn==2.7.4.post1'"]
    installs = resolve.pip_installs(setup)
    assert [i.index for i in installs] == [0, 2]  # -e . is not ours
    res = resolve.resolve(["alpha", "flash-attn==2.7.4.post1"], "3.11")
    out = resolve.locked_setup(setup, res, installs)
    assert out[0] == "printf '%s\\n' alpha==1.0 beta==2.0 > .gpu-lol-lock.txt"
    assert out[1] == ("python -m pip install --extra-index-url https://download.pytorch.org/whl/cu124 "
                      "-r .gpu-lol-lock.txt")
    assert out[2] == ("python -m pip install --extra-index-url https://download.pytorch.org/whl/cu124 "
                      "flash-attn==2.7.4.post1")
    assert out[3] == "python -m pip install -e '.[train]'"
    assert out[4] == "python -m pip install --no-build-isolation flash-attn==2.7.4.post1"


def test_the_lock_written_by_setup_is_a_requirements_file(local_index, tmp_path):
    res = resolve.resolve(["alpha"], "3.12")
    out = resolve.locked_setup(["python -m pip install alpha"], res, resolve.pip_installs(["python -m pip install alpha"]))
    subprocess.run(["bash", "-euo", "pipefail", "-c", out[0]], cwd=tmp_path, check=True)
    assert (tmp_path / resolve.LOCK_FILE).read_text() == "alpha==1.0\nbeta==2.0\n"
    assert shlex.split(out[1])[-2:] == ["-r", resolve.LOCK_FILE]


# ---- the spec: switch the image or refuse ----------------------------------------------------

def _spec(image: str, reqs: list[str]) -> EnvironmentSpec:
    return EnvironmentSpec(workload_type="training", gpu_type="RTX4090", base_image=image,
                           python_version=image_mod.python_of(image), requirements=reqs,
                           setup_commands=["python -m pip install " + " ".join(shlex.quote(r) for r in reqs)])


def test_a_conflict_picks_an_image_whose_python_resolves(local_index):
    check = resolve.check_spec(_spec(PY312, ["scikit-learn==1.2.2", "sentencepiece==0.1.99"]))
    assert check.image_changed_from == PY312
    assert image_mod.python_of(check.image) in ("3.11", "3.10") and check.resolution.status == "ok"
    assert check.image == NEW  # the preferred (CUDA 12.4) image with Python 3.11
    assert "scikit-learn==1.2.2" in check.notes[0] and "driver 550+" in check.notes[0]
    assert check.setup_commands[0].startswith("printf ") and "scikit-learn==1.2.2" in check.setup_commands[0]


def test_a_conflict_on_the_users_image_is_refused_with_the_fix(local_index):
    with pytest.raises(OperationError) as err:
        resolve.check_spec(_spec(PY312, ["scikit-learn==1.2.2"]), may_change_image=False)
    assert "scikit-learn==1.2.2" in str(err.value) and "Python 3.12" in str(err.value)
    assert "base_image: " + NEW in err.value.hint
    with pytest.raises(OperationError) as err:
        resolve.check_spec(_spec(NEW, ["alpha", "gamma"]))
    assert "change or unpin" in err.value.hint and "alpha" in err.value.hint


# ---- fixture repos shaped like the failures, through the analyzer ---------------------

def _checked(repo: str):
    a = analyze(REPOS / repo, use_llm=False)
    return a, resolve.check_spec(a.spec, REPOS / repo)


def test_qlora_shape_resolves_on_the_image_python(local_index):
    a, check = _checked("resolve-qlora")
    assert a.spec.python_version == "3.11" and check.resolution.status == "ok"
    lock = check.setup_commands[0]
    assert "scikit-learn==1.2.2" in lock and "sentencepiece==0.1.99" in lock and "numpy==" in lock


def test_stable_diffusion_shape_gets_the_python_38_image(local_index):
    a, check = _checked("resolve-sd")
    assert "1.11.0" in a.spec.base_image and a.spec.python_version == "3.8"
    assert check.resolution.status == "ok" and check.resolution.python == "3.8"
    assert "numpy==1.19.2" in check.setup_commands[0]


def test_alpaca_shape_bootstraps_pip_for_the_dockerfile_python(local_index):
    a, check = _checked("resolve-alpaca")
    assert a.spec.base_image == "nvidia/cuda:11.8.0-devel-ubuntu22.04" and a.spec.python_version == "3.10"
    assert "python3.10" in a.spec.system_packages
    assert check.setup_commands[1].startswith("python3.10 -m pip --version")  # before any install
    assert any(c.startswith("python3.10 -m pip install -r .gpu-lol-lock.txt") for c in check.setup_commands)
    assert check.resolution.python == "3.10" and check.resolution.status == "ok"


def test_fastchat_shape_reports_the_dockerfile_python_not_a_default():
    a = analyze(REPOS / "resolve-fastchat", use_llm=False)
    assert a.spec.python_version == "3.9"  # python3.9 on Ubuntu 20.04, as its Dockerfile installs
    assert any("get-pip.py | python3.9" in c for c in a.spec.setup_commands)


def test_handbook_shape_keeps_no_build_isolation(local_index):
    a, check = _checked("resolve-handbook")
    last = check.setup_commands[-1]
    assert last == "python -m pip install --no-build-isolation flash-attn==2.7.4.post1"
    assert check.resolution.build_on_machine == ["flash-attn==2.7.4.post1"]


def test_flux_shape_counts_the_extras_torch_pin():
    a = analyze(REPOS / "resolve-flux", use_llm=False)
    assert "torch280" in a.spec.base_image  # torch==2.8.0 from the `torch` extra that `all` names
    assert any("torch==2.8.0" in r and "pyproject.toml" in r for r in a.reasoning)
    assert "python -m pip install -e '.[all]'" in a.spec.setup_commands


def test_factory_shape_installs_the_main_path_only():
    a = analyze(REPOS / "resolve-factory", use_llm=False)
    names = " ".join(a.spec.requirements)
    assert "vllm" not in names and "sglang" not in names and "npu" not in names and "win_amd64" not in names
    assert "einops" in names  # requirements/metrics.txt: the extras file the README installs
    assert "pywin32" not in names and any("pywin32" in w for w in a.warnings)


def test_up_dry_run_shows_the_resolution(local_index, run_cli):
    result = run_cli("up", REPOS / "resolve-qlora", "--dry-run", "--no-llm")
    assert result.code == 0, result
    assert "resolved" in result.out and "Python 3.11" in result.out
    assert "write .gpu-lol-lock.txt" in result.out
    result = run_cli("up", REPOS / "resolve-qlora", "--dry-run", "--no-llm", "--json")
    data = result.json()
    assert data["resolution"]["status"] == "ok" and "scikit-learn==1.2.2" in data["resolution"]["lock"]
    assert ".gpu-lol-lock.txt" in data["task"]["setup"]


def test_analyze_shows_the_resolution(local_index, run_cli):
    result = run_cli("analyze", REPOS / "resolve-sd", "--no-llm", "--json")
    assert result.code == 0, result
    data = result.json()
    assert data["resolution"]["status"] == "ok" and data["resolution"]["python"] == "3.8"
    assert any("resolved" in r["text"] for r in data["reasoning"])


def test_resume_refuses_a_conflict_with_exit_1(local_index, run_cli, tmp_path):
    import yaml

    (tmp_path / "train.py").write_text("print(1)\n")
    spec = _spec(PY312, ["scikit-learn==1.2.2"]).to_dict()
    (tmp_path / ".gpu-lol.yaml").write_text(yaml.safe_dump(spec))
    result = run_cli("resume", tmp_path, "--dry-run")
    assert result.code == 1, result
    assert "error:" in result.err and "scikit-learn==1.2.2" in result.err and "hint:" in result.err


# ---- the real package index ------------------------------------------------------------------

@pytest.mark.network
def test_network_qlora_pins_have_no_cp312_wheels(pypi):
    res = resolve.resolve(["scikit-learn==1.2.2", "sentencepiece==0.1.99"], "3.12")
    assert res.status == "conflict" and "scikit-learn==1.2.2" in res.conflicts
    assert "3.11" in res.works_on
    ok = resolve.resolve(["scikit-learn==1.2.2", "sentencepiece==0.1.99"], "3.11")
    assert ok.status == "ok" and "scikit-learn==1.2.2" in ok.lock


@pytest.mark.network
def test_network_stable_diffusion_pins_resolve_on_38(pypi):
    res = resolve.resolve(["torch==1.11.0", "numpy==1.19.2"], "3.12")
    assert res.status == "conflict" and res.works_on == ["3.8"]
    a = analyze(REPOS / "resolve-sd", use_llm=False)
    check = resolve.check_spec(a.spec, REPOS / "resolve-sd")
    assert check.resolution.status == "ok" and check.resolution.python == "3.8"


@pytest.mark.network
def test_network_fixture_repos_resolve(pypi):
    for repo in ("resolve-qlora", "resolve-alpaca", "resolve-handbook", "resolve-factory", "resolve-flux"):
        a = analyze(REPOS / repo, use_llm=False)
        check = resolve.check_spec(a.spec, REPOS / repo)
        assert check.resolution.status == "ok", (repo, check.resolution.summary(), check.resolution.message)


def test_init_lock_stores_the_lock_and_launches_install_it(local_index, run_cli, tmp_path):
    repo = tmp_path / "qlora"
    shutil.copytree(REPOS / "resolve-qlora", repo)
    result = run_cli("init", repo, "--lock", "--complete", "--no-llm")  # complete: resume below needs it
    assert result.code == 0, result
    lock = (repo / resolve.LOCK_FILE).read_text()
    assert "scikit-learn==1.2.2\n" in lock and "sentencepiece==0.1.99\n" in lock
    import yaml

    data = yaml.safe_load((repo / ".gpu-lol.yaml").read_text())
    assert data["lock"] is True
    assert data["setup_commands"][0] == "python -m pip install -r .gpu-lol-lock.txt"
    # the launch installs the committed lock as it is: no resolution, the file is synced
    result = run_cli("resume", repo, "--dry-run", "--json")
    assert result.code == 0, result
    out = result.json()
    assert "python -m pip install -r .gpu-lol-lock.txt" in out["task"]["setup"]
    assert out["resolution"]["status"] == "skipped" and "lock: true" in out["resolution"]["notes"][0]
    # never overwritten without --force
    assert run_cli("init", repo, "--lock", "--no-llm").code == 2
    (repo / ".gpu-lol.yaml").unlink()
    assert run_cli("init", repo, "--lock", "--no-llm").code == 2  # the lock file is there
    # lock: true without the file: a config error naming it
    (repo / resolve.LOCK_FILE).unlink()
    (repo / ".gpu-lol.yaml").write_text(yaml.safe_dump(data))
    result = run_cli("resume", repo, "--dry-run")
    assert result.code == 2 and ".gpu-lol-lock.txt" in result.err


def test_a_cuda_build_on_an_image_without_nvcc_is_warned(local_index):
    image = "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"
    spec = EnvironmentSpec(workload_type="inference", gpu_type="RTX4090", base_image=image, python_version="3.10",
                           setup_commands=["python3 -m pip install alpha",
                                           "python3 -m pip install --no-build-isolation flash-attn==2.7.4.post1"])
    check = resolve.check_spec(spec)
    assert any("flash-attn==2.7.4.post1 compiles CUDA code" in w and "no nvcc" in w for w in check.warnings)
    spec.base_image = "nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04"
    assert not resolve.check_spec(spec).warnings


def test_up_dry_run_offline_warns_and_goes_on(run_cli, offline_index):
    result = run_cli("up", REPOS / "resolve-qlora", "--dry-run", "--no-llm")
    assert result.code == 0, result
    out = " ".join(result.out.split())  # the plan (warnings included) is on stdout with --dry-run
    assert "could not check the requirements" in out and "package index is unreachable" in out
    assert "python -m pip install transformers==4.46.0" in out  # installed as declared


def test_up_dry_run_refuses_pins_no_python_fixes(local_index, run_cli, tmp_path):
    (tmp_path / "requirements.txt").write_text("alpha\ngamma\n")
    (tmp_path / "train.py").write_text("import torch\nimport alpha\n")
    result = run_cli("up", tmp_path, "--dry-run", "--no-llm")
    assert result.code == 1, result
    assert "error: setup would fail" in result.err and "alpha, gamma" in result.err
    assert "hint: change or unpin alpha, gamma" in result.err


def test_an_inference_plan_leaves_the_train_extra_out():
    a = analyze(REPOS / "resolve-handbook-serve", use_llm=False)
    assert a.spec.workload_type == "inference"
    assert "python -m pip install -e ." in a.spec.setup_commands  # not .[train]: flash-attn needs nvcc
    assert not any("flash-attn" in c for c in a.spec.setup_commands)
    assert any("training extras left out" in r for r in a.reasoning)
