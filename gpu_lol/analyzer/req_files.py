"""pip requirement files (``requirements*.txt``), and the one place a requirement line is read.

Follows pip's file format: ``\\`` line continuations, ``#`` comments (at line start or after
whitespace, so ``#egg=`` in a URL survives), ``-r``/``-c`` includes relative to the including file
(cycles guarded), ``-e``, global option lines (``--extra-index-url``, ``-f``, ``--pre``) that are
recorded and never taken as packages, and per-requirement options (``--hash=...``) that are
stripped. ``${VAR}`` lines are dropped with a warning: the variable is unknown here. A line that
installs the repo itself (``.``, ``-e .``, ``-e ".[train]"``) is evidence that the repo is a
package (its extras are requested), not a requirement; another local path is a local install.

Other sources (conda ``pip:`` sections, ``pip install`` commands in Dockerfiles, scripts,
READMEs and notebooks) hand their lines and arguments to :func:`handle_line` and
:func:`add_requirement_text`, so every source validates the same way.
"""

from __future__ import annotations

import re
import shlex
from urllib.parse import urlsplit

from gpu_lol.analyzer.collector import RUNTIME, Collector, resolve_path, variant
from gpu_lol.analyzer.evidence import Evidence

_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_OPTION_START_RE = re.compile(r"(?:^|\s)(--?[A-Za-z][\w-]*)(?=[\s=]|$)")
_ENV_RE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
_ARCHIVE_RE = re.compile(r"\.(whl|tar\.gz|tgz|tar\.bz2|zip)$", re.I)
PATH_EXTRAS_RE = re.compile(r"^(?P<path>.*?)(?:\[(?P<extras>[^\]]*)\])?$")

INDEX_OPTIONS = {
    "-i": "--index-url", "--index-url": "--index-url", "--extra-index-url": "--extra-index-url",
    "-f": "--find-links", "--find-links": "--find-links",
}
# pip options (requirement files and `pip install`) that take a value.
VALUE_OPTIONS = frozenset({
    "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url",
    "--extra-index-url", "-f", "--find-links", "--trusted-host", "--no-binary", "--only-binary",
    "--use-feature", "--use-deprecated", "--hash", "--global-option", "--install-option",
    "--config-settings", "-C", "-t", "--target", "--prefix", "--root", "--src", "--platform",
    "--python-version", "--implementation", "--abi", "--upgrade-strategy", "--progress-bar",
    "--log", "--log-file", "--cache-dir", "--timeout", "--retries", "--proxy", "--cert",
    "--client-cert", "--exists-action", "--python", "--report", "--root-user-action",
    "--keyring-provider", "--index-strategy", "--group", "--extra", "-p", "--resolution",
    "--prerelease", "--link-mode", "--constraints", "--overrides", "--build-constraints",
    "--torch-backend", "--default-index", "--index", "--no-build-isolation-package",
})

# pip options that take no value.
FLAG_OPTIONS = frozenset({
    "--pre", "--no-index", "--prefer-binary", "--require-hashes", "-Z", "--always-unzip",
    "--no-deps", "--no-build-isolation", "-U", "--upgrade", "-q", "--quiet", "-v", "--verbose",
    "--user", "--force-reinstall", "-I", "--ignore-installed", "--no-cache-dir", "--no-clean",
    "--no-warn-script-location", "--no-warn-conflicts", "--compile", "--no-compile", "--isolated",
    "--disable-pip-version-check", "--break-system-packages", "--system", "--no-input", "-qq",
    "-qqq", "-vv", "--dry-run", "--ignore-requires-python", "--no-color",
    "--use-pep517", "--no-use-pep517", "--check-build-dependencies", "--editable-mode",
})
# pip's one-letter options that take a value (`-rfile`, `-qr file`)
SHORT_WITH_VALUE = frozenset("rceiftCd")


def short_options(word: str) -> tuple[str, str | None]:
    """optparse's reading of ``-qr``/``-Ur``/``-rfile``: flags up to the first option that takes
    a value, which takes the rest of the word (or, when nothing is left, the next word)."""
    for k, ch in enumerate(word[1:], 1):
        if ch in SHORT_WITH_VALUE:
            rest = word[k + 1:]
            return "-" + ch, rest or None
    return word, None


