"""Your own GPU box as a target: ``gpu-lol up --host USER@HOST[:PORT]``.

The host is treated like a cluster that is never billed: gpu-lol checks that it answers over
SSH and has the GPU the spec needs, copies the repo to a workdir (the same files SkyPilot would
send), creates a virtualenv there with ``--system-site-packages`` (the host's CUDA and torch
stack is reused; its own Python is never touched), runs the spec's setup inside it under
``set -euo pipefail`` with a log, and records the target so ``exec``/``ssh``/``logs``/
``validate``/``snapshot``/``ls``/``down`` work on it.

Everything gpu-lol keeps on the host lives in ``<workdir>/.gpu-lol/`` (venv, setup script and
log, a marker naming the target). ``down --purge`` deletes the workdir only when that marker
names the target, so a typo in ``--workdir`` can never delete someone's data.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpu_lol.errors import OperationError, UsageError
from gpu_lol.launch import state
from gpu_lol.launch.state import KIND_HOST, Target
from gpu_lol.machine import remote
from gpu_lol.spec import EnvironmentSpec

DEFAULT_WORKDIR = "~/gpu-lol/{name}"
SETUP_TIMEOUT_NOTE = "setup runs until it finishes; Ctrl-C stops it on the host"
_HOST_RE = re.compile(r"^[A-Za-z0-9_.%-]+$|^[0-9A-Fa-f:.%]+$")
_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$")
# Absolute workdirs directly in these would put the repo (and a later --purge) somewhere shared.
_SYSTEM_DIRS = {"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt",
                "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
                "/data", "/scratch", "/workspace"}


@dataclass(frozen=True)
class HostAddress:
    host: str
    user: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        text = f"{self.user}@{host}" if self.user else host
        return f"{text}:{self.port}" if self.port else text


def parse_host(text: str) -> HostAddress:
    """``USER@HOST[:PORT]``, ``HOST``, ``[::1]:2222``, ``user@[fe80::1]`` -> HostAddress."""
    raw = (text or "").strip()
    bad = UsageError(f"--host '{text}' is not USER@HOST[:PORT]",
                     "e.g. --host ubuntu@10.0.0.5, --host me@box:2222 or --host '[::1]:2222'")
    if not raw or raw.startswith("-") or any(c.isspace() for c in raw) or "/" in raw:
        raise bad
    user = None
    if "@" in raw:
        user, _, raw = raw.rpartition("@")
        if not user or not _USER_RE.match(user):
            raise bad
    port = None
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or not host:
            raise bad
        if rest:
            if not rest.startswith(":"):
                raise bad
            port = rest[1:]
    elif raw.count(":") == 1:
        host, _, port = raw.partition(":")
    else:
        host = raw  # a name, an IPv4 address, or a bare IPv6 address
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"--host '{text}': '{port}' is not a port number", "ports are 1-65535")
        port = int(port)
    if not host or not _HOST_RE.match(host) or host.startswith("-"):
        raise bad
    return HostAddress(host=host, user=user, port=port)


def check_workdir(workdir: str) -> str:
    """A safe remote workdir: absolute or ``~/...``, no ``..``, not a system or home directory."""
    text = (workdir or "").strip()
    if any(c in text for c in "\0\r\n") or not text:
        raise UsageError(f"--workdir '{workdir}' is not a usable path", "e.g. --workdir ~/work/myrepo")
    if any(c in text for c in "$`\"\\"):
        # Python's venv writes the path into bin/activate inside double quotes: `$(...)` or a
        # backtick there would run when the setup script activates the virtualenv.
        raise UsageError(f"--workdir '{workdir}' has $, `, \" or \\ in it",
                         "a virtualenv's activate script would run them; pick a plain path")
    if text == "~":
        text = "~/"
    if text.startswith("~/"):
        rest = posixpath.normpath(text[2:])
        if rest in (".", "") or rest.startswith("..") or "/../" in f"/{rest}/":
            raise UsageError(f"--workdir '{workdir}' is the home directory or leaves it",
                             "use a directory of its own, e.g. ~/gpu-lol/myrepo")
        return "~/" + rest
    if not text.startswith("/"):
        raise UsageError(f"--workdir '{workdir}' must be absolute or start with ~/",
                         "e.g. --workdir ~/gpu-lol/myrepo or --workdir /data/me/myrepo")
    if ".." in text.split("/"):
        raise UsageError(f"--workdir '{workdir}' has '..'", "write the path without '..'")
    path = posixpath.normpath(text)
    parent = posixpath.dirname(path)
    if path in _SYSTEM_DIRS or (parent == "/home" and path.count("/") == 2):
        raise UsageError(f"--workdir {path} is a system or home directory",
                         "use a directory of its own, e.g. /data/me/myrepo")
    return path


def _identity(identity: str | None) -> str | None:
    if not identity:
        return None
    path = Path(identity).expanduser()
    if not path.is_file():
        raise UsageError(f"--identity {identity}: no such key file", "pass the path of an SSH private key")
    return str(path.resolve())


# ---------------------------------------------------------------------------------------------
# Pre-flight: one SSH round trip for everything up_host needs to know


@dataclass
class Preflight:
    home: str = ""
    rsync: bool = False
    python: str | None = None
    python_version: str | None = None
    python_ensurepip: bool = True
    # candidates that exist but do not run (a pyenv shim for a Python that is not installed):
    # (name, first line of their error)
    python_broken: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    uid: int | None = None
    sudo: bool = False  # passwordless sudo
    workdir_exists: bool = False
    workdir_nonempty: bool = False
    marker: dict[str, Any] | None = None
    nvidia_smi: str = "skipped"  # skipped | missing | ok | error
    gpus: list[tuple[str, float | None]] | None = None
    gpu_error: str | None = None


def _preflight_script(workdir: str, python_candidates: list[str], gpu: bool) -> str:
    wd = remote.shell_path(workdir)
    marker = remote.shell_path(remote.host_meta_dir(workdir) + "/target.json")
    lines = [
        'echo "home=$HOME"',
        'if command -v rsync >/dev/null 2>&1; then echo rsync=yes; else echo rsync=no; fi',
        'echo "uid=$(id -u)"',
        # Only members of the usual admin groups are asked (sudo reports a stranger's attempt).
        'case " $(id -Gn 2>/dev/null) " in *" sudo "*|*" wheel "*|*" admin "*) '
        'if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then echo sudo=yes; fi;; esac',
        # Run each candidate: `command -v` also finds pyenv shims of Pythons that are not installed.
        "for p in " + " ".join(remote.shell_path(c) for c in python_candidates) + "; do",
        '  command -v "$p" >/dev/null 2>&1 || continue',
        '  if out=$("$p" -c \'import sys, venv; print("%d.%d.%d" % sys.version_info[:3])\' 2>&1); then',
        '    echo "python=$p"; printf "python_version=%s\\n" "$(printf "%s" "$out" | tail -n 1)"',
        '    "$p" -c "import ensurepip" >/dev/null 2>&1 || echo python_ensurepip=no',
        "    break",
        "  fi",
        '  printf "python_broken=%s\\t%s\\n" "$p" "$(printf "%s" "$out" | grep -v "^ *$" | head -n 1)"',
        "done",
        f"if [ -e {wd} ]; then echo workdir=exists; "
        f"if [ -n \"$(ls -A {wd} 2>/dev/null)\" ]; then echo workdir_nonempty=yes; fi; "
        f"if [ -f {marker} ]; then printf 'marker=%s\\n' \"$(tr -d '\\n' < {marker})\"; fi; fi",
    ]
    if gpu:
        lines.append(
            "if command -v nvidia-smi >/dev/null 2>&1; then "
            "out=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits 2>&1); rc=$?; "
            "printf '%s\\n' \"$out\" | sed 's/^/gpu=/'; echo \"nvidia_smi_rc=$rc\"; "
            "else echo nvidia_smi=missing; fi")
    return "\n".join(lines) + "\n"


def _parse_preflight(text: str) -> Preflight:
    pre = Preflight()
    gpu_lines: list[str] = []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "home":
            pre.home = value
        elif key == "rsync":
            pre.rsync = value == "yes"
        elif key == "python":
            pre.python = value
        elif key == "python_version":
            pre.python_version = value
        elif key == "python_ensurepip":
            pre.python_ensurepip = False
        elif key == "python_broken":
            exe, _, why = value.partition("\t")
            pre.python_broken.append((exe, why.strip() or "it does not run"))
        elif key == "uid":
            pre.uid = int(value) if value.isdigit() else None
        elif key == "sudo":
            pre.sudo = value == "yes"
        elif key == "workdir":
            pre.workdir_exists = True
        elif key == "workdir_nonempty":
            pre.workdir_nonempty = True
        elif key == "marker":
            try:
                pre.marker = json.loads(value)
            except ValueError:
                pre.marker = {"name": None}
        elif key == "gpu":
            gpu_lines.append(value)
        elif key == "nvidia_smi":
            pre.nvidia_smi = "missing"
        elif key == "nvidia_smi_rc":
            pre.nvidia_smi = "ok" if value == "0" else "error"
    if pre.nvidia_smi == "ok":
        pre.gpus = []
        for line in gpu_lines:
            name, _, memory = line.rpartition(",")
            try:
                pre.gpus.append((name.strip(), round(float(memory) / 1024, 1)))
            except ValueError:
                pre.gpus.append((line.strip(), None))
    elif pre.nvidia_smi == "error":
        pre.gpu_error = (gpu_lines[-1] if gpu_lines else "nvidia-smi failed").strip()
    return pre


def _gpu_problems(spec: EnvironmentSpec, pre: Preflight, where: str) -> tuple[list[str], list[str]]:
    """(problems that need --yes, notes)."""
    if spec.is_cpu:
        return [], []
    want = f"{spec.gpu_count}x {spec.gpu_type or 'GPU'}"
    if pre.nvidia_smi == "missing":
        return [f"{where} has no NVIDIA driver (nvidia-smi not found) but the spec needs {want}"], []
    if pre.nvidia_smi == "error":
        return [f"nvidia-smi fails on {where} ({pre.gpu_error}) but the spec needs {want}"], []
    gpus = pre.gpus or []
    if not gpus:
        return [f"{where} lists no GPU but the spec needs {want}"], []
    problems, notes = [], []
    if len(gpus) < spec.gpu_count:
        problems.append(f"{where} has {len(gpus)} GPU(s) but the spec needs {spec.gpu_count}")
    memory = [m for _, m in gpus if m is not None]
    if memory and spec.vram_required_gb and min(memory) + 0.5 < spec.vram_required_gb:
        problems.append(f"{where}'s GPUs have {min(memory):g} GiB but the spec needs "
                        f"{spec.vram_required_gb:g} GiB per GPU: the work will not fit")
    from gpu_lol.machine.probe_facts import catalog_id_for

    found = catalog_id_for(gpus[0][0])
    notes.append(f"{where}: {len(gpus)}x {gpus[0][0]}" + (f" ({found})" if found else ""))
    if spec.gpu_type and found and found != spec.gpu_type:
        notes.append(f"the spec was sized for {spec.gpu_type}; using the host's {found}")
    return problems, notes


# ---------------------------------------------------------------------------------------------
# Setup


def render_setup(target: Target, spec: EnvironmentSpec, python: str, *,
                 ensurepip: bool = True) -> tuple[str, list[str]]:
    """The host's setup script (and warnings about spec parts a host does not get).

    ``python`` is an interpreter the pre-flight ran (``import sys, venv``); ``ensurepip``: whether
    it has ensurepip (Debian's python3 without python3-venv has not): without it the virtualenv
    is made ``--without-pip`` and uses the system pip."""
    from gpu_lol.launch.skypilot import pip_install_command
    from gpu_lol.secrets.sensitive import is_secret_env_name

    workdir = remote.workdir_of(target)
    venv = target.extra["venv"]
    wd, venv_q = remote.shell_path(workdir), remote.shell_path(venv)
    warnings: list[str] = []
    lines = [
        "set -euo pipefail",
        f"# gpu-lol setup for host target {target.name}: generated from the spec; change "
        ".gpu-lol.yaml and run `gpu-lol up --host ...` again, not this script",
        'echo "gpu-lol: setup started $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"',
        f"cd {wd}",
        f"if [ ! -x {venv_q}/bin/python ]; then",
        f"  echo {shlex.quote(f'gpu-lol: creating a virtualenv at {venv} (it sees the system packages)')}",
        *([f"  echo {shlex.quote(f'gpu-lol: {python} has no ensurepip: the virtualenv uses the system pip')}"]
          if not ensurepip else []),
        f"  if ! {shlex.quote(python)} -m venv --system-site-packages{'' if ensurepip else ' --without-pip'} {venv_q}; then",
        f"    rm -rf {venv_q}",
        f"    echo {shlex.quote(f'gpu-lol: {python} -m venv failed (see above)')} >&2",
        "    exit 1",
        "  fi",
        "fi",
        f". {venv_q}/bin/activate",
        "python -m pip --version >/dev/null 2>&1 || { echo 'gpu-lol: pip is not available in the "
        "virtualenv: install python3-venv or python3-pip on the host' >&2; exit 1; }",
        "export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1",
    ]
    for key, value in (spec.envs or {}).items():
        if is_secret_env_name(key):
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        lines.append(f"export {key}={shlex.quote(str(value))}")
    if spec.system_packages:
        warnings.append("system_packages are not installed on your host (gpu-lol never changes its "
                        "system): make sure it has " + ", ".join(spec.system_packages))
    if spec.asset_links:
        warnings.append("asset_links are not created on a host: " + ", ".join(spec.asset_links))
    if spec.setup_commands:
        lines += list(spec.setup_commands)
    elif spec.requirements:
        lines.append(pip_install_command(spec.requirements))
    lines.append('echo "gpu-lol: setup finished $(date -u +%Y-%m-%dT%H:%M:%SZ)"')
    return "\n".join(lines) + "\n", warnings


def _write_remote_file(target: Target, path: str, text: str) -> None:
    result = remote.capture(target, f"cat > {remote.shell_path(path)}", input=text, cd="skip", login=False)
    if result.returncode != 0:
        raise OperationError(f"cannot write {path} on {target.name}: "
                             f"{(result.stderr.strip().splitlines() or ['?'])[-1]}",
                             "check that the workdir is writable")


def _run_setup(target: Target) -> int:
    meta = remote.host_meta_dir(remote.workdir_of(target))
    script = remote.shell_path(meta + "/setup.sh")
    log = remote.shell_path(meta + "/setup.log")
    command = f"set -o pipefail; bash {script} 2>&1 | tee {log}"
    # The venv does not exist yet on a first setup: run without activating it.
    bare = dataclasses.replace(target, extra={**target.extra, "venv": None})
    return remote.run(bare, command, stdout=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Public API


def requested_python(spec: EnvironmentSpec) -> str | None:
    """The Python major.minor the spec really asks for, or None.

    A ``python_version`` equal to the default Python of the spec's ``base_image`` (gpu-lol's
    image table, or the ``python:X-slim`` cpu template at the default version) was filled in from
    the image, not asked for by the repo: a host then uses its own ``python3`` (where its CUDA
    and torch live) instead of hunting for that version.
    """
    if not spec.python_version:
        return None
    wanted = ".".join(str(spec.python_version).split(".")[:2])
    try:
        from gpu_lol.analyzer.image import _table

        table = _table()
    except Exception:  # noqa: BLE001 - no table: take the version as asked
        return wanted
    for section in table.values():
        if not isinstance(section, list):
            continue
        for row in section:
            if isinstance(row, dict) and row.get("image") == spec.base_image:
                return None if str(row.get("python")) == wanted else wanted
    default = str(table.get("default_python") or "")
    template = str(table.get("cpu_template") or "")
    if default == wanted and template and spec.base_image == template.format(python=default):
        return None
    return wanted


# Fallbacks after the preferred interpreters, best first; /usr/bin/python3 gets past a broken
# pyenv/asdf shim for python3 itself.
_PYTHON_FALLBACKS = ("python3.13", "python3.12", "python3.11", "python3.10", "python3.9", "/usr/bin/python3")


# Conda base environments in their usual places. A login shell does not activate them: the
# `conda init` block sits at the end of ~/.bashrc, after the "not interactive: return" line.
CONDA_PYTHONS = ("~/miniconda3/bin/python3", "~/anaconda3/bin/python3", "~/miniforge3/bin/python3",
                 "~/mambaforge/bin/python3", "/opt/conda/bin/python3")


def python_candidates_for(wanted: str | None) -> list[str]:
    """Interpreters to try, in order: the asked-for version, a conda base environment (where a
    conda user's torch lives; the venv sees its packages), the host's python3 (its own torch
    stack), then the newest real ones."""
    first = [f"python{wanted}"] if wanted else []
    out: list[str] = []
    for name in first + list(CONDA_PYTHONS) + ["python3", "python"] + list(_PYTHON_FALLBACKS):
        if name not in out:
            out.append(name)
    return out


def _install_hint(pre: Preflight, *packages: str) -> str:
    """How to install system packages on the host, for the account gpu-lol logs in as."""
    names = " ".join(packages)
    if pre.uid == 0:
        return f"install it there (e.g. apt-get install {names})"
    if pre.sudo:
        return f"install it there (e.g. sudo apt-get install {names})"
    return (f"this account has no sudo: ask the machine's admin to install {names}, or install it "
            f"into your account (e.g. conda install -c conda-forge {packages[0]}, or uv python install)")


def retry_command(repo: Path, where: str, *, name: str, identity: str | None = None,
                  workdir: str | None = None) -> str:
    """The ``up --host`` command that repeats this one, with every flag the user gave."""
    parts = ["gpu-lol", "up"]
    try:
        here = Path.cwd().resolve()
    except OSError:
        here = None
    if here != Path(repo).resolve():
        parts.append(str(repo))
    parts += ["--host", where, "--name", name]
    if identity:
        parts += ["--identity", identity]
    if workdir:
        parts += ["--workdir", workdir]
    return " ".join(shlex.quote(p) for p in parts)


def up_host(repo: Path, spec: EnvironmentSpec, host: str, *, identity: str | None, name: str,
            workdir: str | None = None, yes: bool = False) -> Target:
    """Set up ``repo`` on the user's own machine and record it as a host target."""
    from gpu_lol.console import confirm, info, warn

    repo = Path(repo).resolve()
    if not repo.is_dir():
        raise UsageError(f"{repo}: not a directory", "pass the path of a repo")
    given_workdir = workdir
    address = parse_host(host)
    key = _identity(identity)
    name = state.check_name(name)
    existing = state.load(name)
    if existing is not None and existing.kind != KIND_HOST:
        raise UsageError(f"'{name}' is already the name of a SkyPilot cluster",
                         "pass --name for the host, or `gpu-lol down` the cluster first")
    if existing is not None:
        before = (existing.extra.get("host"), existing.extra.get("user"), existing.extra.get("port"))
        if before != (address.host, address.user, address.port):
            raise UsageError(f"'{name}' already names host {remote.host_label(existing)}",
                             f"pick another --name, or `gpu-lol down {name}` first")
    workdir = check_workdir(workdir or (existing.extra.get("workdir") if existing else None)
                            or DEFAULT_WORKDIR.format(name=name))
    target = Target(
        name=name, kind=KIND_HOST, repo=str(repo), spec=spec.to_dict(),
        created_at=existing.created_at if existing else time.time(),
        extra={"host": address.host, "user": address.user, "port": address.port, "identity": key,
               "workdir": workdir, "venv": remote.host_meta_dir(workdir) + "/venv"},
    )
    where = str(address)
    info(f"checking {where} ...")
    remote.ensure_connected(target)  # bounded: a server that stalls in the handshake fails here
    wanted = requested_python(spec)
    python_candidates = python_candidates_for(wanted)
    result = remote.capture(target, _preflight_script(workdir, python_candidates, not spec.is_cpu),
                            cd="skip", timeout=60)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        raise OperationError(f"the checks on {where} failed: {last}",
                             "gpu-lol needs bash on the host")
    pre = _parse_preflight(result.stdout)
    if not pre.rsync:
        raise OperationError(f"{where} has no rsync", _install_hint(pre, "rsync"))
    for exe, why in pre.python_broken:
        if pre.python:
            warn(f"{exe} on {where} does not run ({why}); using {pre.python} ({pre.python_version})")
    if not pre.python:
        broken = "; ".join(f"{exe}: {why}" for exe, why in pre.python_broken)
        raise OperationError(f"{where} has no working python3" + (f" ({broken})" if broken else ""),
                             _install_hint(pre, "python3", "python3-venv"))
    short = ".".join((pre.python_version or "").split(".")[:2])
    if wanted and short and short != wanted:
        warn(f"the spec asks for Python {wanted}; {where} has {pre.python_version} "
             f"({pre.python}): the virtualenv uses it")
    if pre.python and "/" in pre.python:
        info(f"note: using {pre.python} ({pre.python_version}) on {where}; the virtualenv sees its packages")
    if spec.python_version and not wanted and short and short != spec.python_version:
        info(f"note: Python {spec.python_version} is only the image's default; {where}'s own "
             f"{pre.python} ({pre.python_version}) is used (set python_version in .gpu-lol.yaml to ask for one)")
    if pre.workdir_exists and pre.workdir_nonempty and (pre.marker or {}).get("name") != name:
        owner = (pre.marker or {}).get("name")
        raise UsageError(f"{workdir} on {where} already exists and "
                         + (f"belongs to target '{owner}'" if owner else "was not created by gpu-lol"),
                         "pick another --workdir (gpu-lol never syncs into a directory it does not own)")
    problems, notes = _gpu_problems(spec, pre, where)
    for note in notes:
        info(note)
    if problems:
        text = "; ".join(problems)
        if yes:
            warn(f"{text}; setting it up anyway (--yes)")
        elif confirm(f"{text}. Set it up anyway?", default=False):
            pass
        else:
            raise OperationError(text, "pass --yes to set it up anyway: `"
                                       f"{retry_command(repo, where, name=name, identity=identity, workdir=given_workdir)}"
                                       " --yes`; or set workload_type: cpu in .gpu-lol.yaml for a machine without a GPU")
    meta = remote.host_meta_dir(workdir)
    mk = remote.capture(target, f"mkdir -p -- {remote.shell_path(meta)}", cd="skip", login=False)
    if mk.returncode != 0:
        raise OperationError(f"cannot create {workdir} on {where}: "
                             f"{(mk.stderr.strip().splitlines() or ['?'])[-1]}", "pick another --workdir")
    marker = json.dumps({"name": name, "repo": str(repo), "created_at": target.created_at}) + "\n"
    _write_remote_file(target, meta + "/target.json", marker)
    remote.sync_repo(target, repo)
    state.save(target)  # from here on, logs/down know the target even if setup fails
    script, warnings = render_setup(target, spec, pre.python, ensurepip=pre.python_ensurepip)
    for message in warnings:
        warn(message)
    _write_remote_file(target, meta + "/setup.sh", script)
    _write_remote_file(target, meta + "/bashrc", remote.host_rcfile(target))
    info(f"running setup on {where} (log: {remote.setup_log_path(target)})")
    rc = _run_setup(target)
    if rc != 0:
        raise OperationError(f"setup failed on {where} (exit {rc})",
                             f"see `gpu-lol logs {name}`; fix .gpu-lol.yaml and run "
                             f"`{retry_command(repo, where, name=name, identity=identity, workdir=given_workdir)}` again")
    return target


def describe(target: Target) -> dict[str, Any]:
    """Status for ``ls``/``info``: reachable?, GPU summary, workdir (one quick SSH round trip)."""
    workdir = remote.workdir_of(target)
    out: dict[str, Any] = {"status": "unreachable", "reachable": False, "host": remote.host_label(target),
                           "workdir": workdir, "gpu": None, "detail": ""}
    script = ("nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | sed 's/^/gpu=/' || true\n"
              f"if [ -d {remote.shell_path(workdir)} ]; then echo workdir=yes; else echo workdir=no; fi\n")
    try:
        result = remote.capture(target, script, cd="skip", login=False, timeout=10, connect_timeout=5)
    except OperationError as exc:
        out["detail"] = exc.message
        return out
    if result.returncode != 0:
        out["detail"] = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        return out
    names = [line[4:].strip() for line in result.stdout.splitlines() if line.startswith("gpu=")]
    out.update(status="reachable", reachable=True)
    if names:
        out["gpu"] = f"{len(names)}x {names[0]}"
    else:
        out["gpu"] = "no GPU"
    if "workdir=no" in result.stdout:
        out["detail"] = f"workdir {workdir} is missing"
    else:
        out["detail"] = f"workdir {workdir}"
    return out


def forget(target: Target, purge: bool) -> str:
    """Remove the record (and with ``purge`` the remote workdir); returns what was removed."""
    label = remote.host_label(target)
    workdir = remote.workdir_of(target)
    done = f"forgot host target {target.name} ({label})"
    if purge:
        wd = remote.shell_path(workdir)
        marker = remote.shell_path(remote.host_meta_dir(workdir) + "/target.json")
        needle = shlex.quote(f'"name": "{target.name}"')
        script = (f"if [ ! -e {wd} ]; then echo gone; exit 0; fi\n"
                  f"if [ -f {marker} ] && grep -qF {needle} {marker}; then rm -rf -- {wd} && echo deleted; "
                  "else echo not-ours; fi\n")
        try:
            result = remote.capture(target, script, cd="skip", login=False, timeout=300)
        except OperationError as exc:
            raise OperationError(f"{exc.message}; the record is kept so you can purge later",
                                 f"retry when the host is reachable, or `gpu-lol down {target.name}` "
                                 "without --purge to only forget it") from None
        if result.returncode != 0 or "not-ours" in result.stdout:
            why = "it has no gpu-lol marker for this target" if "not-ours" in result.stdout else \
                (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
            raise OperationError(f"not deleting {workdir} on {label}: {why}",
                                 f"delete it yourself, or `gpu-lol down {target.name}` without --purge")
        if "deleted" in result.stdout:
            done += f"; deleted {workdir} on the host"
        else:
            done += f"; {workdir} was already gone from the host"
    else:
        done += f"; {workdir} is kept on the host (--purge deletes it)"
    remote.close(target)
    try:
        remote.host_ssh_config(target.name).unlink()
    except OSError:
        pass
    state.delete(target.name)
    return done
