"""Which third-party modules the repo's Python imports, and where.

Every ``.py`` file and every notebook code cell in the index is scanned for ``import x`` and
``from x import y`` statements. The scan reads import statements line by line rather than
building a full ``ast`` for every file: on a large tree (11,000 files, 136 MB) ``ast.parse``
takes about 16 s, the line scan under 1 s, and the line scan also reads Python 2 files. It skips
statements inside triple-quoted strings, and walks up the indentation to find the enclosing
blocks: an import inside ``try:`` (or an ``except ImportError`` handler) or under
``if TYPE_CHECKING:`` is *optional*.

Filtered out: the standard library (``sys.stdlib_module_names``, ``__future__``, and Python 2
names such as ``urllib2``), relative imports, and the repo's own modules: a module or package
importable from the repo root, ``src/``, ``lib/``, ``python/`` or any folder of scripts (a folder
with ``.py`` files and no ``__init__.py``); a folder without ``__init__.py`` counts for
``import name`` only at the root or ``src/``, deeper it counts only when the import names a
module inside it (so ``examples/tensorflow/`` does not hide ``import tensorflow``).

:func:`fallback_requirements` (used only when nothing declares packages) maps the required
imports of runtime code (not tests, docs or ``setup.py``) to PyPI names through
``gpu_lol/data/import_map.yaml``; an import that is not known there is reported, never
installed from a guessed name.
"""

from __future__ import annotations

import bisect
import functools
import re
import sys
from dataclasses import dataclass

from gpu_lol.analyzer.evidence import Evidence

MAX_SITES = 5  # evidence kept per import name
MAX_UNKNOWN_WARNINGS = 8  # unknown imports named one by one in the fallback's warnings
# matched at a line start that has "import" on it
_IMPORT_RE = re.compile(
    r"([ \t]*)(?:import[ \t]+(?P<names>[^\n#;]+)|from[ \t]+(?P<dots>\.*)[ \t]*(?P<mod>[\w.]*)[ \t]+import\b)")
_NAME_RE = re.compile(r"^[A-Za-z_][\w.]*$")
_PY2_STDLIB = frozenset({
    "__builtin__", "urllib2", "urlparse", "ConfigParser", "cPickle", "StringIO", "cStringIO",
    "Queue", "commands", "httplib", "HTMLParser", "htmlentitydefs", "thread", "dummy_thread",
    "exceptions", "sets", "md5", "sha", "Tkinter", "tkMessageBox", "tkFileDialog", "cookielib",
    "Cookie", "xmlrpclib", "SimpleXMLRPCServer", "SocketServer", "BaseHTTPServer",
    "SimpleHTTPServer", "CGIHTTPServer", "copy_reg", "anydbm", "dbhash", "whichdb", "robotparser",
    "UserDict", "UserList", "UserString", "repr", "popen2", "new", "imp", "distutils", "asynchat",
    "asyncore", "smtpd", "imghdr", "sndhdr", "pipes", "telnetlib", "cgi", "cgitb", "crypt",
    "nntplib", "spwd", "sunau", "uu", "xdrlib", "msilib", "nis", "ossaudiodev", "audioop",
    "aifc", "chunk", "mailcap", "__main__", "builtins", "_thread",
})
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"} | _PY2_STDLIB
# top-level names that are namespaces shared by several distributions
_NAMESPACES = frozenset({"google", "azure", "nvidia", "backports", "jaraco", "zope", "sphinxcontrib",
                         "ruamel", "opentelemetry", "mpl_toolkits"})
_NOT_RUNTIME_DIRS = frozenset({"test", "tests", "testing", "doc", "docs", "documentation",
                               "third_party", "thirdparty", "third-party", "vendor", "vendored",
                               "external", "extern", "benchmarks", "benchmark", ".github"})
_NOT_RUNTIME_FILES = frozenset({"setup.py", "conftest.py", "noxfile.py", "tasks.py", "fabfile.py",
                                "dodo.py", "conf.py", "versioneer.py", "_version.py"})


@dataclass(frozen=True)
class ImportSite:
    name: str  # the key: top-level name, or a dotted prefix for namespace packages (google.protobuf)
    module: str  # the module as written
    evidence: Evidence
    optional: bool  # inside try/except ImportError, an ImportError handler, or if TYPE_CHECKING


