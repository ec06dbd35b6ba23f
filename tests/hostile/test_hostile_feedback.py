"""Feedback and conventions: unknown commands get "did you mean", click's usage errors use our
format, answers that need nothing come at once, a plan made from nothing is refused, and a gated
model without a token is flagged with the fix."""

from __future__ import annotations

import re

import pytest

from hostile_cases import FEEDBACK_CASES, SECRET
from hostile_checks import check_outcome


@pytest.mark.parametrize("case", FEEDBACK_CASES, ids=[c.id for c in FEEDBACK_CASES])
def test_feedback(case, run_cli, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    if isinstance(case.build, list):
        result = run_cli(*case.build, cwd=tmp_path)
    elif case.build in ("empty", "js"):
        if case.build == "js":
            (repo / "app.js").write_text("console.log(1)\n")
            (repo / "README.md").write_text("# a web app\n")
        command = "analyze" if case.id.endswith("analyze") else "up"
        args = [command, repo, "--no-llm"] + (["--dry-run"] if command == "up" else [])
        result = run_cli(*args, cwd=tmp_path)
    else:
        (repo / "train.py").write_text(
            "from transformers import AutoModelForCausalLM\n"
            "m = AutoModelForCausalLM.from_pretrained('meta-llama/Llama-3.1-8B')\n")
        if case.build == "gated-token":
            monkeypatch.setenv("HF_TOKEN", SECRET)
        result = run_cli("up", repo, "--dry-run", "--json", "--no-llm", cwd=tmp_path)
    check_outcome(result, case.expect)
    said = re.search(r"\((did you mean .*)\)", case.expect)
    if said:
        assert f"hint: {said.group(1)}" in result.err
    text = result.out + result.err
    if result.code:
        assert "Usage:" not in text and "Error:" not in text  # click's own format is gone
        assert "hint: " in result.err or case.id == "info-unknown"
    if case.id == "unknown-analyse":
        assert "did you mean `gpu-lol analyze`?" in result.err
    elif case.id == "unknown-status":
        assert "did you mean `gpu-lol ls`?" in result.err
    elif case.id == "usage-no-such-option":
        assert "error: no such option: --frob" in result.err and "gpu-lol up --help" in result.err
    elif case.id == "info-unknown":
        assert "no cluster or host named 'nope'" in result.err
    elif case.id.endswith("-up"):
        assert "nothing to launch" in result.err
    elif case.id == "empty-repo-analyze":
        assert "no Python code" in text
    elif case.id == "gated-model-no-token":
        warnings = " ".join(result.json()["warnings"])
        assert "gated" in warnings and "HF_TOKEN" in warnings
    elif case.id == "gated-model-token":
        assert "gated" not in " ".join(result.json()["warnings"])
