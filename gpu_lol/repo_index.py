"""One walk of the repo tree, shared by every detector.

The walk honours ``.gitignore`` files (root and nested), skips VCS directories, virtualenvs (any
directory holding ``pyvenv.cfg``), conda environments, ``node_modules``, ``site-packages``,
caches and build outputs, never follows a symlink out of the repo or around a loop, and reads
text lazily: binary, oversized, unreadable and undecodable files (UTF-16 included) read as
``None`` instead of raising.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# Directory names never worth reading.
SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", ".bzr", "node_modules", "site-packages", "dist-packages", "__pycache__",
    ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", ".eggs",
    "build", "dist", "wandb", "mlruns", "lightning_logs", ".cache", ".venv", "venv", ".conda",
    ".idea", ".vscode", ".gradle", "target", ".next", "bower_components", ".terraform", ".sky",
})
# Dot-directories are skipped except these, which hold launch facts.
KEEP_DOT_DIRS = frozenset({".devcontainer", ".github"})

MAX_TEXT_BYTES = 1 << 20  # 1 MiB for source, configs and requirement files
MAX_NOTEBOOK_BYTES = 20 << 20  # notebooks embed outputs; we read only their sources
MAX_ENTRIES = 200_000  # stop walking a pathological tree
MAX_READ_BYTES = 256 << 20  # stop reading file contents after this much in one analysis


@dataclass(frozen=True)
class RepoFile:
    rel: str  # POSIX path relative to the repo root
    size: int

    @property
    def name(self) -> str:
        return self.rel.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        name = self.name
        dot = name.rfind(".")
        return name[dot:].lower() if dot > 0 else ""

    @property
    def parent(self) -> str:
        return self.rel.rsplit("/", 1)[0] if "/" in self.rel else ""

    @property
    def depth(self) -> int:
        return self.rel.count("/")

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.rel.split("/"))


@dataclass
class FileIndex:
    root: Path
    files: list[RepoFile] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    truncated: bool = False
    read_bytes: int = 0  # file contents read so far (bounded by MAX_READ_BYTES)
    _text: dict[str, str | None] = field(default_factory=dict, repr=False)
    _by_rel: dict[str, RepoFile] = field(default_factory=dict, repr=False)

    # ---- building -------------------------------------------------------------------------
    @classmethod
    def build(cls, root: str | Path) -> "FileIndex":
        import pathspec

        root = Path(root).resolve()
        index = cls(root=root)
        visited: set[tuple[int, int]] = set()
        try:
            st = root.stat()
            visited.add((st.st_dev, st.st_ino))
        except OSError:
            return index
        # stack of (absolute dir, rel dir, ignore rules [(base_rel, spec)])
        stack: list[tuple[str, str, tuple]] = [(str(root), "", ())]
        root_str = str(root)
        count = 0
        while stack:
            abs_dir, rel_dir, rules = stack.pop()
            try:
                entries = list(os.scandir(abs_dir))
            except OSError:
                index._skip("unreadable-dir")
                continue
            names = {e.name for e in entries}
            if rel_dir and ("pyvenv.cfg" in names or "conda-meta" in names):
                index._skip("virtualenv")
                continue
            if ".gitignore" in names:
                spec = _read_gitignore(os.path.join(abs_dir, ".gitignore"), pathspec)
                if spec is not None:
                    rules = rules + ((rel_dir, spec),)
            subdirs = []
            for entry in sorted(entries, key=lambda e: e.name):
                count += 1
                if count > MAX_ENTRIES:
                    index.truncated = True
                    stack.clear()
                    break
                name = entry.name
                rel = f"{rel_dir}/{name}" if rel_dir else name
                try:
                    is_link = entry.is_symlink()
                    st = os.stat(entry.path) if is_link else entry.stat(follow_symlinks=False)
                except OSError:
                    index._skip("broken-link")
                    continue
                if is_link:
                    real = os.path.realpath(entry.path)
                    if real != root_str and not real.startswith(root_str + os.sep):
                        index._skip("link-outside")
                        continue
                is_dir = stat.S_ISDIR(st.st_mode)
                if is_dir:
                    if name in SKIP_DIRS or name.endswith(".egg-info") or (
                            name.startswith(".") and name not in KEEP_DOT_DIRS):
                        index._skip("skipped-dir")
                        continue
                    if _ignored(rules, rel, True):
                        index._skip("gitignored")
                        continue
                    key = (st.st_dev, st.st_ino)
                    if key in visited:
                        index._skip("link-loop")
                        continue
                    visited.add(key)
                    subdirs.append((entry.path, rel, rules))
                elif stat.S_ISREG(st.st_mode):
                    if _ignored(rules, rel, False):
                        index._skip("gitignored")
                        continue
                    index.files.append(RepoFile(rel, st.st_size))
            stack.extend(reversed(subdirs))
        index.files.sort(key=lambda f: (f.depth, f.rel))
        index._by_rel = {f.rel: f for f in index.files}
        return index

    def _skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    # ---- queries --------------------------------------------------------------------------
    def get(self, rel: str) -> RepoFile | None:
        return self._by_rel.get(rel)

    def has(self, rel: str) -> bool:
        return rel in self._by_rel

    def named(self, *names: str) -> list[RepoFile]:
        wanted = {n.lower() for n in names}
        return [f for f in self.files if f.name.lower() in wanted]

    def with_suffix(self, *suffixes: str) -> list[RepoFile]:
        wanted = {s.lower() for s in suffixes}
        return [f for f in self.files if f.suffix in wanted]

    def match(self, pattern: str) -> list[RepoFile]:
        """Files whose relative path matches a glob (``**`` allowed)."""
        return [f for f in self.files if PurePosixPath(f.rel).match(pattern)]

    def abspath(self, f: RepoFile | str) -> Path:
        rel = f.rel if isinstance(f, RepoFile) else f
        return self.root / rel

    def text(self, f: RepoFile | str) -> str | None:
        """The file's text, or ``None`` when binary, too large, unreadable or not UTF-8."""
        rel = f.rel if isinstance(f, RepoFile) else f
        if rel in self._text:
            return self._text[rel]
        entry = self._by_rel.get(rel)
        value = None
        if entry is not None:
            limit = MAX_NOTEBOOK_BYTES if entry.suffix == ".ipynb" else MAX_TEXT_BYTES
            if entry.size > limit:
                self._skip("too-large")
            elif self.read_bytes + entry.size > MAX_READ_BYTES:
                self._skip("read-budget")
            else:
                value = read_text(self.root / rel, limit)
                self.read_bytes += entry.size
        self._text[rel] = value
        return value

    def has_python_work(self) -> bool:
        """Whether the tree holds anything gpu-lol can size: Python code, a notebook, a package
        or environment file, or a Dockerfile."""
        names = {"pyproject.toml", "setup.py", "setup.cfg", "pipfile", "environment.yml", "environment.yaml",
                 "dockerfile", "conda.yaml", "conda.yml"}
        for f in self.files:
            lowered = f.name.lower()
            if f.suffix in (".py", ".ipynb") or lowered in names or (
                    lowered.startswith("requirements") and lowered.endswith((".txt", ".in"))):
                return True
        return False

    def limit_notes(self) -> list[str]:
        """One line per cap the analysis hit (empty for an ordinary repo)."""
        notes = []
        if self.truncated:
            notes.append(f"the repo has more than {MAX_ENTRIES:,} files and directories: only the first "
                         f"{MAX_ENTRIES:,} were looked at (ignore data directories in .gitignore)")
        if self.skipped.get("read-budget"):
            notes.append(f"stopped reading file contents after {MAX_READ_BYTES >> 20} MB: "
                         f"{self.skipped['read-budget']} files were not read")
        return notes

    def lines(self, f: RepoFile | str) -> list[str]:
        text = self.text(f)
        return text.splitlines() if text is not None else []


