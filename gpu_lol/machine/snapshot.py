"""A running machine -> EnvironmentSpec: what ``gpu-lol snapshot`` writes to ``.gpu-lol.yaml``.

From the probe's facts: the GPU (the ``nvidia-smi`` name mapped to our catalog id), count and
VRAM, the Python version, and as requirements the packages installed beyond the base (exact
pins; editable, local-path and ``file://`` installs left out). Fields the machine cannot tell
(providers, autostop, disk, envs, setup commands...) come from the spec the target was launched
with, or for ``--local`` from ``.gpu-lol.yaml`` and the analysis. The result is a complete spec,
so ``gpu-lol resume`` can launch exactly it.

"Beyond the base": on a host target (or any virtualenv) the packages in the virtualenv; on a
cloud machine the packages installed after the machine (container) started, which excludes
what the image shipped. The CUDA/driver facts go into the file's header comment.
"""

from __future__ import annotations

import copy
import difflib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_lol.spec import EnvironmentSpec

TORCH_FAMILY = ("torch", "torchvision", "torchaudio")


@dataclass
class Snapshot:
    spec: EnvironmentSpec
    facts: dict[str, Any]
    where: str  # "gpu-lol-x (root@box:22)" or "this machine"
    base_source: str
    header: str
    notes: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)

    def yaml(self) -> str:
        from gpu_lol.config.config_file import spec_to_yaml

        return spec_to_yaml(self.spec, self.header)


def _strip_local_label(requirement: str) -> tuple[str, bool]:
    name, sep, version = requirement.partition("==")
    if sep and "+" in version:
        return f"{name}=={version.split('+', 1)[0]}", True
    return requirement, False


