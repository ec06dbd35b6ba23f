"""Install commands written as shell: launch scripts (``*.sh``), README/INSTALL code blocks, and
the command reader Dockerfiles and notebooks share.

A command line is split the way a shell would (quotes honoured, ``&&``, ``||``, ``;`` and ``|``
separate commands; ``<``/``>`` inside a word are kept so ``pip install numpy<2.0`` means what its
author meant). Recognised: ``pip``/``pip3``/``pipX.Y install``, ``python -m pip install``,
``uv pip install``, ``uv add``, ``conda``/``mamba``/``micromamba install|create``,
``conda env create|update -f FILE`` and, where the caller asks (Dockerfiles),
``apt-get``/``apt install``. ``sudo``, ``env``, variable assignments and ``then``/``do`` before a
command are skipped. An argument with a ``$`` expansion the caller cannot resolve is dropped with
a warning; so are ``$(...)`` and backticks.

README code blocks: fenced Markdown blocks (unlabelled or shell-like: bash, sh, shell, console,
zsh, text) and reStructuredText ``code-block``/``::`` literal blocks; prompts (``$``,
``(venv) $``, ``>>>``) are stripped. Inline code in prose is not read: prose often lists
alternatives ("or `pip install foo-cpu`") that are not all meant.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field
from typing import Callable

from gpu_lol.analyzer.collector import RUNTIME, Collector, resolve_path
from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.analyzer.req_files import (INDEX_OPTIONS, PATH_EXTRAS_RE, VALUE_OPTIONS,
                                        add_requirement_text, include, looks_like_path, short_options)

_ASSIGN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PIP_RE = re.compile(r"^pip(\d+(\.\d+)?)?$")
_PYTHON_RE = re.compile(r"^(python|python\d+(\.\d+)?|py)$")
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_REDIRECT_RE = re.compile(r"^(?:\d*(?:>>?|<)|&>>?)(.*)$")
# documentation templates: `pip install -r <requirements file from the table>`
_PLACEHOLDER_RE = re.compile(r"<[A-Za-z_][^<>\n]*>")
_SKIP_WORDS = frozenset({"sudo", "time", "nohup", "exec", "command", "then", "do", "else", "{",
                         "(", "!", "env", "eatmydata"})
_CONDA_VALUE = frozenset({"-c", "--channel", "-n", "--name", "-p", "--prefix", "--file",
                          "--solver", "--repodata-fn", "-S", "--subdir", "--platform"})
_APT_VALUE = frozenset({"-o", "--option", "-t", "--target-release", "-c", "--config-file"})
SHELL_LANGS = frozenset({"", "bash", "sh", "shell", "console", "zsh", "shell-session",
                         "shellsession", "terminal", "text", "txt", "none", "plain", "plaintext",
                         "commandline", "cli", "fish", "ksh", "session"})


@dataclass
class CommandContext:
    source: str  # "shell" | "readme" | "dockerfile" | "notebook"
    bases: list[str] = field(default_factory=lambda: [""])  # folders to resolve paths against, in order
    variables: dict[str, str] = field(default_factory=dict)  # known values (Dockerfile ARG/ENV)
    map_path: Callable[[str], str | None] | None = None  # container path -> repo path (Dockerfile)
    system_packages: bool = False  # record apt-get installs


def split_commands(text: str) -> list[list[str]]:
    """Words of each simple command in a shell snippet; raises ValueError on unbalanced quotes."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars="&|;")
    lexer.commenters = ""
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for tok in lexer:
        if tok.startswith("#"):
            break  # a word starting with # begins a comment
        if tok and set(tok) <= set("&|;"):
            if commands[-1]:
                commands.append([])
            continue
        commands[-1].append(tok)
    return [c for c in commands if c]


def handle_commands(col: Collector, text: str, ev: Evidence, ctx: CommandContext) -> None:
    """Record what the install commands in one logical shell line ask for."""
    if _PLACEHOLDER_RE.search(text) and _is_install_line(text):
        col.warn(ev, "install command with a placeholder (<...>); not read")
        return
    if ("`" in text or "$(" in text) and _is_install_line(text):
        # what a substitution produces is unknowable here, and its words would split wrongly
        col.warn(ev, "install command with command substitution ($(...) or backticks); not read")
        return
    try:
        commands = split_commands(text)
    except ValueError:
        col.warn(ev, "unbalanced quotes in a shell command; not read")
        return
    for words in commands:
        handle_words(col, words, ev, ctx)