# ---- the import map ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _import_map() -> tuple[dict[str, str | None], frozenset[str]]:
    from gpu_lol.data import load_yaml

    data = load_yaml("import_map.yaml") or {}
    renamed = dict(data.get("renamed") or {})
    same = frozenset(str(x) for x in data.get("same") or [])
    return renamed, same


@functools.lru_cache(maxsize=4096)
def _lookup(module: str) -> tuple[str | None, str | None]:
    """(matched key, PyPI name or None) for the longest known prefix of a dotted module."""
    renamed, same = _import_map()
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in renamed:
            return key, renamed[key]
    top = parts[0]
    if top in same:
        return top, top
    return None, None


def pypi_name(import_name: str) -> str:
    """The PyPI distribution an import comes from (``cv2`` -> ``opencv-python``); an unknown
    name maps to itself. See :func:`resolve_import` for whether it is safe to install."""
    key, pypi = _lookup(import_name)
    if key is not None and pypi:
        return pypi
    return import_name.split(".")[0] if key is None else import_name


def resolve_import(import_name: str) -> str | None:
    """The PyPI name to install for an import, or None when unknown or not on PyPI."""
    _key, pypi = _lookup(import_name)
    return pypi


def key_for(module: str) -> str:
    """The name an import is reported under: the top level, or for namespace packages the
    longest known prefix (``google.protobuf``) or the first two parts."""
    top = module.split(".")[0]
    if top not in _NAMESPACES:
        return top
    key, _ = _lookup(module)
    if key is not None and "." in key:
        return key
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else top


# ---- scanning ---------------------------------------------------------------------------------

def scan_source(text: str) -> list[tuple[int, str, bool]]:
    """(line, module, optional) for every absolute import statement in Python source."""
    if "import" not in text:
        return []
    strings: list[tuple[int, int]] | None = None
    starts: list[int] = []
    lines: list[str] | None = None
    out: list[tuple[int, str, bool]] = []
    line_no, last_pos = 1, 0
    find = text.find
    pos = 0
    while True:
        hit = find("import", pos)
        if hit < 0:
            break
        line_start = text.rfind("\n", 0, hit) + 1
        nl = find("\n", hit)
        pos = nl + 1 if nl >= 0 else len(text)
        m = _IMPORT_RE.match(text, line_start)
        if m is None or m.end() <= hit - 6:
            if nl < 0:
                break
            continue
        line_no += text.count("\n", last_pos, line_start)
        last_pos = line_start
        if strings is None:
            strings = _string_regions(text)
            starts = [a for a, _ in strings]
        if strings:
            k = bisect.bisect_right(starts, line_start) - 1
            if k >= 0 and strings[k][0] <= line_start < strings[k][1]:
                continue
        if m.group("dots"):
            continue  # relative import: the repo's own code
        modules = []
        if m.group("names") is not None:
            for part in m.group("names").split(","):
                word = part.strip().strip("()\\").split()
                if word and _NAME_RE.match(word[0]):
                    modules.append(word[0])
        elif m.group("mod"):
            modules.append(m.group("mod"))
        if not modules:
            continue
        indent = m.group(1)
        optional = False
        if indent:
            if lines is None:
                lines = text.split("\n")
            optional = _optional_context(lines, line_no - 1, len(indent.expandtabs(8)))
        for mod in modules:
            out.append((line_no, mod, optional))
        if nl < 0:
            break
    return out


def _string_regions(text: str) -> list[tuple[int, int]]:
    """Spans of triple-quoted strings (docstrings), found without a regex scan of the text."""
    marks = []
    for delim in ('"""', "'''"):
        p = text.find(delim)
        while p >= 0:
            marks.append((p, delim))
            p = text.find(delim, p + 3)
    if not marks:
        return []
    marks.sort()
    regions = []
    open_at, open_delim = None, None
    for p, delim in marks:
        if open_at is None:
            open_at, open_delim = p, delim
        elif delim == open_delim and p >= open_at + 3:
            regions.append((open_at, p + 3))
            open_at = None
    if open_at is not None:
        regions.append((open_at, len(text)))
    return regions


