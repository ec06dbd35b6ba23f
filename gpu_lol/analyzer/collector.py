"""What one package source declares: the :class:`Collector` every source reader writes into.

Each reader (``req_files``, ``pyproject``, ``setup_py``, ``conda``, ``pipfile``, ``dockerfile``,
``notebooks``, ``shell_installs``) adds requirements, constraints, index URLs, Python versions
and system packages to a :class:`Collector`, with evidence; the rules that decide which files
count and in what order live in :mod:`gpu_lol.analyzer.packages`, which reads the readers and
turns the collector into a :class:`PackageReport`. This module is their shared base (as a
build system keeps its base classes apart from the detector), so no reader imports the combiner.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.analyzer.locations import NEVER_DIRS
from gpu_lol.requirements_text import RequirementError, check_requirement, name_of

if TYPE_CHECKING:
    from gpu_lol.repo_index import FileIndex, RepoFile

COMMAND_SOURCES = frozenset({"dockerfile", "notebook", "shell", "readme"})
# installers and build tools an install command upgrades on the way; not the repo's packages
_TOOLING = frozenset({"pip", "python", "uv", "pipx", "wheel", "setuptools", "virtualenv", "pip-tools",
                      "poetry", "pipenv", "build", "twine"})
SOURCES = ("requirements", "pyproject", "setup.py", "setup.cfg", "conda", "pipfile", "dockerfile",
           "notebook", "shell", "readme", "imports")


@dataclass
class DeclaredRequirement:
    text: str  # exact requirement string as pip takes it, validated by check_requirement
    evidence: Evidence  # file:line where it was declared
    source: str  # one of SOURCES: the kind of file that holds the evidence line


@dataclass
class PackageReport:
    requirements: list[DeclaredRequirement] = field(default_factory=list)
    optional: dict[str, list[DeclaredRequirement]] = field(default_factory=dict)
    extras_requested: list[tuple[str, Evidence]] = field(default_factory=list)
    is_package: bool = False
    package_evidence: Evidence | None = None
    python_versions: list[tuple[str, Evidence]] = field(default_factory=list)
    index_urls: list[tuple[str, str, Evidence]] = field(default_factory=list)
    constraints: list[tuple[str, Evidence]] = field(default_factory=list)
    docker_images: list[tuple[str, Evidence]] = field(default_factory=list)
    system_packages: list[tuple[str, Evidence]] = field(default_factory=list)
    conda_only: list[tuple[str, Evidence]] = field(default_factory=list)
    imports: dict[str, list[Evidence]] = field(default_factory=dict)
    from_imports: bool = False
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Beyond the agreed interface (all optional to read):
    dev: dict[str, list[DeclaredRequirement]] = field(default_factory=dict)  # never installed
    local_installs: list[tuple[str, Evidence]] = field(default_factory=list)  # repo sub-paths pip installs
    project_name: str | None = None  # the repo's own distribution name when it is a package
    from_subdirs: bool = False  # requirements came from subdirectory sources (root declared none)
    build_flags: dict[str, list[str]] = field(default_factory=dict)  # requirement -> `--no-build-isolation`...

    def extras_requirements(self) -> list[DeclaredRequirement]:
        """What the requested extras install (``pip install -e '.[all]'``), an extra that names
        the project's own extras (``all = ["flux[torch]"]``) followed: a torch pin there is a
        torch pin for the image."""
        own = canonical_name(self.project_name) if self.project_name else None
        out: list[DeclaredRequirement] = []
        todo = [name for name, _ in self.extras_requested]
        seen: set[str] = set()
        while todo:
            group = todo.pop(0)
            key = canonical_name(group)
            if key in seen:
                continue
            seen.add(key)
            entries = next((v for k, v in self.optional.items() if canonical_name(k) == key), [])
            for req in entries:
                if own and name_of(req.text) == own:
                    todo.extend(extras_of(req.text))
                elif req not in out:
                    out.append(req)
        return out


# ---- file naming: which files are which source, and which variants -------------------------

WORD_SPLIT = re.compile(r"[-_.\s]+")
DEV_WORDS = frozenset({
    "dev", "devel", "develop", "development", "test", "tests", "testing", "doc", "docs",
    "documentation", "sphinx", "rtd", "readthedocs", "mkdocs", "lint", "linting", "linter", "style",
    "format", "formatting", "typing", "types", "mypy", "ci", "precommit", "build", "bench",
    "benchmark", "benchmarks", "coverage", "tox", "nox", "check", "checks", "qa",
})
PLATFORM_WORDS = frozenset({
    "rocm", "amd", "hip", "tpu", "xla", "neuron", "inf2", "trn", "xpu", "hpu", "gaudi", "habana",
    "npu", "ascend", "mps", "mac", "macos", "osx", "darwin", "apple", "m1", "windows", "win",
    "win32", "win64", "openvino", "ipex", "intel", "jetson", "arm64", "aarch64",
})
_OPTIONAL_WORDS = frozenset({"optional", "extra", "extras"})
GPU_WORDS_RE = re.compile(r"^(gpu|cuda|cu\d{2,3}|cuda\d+)$")

REQ_DIRS = frozenset({"requirements", "reqs", "requirements.d", "requirement"})
DOCKER_DIRS = frozenset({"docker", ".devcontainer", "dockerfiles", ".docker", "container"})
SCRIPT_DIRS = frozenset({"scripts", "script", "bin", "slurm", "launch", "launchers", "jobs"})
NOTEBOOK_DIRS = frozenset({"notebooks", "notebook", "nbs"})
CONDA_DIRS = frozenset({"envs", "conda", "environments", "environment", "env"})
# Never the repo's runtime declaration, not even as a fallback.
BASE_WORDS = ("base", "common", "core", "main", "runtime", "requirements", "default", "prod",
               "production", "install", "minimal", "min")


def file_words(rel: str) -> list[str]:
    """Lower-case words of a file's name without its extension (``requirements-dev`` -> 2)."""
    name = rel.rsplit("/", 1)[-1].lower()
    if name.endswith((".txt", ".in", ".yml", ".yaml", ".sh", ".bash", ".md", ".rst", ".toml")):
        name = name.rsplit(".", 1)[0]
    return [w for w in WORD_SPLIT.split(name) if w]