def handle_words(col: Collector, words: list[str], ev: Evidence, ctx: CommandContext) -> None:
    words = _strip_prefix(words)
    if not words:
        return
    head = posixpath.basename(words[0])
    if _PIP_RE.match(head):
        sub, rest = _subcommand(words[1:])
        if sub == "install":
            pip_install_args(col, rest, ev, ctx)
        return
    if _PYTHON_RE.match(head) or words[0].startswith(("$", "{")) or head.startswith("python"):
        for i in range(1, min(len(words) - 1, 4)):
            if words[i] == "-m" and _PIP_RE.match(words[i + 1]):
                sub, rest = _subcommand(words[i + 2:])
                if sub == "install":
                    pip_install_args(col, rest, ev, ctx)
                return
        return
    if head == "uv" and len(words) > 1:
        if words[1] == "pip" and len(words) > 2 and words[2] == "install":
            pip_install_args(col, words[3:], ev, ctx)
        elif words[1] == "add":
            args = words[2:]
            if any(a in ("--dev", "--group", "--optional") or a.startswith(("--group=", "--optional="))
                   for a in args):
                return
            pip_install_args(col, args, ev, ctx)
        return
    if head in ("conda", "mamba", "micromamba"):
        _conda_command(col, words[1:], ev, ctx)
        return
    if head in ("apt-get", "apt") and ctx.system_packages:
        _apt_command(col, words[1:], ev)


def _strip_prefix(words: list[str]) -> list[str]:
    """Drop what runs the command rather than being it: ``sudo -E -H``, ``env A=1``, ``then``."""
    i = 0
    in_sudo = False
    while i < len(words):
        w = words[i]
        if w in _SKIP_WORDS or _ASSIGN_RE.match(w):
            in_sudo = w == "sudo"
            i += 1
        elif in_sudo and w.startswith("-"):
            i += 1 + (w in ("-u", "-g", "-C", "-h"))
        else:
            break
    return words[i:]


def _subcommand(words: list[str]) -> tuple[str | None, list[str]]:
    i = 0
    while i < len(words):
        w = words[i]
        if not w.startswith("-"):
            return w, words[i + 1:]
        i += 1 + (w in ("--retries", "--timeout", "--proxy", "--cert", "--log", "--cache-dir",
                        "--python", "--client-cert", "--exists-action"))
    return None, []


def expand(col: Collector, word: str, ev: Evidence, ctx: CommandContext) -> str | None:
    """Substitute known variables; None (with a warning) when something stays unknown."""
    if "$(" in word or "`" in word:
        col.warn(ev, f"dropped '{word}' (command substitution)")
        return None
    if "$" not in word:
        return word

    def sub(m: re.Match) -> str:
        name, op, word = m.group(1) or m.group(4), m.group(2), m.group(3) or ""
        value = ctx.variables.get(name)
        if op and op.endswith("+"):  # ${X:+word}: word when X is set (and not empty)
            return word if value else ""
        if value is not None:
            return word if (op and op.startswith(":") and value == "") else value
        if op is not None:  # ${X:-word}, ${X-word}, ${X:=word}
            return word
        raise KeyError(name)

    try:
        out = _VAR_RE.sub(sub, word)
    except KeyError as exc:
        col.warn(ev, f"dropped '{word}' (uses ${exc.args[0]}, unknown here)")
        return None
    if "$" in out:
        col.warn(ev, f"dropped '{word}' (shell expansion)")
        return None
    return out


def _exists(col: Collector, rel: str) -> bool:
    return rel == "" or col.index.has(rel) or any(f.rel.startswith(rel + "/") for f in col.index.files)


def _pick(col: Collector, ctx: CommandContext, path: str) -> str | None:
    """The first reading of ``path`` that exists in the repo (else the first reading)."""
    candidates = []
    if ctx.map_path is not None:
        mapped = ctx.map_path(path)
        if mapped is not None:
            candidates.append(mapped)
    for base in ctx.bases:
        rel = resolve_path(base, path)
        if rel is not None:
            candidates.append(rel)
    for rel in candidates:
        if _exists(col, rel):
            return rel
    # a notebook that cloned the repo first: `-r vision_transformer/vit_jax/requirements.txt`
    root_name = col.index.root.name
    for rel in candidates:
        head, _, rest = rel.partition("/")
        if rest and head == root_name and _exists(col, rest):
            return rest
    return candidates[0] if candidates else None


def pip_install_args(col: Collector, args: list[str], ev: Evidence, ctx: CommandContext,
                     target=RUNTIME) -> None:
    """The arguments after ``pip install``."""
    before = len(col.runtime)
    _pip_install_args(col, args, ev, ctx, target)
    # build flags the command gives (`pip install flash-attn --no-build-isolation`) stay with
    # the requirements it names: setup installs them in a command of their own with the flag
    flags = [f for f in BUILD_FLAGS if f in args]
    if flags and target == RUNTIME:
        for entry in col.runtime[before:]:
            col.add_build_flags(entry.req.text, flags)


