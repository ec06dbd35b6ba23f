"""Snapshot: probe facts -> EnvironmentSpec, diff and write rules."""

from __future__ import annotations

from gpu_lol.config import config_file
from gpu_lol.machine import probe_facts, snapshot
from gpu_lol.spec import EnvironmentSpec
from test_probe import h100, h100_report  # noqa: F401 - fixture

BOOT = 1_700_000_000.0


def h100_facts(h100, *, beyond=("peft", "transformers", "accelerate")):  # noqa: F811
    """H100 facts where ``beyond`` were installed after the machine started, the rest came
    with the image."""
    report = h100_report(h100, boot=BOOT)
    pins, _ = probe_facts.parse_pip_freeze(h100["pip-freeze.txt"])
    report["dists"] = [{"name": p["name"], "version": p["version"], "where": "system",
                        "installed_at": BOOT + 600 if p["name"] in beyond else BOOT - 86400,
                        "direct_url": None} for p in pins]
    return probe_facts.facts_from_report(report)


def base_spec(**kw) -> EnvironmentSpec:
    data = dict(workload_type="training", gpu_type="H100", gpu_count=1, vram_required_gb=30,
                base_image="runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404", requirements=["peft"],
                providers=["runpod"], idle_minutes=30, envs={"WANDB_MODE": "offline"})
    data.update(kw)
    return EnvironmentSpec(**data)


def test_h100_snapshot_maps_gpu_python_and_pins(h100):  # noqa: F811
    facts = h100_facts(h100)
    spec, notes = snapshot.spec_from_facts(facts, base_spec(), image_known=True)
    assert spec.gpu_type == "H100-SXM"  # "NVIDIA H100 80GB HBM3" is the SXM card
    assert spec.gpu_count == 1
    assert spec.vram_required_gb == 30  # the user's own need fits the card: kept
    assert spec.python_version == "3.12"
    assert spec.requirements == ["accelerate==1.15.0", "peft==0.21.0", "transformers==5.17.0"]
    assert spec.base_image == base_spec().base_image  # the machine's own image
    # what the machine cannot tell comes from the base spec
    assert spec.providers == ["runpod"] and spec.idle_minutes == 30 and spec.envs == {"WANDB_MODE": "offline"}
    assert any("installed since the machine started" in n for n in notes)


def test_vram_becomes_the_cards_when_the_need_is_unset_or_larger(h100):  # noqa: F811
    facts = h100_facts(h100)
    assert snapshot.spec_from_facts(facts, base_spec(vram_required_gb=0))[0].vram_required_gb == 80
    assert snapshot.spec_from_facts(facts, base_spec(vram_required_gb=120))[0].vram_required_gb == 80


def test_unknown_image_pins_the_torch_family(h100):  # noqa: F811
    facts = h100_facts(h100)
    spec, notes = snapshot.spec_from_facts(facts, base_spec(base_image="my/own:image"), image_known=False)
    # no image in the table ships torch 2.11: the base image stays and torch is pinned
    assert spec.base_image == "my/own:image"
    assert {"torch==2.11.0", "torchvision==0.26.0", "torchaudio==2.11.0"} <= set(spec.requirements)


def test_image_from_table_when_it_ships_the_torch(h100):  # noqa: F811
    facts = h100_facts(h100)
    facts["packages"]["installed"].update({"torch": "2.9.1", "torchvision": "0.24.1", "torchaudio": "2.9.1"})
    facts["torch"]["version"] = "2.9.1+cu128"
    spec, notes = snapshot.spec_from_facts(facts, base_spec(base_image="x/y:z"), image_known=False)
    assert spec.base_image == "runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404"
    assert "torch==2.9.1" not in spec.requirements and "torchvision==0.24.1" not in spec.requirements
    assert "torchaudio==2.9.1" in spec.requirements  # the table does not say the image ships it


def test_venv_packages_are_the_requirements():
    facts = {"python": {"version": "3.11.7", "in_venv": True}, "gpu": {"count": 0},
             "packages": {"pins": [
                 {"name": "numpy", "requirement": "numpy==2.0.1", "where": "system"},
                 {"name": "rich", "requirement": "rich==13.7.1", "where": "venv"},
                 {"name": "pip", "requirement": "pip==24.0", "where": "venv"},
                 {"name": "torch", "requirement": "torch==2.3.0+cu121", "where": "venv"},
             ], "installed": {}}}
    reqs, notes = snapshot.requirements_beyond_base(facts)
    assert reqs == ["rich==13.7.1", "torch==2.3.0"]  # tooling out; local build label stripped
    assert any("torch==2.3.0+cu121 is pinned as torch==2.3.0" in n for n in notes)