def parse_file(col: Collector, rel: str, target=RUNTIME, source: str = "requirements") -> None:
    """Read one requirement file into ``target`` (follows its includes)."""
    key = (rel, target if isinstance(target, str) else tuple(target))
    if key in col.visited:
        return
    col.visited.add(key)
    text = col.index.text(rel)
    if text is None:
        col.warn(rel, "not readable as UTF-8 text; skipped")
        return
    base_dir = rel.rsplit("/", 1)[0] if "/" in rel else ""
    for lineno, line in logical_lines(text.splitlines()):
        handle_line(col, line, Evidence(rel, lineno, line.strip()), base_dir, target, source)


def logical_lines(lines: list[str]):
    """(first line number, text without comment) for each non-empty logical line, pip's way."""
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(lines, 1):
        if raw.endswith("\\") and not _COMMENT_RE.match(raw.strip()) and not raw.lstrip().startswith("#"):
            if not buf:
                start = number
            buf.append(raw[:-1])
            continue
        if buf:
            buf.append(raw if not raw.lstrip().startswith("#") else "")
            joined, line_no, buf = "".join(buf), start, []
        else:
            joined, line_no = raw, number
        stripped = _COMMENT_RE.sub("", joined).strip()
        if stripped:
            yield line_no, stripped
    if buf:
        stripped = _COMMENT_RE.sub("", "".join(buf)).strip()
        if stripped:
            yield start, stripped


def handle_line(col: Collector, line: str, ev: Evidence, base_dir: str, target=RUNTIME,
                source: str = "requirements") -> None:
    """One logical line of a requirement file: options, an include, or a requirement."""
    if line.startswith("-"):
        _options(col, line, ev, base_dir, target, source)
        return
    m = _OPTION_START_RE.search(line)
    if m and m.group(1) not in VALUE_OPTIONS and m.group(1) not in FLAG_OPTIONS:
        m = None  # `foo; rm -rf /` is not `foo` plus an option: judge the whole line
    req, opts = (line[: m.start()].strip(), line[m.start():].strip()) if m else (line, "")
    if opts:
        _options(col, opts, ev, base_dir, target, source, per_requirement=True)
    if req:
        add_requirement_text(col, req, ev, base_dir, target, source)


def _options(col, text, ev, base_dir, target, source, per_requirement=False):
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError:
        tokens = text.split()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        opt, value = tok, None
        if tok.startswith("--") and "=" in tok:
            opt, value = tok.split("=", 1)
        elif len(tok) > 2 and not tok.startswith("--"):
            opt, value = short_options(tok)
        if opt in VALUE_OPTIONS and value is None:
            if i + 1 < len(tokens):
                value = tokens[i + 1]
                i += 1
            else:
                col.warn(ev, f"option {opt} has no value; ignored")
                i += 1
                continue
        i += 1
        if opt in ("-r", "--requirement"):
            include(col, value, ev, base_dir, target, source)
        elif target != RUNTIME and (opt in ("-c", "--constraint") or opt in INDEX_OPTIONS):
            continue  # a dev or platform file's indexes and constraints are not the environment's
        elif opt in ("-c", "--constraint"):
            path = resolve_path(base_dir, value)
            if path is None or value.startswith(("http://", "https://")):
                col.warn(ev, f"constraints file '{value}' is outside the repo; ignored")
            else:
                col.add_constraint(path, ev)
        elif opt in ("-e", "--editable"):
            add_requirement_text(col, value, ev, base_dir, target, source, editable=True)
        elif opt in INDEX_OPTIONS:
            col.add_index_url(INDEX_OPTIONS[opt], value, ev)
        elif opt.startswith("-") and opt not in VALUE_OPTIONS and opt not in FLAG_OPTIONS \
                and not per_requirement:
            col.warn(ev, f"unknown option '{opt}' in a requirements file; ignored")
        elif not opt.startswith("-"):
            # a requirement after options on one line (`-e` took its value already)
            add_requirement_text(col, opt, ev, base_dir, target, source)


def include(col: Collector, value: str, ev: Evidence, base_dir: str, target=RUNTIME,
            source: str = "requirements", skip_dev: bool = False) -> None:
    """Follow ``-r value`` seen in a file of ``base_dir``."""
    if value.startswith(("http://", "https://")):
        col.warn(ev, f"remote requirements file '{value}' is not followed")
        return
    if "$" in value:
        col.warn(ev, f"requirements file '{value}' uses an environment variable; not followed")
        return
    path = resolve_path(base_dir, value)
    if path is None or not col.index.has(path):
        col.warn(ev, f"requirements file '{value}' is not in the repo; not followed")
        return
    if skip_dev and target == RUNTIME and variant(path) in ("dev", "platform"):
        return  # `pip install -r requirements-test.txt` / `-r requirements-tpu.txt` in a README
    if target != RUNTIME and (path, RUNTIME) in col.visited:
        return  # a dev or optional file including a runtime file: nothing new
    if target == RUNTIME:
        col.declared_runtime.add(path)
    parse_file(col, path, target)


