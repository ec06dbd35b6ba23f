"""What packages the repo declares, from every source, with ``file:line`` evidence.

One module per source reads its files (``req_files``, ``pyproject``, ``setup_py``, ``conda``,
``pipfile``, ``dockerfile``, ``notebooks``, ``shell_installs``); this module decides which files
count and in what order, then dedupes. The imports fallback (``imports``) is used only when no
source declares anything.

Scope
    *Root-scope* files are the repo's own runtime declaration: files at the repo root, plus the
    conventional places for a kind of file: ``requirements/`` (also ``reqs/``,
    ``requirements.d/``) for requirement files, ``docker/`` and ``.devcontainer/`` for
    Dockerfiles, ``scripts/`` (also ``script/``, ``bin/``, ``slurm/``) for shell launch scripts,
    ``notebooks/`` (also ``nbs/``) for notebooks, ``envs/`` and ``conda/`` for conda files.
    Everything else (``examples/x/requirements.txt``, ``benchmarks/``, sub-projects) is a
    *subdirectory* source: used only when the root declares nothing and the repo is not an
    installable package (``pip install .`` would resolve its own dependencies), and then only the
    shallowest depth at which something declares packages (``mnist/requirements.txt`` and
    ``imagenet/requirements.txt`` together, not ``imagenet/deep/requirements.txt``).
    ``tests/``, ``docs/`` and vendored code (``third_party/``, ``vendor/``, ``external/``) never
    count. When nothing declares anything, the imports of the repo's Python and notebooks are
    the fallback (:mod:`gpu_lol.analyzer.imports`).

Precedence (first wins when two sources name the same package)
    1. requirement files: ``requirements.txt``, the other root ``requirements*.txt`` (sorted),
       then ``requirements/*.txt`` (``base``/``common``/``core``/``main``/``runtime`` first, then
       ``cuda``/``gpu`` variants, then the rest); a ``.in`` file only where no ``.txt`` twin
       exists; ``-r`` includes are read where they appear;
    2. ``pyproject.toml`` (PEP 621, Poetry, Flit, PDM/uv groups, setuptools/hatch dynamic
       dependency files);
    3. ``setup.py`` (read with ``ast``, never executed); 4. ``setup.cfg``; 5. ``Pipfile``;
    6. conda ``environment.yml``; 7. Dockerfiles (root ``Dockerfile`` first);
    8. notebooks; 9. shell scripts, then README/INSTALL code blocks.

Dedupe
    By canonical project name (``requirements_text.name_of``). The first *file*, in precedence
    order, that names a package owns it: its entries for that name are kept (several when they
    carry different environment markers, e.g. one torch pin per platform) and later files'
    entries for the same name are dropped, with one exception: an entry is replaced by a later
    one (from any file) that says all it says and more under the same marker: a bare ``torch``
    in setup.py by ``pytorch=1.11.0`` from environment.yml, ``black`` by ``black[jupyter]``,
    since installing both would give the same result. A nameless ``git+`` URL takes the name of
    its repository when that name is already declared. A requirement naming the repo's own
    project (``pip install mypkg[train]`` in the README of ``mypkg``, or ``git+`` the URL its
    metadata gives as its home) is not a requirement: the repo itself is installed, its extras
    go to ``extras_requested`` (developer extras are left out). Optional and dev groups keep
    their lines as declared (only exact repeats dropped).

File variants
    File names are split into words on ``-``, ``_`` and ``.``. Development words (``dev``,
    ``test``, ``docs``, ``lint``, ``ci``, ``typing``, ``build``, ``bench`` ...) put a file or
    group into ``dev`` (recorded, never installed). Non-CUDA platform words (``rocm``, ``tpu``,
    ``xpu``, ``hpu``, ``neuron``, ``npu``, ``mps``, ``mac``, ``windows``, ``openvino``, and
    ``cpu`` when a ``gpu``/``cuda`` twin exists) and ``optional``/``extra(s)`` put a
    requirement file into ``optional`` under its path, and make a Dockerfile not count at all.

Decisions (where the issue is silent)
    - Install commands (scripts, README blocks, notebooks, Dockerfiles) are read as a shell
      would read them, but a command holding ``$(...)``/backticks or a ``<placeholder>`` is left
      out whole with a warning: what it installs cannot be known. Unknown ``$VARS`` drop the
      argument that uses them.
    - A ``--index-url`` on one ``pip install`` command applies to that command only; for the
      environment it is recorded as an ``--extra-index-url`` (PyPI stays). In a requirements
      file it is kept as written. PyPI itself and regional PyPI mirrors (tuna, aliyun, ...) are
      never passed on (a distant mirror is slow); other indexes on those hosts are kept.
    - ``pip install -U pip setuptools wheel uv`` in a command is tooling, not a requirement
      (a pinned ``setuptools<70`` is kept). Requirement names that cannot install as written
      (``sklearn``, ``PIL``, ``cv2``, ``yaml``) become their distribution, with a warning.
    - README blocks are the weakest source but still count (``pip install flash-attn
      --no-build-isolation`` cannot live in requirements.txt); inline code in prose does not.
    - Indexes and constraints of dev and platform files are not the environment's.
    - Python versions: exact ones (``3.10``) are listed before ranges (``>=3.9``); each with its
      evidence; the caller picks.
    - ``local_installs``: sub-packages of the repo that a requirement line installs by path
      (``-e ./libs/x``); ``project_name``: the repo's distribution name; ``dev``: developer
      groups and files, recorded, never to be installed.

Everything is read through the shared :class:`~gpu_lol.analyzer.index.FileIndex`; nothing is
executed and nothing outside the repo is read.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from gpu_lol.analyzer.locations import NEVER_DIRS
from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.requirements_text import RequirementError, check_requirement, name_of

if TYPE_CHECKING:
    from gpu_lol.analyzer.index import FileIndex, RepoFile

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
        own = _canon(self.project_name) if self.project_name else None
        out: list[DeclaredRequirement] = []
        todo = [name for name, _ in self.extras_requested]
        seen: set[str] = set()
        while todo:
            group = todo.pop(0)
            key = _canon(group)
            if key in seen:
                continue
            seen.add(key)
            entries = next((v for k, v in self.optional.items() if _canon(k) == key), [])
            for req in entries:
                if own and name_of(req.text) == own:
                    todo.extend(_extras_of(req.text))
                elif req not in out:
                    out.append(req)
        return out


# ---- file naming: which files are which source, and which variants -------------------------

_WORD_SPLIT = re.compile(r"[-_.\s]+")
DEV_WORDS = frozenset({
    "dev", "devel", "develop", "development", "test", "tests", "testing", "doc", "docs",
    "documentation", "sphinx", "rtd", "readthedocs", "mkdocs", "lint", "linting", "linter", "style",
    "format", "formatting", "typing", "types", "mypy", "ci", "precommit", "build", "bench",
    "benchmark", "benchmarks", "coverage", "tox", "nox", "check", "checks", "qa",
})
_PLATFORM_WORDS = frozenset({
    "rocm", "amd", "hip", "tpu", "xla", "neuron", "inf2", "trn", "xpu", "hpu", "gaudi", "habana",
    "npu", "ascend", "mps", "mac", "macos", "osx", "darwin", "apple", "m1", "windows", "win",
    "win32", "win64", "openvino", "ipex", "intel", "jetson", "arm64", "aarch64",
})
_OPTIONAL_WORDS = frozenset({"optional", "extra", "extras"})
_GPU_WORDS_RE = re.compile(r"^(gpu|cuda|cu\d{2,3}|cuda\d+)$")

REQ_DIRS = frozenset({"requirements", "reqs", "requirements.d", "requirement"})
DOCKER_DIRS = frozenset({"docker", ".devcontainer", "dockerfiles", ".docker", "container"})
SCRIPT_DIRS = frozenset({"scripts", "script", "bin", "slurm", "launch", "launchers", "jobs"})
NOTEBOOK_DIRS = frozenset({"notebooks", "notebook", "nbs"})
CONDA_DIRS = frozenset({"envs", "conda", "environments", "environment", "env"})
# Never the repo's runtime declaration, not even as a fallback.
_BASE_WORDS = ("base", "common", "core", "main", "runtime", "requirements", "default", "prod",
               "production", "install", "minimal", "min")


def file_words(rel: str) -> list[str]:
    """Lower-case words of a file's name without its extension (``requirements-dev`` -> 2)."""
    name = rel.rsplit("/", 1)[-1].lower()
    if name.endswith((".txt", ".in", ".yml", ".yaml", ".sh", ".bash", ".md", ".rst", ".toml")):
        name = name.rsplit(".", 1)[0]
    return [w for w in _WORD_SPLIT.split(name) if w]


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
    if words & _PLATFORM_WORDS:
        return "platform"
    if "cpu" in words:
        for other in siblings:
            if other != rel and any(_GPU_WORDS_RE.match(w) for w in file_words(other)):
                return "platform"
    if words & _OPTIONAL_WORDS:
        return "optional"
    return "runtime"