_TRY_RE = re.compile(r"^try\s*:")
_EXCEPT_IMPORT_RE = re.compile(r"^except\s*(\(?[\w.,\s]*(ImportError|ModuleNotFoundError|Exception|BaseException)|:)")
_TYPE_CHECKING_RE = re.compile(r"^(el)?if\s+(typing\.)?TYPE_CHECKING\b")


def _optional_context(lines: list[str], index: int, indent: int) -> bool:
    """Walk up from an indented import to its enclosing blocks."""
    j = index - 1
    steps = 0
    while j >= 0 and indent > 0 and steps < 5000:
        steps += 1
        line = lines[j]
        stripped = line.lstrip()
        j -= 1
        if not stripped or stripped.startswith("#"):
            continue
        ind = len(line[: len(line) - len(stripped)].expandtabs(8))
        if ind >= indent:
            continue
        if _TRY_RE.match(stripped) or _EXCEPT_IMPORT_RE.match(stripped) or _TYPE_CHECKING_RE.match(stripped):
            return True
        indent = ind
    return False


# ---- local modules ----------------------------------------------------------------------------

class LocalModules:
    """Which import names are the repo's own code."""

    _EXTS = (".py", ".pyx", ".pyi", ".so", ".pyd")

    def __init__(self, index, extra_names=()):
        py = [f for f in index.files if f.name.endswith(self._EXTS)]
        self.files = {f.rel for f in index.files}
        self.dirs = {f.rel.rsplit("/", 1)[0] for f in index.files if "/" in f.rel}
        for d in list(self.dirs):
            while "/" in d:
                d = d.rsplit("/", 1)[0]
                self.dirs.add(d)
        with_init = {f.parent for f in py if f.name in ("__init__.py", "__init__.pyi")}
        with_py = {f.parent for f in py}
        self.roots = {"", "src", "lib", "python"} | {d for d in with_py if d not in with_init}
        self.top: set[str] = set(extra_names)
        self.namespace_dirs: dict[str, list[str]] = {}
        for f in py:
            if f.parent in self.roots:
                self.top.add(f.name.split(".")[0])
        for d in with_py | with_init:
            parent, _, name = d.rpartition("/")
            if not name or parent not in self.roots:
                continue
            if d in with_init:
                self.top.add(name)
            else:
                self.namespace_dirs.setdefault(name, []).append(d)
                if parent in ("", "src"):
                    self.top.add(name)
        # a package dir whose only module files are deeper (namespace with subpackages)
        for d in with_init:
            parts = d.split("/")
            for i in range(1, len(parts)):
                parent = "/".join(parts[: i - 1]) if i > 1 else ""
                sub = "/".join(parts[:i])
                if parent in ("", "src") and sub not in with_init:
                    self.namespace_dirs.setdefault(parts[i - 1], []).append(sub)
                    self.top.add(parts[i - 1])

    def is_local(self, module: str, from_dir: str | None = None) -> bool:
        """``from_dir``: the importing file's folder, on ``sys.path`` when it runs as a script."""
        parts = module.split(".")
        if parts[0] in self.top:
            return True
        if from_dir:
            base = f"{from_dir}/{parts[0]}"
            if base in self.dirs or any(base + ext in self.files for ext in self._EXTS):
                return True
        dirs = self.namespace_dirs.get(parts[0])
        if dirs and len(parts) > 1:
            for d in dirs:
                base = f"{d}/{parts[1]}"
                if base in self.dirs or any(base + ext in self.files for ext in self._EXTS):
                    return True
        return False


def _is_third_party(module: str, local: LocalModules, from_dir: str | None = None) -> bool:
    top = module.split(".")[0]
    return bool(top) and top not in STDLIB and not top.startswith("_") and not local.is_local(module, from_dir)


MAX_IMPORT_SCAN_FILES = 4000
MAX_IMPORT_SCAN_BYTES = 512 * 1024


