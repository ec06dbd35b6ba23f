"""Resolve a spec's requirements before anyone pays: a real resolver, for the image's Python.

``uv pip compile`` (uv is a dependency; its binary comes from ``uv.find_uv_bin()``) resolves the
named requirements for Linux x86_64 (``--python-platform x86_64-manylinux_2_28``) and the
Python the image has (``--python-version``), from wheels only (``--only-binary :all:``: no
Python version is papered over by building here). Two exceptions, both packages with no wheel
for any Python: a *requirement* such as ``flash-attn`` is left out of the resolution and built
by pip on the machine; a *dependency* such as wandb's ``pathtools`` is read from its sdist
(``--no-binary NAME``; uv may run that package's build backend in an isolated environment to
get its metadata, as ``pip download`` would). Packages the image ships (torch in a PyTorch image) are held at
the image's version with a constraint, so the lock agrees with what is already there.

Outcomes (:class:`Resolution.status`):

``ok``
    every named requirement resolved; ``lock`` holds the exact ``name==version`` lines setup
    installs (minus what the image ships).
``conflict``
    no solution; ``conflicts`` names the pins (``scikit-learn==1.2.2``: no wheel for cp312) and
    ``works_on`` the Pythons on which the same requirements do resolve.
``offline``
    the package index could not be reached; nothing was checked.
``unchecked``
    the resolver failed for another reason (its first line is in ``message``).
``skipped``
    resolution is off (``GPU_LOL_RESOLVE=off``) or there is nothing to resolve.

Requirements that are not plain names (git URLs, local paths, archives) are never given to the
resolver (resolving them would mean building them here); they are installed as declared, after
the lock. A requirement with no wheel for any Python (``flash-attn`` on PyPI) is taken out of
the resolution and left to pip on the machine, with a note.

Results (``ok`` and ``conflict``) are cached by the hash of every input under
``$GPU_LOL_HOME/cache/resolve/`` (owner-only files, atomic writes) for a week.

``GPU_LOL_FIND_LINKS=DIR`` resolves from a local folder of wheels only (``--no-index
--find-links DIR``): air-gapped machines and the tests use it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

PLATFORM = "x86_64-manylinux_2_28"
CACHE_VERSION = 3
CACHE_TTL_S = 7 * 24 * 3600
TIMEOUT_S = 120
CANDIDATE_PYTHONS = ("3.12", "3.11", "3.10", "3.9", "3.8")
LOCK_FILE = ".gpu-lol-lock.txt"
# Packages that come with the image's torch: never re-installed from the lock.
_TORCH_FAMILY = ("torch", "torchvision", "torchaudio")
_TORCH_COMPANIONS = re.compile(r"^(nvidia-[a-z0-9-]+|triton|pytorch-triton)$")
_LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?==([A-Za-z0-9][A-Za-z0-9.+!_-]*)$")
_NO_WHEELS = re.compile(r"(?:all versions of |only )?`?([A-Za-z0-9][A-Za-z0-9._-]*)`?((?:==|>=|<=|>|<|!=)\s*[^\s,]+)?"
                        r" ha(?:s|ve) no (?:usable wheels|wheels with a matching)")
_OFFLINE_WORDS = ("failed to fetch", "error sending request", "dns error", "tcp connect error", "connection refused",
                  "network is unreachable", "timed out", "failed to lookup address", "could not connect")
# options of `pip install` that change where packages come from: passed on to the resolver
INDEX_FLAGS = ("--index-url", "-i", "--extra-index-url", "--find-links", "-f")


@dataclass
class Resolution:
    status: str
    python: str | None
    lock: list[str] = field(default_factory=list)  # exact name==version lines setup installs
    held: list[str] = field(default_factory=list)  # pins the image ships (constraints, not installed)
    conflicts: list[str] = field(default_factory=list)  # requirement texts that cannot resolve
    works_on: list[str] = field(default_factory=list)  # Pythons on which they do resolve
    build_on_machine: list[str] = field(default_factory=list)  # no wheel anywhere: pip builds them there
    not_checked: list[str] = field(default_factory=list)  # URLs, paths: installed as declared
    message: str = ""
    cached: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Resolution":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})

    def summary(self) -> str:
        """One line for the plan."""
        where = f"Python {self.python}, linux x86_64"
        if self.status == "ok":
            text = f"resolved {len(self.lock) + len(self.held)} packages for {where}"
            if self.held:
                text += f" ({', '.join(self.held)} from the image)"
            if self.cached:
                text += "; cached"
            return text
        if self.status == "conflict":
            pins = ", ".join(self.conflicts) or "the requirements"
            text = f"{pins} cannot be installed on {where}"
            if self.works_on:
                text += f" (they resolve on Python {', '.join(self.works_on)})"
            return text
        if self.status == "offline":
            return f"could not check the requirements for {where}: the package index is unreachable ({self.message})"
        if self.status == "unchecked":
            return f"could not check the requirements for {where}: {self.message}"
        return self.message or "nothing to resolve"


def enabled() -> bool:
    return os.environ.get("GPU_LOL_RESOLVE", "").strip().lower() not in ("off", "0", "false", "no")


def uv_bin() -> str | None:
    try:
        import uv
    except ImportError:
        return None
    try:
        return uv.find_uv_bin()
    except Exception:  # noqa: BLE001 - a broken install: resolution is unchecked, not fatal
        return None


def _uv_version() -> str:
    try:
        from importlib.metadata import version

        return version("uv")
    except Exception:  # noqa: BLE001
        return "?"


def split_requirements(requirements: Iterable[str]) -> tuple[list[str], list[str]]:
    """(named requirements the resolver takes, everything else: URLs, paths, ``name @ url``)."""
    from packaging.requirements import InvalidRequirement, Requirement

    named, other = [], []
    for text in requirements:
        text = text.strip()
        if not text:
            continue
        try:
            req = Requirement(text)
        except InvalidRequirement:
            other.append(text)
            continue
        if req.url or text.startswith("-"):
            other.append(text)
        else:
            named.append(text)
    return named, other


def _index_args(index_options: Iterable[tuple[str, str]]) -> list[str]:
    find_links = os.environ.get("GPU_LOL_FIND_LINKS")
    if find_links:
        return ["--no-index", "--find-links", find_links]
    args: list[str] = []
    for flag, value in index_options:
        if flag in ("--index-url", "-i"):
            args += ["--extra-index-url", value]  # PyPI stays reachable, as in setup
        elif flag == "--extra-index-url":
            args += ["--extra-index-url", value]
        elif flag in ("--find-links", "-f"):
            args += ["--find-links", value]
    return args


def cache_key(named: list[str], python: str, index_args: list[str], constraints: list[str]) -> str:
    blob = json.dumps({"v": CACHE_VERSION, "uv": _uv_version(), "reqs": named, "python": python,
                       "platform": PLATFORM, "index": index_args, "constraints": sorted(constraints)},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _cache_file(key: str) -> Path:
    from gpu_lol import paths

    return paths.cache_dir("resolve") / f"{key}.json"


def _read_cache(key: str) -> Resolution | None:
    try:
        file = _cache_file(key)
        if not file.is_file() or time.time() - file.stat().st_mtime > CACHE_TTL_S:
            return None
        data = json.loads(file.read_text(encoding="utf-8"))
        res = Resolution.from_dict(data)
    except (OSError, ValueError, TypeError):
        return None
    res.cached = True
    return res


def _write_cache(key: str, res: Resolution) -> None:
    from gpu_lol import paths

    data = res.to_dict()
    data["cached"] = False
    try:
        paths.write_private(_cache_file(key), json.dumps(data, indent=1))
    except OSError:
        pass  # a read-only home: resolution still worked


def _run_uv(named: list[str], python: str, index_args: list[str], constraints: list[str],
            no_deps: bool = False, from_source: Iterable[str] = ()) -> tuple[int, str, str]:
    exe = uv_bin()
    if exe is None:
        return 127, "", "uv is not installed (pip install uv)"
    env = dict(os.environ)
    env.setdefault("UV_HTTP_TIMEOUT", "15")
    env.setdefault("UV_HTTP_RETRIES", "1")
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.pop("UV_SYSTEM_PYTHON", None)
    with tempfile.TemporaryDirectory(prefix="gpu-lol-resolve-") as tmp:
        req_file = Path(tmp) / "requirements.in"
        req_file.write_text("\n".join(named) + "\n", encoding="utf-8")
        # --python: uv's base interpreter is gpu-lol's own, so uv never probes every python3.X on
        # PATH (pyenv shims each start a shell, and a stale pyenv lock stalls them for a minute);
        # the target is still --python-version on --python-platform.
        cmd = [exe, "pip", "compile", str(req_file), "--python", sys.executable,
               "--python-version", python, "--python-platform", PLATFORM,
               "--only-binary", ":all:", "--no-header", "--no-annotate", "--no-strip-extras", "--color", "never",
               "--index-strategy", "unsafe-best-match"] + index_args
        for name in from_source:
            cmd += ["--no-binary", name]  # no wheel exists: its metadata comes from its sdist
        if constraints:
            con_file = Path(tmp) / "constraints.txt"
            con_file.write_text("\n".join(constraints) + "\n", encoding="utf-8")
            cmd += ["--constraints", str(con_file)]
        if no_deps:
            cmd.append("--no-deps")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=env, cwd=tmp,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return 124, "", f"timed out after {TIMEOUT_S} s"
        except OSError as exc:
            return 127, "", f"cannot run uv: {exc}"
    return proc.returncode, proc.stdout, proc.stderr


def _is_offline(stderr: str) -> bool:
    low = stderr.lower()
    return any(w in low for w in _OFFLINE_WORDS) and "no solution found" not in low


def _first_cause(stderr: str, limit: int = 400) -> str:
    """The resolver's explanation (the ``cause:`` paragraph that says "Because ..."), one line."""
    text = stderr.split("\nhint:", 1)[0]
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip() and not ln.startswith("warning:")]
    start = next((i for i, ln in enumerate(lines) if ln.strip().startswith("cause:") and "because" in ln.lower()), None)
    if start is not None:
        body = " ".join(ln.strip() for ln in lines[start:]).removeprefix("cause:").strip()
    else:
        causes = [ln.strip()[len("cause:"):].strip() for ln in lines if ln.strip().startswith("cause:")]
        head = lines[0].strip().removeprefix("error:").strip() if lines else "uv failed"
        body = "; ".join([head] + causes[-1:]) if causes else head
    body = " ".join(body.split())
    return body if len(body) <= limit else body[:limit - 3] + "..."