def test_editable_and_local_installs_are_left_out(h100):  # noqa: F811
    report = h100_report(h100, boot=BOOT)
    report["pip_freeze"]["stdout"] += "-e /root/sky_workdir\nmylib @ file:///root/mylib\n"
    report["dists"] = [{"name": "mylib", "version": "0.1", "where": "system", "installed_at": BOOT + 60,
                        "direct_url": {"url": "file:///root/mylib"}},
                       {"name": "peft", "version": "0.21.0", "where": "system", "installed_at": BOOT + 60,
                        "direct_url": None}]
    facts = probe_facts.facts_from_report(report)
    spec, _ = snapshot.spec_from_facts(facts, base_spec(), image_known=True)
    assert spec.requirements == ["peft==0.21.0"]
    assert "-e /root/sky_workdir" in facts["packages"]["left_out"]


def test_no_gpu_keeps_a_gpu_spec():
    """A laptop snapshotting a GPU training repo pins its packages but keeps the GPU need."""
    facts = {"python": {"version": "3.11.7", "in_venv": True}, "gpu": {"driver_found": False, "count": 0},
             "packages": {"pins": [], "installed": {}}}
    spec, notes = snapshot.spec_from_facts(facts, base_spec(), image_known=False)
    assert (spec.workload_type, spec.gpu_type, spec.gpu_count, spec.vram_required_gb) == ("training", "H100", 1, 30)
    assert spec.base_image == base_spec().base_image
    assert any("this machine has no GPU: kept the spec's training on H100 x1" in n for n in notes)
    config_file.loads(config_file.spec_to_yaml(spec))  # a valid file


def test_no_gpu_and_a_cpu_spec_stays_cpu():
    facts = {"python": {"version": "3.11.7", "in_venv": True}, "gpu": {"driver_found": False, "count": 0},
             "packages": {"pins": [], "installed": {}}}
    base = base_spec(workload_type="cpu", gpu_type=None, gpu_count=0, vram_required_gb=0)
    spec, notes = snapshot.spec_from_facts(facts, base, image_known=False)
    assert (spec.workload_type, spec.gpu_type, spec.gpu_count) == ("cpu", None, 0)
    assert spec.base_image == "python:3.11-slim"
    config_file.loads(config_file.spec_to_yaml(spec))


def test_installs_of_the_repos_own_code_stay_in_setup():
    facts = {"python": {"version": "3.11.7", "in_venv": True}, "gpu": {"count": 0},
             "packages": {"pins": [{"name": "rich", "requirement": "rich==13.7.1", "where": "venv"}],
                          "installed": {}}}
    base = base_spec(setup_commands=["pip install -r requirements.txt", "python -m pip install -e .",
                                     "pip install ./third_party/kernels", "pip install flash-attn"])
    spec, _ = snapshot.spec_from_facts(facts, base, image_known=True)
    assert spec.setup_commands == ["python -m pip install rich==13.7.1", "python -m pip install -e .",
                                   "pip install ./third_party/kernels"]


def test_setup_install_commands_become_the_exact_pins():
    facts = {"python": {"version": "3.11.7", "in_venv": True}, "gpu": {"count": 0},
             "packages": {"pins": [{"name": "rich", "requirement": "rich==13.7.1", "where": "venv"}],
                          "installed": {}}}
    base = base_spec(setup_commands=["pip install -r requirements.txt", "python download.py",
                                     "uv pip install flash-attn"])
    spec, notes = snapshot.spec_from_facts(facts, base, image_known=True)
    assert spec.setup_commands == ["python -m pip install rich==13.7.1", "python download.py"]
    assert any("replaced by one pip install" in n for n in notes)


def test_header_records_driver_cuda_and_torch(h100):  # noqa: F811
    header = snapshot.header_for(h100_facts(h100), "box (root@h:22)")
    assert "gpu-lol snapshot of box (root@h:22)" in header
    assert "1x NVIDIA H100 80GB HBM3 (79.6 GiB), compute capability 9.0; driver 580.159.04 (CUDA 13.0)" in header
    assert "torch 2.11.0+cu130 (CUDA 13.0)" in header and "Python 3.12.3" in header


