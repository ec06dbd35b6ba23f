"""Jupyter notebooks: code cells, their install commands, and their Python for other detectors.

:func:`code_cells` yields ``(offset, code)`` for each non-empty code cell: line ``k`` (1-based)
of ``code`` is line ``offset + k`` of the ``.ipynb`` file itself, so evidence points at the line
an editor or ``grep -n`` shows (the usual one-string-per-line layout nbformat writes; for other
layouts it points at the cell's first line). Notebooks that are not valid JSON are skipped
(:func:`read_cells` says why).

Shell in cells: ``!cmd``, ``%pip``, ``%conda``, ``%sx``/``%system``, ``x = !cmd``,
``get_ipython().system("...")`` and whole ``%%bash``/``%%sh``/``%%script`` cells.
``{sys.executable}`` reads as ``python``. :func:`python_source` turns a cell into plain Python
with every magic or shell line replaced by ``pass`` (line numbers kept), for ``ast`` or regex
scans.
"""

from __future__ import annotations

import json
import re
from typing import Iterator

from gpu_lol.analyzer.evidence import Evidence

_SOURCE_KEY_RE = re.compile(r'^\s*"(source|input)"\s*:')
_SHELL_CELL_MAGICS = frozenset({"bash", "sh", "script", "shell", "system"})
_PY_CELL_MAGICS = frozenset({"capture", "time", "timeit", "prun", "debug", "memit", "tensorflow_version"})
_ASSIGN_SHELL_RE = re.compile(r"^\s*[A-Za-z_][\w, ]*=\s*!(.*)$")
_IPY_SYSTEM_RE = re.compile(r"get_ipython\(\)\.(system|getoutput)\(\s*(?P<q>['\"])(?P<cmd>.*?)(?P=q)\s*\)")
_IPY_MAGIC_RE = re.compile(
    r"get_ipython\(\)\.run_line_magic\(\s*(['\"])(?P<magic>pip|conda)\1\s*,\s*(?P<q>['\"])(?P<cmd>.*?)(?P=q)\s*\)")


def read_cells(text: str) -> tuple[list[tuple[int, str]], str | None]:
    """(code cells as (offset, code), error) for a notebook's JSON text."""
    try:
        nb = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return [], f"not valid notebook JSON ({exc.__class__.__name__}: {str(exc)[:80]})"
    if not isinstance(nb, dict):
        return [], "not a notebook (top level is not an object)"
    cells = nb.get("cells")
    if cells is None and isinstance(nb.get("worksheets"), list):  # nbformat 3
        cells = [c for ws in nb["worksheets"] if isinstance(ws, dict) for c in ws.get("cells") or []]
    if not isinstance(cells, list):
        return [], "not a notebook (no cells)"
    raw = text.splitlines()
    out: list[tuple[int, str]] = []
    cursor = 0
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        src = cell.get("source", cell.get("input", ""))
        if isinstance(src, list):
            src = "".join(s for s in src if isinstance(s, str))
        if not isinstance(src, str):
            src = ""
        key = _find_key(raw, cursor)
        if key is not None:
            cursor = key + 1
        if cell.get("cell_type") != "code" or not src.strip():
            continue
        offset, found = _offset(raw, key, src)
        if found is not None:
            cursor = found + 1
        out.append((offset, src))
    return out, None


def _find_key(raw: list[str], start: int) -> int | None:
    for i in range(start, len(raw)):
        if _SOURCE_KEY_RE.match(raw[i]):
            return i
    return None


def _offset(raw: list[str], key: int | None, src: str) -> tuple[int, int | None]:
    """Offset so that code line k sits at file line offset + k; and the raw index found."""
    lines = src.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    start = key if key is not None else 0
    target = lines[first]
    needles = {json.dumps(target, ensure_ascii=False)[1:-1], json.dumps(target)[1:-1]}
    limit = min(len(raw), start + len(lines) + 3) if key is not None else len(raw)
    for j in range(start, limit):
        if any(n and n in raw[j] for n in needles):
            return j - first, j
    base = key + 1 if key is not None else 0
    return base, None


def notebook_cells(index, f) -> tuple[list[tuple[int, str]], str | None]:
    """:func:`read_cells` for a notebook of the index, parsed once per index (notebooks can be
    megabytes of JSON, and several detectors read them)."""
    rel = f if isinstance(f, str) else f.rel
    cache = getattr(index, "_gpu_lol_notebook_cells", None)
    if cache is None:
        cache = {}
        try:
            setattr(index, "_gpu_lol_notebook_cells", cache)
        except AttributeError:  # pragma: no cover - an index type that refuses attributes
            pass
    if rel not in cache:
        text = index.text(rel)
        cache[rel] = read_cells(text) if text is not None else (
            [], "notebook not readable (too large, binary or not UTF-8)")
    return cache[rel]


