"""Does this machine match the spec? Checks over the probe's facts, each pass / warn / fail.

Every check is a small function of ``(spec, facts)`` returning :class:`Check` objects, so each
can be tested from a facts dict; :func:`validate` runs the probe (over SSH or locally) and all
checks. A cpu spec skips the GPU checks; anything failing makes ``gpu-lol validate`` exit 1.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gpu_lol.spec import EnvironmentSpec

PASS, WARN, FAIL = "pass", "warn", "fail"
GIB = 1024 ** 3
# Files bigger than this are compared by size only (hashing checkpoints would take minutes).
HASH_LIMIT_BYTES = 8 * 1024 * 1024
MIN_FREE_DISK_GIB = 5.0
# The oldest CUDA a torch build needs to carry kernels for a compute capability ("no kernel
# image is available for execution on the device" otherwise).
MIN_CUDA_FOR_CAPABILITY = {
    (7, 0): (9, 0), (7, 5): (10, 0), (8, 0): (11, 0), (8, 6): (11, 1), (8, 7): (11, 4),
    (8, 9): (11, 8), (9, 0): (11, 8), (10, 0): (12, 8), (12, 0): (12, 8),
}
MIN_CUDA_FOR_MAJOR = {9: (11, 8), 10: (12, 8), 11: (12, 8), 12: (12, 8)}
# CUDA 13 dropped Maxwell, Pascal and Volta: builds for it have no kernels below 7.5.
CUDA13_MIN_CAPABILITY = (7, 5)


@dataclass
class Check:
    name: str
    status: str  # pass | warn | fail
    reason: str
    details: Any = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["details"] is None:
            del data["details"]
        return data


@dataclass
class Validation:
    target: str | None  # None for --local
    spec: EnvironmentSpec
    spec_source: str
    facts: dict[str, Any]
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not failed(self.checks)

    def counts(self) -> dict[str, int]:
        return {status: sum(1 for c in self.checks if c.status == status) for status in (PASS, WARN, FAIL)}

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "local": self.target is None, "ok": self.ok,
                "spec_source": self.spec_source, "summary": self.counts(),
                "checks": [c.to_dict() for c in self.checks], "facts": self.facts}


def failed(checks: list[Check]) -> bool:
    return any(c.status == FAIL for c in checks)


# ---------------------------------------------------------------------------------------------
# Version helpers


def version_tuple(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    parts = []
    for piece in str(text).split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
        if digits != piece:
            break
    return tuple(parts) if parts else None


def _vtext(version: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in version)


def min_cuda_for(capability: str) -> tuple[int, int] | None:
    cap = version_tuple(capability)
    if not cap or len(cap) < 2:
        return None
    key = (cap[0], cap[1])
    if key in MIN_CUDA_FOR_CAPABILITY:
        return MIN_CUDA_FOR_CAPABILITY[key]
    return MIN_CUDA_FOR_MAJOR.get(cap[0])


def arch_list_supports(arch_list: list[str], capability: str) -> bool | None:
    """Whether a torch build's ``get_arch_list()`` runs on ``capability`` (None: cannot tell).

    A cubin for sm_XY runs on the same major with an equal or higher minor; PTX (compute_XY)
    is compiled at load time for any newer GPU.
    """
    cap = version_tuple(capability)
    if not arch_list or not cap or len(cap) < 2:
        return None
    for arch in arch_list:
        kind, _, number = arch.partition("_")
        digits = "".join(ch for ch in number if ch.isdigit())
        if len(digits) < 2:
            continue
        major, minor = int(digits[:-1]), int(digits[-1])
        if kind == "sm" and major == cap[0] and minor <= cap[1] and not number.endswith(("a", "f")):
            return True
        if kind == "sm" and (major, minor) == (cap[0], cap[1]):
            return True
        if kind == "compute" and (major, minor) <= (cap[0], cap[1]):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Checks


def check_gpu(spec: EnvironmentSpec, facts: dict[str, Any]) -> Check:
    gpu = facts.get("gpu") or {}
    if spec.is_cpu:
        return Check("gpu", PASS, "cpu workload: no GPU needed (GPU checks skipped)")
    want = f"{spec.gpu_count}x {spec.gpu_type}" if spec.gpu_type else f"{spec.gpu_count} GPU(s)"
    if not gpu.get("driver_found"):
        return Check("gpu", FAIL, f"no NVIDIA driver: nvidia-smi not found, but the spec needs {want}")
    if gpu.get("error"):
        return Check("gpu", FAIL, f"nvidia-smi failed: {gpu['error']}")
    count = int(gpu.get("count") or 0)
    if count == 0:
        return Check("gpu", FAIL, f"nvidia-smi lists no GPU, but the spec needs {want}")
    have = f"{count}x {gpu.get('name')}"
    if count < spec.gpu_count:
        return Check("gpu", FAIL, f"found {have}; the spec needs {spec.gpu_count}")
    if spec.gpu_type and gpu.get("catalog_id") and gpu["catalog_id"] != spec.gpu_type:
        return Check("gpu", WARN, f"found {have} ({gpu['catalog_id']}); the spec asks for {spec.gpu_type}")
    if spec.gpu_type and not gpu.get("catalog_id"):
        return Check("gpu", WARN, f"found {have}, not in gpu-lol's catalog; the spec asks for {spec.gpu_type}")
    return Check("gpu", PASS, f"found {have}" + (f" ({gpu['catalog_id']})" if gpu.get("catalog_id") else ""))


def check_vram(spec: EnvironmentSpec, facts: dict[str, Any]) -> Check:
    gpu = facts.get("gpu") or {}
    vram = gpu.get("vram_gb")
    need = float(spec.vram_required_gb or 0)
    if vram is None:
        return Check("vram", WARN, "nvidia-smi did not report the GPU memory")
    if need <= 0:
        return Check("vram", PASS, f"{vram:g} GiB per GPU (the spec sets no memory need)")
    # Cards report a little under their nominal size (an 80 GB H100 shows 79.6 GiB): compare at
    # the catalog's 1-GiB rounding.
    if vram + 0.5 >= need:
        return Check("vram", PASS, f"{vram:g} GiB per GPU >= {need:g} GiB needed")
    return Check("vram", FAIL, f"{vram:g} GiB per GPU < {need:g} GiB the spec needs: the work will not fit")


def _requires_torch(spec: EnvironmentSpec) -> bool:
    from gpu_lol.requirements_text import name_of

    return any(name_of(r) == "torch" for r in spec.requirements)


def check_torch(spec: EnvironmentSpec, facts: dict[str, Any]) -> Check:
    torch = facts.get("torch") or {}
    gpu = facts.get("gpu") or {}
    if not torch.get("installed"):
        if torch.get("error"):
            return Check("torch", FAIL, f"the torch check failed: {torch['error']}")
        if _requires_torch(spec):
            return Check("torch", FAIL, "PyTorch is required by the spec but not installed")
        return Check("torch", WARN, "PyTorch is not installed: cannot check that it sees the GPUs")
    if torch.get("error"):
        return Check("torch", FAIL, f"PyTorch is installed but does not import: {torch['error']}")
    version = torch.get("version")
    if not torch.get("cuda"):
        return Check("torch", FAIL, f"torch {version} is a CPU-only build: it cannot use the GPU",
                     )
    if not torch.get("cuda_available"):
        why = f": {torch['warning']}" if torch.get("warning") else ""
        return Check("torch", FAIL, f"torch {version} (CUDA {torch['cuda']}) cannot use the GPU{why}")
    seen = int(torch.get("device_count") or 0)
    need = spec.gpu_count
    if seen < need:
        visible = (facts.get("system") or {}).get("cuda_visible_devices")
        extra = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
        return Check("torch", FAIL, f"torch {version} sees {seen} GPU(s); the spec needs {need}{extra}")
    if seen < int(gpu.get("count") or 0):
        return Check("torch", WARN, f"torch {version} sees {seen} of {gpu['count']} GPUs")
    names = torch.get("names") or []
    return Check("torch", PASS, f"torch {version} (CUDA {torch['cuda']}) sees {seen} GPU(s)"
                 + (f": {names[0]}" if names else ""))


def check_cuda_driver(spec: EnvironmentSpec, facts: dict[str, Any]) -> Check | None:
    """The driver must support the CUDA version torch was built for."""
    torch = facts.get("torch") or {}
    gpu = facts.get("gpu") or {}
    built = version_tuple(torch.get("cuda"))
    driver = version_tuple(gpu.get("driver_cuda"))
    if not built:
        return None  # no CUDA torch: nothing to compare
    if not driver:
        return Check("cuda-driver", WARN, f"torch was built for CUDA {_vtext(built)}; the driver's CUDA "
                     "version is unknown (nvidia-smi did not print it)")
    label = f"driver {gpu.get('driver_version') or '?'} supports CUDA {_vtext(driver)}"
    if driver[0] < built[0]:
        return Check("cuda-driver", FAIL, f"{label} but torch {torch.get('version')} was built for CUDA "
                     f"{_vtext(built)}: upgrade the driver or install a torch built for CUDA {driver[0]}.x")
    if driver[:2] < built[:2]:
        return Check("cuda-driver", WARN, f"{label}, older than torch's CUDA {_vtext(built)}: it runs "
                     "through CUDA minor-version compatibility, but kernels that need a newer driver "
                     "(PTX JIT) fail")
    return Check("cuda-driver", PASS, f"{label} >= CUDA {_vtext(built)} torch was built for")


def check_compute_capability(spec: EnvironmentSpec, facts: dict[str, Any]) -> Check | None:
    """The torch build must have kernels for the GPU (the "no kernel image is available" trap)."""
    torch = facts.get("torch") or {}
    gpu = facts.get("gpu") or {}
    capability = gpu.get("compute_capability")
    built = version_tuple(torch.get("cuda"))
    if not capability or not built:
        return None
    cap = version_tuple(capability)
    name = gpu.get("name") or "the GPU"
    label = f"{name} (compute capability {capability})"
    supported = arch_list_supports(torch.get("arch_list") or [], capability)
    if supported is False:
        archs = " ".join(torch.get("arch_list") or [])
        return Check("compute-capability", FAIL, f"torch {torch.get('version')} has no kernels for {label} "
                     f"(built for: {archs}): CUDA calls fail with 'no kernel image is available'")
    need = min_cuda_for(capability)
    if need and built[:2] < need:
        return Check("compute-capability", FAIL, f"{label} needs a torch built with CUDA >= {_vtext(need)}; "
                     f"torch {torch.get('version')} was built with CUDA {_vtext(built)} "
                     "('no kernel image is available')")
    if cap and built[0] >= 13 and cap[:2] < CUDA13_MIN_CAPABILITY:
        return Check("compute-capability", FAIL, f"CUDA 13 builds dropped support for {label}: install a "
                     "torch built for CUDA 12.x")
    if supported:
        return Check("compute-capability", PASS, f"torch {torch.get('version')} has kernels for {label}")
    return Check("compute-capability", PASS, f"{label} is supported by CUDA {_vtext(built)} builds")


def _marker_environment(facts: dict[str, Any]) -> dict[str, str]:
    from packaging.markers import default_environment

    env = dict(default_environment())
    version = (facts.get("python") or {}).get("version")
    if version:
        env["python_full_version"] = version
        env["python_version"] = ".".join(version.split(".")[:2])
    env.update({"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"})
    return env


def check_packages(spec: EnvironmentSpec, facts: dict[str, Any]) -> Check:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    if not spec.requirements:
        return Check("packages", PASS, "the spec lists no packages")
    installed = ((facts.get("packages") or {}).get("installed")) or {}
    installed = {canonicalize_name(k): v for k, v in installed.items()}
    env = _marker_environment(facts)
    problems: list[str] = []
    unverified: list[str] = []
    details: list[dict[str, Any]] = []
    ok = 0
    for text in spec.requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            unverified.append(f"{text} (a URL, not checked)")
            details.append({"requirement": text, "status": WARN, "installed": None})
            continue
        if req.marker is not None and not req.marker.evaluate(env):
            details.append({"requirement": text, "status": PASS, "installed": None, "note": "marker does not apply"})
            ok += 1
            continue
        have = installed.get(canonicalize_name(req.name))
        if have is None:
            problems.append(f"{req.name} is not installed")
            details.append({"requirement": text, "status": FAIL, "installed": None})
            continue
        if req.url:
            ok += 1
            details.append({"requirement": text, "status": PASS, "installed": have})
            continue
        try:
            satisfied = req.specifier.contains(Version(have), prereleases=True) if str(req.specifier) else True
        except InvalidVersion:
            unverified.append(f"{req.name} {have} (version not comparable)")
            details.append({"requirement": text, "status": WARN, "installed": have})
            continue
        if satisfied:
            ok += 1
            details.append({"requirement": text, "status": PASS, "installed": have})
        else:
            problems.append(f"{req.name} {have} does not satisfy {req.specifier}")
            details.append({"requirement": text, "status": FAIL, "installed": have})
    total = len(spec.requirements)
    if problems:
        shown = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
        return Check("packages", FAIL, f"{len(problems)} of {total} required packages wrong: {shown}", details)
    if unverified:
        return Check("packages", WARN, f"{ok} of {total} verified; not checked: {', '.join(unverified[:4])}", details)
    return Check("packages", PASS, f"all {total} required packages installed and satisfy their pins", details)


def check_python(spec: EnvironmentSpec, facts: dict[str, Any]) -> Check | None:
    have = (facts.get("python") or {}).get("version")
    if not spec.python_version or not have:
        return None
    want = version_tuple(spec.python_version) or ()
    got = version_tuple(have) or ()
    if got[:len(want)] == want[:len(got)] and got[:2] == want[:2]:
        return Check("python", PASS, f"Python {have} matches {spec.python_version}")
    return Check("python", WARN, f"Python {have}; the spec says {spec.python_version}")


def check_code_sync(facts: dict[str, Any], *, local: bool, target_name: str | None = None) -> Check:
    workdir = facts.get("workdir") or {}
    if local:
        return Check("code", PASS, f"local run: the workdir is {workdir.get('path') or 'this directory'}")
    sync_hint = f"gpu-lol exec {target_name} --sync -- true" if target_name else "gpu-lol exec --sync -- true"
    if not workdir.get("exists"):
        return Check("code", FAIL, f"the workdir {workdir.get('path')} does not exist: sync it with `{sync_hint}`")
    files = workdir.get("files")
    if files is None:
        return Check("code", WARN, "the file comparison did not run")
    missing, different = files.get("missing") or [], files.get("different") or []
    checked = files.get("checked", 0)
    if not missing and not different:
        return Check("code", PASS, f"all {checked} synced files match the local repo")
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''})")
    if different:
        parts.append(f"{len(different)} different ({', '.join(different[:3])}{' ...' if len(different) > 3 else ''})")
    return Check("code", WARN, f"of {checked} files, {' and '.join(parts)} from the local repo: "
                 f"sync with `{sync_hint}`", {"missing": missing, "different": different})


def check_disk(spec: EnvironmentSpec, facts: dict[str, Any]) -> Check:
    disk = ((facts.get("workdir") or {}).get("disk")) or {}
    if "free" not in disk:
        return Check("disk", WARN, f"free disk unknown{': ' + disk['error'] if disk.get('error') else ''}")
    free = disk["free"] / GIB
    total = disk.get("total", 0) / GIB
    need = MIN_FREE_DISK_GIB
    why = ""
    params = spec.model.params_b if spec.model else None
    if params:
        weights = float(params) * 2  # 16-bit weights, GB per billion parameters
        if weights > need:
            need = weights
            why = f" ({spec.model.name or 'the model'}'s 16-bit weights)"
    where = disk.get("path")
    if free < need:
        return Check("disk", FAIL, f"{free:.1f} GiB free on {where}; need at least {need:.0f} GiB{why}")
    if free < 2 * need:
        return Check("disk", WARN, f"{free:.1f} GiB free of {total:.0f} GiB on {where}: tight for "
                     f"downloads and checkpoints (want {2 * need:.0f} GiB{why})")
    return Check("disk", PASS, f"{free:.1f} GiB free of {total:.0f} GiB on {where}")


def run_checks(spec: EnvironmentSpec, facts: dict[str, Any], *, local: bool,
               target_name: str | None = None) -> list[Check]:
    checks = [check_gpu(spec, facts)]
    gpu = facts.get("gpu") or {}
    if not spec.is_cpu and gpu.get("count"):
        checks.append(check_vram(spec, facts))
        checks.append(check_torch(spec, facts))
        for extra in (check_cuda_driver(spec, facts), check_compute_capability(spec, facts)):
            if extra is not None:
                checks.append(extra)
    checks.append(check_packages(spec, facts))
    python = check_python(spec, facts)
    if python is not None:
        checks.append(python)
    checks.append(check_code_sync(facts, local=local, target_name=target_name))
    checks.append(check_disk(spec, facts))
    return checks


# ---------------------------------------------------------------------------------------------
# Orchestration


def expected_files(repo: Path) -> dict[str, list]:
    """``{relative path: [size, sha256 or None]}`` of what a sync sends from ``repo``."""
    from gpu_lol.launch import sync

    plan = sync.plan(repo)
    out: dict[str, list] = {}
    for rel, size in plan.files:
        path = plan.root / rel
        if path.is_symlink():
            out[rel] = [None, None]
            continue
        digest = None
        if size <= HASH_LIMIT_BYTES:
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                digest = None
        out[rel] = [size, digest]
    return out


def local_spec(repo: Path) -> tuple[EnvironmentSpec, str]:
    """The spec for ``--local``: ``.gpu-lol.yaml`` where the repo has one, the analysis filling
    the fields it does not set (``analyze`` applies the file itself)."""
    from gpu_lol.analyzer import analyze
    from gpu_lol.config import config_file

    spec = analyze(repo, use_llm=False).spec
    path = config_file.find(repo)
    if path is None:
        return spec, "analysis of the repo"
    return spec, f"{path.name} (the analysis fills the fields it does not set)"


def target_spec(target) -> tuple[EnvironmentSpec, str]:
    if target.spec:
        return EnvironmentSpec.from_dict(target.spec), "the spec it was launched with"
    return local_spec(Path(target.repo))


def validate(target=None, *, repo: Path | None = None) -> Validation:
    """Probe ``target`` (or this machine when None) and check it against its spec."""
    from gpu_lol.machine import probe_facts

    if target is None:
        repo = Path(repo or Path.cwd()).resolve()
        spec, source = local_spec(repo)
        raw = probe_facts.run_probe(None, workdir=str(repo))
        facts = probe_facts.facts_from_report(raw)
        return Validation(None, spec, source, facts, run_checks(spec, facts, local=True))
    from gpu_lol.machine import remote

    spec, source = target_spec(target)
    files = expected_files(Path(target.repo)) if Path(target.repo).is_dir() else None
    raw = probe_facts.run_probe(target, workdir=remote.workdir_of(target), files=files)
    facts = probe_facts.facts_from_report(raw)
    checks = run_checks(spec, facts, local=False, target_name=target.name)
    if files is None:
        checks = [c if c.name != "code" else Check("code", WARN, f"the local repo {target.repo} is gone: "
                                                   "cannot compare files") for c in checks]
    return Validation(target.name, spec, source, facts, checks)
