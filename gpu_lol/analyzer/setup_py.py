"""``setup.py`` (read with ``ast``, never executed) and ``setup.cfg``.

setup.py: the first ``setup(...)`` call (``setuptools.setup``, ``setup(**kwargs)`` with a dict
too) gives ``install_requires``, ``extras_require``, ``python_requires`` and ``name``. Values are
resolved without running anything: literal lists and tuples, names bound to them anywhere at
module level (including ``+=``, ``.append``, ``.extend``), ``a + b``, ``*spread``. A value built by
reading a file (``open("requirements.txt").read().splitlines()``, ``Path(...).read_text()``,
a helper ``parse_requirements("requirements/base.txt")``, ``os.path.join(here, "requirements",
"cuda.txt")``) is recognised by the requirement-like files its expression (and the helpers it
calls) names, and those files are read instead. Non-CUDA platform variants among them
(``rocm.txt``, ``tpu.txt``) are left out. Old ``extras_require`` keys with a marker
(``":python_version<'3.8'"``) are runtime requirements with that marker. Anything else is left to
``pip install .`` with a warning. A setup.py that is not valid Python 3 is read by pattern for
``install_requires=[...]``.

setup.cfg: ``[metadata] name``, ``[options] install_requires`` (one per line, or
``file: requirements.txt``), ``python_requires`` and ``[options.extras_require]``.
"""

from __future__ import annotations

import ast
import posixpath
import re

from gpu_lol.analyzer.collector import RUNTIME, Collector, is_dev_group, variant
from gpu_lol.analyzer.evidence import Evidence

_MAX_DEPTH = 8


class _Unknown(Exception):
    pass


class _Module:
    def __init__(self, tree: ast.Module):
        self.assigns: dict[str, list[ast.expr]] = {}
        self.appends: dict[str, list[ast.expr]] = {}
        self.funcs: dict[str, ast.FunctionDef] = {}
        self._walk(tree.body)

    def _walk(self, body):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.funcs[node.name] = node
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.assigns.setdefault(target.id, []).append(node.value)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                self.assigns.setdefault(node.target.id, []).append(node.value)
            elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and \
                    isinstance(node.op, ast.Add):
                self.appends.setdefault(node.target.id, []).append(node.value)
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                call = node.value
                if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) \
                        and call.func.attr in ("append", "extend") and call.args:
                    arg = call.args[0]
                    value = ast.List(elts=[arg], ctx=ast.Load()) if call.func.attr == "append" else arg
                    self.appends.setdefault(call.func.value.id, []).append(value)
            for attr in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, attr, None)
                if isinstance(inner, list) and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                     ast.ClassDef)):
                    self._walk(inner)


