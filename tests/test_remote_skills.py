"""The Claude Code skills for working on machines: well-formed and portable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

SKILLS = Path(__file__).resolve().parent.parent / ".claude" / "skills"
EXPECTED = {"gpu-lol-launch", "gpu-lol-run", "gpu-lol-validate", "gpu-lol-snapshot", "gpu-lol-teardown",
            "gpu-lol-debug-analysis"}


def skill_files():
    return sorted(SKILLS.glob("*/SKILL.md"))


def test_every_workflow_has_a_skill():
    assert EXPECTED <= {p.parent.name for p in skill_files()}


@pytest.mark.parametrize("path", skill_files(), ids=lambda p: p.parent.name)
def test_skill_frontmatter_and_body(path):
    text = path.read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", text, re.S)
    assert match, "SKILL.md must start with YAML frontmatter between --- lines"
    meta = yaml.safe_load(match.group(1))
    assert meta["name"] == path.parent.name
    assert re.fullmatch(r"[a-z0-9-]{1,64}", meta["name"])
    assert 40 <= len(meta["description"]) <= 1024
    assert "Bash(gpu-lol:*)" in meta["allowed-tools"]
    body = match.group(2)
    assert "gpu-lol " in body
    # portable: no machine-specific paths or users
    assert not re.search(r"/(work|root|home/\w+|Users/\w+|tmp)/", text)
    # every gpu-lol subcommand the skill mentions exists
    from gpu_lol.cli import COMMANDS

    for sub in re.findall(r"`gpu-lol ([a-z]+)", text):
        assert sub in COMMANDS, f"{path.parent.name} mentions unknown command gpu-lol {sub}"