def variant(rel: str, siblings: Iterable[str] = ()) -> str:
    """'dev', 'platform', 'optional' or 'runtime' for a declaration file, from its name.

    ``siblings`` are the other files of the same kind in the same folder; a ``cpu`` file is a
    platform variant only when one of them is a ``gpu``/``cuda`` file.
    """
    words = set(file_words(rel))
    if "pre" in words and "commit" in words:
        words.add("precommit")
    if words & DEV_WORDS:
        return "dev"
    if words & PLATFORM_WORDS:
        return "platform"
    if "cpu" in words:
        for other in siblings:
            if other != rel and any(GPU_WORDS_RE.match(w) for w in file_words(other)):
                return "platform"
    if words & _OPTIONAL_WORDS:
        return "optional"
    return "runtime"


_TRAINING_WORDS = frozenset({"train", "training", "finetune", "finetuning", "sft", "rlhf", "dpo", "deepspeed",
                             "megatron"})


def is_training_extra(name: str) -> bool:
    """An extra for training only (``train``, ``deepspeed``): not installed for an inference plan."""
    return bool(set(w for w in WORD_SPLIT.split(name.lower()) if w) & _TRAINING_WORDS)


def is_dev_group(name: str) -> bool:
    """An optional-dependency group or extra that is for developers, never installed."""
    words = set(w for w in WORD_SPLIT.split(name.lower()) if w)
    return bool(words & DEV_WORDS) or name.lower() in {"all-dev", "alldev", "contrib-dev"}


