"""Hostile repo trees: `gpu-lol analyze` ends cleanly on every one (see cases.TREE_CASES)."""

from __future__ import annotations

import pytest

from hostile_cases import CAP_CASES, SECRET, TREE_CASES
from hostile_checks import check_outcome


@pytest.mark.parametrize("case", TREE_CASES, ids=[c.id for c in TREE_CASES])
def test_tree(case, run_cli, tmp_path, isolated_home, no_marks, request):
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    # rm -rf, not pytest's recursive shutil.rmtree, which overflows on the 1000-deep tree
    request.addfinalizer(lambda: subprocess.run(["rm", "-rf", str(repo)], check=False))
    case.build(repo, isolated_home)
    result = run_cli("analyze", "--no-llm", "--json", str(repo), cwd=tmp_path)
    check_outcome(result, case.expect, where=repo)
    if result.code == 0:
        data = result.json()
        assert SECRET not in str(data)
        # the small real ML repo under every tree is still seen
        assert "torch" in " ".join(data.get("requirements") or []) or data.get("workload_type")


@pytest.mark.parametrize("case", CAP_CASES, ids=[c.id for c in CAP_CASES])
def test_caps_say_so(case, run_cli, tmp_path, monkeypatch):
    from gpu_lol import repo_index as index

    name, value = case.build
    monkeypatch.setattr(index, name, value)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text("import torch\n")
    for i in range(400):
        (repo / f"m{i:03d}.py").write_text("import numpy\n" + "# padding\n" * 100)
    result = run_cli("analyze", "--no-llm", "--json", str(repo), cwd=tmp_path)
    check_outcome(result, "works")
    warnings = " ".join(result.json().get("warnings") or [])
    assert ("300" in warnings and "files and directories" in warnings) if name == "MAX_ENTRIES" \
        else "stopped reading file contents" in warnings