def code_cells(index, f) -> Iterator[tuple[int, str]]:
    """(offset, code) for each code cell of a notebook in the index; nothing if unreadable."""
    cells, _error = notebook_cells(index, f)
    yield from cells


def _cell_magic(code: str) -> tuple[str | None, int]:
    """The cell magic's name (``%%bash`` -> ``bash``) and the index of its line."""
    for i, line in enumerate(code.splitlines()):
        s = line.strip()
        if not s:
            continue
        if s.startswith("%%"):
            return s[2:].split()[0] if len(s) > 2 else "", i
        return None, i
    return None, 0


def _is_magic_line(stripped: str) -> bool:
    return (stripped.startswith(("%", "!", "?")) or (stripped.endswith("?") and not stripped.startswith("#"))
            or bool(_ASSIGN_SHELL_RE.match(stripped)) or bool(re.match(r"^[\w.]+\s*=\s*%", stripped)))


def python_source(code: str) -> str:
    """The cell as plain Python: magic and shell lines become ``pass`` (line numbers kept)."""
    lines = code.splitlines()
    magic, at = _cell_magic(code)
    if magic is not None and magic not in _PY_CELL_MAGICS:
        return "\n" * max(len(lines) - 1, 0)
    out = []
    continuing = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = line[: len(line) - len(line.lstrip())]
        if magic is not None and i == at:
            out.append("")
            continue
        if continuing or _is_magic_line(stripped):
            out.append(indent + "pass" if not continuing else "")
            continuing = stripped.endswith("\\")
            continue
        out.append(line)
    return "\n".join(out)


def shell_lines(code: str) -> list[tuple[int, str]]:
    """(line within the cell, 1-based; command) for each shell command in a cell."""
    lines = code.splitlines()
    magic, at = _cell_magic(code)
    out: list[tuple[int, str]] = []
    if magic in _SHELL_CELL_MAGICS:
        from gpu_lol.analyzer.shell_installs import shell_logical_lines

        body = lines[at + 1:]
        return list(shell_logical_lines(body, at + 2))
    if magic is not None and magic not in _PY_CELL_MAGICS:
        return out
    buf: list[str] = []
    first = 0
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if buf:
            buf.append(stripped[:-1] if stripped.endswith("\\") else stripped)
            if not stripped.endswith("\\"):
                out.append((first, " ".join(buf)))
                buf = []
            continue
        cmd = _command_of(stripped)
        if cmd is None:
            continue
        if cmd.endswith("\\"):
            buf, first = [cmd[:-1]], number
            continue
        out.append((number, cmd))
    if buf:
        out.append((first, " ".join(buf)))
    return out


def _command_of(stripped: str) -> str | None:
    cmd = None
    if stripped.startswith("!"):
        cmd = stripped[1:]
    elif stripped.startswith(("%pip ", "%conda ", "%mamba ")):
        cmd = stripped[1:]
    elif stripped.startswith(("%sx ", "%system ")):
        cmd = stripped.split(None, 1)[1]
    else:
        m = _ASSIGN_SHELL_RE.match(stripped)
        if m:
            cmd = m.group(1)
        else:
            m = _IPY_MAGIC_RE.search(stripped)
            if m:
                cmd = f"{m.group('magic')} {m.group('cmd')}"
            else:
                m = _IPY_SYSTEM_RE.search(stripped)
                if m:
                    cmd = m.group("cmd")
    if cmd is None:
        return None
    return re.sub(r"\{sys\.executable\}", "python", cmd).strip()


def parse(col, rel: str) -> None:
    """``%pip``/``!pip``/``!conda`` installs in a notebook's code cells."""
    from gpu_lol.analyzer.shell_installs import CommandContext, handle_commands

    cells, error = notebook_cells(col.index, rel)
    if error:
        col.warn(rel, f"{error}; skipped")
        return
    folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
    ctx = CommandContext("notebook", bases=([folder] if folder else []) + [""])
    for offset, code in cells:
        if "install" not in code and "conda" not in code:
            continue
        for k, cmd in shell_lines(code):
            if "install" in cmd or "conda" in cmd:
                handle_commands(col, cmd, Evidence(rel, offset + k, cmd), ctx)
