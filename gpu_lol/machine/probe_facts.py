"""Turn the probe's raw outputs into facts: GPUs, driver and CUDA versions, torch, packages.

The probe (``gpu_lol/machine/probe/probe.py``) runs on the machine and only collects raw text
(``nvidia-smi``, ``nvcc --version``, a torch one-liner, ``pip freeze``) plus a few stdlib facts;
every parser lives here, on our side, where the real H100 outputs in ``../shared/fixtures/h100``
test it. ``facts_from_report(raw)`` is the one entry point the validator and snapshot use.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

MIB = 1024 * 1024
GIB = 1024 ** 3
# pip tooling is never a project requirement.
TOOLING = {"pip", "setuptools", "wheel", "distribute"}

_UNIT_RE = re.compile(r"\s*(MiB|GiB|MB|GB|%|W)\s*$", re.I)
_CUDA_BANNER_RE = re.compile(r"CUDA Version:\s*([0-9]+\.[0-9]+)")
_DRIVER_BANNER_RE = re.compile(r"Driver Version:\s*([0-9][0-9.]*)")
_NVCC_RE = re.compile(r"release\s+([0-9]+\.[0-9]+)")
_TORCH_CU_RE = re.compile(r"\+cu([0-9]+)$")
_URL_CREDENTIALS_RE = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<cred>[^/@\s]+)@", re.I)


# ---------------------------------------------------------------------------------------------
# The probe script


def probe_source() -> str:
    return resources.files("gpu_lol.machine.probe").joinpath("probe.py").read_text(encoding="utf-8")


def probe_stdin(workdir: str | None = None, files: dict[str, list] | None = None) -> str:
    """The program to feed to ``python3 -``: the input line, then the probe."""
    data: dict[str, Any] = {}
    if workdir is not None:
        data["workdir"] = workdir
    if files is not None:
        data["files"] = files
    return f"GPU_LOL_PROBE_INPUT = {json.dumps(json.dumps(data))}\n" + probe_source()


# The interpreter the probe runs under on a machine: the login environment's python3 (the host's
# virtualenv is active by then), falling back to python and /usr/bin/python3. Each is run first
# (`-c` reads nothing from stdin, which holds the probe): `command -v` also finds a pyenv shim
# for a Python that is not installed, which would fail with "pyenv: python3: command not found".
REMOTE_PYTHON = ("for p in python3 python /usr/bin/python3; do "
                 "if command -v \"$p\" >/dev/null 2>&1 && \"$p\" -c 'import sys' >/dev/null 2>&1; then "
                 "exec \"$p\" -; fi; done; "
                 "echo 'gpu-lol: no working python3 on this machine' >&2; exit 127")
PROBE_TIMEOUT_S = 300


def run_probe(target=None, *, workdir: str | None = None, files: dict[str, list] | None = None,
              python: str | None = None, timeout: float = PROBE_TIMEOUT_S) -> dict[str, Any]:
    """Run the probe on ``target`` over SSH (or here when ``target`` is None) -> raw report.

    Locally it runs under ``python`` (default: :func:`local_python`, the repo's environment,
    never gpu-lol's own virtualenv) in ``workdir``.
    """
    import subprocess

    from gpu_lol.errors import OperationError

    stdin = probe_stdin(workdir, files)
    if target is None:
        exe = python or local_python(Path(workdir) if workdir else None)[0]
        try:
            proc = subprocess.run([exe, "-"], input=stdin, capture_output=True, text=True,
                                  timeout=timeout, cwd=workdir or None, errors="replace")
        except subprocess.TimeoutExpired:
            raise OperationError(f"the probe did not finish within {timeout:.0f}s", None) from None
        except OSError as exc:
            raise OperationError(f"cannot run {exe}: {exc.strerror or exc}", None) from None
        returncode, stdout, stderr, where = proc.returncode, proc.stdout, proc.stderr, "this machine"
    else:
        from gpu_lol.machine import remote

        result = remote.capture(target, REMOTE_PYTHON, input=stdin, timeout=timeout, cd="try")
        returncode, stdout, stderr, where = result.returncode, result.stdout, result.stderr, target.name
    try:
        return parse_report(stdout)
    except ValueError:
        last = (stderr.strip().splitlines() or [f"exit {returncode}"])[-1]
        raise OperationError(f"the probe failed on {where}: {last}",
                             "it needs Python 3.6+ as python3 on the machine") from None


def _own_prefix() -> Path | None:
    """gpu-lol's own virtualenv (None when gpu-lol runs from a base interpreter)."""
    import sys

    return Path(sys.prefix).resolve() if sys.prefix != sys.base_prefix else None


def _inside(path: Path, prefix: Path | None) -> bool:
    """Whether ``path`` lies in ``prefix``. A virtualenv's ``bin/python`` is a symlink to the
    base interpreter, so only the folders on the way are resolved, not the file itself."""
    if prefix is None:
        return False
    try:
        where = path.resolve() if path.is_dir() else path.parent.resolve() / path.name
    except OSError:
        return False
    return where == prefix or prefix in where.parents


def local_python(repo: Path | None) -> tuple[str, str]:
    """(interpreter, where it came from) holding the repo's own environment on this machine.

    Never gpu-lol's own virtualenv, whose packages are gpu-lol's dependencies, not the repo's.
    In order: an activated virtualenv or conda environment, a ``.venv``/``venv``/``env`` in the
    repo, then ``python3``/``python`` on PATH outside gpu-lol's virtualenv.
    """
    import os
    import shutil

    from gpu_lol.errors import OperationError

    own = _own_prefix()
    candidates: list[tuple[Path, str]] = []
    for var, label in (("VIRTUAL_ENV", "the activated virtualenv"), ("CONDA_PREFIX", "the active conda environment")):
        value = os.environ.get(var)
        if value:
            candidates.append((Path(value) / "bin" / "python", f"{label} ({value})"))
    if repo is not None:
        for name in (".venv", "venv", "env"):
            candidates.append((repo / name / "bin" / "python", f"the repo's {name}/"))
    path_dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    kept = [d for d in path_dirs if not _inside(Path(d), own)]
    for name in ("python3", "python"):
        found = shutil.which(name, path=os.pathsep.join(kept))
        if found:
            candidates.append((Path(found), f"{name} on PATH ({found})"))
    for exe, why in candidates:
        if exe.is_file() and os.access(exe, os.X_OK) and not _inside(exe, own):
            return str(exe), why
    raise OperationError(
        "found no Python for the repo on this machine outside gpu-lol's own virtualenv",
        "activate the repo's environment (or create .venv in the repo), then run it again",
    )


def parse_report(stdout: str) -> dict[str, Any]:
    """The probe's JSON object (the last line that is one); ValueError when there is none."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            data = json.loads(line)
            if isinstance(data, dict) and "probe_version" in data:
                return data
    raise ValueError("the probe printed no report")


# ---------------------------------------------------------------------------------------------
# nvidia-smi


def _strip_unit(value: str) -> str:
    return _UNIT_RE.sub("", value.strip())


def _number(value: str) -> float | None:
    try:
        return float(_strip_unit(value))
    except ValueError:
        return None


def parse_nvidia_smi_csv(text: str, fields: list[str] | None = None) -> list[dict[str, str]]:
    """Rows of ``nvidia-smi --query-gpu=... --format=csv[,noheader][,nounits]``.

    With a header line the columns come from it (``memory.total [MiB]`` becomes
    ``memory.total``); without one, pass the queried ``fields``. Units are stripped.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    first = [cell.strip() for cell in lines[0].split(",")]
    if fields is None:
        if "name" not in first:
            raise ValueError("no header line; pass the queried fields")
        fields = [re.sub(r"\s*\[.*\]$", "", cell) for cell in first]
        lines = lines[1:]
    rows = []
    for line in lines:
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != len(fields):
            continue  # an error line, not a row
        rows.append({field: _strip_unit(cell) for field, cell in zip(fields, cells)})
    return rows


def parse_nvidia_smi_banner(text: str) -> dict[str, str | None]:
    """Driver version and the highest CUDA version the driver supports, from ``nvidia-smi``."""
    driver = _DRIVER_BANNER_RE.search(text or "")
    cuda = _CUDA_BANNER_RE.search(text or "")
    return {"driver_version": driver.group(1) if driver else None,
            "cuda_version": cuda.group(1) if cuda else None}


def gpu_devices(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    devices = []
    for row in rows:
        memory = _number(row.get("memory.total", ""))
        used = _number(row.get("memory.used", ""))
        cap = row.get("compute_cap") or None
        if cap in ("[N/A]", "N/A"):
            cap = None
        devices.append({
            "name": row.get("name", "").strip(),
            "memory_mib": int(memory) if memory is not None else None,
            "memory_used_mib": int(used) if used is not None else None,
            "vram_gb": round(memory / 1024, 1) if memory is not None else None,
            "compute_capability": cap,
            "driver_version": row.get("driver_version") or None,
        })
    return devices


def catalog_id_for(nvidia_smi_name: str) -> str | None:
    """gpu-lol's GPU id for an ``nvidia-smi`` name ("NVIDIA H100 80GB HBM3" -> "H100-SXM")."""
    from gpu_lol.sizing import catalog

    gpu = catalog.gpu_for_nvidia_smi_name(nvidia_smi_name)
    return gpu.id if gpu is not None else None


# ---------------------------------------------------------------------------------------------
# CUDA toolkit and torch


def parse_nvcc_version(text: str) -> str | None:
    match = _NVCC_RE.search(text or "")
    return match.group(1) if match else None


def cuda_from_torch_version(version: str | None) -> str | None:
    """The CUDA a torch wheel was built for, from its local label ("2.11.0+cu130" -> "13.0")."""
    match = _TORCH_CU_RE.search(version or "")
    if not match:
        return None
    digits = match.group(1)
    return f"{digits[:-1]}.{digits[-1]}" if len(digits) >= 2 else None


def parse_torch_report(text: str) -> dict[str, Any]:
    """The probe's torch one-liner output.

    Line 1: ``sys.version``; line 2: ``torch.__version__ torch.version.cuda is_available
    device-name total-memory`` (or ``IMPORT-ERROR Type: message``); line 3 (optional): JSON with
    per-device details and the build's architecture list.
    """
    out: dict[str, Any] = {"installed": False, "error": None, "python": None, "version": None,
                           "cuda": None, "cuda_available": False, "device_count": 0, "names": [],
                           "capabilities": [], "memory": [], "arch_list": []}
    lines = [line.rstrip() for line in (text or "").splitlines() if line.strip()]
    if lines:
        out["python"] = lines[0].split()[0]
    if len(lines) < 2:
        out["error"] = "no output from the torch check"
        return out
    second = lines[1]
    if second.startswith("IMPORT-ERROR"):
        message = second[len("IMPORT-ERROR"):].strip()
        if message.startswith("ModuleNotFoundError") and "'torch'" in message:
            out["error"] = None
        else:
            out["installed"] = True  # present but broken
            out["error"] = message
        return out
    tokens = second.split()
    if len(tokens) < 5:
        out["error"] = f"unexpected torch output: {second[:200]}"
        return out
    out["installed"] = True
    out["version"] = tokens[0]
    out["cuda"] = None if tokens[1] == "None" else tokens[1]
    out["cuda_available"] = tokens[2] == "True"
    name = " ".join(tokens[3:-1])
    memory = int(tokens[-1]) if tokens[-1].isdigit() else 0
    if out["cuda_available"]:
        out["device_count"] = 1
        out["names"] = [name]
        out["memory"] = [memory]
    if len(lines) >= 3:
        try:
            extra = json.loads(lines[2])
        except ValueError:
            extra = {}
        for key in ("device_count", "names", "capabilities", "memory", "arch_list"):
            if key in extra:
                out[key] = extra[key]
    if out["cuda"] is None:
        out["cuda"] = cuda_from_torch_version(out["version"])
    return out


# ---------------------------------------------------------------------------------------------
# Packages


def redact_url(text: str) -> str:
    """Hide credentials in URLs (``https://user:token@host`` -> ``https://***@host``)."""
    return _URL_CREDENTIALS_RE.sub(lambda m: m.group("scheme") + "***@", text)


def has_credentials(text: str) -> bool:
    return bool(_URL_CREDENTIALS_RE.search(text))


def parse_pip_freeze(text: str) -> tuple[list[dict[str, str]], list[str]]:
    """``pip freeze`` lines -> (pins, left_out).

    pins: ``{"name", "version", "requirement"}`` for ``name==version`` lines and for direct
    references to remote URLs (kept as written). left_out: editable installs (``-e``), local
    paths and ``file://`` references (they cannot be reproduced elsewhere) and URLs that carry
    credentials (never written anywhere), shown redacted.
    """
    pins: list[dict[str, str]] = []
    left_out: list[str] = []
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-e ", "--editable")):
            left_out.append(redact_url(line))
            continue
        if line.startswith("-"):
            continue  # pip options (e.g. -i index) are not packages
        if " @ " in line:
            name, _, url = line.partition(" @ ")
            url = url.strip()
            if url.startswith("file:") or url.startswith("/") or has_credentials(url):
                left_out.append(redact_url(line))
                continue
            pins.append({"name": canonicalize_name(name.strip()), "version": "", "requirement": line})
            continue
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(===|==)\s*([^\s;]+)$", line)
        if match:
            pins.append({"name": canonicalize_name(match.group(1)), "version": match.group(3),
                         "requirement": f"{match.group(1)}{match.group(2)}{match.group(3)}"})
        else:
            left_out.append(redact_url(line))
    return pins, left_out


def _dist_is_local(dist: dict[str, Any]) -> bool:
    direct = dist.get("direct_url") or {}
    if not isinstance(direct, dict):
        return False
    if (direct.get("dir_info") or {}).get("editable"):
        return True
    return str(direct.get("url", "")).startswith("file:")


def parse_os_release(text: str | None) -> dict[str, str]:
    out = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"')
    return out


# ---------------------------------------------------------------------------------------------
# Everything together


def _section_error(section: dict[str, Any] | None) -> str | None:
    if not section:
        return None
    if section.get("error"):
        return str(section["error"])
    if section.get("rc") not in (0, None):
        lines = (section.get("stderr") or section.get("stdout") or "").strip().splitlines()
        return lines[-1].strip() if lines else f"exit {section.get('rc')}"
    return None


def facts_from_report(raw: dict[str, Any]) -> dict[str, Any]:
    """Normalized facts (plain JSON data) from one probe report."""
    python = raw.get("python") or {}
    system = raw.get("system") or {}
    os_release = parse_os_release(system.get("os_release"))
    facts: dict[str, Any] = {
        "probe_version": raw.get("probe_version"),
        "time": raw.get("time"),
        "python": {"version": python.get("version"), "executable": python.get("executable"),
                   "in_venv": bool(python.get("in_venv"))},
        "system": {"hostname": system.get("hostname"), "os": os_release.get("PRETTY_NAME"),
                   "boot_time": system.get("boot_time"), "pid1_start": system.get("pid1_start"),
                   "cuda_visible_devices": system.get("cuda_visible_devices")},
        "errors": list(raw.get("errors") or []),
    }

    # GPUs
    smi = raw.get("nvidia_smi") or {}
    gpu: dict[str, Any] = {"driver_found": bool(smi.get("path")), "error": None, "count": 0,
                           "devices": [], "driver_version": None, "driver_cuda": None,
                           "name": None, "catalog_id": None, "vram_gb": None,
                           "compute_capability": None}
    if smi.get("path"):
        query = smi.get("query") or {}
        gpu["error"] = _section_error(query)
        if gpu["error"] is None:
            try:
                gpu["devices"] = gpu_devices(parse_nvidia_smi_csv(query.get("stdout", "")))
            except ValueError as exc:
                gpu["error"] = str(exc)
        banner = parse_nvidia_smi_banner((smi.get("banner") or {}).get("stdout", ""))
        gpu["driver_cuda"] = banner["cuda_version"]
        gpu["driver_version"] = banner["driver_version"]
        if gpu["devices"]:
            first = gpu["devices"][0]
            gpu["count"] = len(gpu["devices"])
            gpu["name"] = first["name"]
            gpu["catalog_id"] = catalog_id_for(first["name"])
            gpu["vram_gb"] = min(d["vram_gb"] for d in gpu["devices"] if d["vram_gb"] is not None) \
                if any(d["vram_gb"] is not None for d in gpu["devices"]) else None
            gpu["driver_version"] = gpu["driver_version"] or first["driver_version"]
            caps = [d["compute_capability"] for d in gpu["devices"] if d["compute_capability"]]
            gpu["compute_capability"] = caps[0] if caps else None
            if gpu["compute_capability"] is None and gpu["catalog_id"]:
                from gpu_lol.sizing import catalog

                entry = catalog.get_gpu(gpu["catalog_id"])
                gpu["compute_capability"] = entry.compute_capability if entry else None
    facts["gpu"] = gpu

    nvcc = raw.get("nvcc") or {}
    facts["nvcc"] = {"path": nvcc.get("path"), "cuda": parse_nvcc_version(nvcc.get("stdout", ""))}

    torch_section = raw.get("torch") or {}
    torch_error = _section_error(torch_section)
    if torch_error and not torch_section.get("stdout"):
        torch = parse_torch_report("")
        torch["error"] = torch_error
    else:
        torch = parse_torch_report(torch_section.get("stdout", ""))
    warning_lines = [line.strip() for line in (torch_section.get("stderr") or "").splitlines() if line.strip()]
    torch["warning"] = warning_lines[-1][:300] if warning_lines else None
    if gpu["compute_capability"] is None and torch.get("capabilities"):
        gpu["compute_capability"] = torch["capabilities"][0]
    facts["torch"] = torch

    # Packages: pip freeze when it ran, the metadata walk otherwise.
    dists = raw.get("dists") or []
    by_name = {canonicalize_name(d["name"]): d for d in dists if d.get("name")}
    freeze = raw.get("pip_freeze") or {}
    freeze_error = _section_error(freeze)
    if freeze.get("stdout") and freeze_error is None:
        pins, left_out = parse_pip_freeze(freeze["stdout"])
        source = "pip freeze"
    else:
        pins, left_out = [], []
        for dist in dists:
            label = f"{dist['name']}=={dist.get('version')}"
            if _dist_is_local(dist):
                left_out.append(label + " (editable or local)")
            else:
                pins.append({"name": canonicalize_name(dist["name"]), "version": dist.get("version") or "",
                             "requirement": label})
        source = "package metadata"
    installed = {}
    for dist in dists:
        installed.setdefault(canonicalize_name(dist["name"]), dist.get("version"))
    for pin in pins:
        installed.setdefault(pin["name"], pin["version"] or None)
        dist = by_name.get(pin["name"])
        pin["where"] = dist.get("where") if dist else None
        pin["installed_at"] = dist.get("installed_at") if dist else None
        if dist and _dist_is_local(dist):
            pin["local"] = True
    local_pins = [p for p in pins if p.get("local")]
    for pin in local_pins:
        left_out.append(pin["requirement"] + " (editable or local)")
    pins = [p for p in pins if not p.get("local")]
    facts["packages"] = {"source": source, "error": freeze_error if source != "pip freeze" else None,
                         "installed": installed, "pins": pins, "left_out": left_out}

    facts["workdir"] = raw.get("workdir")
    return facts


def gpu_summary(facts: dict[str, Any]) -> str:
    gpu = facts.get("gpu") or {}
    if not gpu.get("count"):
        return "no GPU"
    return f"{gpu['count']}x {gpu['name']} ({gpu.get('vram_gb')} GiB)"
