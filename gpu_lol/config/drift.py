"""Has ``.gpu-lol.yaml`` drifted from the repo? One warning line per drift, with its fix.

Three kinds, each compared with what this run's analysis reads from the repo:

* ``requirements`` set in the file lacks a requirement a package file of the repo declares now
  (requirements*.txt, pyproject, setup.py, environment.yml...), or pins it differently. Imports
  alone are not a declaration (they are what the analysis falls back to when nothing declares).
* ``model.name`` set in the file is mentioned by no file of the repo any more: the code no longer
  loads it, and the estimate and the GPU are sized for a model nobody runs.
* A file written by ``gpu-lol init`` records the derived fields (GPU, count, VRAM, image, Python,
  requirements, setup...) as comments "as of this writing"; a recorded value that the analysis
  no longer derives is stale. The run already uses the new value (derived fields follow the
  repo); the warning says the record is stale and how to refresh or pin it.

The analyzer calls :func:`check` (config sits below the analyzer, so this module takes what the
analysis found as plain values: the declared requirements as ``(text, file:line)`` pairs, the
spec, the repo's :class:`~gpu_lol.repo_index.FileIndex`).
"""

from __future__ import annotations

from typing import Any, Iterable

from gpu_lol.repo_index import FileIndex
from gpu_lol.spec import EnvironmentSpec

MAX_REQUIREMENT_LINES = 8  # then one line counting the rest
DERIVED_MARK = "# Derived:"
INIT_MARK = "Written by `gpu-lol init`"  # the first line of the header init writes  # the line config_file.spec_to_yaml writes before the derived fields
# the files a model name in them does not count as "the repo mentions it"
_OWN_FILES = (".gpu-lol.yaml", ".gpu-lol-lock.txt")
_TEXT_SUFFIXES = {".py", ".ipynb", ".md", ".rst", ".txt", ".yaml", ".yml", ".json", ".toml", ".cfg",
                  ".ini", ".sh", ".bash", ".zsh", ".env", ".conf", ".jsonl", ".js", ".ts", ""}


def check(cfg_name: str, data: dict[str, Any], text: str | None, spec: EnvironmentSpec, *,
          declared: Iterable[tuple[str, str]] | None, index: FileIndex | None) -> list[str]:
    """Every drift warning for a config ``data`` (its file ``text``, for the derived record) against
    the analysis' ``spec``; ``declared``: (requirement, file:line) the repo's package files declare
    (``None``: the repo declares none)."""
    out: list[str] = []
    if "requirements" in data and declared is not None:
        out += requirement_drift(cfg_name, list(data.get("requirements") or []), list(declared))
    name = (data.get("model") or {}).get("name") if isinstance(data.get("model"), dict) else None
    if name and index is not None and not mentioned(index, str(name)):
        if text and INIT_MARK in text:  # init took it from the repo, which named it then
            why = "any more (the code no longer loads it, yet it sizes the GPU)"
        else:  # written by hand: the code may take it from an argument, but nothing says so
            why = "(if the code does not load it, the GPU is sized for a model nobody runs)"
        out.append(f"{cfg_name}: model.name {name} is mentioned by no file of the repo {why}: fix: set "
                   "model.name to the model the code loads, or delete model.name to let gpu-lol find it")
    if text:
        out += derived_drift(cfg_name, recorded_derived(text), spec, data)
    return out


# ---- requirements ---------------------------------------------------------------------------


def _parse(text: str):
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def requirement_drift(cfg_name: str, in_file: list[str], declared: list[tuple[str, str]]) -> list[str]:
    """A line per declared requirement the file lacks or pins differently (the file's own extra
    requirements and its tighter pins of an unpinned requirement are decisions, not drift)."""
    from gpu_lol.requirements_text import name_of

    by_name: dict[str, str] = {}
    for req in in_file:
        by_name.setdefault(name_of(req) or req, req)
    lines: list[str] = []
    seen: set[str] = set()
    for text, where in declared:
        key = name_of(text) or text
        if key in seen:
            continue
        seen.add(key)
        mine = by_name.get(key)
        if mine is None:
            lines.append(f"{cfg_name}: requirements lacks {text}, which {where} declares (the setup installs "
                         "only the file's list): fix: add it to requirements, or delete requirements to "
                         "follow the repo")
            continue
        theirs, ours = _parse(text), _parse(mine)
        if theirs is None or ours is None or not str(theirs.specifier):
            continue
        if theirs.specifier != ours.specifier:
            lines.append(f"{cfg_name}: requirements has {mine} but {where} declares {text}: fix: write "
                         f"{text} in requirements, or delete requirements to follow the repo")
    if len(lines) > MAX_REQUIREMENT_LINES:
        rest = len(lines) - MAX_REQUIREMENT_LINES + 1
        lines = lines[:MAX_REQUIREMENT_LINES - 1] + [
            f"{cfg_name}: requirements differs from the repo's package files in {rest} more requirement(s): "
            "fix: delete requirements to follow the repo (`gpu-lol analyze --json` lists them)"]
    return lines