_TRAINING_WORDS = frozenset({"train", "training", "finetune", "finetuning", "sft", "rlhf", "dpo", "deepspeed",
                             "megatron"})


def is_training_extra(name: str) -> bool:
    """An extra for training only (``train``, ``deepspeed``): not installed for an inference plan."""
    return bool(set(w for w in _WORD_SPLIT.split(name.lower()) if w) & _TRAINING_WORDS)


def is_dev_group(name: str) -> bool:
    """An optional-dependency group or extra that is for developers, never installed."""
    words = set(w for w in _WORD_SPLIT.split(name.lower()) if w)
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


def _in_never_dir(f: RepoFile) -> bool:
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
class _Entry:
    req: DeclaredRequirement
    owner: str  # the file that holds the line


class Collector:
    """Accumulates one scope's findings; source modules call its ``add_*`` methods.

    ``target`` names where a requirement goes: ``RUNTIME``, ``("optional", group)`` or
    ``("dev", group)``.
    """

    def __init__(self, index: FileIndex):
        self.index = index
        self.runtime: list[_Entry] = []
        self.optional: dict[str, list[_Entry]] = {}
        self.dev: dict[str, list[_Entry]] = {}
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
            self.warn(ev, f"dropped '{_short(text)}' (shell expansion or control characters)")
            return False
        try:
            check_requirement(text)
        except RequirementError as exc:
            self.warn(ev, f"dropped invalid requirement '{_short(text)}' ({_reason(exc)})")
            return False
        if source in COMMAND_SOURCES and name_of(text) in _TOOLING and _is_bare(text):
            return False  # `pip install -U pip setuptools wheel uv` is tooling, not the repo's needs
        other_platform = not_for_linux(text)
        if other_platform:
            if target != RUNTIME:
                return False  # a platform file or group: not installed anyway, nothing to say
            self.warn(ev, f"dropped '{_short(text)}': {other_platform}; the machine is Linux x86_64 with CUDA")
            return False
        fixed = _fix_name(text)
        if fixed != text:
            self.warn(ev, f"'{_short(text)}' cannot be installed from PyPI under that name; "
                          f"installing '{_short(fixed)}' instead")
            text = fixed
        entry = _Entry(DeclaredRequirement(text, ev, source), ev.file)
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
                self.warn(ev, f"ignored extra '{_short(extra)}' (not a valid extra name)")
                continue
            if is_dev_group(extra):
                continue
            if all(e != extra for e, _ in self.extras_requested):
                self.extras_requested.append((extra, ev))

    # -- facts
    def add_python(self, value: str, ev: Evidence) -> None:
        norm = python_version_text(value)
        if norm is None:
            self.warn(ev, f"ignored Python version '{_short(value)}' (not a version or specifier)")
            return
        if all(v != norm or e.file != ev.file for v, e in self.python_versions):
            self.python_versions.append((norm, ev))

    def add_index_url(self, option: str, url: str, ev: Evidence) -> None:
        url = url.strip()
        if not re.match(r"^https?://[^\s'\"`$;|&<>()\\{}]+$", url):
            self.warn(ev, f"ignored {option} '{_short(url)}' (only http(s) URLs are used)")
            return
        if is_pypi_mirror(url):
            self.warn(ev, f"ignored {option} {url}: a PyPI mirror; PyPI itself is used")
            return
        if all(u != url for _, u, _e in self.index_urls):
            self.index_urls.append((option, url, ev))

    def add_constraint(self, path: str, ev: Evidence) -> None:
        if not _SAFE_PATH_RE.match(path):
            self.warn(ev, f"constraints file '{_short(path)}' has unusual characters in its name; ignored")
            return
        if self.index.has(path):
            if all(p != path for p, _ in self.constraints):
                self.constraints.append((path, ev))
        else:
            self.warn(ev, f"constraints file '{_short(path)}' is not in the repo")

    def add_image(self, image: str, ev: Evidence) -> None:
        if all(i != image for i, _ in self.docker_images):
            self.docker_images.append((image, ev))

    def add_system_package(self, name: str, ev: Evidence) -> None:
        if not re.match(r"^[a-z0-9][a-z0-9+.-]*$", name):
            self.warn(ev, f"ignored system package '{_short(name)}' (not a Debian package name)")
            return
        if all(n != name for n, _ in self.system_packages):
            self.system_packages.append((name, ev))

    def add_conda_only(self, name: str, ev: Evidence) -> None:
        if not re.match(r"^[A-Za-z0-9_.*=<>!,-]+$", name):
            self.warn(ev, f"ignored conda spec '{_short(name)}' (unexpected characters)")
            return
        if all(n != name for n, _ in self.conda_only):
            self.conda_only.append((name, ev))

    def add_local_install(self, path: str, ev: Evidence) -> None:
        if not _SAFE_PATH_RE.match(path.split("[", 1)[0]) or not _EXTRAS_SUFFIX_RE.match(path):
            self.warn(ev, f"local path '{_short(path)}' has unusual characters in its name; not installed")
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
    if _canon(req.name) in _OTHER_ACCEL_NAMES:
        return "for another accelerator or platform"
    if req.marker is not None:
        try:
            if not any(req.marker.evaluate(env) for env in _LINUX_ENVS):
                return f"its marker ({req.marker}) is false on Linux x86_64 (any Python 3)"
        except Exception:  # noqa: BLE001 - a marker packaging cannot evaluate: keep the line
            return None
    return None