def declare_file(col: Collector, value: str, ev: Evidence, base_dir: str, target=RUNTIME) -> None:
    """A requirements file that package metadata names for ``target`` (setup.py, setup.cfg
    ``file:``, pyproject dynamic dependencies): read it for that target even if it was already
    read as a runtime file because of where it sits."""
    path = resolve_path(base_dir, value)
    if path is None or not col.index.has(path):
        col.warn(ev, f"requirements file '{value}' is not in the repo; not read")
        return
    (col.declared_runtime if target == RUNTIME else col.declared_optional).add(path)
    parse_file(col, path, target)


def add_requirement_text(col: Collector, text: str, ev: Evidence, base_dir: str, target=RUNTIME,
                         source: str = "requirements", editable: bool = False) -> bool:
    """A requirement, a URL, the repo itself or a local path; validated, then recorded."""
    text = text.strip()
    if not text:
        return False
    if "$(" in text or "`" in text:
        col.warn(ev, f"dropped '{text}' (shell command substitution)")
        return False
    env = _ENV_RE.search(text)
    if env:
        col.warn(ev, f"dropped '{text}' (uses environment variable {env.group(0)}, unknown here)")
        return False
    if looks_like_path(text) or (editable and "://" not in text):
        return _local(col, text, ev, base_dir, target, editable)
    text = _egg_url_to_direct(_url_with_marker(text))
    return col.add_requirement(text, ev, source, target)


_WHEEL_NAME_RE = re.compile(r"/([A-Za-z0-9][A-Za-z0-9._]*?)-\d[^/]*\.(?:whl|tar\.gz|zip|tgz)$", re.I)


def _url_with_marker(text: str) -> str:
    """``https://host/pkg-1.0-py3-none-any.whl; platform_system == "Linux"`` (pip takes a URL
    followed by ``; marker``) -> ``pkg @ https://...whl ; platform_system == "Linux"``."""
    if not re.match(r"^(git\+|hg\+|svn\+|bzr\+)?https?://", text) or ";" not in text:
        return text
    url, _, marker = text.partition(";")
    url, marker = url.strip(), marker.strip()
    egg = re.search(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)", url)
    m = _WHEEL_NAME_RE.search(url.split("#", 1)[0])
    name = egg.group(1) if egg else (m.group(1) if m else None)
    if not name or not marker:
        return text
    return f"{name} @ {url} ; {marker}"


def looks_like_path(text: str) -> bool:
    if "://" in text and not text.startswith("file:"):
        return False
    if " @ " in text or text.startswith(("git+", "hg+", "svn+", "bzr+")):
        return False
    if text.startswith((".", "/", "~", "file:")):
        return True
    path = PATH_EXTRAS_RE.match(text).group("path")
    return "/" in path or bool(_ARCHIVE_RE.search(path))


def _local(col, text, ev, base_dir, target, editable) -> bool:
    m = PATH_EXTRAS_RE.match(text)
    raw_path, extras = m.group("path"), m.group("extras")
    path = resolve_path(base_dir, raw_path)
    if path == "":
        if col.self_install is None:
            col.self_install = ev
        if extras and target == RUNTIME:
            col.add_extra_request(extras.split(","), ev)
        return True
    if path is None:
        col.warn(ev, f"local path '{raw_path}' is outside the repo; not installed")
        return False
    exists = col.index.has(path) or any(f.rel.startswith(path + "/") for f in col.index.files)
    if not exists:
        col.warn(ev, f"local path '{raw_path}' is not in the repo; not installed")
        return False
    if target == RUNTIME:
        col.add_local_install(path + (f"[{extras}]" if extras else ""), ev)
    return True


def _egg_url_to_direct(text: str) -> str:
    """``git+URL#egg=name&subdirectory=sub`` -> ``name @ git+URL#subdirectory=sub``.

    pip takes both; the second has no ``&`` for a shell to misread and names the package.
    """
    if "://" not in text or "#" not in text or " @ " in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    params = [p for p in parts.fragment.split("&") if p]
    egg = next((p[4:] for p in params if p.startswith("egg=")), None)
    others = [p for p in params if not p.startswith("egg=")]
    if not egg or not others:
        return text
    base = text.split("#", 1)[0]
    return f"{egg} @ {base}#{'&'.join(others)}"