def _const_strings(node: ast.AST, mod: _Module, depth: int = 0, seen=None) -> list[list[str]]:
    """Groups of string constants an expression (and the helpers it calls) names: each
    ``os.path.join``/``/`` chain is one group, so its parts can be joined into a path."""
    seen = seen if seen is not None else set()
    groups: list[list[str]] = []
    if depth > 3:
        return groups
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            parts = [a.value for a in sub.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if len(parts) > 1:
                groups.append(parts)
            func = sub.func
            fname = func.id if isinstance(func, ast.Name) else None
            if fname and fname in mod.funcs and fname not in seen:
                seen.add(fname)
                groups.extend(_const_strings(mod.funcs[fname], mod, depth + 1, seen))
        elif isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Div):
            parts = [n.value for n in (sub.left, sub.right) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
            if parts:
                groups.append(parts)
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            groups.append([sub.value])
        elif isinstance(sub, ast.Name) and sub.id in mod.assigns and sub.id not in seen:
            seen.add(sub.id)
            for value in mod.assigns[sub.id]:
                groups.extend(_const_strings(value, mod, depth + 1, seen))
    return groups


def _files_named(col: Collector, node: ast.AST, mod: _Module, base_dir: str) -> list[str]:
    """Requirement-like files of the repo that an expression names."""
    found: list[str] = []
    dirs = {g[0] for g in _const_strings(node, mod) if len(g) == 1}
    for group in _const_strings(node, mod):
        candidates = [group[-1], "/".join(group)]
        candidates += [f"{d}/{group[-1]}" for d in dirs if d != group[-1]]
        for cand in candidates:
            if not cand or "\n" in cand or len(cand) > 200:
                continue
            rel = posixpath.normpath(posixpath.join(base_dir, cand)) if base_dir else posixpath.normpath(cand)
            name = rel.rsplit("/", 1)[-1].lower()
            if not (name.endswith((".txt", ".in")) or "requirement" in name):
                continue
            if col.index.has(rel) and rel not in found:
                found.append(rel)
    runtime = [f for f in found if variant(f, found) != "platform"]
    return runtime


def _resolve_list(node: ast.AST, mod: _Module, depth: int = 0) -> list[ast.Constant]:
    """String constants of a list expression; raises _Unknown when it is computed."""
    if depth > _MAX_DEPTH:
        raise _Unknown
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        out = []
        for elt in node.elts:
            if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                out.append(elt)
            elif isinstance(elt, ast.Starred):
                out.extend(_resolve_list(elt.value, mod, depth + 1))
            elif isinstance(elt, ast.Name):
                value = _resolve_str(elt, mod, depth + 1)
                out.append(value)
            else:
                raise _Unknown
        return out
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _resolve_list(node.left, mod, depth + 1) + _resolve_list(node.right, mod, depth + 1)
    if isinstance(node, ast.Name):
        values = mod.assigns.get(node.id)
        if not values:
            raise _Unknown
        out = _resolve_list(values[-1], mod, depth + 1)
        for extra in mod.appends.get(node.id, []):
            out.extend(_resolve_list(extra, mod, depth + 1))
        return out
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("list", "tuple", "sorted") \
            and len(node.args) == 1:
        return _resolve_list(node.args[0], mod, depth + 1)
    raise _Unknown


def _resolve_str(node: ast.AST, mod: _Module, depth: int = 0) -> ast.Constant:
    if depth > _MAX_DEPTH:
        raise _Unknown
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node
    if isinstance(node, ast.Name) and mod.assigns.get(node.id):
        return _resolve_str(mod.assigns[node.id][-1], mod, depth + 1)
    raise _Unknown


def _resolve_dict(node: ast.AST, mod: _Module, depth: int = 0) -> list[tuple[str, ast.AST]]:
    if depth > _MAX_DEPTH:
        raise _Unknown
    if isinstance(node, ast.Dict):
        out = []
        for k, v in zip(node.keys, node.values):
            if k is None:
                out.extend(_resolve_dict(v, mod, depth + 1))
            elif isinstance(k, ast.Constant) and isinstance(k.value, str):
                out.append((k.value, v))
            else:
                raise _Unknown
        return out
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        out = []
        for arg in node.args:
            out.extend(_resolve_dict(arg, mod, depth + 1))
        for kw in node.keywords:
            if kw.arg is None:
                out.extend(_resolve_dict(kw.value, mod, depth + 1))
            else:
                out.append((kw.arg, kw.value))
        return out
    if isinstance(node, ast.Name) and mod.assigns.get(node.id):
        return _resolve_dict(mod.assigns[node.id][-1], mod, depth + 1)
    raise _Unknown


def _setup_call(tree: ast.Module) -> ast.Call | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name == "setup":
                return node
    return None


def parse_setup_py(col: Collector, rel: str) -> None:
    text = col.index.text(rel)
    base_dir = rel.rsplit("/", 1)[0] if "/" in rel else ""
    if text is None:
        col.warn(rel, "not readable as UTF-8 text; skipped")
        col.set_package(Evidence(rel, None, "setup.py"))
        return
    try:
        tree = ast.parse(text, filename=rel)
    except (SyntaxError, ValueError, RecursionError) as exc:
        line = getattr(exc, "lineno", None)
        col.warn(Evidence(rel, line), "not valid Python 3 (never run); install_requires read by pattern")
        col.set_package(Evidence(rel, 1, "setup.py"))
        _by_pattern(col, rel, text)
        return
    mod = _Module(tree)
    call = _setup_call(tree)
    if call is None:
        col.set_package(Evidence(rel, 1, "setup.py"))
        return
    kwargs: dict[str, ast.AST] = {}
    for kw in call.keywords:
        if kw.arg is not None:
            kwargs[kw.arg] = kw.value
        else:
            try:
                for k, v in _resolve_dict(kw.value, mod):
                    kwargs.setdefault(k, v)
            except _Unknown:
                pass
    name = None
    if "name" in kwargs:
        try:
            name = _resolve_str(kwargs["name"], mod).value
        except _Unknown:
            name = None
    col.set_package(Evidence(rel, call.lineno, "setup("), name)
    for key in ("url", "download_url"):
        if key in kwargs:
            try:
                col.project_urls.append(_resolve_str(kwargs[key], mod).value)
            except _Unknown:
                pass
    if "project_urls" in kwargs:
        try:
            for _k, v in _resolve_dict(kwargs["project_urls"], mod):
                if isinstance(v, ast.Constant) and isinstance(v.value, str):
                    col.project_urls.append(v.value)
        except _Unknown:
            pass
    if "python_requires" in kwargs:
        try:
            node = _resolve_str(kwargs["python_requires"], mod)
            col.add_python(node.value, Evidence(rel, node.lineno, f"python_requires={node.value!r}"))
        except _Unknown:
            pass
    if "install_requires" in kwargs:
        _requirements(col, rel, kwargs["install_requires"], mod, base_dir, RUNTIME, "install_requires")
    if "extras_require" in kwargs:
        try:
            groups = _resolve_dict(kwargs["extras_require"], mod)
        except _Unknown:
            groups = []
            col.warn(Evidence(rel, kwargs["extras_require"].lineno),
                     "extras_require is computed when setup.py runs; not read")
        for key, value in groups:
            extra, _, marker = key.partition(":")
            if not extra:
                _requirements(col, rel, value, mod, base_dir, RUNTIME, "extras_require", marker=marker)
            else:
                target = ("dev", extra) if is_dev_group(extra) else ("optional", extra)
                _requirements(col, rel, value, mod, base_dir, target, "extras_require", marker=marker)


def _requirements(col, rel, node, mod, base_dir, target, what, marker=""):
    from gpu_lol.analyzer import req_files

    try:
        items = _resolve_list(node, mod)
    except _Unknown:
        files = _files_named(col, node, mod, base_dir)
        if files:
            for f in files:
                req_files.declare_file(col, f, Evidence(rel, getattr(node, "lineno", None)), "", target)
            return
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            items = [node]  # a single requirement string (or a newline-separated block)
        else:
            col.warn(Evidence(rel, getattr(node, "lineno", None)),
                     f"{what} is computed when setup.py runs; not read (pip install . resolves it)")
            return
    for item in items:
        for piece in item.value.splitlines():
            piece = re.sub(r"(^|\s)#.*$", "", piece).strip()
            if not piece:
                continue
            text = piece
            if marker:
                text = f"{piece} ; {marker.strip()}" if ";" not in piece else f"{piece} and ({marker.strip()})"
            ev = Evidence(rel, item.lineno, piece)
            req_files.add_requirement_text(col, text, ev, base_dir, target, "setup.py")


def _by_pattern(col, rel, text):
    from gpu_lol.analyzer import req_files

    m = re.search(r"install_requires\s*=\s*[\[(](.*?)[\])]", text, re.S)
    if not m:
        return
    start_line = text.count("\n", 0, m.start(1)) + 1
    for sm in re.finditer(r"(['\"])([^'\"\n]+)\1", m.group(1)):
        line = start_line + m.group(1).count("\n", 0, sm.start())
        req = sm.group(2).strip()
        req_files.add_requirement_text(col, req, Evidence(rel, line, req), "", RUNTIME, "setup.py")


# ---- setup.cfg -------------------------------------------------------------------------------

def _ini(lines: list[str]) -> dict[str, dict[str, list[tuple[int, str]]]]:
    """section -> key -> [(line number, value line)] with continuation lines kept apart."""
    out: dict[str, dict[str, list[tuple[int, str]]]] = {}
    section = None
    key = None
    for number, raw in enumerate(lines, 1):
        if not raw.strip() or raw.lstrip().startswith(("#", ";")):
            continue
        if raw[0] in " \t":
            if section is not None and key is not None:
                out[section][key].append((number, raw.strip()))
            continue
        m = re.match(r"^\[([^\]]+)\]\s*$", raw.strip())
        if m:
            section = m.group(1).strip()
            out.setdefault(section, {})
            key = None
            continue
        m = re.match(r"^([^=:]+?)\s*[=:]\s*(.*)$", raw)
        if m and section is not None:
            key = m.group(1).strip()
            out[section][key] = [(number, m.group(2).strip())] if m.group(2).strip() else []
    return out


def parse_setup_cfg(col: Collector, rel: str) -> None:
    from gpu_lol.analyzer import req_files

    text = col.index.text(rel)
    if text is None:
        return
    base_dir = rel.rsplit("/", 1)[0] if "/" in rel else ""
    cfg = _ini(text.splitlines())
    meta = cfg.get("metadata")
    if meta is not None:
        name = meta.get("name", [])
        col.set_package(Evidence(rel, name[0][0] if name else None, "[metadata]"),
                        name[0][1] if name else None)
        for key in ("url", "home_page", "project_urls"):
            for _n, value in meta.get(key, []):
                col.project_urls.append(value.split("=", 1)[-1].strip())
    options = cfg.get("options", {})
    for number, value in options.get("python_requires", [])[:1]:
        col.add_python(value, Evidence(rel, number, f"python_requires = {value}"))

    def read(values, target):
        for number, value in values:
            ev = Evidence(rel, number, value)
            if value.startswith("file:"):
                for f in value[5:].replace(",", " ").split():
                    req_files.declare_file(col, f, ev, base_dir, target)
                continue
            req_files.add_requirement_text(col, value, ev, base_dir, target, "setup.cfg")

    read(options.get("install_requires", []), RUNTIME)
    for group, values in cfg.get("options.extras_require", {}).items():
        read(values, ("dev", group) if is_dev_group(group) else ("optional", group))
