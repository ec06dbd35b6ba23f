"""Conflicting GPU warnings become one (gpu_lol/sizing/gpu_fix.py). The cases are the ones
`gpu-lol analyze` / `up --dry-run --no-llm` showed on fixture repos with a too-small card pinned
in .gpu-lol.yaml or on the command line: the analyzer's selection, the guardrails, the sharding
note and the plan's out-of-memory check each said it, with two different "would fit" fixes
(1x B200 and 4x A40 for one spec). Each test applies the one fix and checks that no verdict is
left: the fix satisfies every check."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from gpu_lol.sizing import gpu_fix
from gpu_lol.spec import EnvironmentSpec

REPOS = Path(__file__).resolve().parent / "fixtures" / "repos"
FILE_FIX = re.compile(r"fix: set gpu_type: (\S+) and gpu_count: (\d+) in \.gpu-lol\.yaml")
FLAG_FIX = re.compile(r"fix: --gpu (\S+) --gpus (\d+)")


def _repo(tmp_path, name, config=None):
    path = tmp_path / name
    shutil.copytree(REPOS / name, path)
    if config is not None:
        (path / ".gpu-lol.yaml").write_text("version: 1\n" + config)
    return path


def _gpu_lines(warnings, gpu):
    """Every warning that talks about the card's fit (whatever its wording)."""
    return [w for w in warnings if gpu in w and ("cannot hold" in w or "does not fit" in w
                                                  or "run out of memory" in w or "GPUs are needed" in w)]


@pytest.mark.parametrize("name, config, gpu", [
    # selection (1x B200) and guardrails (4x A40) proposed different fixes; plus the leaked reason
    ("resolve-qlora", "gpu_type: A100\ngpu_count: 1\n", "A100"),
    # selection, the leaked reason and the guardrails' "even as 8 GPUs"
    ("multi-gpu-accelerate", "gpu_type: L4\n", "L4"),
    # "8 GPUs are needed: make sure it shards" next to "8x L4 cannot hold; would fit 4x A40"
    ("trap-70b", "gpu_type: L4\n", "L4"),
    ("trap-70b", "gpu_type: L4\ngpu_count: 1\n", "L4"),
])
def test_one_verdict_for_a_card_pinned_in_the_file_and_its_fix_fits(tmp_path, run_cli, name, config, gpu):
    repo = _repo(tmp_path, name, config)
    data = run_cli("analyze", str(repo), "--no-llm", "--json").json()
    lines = _gpu_lines(data["warnings"], gpu)
    assert len(lines) == 1, lines
    fix = FILE_FIX.search(lines[0])
    assert fix, lines[0]
    if "gpu_count" not in config:
        assert "or delete gpu_type there to let gpu-lol choose" in lines[0]
    # the plan's own out-of-memory line is not printed again
    res = run_cli("up", str(repo), "--dry-run", "--no-llm")
    assert res.code == 0, res.err
    assert "run out of memory" not in res.out + res.err
    assert (res.out + res.err).count("cannot hold this work") == 1
    # the one fix satisfies every check
    (repo / ".gpu-lol.yaml").write_text(f"version: 1\ngpu_type: {fix[1]}\ngpu_count: {fix[2]}\n")
    data = run_cli("analyze", str(repo), "--no-llm", "--json").json()
    assert _gpu_lines(data["warnings"], fix[1]) == [] and data["gpu_type"] == fix[1], data["warnings"]
    res = run_cli("up", str(repo), "--dry-run", "--no-llm")
    assert "cannot hold" not in res.out + res.err and "run out of memory" not in res.out + res.err


def test_the_sharding_note_goes_into_the_fix(tmp_path, run_cli):
    repo = _repo(tmp_path, "trap-70b", "gpu_type: L4\n")
    data = run_cli("analyze", str(repo), "--no-llm", "--json").json()
    assert not any("GPUs are needed to hold the model" in w for w in data["warnings"])
    (line,) = _gpu_lines(data["warnings"], "L4")
    assert line.endswith(f"({gpu_fix.SHARD_CAVEAT})")


def test_gpu_flags_are_sized_and_get_one_verdict_in_flag_terms(tmp_path, run_cli):
    repo = _repo(tmp_path, "trap-70b")
    res = run_cli("up", str(repo), "--dry-run", "--no-llm", "--gpu", "l4")
    assert res.code == 0, res.err
    text = res.out + res.err
    # before: the analysis said "4 GPUs are needed" (of A40) and the plan "L4 x 4 ... run out of memory"
    assert "GPUs are needed" not in text and "run out of memory" not in text
    assert text.count("cannot hold this work") == 1
    fix = FLAG_FIX.search(text)
    assert fix, text
    res = run_cli("up", str(repo), "--dry-run", "--no-llm", "--json", "--gpu", fix[1], "--gpus", fix[2])
    assert res.code == 0, res.err
    plan = res.json()
    assert plan["spec"]["gpu_type"] == fix[1] and plan["spec"]["gpu_count"] == int(fix[2])
    assert "cannot hold" not in res.err and not any("run out of memory" in w for w in plan["warnings"])