# ---- model.name -----------------------------------------------------------------------------


def mentioned(index: FileIndex, name: str) -> bool:
    """Whether a text file of the repo (its own .gpu-lol.yaml aside) names the model, in full or
    without its organisation (``meta-llama/Llama-3.1-8B`` or ``Llama-3.1-8B``). Unreadable files
    count as mentioning it: no warning rests on a file that was not read."""
    needles = {name.lower()}
    if "/" in name.strip("/"):
        needles.add(name.strip("/").rsplit("/", 1)[-1].lower())
    for f in index.files:
        if f.rel in _OWN_FILES or f.suffix not in _TEXT_SUFFIXES:
            continue
        content = index.text(f)
        if content is None:
            if f.size and f.size < (1 << 20):
                return True  # over the read budget (or not UTF-8): cannot tell
            continue
        low = content.lower()
        if any(n in low for n in needles):
            return True
    return False


# ---- the derived record ---------------------------------------------------------------------


def recorded_derived(text: str) -> dict[str, Any]:
    """The derived fields ``gpu-lol init`` wrote as comments (``{}`` when there are none or they
    no longer parse: a hand-edited comment is nobody's record)."""
    from gpu_lol import safe_yaml

    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith(DERIVED_MARK))
    except StopIteration:
        return {}
    rest = lines[start + 1:]
    # the mark's explanation runs to "... Uncomment a field to pin it."
    intro = next((i for i, line in enumerate(rest[:3]) if "Uncomment a field" in line), -1)
    body: list[str] = []
    for line in rest[intro + 1:]:
        if not line.startswith("#"):
            break
        body.append(line[2:] if line.startswith("# ") else line[1:])
    try:
        data = safe_yaml.load("\n".join(body))
    except Exception:  # noqa: BLE001 - a comment that is not YAML any more is no record
        return {}
    return data if isinstance(data, dict) else {}


def _current(spec: EnvironmentSpec, key: str) -> tuple[bool, Any]:
    data = spec.to_dict()
    if key == "model.params_b":
        return True, (data.get("model") or {}).get("params_b")
    if key not in data:
        return False, None
    return True, data[key]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b)) < 1e-6
    return a == b


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return value or "''"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _list_change(old: list, new: list) -> str:
    added = [str(x) for x in new if x not in old]
    removed = [str(x) for x in old if x not in new]
    parts = []
    if added:
        parts.append("now also " + ", ".join(added[:3]) + (f" (+{len(added) - 3} more)" if len(added) > 3 else ""))
    if removed:
        parts.append("no longer " + ", ".join(removed[:3]) + (f" (+{len(removed) - 3} more)" if len(removed) > 3 else ""))
    return "; ".join(parts) or "reordered"


# Fields that move together are one drift, one line: a bigger model changes the card, the count
# and the need; a new requirement changes the requirements and the setup that installs them.
_GROUPS = (("gpu_type", "gpu_count", "vram_required_gb"), ("base_image", "python_version"),
           ("requirements", "setup_commands"), ("model", "model.params_b"))


def derived_drift(cfg_name: str, recorded: dict[str, Any], spec: EnvironmentSpec,
                  data: dict[str, Any]) -> list[str]:
    """A line per recorded derived value (or group of values that move together) the analysis no
    longer derives (``data``: the fields the file sets now; a field pinned since is the user's)."""
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    changes: dict[str, str] = {}
    for key, old in recorded.items():
        if key in data or (key == "model.params_b" and "params_b" in model):
            continue
        known, new = _current(spec, key)
        if not known or _same(old, new):
            continue
        if isinstance(old, list) and isinstance(new, list):
            changes[key] = f"{key}: {_list_change(old, new)}"
        else:
            changes[key] = f"{key}: recorded {_show(old)}, the repo now gives {_show(new)}"
    if "requirements" in changes:
        changes.pop("setup_commands", None)  # the setup installs the requirements: one change
    lines: list[str] = []
    done: set[str] = set()
    for key in list(changes):
        if key in done:
            continue
        group = next((g for g in _GROUPS if key in g), (key,))
        keys = [k for k in group if k in changes]
        done.update(keys)
        lines.append(f"{cfg_name}: the derived values `gpu-lol init` recorded are stale ("
                     + "; ".join(changes[k] for k in keys) + "); this run uses the new values: fix: "
                     f"`gpu-lol init --force` rewrites the record, or uncomment {keys[0]} and set it to pin it")
    return lines