def _short(text: str, limit: int = 80) -> str:
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


# ---- the combiner ----------------------------------------------------------------------------

def collect(index: FileIndex) -> PackageReport:
    """Everything the repo declares about its packages; see the module docstring for the rules."""
    from gpu_lol.analyzer import imports as imports_mod

    root = Collector(index)
    _collect_scope(root, index, [f for f in index.files if not _in_never_dir(f)], root_only=True)
    from_subdirs = False
    if not root.has_requirements() and root.package_evidence is None:
        candidates = [f for f in index.files if f.depth > 0 and not _in_never_dir(f)]
        for depth in sorted({f.depth for f in candidates}):
            sub = Collector(index)
            sub.visited = set(root.visited)
            _collect_scope(sub, index, [f for f in candidates if f.depth == depth], root_only=False)
            if sub.has_requirements():
                root.merge(sub)
                from_subdirs = True
                break
    report = _finish(root, index)
    report.from_subdirs = from_subdirs
    report.imports = imports_mod.scan_imports(index)
    if not report.requirements and not report.is_package:
        reqs, warnings = imports_mod.fallback_requirements(index)
        report.requirements = reqs
        report.from_imports = bool(reqs)
        report.warnings.extend(w for w in warnings if w not in report.warnings)
        if reqs:
            report.sources = list(dict.fromkeys(r.evidence.file for r in reqs))
    return report


