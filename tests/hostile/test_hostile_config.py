"""Hostile `.gpu-lol.yaml` and user settings files: one `error:` naming file, line and field, or
the file works (see cases.CONFIG_CASES / SETTINGS_CASES)."""

from __future__ import annotations

import re

import pytest

from hostile_cases import CONFIG_CASES, GPU_NAME_CASES, SECRET, SETTINGS_CASES
from hostile_checks import check_outcome


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _where(case, result, path):
    """The error line names the file, and the line and field the case expects."""
    if result.code == 0:
        return
    error = next(line for line in result.err.splitlines() if line.startswith("error: "))
    assert str(path) in error, error
    line = re.search(r"line (\d+)", case.expect)
    if line:
        assert f"{path}:{line.group(1)}:" in error, error
    field = re.search(r"field (\S+)", case.expect)
    if field:
        assert field.group(1) in error, error


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c.id for c in CONFIG_CASES])
def test_config_file(case, run_cli, tmp_path, no_marks):
    repo = tmp_path / "repo"
    _write(repo / "train.py", "import torch\n")
    config = repo / ".gpu-lol.yaml"
    _write(config, case.build)
    before = config.read_bytes()
    result = run_cli("analyze", "--no-llm", "--json", str(repo), cwd=tmp_path)
    check_outcome(result, case.expect, where=repo)
    _where(case, result, config)
    assert config.read_bytes() == before  # a bad file is never modified


@pytest.mark.parametrize("case", SETTINGS_CASES, ids=[c.id for c in SETTINGS_CASES])
def test_settings_file(case, run_cli, tmp_path, isolated_home, no_marks):
    settings = isolated_home / ".gpu-lol" / "config.yaml"
    _write(settings, case.build)
    settings.chmod(0o600)
    result = run_cli("config", "show", cwd=tmp_path)
    check_outcome(result, case.expect)
    if result.code != 0:
        assert str(settings) in result.err
        line = re.search(r"line (\d+)", case.expect)
        if line:
            assert f"{settings}:{line.group(1)}:" in result.err
    json_result = run_cli("config", "show", "--json", cwd=tmp_path)
    assert SECRET not in json_result.out + json_result.err
    assert json_result.code == result.code


@pytest.mark.parametrize("case", GPU_NAME_CASES, ids=[c.id for c in GPU_NAME_CASES])
def test_gpu_type_takes_gpu_flag_names(case, run_cli, tmp_path):
    repo = tmp_path / "repo"
    _write(repo / "train.py", "import torch\n")
    _write(repo / ".gpu-lol.yaml", case.build)
    result = run_cli("analyze", "--no-llm", "--json", str(repo), cwd=tmp_path)
    check_outcome(result, "works")
    want = case.expect.split("(")[1].rstrip(")")
    data = result.json()
    assert data["gpu_type"] == want
    assert any(f"read as {want}" in w for w in data["warnings"])
    assert run_cli("up", repo, "--dry-run", "--json", "--no-llm", "--gpu",
                   case.build.split(": ", 1)[1].strip()).code == 0  # --gpu takes the same name