def read_bytes(path: str | Path, limit: int) -> bytes | None:
    """Up to ``limit + 1`` bytes of a *regular* file, or None.

    Opened with ``O_NONBLOCK`` and checked with ``fstat`` before reading, so a FIFO never blocks
    the analysis (opening one for reading waits for a writer forever) and a device such as
    ``/dev/zero`` behind a name like ``requirements.txt`` is never read; ``O_NOCTTY`` keeps a
    terminal device from becoming ours.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_text(path: Path, limit: int = MAX_TEXT_BYTES) -> str | None:
    data = read_bytes(path, limit)
    if data is None:
        return None
    if len(data) > limit:
        return None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:8192]:
        return None  # UTF-16/32 or binary
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _read_gitignore(path: str, pathspec_mod):
    text = read_text(Path(path), 256 * 1024)
    if not text:
        return None
    try:
        return pathspec_mod.GitIgnoreSpec.from_lines(text.splitlines())
    except Exception:  # noqa: BLE001 - a malformed .gitignore must not stop the analysis
        return None


def _ignored(rules: tuple, rel: str, is_dir: bool) -> bool:
    ignored = False
    for base, spec in rules:
        sub = rel[len(base) + 1:] if base else rel
        if is_dir:
            sub += "/"
        result = spec.check_file(sub)
        if result.include is not None:
            ignored = bool(result.include)
    return ignored