def requirements_beyond_base(facts: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(exact pins of the packages installed beyond the base, notes explaining the choice)."""
    from gpu_lol.machine.probe_facts import TOOLING
    from gpu_lol.requirements_text import is_valid

    packages = facts.get("packages") or {}
    pins = packages.get("pins") or []
    python = facts.get("python") or {}
    system = facts.get("system") or {}
    notes: list[str] = []
    if python.get("in_venv"):
        chosen = [p for p in pins if p.get("where") in ("venv", "user")]
        notes.append(f"requirements: the {len(chosen)} packages installed in the virtualenv (the "
                     "system's packages are the base)")
    else:
        started = system.get("pid1_start") or system.get("boot_time")
        if started:
            chosen = [p for p in pins if p.get("where") == "user"
                      or (p.get("installed_at") is not None and p["installed_at"] > started)]
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
            notes.append(f"requirements: the {len(chosen)} packages installed since the machine started "
                         f"({when}); what the image shipped is the base")
        else:
            chosen = [p for p in pins if p.get("where") == "user"]
            notes.append("requirements: cannot tell the image's packages apart on this machine; only "
                         "user-site packages are listed")
    out: list[str] = []
    for pin in chosen:
        if pin.get("name") in TOOLING:
            continue
        requirement, stripped = _strip_local_label(pin["requirement"])
        if stripped:
            notes.append(f"{pin['requirement']} is pinned as {requirement}: the local build label needs "
                         "its own package index")
        if not is_valid(requirement):
            notes.append(f"left out {requirement!r}: not a requirement pip can take")
            continue
        out.append(requirement)
    return sorted(set(out), key=str.lower), notes


def _image_rows() -> dict[str, Any]:
    from gpu_lol.data import load_yaml

    return load_yaml("images.yaml")


def _torch_versions(facts: dict[str, Any]) -> dict[str, str]:
    installed = ((facts.get("packages") or {}).get("installed")) or {}
    out = {}
    for name in TORCH_FAMILY:
        version = installed.get(name)
        if version:
            out[name] = str(version).split("+", 1)[0]
    torch_version = (facts.get("torch") or {}).get("version")
    if torch_version and "torch" not in out:
        out["torch"] = torch_version.split("+", 1)[0]
    return out


def choose_image(facts: dict[str, Any], base_image: str, *, cpu: bool, python: str | None,
                 image_known: bool) -> tuple[str, dict[str, str], list[str]]:
    """(image, package versions it ships, notes). Keeps the machine's own image when known."""
    table = _image_rows()
    notes: list[str] = []
    if image_known and base_image:
        return base_image, {}, notes
    torch = _torch_versions(facts)
    if cpu:
        image = table["cpu_template"].format(python=python or table.get("default_python", "3.11"))
        return image, {}, [f"base_image: {image} (no GPU on the machine)"]
    if torch.get("torch"):
        for row in table.get("pytorch", []):
            if row.get("torch") == torch["torch"]:
                return row["image"], {"torch": row["torch"], "torchvision": row.get("torchvision", "")}, \
                    [f"base_image: {row['image']} ships torch {row['torch']} like the machine"]
    if base_image:
        return base_image, {}, notes
    row = table["pytorch"][0]
    notes.append(f"base_image: {row['image']} (no image in gpu-lol's table ships the machine's torch "
                 f"{torch.get('torch', '?')}; it is pinned in requirements)")
    return row["image"], {"torch": row["torch"], "torchvision": row.get("torchvision", "")}, notes


def spec_from_facts(facts: dict[str, Any], base: EnvironmentSpec, *,
                    image_known: bool = False) -> tuple[EnvironmentSpec, list[str]]:
    """The spec this machine amounts to; ``base`` supplies what the machine cannot tell.

    ``image_known``: ``base.base_image`` is the image the machine runs (a cloud target launched
    by gpu-lol), so the packages it ships are the base; otherwise an image is chosen from the
    table and the torch family is pinned when the image ships other versions.
    """
    spec = copy.deepcopy(base)
    notes: list[str] = []
    gpu = facts.get("gpu") or {}
    if gpu.get("count"):
        catalog_id = gpu.get("catalog_id")
        if catalog_id:
            spec.gpu_type = catalog_id
        else:
            notes.append(f"gpu_type: '{gpu.get('name')}' is not in gpu-lol's catalog; kept "
                         f"{base.gpu_type or 'none'}")
        spec.gpu_count = int(gpu["count"])
        vram = gpu.get("vram_gb")
        if vram:
            observed = float(round(vram))
            if not (0 < base.vram_required_gb <= vram + 0.5):
                spec.vram_required_gb = observed
        if spec.workload_type == "cpu":
            spec.workload_type = "interactive"
            notes.append("workload_type: interactive (the spec said cpu, the machine has a GPU)")
    elif not base.is_cpu:
        # A laptop or CPU box snapshotting a GPU repo: the packages are worth pinning, the
        # machine's lack of a GPU is not the repo's need.
        notes.append(f"this machine has no GPU: kept the spec's {base.workload_type} on "
                     f"{base.gpu_type} x{base.gpu_count} ({base.vram_required_gb:g} GB); the machine "
                     "cannot run it as it is")
    else:
        spec.workload_type = "cpu"
        spec.gpu_type = None
        spec.gpu_count = 0
        spec.vram_required_gb = 0.0
    version = (facts.get("python") or {}).get("version")
    if version:
        spec.python_version = ".".join(version.split(".")[:2])
    requirements, req_notes = requirements_beyond_base(facts)
    notes += req_notes
    image, ships, image_notes = choose_image(facts, base.base_image, cpu=spec.is_cpu,
                                             python=spec.python_version, image_known=image_known)
    spec.base_image = image
    notes += image_notes
    if not image_known:
        pinned = {r.split("==")[0].lower() for r in requirements}
        for name, observed in _torch_versions(facts).items():
            if name in pinned or ships.get(name) == observed:
                continue
            requirements.append(f"{name}=={observed}")
        requirements = sorted(set(requirements), key=str.lower)
    spec.requirements = requirements
    spec.setup_commands, setup_notes = _setup_with_pins(base.setup_commands, requirements)
    notes += setup_notes
    return spec, notes


_INSTALL_RE = None


def _is_install_command(command: str) -> bool:
    import re

    global _INSTALL_RE
    if _INSTALL_RE is None:
        _INSTALL_RE = re.compile(r"(^|[\s;&|(])(pip3?|uv\s+pip|python3?\s+-m\s+pip|conda|mamba|micromamba)"
                                 r"\s+install\b")
    return bool(_INSTALL_RE.search(command))


def _installs_local_code(command: str) -> bool:
    """An install of the repo's own code (``pip install -e .``, ``pip install ./pkg``), which no
    pin can stand for: the snapshot leaves editable and local installs out of its pins."""
    import shlex

    try:
        words = shlex.split(command)
    except ValueError:
        return False
    for i, word in enumerate(words):
        if word in ("-e", "--editable"):
            return True
        if word.startswith((".", "/", "~")) and i and words[i - 1] not in ("-r", "-c", "--requirement",
                                                                        "--constraint", "-f", "--find-links"):
            return True
    return False


def _setup_with_pins(commands: list[str], requirements: list[str]) -> tuple[list[str], list[str]]:
    """Setup commands that install exactly the pins.

    When a spec has setup commands they are the complete install (requirements are then not
    installed separately), so the snapshot's package installs become one ``pip install`` of
    the exact pins and the other commands (downloads, builds, and installs of the repo's own
    code such as ``pip install -e .``) stay, in order.
    """
    if not commands:
        return [], []
    from gpu_lol.launch.skypilot import pip_install_command

    kept = [c for c in commands if not _is_install_command(c) or _installs_local_code(c)]
    dropped = [c for c in commands if c not in kept]
    out = ([pip_install_command(requirements)] if requirements else []) + kept
    notes = []
    if dropped:
        notes.append(f"setup_commands: {len(dropped)} install command(s) replaced by one pip install of "
                     "the exact pins; other commands kept")
    return out, notes


def header_for(snapshot_facts: dict[str, Any], where: str) -> str:
    from gpu_lol.machine.probe_facts import gpu_summary

    gpu = snapshot_facts.get("gpu") or {}
    torch = snapshot_facts.get("torch") or {}
    python = snapshot_facts.get("python") or {}
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(snapshot_facts.get("time") or time.time()))
    lines = [f"gpu-lol snapshot of {where}, {when}"]
    machine = gpu_summary(snapshot_facts)
    if gpu.get("count"):
        machine += f", compute capability {gpu.get('compute_capability') or '?'}"
        machine += f"; driver {gpu.get('driver_version') or '?'} (CUDA {gpu.get('driver_cuda') or '?'})"
    lines.append(f"machine: {machine}")
    stack = [f"Python {python.get('version') or '?'}"]
    if torch.get("installed") and torch.get("version"):
        stack.append(f"torch {torch['version']} (CUDA {torch.get('cuda') or 'none'})")
    nvcc = (snapshot_facts.get("nvcc") or {}).get("cuda")
    if nvcc:
        stack.append(f"nvcc {nvcc}")
    lines.append("stack: " + ", ".join(stack))
    return "\n".join(lines)