def test_diff_and_unchanged(h100, tmp_path):  # noqa: F811
    facts = h100_facts(h100)
    spec, _ = snapshot.spec_from_facts(facts, base_spec(), image_known=True)
    snap = snapshot.Snapshot(spec=spec, facts=facts, where="box", base_source="t", header="h")
    path = tmp_path / ".gpu-lol.yaml"
    assert not snapshot.unchanged(snap, path)
    config_file.write(path, base_spec())
    assert not snapshot.unchanged(snap, path)
    diff = snapshot.diff(path, snap.yaml())
    assert "-gpu_type: H100\n" in diff and "+gpu_type: H100-SXM\n" in diff
    assert "+- peft==0.21.0\n" in diff
    config_file.write(path, spec, force=True, header="another header")
    assert snapshot.unchanged(snap, path)


def test_snapshot_local_cli_stdout_and_write_rules(run_cli, tmp_path):
    """The real probe on this machine (no GPU): `snapshot --local -o -`, then the file rules."""
    config_file.write(tmp_path / ".gpu-lol.yaml", EnvironmentSpec(
        workload_type="cpu", gpu_type=None, gpu_count=0, base_image="python:3.11-slim",
        providers=["vast"], idle_minutes=15))
    printed = run_cli("snapshot", "--local", "-o", "-", cwd=tmp_path)
    assert printed.code == 0, printed
    loaded = config_file.loads(printed.out)  # what it prints is a valid .gpu-lol.yaml
    assert loaded.data["workload_type"] == "cpu" and loaded.data["providers"] == ["vast"]
    assert printed.out.startswith("# gpu-lol snapshot of this machine")

    out = tmp_path / "snap.yaml"
    first = run_cli("snapshot", "--local", "-o", out, cwd=tmp_path)
    assert first.code == 0 and out.is_file() and "wrote" in first.err
    again = run_cli("snapshot", "--local", "-o", out, cwd=tmp_path)
    assert again.code == 0 and "already matches" in again.err

    before = (tmp_path / ".gpu-lol.yaml").read_text()
    refused = run_cli("snapshot", "--local", cwd=tmp_path)  # no TTY: never overwrites unasked
    assert refused.code == 2 and "not overwriting" in refused.err and "--force" in refused.err
    assert "@@" in refused.out  # the diff was shown
    assert (tmp_path / ".gpu-lol.yaml").read_text() == before
    forced = run_cli("snapshot", "--local", "--force", cwd=tmp_path)
    assert forced.code == 0
    assert config_file.load(tmp_path / ".gpu-lol.yaml").data["python_version"]


def _fake_env(root, packages):
    """A real virtualenv (no pip, so it is quick) holding only ``packages`` as installed dists."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = next(root.glob("lib/python*/site-packages"))
    for name, version in packages:
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "INSTALLER").write_text("pip\n")
        (info / "RECORD").write_text("")
    return root / "bin" / "python"


def test_local_python_is_the_repos_environment_never_gpu_lols(tmp_path, monkeypatch):
    import os
    import sys
    from pathlib import Path

    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    monkeypatch.delenv("CONDA_PREFIX", raising=False)
    own_bin = str(Path(sys.executable).parent)
    # gpu-lol's own virtualenv first on PATH (as when it is activated): never chosen
    monkeypatch.setenv("PATH", own_bin + os.pathsep + os.environ["PATH"])
    exe, why = probe_facts.local_python(tmp_path)
    assert not Path(exe).resolve().is_relative_to(Path(sys.prefix).resolve()), (exe, why)
    assert "on PATH" in why
    repo_python = _fake_env(tmp_path / ".venv", [])
    exe, why = probe_facts.local_python(tmp_path)
    assert exe == str(repo_python) and why == "the repo's .venv/"
    monkeypatch.setenv("VIRTUAL_ENV", sys.prefix)  # gpu-lol's own, activated: still skipped
    assert probe_facts.local_python(tmp_path)[0] == str(repo_python)


def test_snapshot_local_pins_the_repos_venv_not_gpu_lols(run_cli, tmp_path, monkeypatch):
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    monkeypatch.delenv("CONDA_PREFIX", raising=False)
    _fake_env(tmp_path / ".venv", [("fakepkg", "1.2.3"), ("otherpkg", "0.4")])
    config_file.write(tmp_path / ".gpu-lol.yaml", EnvironmentSpec(
        workload_type="cpu", gpu_type=None, gpu_count=0, base_image="python:3.11-slim"))
    printed = run_cli("snapshot", "--local", "-o", "-", cwd=tmp_path)
    assert printed.code == 0, printed
    data = config_file.loads(printed.out).data
    assert data["requirements"] == ["fakepkg==1.2.3", "otherpkg==0.4"]  # nothing of gpu-lol's (click, rich...)
    assert "packages: the environment of the repo's .venv/" in printed.err
