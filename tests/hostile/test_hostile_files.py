"""Secrets and files: private modes under GPU_LOL_HOME, atomic writes that never follow a planted
symlink, secret files and .git left out of the workdir sync, no secret value in a dry run."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hostile_cases import FILE_CASES, SECRET
from hostile_checks import check_outcome, loose_modes


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text("import torch\nfrom transformers import AutoModel\n"
                                   "AutoModel.from_pretrained('bert-base-uncased')\n")
    return repo


def _case(id):
    return next(c for c in FILE_CASES if c.id == id)


def _ids(prefix):
    return [c for c in FILE_CASES if c.id.startswith(prefix)]


@pytest.mark.parametrize("case", [c for c in _ids("mode-") if c.id != "mode-after-up-host"], ids=lambda c: c.id)
def test_private_modes(case, run_cli, tmp_path, isolated_home, monkeypatch):
    old = os.umask(0o022)  # a usual umask: what gpu-lol creates must still be private
    try:
        home = isolated_home / ".gpu-lol"
        if case.id == "mode-config-set":
            assert run_cli("config", "set", "llm.model", "m").code == 0
            assert run_cli("config", "set", "llm.key", SECRET).code == 0
        elif case.id == "mode-state":
            from gpu_lol.launch import state

            state.save(state.Target(name="t", kind="host", repo=str(tmp_path)))
        elif case.id == "mode-llm-cache":
            from gpu_lol import llm

            llm._store_cache("k" * 16, "m", "content") if hasattr(llm, "_store_cache") else \
                __import__("gpu_lol.paths").paths.write_private(
                    __import__("gpu_lol.paths").paths.cache_dir("llm") / "x.json", "{}")
        elif case.id == "mode-host-ssh-config":
            from gpu_lol.launch import state
            from gpu_lol.machine import remote

            target = state.Target(name="h", kind="host", repo=str(tmp_path), extra={
                "host": "127.0.0.1", "user": "me", "port": 22, "workdir": "/tmp/w", "venv": "/tmp/w/v"})
            remote.write_host_config(target)
            remote.control_dir()
        assert home.is_dir()
        assert not loose_modes(home)
    finally:
        os.umask(old)


@pytest.mark.parametrize("case", _ids("init-symlink"), ids=lambda c: c.id)
def test_config_yaml_symlink_is_replaced_not_followed(case, run_cli, tmp_path):
    repo = _repo(tmp_path)
    outside = tmp_path / "outside.yaml"
    outside.write_text("gpu_count: 1\n")
    os.symlink(outside, repo / ".gpu-lol.yaml")
    refused = run_cli("init", "--no-llm", repo)
    check_outcome(refused, "error 2")
    forced = run_cli("init", "--no-llm", "--force", repo)
    check_outcome(forced, case.expect)
    assert outside.read_text() == "gpu_count: 1\n"  # the link's target is never written
    assert not (repo / ".gpu-lol.yaml").is_symlink()


@pytest.mark.parametrize("case", _ids("symlink-"), ids=lambda c: c.id)
def test_write_never_follows_a_planted_link(case, tmp_path):
    from gpu_lol import paths

    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    target = tmp_path / "file.yaml"
    if case.id == "symlink-target":
        os.symlink(victim, target)
    else:  # a link planted at every temp name a naive writer would use
        for name in (".file.yaml.tmp", "file.yaml.tmp", "file.yaml~"):
            os.symlink(victim, tmp_path / name)
    paths.write_private(target, "new\n")
    assert victim.read_text() == "precious\n"
    assert target.read_text() == "new\n" and not target.is_symlink()


@pytest.mark.parametrize("case", _ids("sync-"), ids=lambda c: c.id)
def test_sync_leaves_secrets_out(case, tmp_path):
    from gpu_lol.launch import sync
    from gpu_lol.spec import EnvironmentSpec

    repo = _repo(tmp_path)
    name, expect_excluded, spec = case.build
    path = repo / name
    if name.endswith("/"):
        (path / "objects").mkdir(parents=True)
        (path / "HEAD").write_text("ref: refs/heads/main\n")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"TOKEN={SECRET}\n")
    if spec == "scm":
        (repo / "pyproject.toml").write_text("[tool.setuptools_scm]\n")
        spec = None
    elif spec == "git-setup":
        spec = EnvironmentSpec(setup_commands=["git submodule update --init"])
    plan = sync.plan(repo, spec)
    sent = [rel for rel, _ in plan.files]
    if expect_excluded:
        assert name in plan.excluded and not any(r == name or r.startswith(name) for r in sent)
        assert "left out:" in plan.summary()
    else:
        assert name not in plan.excluded and any(r == name or r.startswith(name) for r in sent)
    if plan.excluded:  # the staged copy SkyPilot syncs holds exactly the list
        staged = sync.stage(plan, tmp_path / "staged")
        got = sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if not p.is_dir())
        assert got == sorted(sent)


@pytest.mark.parametrize("case", _ids("dryrun-"), ids=lambda c: c.id)
def test_dry_run_never_shows_a_secret(case, run_cli, tmp_path, monkeypatch):
    repo = _repo(tmp_path)
    (repo / ".env").write_text(f"HF_TOKEN={SECRET}\n")
    if case.id.startswith("dryrun-spec-envs"):
        (repo / ".gpu-lol.yaml").write_text(f"envs:\n  HF_TOKEN: {SECRET}\n  MY_PASSWORD: {SECRET}\n")
        args = ["up", repo, "--dry-run", "--json", "--no-llm"]
        if case.id.endswith("host"):
            args += ["--host", "me@127.0.0.1:1"]
        result = run_cli(*args, cwd=tmp_path)
        check_outcome(result, case.expect)
        assert "HF_TOKEN" in result.out  # the name is shown, the value never
        return
    monkeypatch.setenv("HF_TOKEN", SECRET)
    args = ["up", repo, "--dry-run", "--no-llm", "--env", "HF_TOKEN", "--env", f"WANDB_API_KEY={SECRET}"]
    if case.id.endswith("json"):
        args.append("--json")
    if case.id.startswith("dryrun-host"):
        args += ["--host", "me@127.0.0.1:1"]
    result = run_cli(*args, cwd=tmp_path)
    check_outcome(result, case.expect)
    if case.id == "dryrun-plan":
        assert ".env" in result.out + result.err  # the plan says it is left out