def _mentioned(named: list[str], stderr: str) -> list[str]:
    """Requirements among ``named`` whose project the resolver's explanation names."""
    from gpu_lol.requirements_text import name_of
    from packaging.utils import canonicalize_name

    words = {canonicalize_name(m) for m in re.findall(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?=[=<>!~ ]|$)",
                                                      stderr.split("hint:", 1)[0])}
    return [r for r in named if name_of(r) in words]


def _no_wheel_names(stderr: str) -> list[str]:
    from packaging.utils import canonicalize_name

    return list(dict.fromkeys(canonicalize_name(m.group(1)) for m in _NO_WHEELS.finditer(stderr)))


def _no_wheel_pins(stderr: str) -> dict[str, str]:
    """name -> the requirement the explanation says has no wheels (``antlr4-python3-runtime==4.8``)."""
    from packaging.utils import canonicalize_name

    out: dict[str, str] = {}
    for m in _NO_WHEELS.finditer(stderr):
        name = canonicalize_name(m.group(1))
        out.setdefault(name, name + (m.group(2) or "").replace(" ", ""))
    return out


def _parse_lock(stdout: str) -> tuple[list[str], list[str]]:
    lock, odd = [], []
    for line in stdout.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if _LOCK_LINE.match(line):
            lock.append(line)
        else:
            odd.append(line)
    return lock, odd