def scan_imports(index: FileIndex) -> dict[str, list[Evidence]]:
    """Top-level third-party import name -> first few import sites (.py files and notebooks)."""
    from gpu_lol.analyzer import imports as imports_mod

    return imports_mod.scan_imports(index)


def pypi_name(import_name: str) -> str:
    """The PyPI distribution an import name comes from (``cv2`` -> ``opencv-python``)."""
    from gpu_lol.analyzer import imports as imports_mod

    return imports_mod.pypi_name(import_name)


def _collect_scope(col: Collector, index: FileIndex, files: list[RepoFile], root_only: bool) -> None:
    """Run every source over ``files`` in precedence order.

    ``root_only``: take only root-scope files; otherwise every file given that is not root-scope
    (the caller hands over one depth at a time).
    """
    from gpu_lol.analyzer import (conda, dockerfile, notebooks, pipfile, pyproject, req_files,
                                  setup_py, shell_installs)

    kinds: dict[str, list[RepoFile]] = {k: [] for k in ("requirements", "pyproject", "setup.py",
                                                        "setup.cfg", "pipfile", "conda",
                                                        "dockerfile", "notebook", "shell", "readme")}
    for f in files:
        name = f.name.lower()
        if is_requirements_file(f):
            kind = "requirements"
        elif name == "pyproject.toml":
            kind = "pyproject"
        elif name == "setup.py":
            kind = "setup.py"
        elif name == "setup.cfg":
            kind = "setup.cfg"
        elif f.name == "Pipfile":
            kind = "pipfile"
        elif is_conda_file(f):
            kind = "conda"
        elif is_dockerfile(f):
            kind = "dockerfile"
        elif f.suffix == ".ipynb":
            kind = "notebook"
        elif f.suffix in (".sh", ".bash"):
            kind = "shell"
        elif is_readme(f):
            kind = "readme"
        else:
            continue
        in_scope = root_scope(f, kind)
        if root_only and not in_scope:
            continue
        if not root_only and in_scope:
            continue
        kinds[kind].append(f)
    if root_only:
        _python_version_files(col, index)
    # 1. requirement files (a requirements/ folder beside a root declaration: only the files
    #    the install steps or the package metadata name; the others are optional groups)
    unnamed = _unnamed_requirement_files(index, kinds) if root_only else set()
    for f, var in _ordered_requirement_files(kinds["requirements"]):
        if var == "runtime" and f.rel in unnamed:
            req_files.parse_file(col, f.rel, ("optional", f.rel))
        elif var == "runtime":
            col.scanned.add(f.rel)
            req_files.parse_file(col, f.rel, RUNTIME)
    for f, var in _ordered_requirement_files(kinds["requirements"]):
        if var == "dev":
            req_files.parse_file(col, f.rel, ("dev", f.rel))
        elif var in ("platform", "optional"):
            req_files.parse_file(col, f.rel, ("optional", f.rel))
    # 2-5. package metadata
    for f in kinds["pyproject"]:
        pyproject.parse(col, f.rel)
    for f in kinds["setup.py"]:
        setup_py.parse_setup_py(col, f.rel)
    for f in kinds["setup.cfg"]:
        setup_py.parse_setup_cfg(col, f.rel)
    for f in kinds["pipfile"]:
        pipfile.parse(col, f.rel)
    # 6. conda
    conda_rels = [f.rel for f in kinds["conda"]]
    for f in sorted(kinds["conda"], key=lambda f: (f.depth, not f.name.lower().startswith("environment."), f.rel)):
        var = variant(f.rel, [r for r in conda_rels if r.rsplit("/", 1)[0:-1] == f.rel.rsplit("/", 1)[0:-1]])
        target = RUNTIME if var == "runtime" else (("dev", f.rel) if var == "dev" else ("optional", f.rel))
        conda.parse(col, f.rel, target)
    # 7. Dockerfiles: the root `Dockerfile` first, then CUDA/GPU ones; dev and non-CUDA variants
    #    do not count, a CPU one only when it is the only kind there is
    docker = [f for f in kinds["dockerfile"] if _docker_kind(f) not in ("dev", "platform")]
    if any(_docker_kind(f) != "cpu" for f in docker):
        docker = [f for f in docker if _docker_kind(f) != "cpu"]
    docker.sort(key=lambda f: (f.depth, f.name != "Dockerfile", _docker_kind(f) != "gpu", f.rel))
    for f in docker:
        dockerfile.parse(col, f.rel)
    # 8. notebooks
    for f in kinds["notebook"]:
        notebooks.parse(col, f.rel)
    # 9. shell scripts, then README-like docs
    for f in kinds["shell"]:
        if variant(f.rel) in ("runtime", "optional"):
            shell_installs.parse_script(col, f.rel)
    for f in sorted(kinds["readme"], key=lambda f: (f.depth, not f.name.lower().startswith("readme"), f.rel)):
        shell_installs.parse_readme(col, f.rel)


