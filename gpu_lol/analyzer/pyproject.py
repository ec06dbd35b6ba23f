"""``pyproject.toml``: PEP 621, Poetry, Flit (legacy metadata), PDM, uv and PEP 735 groups.

- ``[project] dependencies`` are runtime requirements; ``optional-dependencies`` groups go to
  ``optional`` (developer groups such as ``dev``/``test``/``docs``/``lint`` to ``dev``);
  ``requires-python`` is a Python version. ``dynamic = ["dependencies"]`` read from files
  (``[tool.setuptools.dynamic]``, hatch's ``requirements_txt`` hook) reads those files.
- Poetry ``[tool.poetry.dependencies]``: constraints converted to PEP 440
  (``^1.2.3`` -> ``>=1.2.3,<2.0.0``, ``^0.2`` -> ``>=0.2,<0.3``, ``~1.2`` -> ``>=1.2,<1.3``,
  ``1.2.3`` -> ``==1.2.3``, ``*`` -> unpinned; ``||`` cannot be written for pip and leaves the
  name unpinned with a warning); the ``python`` key is the Python version; table forms with
  ``version``, ``extras``, ``markers``, ``python``, ``platform``, ``git`` (+ ``rev``/``tag``/
  ``branch``/``subdirectory``), ``url``, ``path`` and ``optional = true`` (those go to the
  ``optional`` groups that ``[tool.poetry.extras]`` names). Groups: developer ones to ``dev``,
  ``optional = true`` groups to ``optional``, other groups are installed (as ``poetry install``
  does). ``[[tool.poetry.source]]`` URLs are extra indexes.
- PDM ``[tool.pdm.dev-dependencies]``, uv ``[tool.uv] dev-dependencies``: ``dev``. PEP 735
  ``[dependency-groups]``: developer groups to ``dev``, others to ``optional`` (pip installs no
  group by default); ``{include-group = ...}`` is followed. ``[[tool.uv.index]]`` and
  ``[[tool.pdm.source]]`` URLs are extra indexes; ``[tool.uv.sources]`` git/url/path sources
  rewrite the matching requirement so pip can install it.

The repo is a package when the file has ``[project]``, ``[build-system]`` or ``[tool.poetry]``
(unless ``package-mode = false``).
"""

from __future__ import annotations

import re

from gpu_lol.analyzer.collector import RUNTIME, Collector, is_dev_group
from gpu_lol.analyzer.evidence import Evidence

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

_HEADER_RE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")