def is_requirements_file(f: RepoFile) -> bool:
    name = f.name.lower()
    if f.suffix not in (".txt", ".in"):
        return False
    if "requirement" in name or name.startswith(("reqs", "req.", "req-", "req_")):
        return True
    parent = f.parent.rsplit("/", 1)[-1].lower()
    return parent in REQ_DIRS


def is_dockerfile(f: RepoFile) -> bool:
    name = f.name.lower()
    return (name in ("dockerfile", "containerfile") or name.startswith(("dockerfile.", "dockerfile-",
                                                                        "dockerfile_"))
            or name.endswith(".dockerfile"))


def is_conda_file(f: RepoFile) -> bool:
    if f.suffix not in (".yml", ".yaml"):
        return False
    name = f.name.lower()
    stem = name.rsplit(".", 1)[0]
    if stem.startswith(("environment", "conda")) or stem.endswith((".conda", "-conda", "_conda")):
        return True
    if stem in ("env", "environ") or stem.startswith(("env-", "env_", "env.")):
        return True
    parent = f.parent.rsplit("/", 1)[-1].lower()
    return parent in CONDA_DIRS or parent in REQ_DIRS


def is_readme(f: RepoFile) -> bool:
    name = f.name.lower()
    stem = name.split(".", 1)[0]
    return stem in ("readme", "install", "installation", "setup", "getting_started",
                    "getting-started", "quickstart") and f.suffix in ("", ".md", ".rst", ".txt",
                                                                       ".markdown")


def in_never_dir(f: RepoFile) -> bool:
    return any(p.lower() in NEVER_DIRS for p in f.parts[:-1])


def root_scope(f: RepoFile, kind: str) -> bool:
    """Whether a file of this kind declares the repo's own runtime packages."""
    if f.depth == 0:
        return True
    top = f.parts[0].lower()
    if kind == "requirements":
        return f.depth == 1 and top in REQ_DIRS
    if kind == "dockerfile":
        return f.depth <= 2 and top in DOCKER_DIRS
    if kind == "shell":
        return f.depth == 1 and top in SCRIPT_DIRS
    if kind == "notebook":
        return f.depth == 1 and top in NOTEBOOK_DIRS
    if kind == "conda":
        return f.depth == 1 and (top in CONDA_DIRS or top in REQ_DIRS)
    return False


# ---- the collector every source writes into --------------------------------------------------

RUNTIME = "runtime"
# PyPI itself and regional PyPI mirrors: an index option naming one adds nothing on a cloud GPU
# (and a distant mirror is slow), so it is not passed on. Other indexes on the same hosts (e.g.
# a mirror of the PyTorch wheels) are kept.
_PYPI_HOSTS = frozenset({"pypi.org", "pypi.python.org", "files.pythonhosted.org"})
_MIRROR_HOSTS = ("tuna.tsinghua.edu.cn", "mirrors.aliyun.com", "douban.com", "mirrors.ustc.edu.cn",
                 "mirrors.bfsu.edu.cn", "mirror.sjtu.edu.cn", "mirrors.163.com", "mirror.baidu.com",
                 "mirrors.huaweicloud.com", "repo.huaweicloud.com", "mirrors.cloud.tencent.com",
                 "mirrors.tencent.com", "mirror.nju.edu.cn", "mirrors.zju.edu.cn")


