"""Pipenv's ``Pipfile``: ``[packages]`` (not ``[dev-packages]``), ``[requires]`` and sources.

Values: ``"*"`` (any version), a version specifier (``"==1.0"``, ``">=1,<2"``; a bare ``"1.0"``
means ``==1.0``), or a table with ``version``, ``extras``, ``markers``, the marker keys pipenv
accepts (``sys_platform = "== 'linux'"``, ``python_version``, ``os_name``, ``platform_machine``
...), ``git`` + ``ref`` (+ ``subdirectory``), ``file``/``url``, or ``path`` (``path = "."`` is the
repo itself). ``[requires] python_version`` / ``python_full_version`` give the Python version;
``[[source]]`` URLs other than PyPI are extra indexes.
"""

from __future__ import annotations

import re

from gpu_lol.analyzer.collector import RUNTIME, Collector
from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.analyzer.pyproject import load_toml

_MARKER_KEYS = ("sys_platform", "platform_machine", "platform_system", "platform_python_implementation",
                "platform_release", "platform_version", "python_version", "python_full_version",
                "os_name", "implementation_name", "implementation_version")


def parse(col: Collector, rel: str) -> None:
    from gpu_lol.analyzer import req_files

    loaded = load_toml(col, rel)
    if loaded is None:
        return
    data, loc, base_dir = loaded
    requires = data.get("requires") if isinstance(data.get("requires"), dict) else {}
    for key in ("python_full_version", "python_version"):
        if isinstance(requires.get(key), str):
            col.add_python(requires[key], Evidence(rel, loc.where("requires", key), f"{key} = {requires[key]}"))
            break
    for source in data.get("source") if isinstance(data.get("source"), list) else []:
        url = source.get("url") if isinstance(source, dict) else None
        if isinstance(url, str) and "pypi.org" not in url and "pypi.python.org" not in url:
            col.add_index_url("--extra-index-url", url, Evidence(rel, loc.where("source", "url", url), url))
    for section, target in (("packages", RUNTIME), ("dev-packages", ("dev", "dev-packages"))):
        table = data.get(section)
        if not isinstance(table, dict):
            continue
        for name, spec in table.items():
            ev = Evidence(rel, loc.where(section, name), f"{name} = {spec}" if isinstance(spec, str) else name)
            text_ = pipfile_requirement(name, spec, lambda m, ev=ev: col.warn(ev, m))
            if text_ is None:
                continue
            req_files.add_requirement_text(col, text_, ev, base_dir, target, "pipfile")


def pipfile_requirement(name: str, spec, warn) -> str | None:
    """The pip requirement for one Pipfile entry (a local path as ``./path[extras]``)."""
    if isinstance(spec, str):
        spec = {"version": spec}
    if not isinstance(spec, dict):
        warn(f"'{name}' has an unreadable value; skipped")
        return None
    extras = [e for e in spec.get("extras") or [] if isinstance(e, str)]
    extra_txt = f"[{','.join(extras)}]" if extras else ""
    markers = []
    if isinstance(spec.get("markers"), str):
        markers.append(spec["markers"])
    for key in _MARKER_KEYS:
        value = spec.get(key)
        if isinstance(value, str) and value.strip():
            markers.append(f"{key} {value.strip()}")
    marker = " and ".join(f"({m})" if len(markers) > 1 else m for m in markers)
    if isinstance(spec.get("path"), str):
        path = spec["path"]
        return (path if path.startswith((".", "/")) else "./" + path) + extra_txt
    if isinstance(spec.get("git"), str):
        url = spec["git"] if spec["git"].startswith("git+") else "git+" + spec["git"]
        if isinstance(spec.get("ref"), str):
            url += "@" + spec["ref"]
        if isinstance(spec.get("subdirectory"), str):
            url += "#subdirectory=" + spec["subdirectory"]
        return f"{name}{extra_txt} @ {url}" + (f" ; {marker}" if marker else "")
    for key in ("file", "url"):
        if isinstance(spec.get(key), str):
            return f"{name}{extra_txt} @ {spec[key]}" + (f" ; {marker}" if marker else "")
    version = spec.get("version", "*")
    if not isinstance(version, str):
        version = "*"
    version = version.strip()
    if version in ("", "*"):
        pin = ""
    elif re.match(r"^\d", version):
        pin = "==" + version
    else:
        pin = version.replace(" ", "")
    return f"{name}{extra_txt}{pin}" + (f"; {marker}" if marker else "")
