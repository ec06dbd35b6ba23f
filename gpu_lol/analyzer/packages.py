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

Everything is read through the shared :class:`~gpu_lol.repo_index.FileIndex`; nothing is
executed and nothing outside the repo is read.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.requirements_text import name_of
from gpu_lol.analyzer.collector import (
    Collector,
    DEV_WORDS,
    DeclaredRequirement,
    PackageReport,
    RUNTIME,
    BASE_WORDS,
    Entry,
    GPU_WORDS_RE,
    PLATFORM_WORDS,
    WORD_SPLIT,
    in_never_dir,
    shorten,
    file_words,
    is_conda_file,
    is_dockerfile,
    is_readme,
    is_requirements_file,
    root_scope,
    variant,
    refines,
    url_name,
    repo_url,
    canonical_name,
    marker_of,
    extras_of,
    order_python_versions,
)

if TYPE_CHECKING:
    from gpu_lol.repo_index import FileIndex, RepoFile

# ---- the combiner ----------------------------------------------------------------------------

def collect(index: FileIndex) -> PackageReport:
    """Everything the repo declares about its packages; see the module docstring for the rules."""
    from gpu_lol.analyzer import imports as imports_mod

    root = Collector(index)
    _collect_scope(root, index, [f for f in index.files if not in_never_dir(f)], root_only=True)
    from_subdirs = False
    if not root.has_requirements() and root.package_evidence is None:
        candidates = [f for f in index.files if f.depth > 0 and not in_never_dir(f)]
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
        words |= {w for w in WORD_SPLIT.split(part.lower()) if w}
    if words & DEV_WORDS:
        return "dev"
    if words & PLATFORM_WORDS:
        return "platform"
    if "cpu" in words:
        return "cpu"
    if words & {"nvidia", "cuda", "gpu"} or any(GPU_WORDS_RE.match(w) for w in words):
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
        gpu = any(GPU_WORDS_RE.match(w) for w in words)
        basic = any(w in BASE_WORDS for w in words) and not (set(words) - set(BASE_WORDS))
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
    own = canonical_name(col.project_name) if col.project_name else None
    self_urls = {repo_url(u) for u in col.project_urls} - {None}
    self_names = {n for n in (own, canonical_name(index.root.name) if index.root.name else None) if n}

    def is_self(text: str, name: str | None) -> bool:
        if col.package_evidence is None:
            return False
        if own and name == own:
            return True
        url = repo_url(text.split(" @ ", 1)[-1]) if "://" in text else None
        if url is None:
            return False
        return url in self_urls or canonical_name(url.rsplit("/", 1)[-1]) in self_names

    def dedupe(entries: list[Entry], *, drop_own: bool) -> list[DeclaredRequirement]:
        owners: dict[str, str] = {}
        seen: dict[tuple[str, str], int] = {}
        out: list[DeclaredRequirement] = []
        for e in entries:
            text = e.req.text
            name = name_of(text)
            if drop_own and is_self(text, name):
                col.add_extra_request(extras_of(text), e.req.evidence)
                continue
            key = name or url_name(text, owners) or text
            marker = marker_of(text)
            owner = owners.setdefault(key, e.owner)
            at = seen.get((key, marker))
            if at is not None and refines(out[at].text, text):
                out[at] = e.req  # `torch` then `torch==2.1`, `black` then `black[jupyter]`
                owners[key] = e.owner
                continue
            if owner != e.owner:
                continue  # a later file does not override the owner
            if at is not None:
                if name is not None and text != out[at].text:
                    col.warn(e.req.evidence, f"'{shorten(text)}' repeats '{key}'; the first entry is kept")
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
    report.python_versions = order_python_versions(col.python_versions)
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