def test_a_gpu_count_flag_is_sized_not_just_copied(tmp_path, run_cli):
    """`--gpus 1` kept the per-GPU need of the analysis' 4x A40 (41 GB) on one A40, with no
    warning at all; sized, one GPU needs the whole model and gets a card that holds it."""
    repo = _repo(tmp_path, "trap-70b")
    four = run_cli("up", str(repo), "--dry-run", "--no-llm", "--json").json()["spec"]
    one = run_cli("up", str(repo), "--dry-run", "--no-llm", "--json", "--gpus", "1").json()["spec"]
    assert four["gpu_count"] > 1 and one["gpu_count"] == 1
    assert one["vram_required_gb"] > 3 * four["vram_required_gb"]
    from gpu_lol.sizing.catalog import get_gpu

    assert get_gpu(one["gpu_type"]).vram_gb >= one["vram_required_gb"]


def test_merge_leaves_other_warnings_and_other_cards_alone():
    spec = EnvironmentSpec(workload_type="training", gpu_type="L4", gpu_count=1, vram_required_gb=40.0)
    first = ("1x L4 (24 GiB each) cannot hold this work: needs 40.0 GiB per GPU, 21.6 GiB usable (short by "
             "18.4 GiB); would fit: 1x A40 (48 GiB each, 40.0 GiB per GPU) at $0.40/hr")
    again = ("1x L4 (24 GiB each) cannot hold this work: needs 40.1 GiB per GPU, 21.6 GiB usable (short by "
             "18.5 GiB); would fit: 2x RTX4090 (24 GiB each, 20.1 GiB per GPU) at $0.70/hr")
    other = "RTX3090 (24 GiB) cannot hold this work even as 8 GPUs: needs 30.0 GiB per GPU, 21.6 GiB usable"
    warnings = ["before", first, "1x L4 as requested (does not fit)", again, other, "after"]
    out = gpu_fix.merge(warnings, spec, pinned={"gpu_type": "flag"})
    assert out == ["before", first + "; fix: --gpu A40 --gpus 1", other, "after"]
    assert gpu_fix.merge(["x", other], spec) == ["x", other]
    plan = ["needs 40 GB per GPU but L4 has 24 GB: it will likely run out of memory (see `gpu-lol estimate`)", "y"]
    assert gpu_fix.drop_repeats(plan, out, spec) == ["y"]
    assert gpu_fix.drop_repeats(plan, ["before"], spec) == plan  # nothing said it yet: kept


def test_a_card_the_providers_do_not_rent_and_that_is_too_small_is_one_line(tmp_path, run_cli):
    """Six lines before: the sharding note, "not offered" + "also cannot hold" from the selection,
    the leaked reason, and "not offered" + "also cannot hold 228 GiB" from the guardrails."""
    repo = _repo(tmp_path, "resolve-qlora", "gpu_type: RTX4090\nproviders: [lambda]\n")
    data = run_cli("analyze", str(repo), "--no-llm", "--json").json()
    lines = [w for w in data["warnings"] if "RTX4090" in w or "GPUs are needed" in w]
    assert len(lines) == 1, lines
    assert "is not offered on lambda" in lines[0] and "also cannot hold" in lines[0]
    # pinned, 8x A100-80GB would be sized as the launcher's count (unsharded, 159 GiB per GPU) and
    # fail; only leaving the card to gpu-lol gets the sharded plan, and the fix says exactly that
    assert "would fit: 8x A100-80GB" in lines[0]
    assert lines[0].endswith(f"fix: delete gpu_type in .gpu-lol.yaml to let gpu-lol choose that plan "
                             f"({gpu_fix.SHARD_CAVEAT})"), lines[0]
    (repo / ".gpu-lol.yaml").write_text("version: 1\nproviders: [lambda]\n")
    data = run_cli("analyze", str(repo), "--no-llm", "--json").json()
    assert (data["gpu_type"], data["gpu_count"]) == ("A100-80GB", 8)
    assert _gpu_lines(data["warnings"], "A100-80GB") == [] and not any("not offered" in w for w in data["warnings"])
    res = run_cli("up", str(repo), "--dry-run", "--no-llm")
    assert res.code == 0, res.err


def test_a_checked_fix_replaces_the_verdicts_own_would_fit():
    spec = EnvironmentSpec(workload_type="training", gpu_type="L4", gpu_count=1, vram_required_gb=40.0)
    line = ("1x L4 (24 GiB each) cannot hold this work: needs 40.0 GiB per GPU, 21.6 GiB usable (short by "
            "18.4 GiB); would fit: 2x RTX4090 (24 GiB each, 20.1 GiB per GPU) at $0.70/hr")
    fix = gpu_fix.Fix("A40", 1, 40.0, 0.4)
    (out,) = gpu_fix.merge([line], spec, pinned={"gpu_type": "file"}, fix=fix)
    assert "RTX4090" not in out and "would fit: 1x A40 (48 GiB each, 40.0 GiB per GPU) at $0.40/hr" in out
    assert out.endswith("fix: set gpu_type: A40 and gpu_count: 1 in .gpu-lol.yaml, or delete gpu_type there "
                        "to let gpu-lol choose")
    fix.pin_ok = False
    (out,) = gpu_fix.merge([line], spec, pinned={"gpu_type": "flag", "gpu_count": "flag"}, fix=fix)
    assert out.endswith("fix: leave out --gpu and --gpus to let gpu-lol choose that plan")