def _unnamed_requirement_files(index: FileIndex, kinds: dict[str, list]) -> set[str]:
    """Files in ``requirements/`` that nothing names, when the repo has a root declaration
    (``requirements.txt``, ``pyproject.toml``, ``setup.py``, ``setup.cfg``): LLaMA-Factory's
    ``requirements/vllm.txt``, ``requirements/npu.txt``... are what other install paths use, not
    the main one (``pip install -e .`` plus the extras file the README names)."""
    req_dir = [f for f in kinds["requirements"] if f.depth == 1]
    root_decl = any(f.depth == 0 for f in kinds["requirements"]) or any(
        f.depth == 0 for k in ("pyproject", "setup.py", "setup.cfg") for f in kinds[k])
    if not req_dir or not root_decl:
        return set()
    texts = []
    for k in ("readme", "shell", "dockerfile", "pyproject", "setup.py", "setup.cfg", "requirements"):
        for f in kinds[k]:
            if k == "requirements" and f.depth != 0:
                continue
            text = index.text(f.rel)
            if text:
                texts.append(text)
    blob = "\n".join(texts)
    named = set()
    for f in req_dir:
        if f.rel in blob or re.search(r"(?<![\w/.-])" + re.escape(f.name) + r"(?![\w.-])", blob):
            named.add(f.rel)
    # requirement files a named one includes (`-r base.txt`) are read through it anyway
    return {f.rel for f in req_dir} - named