def take(target=None, *, repo: Path | None = None) -> Snapshot:
    """Probe ``target`` (this machine when None) and build its spec."""
    from gpu_lol.machine import probe_facts, validator

    if target is None:
        repo = Path(repo or Path.cwd()).resolve()
        base, source = validator.local_spec(repo)
        python, python_from = probe_facts.local_python(repo)
        raw = probe_facts.run_probe(None, workdir=str(repo), python=python)
        where = "this machine"
        image_known = False
        first_notes = [f"packages: the environment of {python_from}"]
    else:
        from gpu_lol.launch.state import KIND_SKY
        from gpu_lol.machine import remote

        base, source = validator.target_spec(target)
        raw = probe_facts.run_probe(target, workdir=remote.workdir_of(target))
        where = remote.endpoint(target).label
        image_known = target.kind == KIND_SKY and bool(base.base_image)
        first_notes = []
    facts = probe_facts.facts_from_report(raw)
    spec, notes = spec_from_facts(facts, base, image_known=image_known)
    notes = first_notes + notes
    left_out = list((facts.get("packages") or {}).get("left_out") or [])
    if left_out:
        notes.append(f"left out {len(left_out)} editable/local installs: "
                     + ", ".join(left_out[:3]) + (" ..." if len(left_out) > 3 else ""))
    return Snapshot(spec=spec, facts=facts, where=where, base_source=source,
                    header=header_for(facts, where), notes=notes, left_out=left_out)


def unchanged(snapshot: Snapshot, path: Path) -> bool:
    """True when ``path`` already holds exactly this spec (every field set to the same value)."""
    from gpu_lol.config import config_file

    if not path.is_file():
        return False
    data = config_file.load(path).data
    new = snapshot.spec.to_dict()
    return all(k in data for k in new) and EnvironmentSpec.from_dict(data).to_dict() == new


def diff(path: Path, new_text: str) -> str:
    """Unified diff of the file on disk against what the snapshot would write."""
    try:
        old = path.read_text(encoding="utf-8")
    except OSError:
        old = ""
    lines = difflib.unified_diff(old.splitlines(keepends=True), new_text.splitlines(keepends=True),
                                 fromfile=f"{path} (now)", tofile=f"{path} (snapshot)")
    return "".join(lines)