# pip flags that change how a requirement builds; kept with the requirements they came with
BUILD_FLAGS = ("--no-build-isolation", "--no-use-pep517", "--use-pep517")


def _pip_install_args(col: Collector, args: list[str], ev: Evidence, ctx: CommandContext,
                      target=RUNTIME) -> None:
    i = 0
    while i < len(args):
        raw = args[i]
        i += 1
        red = _REDIRECT_RE.match(raw)
        if red:
            if not red.group(1):
                i += 1  # the redirect's target is the next word
            continue
        if raw.startswith("-"):
            opt, value = raw, None
            if raw.startswith("--") and "=" in raw:
                opt, value = raw.split("=", 1)
            elif not raw.startswith("--") and len(raw) > 2:
                opt, value = short_options(raw)
            if opt in VALUE_OPTIONS and value is None:
                if i >= len(args):
                    break
                value = args[i]
                i += 1
            if value is not None:
                value = expand(col, value, ev, ctx)
                if value is None:
                    continue
            if opt in ("-r", "--requirement"):
                rel = _pick(col, ctx, value)
                if rel is None:
                    col.warn(ev, f"requirements file '{value}' is outside the repo; not followed")
                else:
                    include(col, rel or ".", ev, "", target, ctx.source, skip_dev=True)
            elif opt in ("-c", "--constraint"):
                rel = _pick(col, ctx, value)
                if rel:
                    col.add_constraint(rel, ev)
            elif opt in ("-e", "--editable"):
                _positional(col, value, ev, ctx, target, editable=True)
            elif opt in INDEX_OPTIONS:
                # one command's --index-url applies to that command only; for the whole
                # environment it is an extra index next to PyPI
                kind = INDEX_OPTIONS[opt]
                col.add_index_url("--extra-index-url" if kind == "--index-url" else kind, value, ev)
            continue
        word = expand(col, raw, ev, ctx)
        if word is None or not word:
            continue
        _positional(col, word, ev, ctx, target)




def _positional(col, word, ev, ctx, target, editable=False):
    # `-e X` is always a folder or a VCS URL, never a PyPI name (`pip install -e detectron2_repo`)
    if looks_like_path(word) or (editable and "://" not in word and not word.startswith("./")):
        m = PATH_EXTRAS_RE.match(word)
        rel = _pick(col, ctx, m.group("path"))
        if rel is None:
            col.warn(ev, f"local path '{m.group('path')}' is outside the repo; not installed")
            return
        if not _exists(col, rel):
            col.warn(ev, f"local path '{m.group('path')}' is not in the repo; not installed")
            return
        extras = f"[{m.group('extras')}]" if m.group("extras") is not None else ""
        add_requirement_text(col, ("./" + rel if rel else ".") + extras, ev, "", target, ctx.source,
                             editable=editable)
        return
    add_requirement_text(col, word, ev, "", target, ctx.source, editable=editable)


def _conda_command(col, words, ev, ctx):
    from gpu_lol.analyzer import conda

    if not words:
        return
    if words[0] == "env" and len(words) > 1 and words[1] in ("create", "update"):
        args = words[2:]
        for j, w in enumerate(args):
            value = None
            if w in ("-f", "--file") and j + 1 < len(args):
                value = args[j + 1]
            elif w.startswith("--file="):
                value = w.split("=", 1)[1]
            if value:
                value = expand(col, value, ev, ctx)
                rel = _pick(col, ctx, value) if value else None
                if rel and col.index.has(rel):
                    conda.parse(col, rel, RUNTIME)
                elif value:
                    col.warn(ev, f"conda environment file '{value}' is not in the repo")
        return
    if words[0] not in ("install", "create"):
        return
    args = words[1:]
    i = 0
    while i < len(args):
        w = args[i]
        i += 1
        if w.startswith("-"):
            opt, value = (w.split("=", 1) + [None])[:2] if w.startswith("--") else (w, None)
            if opt in _CONDA_VALUE and value is None:
                value = args[i] if i < len(args) else None
                i += 1
            if opt == "--file" and value:
                value = expand(col, value, ev, ctx)
                rel = _pick(col, ctx, value) if value else None
                if rel and col.index.has(rel):
                    conda.parse_spec_file(col, rel, RUNTIME)
            continue
        word = expand(col, w, ev, ctx)
        if word:
            conda.add_spec(col, word, ev, ctx.source, RUNTIME)