def _python_version_files(col: Collector, index: FileIndex) -> None:
    """``.python-version`` (pyenv; first version line) and ``runtime.txt`` (``python-3.10.12``)."""
    for rel in (".python-version", "runtime.txt"):
        if not index.has(rel):
            continue
        for number, line in enumerate(index.lines(rel), 1):
            value = line.split("#", 1)[0].strip()
            if value:
                if re.match(r"^(python-)?\d", value):
                    col.add_python(value, Evidence(rel, number, value))
                break


def _docker_kind(f: RepoFile) -> str:
    """'dev', 'platform' (ROCm, TPU, ...), 'cpu', 'gpu' or 'plain', from the Dockerfile's name
    and folders (``Dockerfile.rocm``, ``docker/cpu/Dockerfile``, ``docker/nvidia/Dockerfile``)."""
    words: set[str] = set()
    for part in f.parts[:-1] + (re.sub(r"(?i)dockerfile", "", f.name),):
        words |= {w for w in _WORD_SPLIT.split(part.lower()) if w}
    if words & DEV_WORDS:
        return "dev"
    if words & _PLATFORM_WORDS:
        return "platform"
    if "cpu" in words:
        return "cpu"
    if words & {"nvidia", "cuda", "gpu"} or any(_GPU_WORDS_RE.match(w) for w in words):
        return "gpu"
    return "plain"


def _ordered_requirement_files(files: list[RepoFile]) -> list[tuple[RepoFile, str]]:
    present = {f.rel for f in files}
    chosen = []
    for f in files:
        if f.suffix == ".in" and f.rel[:-3] + ".txt" in present:
            continue  # pip-tools: the compiled .txt has the pins
        chosen.append(f)

    def key(f: RepoFile):
        words = file_words(f.rel)
        base = f.name.lower() in ("requirements.txt", "requirements.in")
        gpu = any(_GPU_WORDS_RE.match(w) for w in words)
        basic = any(w in _BASE_WORDS for w in words) and not (set(words) - set(_BASE_WORDS))
        return (f.depth, not base, not basic, not gpu, f.rel)

    chosen.sort(key=key)
    out = []
    for f in chosen:
        siblings = [o.rel for o in chosen if o.parent == f.parent]
        out.append((f, variant(f.rel, siblings)))
    return out


