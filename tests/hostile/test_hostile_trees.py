"""Hostile repo trees: `gpu-lol analyze` ends cleanly on every one (see cases.TREE_CASES)."""

from __future__ import annotations

import pytest

from cases import TREE_CASES, SECRET
from conftest import check_outcome


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