def import_sites(index) -> list[ImportSite]:
    """Every third-party import site in the repo (``.py`` files, then notebooks), in file order.

    Computed once per index and kept on it.
    """
    cached = getattr(index, "_gpu_lol_import_sites", None)
    if cached is not None:
        return cached
    from gpu_lol.analyzer import notebooks

    local = LocalModules(index, _own_package_names(index))
    sites: list[ImportSite] = []
    scanned = 0
    for f in index.files:  # shallowest first (the index's order)
        if f.suffix == ".py":
            if f.size > MAX_IMPORT_SCAN_BYTES:
                continue
            scanned += 1
            if scanned > MAX_IMPORT_SCAN_FILES:
                break  # a huge tree: its shallow files already say what it imports
            text = index.text(f)
            if not text:
                continue
            lines = None
            for line_no, module, optional in scan_source(text):
                if not _is_third_party(module, local, f.parent):
                    continue
                if lines is None:
                    lines = text.split("\n")
                sites.append(ImportSite(key_for(module), module,
                                        Evidence(f.rel, line_no, lines[line_no - 1].strip()), optional))
    for f in index.files:
        if f.suffix != ".ipynb":
            continue
        for offset, code in notebooks.code_cells(index, f):
            if "import" not in code:
                continue
            source = notebooks.python_source(code)
            lines = source.split("\n")
            for line_no, module, optional in scan_source(source):
                if not _is_third_party(module, local, f.parent):
                    continue
                sites.append(ImportSite(key_for(module), module,
                                        Evidence(f.rel, offset + line_no, lines[line_no - 1].strip()),
                                        optional))
    try:
        setattr(index, "_gpu_lol_import_sites", sites)
    except AttributeError:  # pragma: no cover - an index type that refuses attributes
        pass
    return sites


def _own_package_names(index) -> set[str]:
    """Import names the repo's own metadata declares (``[project] name`` with ``-`` -> ``_``)."""
    from gpu_lol.analyzer.pyproject import tomllib

    names: set[str] = set()
    text = index.text("pyproject.toml") if index.has("pyproject.toml") else None
    if text:
        try:
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, RecursionError):
            data = {}
        for table in (data.get("project"), (data.get("tool") or {}).get("poetry")):
            if isinstance(table, dict) and isinstance(table.get("name"), str):
                names.add(re.sub(r"[-.]", "_", table["name"]))
    text = index.text("setup.cfg") if index.has("setup.cfg") else None
    if text:
        m = re.search(r"(?ms)^\[metadata\][^\[]*?^name\s*=\s*([A-Za-z0-9][A-Za-z0-9._-]*)", text)
        if m:
            names.add(re.sub(r"[-.]", "_", m.group(1)))
    return names


def scan_imports(index) -> dict[str, list[Evidence]]:
    """Third-party import name -> its first few import sites (optional imports included)."""
    out: dict[str, list[Evidence]] = {}
    sites = sorted(import_sites(index), key=lambda s: not _runtime_file(s.evidence.file))
    for site in sites:
        evs = out.setdefault(site.name, [])
        if len(evs) < MAX_SITES:
            evs.append(site.evidence)
    return out


def _runtime_file(rel: str) -> bool:
    parts = rel.lower().split("/")
    name = parts[-1]
    if any(p in _NOT_RUNTIME_DIRS for p in parts[:-1]):
        return False
    if name in _NOT_RUNTIME_FILES or name.startswith("test_") or name.endswith("_test.py"):
        return False
    return True


def fallback_requirements(index):
    """Requirements from the required imports of runtime code, and warnings for the rest."""
    from gpu_lol.analyzer.collector import DeclaredRequirement

    reqs: list[DeclaredRequirement] = []
    warnings: list[str] = []
    seen: set[str] = set()
    reported: set[str] = set()
    for site in import_sites(index):
        if site.optional or not _runtime_file(site.evidence.file):
            continue
        pypi = resolve_import(site.module)
        if pypi is None:
            if site.name not in reported:
                reported.add(site.name)
                if len(reported) > MAX_UNKNOWN_WARNINGS:
                    continue
                key, _ = _lookup(site.module)
                why = ("is not installable from PyPI under that name" if key is not None
                       else "is not a PyPI package we know")
                warnings.append(f"{site.evidence.cite()}: import '{site.name}' {why}; not installed "
                                f"(declare it in requirements.txt)")
            continue
        canon = re.sub(r"[-_.]+", "-", pypi).lower()
        if canon in seen:
            continue
        seen.add(canon)
        reqs.append(DeclaredRequirement(pypi, site.evidence, "imports"))
    if len(reported) > MAX_UNKNOWN_WARNINGS:
        warnings.append(f"{len(reported) - MAX_UNKNOWN_WARNINGS} more imports are not known PyPI packages "
                        f"and were not installed")
    return reqs, warnings