def _apt_command(col, words, ev):
    i = 0
    seen_install = False
    while i < len(words):
        w = words[i]
        i += 1
        if w.startswith("-"):
            if w in _APT_VALUE:
                i += 1
            continue
        if not seen_install:
            if w != "install":
                return
            seen_install = True
            continue
        if "$" in w or "`" in w:
            col.warn(ev, f"ignored system package '{w}' (shell expansion)")
            continue
        name = re.split(r"[=:]", w, 1)[0]
        col.add_system_package(name, ev)


# ---- files ---------------------------------------------------------------------------------

def shell_logical_lines(lines: list[str], start: int = 1):
    """(line number, text) of each logical shell line, continuations joined, comments dropped."""
    buf: list[str] = []
    first = start
    for number, raw in enumerate(lines, start):
        line = raw.rstrip()
        if not buf and line.lstrip().startswith("#"):
            continue
        if buf and line.lstrip().startswith("#"):
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            if not buf:
                first = number
            buf.append(line[:-1])
            continue
        if buf:
            buf.append(line)
            text, n, buf = " ".join(buf), first, []
        else:
            text, n = line, number
        text = re.sub(r"(^|\s)#.*$", "", text).strip()
        if text:
            yield n, text
    if buf:
        text = " ".join(buf).strip()
        if text:
            yield first, text


def _is_install_line(text: str) -> bool:
    return "install" in text or "conda" in text or "uv add" in text or "mamba" in text


def parse_script(col: Collector, rel: str) -> None:
    """``pip``/``conda install`` lines of a shell script (paths: from the repo root, then the
    script's folder: scripts are usually run from the root)."""
    text = col.index.text(rel)
    if text is None:
        return
    folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
    ctx = CommandContext("shell", bases=[""] + ([folder] if folder else []))
    for n, line in shell_logical_lines(text.splitlines()):
        if _is_install_line(line):
            handle_commands(col, line, Evidence(rel, n, line), ctx)


_FENCE_RE = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*([\w+-]*)")
_RST_DIRECTIVE_RE = re.compile(r"^(\s*)\.\.\s+(code-block|code|sourcecode|prompt)::\s*(\S*)")
# `$ `, `(venv) $ `, `user@host:~/x$ `, `root@box:/# `, `>>> `, `%pip` (a `# ` alone is a comment)
_PROMPT_RE = re.compile(
    r"^(?:\([^)]*\)\s*)?(?:[\w.-]+@[\w.-]+(?::[^\s$#]*)?[$#]\s+|\$\s*|>>>\s+|%(?=pip|conda))")


def readme_code_lines(lines: list[str]):
    """(line number, command text) for each line inside a shell-like code block."""
    i = 0
    out: list[tuple[int, str]] = []
    n = len(lines)
    while i < n:
        line = lines[i]
        m = _FENCE_RE.match(line)
        if m:
            fence, lang = m.group(1), m.group(2).lower()
            block = []
            i += 1
            while i < n and not lines[i].strip().startswith(fence[0] * len(fence)):
                block.append((i + 1, lines[i]))
                i += 1
            i += 1
            if lang in SHELL_LANGS:
                out.extend(block)
            continue
        d = _RST_DIRECTIVE_RE.match(line)
        literal = line.rstrip().endswith("::") and not line.lstrip().startswith("..")
        if d or literal:
            indent = len(d.group(1)) if d else len(line) - len(line.lstrip())
            lang = (d.group(3).lower() if d else "")
            i += 1
            block = []
            while i < n:
                cur = lines[i]
                if cur.strip() and (len(cur) - len(cur.lstrip())) <= indent:
                    break
                if cur.strip() and not cur.lstrip().startswith(":"):
                    block.append((i + 1, cur))
                i += 1
            if lang in SHELL_LANGS:
                out.extend(block)
            continue
        i += 1
    # strip prompts, join continuations
    result = []
    buf: list[str] = []
    first = 0
    for number, text in out:
        body = text.strip()
        if not buf:
            body = _PROMPT_RE.sub("", body, count=1)
            if body.startswith("!"):
                body = body[1:]
        if body.endswith("\\"):
            if not buf:
                first = number
            buf.append(body[:-1])
            continue
        if buf:
            buf.append(body)
            result.append((first, " ".join(buf)))
            buf = []
        else:
            result.append((number, body))
    return result


def parse_readme(col: Collector, rel: str) -> None:
    text = col.index.text(rel)
    if text is None:
        return
    folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
    ctx = CommandContext("readme", bases=([folder] if folder else []) + [""])
    for n, line in readme_code_lines(text.splitlines()):
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line and _is_install_line(line):
            handle_commands(col, line, Evidence(rel, n, line), ctx)

