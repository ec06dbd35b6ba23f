"""Dockerfiles: base images, ``RUN`` installs and ``apt-get install`` system packages.

Instructions are read with ``\\`` continuations joined and comment lines dropped (as Docker
does). ``ARG`` defaults (global ones for ``FROM``, stage ones for ``RUN``) and ``ENV`` values are
substituted (``$X``, ``${X}``, ``${X:-default}``); an argument whose variable has no value is
dropped with a warning. ``FROM`` understands ``--platform=``, ``AS name`` and stages built on
earlier stages (resolved to the real image); images are reported final stage first.

``RUN`` (shell form, exec form, simple heredocs) goes through the shared command reader
(:mod:`gpu_lol.analyzer.shell_installs`): ``pip``/``pip3``/``python -m pip``/``uv pip install``,
``conda install``, ``apt-get install``. A ``-r`` file is resolved through the ``COPY``/``ADD``
instructions and ``WORKDIR`` seen so far (``COPY . /app`` + ``WORKDIR /app`` makes
``requirements.txt`` the repo's), then against the repo root, then the Dockerfile's folder.
``ENV PIP_INDEX_URL`` / ``PIP_EXTRA_INDEX_URL`` / ``PIP_FIND_LINKS`` are index URLs.
"""

from __future__ import annotations

import json
import posixpath
import re

from gpu_lol.analyzer.collector import Collector, resolve_path
from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.analyzer.shell_installs import CommandContext, handle_commands, handle_words

_INSTR_RE = re.compile(r"^\s*([A-Za-z]+)(?:\s+(.*))?$", re.S)
_IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")
_PY_IMAGE_RE = re.compile(r"^(?:docker\.io/)?(?:library/)?python:(\d+\.\d+)")
_HEREDOC_RE = re.compile(r"<<-?\s*([\"']?)([A-Za-z_][A-Za-z0-9_]*)\1")
_PIP_ENV = {"PIP_INDEX_URL": "--index-url", "PIP_EXTRA_INDEX_URL": "--extra-index-url",
            "PIP_FIND_LINKS": "--find-links", "UV_INDEX_URL": "--index-url",
            "UV_EXTRA_INDEX_URL": "--extra-index-url"}


def instructions(lines: list[str]):
    """(line number, KEYWORD, arguments) per instruction; heredoc bodies joined into RUN."""
    i, n = 0, len(lines)
    while i < n:
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i + 1
        parts = []
        while True:
            line = lines[i].rstrip()
            i += 1
            if line.endswith("\\"):
                parts.append(line[:-1])
                while i < n and (not lines[i].strip() or lines[i].strip().startswith("#")):
                    i += 1  # Docker drops comment and empty lines inside a continuation
                if i >= n:
                    break
                continue
            parts.append(line)
            break
        text = " ".join(p.strip() for p in parts)
        m = _INSTR_RE.match(text)
        if not m:
            continue
        keyword, args = m.group(1).upper(), (m.group(2) or "").strip()
        if keyword == "RUN":
            here = _HEREDOC_RE.search(args)
            if here:
                body = []
                while i < n and lines[i].strip() != here.group(2):
                    body.append(lines[i])
                    i += 1
                i += 1
                args = _HEREDOC_RE.sub("", args).strip()
                yield start, keyword, args, body
                continue
        yield start, keyword, args, None


def parse(col: Collector, rel: str) -> None:
    text = col.index.text(rel)
    if text is None:
        col.warn(rel, "not readable as UTF-8 text; skipped")
        return
    folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
    global_args: dict[str, str] = {}
    stages: list[dict] = []
    variables: dict[str, str] = {}
    workdir = "/"
    copies: list[tuple[str, str]] = []  # (container path, repo path) from COPY/ADD

    def map_path(path: str) -> str | None:
        full = posixpath.normpath(posixpath.join(workdir, path))
        for dest, src in reversed(copies):
            if full == dest or full.startswith(dest.rstrip("/") + "/"):
                tail = full[len(dest.rstrip("/")):].lstrip("/")
                candidate = posixpath.normpath(posixpath.join(src, tail)) if src else tail
                candidate = "" if candidate == "." else candidate
                if candidate == "" or col.index.has(candidate) or any(
                        f.rel.startswith(candidate + "/") for f in col.index.files):
                    return candidate
        if not path.startswith("/"):
            return None
        # an absolute path no COPY explains: try its file name at the repo root
        base = posixpath.basename(full)
        return base if base and col.index.has(base) else None

    for number, keyword, args, body in instructions(text.splitlines()):
        ev = Evidence(rel, number, f"{keyword} {args}".strip())
        if keyword == "ARG":
            for name, value in _assignments(args, allow_bare=True):
                scope = global_args if not stages else variables
                if value is None:
                    if stages and name in global_args:
                        variables[name] = global_args[name]
                    continue
                expanded = _substitute(value, global_args if not stages else variables)
                if expanded is not None:
                    scope[name] = expanded
        elif keyword == "FROM":
            stage = _from(col, args, ev, global_args, stages)
            if stage is not None:
                stages.append(stage)
            variables, workdir, copies = {}, "/", []
        elif keyword == "ENV":
            for name, value in _assignments(args, allow_bare=False):
                expanded = _substitute(value or "", variables)
                if expanded is None:
                    continue
                variables[name] = expanded
                if name in _PIP_ENV:
                    for url in expanded.split():
                        col.add_index_url(_PIP_ENV[name], url, ev)
        elif keyword == "WORKDIR":
            value = _substitute(args.strip("\"'"), variables)
            if value:
                workdir = posixpath.normpath(posixpath.join(workdir, value))
        elif keyword in ("COPY", "ADD"):
            _copy(args, variables, workdir, copies)
        elif keyword == "RUN":
            ctx = CommandContext("dockerfile", bases=[""] + ([folder] if folder else []),
                                 variables=dict(variables), map_path=map_path,
                                 system_packages=True)
            _run(col, args, body, ev, ctx, rel, number)

    # images, final stage first, stages built on stages resolved to their image
    names = {s["name"]: s for s in stages if s["name"]}
    for stage in reversed(stages):
        seen = set()
        cur = stage
        while cur["image"].lower() in names and cur["image"].lower() not in seen:
            seen.add(cur["image"].lower())
            cur = names[cur["image"].lower()]
        image = cur["image"]
        if image.lower() in names or image == "scratch":
            continue
        col.add_image(image, cur["ev"])
        py = _PY_IMAGE_RE.match(image)
        if py:
            col.add_python(py.group(1), cur["ev"])