class TomlLines:
    """Line numbers for sections, keys and string values, found in the raw text."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.headers: list[tuple[int, str]] = []
        for i, line in enumerate(lines):
            m = _HEADER_RE.match(line)
            if m and not line.lstrip().startswith("#"):
                name = re.sub(r"[\"'\s]", "", m.group(1))
                self.headers.append((i, name))

    def _ranges(self, section: str) -> list[tuple[int, int]]:
        """(header index, end index) of each table with this name (several for ``[[x]]``)."""
        out = []
        for pos, (i, name) in enumerate(self.headers):
            if name == section:
                end = self.headers[pos + 1][0] if pos + 1 < len(self.headers) else len(self.lines)
                out.append((i, end))
        return out

    def section(self, section: str) -> int | None:
        r = self._ranges(section)
        return r[0][0] + 1 if r else None

    def key(self, section: str, key: str) -> int | None:
        pat = re.compile(r"^\s*[\"']?" + re.escape(key) + r"[\"']?\s*=")
        for start, end in self._ranges(section):
            for i in range(start + 1, end):
                if pat.match(self.lines[i]):
                    return i + 1
        return None

    def value(self, section: str, key: str | None, value: str) -> int | None:
        """The line of a string value inside ``section`` (after ``key`` when given)."""
        quoted = [f'"{value}"', f"'{value}'", '"' + value.replace('"', '\\"') + '"']
        pat = re.compile(r"^\s*[\"']?" + re.escape(key) + r"[\"']?\s*=") if key else None
        for start, end in self._ranges(section):
            i = start + 1
            if pat is not None:
                while i < end and not pat.match(self.lines[i]):
                    i += 1
                if i >= end:
                    continue
            for j in range(i, end):
                if any(q in self.lines[j] for q in quoted):
                    return j + 1
        return None

    def where(self, section: str, key: str | None = None, value: str | None = None) -> int | None:
        if value is not None:
            line = self.value(section, key, value)
            if line:
                return line
        if key is not None:
            line = self.key(section, key)
            if line:
                return line
        return self.section(section)


def load_toml(col: Collector, rel: str) -> tuple[dict, TomlLines, str] | None:
    """(data, line locator, base dir) of a TOML file; a warning and ``None`` when unreadable."""
    text = col.index.text(rel)
    if text is None:
        col.warn(rel, "not readable as UTF-8 text; skipped")
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        col.warn(_toml_where(rel, exc), f"invalid TOML ({_toml_reason(exc)}); skipped")
        return None
    except RecursionError:
        col.warn(rel, "nested too deeply to read; skipped")
        return None
    return data, TomlLines(text.splitlines()), rel.rsplit("/", 1)[0] if "/" in rel else ""


def parse(col: Collector, rel: str) -> None:
    loaded = load_toml(col, rel)
    if loaded is None:
        return
    data, loc, base_dir = loaded
    tool = _table(data.get("tool"))
    project = data.get("project")
    poetry = _table(tool.get("poetry"))

    def ev(section, key=None, value=None, text_=""):
        return Evidence(rel, loc.where(section, key, value), text_)

    # is it a package?
    if isinstance(project, dict) or isinstance(data.get("build-system"), dict) or (
            poetry and poetry.get("package-mode", True) is not False and "name" in poetry):
        name = (project or {}).get("name") if isinstance(project, dict) else None
        name = name or poetry.get("name")
        section = "project" if isinstance(project, dict) else (
            "tool.poetry" if poetry else "build-system")
        col.set_package(ev(section, "name" if name else None, None, f"[{section}]"),
                        name if isinstance(name, str) else None)
        urls = list(_table((project or {}).get("urls") if isinstance(project, dict) else None).values())
        urls += [poetry.get(k) for k in ("homepage", "repository")]
        col.project_urls.extend(u for u in urls if isinstance(u, str))

    if isinstance(project, dict):
        _pep621(col, rel, project, tool, loc, base_dir)
    if poetry:
        _poetry(col, rel, poetry, loc)
    flit = _table(_table(tool.get("flit")).get("metadata"))
    if flit:
        for req in _strings(flit.get("requires")):
            _add(col, req, ev("tool.flit.metadata", "requires", req, req), base_dir)
        for group, reqs in _table(flit.get("requires-extra")).items():
            for req in _strings(reqs):
                _add(col, req, ev("tool.flit.metadata.requires-extra", group, req, req), base_dir,
                     _group_target(group))
        if isinstance(flit.get("requires-python"), str):
            col.add_python(flit["requires-python"], ev("tool.flit.metadata", "requires-python"))
    pdm = _table(tool.get("pdm"))
    for group, reqs in _table(pdm.get("dev-dependencies")).items():
        for req in _strings(reqs):
            _add(col, req, ev("tool.pdm.dev-dependencies", group, req, req), base_dir, ("dev", group))
    uv = _table(tool.get("uv"))
    for req in _strings(uv.get("dev-dependencies")):
        _add(col, req, ev("tool.uv", "dev-dependencies", req, req), base_dir, ("dev", "dev"))
    _dependency_groups(col, rel, _table(data.get("dependency-groups")), loc, base_dir)
    # extra package indexes
    for section, entries in (("tool.poetry.source", poetry.get("source")),
                             ("tool.pdm.source", pdm.get("source")),
                             ("tool.uv.index", uv.get("index"))):
        for entry in entries if isinstance(entries, list) else []:
            url = entry.get("url") if isinstance(entry, dict) else None
            if isinstance(url, str) and not url.rstrip("/").endswith("pypi.org/simple"):
                col.add_index_url("--extra-index-url", url, ev(section, "url", url, url))


def _toml_where(rel: str, exc: Exception) -> str:
    m = re.search(r"line (\d+)", str(exc))
    return f"{rel}:{m.group(1)}" if m else rel


def _toml_reason(exc: Exception) -> str:
    return re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc)) or "syntax error"


def _table(value) -> dict:
    return value if isinstance(value, dict) else {}


def _strings(value) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _group_target(group: str):
    return ("dev", group) if is_dev_group(group) else ("optional", group)


def _add(col, req, ev, base_dir, target=RUNTIME):
    from gpu_lol.analyzer.req_files import add_requirement_text

    add_requirement_text(col, req.strip(), ev, base_dir, target, "pyproject")


def _pep621(col, rel, project, tool, loc, base_dir):
    from gpu_lol.analyzer import req_files

    if isinstance(project.get("requires-python"), str):
        col.add_python(project["requires-python"],
                       Evidence(rel, loc.where("project", "requires-python"), project["requires-python"]))
    uv_sources = _table(_table(tool.get("uv")).get("sources"))
    for req in _strings(project.get("dependencies")):
        ev = Evidence(rel, loc.where("project", "dependencies", req), req)
        _add(col, _uv_source(col, req, uv_sources, ev), ev, base_dir)
    optional = project.get("optional-dependencies")
    if isinstance(optional, dict):
        section = "project.optional-dependencies" if loc.section("project.optional-dependencies") else "project"
        for group, reqs in optional.items():
            for req in _strings(reqs):
                ev = Evidence(rel, loc.where(section, group, req), req)
                _add(col, req, ev, base_dir, _group_target(group))
    dynamic = project.get("dynamic") if isinstance(project.get("dynamic"), list) else []
    if "dependencies" in dynamic or "optional-dependencies" in dynamic:
        st = _table(_table(_table(tool.get("setuptools")).get("dynamic")))
        files = _files(_table(st.get("dependencies")).get("file"))
        hatch = _table(_table(_table(_table(tool.get("hatch")).get("metadata")).get("hooks")).get("requirements_txt"))
        files += _files(hatch.get("files"))
        for f in files:
            ev = Evidence(rel, loc.where("tool.setuptools.dynamic", "dependencies", f) or
                          loc.where("tool.hatch.metadata.hooks.requirements_txt", "files", f), f)
            req_files.declare_file(col, f, ev, base_dir, RUNTIME)
        for group, spec in _table(st.get("optional-dependencies")).items():
            for f in _files(_table(spec).get("file")):
                ev = Evidence(rel, loc.where("tool.setuptools.dynamic.optional-dependencies", group, f), f)
                req_files.declare_file(col, f, ev, base_dir, _group_target(group))
        for group, files_ in _table(hatch.get("optional-dependencies")).items():
            for f in _files(files_):
                ev = Evidence(rel, loc.where("tool.hatch.metadata.hooks.requirements_txt.optional-dependencies",
                                             group, f), f)
                req_files.declare_file(col, f, ev, base_dir, _group_target(group))


def _files(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    return _strings(value)


def _uv_source(col, req: str, sources: dict, ev: Evidence) -> str:
    """Rewrite ``foo`` to ``foo @ git+URL@rev`` when ``[tool.uv.sources]`` says where it lives."""
    if not sources:
        return req
    from gpu_lol.requirements_text import name_of

    name = name_of(req)
    if name is None:
        return req
    for key, src in sources.items():
        if name_of(key) != name or not isinstance(src, dict):
            continue
        url = _direct_url(src)
        if url:
            head = re.split(r"[;<>=!~@ ]", req, 1)[0]
            marker = req.split(";", 1)[1].strip() if ";" in req else ""
            return f"{head} @ {url}" + (f" ; {marker}" if marker else "")
        if isinstance(src.get("path"), str):
            col.warn(ev, f"{key} comes from a local path in [tool.uv.sources]; pip takes it from PyPI")
    return req


def _direct_url(src: dict) -> str | None:
    if isinstance(src.get("git"), str):
        ref = next((src[k] for k in ("rev", "tag", "branch") if isinstance(src.get(k), str)), None)
        url = "git+" + src["git"] if not src["git"].startswith("git+") else src["git"]
        if ref:
            url += "@" + ref
        if isinstance(src.get("subdirectory"), str):
            url += "#subdirectory=" + src["subdirectory"]
        return url
    if isinstance(src.get("url"), str):
        return src["url"]
    return None


def _dependency_groups(col, rel, groups: dict, loc, base_dir):
    def expand(group, seen):
        out = []
        if group in seen:
            return out
        seen.add(group)
        for item in groups.get(group) or []:
            if isinstance(item, str):
                out.append((item, group))
            elif isinstance(item, dict) and isinstance(item.get("include-group"), str):
                out.extend(expand(item["include-group"], seen))
        return out

    for group in groups:
        for req, origin in expand(group, set()):
            ev = Evidence(rel, loc.where("dependency-groups", origin, req), req)
            _add(col, req, ev, base_dir, _group_target(group))


# ---- Poetry ------------------------------------------------------------------------------------

_OP_SPACE_RE = re.compile(r"(\^|~=|~|==|!=|<=|>=|<|>|=)\s+")
_VERSION_RE = re.compile(r"^\d+(?:\.\d+)*(?:\.\*)?(?:[-._]?(?:a|b|c|rc|alpha|beta|pre|preview|post|dev)[-._]?\d*)*$",
                         re.I)
_RELEASE_RE = re.compile(r"^(\d+(?:\.\d+)*)(.*)$")


def poetry_constraint(spec: str) -> str | None:
    """A Poetry version constraint as a PEP 440 specifier ('' = any version, None = impossible)."""
    spec = spec.strip()
    if spec in ("", "*"):
        return ""
    if "||" in spec or "|" in spec:
        return None
    spec = _OP_SPACE_RE.sub(r"\1", spec)
    out: list[str] = []
    for part in re.split(r"\s*,\s*|\s+", spec):
        if not part or part == "*":
            continue
        if part.startswith("^"):
            bounds = _caret(part[1:])
        elif part.startswith("~") and not part.startswith("~="):
            bounds = _tilde(part[1:])
        elif part.startswith(("==", "!=", "<=", ">=", "~=")):
            bounds = [part] if _VERSION_RE.match(part[2:]) else None
        elif part.startswith(("<", ">")):
            bounds = [part] if _VERSION_RE.match(part[1:]) else None
        elif part.startswith("="):
            bounds = ["==" + part[1:]] if _VERSION_RE.match(part[1:]) else None
        elif _VERSION_RE.match(part):
            bounds = ["==" + part]
        else:
            bounds = None
        if bounds is None:
            return None
        out.extend(bounds)
    return ",".join(out)


def _release(version: str) -> list[int] | None:
    m = _RELEASE_RE.match(version)
    if not m or not _VERSION_RE.match(version) or "*" in version:
        return None
    return [int(x) for x in m.group(1).split(".")]


def _caret(version: str) -> list[str] | None:
    nums = _release(version)
    if nums is None:
        return None
    i = next((k for k, n in enumerate(nums) if n != 0), len(nums) - 1)
    upper = nums[:i] + [nums[i] + 1] + [0] * (len(nums) - i - 1)
    return [f">={version}", "<" + ".".join(map(str, upper))]


def _tilde(version: str) -> list[str] | None:
    nums = _release(version)
    if nums is None:
        return None
    if len(nums) == 1:
        upper = [nums[0] + 1]
    else:
        upper = [nums[0], nums[1] + 1] + [0] * (len(nums) - 2)
    return [f">={version}", "<" + ".".join(map(str, upper))]


def _python_marker(constraint: str) -> str | None:
    spec = poetry_constraint(constraint)
    if spec is None:
        return None
    parts = []
    for p in spec.split(",") if spec else []:
        m = re.match(r"^(==|!=|<=|>=|~=|<|>)(.+)$", p)
        if not m:
            return None
        op, ver = m.groups()
        if ver.endswith(".*"):
            ver = ver[:-2]
        var = "python_full_version" if ver.count(".") >= 2 else "python_version"
        parts.append(f'{var} {op} "{ver}"')
    return " and ".join(parts)


def poetry_requirements(name: str, spec, warn) -> list[tuple[str, bool]]:
    """(requirement text, optional?) for one Poetry dependency entry."""
    entries = spec if isinstance(spec, list) else [spec]
    out = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {"version": entry}
        if not isinstance(entry, dict):
            warn(f"dependency '{name}' has an unreadable value; skipped")
            continue
        extras = [e for e in entry.get("extras") or [] if isinstance(e, str)]
        head = name + (f"[{','.join(extras)}]" if extras else "")
        markers = []
        if isinstance(entry.get("markers"), str):
            markers.append(entry["markers"])
        if isinstance(entry.get("python"), str):
            pm = _python_marker(entry["python"])
            if pm:
                markers.append(pm)
        if isinstance(entry.get("platform"), str):
            markers.append(f'sys_platform == "{entry["platform"]}"')
        marker = " and ".join(f"({m})" if len(markers) > 1 else m for m in markers)
        url = _direct_url(entry)
        if url:
            text = f"{head} @ {url}" + (f" ; {marker}" if marker else "")
        elif isinstance(entry.get("path"), str):
            warn(f"dependency '{name}' is a local path ({entry['path']}); installed with the repo")
            continue
        else:
            version = entry.get("version", "*")
            pin = poetry_constraint(version) if isinstance(version, str) else ""
            if pin is None:
                warn(f"'{name}' version '{version}' cannot be written for pip; taken unpinned")
                pin = ""
            text = head + pin + (f"; {marker}" if marker else "")
        out.append((text, bool(entry.get("optional"))))
    return out


def _poetry(col, rel, poetry, loc):
    name = poetry.get("name")
    extras_of: dict[str, list[str]] = {}
    for extra, names in _table(poetry.get("extras")).items():
        for n in _strings(names):
            extras_of.setdefault(n.lower().replace("_", "-"), []).append(extra)

    def read(section: str, deps: dict, target):
        for dep, spec in deps.items():
            line = loc.key(section, dep) or loc.section(f"{section}.{dep}") or loc.section(section)
            ev = Evidence(rel, line, f"{dep} = {spec}" if not isinstance(spec, (dict, list)) else dep)
            if dep.lower() == "python":
                if isinstance(spec, str):
                    pin = poetry_constraint(spec)
                    if pin:
                        col.add_python(pin, ev)
                continue
            for text, optional in poetry_requirements(dep, spec, lambda m: col.warn(ev, m)):
                if optional and target == RUNTIME:
                    groups = extras_of.get(dep.lower().replace("_", "-")) or ["poetry-optional"]
                    for g in groups:
                        _add(col, text, ev, "", _group_target(g))
                else:
                    _add(col, text, ev, "", target)

    read("tool.poetry.dependencies", _table(poetry.get("dependencies")), RUNTIME)
    read("tool.poetry.dev-dependencies", _table(poetry.get("dev-dependencies")), ("dev", "dev"))
    for group, body in _table(poetry.get("group")).items():
        body = _table(body)
        if is_dev_group(group):
            target = ("dev", group)
        elif body.get("optional") is True:
            target = ("optional", group)
        else:
            target = RUNTIME
        read(f"tool.poetry.group.{group}.dependencies", _table(body.get("dependencies")), target)
    if isinstance(name, str) and not col.project_name:
        col.project_name = name