def is_pypi_mirror(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if host in _PYPI_HOSTS:
        return True
    path = parts.path.lower().rstrip("/")
    return any(host == h or host.endswith("." + h) for h in _MIRROR_HOSTS) and (
        "pypi" in path or path.endswith("/simple"))


_UNSAFE_RE = re.compile(r"[`$\n\r]")
# repo paths handed on (constraints files, local installs): plain names only, so they are safe
# in any command line even before quoting
_SAFE_PATH_RE = re.compile(r"^[A-Za-z0-9_.+/-]+$")
_EXTRAS_SUFFIX_RE = re.compile(r"^[^\[\]]*(\[[A-Za-z0-9._,-]*\])?$")
_EXTRA_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class Entry:
    req: DeclaredRequirement
    owner: str  # the file that holds the line


class Collector:
    """Accumulates one scope's findings; source modules call its ``add_*`` methods.

    ``target`` names where a requirement goes: ``RUNTIME``, ``("optional", group)`` or
    ``("dev", group)``.
    """

    def __init__(self, index: FileIndex):
        self.index = index
        self.runtime: list[Entry] = []
        self.optional: dict[str, list[Entry]] = {}
        self.dev: dict[str, list[Entry]] = {}
        self.extras_requested: list[tuple[str, Evidence]] = []
        self.package_evidence: Evidence | None = None
        self.self_install: Evidence | None = None  # `-e .` / `pip install .` seen
        self.project_name: str | None = None
        self.project_urls: list[str] = []  # homepage/repository URLs the package metadata gives
        self.python_versions: list[tuple[str, Evidence]] = []
        self.index_urls: list[tuple[str, str, Evidence]] = []
        self.constraints: list[tuple[str, Evidence]] = []
        self.docker_images: list[tuple[str, Evidence]] = []
        self.system_packages: list[tuple[str, Evidence]] = []
        self.conda_only: list[tuple[str, Evidence]] = []
        self.local_installs: list[tuple[str, Evidence]] = []
        self.warnings: list[str] = []
        self.visited: set[tuple[str, object]] = set()  # (requirement file, target) already read
        self.scanned: set[str] = set()  # requirement files read because of where they are
        self.declared_runtime: set[str] = set()  # requirement files a runtime declaration names
        self.declared_optional: set[str] = set()  # ... and files an optional/extra group names
        self.build_flags: dict[str, list[str]] = {}  # requirement text -> pip build flags it came with

    # -- requirements
    def add_requirement(self, text: str, ev: Evidence, source: str, target=RUNTIME) -> bool:
        """Validate and record one requirement string; an invalid one is dropped with a warning."""
        text = text.strip()
        if _UNSAFE_RE.search(text):
            self.warn(ev, f"dropped '{shorten(text)}' (shell expansion or control characters)")
            return False
        try:
            check_requirement(text)
        except RequirementError as exc:
            self.warn(ev, f"dropped invalid requirement '{shorten(text)}' ({_reason(exc)})")
            return False
        if source in COMMAND_SOURCES and name_of(text) in _TOOLING and _is_bare(text):
            return False  # `pip install -U pip setuptools wheel uv` is tooling, not the repo's needs
        other_platform = not_for_linux(text)
        if other_platform:
            if target != RUNTIME:
                return False  # a platform file or group: not installed anyway, nothing to say
            self.warn(ev, f"dropped '{shorten(text)}': {other_platform}; the machine is Linux x86_64 with CUDA")
            return False
        fixed = _fix_name(text)
        if fixed != text:
            self.warn(ev, f"'{shorten(text)}' cannot be installed from PyPI under that name; "
                          f"installing '{shorten(fixed)}' instead")
            text = fixed
        entry = Entry(DeclaredRequirement(text, ev, source), ev.file)
        if target == RUNTIME:
            self.runtime.append(entry)
        else:
            kind, group = target
            bucket = self.optional if kind == "optional" else self.dev
            bucket.setdefault(group, []).append(entry)
        return True

    def add_build_flags(self, text: str, flags: Iterable[str]) -> None:
        have = self.build_flags.setdefault(text, [])
        have.extend(f for f in flags if f not in have)

    def add_extra_request(self, extras: Iterable[str], ev: Evidence) -> None:
        for extra in extras:
            extra = extra.strip()
            if not extra:
                continue
            if not _EXTRA_RE.match(extra):
                self.warn(ev, f"ignored extra '{shorten(extra)}' (not a valid extra name)")
                continue
            if is_dev_group(extra):
                continue
            if all(e != extra for e, _ in self.extras_requested):
                self.extras_requested.append((extra, ev))

    # -- facts
    def add_python(self, value: str, ev: Evidence) -> None:
        norm = python_version_text(value)
        if norm is None:
            self.warn(ev, f"ignored Python version '{shorten(value)}' (not a version or specifier)")
            return
        if all(v != norm or e.file != ev.file for v, e in self.python_versions):
            self.python_versions.append((norm, ev))

    def add_index_url(self, option: str, url: str, ev: Evidence) -> None:
        url = url.strip()
        if not re.match(r"^https?://[^\s'\"`$;|&<>()\\{}]+$", url):
            self.warn(ev, f"ignored {option} '{shorten(url)}' (only http(s) URLs are used)")
            return
        if is_pypi_mirror(url):
            self.warn(ev, f"ignored {option} {url}: a PyPI mirror; PyPI itself is used")
            return
        if all(u != url for _, u, _e in self.index_urls):
            self.index_urls.append((option, url, ev))

    def add_constraint(self, path: str, ev: Evidence) -> None:
        if not _SAFE_PATH_RE.match(path):
            self.warn(ev, f"constraints file '{shorten(path)}' has unusual characters in its name; ignored")
            return
        if self.index.has(path):
            if all(p != path for p, _ in self.constraints):
                self.constraints.append((path, ev))
        else:
            self.warn(ev, f"constraints file '{shorten(path)}' is not in the repo")

    def add_image(self, image: str, ev: Evidence) -> None:
        if all(i != image for i, _ in self.docker_images):
            self.docker_images.append((image, ev))

    def add_system_package(self, name: str, ev: Evidence) -> None:
        if not re.match(r"^[a-z0-9][a-z0-9+.-]*$", name):
            self.warn(ev, f"ignored system package '{shorten(name)}' (not a Debian package name)")
            return
        if all(n != name for n, _ in self.system_packages):
            self.system_packages.append((name, ev))

    def add_conda_only(self, name: str, ev: Evidence) -> None:
        if not re.match(r"^[A-Za-z0-9_.*=<>!,-]+$", name):
            self.warn(ev, f"ignored conda spec '{shorten(name)}' (unexpected characters)")
            return
        if all(n != name for n, _ in self.conda_only):
            self.conda_only.append((name, ev))

    def add_local_install(self, path: str, ev: Evidence) -> None:
        if not _SAFE_PATH_RE.match(path.split("[", 1)[0]) or not _EXTRAS_SUFFIX_RE.match(path):
            self.warn(ev, f"local path '{shorten(path)}' has unusual characters in its name; not installed")
            return
        if all(p != path for p, _ in self.local_installs):
            self.local_installs.append((path, ev))

    def set_package(self, ev: Evidence, name: str | None = None) -> None:
        if self.package_evidence is None:
            self.package_evidence = ev
        if name and not self.project_name:
            self.project_name = name

    def warn(self, ev: Evidence | str, message: str) -> None:
        where = ev.cite() if isinstance(ev, Evidence) else ev
        line = f"{where}: {message}"
        if line not in self.warnings:
            self.warnings.append(line)

    def has_requirements(self) -> bool:
        return bool(self.runtime)

    def merge(self, other: "Collector") -> None:
        """Append another scope's findings after this one's (used for the subdirectory fallback)."""
        self.runtime.extend(other.runtime)
        for src, dst in ((other.optional, self.optional), (other.dev, self.dev)):
            for group, entries in src.items():
                dst.setdefault(group, []).extend(entries)
        for name in ("extras_requested", "python_versions", "index_urls", "constraints",
                     "docker_images", "system_packages", "conda_only", "local_installs"):
            mine = getattr(self, name)
            for item in getattr(other, name):
                if item not in mine:
                    mine.append(item)
        for w in other.warnings:
            if w not in self.warnings:
                self.warnings.append(w)
        for text, flags in other.build_flags.items():
            self.add_build_flags(text, flags)


_OTHER_WHEEL_RE = re.compile(r"(?i)[-_.](win_amd64|win32|win_arm64|macosx_[0-9a-z_]+|[a-z0-9_]*aarch64|[a-z0-9_]*arm64|"
                             r"[a-z0-9_]*ppc64le|[a-z0-9_]*s390x)\.whl\b")
_OTHER_ACCEL_RE = re.compile(r"(?i)(ascend|\bnpu\b|[-_]npu\b|rocm\d*|\bhip\b|habana|gaudi|\bxpu\b|intel-extension)")
_OTHER_ACCEL_NAMES = frozenset({"torch-npu", "torch-xla", "torch-directml", "intel-extension-for-pytorch",
                                "habana-torch-plugin", "optimum-habana", "tensorflow-macos", "tensorflow-metal",
                                "mlx", "mlx-lm", "coremltools", "pytorch-triton-rocm", "onnxruntime-directml",
                                "tensorflow-directml"})
_LINUX_ENVS = [{"platform_system": "Linux", "sys_platform": "linux", "os_name": "posix",
                "platform_machine": "x86_64", "implementation_name": "cpython",
                "platform_python_implementation": "CPython", "python_version": v, "python_full_version": v + ".0",
                "extra": ""}
               for v in ("3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13")]


def not_for_linux(text: str) -> str | None:
    """Why a requirement cannot be meant for a Linux x86_64 CUDA machine, or None: a marker
    no Linux Python satisfies (``sys_platform == "win32"``), a wheel URL for another platform,
    an Ascend/ROCm/XPU/Apple package or URL."""
    from packaging.requirements import InvalidRequirement, Requirement

    url = text.split(" @ ", 1)[-1] if "://" in text else ""
    if url and _OTHER_WHEEL_RE.search(url):
        return "a wheel for another platform (" + _OTHER_WHEEL_RE.search(url).group(1) + ")"
    if url and _OTHER_ACCEL_RE.search(url):
        return "for another accelerator (" + _OTHER_ACCEL_RE.search(url).group(1) + ")"
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return None
    if canonical_name(req.name) in _OTHER_ACCEL_NAMES:
        return "for another accelerator or platform"
    if req.marker is not None:
        try:
            if not any(req.marker.evaluate(env) for env in _LINUX_ENVS):
                return f"its marker ({req.marker}) is false on Linux x86_64 (any Python 3)"
        except Exception:  # noqa: BLE001 - a marker packaging cannot evaluate: keep the line
            return None
    return None


def shorten(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reason(exc: Exception) -> str:
    """The why of a RequirementError ("'x' is not a valid requirement (why)")."""
    msg = str(exc)
    marker = " is not a valid requirement ("
    if marker in msg and msg.endswith(")"):
        return msg.split(marker, 1)[1][:-1]
    return msg


def python_version_text(value: str) -> str | None:
    """``3.10`` for an exact version (``3.10.12``, ``python-3.10``, ``3.10.*``), the specifier
    without spaces for a range (``>=3.9,<3.13``), or None when it is neither."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    text = value.strip().strip("'\"")
    text = re.sub(r"^(?:python|py)[-_ ]?(?=\d)", "", text, flags=re.I)
    m = re.match(r"^(\d+)\.(\d+)(?:\.(?:\d+|\*))?(?:[a-z]+\d*)?$", text)
    if m:
        return f"{m.group(1)}.{m.group(2)}"
    compact = re.sub(r"\s+", "", text)
    if not compact or not re.match(r"^[<>=!~]", compact):
        return None
    # one minor version written as a specifier: ==3.11.*, ==3.11.4, ~=3.10.0
    m = re.match(r"^(?:==|===)(\d+)\.(\d+)(?:\.(?:\d+|\*))?$|^~=(\d+)\.(\d+)\.\d+$", compact)
    if m:
        major, minor = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return f"{major}.{minor}"
    try:
        SpecifierSet(compact)
    except InvalidSpecifier:
        return None
    return compact


def resolve_path(base_dir: str, target: str) -> str | None:
    """A repo-relative POSIX path for ``target`` seen in a file of ``base_dir``; None if outside."""
    target = target.strip()
    if target.startswith("file:"):
        target = target[5:]
        if target.startswith("//"):
            target = target[2:]
    if target.startswith("/"):
        return None
    joined = posixpath.normpath(posixpath.join(base_dir, target)) if base_dir else posixpath.normpath(target)
    if joined == ".":
        return ""
    if joined.startswith("../") or joined == "..":
        return None
    return joined


def refines(old: str, new: str) -> bool:
    """``new`` says all ``old`` says and more: a pin for a bare name, or more extras with the
    same version constraint (never a different URL or a different pin)."""
    if old == new:
        return False
    try:
        from packaging.requirements import Requirement

        a, b = Requirement(old), Requirement(new)
    except Exception:  # noqa: BLE001 - nameless URLs never refine
        return False
    if a.url:
        return False
    if not str(a.specifier):
        return a.extras <= b.extras
    return str(a.specifier) == str(b.specifier) and not b.url and a.extras < b.extras


def url_name(text: str, known: dict) -> str | None:
    """For a nameless VCS/archive URL, the name its repository gives, when that name is already
    declared (``git+https://github.com/google/flaxformer`` next to ``flaxformer @ ...``)."""
    if "://" not in text or " @ " in text:
        return None
    repo = repo_url(text)
    if not repo:
        return None
    guess = canonical_name(repo.rsplit("/", 1)[-1])
    return guess if guess in known else None


def _fix_name(text: str) -> str:
    """``sklearn>=1.0`` -> ``scikit-learn>=1.0`` (see ``requirement_fixes`` in import_map.yaml)."""
    from gpu_lol.data import load_yaml

    fixes = (load_yaml("import_map.yaml") or {}).get("requirement_fixes") or {}
    m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?=$|[\s\[;<>=!~@(])", text)
    if not m:
        return text
    for wrong, right in fixes.items():
        if canonical_name(m.group(1)) == canonical_name(wrong):
            return right + text[m.end():]
    return text


def _is_bare(text: str) -> bool:
    """A name with no version and no URL (extras and markers allowed): ``torch``."""
    try:
        from packaging.requirements import Requirement

        req = Requirement(text)
    except Exception:  # noqa: BLE001 - a nameless URL is not bare
        return False
    return not req.url and not str(req.specifier)


def repo_url(url: str) -> str | None:
    """``git+https://github.com/o/r.git@v1#egg=x`` -> ``github.com/o/r``."""
    m = re.match(r"^(?:[a-z+]+://)?(?:[^@/]+@)?(?:www\.)?([^/]+/[^@#?]+?)(?:\.git)?/?(?:[@#?].*)?$",
                 url.strip().removeprefix("git+"), re.I)
    return m.group(1).lower() if m else None


def canonical_name(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def marker_of(text: str) -> str:
    try:
        from packaging.requirements import Requirement

        marker = Requirement(text).marker
        return str(marker) if marker else ""
    except Exception:  # noqa: BLE001 - nameless URLs have no marker
        return ""


def extras_of(text: str) -> list[str]:
    try:
        from packaging.requirements import Requirement

        return sorted(Requirement(text).extras)
    except Exception:  # noqa: BLE001
        return []


def order_python_versions(items: list[tuple[str, Evidence]]) -> list[tuple[str, Evidence]]:
    """Exact versions (``3.10``) before specifiers (``>=3.9``), each group in discovery order."""
    exact = [(v, e) for v, e in items if re.match(r"^\d+\.\d+$", v)]
    spec = [(v, e) for v, e in items if not re.match(r"^\d+\.\d+$", v)]
    return exact + spec