def _finish(col: Collector, index: FileIndex) -> PackageReport:
    report = PackageReport()
    report.project_name = col.project_name
    if col.package_evidence is not None:
        report.is_package = True
        report.package_evidence = col.package_evidence
    elif col.self_install is not None:
        col.warn(col.self_install, "installs the repo itself, but the repo has no setup.py, "
                                   "setup.cfg or pyproject.toml; not installed")
    own = _canon(col.project_name) if col.project_name else None
    self_urls = {_repo_url(u) for u in col.project_urls} - {None}
    self_names = {n for n in (own, _canon(index.root.name) if index.root.name else None) if n}

    def is_self(text: str, name: str | None) -> bool:
        if col.package_evidence is None:
            return False
        if own and name == own:
            return True
        url = _repo_url(text.split(" @ ", 1)[-1]) if "://" in text else None
        if url is None:
            return False
        return url in self_urls or _canon(url.rsplit("/", 1)[-1]) in self_names

    def dedupe(entries: list[_Entry], *, drop_own: bool) -> list[DeclaredRequirement]:
        owners: dict[str, str] = {}
        seen: dict[tuple[str, str], int] = {}
        out: list[DeclaredRequirement] = []
        for e in entries:
            text = e.req.text
            name = name_of(text)
            if drop_own and is_self(text, name):
                col.add_extra_request(_extras_of(text), e.req.evidence)
                continue
            key = name or _url_name(text, owners) or text
            marker = _marker_of(text)
            owner = owners.setdefault(key, e.owner)
            at = seen.get((key, marker))
            if at is not None and _refines(out[at].text, text):
                out[at] = e.req  # `torch` then `torch==2.1`, `black` then `black[jupyter]`
                owners[key] = e.owner
                continue
            if owner != e.owner:
                continue  # a later file does not override the owner
            if at is not None:
                if name is not None and text != out[at].text:
                    col.warn(e.req.evidence, f"'{_short(text)}' repeats '{key}'; the first entry is kept")
                continue
            seen[(key, marker)] = len(out)
            out.append(e.req)
        return out

    # A root requirements file that package metadata reads as an extra (setup.py
    # `extras_require={"x": open("requirements-x.txt")...}`) is that extra, not a runtime file,
    # unless a runtime declaration names it too.
    demoted = (col.declared_optional & col.scanned) - col.declared_runtime
    runtime = [e for e in col.runtime if e.owner not in demoted]
    report.requirements = dedupe(runtime, drop_own=True)
    runtime_files = {r.evidence.file for r in report.requirements}
    for path in list(col.optional):
        if path in runtime_files:
            del col.optional[path]  # a variant file that something installs after all
    # groups are recorded as declared: only exact repeats are dropped (pip installs a group's
    # lines together, `transformers[kernels]` and `transformers[hub-kernels]` both count)
    for src, dst in ((col.optional, report.optional), (col.dev, report.dev)):
        for group, entries in src.items():
            kept: list[DeclaredRequirement] = []
            for e in entries:
                if all(k.text != e.req.text for k in kept):
                    kept.append(e.req)
            if kept:
                dst[group] = kept
    sources: list[str] = []
    for r in report.requirements:
        if r.evidence.file not in sources:
            sources.append(r.evidence.file)
    report.sources = sources
    report.extras_requested = list(col.extras_requested)
    report.python_versions = _order_python(col.python_versions)
    report.index_urls = list(col.index_urls)
    report.constraints = list(col.constraints)
    report.docker_images = list(col.docker_images)
    report.system_packages = list(col.system_packages)
    report.conda_only = list(col.conda_only)
    report.local_installs = list(col.local_installs)
    report.warnings = list(col.warnings)
    kept = {r.text for r in report.requirements}
    report.build_flags = {text: list(flags) for text, flags in col.build_flags.items() if text in kept}
    return report


def _refines(old: str, new: str) -> bool:
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


def _url_name(text: str, known: dict) -> str | None:
    """For a nameless VCS/archive URL, the name its repository gives, when that name is already
    declared (``git+https://github.com/google/flaxformer`` next to ``flaxformer @ ...``)."""
    if "://" not in text or " @ " in text:
        return None
    repo = _repo_url(text)
    if not repo:
        return None
    guess = _canon(repo.rsplit("/", 1)[-1])
    return guess if guess in known else None


def _fix_name(text: str) -> str:
    """``sklearn>=1.0`` -> ``scikit-learn>=1.0`` (see ``requirement_fixes`` in import_map.yaml)."""
    from gpu_lol.data import load_yaml

    fixes = (load_yaml("import_map.yaml") or {}).get("requirement_fixes") or {}
    m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?=$|[\s\[;<>=!~@(])", text)
    if not m:
        return text
    for wrong, right in fixes.items():
        if _canon(m.group(1)) == _canon(wrong):
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


def _repo_url(url: str) -> str | None:
    """``git+https://github.com/o/r.git@v1#egg=x`` -> ``github.com/o/r``."""
    m = re.match(r"^(?:[a-z+]+://)?(?:[^@/]+@)?(?:www\.)?([^/]+/[^@#?]+?)(?:\.git)?/?(?:[@#?].*)?$",
                 url.strip().removeprefix("git+"), re.I)
    return m.group(1).lower() if m else None


def _canon(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def _marker_of(text: str) -> str:
    try:
        from packaging.requirements import Requirement

        marker = Requirement(text).marker
        return str(marker) if marker else ""
    except Exception:  # noqa: BLE001 - nameless URLs have no marker
        return ""


def _extras_of(text: str) -> list[str]:
    try:
        from packaging.requirements import Requirement

        return sorted(Requirement(text).extras)
    except Exception:  # noqa: BLE001
        return []


def _order_python(items: list[tuple[str, Evidence]]) -> list[tuple[str, Evidence]]:
    """Exact versions (``3.10``) before specifiers (``>=3.9``), each group in discovery order."""
    exact = [(v, e) for v, e in items if re.match(r"^\d+\.\d+$", v)]
    spec = [(v, e) for v, e in items if not re.match(r"^\d+\.\d+$", v)]
    return exact + spec