def image_constraints(provides: dict[str, str]) -> list[str]:
    """``torch==2.6.0`` for each package the image ships."""
    return [f"{name}=={version}" for name, version in sorted(provides.items())
            if re.match(r"^[A-Za-z0-9._+!-]+$", str(version))]


def resolve(requirements: Iterable[str], python: str, *, index_options: Iterable[tuple[str, str]] = (),
            provides: dict[str, str] | None = None, constraints: Iterable[str] = (),
            use_cache: bool = True, search_pythons: bool = True) -> Resolution:
    """Resolve ``requirements`` for ``python`` on linux x86_64; see the module docstring."""
    started = time.perf_counter()
    named, other = split_requirements(requirements)
    provides = dict(provides or {})
    held_pins = image_constraints(provides)
    extra_constraints = [c for c in split_requirements(constraints)[0]]
    if not enabled():
        return Resolution("skipped", python, not_checked=other, message="resolution is off (GPU_LOL_RESOLVE=off)")
    if not named:
        return Resolution("skipped", python, not_checked=other, message="nothing to resolve")
    index_args = _index_args(index_options)
    all_constraints = held_pins + extra_constraints
    key = cache_key(named, python, index_args, all_constraints)
    if use_cache:
        hit = _read_cache(key)
        if hit is not None:
            hit.seconds = time.perf_counter() - started
            return hit
    from gpu_lol.console import progress

    with progress(f"Resolving {len(named)} requirement{'s' if len(named) != 1 else ''} for Python "
                  f"{python} with uv..."):
        res = _resolve_uncached(named, other, python, index_args, all_constraints, provides, search_pythons)
    if res.status in ("ok", "conflict"):
        _write_cache(key, res)
    res.seconds = time.perf_counter() - started
    return res


