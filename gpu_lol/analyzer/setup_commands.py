"""Setup commands: install exactly what the repo declares, nothing else.

Every requirement string becomes one shell-quoted argument (``shlex.quote``), so a pin such as
``numpy<2.0`` arrives intact and nothing from the repo is ever interpreted by the shell. What the
base image already ships at a compatible version (torch in a RunPod PyTorch image) is skipped,
so pip does not download gigabytes to replace it. A repo that is a package is installed too.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from gpu_lol.requirements_text import name_of

# Images whose `python` is the interpreter that has the framework (RunPod symlinks it; the
# official python images ship it); elsewhere (nvidia/cuda, Ubuntu-based images) only `python3`.
_PYTHON_IMAGES = ("runpod/", "python:", "pytorch/pytorch", "tensorflow/tensorflow", "nvcr.io/nvidia/pytorch")


def python_for(image: str) -> str:
    return "python" if image.lower().startswith(_PYTHON_IMAGES) else "python3"


@dataclass
class SetupPlan:
    commands: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # requirements the image already provides
    reasons: list[str] = field(default_factory=list)


def provided_by_image(requirement: str, provides: dict[str, str]) -> bool:
    """True when the image ships this package at a version the requirement accepts."""
    name = name_of(requirement)
    if not name or name not in provides:
        return False
    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return False
    if req.url or req.extras:
        return False
    try:
        return req.specifier.contains(Version(provides[name]), prereleases=True)
    except InvalidVersion:
        return False


def build(requirements: list[str], *, provides: dict[str, str] | None = None,
          index_options: list[tuple[str, str]] | None = None, constraints: list[str] | None = None,
          install_package: bool = False, extras: list[str] | None = None, python: str = "python",
          build_flags: dict[str, list[str]] | None = None) -> SetupPlan:
    """The pip commands: the requirements in one command, the repo itself (``-e .``), then the
    requirements that came with build flags (``flash-attn --no-build-isolation``), each group
    with its flags, after everything they build against is installed."""
    provides = provides or {}
    pip = f"{python} -m pip install"
    plan = SetupPlan()
    to_install = []
    flagged: dict[tuple[str, ...], list[str]] = {}
    for req in requirements:
        if provided_by_image(req, provides):
            plan.skipped.append(req)
        elif build_flags and build_flags.get(req):
            flagged.setdefault(tuple(build_flags[req]), []).append(req)
        else:
            to_install.append(req)
    if plan.skipped:
        plan.reasons.append("already in the image: " + ", ".join(plan.skipped))
    options: list[str] = []
    for flag, url in index_options or []:
        if flag in ("--index-url", "--extra-index-url", "--find-links", "-f", "-i"):
            options += [flag, url]
    for path in constraints or []:
        options += ["-c", path]
    if to_install:
        plan.commands.append(" ".join([pip] + [shlex.quote(o) for o in options] +
                                      [shlex.quote(r) for r in to_install]))
    if install_package:
        target = "." if not extras else ".[" + ",".join(sorted(set(extras))) + "]"
        plan.commands.append(f"{pip} -e {shlex.quote(target)}")
    for flags, reqs in flagged.items():
        plan.commands.append(" ".join([pip] + [shlex.quote(o) for o in options] + [shlex.quote(f) for f in flags]
                                      + [shlex.quote(r) for r in reqs]))
        plan.reasons.append(f"{', '.join(reqs)} installed last with {' '.join(flags)}, as the repo's install steps say")
    return plan
