"""The main path and its alternatives (`analyze` paths, `--path N`), confidence and evidence objects
in `analyze --json`, and the price gate of `up` (max_price_per_hour, low confidence with -y).

Nothing here launches: every `up` below stops at the plan (a refusal, a question, or --dry-run)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gpu_lol import launch
from gpu_lol.analyzer import analyze
from gpu_lol.analyzer.result import Analysis
from gpu_lol.launch import budget

REPOS = Path(__file__).resolve().parent / "fixtures" / "repos"
LAUNCH = Path(__file__).resolve().parent / "fixtures" / "launch"


def test_quick_start_inference_beats_a_finetune_folder():
    # the README's quick start is a 10 GB inference demo; an accelerate config for 8 GPUs sits in finetune/
    a = analyze(REPOS / "video-gen-quickstart", use_llm=False)
    assert a.spec.workload_type == "inference"
    assert a.spec.gpu_count == 1 and a.spec.vram_required_gb <= 24
    main = a.paths[0]
    assert main["main"] and main["chosen"] and main["evidence"] == "README.md:16"
    alt = [p for p in a.paths if p["index"] > 0]
    assert alt and alt[0]["workload_type"] == "training" and alt[0]["gpu_count"] == 8
    assert alt[0]["evidence"].startswith("finetune/README.md")


def test_one_gpu_quick_start_beats_the_8_gpu_reproduction():
    a = analyze(REPOS / "quickstart-vs-reproduction", use_llm=False)
    assert a.spec.workload_type == "training" and a.spec.gpu_count == 1
    assert any(p["gpu_count"] == 8 and "nproc_per_node=8" in p["command"] for p in a.paths[1:])


def test_path_n_plans_that_alternative():
    base = analyze(REPOS / "quickstart-vs-reproduction", use_llm=False)
    n = next(p["index"] for p in base.paths if p["gpu_count"] == 8)
    alt = analyze(REPOS / "quickstart-vs-reproduction", use_llm=False, main_path=n)
    assert alt.spec.gpu_count == 8 and alt.spec.workload_type == "training"
    assert alt.paths[n]["chosen"] and not alt.paths[0]["chosen"]
    assert alt.reasoning[0].startswith(f"path {n} chosen")


def test_path_out_of_range_is_a_usage_error(run_cli):
    result = run_cli("analyze", str(REPOS / "quickstart-vs-reproduction"), "--no-llm", "--path", "9")
    assert result.code == 2
    assert "error:" in result.err and "--path 9" in result.err and "hint:" in result.err


def test_json_reasoning_is_objects_with_evidence_and_confidence(run_cli):
    result = run_cli("analyze", str(REPOS / "release-314b"), "--no-llm", "--json")
    assert result.code == 0
    data = json.loads(result.out)
    assert set(data["confidence"]) == {"workload", "model", "gpu_count", "vram", "overall"}
    reasons = data["reasoning"]
    assert all(set(r) == {"decision", "text", "evidence", "confidence"} for r in reasons)
    assert all(r["confidence"] in ("high", "medium", "low") for r in reasons)
    by_decision = {r["decision"]: r for r in reasons}
    for decision in ("workload", "model", "gpu_count", "vram"):
        assert decision in by_decision, decision
    count = by_decision["gpu_count"]
    assert count["confidence"] == "high"  # the README states the hardware
    assert {"file": "README.md", "line": 14} == {k: count["evidence"][0][k] for k in ("file", "line")}
    assert "8x80GB" in count["evidence"][0]["quote"]
    assert data["paths"][0]["main"] is True and data["paths"][0]["fits"] is True


def test_human_panel_shows_confidence_and_paths(run_cli):
    result = run_cli("analyze", str(REPOS / "quickstart-vs-reproduction"), "--no-llm")
    assert result.code == 0
    assert "confidence" in result.out and "paths" in result.out and "--path N" in result.out


def test_a_weak_analysis_has_low_confidence():
    a = analyze(REPOS / "quickstart-vs-reproduction", use_llm=False)  # no model size anywhere
    assert a.confidence["vram"] == "low" and a.confidence["overall"] == "low"
    strong = analyze(REPOS / "release-314b", use_llm=False)
    assert strong.confidence["gpu_count"] == "high" and strong.confidence["vram"] == "high"


# ---- the price gate -------------------------------------------------------------------------

@pytest.fixture
def gpu_repo(tmp_path) -> Path:
    path = tmp_path / "priced-repo"
    shutil.copytree(LAUNCH / "complete", path)
    return path


def _plan(repo: Path, **options):
    from gpu_lol.config.config_file import load
    from gpu_lol.spec import EnvironmentSpec

    spec = EnvironmentSpec.from_dict(load(repo / ".gpu-lol.yaml").data)
    return launch.build_plan(repo, spec, launch.LaunchOptions(**options), environ={}, check_offers=False)


def test_max_price_in_the_repo_file_refuses_a_dearer_plan(gpu_repo, run_cli):
    cfg = gpu_repo / ".gpu-lol.yaml"
    cfg.write_text(cfg.read_text() + "max_price_per_hour: 0.05\n")
    result = run_cli("up", "-y", str(gpu_repo))
    assert result.code == 1
    assert "not launching" in result.err and "max_price_per_hour $0.05" in result.err
    assert "hint:" in result.err


def test_refusal_names_the_cheapest_alternative(gpu_repo):
    cfg = gpu_repo / ".gpu-lol.yaml"
    cfg.write_text(cfg.read_text() + "max_price_per_hour: 1.0\n")
    plan = _plan(gpu_repo, gpu="H100", gpus=2)  # the user asked for far more than 18 GB needs
    gate = budget.check(plan)
    assert gate.refusal and gate.limit == 1.0 and gate.limit_source.startswith(".gpu-lol.yaml")
    assert "cheapest alternative" in gate.hint and "2x" in gate.hint


def test_max_price_from_the_users_settings(gpu_repo, monkeypatch):
    from gpu_lol.config import user_config

    user_config.set_value("max_price_per_hour", "0.05")
    gate = budget.check(_plan(gpu_repo))
    assert gate.refusal and "setting max_price_per_hour" in gate.refusal
    monkeypatch.setenv("GPU_LOL_MAX_PRICE_PER_HOUR", "50")
    assert budget.check(_plan(gpu_repo)).refusal is None


def test_a_bad_price_setting_is_refused():
    from gpu_lol.config import user_config
    from gpu_lol.errors import UsageError

    with pytest.raises(UsageError):
        user_config.set_value("max_price_per_hour", "cheap")


def test_a_bad_price_in_the_file_names_the_field(gpu_repo, run_cli):
    cfg = gpu_repo / ".gpu-lol.yaml"
    cfg.write_text(cfg.read_text() + "max_price_per_hour: -3\n")
    result = run_cli("up", "--dry-run", str(gpu_repo))
    assert result.code == 2 and "max_price_per_hour" in result.err


def test_low_confidence_expensive_plan_asks_even_with_yes(run_cli, tmp_path):
    repo = tmp_path / "weak"
    shutil.copytree(REPOS / "quickstart-vs-reproduction", repo)
    result = run_cli("up", "-y", "--no-llm", "--gpu", "A100-80GB", "--gpus", "4", str(repo))
    assert result.code == 2
    assert "not launching on -y alone" in result.err and "--yes-expensive" in result.err
    assert "low confidence" in result.err


def test_yes_expensive_or_a_limit_allows_it(tmp_path):
    a = analyze(REPOS / "quickstart-vs-reproduction", use_llm=False)
    assert a.confidence["overall"] == "low"
    plan = launch.build_plan(REPOS / "quickstart-vs-reproduction", a.spec,
                             launch.LaunchOptions(gpu="A100-80GB", gpus=4), environ={}, check_offers=False)
    assert plan.cost_per_hour > budget.LOW_CONFIDENCE_BUDGET
    assert budget.check(plan, a).ask
    assert budget.check(plan, a, yes_expensive=True).ask is None
    plan.spec.max_price_per_hour = plan.cost_per_hour + 1
    gate = budget.check(plan, a)
    assert gate.ask is None and gate.refusal is None and gate.lines  # still said in the plan


def test_confident_or_cheap_plans_do_not_ask():
    cheap = Analysis(spec=None, confidence={"overall": "low"})

    class P:  # a plan's two fields the gate reads
        def __init__(self, cost):
            from gpu_lol.spec import EnvironmentSpec

            self.spec, self.cost_per_hour = EnvironmentSpec(gpu_type="RTX3090"), cost

    assert budget.check(P(0.5), cheap).ask is None
    assert budget.check(P(9.0), Analysis(spec=None, confidence={"overall": "high"})).ask is None
    assert budget.check(P(9.0), cheap).ask


def test_up_path_n_dry_run_plans_the_alternative(run_cli, tmp_path):
    repo = tmp_path / "tiny"
    shutil.copytree(REPOS / "quickstart-vs-reproduction", repo)
    base = analyze(repo, use_llm=False)
    n = next(p["index"] for p in base.paths if p["gpu_count"] == 8)
    main = run_cli("up", "--dry-run", "--json", "--no-llm", str(repo))
    alt = run_cli("up", "--dry-run", "--json", "--no-llm", "--path", str(n), str(repo))
    assert main.code == 0 and alt.code == 0, (main.err, alt.err)
    assert json.loads(main.out)["spec"]["gpu_count"] == 1
    assert json.loads(alt.out)["spec"]["gpu_count"] == 8
