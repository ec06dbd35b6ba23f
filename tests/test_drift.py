""".gpu-lol.yaml vs the repo: `analyze` and `up` warn, one line per drift, naming the file, the
field and the fix (gpu_lol/config/drift.py). The repo is tests/fixtures/drift/lora-8b, copied and
edited the way a user edits a repo after `gpu-lol init`; the commands are the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gpu_lol.config import drift
from gpu_lol.spec import EnvironmentSpec

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "drift" / "lora-8b"
CFG = ".gpu-lol.yaml"


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "lora-8b"
    shutil.copytree(FIXTURE, path)
    return path


def _drift_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"warning: {CFG}:")]


def _analyze_warnings(run_cli, repo) -> list[str]:
    res = run_cli("analyze", str(repo), "--no-llm", "--json")
    assert res.code == 0, res
    return [w for w in json.loads(res.out)["warnings"] if w.startswith(f"{CFG}:")]


def test_a_fresh_init_has_no_drift(repo, run_cli):
    assert run_cli("init", str(repo), "--no-llm").code == 0
    assert _analyze_warnings(run_cli, repo) == []
    assert run_cli("init", str(repo), "--no-llm", "--complete", "--force").code == 0
    assert _analyze_warnings(run_cli, repo) == []


def test_a_requirement_added_to_the_repo_after_init_is_one_line(repo, run_cli):
    assert run_cli("init", str(repo), "--no-llm").code == 0
    (repo / "requirements.txt").write_text((repo / "requirements.txt").read_text() + "bitsandbytes>=0.43\n")
    warnings = _analyze_warnings(run_cli, repo)
    # requirements and the setup that installs them moved together: one drift, one line
    assert len(warnings) == 1, warnings
    assert "requirements: now also bitsandbytes>=0.43" in warnings[0]
    assert "`gpu-lol init --force`" in warnings[0] and "uncomment requirements" in warnings[0]
    # the run itself follows the repo: the new requirement is in the setup
    res = run_cli("analyze", str(repo), "--no-llm", "--json")
    assert "bitsandbytes>=0.43" in json.loads(res.out)["requirements"]
    # and `init --force` refreshes the record
    assert run_cli("init", str(repo), "--no-llm", "--force").code == 0
    assert _analyze_warnings(run_cli, repo) == []


def test_a_model_the_code_no_longer_loads(repo, run_cli):
    assert run_cli("init", str(repo), "--no-llm").code == 0
    code = (repo / "train.py").read_text().replace("meta-llama/Llama-3.1-8B", "Qwen/Qwen2.5-0.5B")
    (repo / "train.py").write_text(code)
    warnings = _analyze_warnings(run_cli, repo)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"{CFG}: model.name meta-llama/Llama-3.1-8B is mentioned by no file of the "
                                  "repo any more (the code no longer loads it")
    assert "fix: set model.name" in warnings[0]


def test_a_pinned_requirements_list_that_lags_the_repo(repo, run_cli):
    assert run_cli("init", str(repo), "--no-llm", "--complete").code == 0
    text = (repo / "requirements.txt").read_text().replace("peft==0.11.1", "peft==0.12.0")
    (repo / "requirements.txt").write_text(text + "bitsandbytes>=0.43\n")
    warnings = _analyze_warnings(run_cli, repo)
    assert warnings == [
        f"{CFG}: requirements has peft==0.11.1 but requirements.txt:3 declares peft==0.12.0: fix: write "
        "peft==0.12.0 in requirements, or delete requirements to follow the repo",
        f"{CFG}: requirements lacks bitsandbytes>=0.43, which requirements.txt:6 declares (the setup installs "
        "only the file's list): fix: add it to requirements, or delete requirements to follow the repo"]


def test_up_prints_the_same_warnings(repo, gpu_lol_exe):
    (repo / CFG).write_text("version: 1\nrequirements: [torch, transformers==4.45.0, peft==0.11.1, accelerate]\n"
                            "model: {name: mistralai/Mistral-7B-v0.1}\n")
    for args in (["analyze", "--no-llm"], ["up", "--dry-run", "--no-llm"]):
        env = {**os.environ, "COLUMNS": "1000"}  # one warning, one line
        res = subprocess.run([*gpu_lol_exe, *args, str(repo)], capture_output=True, text=True, timeout=300,
                             env=env)
        assert res.returncode == 0, res.stderr
        lines = _drift_lines(res.stdout + res.stderr)  # analyze: in its panel (stdout); up: stderr
        joined = "\n".join(lines)
        assert len(lines) == 4, res.stdout + res.stderr
        assert "requirements has transformers==4.45.0 but requirements.txt:2 declares transformers==4.46.0" \
            in joined, res.stderr
        assert "requirements lacks datasets, which requirements.txt:5 declares" in joined
        # a hand-written file: the code may take the model from an argument, so it says "if"
        assert "model.name mistralai/Mistral-7B-v0.1 is mentioned by no file of the repo (if the code" in joined
        # the file drops the repo's lower bound on torch: that is a difference too
        assert "requirements has torch but requirements.txt:1 declares torch>=2.1" in joined


def test_the_files_own_decisions_are_not_drift():
    declared = [("torch>=2.1", "requirements.txt:1"), ("accelerate", "requirements.txt:2"),
                ("Transformers[torch]==4.46.0", "pyproject.toml:9")]
    # a tighter pin of an unpinned requirement, an extra package, another spelling of one name
    mine = ["torch>=2.1", "accelerate==1.0.0", "wandb", "transformers==4.46.0"]
    assert drift.requirement_drift(CFG, mine, declared) == []
    assert len(drift.requirement_drift(CFG, ["wandb"], declared)) == 3


def test_many_missing_requirements_are_capped():
    declared = [(f"pkg{i}", f"requirements.txt:{i}") for i in range(1, 21)]
    lines = drift.requirement_drift(CFG, ["wandb"], declared)
    assert len(lines) == drift.MAX_REQUIREMENT_LINES
    assert "in 13 more requirement(s)" in lines[-1]


def test_the_derived_record_is_read_back_and_a_hand_edited_one_is_ignored():
    from gpu_lol.config import config_file

    spec = EnvironmentSpec(workload_type="training", gpu_type="L4", gpu_count=1, vram_required_gb=20.0,
                           requirements=["torch"])
    text = config_file.spec_to_yaml(spec, "header", config_file.DECIDED_FIELDS)
    recorded = drift.recorded_derived(text)
    assert recorded["gpu_type"] == "L4" and recorded["requirements"] == ["torch"]
    assert drift.derived_drift(CFG, recorded, spec, {}) == []
    bigger = EnvironmentSpec.from_dict({**spec.to_dict(), "gpu_type": "A100-80GB", "gpu_count": 2,
                                        "vram_required_gb": 61.0})
    lines = drift.derived_drift(CFG, recorded, bigger, {})
    assert len(lines) == 1  # card, count and need moved together
    assert "gpu_type: recorded L4, the repo now gives A100-80GB" in lines[0] and "gpu_count" in lines[0]
    # a field pinned since is the user's
    assert drift.derived_drift(CFG, recorded, bigger, {"gpu_type": "A100-80GB", "gpu_count": 2,
                                                       "vram_required_gb": 61.0}) == []
    broken = text.replace("# gpu_type: L4", "# gpu_type: [L4")
    assert drift.recorded_derived(broken) == {}
    assert drift.recorded_derived("version: 1\n") == {}


@pytest.mark.parametrize("name", ["vlm-release-prose-size", "trap-70b", "resolve-qlora"])
def test_init_then_analyze_plans_the_same_machine_with_no_drift(name, tmp_path, run_cli):
    """The sweep over every fixture repo that found it: init wrote model.name and left the size
    derived, and the README's stated size of that same model was then ignored (17B -> none, A40 -> RTX3090)."""
    repo = tmp_path / name
    shutil.copytree(Path(__file__).resolve().parent / "fixtures" / "repos" / name, repo)
    before = json.loads(run_cli("analyze", str(repo), "--no-llm", "--json").out)
    assert run_cli("init", str(repo), "--no-llm").code == 0
    after = json.loads(run_cli("analyze", str(repo), "--no-llm", "--json").out)
    assert [w for w in after["warnings"] if w.startswith(f"{CFG}:")] == []
    for key in ("gpu_type", "gpu_count", "vram_required_gb", "model", "requirements"):
        assert after[key] == before[key], key
