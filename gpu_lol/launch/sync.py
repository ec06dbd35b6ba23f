"""What gets copied to a machine: the repo's workdir, with SkyPilot's own ignore rules.

SkyPilot syncs the workdir with rsync: when the repo root has a ``.skyignore`` it uses the
``.skyignore`` files (in any directory) and nothing else; otherwise it uses the ``.gitignore``
files plus ``.git/info/exclude``. We compute the same file list in Python so the plan can show
its size before anything moves, and our own rsync (``exec --sync``, ``up --host``) sends exactly
that list.

On top of those rules gpu-lol never uploads credentials by accident: files that look like secrets
(``.env``, ``*.pem``, ``id_*``, ``credentials*``, … see :mod:`gpu_lol.secrets.sensitive`) and the
``.git`` directory are left out and listed in :attr:`SyncPlan.excluded`. ``.git`` is kept when
the spec needs it: a setup command that runs ``git``, or a build that takes its version from git
(setuptools-scm, hatch-vcs, versioneer). A SkyPilot launch with anything left out syncs a staged
copy of the list (hard links, see :func:`stage`) instead of the repo itself.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from gpu_lol.console import human_bytes
from gpu_lol.secrets.sensitive import is_secret_file

LARGE_WORKDIR_BYTES = 100 * 1024 * 1024
MAX_RULES_BYTES = 1 << 20  # an ignore file larger than this is read up to here


@dataclass
class SyncPlan:
    root: Path
    files: list[tuple[str, int]] = field(default_factory=list)  # (relative path, bytes)
    ignore_source: str = "none"  # ".skyignore" | ".gitignore" | "none"
    warnings: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # secret-looking files that *are* sent
    excluded: list[str] = field(default_factory=list)  # left out by gpu-lol (secrets, .git)

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)

    def largest(self, n: int = 5) -> list[tuple[str, int]]:
        return sorted(self.files, key=lambda item: -item[1])[:n]

    def summary(self) -> str:
        left_out = ""
        if self.excluded:
            shown = ", ".join(self.excluded[:4]) + (" ..." if len(self.excluded) > 4 else "")
            left_out = f"; left out: {shown}"
        return (f"{len(self.files)} files, {human_bytes(self.total_bytes)} "
                f"(ignore rules: {self.ignore_source}{left_out})")




def _load_rules(path: Path):
    import pathspec

    from gpu_lol.repo_index import read_bytes

    data = read_bytes(path, MAX_RULES_BYTES)  # never blocks on a FIFO, never reads a device
    if data is None:
        return None
    try:
        lines = data[:MAX_RULES_BYTES].decode("utf-8", errors="replace").splitlines()
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except Exception:  # noqa: BLE001 - a malformed ignore file must not stop the plan
        return None


_SCM_MARKERS = ("setuptools_scm", "setuptools-scm", "hatch-vcs", "hatch_vcs", "versioneer",
                "use_scm_version", "dunamai", "poetry-dynamic-versioning")


def needs_git(root: Path, spec=None) -> bool:
    """Whether the work needs ``.git`` on the machine (setup runs git, or the version comes from it)."""
    from gpu_lol.repo_index import read_text

    commands = list(getattr(spec, "setup_commands", None) or [])
    if any(re.search(r"(^|[\s;&|(])git\s", c) for c in commands):
        return True
    for name in ("pyproject.toml", "setup.py", "setup.cfg"):
        text = read_text(root / name, 256 * 1024) or ""
        if any(marker in text for marker in _SCM_MARKERS):
            return True
    return False


def plan(repo: str | Path, spec=None) -> SyncPlan:
    """The files SkyPilot (and our rsync) would copy from ``repo``, with warnings."""
    root = Path(repo).resolve()
    result = SyncPlan(root=root)
    keep_git = needs_git(root, spec)
    use_sky = (root / ".skyignore").is_file()
    ignore_name = ".skyignore" if use_sky else ".gitignore"
    result.ignore_source = ignore_name if use_sky or (root / ".gitignore").is_file() else "none"
    base_rules: tuple = ()
    if not use_sky:
        exclude = root / ".git" / "info" / "exclude"
        if exclude.is_file():
            spec = _load_rules(exclude)
            if spec is not None:
                base_rules = (("", spec),)
    stack: list[tuple[Path, str, tuple]] = [(root, "", base_rules)]
    visited: set[tuple[int, int]] = set()
    while stack:
        directory, rel_dir, rules = stack.pop()
        try:
            st = directory.stat()
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in visited:
            continue
        visited.add((st.st_dev, st.st_ino))
        rules_file = directory / ignore_name
        if rules_file.is_file():
            spec = _load_rules(rules_file)
            if spec is not None:
                rules = rules + ((rel_dir, spec),)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_link = entry.is_symlink()
            except OSError:
                continue
            if _ignored(rules, rel, is_dir):
                continue
            if is_dir and entry.name == ".git" and not keep_git:
                result.excluded.append(rel + "/")
                continue
            if not is_dir and is_secret_file(rel):
                result.excluded.append(rel)
                continue
            if is_dir:
                stack.append((Path(entry.path), rel, rules))
            elif is_link:
                result.files.append((rel, 0))  # rsync -a copies the link itself
            else:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    result.files.append((rel, st.st_size))
    result.files.sort()
    result.excluded.sort()
    if result.total_bytes > LARGE_WORKDIR_BYTES:
        top = ", ".join(f"{rel} ({human_bytes(size)})" for rel, size in result.largest(3))
        result.warnings.append(
            f"the workdir is {human_bytes(result.total_bytes)} to upload (largest: {top}); "
            f"add large data or checkpoints to {ignore_name} or use --assets")
    if result.secrets:
        shown = ", ".join(result.secrets[:5]) + (" ..." if len(result.secrets) > 5 else "")
        result.warnings.append(
            f"secret-looking files would be uploaded: {shown}; add them to {ignore_name} "
            "(pass secrets as environment variables instead)")
    return result


def _ignored(rules: tuple, rel: str, is_dir: bool) -> bool:
    ignored = False
    for base, spec in rules:
        if base and not rel.startswith(base + "/"):
            continue
        sub = rel[len(base) + 1:] if base else rel
        result = spec.check_file(sub + "/" if is_dir else sub)
        if result.include is not None:
            ignored = bool(result.include)
    return ignored



def stage(sync_plan: SyncPlan, dest: Path) -> Path:
    """A directory holding exactly ``sync_plan.files`` (hard links; copies across filesystems),
    for SkyPilot to sync instead of the repo when gpu-lol left files out. Rebuilt each time."""
    import shutil

    from gpu_lol import paths

    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    paths.ensure_dir(dest)
    root = sync_plan.root
    for rel, _size in sync_plan.files:
        src = root / rel
        out = dest / rel
        paths.ensure_dir(out.parent)
        if src.is_symlink():
            os.symlink(os.readlink(src), out)
            continue
        try:
            os.link(src, out, follow_symlinks=False)
        except OSError:
            shutil.copy2(src, out, follow_symlinks=False)
    return dest