def _resolve_uncached(named: list[str], other: list[str], python: str, index_args: list[str],
                      constraints: list[str], provides: dict[str, str], search_pythons: bool) -> Resolution:
    from gpu_lol.requirements_text import name_of

    res, out = _attempt(named, other, python, index_args, constraints)
    if res.status == "ok":
        lock, odd = _parse_lock(out)
        res.held = [line for line in lock if name_of(line) in provides]
        res.lock = [line for line in lock if name_of(line) not in provides
                    and not ("torch" in provides and _TORCH_COMPANIONS.match(name_of(line) or ""))]
        res.not_checked += odd
    elif res.status == "conflict" and search_pythons:
        others = [p for p in CANDIDATE_PYTHONS if p != python]
        results = _parallel(lambda py: _attempt(named, [], py, index_args, constraints)[0].status == "ok", others)
        res.works_on = [py for py, ok in zip(others, results) if ok]
    return res


def _attempt(named: list[str], other: list[str], python: str, index_args: list[str],
             constraints: list[str]) -> tuple[Resolution, str]:
    """One resolution for ``python``: (result, the resolver's output when it succeeded)."""
    from gpu_lol.requirements_text import name_of

    build_here: list[str] = []
    from_source: list[str] = []  # dependencies with no wheel anywhere (pathtools): read from their sdist
    todo = list(named)
    for _round in range(8):
        if not todo:
            return Resolution("ok", python, build_on_machine=build_here, not_checked=list(other)), ""
        rc, out, err = _run_uv(todo, python, index_args, constraints, from_source=from_source)
        if rc == 0:
            return Resolution("ok", python, build_on_machine=build_here + from_source, not_checked=list(other)), out
        if rc in (124, 127):
            return Resolution("unchecked", python, not_checked=list(other), message=err.strip()), ""
        if _is_offline(err):
            return Resolution("offline", python, not_checked=list(other), message=_first_cause(err)), ""
        if "no solution found" not in err.lower():
            return Resolution("unchecked", python, not_checked=list(other), message=_first_cause(err)), ""
        # No solution. A requirement without any wheel (for any Python) is left to pip on the
        # machine; one with wheels for other Pythons is a real conflict.
        no_wheels = _no_wheel_names(err)
        direct = [r for r in todo if name_of(r) in no_wheels]
        sdist_only = [r for r in direct if not _has_wheels_somewhere(r, python, index_args)]
        if sdist_only:
            build_here += sdist_only
            todo = [r for r in todo if r not in sdist_only]
            continue
        # a dependency (not a requirement) with no wheel anywhere, such as wandb's pathtools:
        # pure-Python sdists pip builds on the machine in seconds; let the resolver read it
        direct_names = {name_of(r) for r in todo}
        pins = _no_wheel_pins(err)
        deps = [n for n in no_wheels if n not in direct_names and n not in from_source
                and not _has_wheels_somewhere(pins.get(n, n), python, index_args)]
        if deps:
            from_source += deps
            continue
        conflicts = direct or _mentioned(todo, err)
        return Resolution("conflict", python, conflicts=conflicts, build_on_machine=build_here,
                          not_checked=list(other), message=_first_cause(err)), ""
    return Resolution("unchecked", python, not_checked=list(other), message="too many packages without wheels"), ""