def _from(col, args, ev, global_args, stages):
    words = args.split()
    words = [w for w in words if not w.startswith("--")]
    if not words:
        col.warn(ev, "FROM without an image")
        return None
    image = _substitute(words[0], global_args)
    name = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
    if image is None or "$" in image:
        col.warn(ev, f"base image '{words[0]}' uses a build argument with no default; not used")
        return None
    if not _IMAGE_RE.match(image):
        col.warn(ev, f"base image '{image}' is not an image reference; not used")
        return None
    return {"image": image, "name": name, "ev": ev}


def _assignments(args: str, allow_bare: bool):
    """``A=1 B="x y"`` or the legacy ``ENV A value`` form -> [(name, value or None)]."""
    import shlex

    try:
        words = shlex.split(args, posix=True)
    except ValueError:
        return []
    if not words:
        return []
    if "=" not in words[0] and not allow_bare and len(words) >= 2:
        return [(words[0], " ".join(words[1:]))]
    out = []
    for w in words:
        if "=" in w:
            name, value = w.split("=", 1)
            out.append((name, value))
        elif allow_bare:
            out.append((w, None))
    return out


_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _substitute(value: str, variables: dict[str, str]) -> str | None:
    """Docker's variable substitution; None when a variable has no value and no default."""
    missing = []

    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(4)
        if m.group(2) == "-":
            return variables.get(name) or m.group(3) or ""
        if m.group(2) == "+":
            return (m.group(3) or "") if variables.get(name) else ""
        if name in variables:
            return variables[name]
        missing.append(name)
        return ""

    out = _VAR_RE.sub(sub, value)
    return None if missing else out


def _copy(args, variables, workdir, copies):
    import shlex

    args = args.strip()
    try:
        if args.startswith("["):
            words = json.loads(args)
        else:
            words = shlex.split(args, posix=True)
    except (ValueError, json.JSONDecodeError, RecursionError):
        return
    if any(w.startswith("--from") for w in words):
        return
    words = [w for w in words if not w.startswith("--")]
    if len(words) < 2:
        return
    *sources, dest = words
    dest = _substitute(dest, variables)
    if dest is None:
        return
    dest_full = posixpath.normpath(posixpath.join(workdir, dest))
    for src in sources:
        if "$" in src or "*" in src or "://" in src:
            continue
        repo = resolve_path("", src)
        if repo is None:
            continue
        if repo == "":
            copies.append((dest_full, ""))
            continue
        # `COPY x /dest` puts x at /dest, or at /dest/x when /dest is a folder: record both
        copies.append((dest_full, repo))
        copies.append((posixpath.join(dest_full, posixpath.basename(repo)), repo))


def _run(col, args, body, ev, ctx, rel, number):
    if args.startswith("["):
        try:
            words = json.loads(args)
        except (json.JSONDecodeError, RecursionError):
            col.warn(ev, "RUN exec form is not valid JSON; not read")
            return
        if not all(isinstance(w, str) for w in words):
            return
        if len(words) >= 3 and posixpath.basename(words[0]) in ("sh", "bash") and words[1] == "-c":
            handle_commands(col, words[2], ev, ctx)
        else:
            handle_words(col, list(words), ev, ctx)
        return
    if args:
        handle_commands(col, args, ev, ctx)
    if body:
        from gpu_lol.analyzer.shell_installs import shell_logical_lines

        for n, line in shell_logical_lines(body, number + 1):
            handle_commands(col, line, Evidence(rel, n, line), ctx)
