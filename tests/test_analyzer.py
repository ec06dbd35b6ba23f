"""The analyzer end to end on fixture repos: the traps named in the foundation issue, and the
signals each decision rests on."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from gpu_lol.analyzer import analyze
from gpu_lol.sizing.catalog import get_gpu

REPOS = Path(__file__).resolve().parent / "fixtures" / "repos"
ROOT = Path(__file__).resolve().parents[1]


def run(name: str):
    return analyze(REPOS / name, use_llm=False)


def reasoning(a) -> str:
    return "\n".join(a.reasoning)


def assert_fits(a):
    card = get_gpu(a.spec.gpu_type)
    assert card is not None
    assert card.vram_gb >= a.spec.vram_required_gb, (a.spec.gpu_type, a.spec.vram_required_gb)


def test_trap_epochs_is_not_a_model_size():
    a = run("trap-epochs")
    assert a.spec.workload_type == "training"
    assert a.spec.model.name == "gpt2" and a.spec.model.params_b < 0.2
    assert a.spec.gpu_count == 1 and a.spec.vram_required_gb < 12
    assert_fits(a)
    assert "100" not in (a.spec.model.name or "")
    assert "train.py:" in reasoning(a)  # evidence cites file:line


def test_trap_substring_api_in_capital_is_not_serving():
    a = run("trap-capital")
    assert a.spec.workload_type == "training"
    assert a.spec.ports == []


def test_trap_distilled_model_is_not_its_teacher():
    a = run("trap-distill")
    assert a.spec.workload_type == "inference"
    assert a.spec.model.name == "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
    assert a.spec.model.params_b < 2.5
    assert a.spec.gpu_count == 1 and a.spec.vram_required_gb <= 24
    assert a.spec.ports == [8000]
    assert "vllm==0.11.0" in a.spec.requirements


def test_trap_notebooks_and_conda_are_read():
    a = run("trap-notebook-conda")
    assert a.spec.workload_type == "interactive"
    assert a.spec.model.name == "Qwen/Qwen2.5-1.5B-Instruct"
    assert "transformers==4.46.0" in a.spec.requirements  # conda pip: section
    assert "accelerate" in a.spec.requirements  # %pip / !pip in a notebook cell
    assert any(r.startswith("torch") for r in a.spec.requirements)  # conda pytorch=2.5.1
    assert a.spec.python_version == "3.11"  # conda python=3.11
    assert "2.5.1" in a.spec.base_image or "torch251" in a.spec.base_image


def test_trap_big_model_is_never_put_on_one_card_that_cannot_hold_it():
    a = run("trap-70b")
    assert a.spec.model.params_b > 60
    assert a.spec.gpu_count > 1
    assert_fits(a)
    assert any("shards" in w for w in a.warnings)


def test_cpu_repo_gets_no_gpu_and_a_slim_image():
    a = run("cpu-sklearn")
    spec = a.spec
    assert spec.workload_type == "cpu"
    assert spec.gpu_type is None and spec.gpu_count == 0 and spec.vram_required_gb == 0
    assert spec.base_image == "python:3.12-slim" and spec.python_version == "3.12"
    assert spec.setup_commands == ["python -m pip install scikit-learn==1.5.2 'pandas>=2'"]
    data = a.to_json()
    assert data["gpu_type"] is None and data["gpu_count"] == 0


def test_multi_gpu_count_comes_from_the_accelerate_config():
    a = run("multi-gpu-accelerate")
    spec = a.spec
    assert spec.workload_type == "training"
    assert spec.gpu_count == 8
    assert spec.model.name == "mistralai/Mistral-7B-v0.1" and spec.model.method == "full"
    assert "zero3.yaml:8" in reasoning(a)
    # README says 8 GPUs with 80 GB each: an 80 GB card, not a 94 GB one at twice the price
    assert spec.vram_required_gb == 80 and get_gpu(spec.gpu_type).vram_gb == 80
    assert spec.setup_commands[-1] == "python -m pip install -e ."


def test_distributed_imports_and_test_commands_do_not_make_a_repo_multi_gpu():
    a = run("lib-distributed-imports")
    assert a.spec.gpu_count == 1
    assert "tests/test_dist.py" not in reasoning(a)


def test_serving_app_with_a_cuda_dockerfile():
    a = run("serving-fastapi")
    spec = a.spec
    assert spec.workload_type == "inference"
    assert spec.base_image == "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"
    assert spec.ports == [8080]
    assert spec.model.name == "mistralai/Mistral-7B-Instruct-v0.3" and spec.model.method == "inference"
    assert spec.system_packages[:2] == ["python3-pip", "git"] and "python3" in spec.system_packages
    assert spec.python_version == "3.10"  # Ubuntu 22.04's python3, not a default
    assert spec.setup_commands[1].startswith("python3 -m pip --version")  # pip bootstrapped first
    assert spec.setup_commands[2].startswith("python3 -m pip install ")  # no `python` in that image
    assert_fits(a)


def test_hostile_requirements_never_reach_the_shell(tmp_path):
    a = run("hostile")
    reqs = a.spec.requirements
    assert "numpy<2.0" in reqs and "pandas>=2,<3" in reqs
    assert 'requests>=2.31; python_version >= "3.8"' in reqs
    assert not any("rm -rf" in r or "$(" in r or "`" in r for r in reqs)
    assert any("dropped" in w for w in a.warnings)
    # the setup line, run by a shell with pip replaced by a recorder, passes every pin intact
    record = tmp_path / "argv"
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").write_text(f"#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> {shlex.quote(str(record))}; done\n")
    (fake / "python").chmod(0o755)
    script = "set -euo pipefail\n" + "\n".join(a.spec.setup_commands)
    subprocess.run(["bash", "-c", script], env={"PATH": f"{fake}:/usr/bin:/bin"}, check=True)
    argv = record.read_text().splitlines()
    assert argv[:3] == ["-m", "pip", "install"]
    assert set(argv[3:]) == {r for r in reqs if not r.startswith("torch")}


def test_config_file_wins_for_what_it_sets(tmp_path):
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(REPOS / "trap-epochs", repo)
    (repo / ".gpu-lol.yaml").write_text("gpu_type: L40S\nmodel:\n  name: meta-llama/Llama-3.1-8B\n  method: lora\n")
    a = analyze(repo, use_llm=False)
    assert a.source == "config" and set(a.config_fields) == {"gpu_type", "model"}
    assert a.spec.gpu_type == "L40S"
    assert a.spec.model.name == "meta-llama/Llama-3.1-8B" and a.spec.model.method == "lora"
    assert a.spec.model.params_b > 7.5  # the user's model drives the estimate
    assert a.spec.vram_required_gb > 15
    assert a.spec.workload_type == "training"  # still inferred
    assert "torch==2.8.0" in a.spec.requirements


def test_config_user_gpu_that_cannot_fit_is_kept_with_a_warning(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "serve.py").write_text("from vllm import LLM\nllm = LLM(model='meta-llama/Llama-3.1-70B-Instruct')\n")
    (repo / ".gpu-lol.yaml").write_text("gpu_type: RTX4090\ngpu_count: 1\n")
    a = analyze(repo, use_llm=False)
    assert a.spec.gpu_type == "RTX4090" and a.spec.gpu_count == 1
    assert any("RTX4090" in w for w in a.warnings)


def test_complete_config_skips_analysis(tmp_path):
    from gpu_lol.config import config_file
    from gpu_lol.spec import EnvironmentSpec

    spec = EnvironmentSpec(workload_type="inference", gpu_type="L4", gpu_count=1, vram_required_gb=12,
                           base_image="runpod/pytorch:1.0.3-cu1281-torch291-ubuntu2404")
    config_file.write(tmp_path / ".gpu-lol.yaml", spec)
    a = analyze(tmp_path, use_llm=False)
    assert a.source == "config" and a.spec == spec


def test_analyze_json_has_every_documented_key(run_cli):
    result = run_cli("analyze", str(REPOS / "trap-epochs"), "--json", "--no-llm")
    assert result.code == 0, result
    data = result.json()
    for key in ("workload_type", "gpu_type", "gpu_count", "vram_required_gb", "base_image", "python_version",
                "requirements", "setup_commands", "model", "reasoning", "source"):
        assert key in data
    assert set(data["model"]) == {"name", "params_b", "method"}
    assert data["source"] == "heuristics"


def test_analyze_panel_renders(run_cli):
    result = run_cli("analyze", str(REPOS / "trap-distill"), "--no-llm")
    assert result.code == 0
    assert "DeepSeek-R1-Distill-Qwen-1.5B" in result.out and "why" in result.out


def test_analyze_missing_path_is_a_usage_error(run_cli, tmp_path):
    result = run_cli("analyze", str(tmp_path / "nope"), "--no-llm")
    assert result.code == 2
    assert result.err.startswith("error: ") and "Traceback" not in result.err


def test_init_writes_and_refuses_to_overwrite(run_cli, tmp_path):
    import shutil

    repo = tmp_path / "r"
    shutil.copytree(REPOS / "trap-distill", repo)
    first = run_cli("init", str(repo), "--no-llm")
    assert first.code == 0, first
    written = (repo / ".gpu-lol.yaml").read_text()
    assert "workload_type: inference" in written and "# Written by `gpu-lol init`" in written
    again = run_cli("init", str(repo), "--no-llm")
    assert again.code == 2 and "--force" in again.err
    assert (repo / ".gpu-lol.yaml").read_text() == written
    forced = run_cli("init", str(repo), "--force", "--complete", "--no-llm")
    assert forced.code == 0
    # --complete pins every field: analyzing again takes every field from it
    assert analyze(repo, use_llm=False).reasoning == ["every field comes from .gpu-lol.yaml"]


def test_init_file_follows_the_repo(run_cli, tmp_path):
    """Issue 13.3: init sets the decisions; requirements, setup, VRAM and GPU follow the repo
    and the model named in the file."""
    import shutil

    from gpu_lol.config import config_file

    repo = tmp_path / "r"
    shutil.copytree(ROOT / "examples" / "qlora-finetune", repo)
    assert run_cli("init", str(repo), "--no-llm").code == 0
    text = (repo / ".gpu-lol.yaml").read_text()
    data = config_file.load(repo / ".gpu-lol.yaml").data
    assert {"workload_type", "model", "providers", "idle_minutes"} <= set(data)
    assert not {"requirements", "setup_commands", "gpu_type", "vram_required_gb", "base_image"} & set(data)
    assert "# Derived:" in text and "# gpu_type:" in text and "# requirements:" in text
    before = analyze(repo, use_llm=False).spec

    # a requirement added to the repo reaches the setup
    with (repo / "requirements.txt").open("a") as fh:
        fh.write("sentencepiece==0.2.0\n")
    after_req = analyze(repo, use_llm=False).spec
    assert "sentencepiece==0.2.0" in after_req.requirements
    assert "sentencepiece==0.2.0" in " ".join(after_req.setup_commands)

    # a bigger model named in the file changes the estimate and the GPU
    path = repo / ".gpu-lol.yaml"
    path.write_text(text.replace(f"name: {data['model']['name']}", "name: meta-llama/Llama-3.1-70B"))
    bigger = analyze(repo, use_llm=False).spec
    assert bigger.model.name == "meta-llama/Llama-3.1-70B" and bigger.model.params_b > 60
    assert bigger.vram_required_gb > before.vram_required_gb * 2
    assert (bigger.gpu_type, bigger.gpu_count) != (before.gpu_type, before.gpu_count)

    # a derived field uncommented is pinned again
    path.write_text(text + "gpu_type: H100\n")
    assert analyze(repo, use_llm=False).spec.gpu_type == "H100"


def test_unexpected_error_is_one_line_pointing_to_debug(run_cli, monkeypatch):
    import gpu_lol.analyzer

    def boom(*_a, **_k):
        raise RuntimeError("kaboom\nsecond line")

    monkeypatch.setattr(gpu_lol.analyzer, "analyze", boom)
    result = run_cli("analyze", ".", "--no-llm")
    assert result.code == 1
    assert result.err.splitlines() == ["error: unexpected error: RuntimeError: kaboom",
                                       "hint: run again with --debug for the full traceback, and report it"]
    with pytest.raises(RuntimeError):
        run_cli("--debug", "analyze", ".", "--no-llm")


def test_importing_the_cli_imports_nothing_heavy():
    code = ("import sys, gpu_lol.cli; heavy = [m for m in ('sky', 'openai', 'httpx', 'rich', 'yaml', 'jsonschema') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_help_lists_every_command_without_importing_them():
    code = ("import sys; from gpu_lol.cli import main; sys.argv=['gpu-lol','--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print([m for m in sys.modules if m.startswith('gpu_lol.commands')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    for name in ("analyze", "init", "estimate", "gpus", "up", "ssh", "exec", "validate", "snapshot", "config"):
        assert f"  {name} " in out


def test_every_table_command_exists(run_cli):
    from gpu_lol.cli import COMMANDS

    for name in COMMANDS:
        result = run_cli(name, "--help")
        assert result.code == 0, (name, result)
        assert "Usage: gpu-lol" in result.out


@pytest.mark.parametrize("repo", sorted(p.name for p in REPOS.iterdir()))
def test_every_fixture_repo_gives_a_consistent_spec(repo):
    a = run(repo)
    spec = a.spec
    assert a.reasoning and spec.base_image
    if spec.workload_type == "cpu":
        assert spec.gpu_type is None and spec.gpu_count == 0
    else:
        assert_fits(a)
        assert 1 <= spec.gpu_count <= 16