def _has_wheels_somewhere(requirement: str, python: str, index_args: list[str]) -> bool:
    """Whether the requirement has a wheel for some other Python (then it is a real conflict)."""
    key = (requirement, python, tuple(index_args))
    if key not in _WHEEL_MEMO:
        others = [p for p in CANDIDATE_PYTHONS if p != python]
        _WHEEL_MEMO[key] = any(_parallel(lambda py: _run_uv([requirement], py, index_args, [], no_deps=True)[0] == 0,
                                         others))
    return _WHEEL_MEMO[key]


def _parallel(fn, items: list) -> list:
    """``fn`` over ``items`` at once (each is a uv process waiting on the index), in order."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
        return list(pool.map(fn, items))


_WHEEL_MEMO: dict[tuple, bool] = {}


# ---- setup commands <-> the lock -------------------------------------------------------------

@dataclass
class PipInstall:
    """One ``python -m pip install`` command of the setup, taken apart."""

    index: int  # position in setup_commands
    python: str
    requirements: list[str]
    options: list[str]  # flags kept as written (index URLs, --no-build-isolation, -c FILE)
    index_options: list[tuple[str, str]]


_VALUE_FLAGS = ("--index-url", "-i", "--extra-index-url", "--find-links", "-f", "-c", "--constraint")
_PLAIN_FLAGS = ("--no-build-isolation", "--pre", "-U", "--upgrade", "--no-cache-dir", "-q", "--quiet")


def pip_installs(setup_commands: list[str]) -> list[PipInstall]:
    """The setup's ``python -m pip install REQ...`` commands that install named requirements
    (``-e .``, ``-r file`` and commands with other options are left alone)."""
    out = []
    for i, command in enumerate(setup_commands):
        try:
            argv = shlex.split(command)
        except ValueError:
            continue
        if len(argv) < 4 or argv[1:4] != ["-m", "pip", "install"] or not argv[0].startswith("python"):
            continue
        reqs, options, index_options = [], [], []
        it = iter(argv[4:])
        ok = True
        for arg in it:
            if arg in _VALUE_FLAGS:
                value = next(it, None)
                if value is None:
                    ok = False
                    break
                options += [arg, value]
                if arg in INDEX_FLAGS:
                    index_options.append((arg, value))
            elif arg in _PLAIN_FLAGS:
                options.append(arg)
            elif arg.startswith("-"):
                ok = False  # -e, -r, anything we do not know: not ours to rewrite
                break
            else:
                reqs.append(arg)
        if ok and reqs:
            out.append(PipInstall(i, argv[0], reqs, options, index_options))
    return out


def constraint_lines(repo: Path | None, installs: list[PipInstall]) -> list[str]:
    """The named requirements of the repo constraint files (``-c FILE``) the setup uses."""
    lines: list[str] = []
    if repo is None:
        return lines
    for inst in installs:
        opts = inst.options
        for flag, value in zip(opts, opts[1:]):
            if flag in ("-c", "--constraint"):
                try:
                    text = (repo / value).resolve().read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                for line in text.splitlines():
                    line = line.split("#", 1)[0].strip()
                    if line and not line.startswith("-"):
                        lines.append(line)
    return lines


def locked_setup(setup_commands: list[str], res: Resolution, installs: list[PipInstall], *,
                 inline: bool = True) -> list[str]:
    """The setup with its requirement installs replaced by: write the lock, install it, then
    what the resolver did not take (built on the machine, URLs) as declared. ``inline=False``:
    the lock file is in the repo (``gpu-lol init --lock`` wrote it), only installed."""
    if res.status != "ok" or not installs:
        return list(setup_commands)
    first = installs[0]
    out: list[str] = []
    taken = {inst.index for inst in installs}
    lock_options: list[str] = []
    for inst in installs:
        for flag, value in zip(inst.options, inst.options[1:]):
            if flag in INDEX_FLAGS and [flag, value] not in [lock_options[i:i + 2] for i in range(0, len(lock_options), 2)]:
                lock_options += [flag, value]
    leftovers = set(res.build_on_machine) | set(res.not_checked)
    for i, command in enumerate(setup_commands):
        if i not in taken:
            out.append(command)
            continue
        inst = next(x for x in installs if x.index == i)
        if inst is first:
            if res.lock and inline:
                out.append("printf '%s\\n' " + " ".join(shlex.quote(line) for line in res.lock)
                           + f" > {LOCK_FILE}")
            if res.lock:
                out.append(" ".join([first.python, "-m", "pip", "install"] + [shlex.quote(o) for o in lock_options]
                                    + ["-r", LOCK_FILE]))
        rest = [r for r in inst.requirements if r in leftovers]
        if rest:
            out.append(" ".join([inst.python, "-m", "pip", "install"] + [shlex.quote(o) for o in inst.options]
                                + [shlex.quote(r) for r in rest]))
    return out


def lock_text(res: Resolution) -> str:
    """The lock as a requirements file (``init`` writes it when ``lock: true``)."""
    head = [f"# gpu-lol lock: resolved by uv for Python {res.python}, {PLATFORM}",
            "# regenerate with `gpu-lol init --force` (lock: true); installed by setup as written"]
    return "\n".join(head + res.lock) + "\n"


# ---- the spec: resolve what its setup installs, for its image ---------------------------------

@dataclass
class SetupCheck:
    resolution: Resolution
    setup_commands: list[str]  # the setup as it will run (the lock installed when resolved)
    image: str
    python: str | None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    image_changed_from: str | None = None


def check_spec(spec, repo: Path | None = None, *, may_change_image: bool = True) -> SetupCheck:
    """Resolve the requirements the spec's setup installs, for the Python of its image.

    A conflict that another table image's Python solves switches to that image when
    ``may_change_image`` (the analyzer chose the image); otherwise, or when no image helps, it
    raises :class:`~gpu_lol.errors.OperationError` naming the pins and the fix. Offline and
    other failures to check are warnings: setup installs the requirements as declared.
    """
    from gpu_lol.analyzer import image as image_mod
    from gpu_lol.errors import ConfigError, OperationError

    if getattr(spec, "lock", False):
        # `lock: true`: the committed lock is what setup installs; nothing to resolve
        if repo is not None and not (Path(repo) / LOCK_FILE).is_file():
            raise ConfigError(f".gpu-lol.yaml: lock: true but {LOCK_FILE} is not in the repo",
                              "run `gpu-lol init --lock --force` to write it again, or remove `lock: true`")
        res = Resolution("skipped", spec.python_version, message=f"installs the committed lock ({LOCK_FILE})")
        return SetupCheck(res, list(spec.setup_commands), spec.base_image, spec.python_version,
                          notes=[f"lock: true: setup installs {LOCK_FILE} as committed (not resolved again)"])
    setup = list(spec.setup_commands)
    if not setup and spec.requirements:
        from gpu_lol.launch.skypilot import pip_install_command

        setup = [pip_install_command(spec.requirements)]
    installs = pip_installs(setup)
    requirements = [r for inst in installs for r in inst.requirements]
    index_options = [o for inst in installs for o in inst.index_options]
    python = image_mod.python_of(spec.base_image) or spec.python_version or "3.11"
    provides = image_mod.provides_of(spec.base_image)
    constraints = constraint_lines(repo, installs)
    res = resolve(requirements, python, index_options=index_options, provides=provides, constraints=constraints)
    check = SetupCheck(res, setup, spec.base_image, python)
    if res.status == "conflict":
        alternative = None
        row_now = image_mod.row_for(spec.base_image)
        if may_change_image and res.works_on and row_now is not None and row_now in image_mod._table()["pytorch"]:
            torch_specs = _torch_specs(spec.requirements)
            for row in image_mod.images_for_python(res.works_on, torch_specs):
                again = resolve(requirements, row["python"], index_options=index_options,
                                provides=image_mod.provides_of(row["image"]), constraints=constraints)
                if again.status == "ok":
                    alternative = (row, again)
                    break
        if alternative is None:
            raise OperationError(
                f"setup would fail: {res.summary()}: {res.message}",
                _conflict_hint(res, spec, image_mod))
        row, res2 = alternative
        check.notes.append(f"image changed from {spec.base_image} (Python {python}): {', '.join(res.conflicts) or 'its requirements'} "
                           f"cannot install there; {row['image']} runs Python {row['python']} "
                           f"({image_mod.driver_note(row)})")
        check.image_changed_from = spec.base_image
        check.image, check.python, check.resolution, res = row["image"], row["python"], res2, res2
    if res.status == "ok":
        check.setup_commands = locked_setup(setup, res, installs)
        if res.build_on_machine:
            check.notes.append(f"no wheels on the index, built on the machine (not checked here): "
                               f"{', '.join(res.build_on_machine)}")
            cuda_builds = [r for r in res.build_on_machine if _name(r) in CUDA_EXTENSIONS]
            if cuda_builds and image_mod.has_nvcc(check.image) is False:
                check.warnings.append(
                    f"{', '.join(cuda_builds)} compiles CUDA code on the machine, but {check.image} has no nvcc "
                    "(a -runtime image): setup will fail; use a -devel image (base_image) or a prebuilt wheel URL")
    elif res.status in ("offline", "unchecked"):
        check.warnings.append(res.summary() + "; setup installs the requirements as declared")
    if res.not_checked and res.status != "skipped":
        check.notes.append(f"not resolved here, installed as declared: {', '.join(res.not_checked[:4])}"
                           + (f" and {len(res.not_checked) - 4} more" if len(res.not_checked) > 4 else ""))
    return check


# Packages whose source build compiles CUDA kernels (needs nvcc in the image).
CUDA_EXTENSIONS = frozenset({"flash-attn", "apex", "mamba-ssm", "causal-conv1d", "auto-gptq", "exllamav2",
                             "deepspeed", "xformers", "vllm-flash-attn", "flashinfer", "grouped-gemm",
                             "transformer-engine", "nvidia-apex", "megablocks", "fused-dense-lib"})


def _name(text: str) -> str:
    from gpu_lol.requirements_text import name_of

    return name_of(text) or text


def _torch_specs(requirements: Iterable[str]) -> list[str]:
    from gpu_lol.requirements_text import name_of, specifier_of

    out = []
    for text in requirements:
        if name_of(text) == "torch":
            spec = specifier_of(text)
            if spec:
                out.append(spec)
    return out


def _conflict_hint(res: Resolution, spec, image_mod) -> str:
    if res.works_on:
        rows = image_mod.images_for_python(res.works_on, _torch_specs(spec.requirements))
        if rows:
            return (f"set base_image: {rows[0]['image']} (Python {rows[0]['python']}) in .gpu-lol.yaml, "
                    f"or change the pins ({', '.join(res.conflicts)})")
        return (f"they resolve on Python {', '.join(res.works_on)}: set base_image to an image with that Python "
                f"in .gpu-lol.yaml, or change the pins ({', '.join(res.conflicts)})")
    pins = ", ".join(res.conflicts) or "the conflicting requirements"
    return f"change or unpin {pins} in the repo's requirements (or requirements: in .gpu-lol.yaml)"
