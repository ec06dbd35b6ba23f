"""Files across: ``pull`` (results back) and ``push`` (data out) over the target's own SSH transport.

Both run ``rsync`` with the ssh argv of :mod:`gpu_lol.machine.remote` (same config file, known_hosts,
identity and shared master connection) as its remote shell:

* paths: a relative remote path is in the target's workdir, ``~/...`` is in the remote home,
  ``/...`` is absolute. Remote paths travel inside rsync's protocol (``--secluded-args``, the
  old ``--protect-args``), never through a remote shell, so spaces, quotes and ``$`` are safe.
  Trailing slashes keep rsync's meaning (``outputs/`` copies what is inside ``outputs``).
* defaults: ``pull outputs`` writes to the same place in the local repo (``<repo>/outputs``)
  and ``push data/x.csv`` to the same place in the workdir; paths outside the repo go to the
  current directory / the workdir.
* resumable: ``--partial-dir=.gpu-lol-partial`` keeps an interrupted file out of the way (a
  half-copied checkpoint never sits under its real name) and the next run resumes it.
* safe: nothing is ever deleted; a file on the receiving side that is newer than the one coming
  in is only overwritten after a confirmation or ``--force``; a pull never writes through a
  symlinked destination (it refuses and names the link); links inside the tree are replaced,
  not followed (rsync's own rule), with a note.
* a remote ``.bashrc`` that prints text would corrupt rsync's protocol ("is your shell
  clean?"): the remote command prints a random marker before it execs rsync and the local ssh
  wrapper (``python -m gpu_lol.machine.rsync_shell --clean-ssh``) drops everything before the marker.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from gpu_lol.errors import OperationError, UsageError
from gpu_lol.machine.rsync_shell import clean_ssh_command, new_marker, rsync_path

PARTIAL_DIR = ".gpu-lol-partial"


# ---------------------------------------------------------------------------------------------
# Paths


def _check_text(path: str, what: str) -> str:
    if not path or any(c in path for c in "\0\r\n"):
        raise UsageError(f"{what} {path!r} is not a usable path", None)
    return path


def remote_rsync_path(workdir: str, path: str) -> str:
    """The remote path as rsync's server sees it: absolute, or relative to the remote home.

    ``path``: relative (in ``workdir``), ``~``/``~/...`` (home) or absolute. A trailing slash
    is kept (rsync's "contents of" meaning).
    """
    _check_text(path, "remote path")
    slash = path.endswith("/") and path not in ("/", "~/")
    if path == "~" or path == "~/":
        return "."
    if path.startswith("~"):
        if not path.startswith("~/"):
            raise UsageError(f"remote path {path}: another user's home (~user) is not supported",
                             "write it as an absolute path, e.g. /home/user/...")
        full = path[2:]
    elif path.startswith("/"):
        full = path
    else:
        base = workdir[2:] if workdir.startswith("~/") else ("" if workdir == "~" else workdir)
        full = posixpath.join(base, path) if base else path
    full = posixpath.normpath(full) if full else "."
    if full.startswith("-"):
        full = "./" + full  # never an option to the remote rsync
    return full + ("/" if slash and not full.endswith("/") else "")


def remote_display(workdir: str, path: str) -> str:
    """The remote path as the user reads it (``~/gpu-lol/box/outputs``)."""
    if path.startswith(("/", "~")):
        return path
    return workdir.rstrip("/") + "/" + path


def _rsync_host(alias: str) -> str:
    return f"[{alias}]" if ":" in alias else alias


def _inside(path: Path, root: Path) -> Path | None:
    """``path`` relative to ``root`` when it lies inside it (no symlinks resolved)."""
    try:
        return path.relative_to(root)
    except ValueError:
        return None


def _absolute(path: Path) -> Path:
    """An absolute, normalized path that does not resolve symlinks (we check them ourselves)."""
    return Path(os.path.normpath(os.path.abspath(path)))


def default_local_for_pull(remote: str, repo: Path | None, cwd: Path) -> Path:
    """Where ``pull REMOTE`` writes without LOCAL: the mirror in the repo for a workdir path."""
    if repo is not None and repo.is_dir() and not remote.startswith(("/", "~")):
        parent = posixpath.dirname(posixpath.normpath(remote))
        if parent in ("", "."):
            return repo
        if not parent.startswith(".."):
            return repo / parent
    return cwd


def default_remote_for_push(local: Path, repo: Path | None) -> str:
    """Where ``push LOCAL`` writes without REMOTE: the same place in the workdir (a directory
    that rsync puts LOCAL's last part into), or the workdir itself."""
    if repo is not None:
        rel = _inside(_absolute(local), _absolute(repo))
        if rel is not None and str(rel) != ".":
            parent = rel.parent.as_posix()
            return "." if parent in ("", ".") else parent + "/"
    return "."


# ---------------------------------------------------------------------------------------------
# The plan (an rsync dry run) and the transfer


@dataclass
class Item:
    flags: str  # rsync's itemize string, e.g. ">f+++++++++"
    size: int
    name: str

    @property
    def is_file(self) -> bool:
        return self.flags[1:2] == "f" and self.flags[:1] in "<>"

    @property
    def is_new(self) -> bool:
        return "+++++++++" in self.flags


@dataclass
class Plan:
    direction: str  # pull | push
    source: str  # as shown to the user
    destination: str
    items: list[Item] = field(default_factory=list)
    newer_on_receiver: list[str] = field(default_factory=list)  # would overwrite newer files
    replaced_links: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[Item]:
        return [i for i in self.items if i.is_file]

    @property
    def total_bytes(self) -> int:
        return sum(i.size for i in self.files)

    def summary(self) -> str:
        from gpu_lol.console import human_bytes

        files = self.files
        new = sum(1 for i in files if i.is_new)
        text = f"{len(files)} file(s), {human_bytes(self.total_bytes)}"
        if files:
            text += f" ({new} new, {len(files) - new} updated)"
        return text


def _parse_itemized(text: str) -> list[Item]:
    items = []
    for line in text.splitlines():
        flags, sep, rest = line.partition("|")
        if not sep:
            continue
        size, sep, name = rest.partition("|")
        if not sep or len(flags) < 2:
            continue
        try:
            n = int(size.replace(",", ""))
        except ValueError:
            n = 0
        items.append(Item(flags=flags.strip(), size=n, name=_unescape(name)))
    return items


def _unescape(name: str) -> str:
    """rsync writes unprintable bytes in names as ``\\#ooo``."""
    import re

    if "\\#" not in name:
        return name
    raw = re.sub(rb"\\#([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), name.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "replace")


class Transfer:
    """One pull or push: the rsync argv pieces shared by its dry runs and the real run."""

    def __init__(self, target, direction: str, local: Path, remote_path: str, *,
                 excludes: tuple[str, ...] = ()):
        from gpu_lol.machine import remote

        self.target = target
        self.direction = direction
        self.ep = remote.endpoint(target)
        self.local = local
        self.remote_path = remote_path  # as typed (relative = in the workdir)
        self.remote_arg = _rsync_host(self.ep.alias) + ":" + remote_rsync_path(self.ep.workdir, remote_path)
        self.marker = new_marker()
        self.excludes = excludes
        self.local_arg = str(local)  # the caller adds rsync's trailing slash where it means "into"

    def argv(self, *extra: str) -> list[str]:
        from gpu_lol.machine import remote

        ssh = clean_ssh_command(remote.ssh_command_for_rsync(self.target), self.marker)
        argv = ["rsync", "-a", "--no-owner", "--no-group", "--secluded-args",
                f"--partial-dir={PARTIAL_DIR}", "-e", " ".join(shlex.quote(p) for p in ssh),
                f"--rsync-path={rsync_path(self.marker)}"]
        for pattern in self.excludes:
            argv.append(f"--exclude={pattern}")
        argv += list(extra)
        if self.direction == "pull":
            argv += ["--", self.remote_arg, self.local_arg]
        else:
            argv += ["--", self.local_arg, self.remote_arg]
        return argv

    def run_capture(self, *extra: str, timeout: float | None = 600) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(self.argv(*extra), stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, errors="replace", timeout=timeout)
        except FileNotFoundError:
            raise OperationError("rsync is not installed here", "install rsync (e.g. apt-get install rsync, "
                                 "brew install rsync)") from None
        except subprocess.TimeoutExpired:
            raise OperationError(f"{self.ep.label} did not answer within {timeout:.0f}s",
                                 "is it up? try `gpu-lol exec -- true`") from None

    def error(self, proc, verb: str) -> OperationError:
        stderr = proc.stderr if isinstance(proc.stderr, str) else ""
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        wd = self.ep.workdir
        shown = remote_display(wd, self.remote_path)
        lower = stderr.lower()
        if "no such file or directory" in lower and ("link_stat" in lower or "change_dir" in lower):
            if self.direction == "pull":
                return OperationError(f"{shown} does not exist on {self.ep.target.name}",
                                      f"relative paths are in the workdir {wd}; list it with "
                                      f"`gpu-lol exec {self.ep.target.name} -- ls -la`")
            return OperationError(f"{self.local} does not exist here", "check the local path")
        if "rsync: command not found" in lower or "rsync: not found" in lower or "exec: rsync" in lower:
            return OperationError(f"{self.ep.label} has no rsync", "install rsync on the machine")
        if proc.returncode == 255 or "connection" in lower and "closed" in lower:
            from gpu_lol.machine import remote

            ssh_lines = [line for line in lines if line.startswith("ssh:") or "denied" in line.lower()
                         or "host key" in line.lower()]
            return remote.connection_error(self.ep, (ssh_lines or lines or [""])[0 if ssh_lines else -1])
        message = lines[-1] if lines else f"rsync exited with {proc.returncode}"
        return OperationError(f"{verb} {'from' if self.direction == 'pull' else 'to'} {self.ep.label} failed: "
                              f"{message}", "run the same command again to resume; partial files are kept in "
                              f"{PARTIAL_DIR}/")


def _local_symlink_problem(transfer: Transfer, remote_path: str) -> str | None:
    """A pull must not write through a symlinked destination: the path itself, or the entry
    rsync creates in it (``LOCAL/<last part of REMOTE>``)."""
    local = transfer.local
    candidates = [local]
    if not remote_path.endswith("/") and local.is_dir() and not local.is_symlink():
        name = posixpath.basename(posixpath.normpath(remote_path.rstrip("/")))
        if name and name not in (".", "..", "~"):
            candidates.append(local / name)
    for path in candidates:
        if path.is_symlink():
            try:
                points = os.readlink(path)
            except OSError:
                points = "?"
            return f"{path} is a symlink (-> {points}); gpu-lol does not write pulled files through a link"
    return None


def plan(transfer: Transfer) -> Plan:
    """What the transfer would do: one dry run, and one with ``--update`` whose difference is
    the files where the receiving side is newer."""
    fmt = "--out-format=%i|%l|%n"
    proc = transfer.run_capture("--dry-run", fmt)
    if proc.returncode != 0:
        raise transfer.error(proc, transfer.direction)
    result = Plan(direction=transfer.direction, source="", destination="", items=_parse_itemized(proc.stdout))
    if any(i.is_file and not i.is_new for i in result.items):
        update = transfer.run_capture("--dry-run", "--update", fmt)
        if update.returncode == 0:
            kept = {i.name for i in _parse_itemized(update.stdout)}
            result.newer_on_receiver = [i.name for i in result.files if not i.is_new and i.name not in kept]
    if transfer.direction == "pull":
        base = transfer.local if transfer.local.is_dir() and not transfer.local.is_symlink() else transfer.local.parent
        for item in result.items:
            candidate = base / item.name.rstrip("/")
            if candidate.is_symlink() and candidate != transfer.local:
                result.replaced_links.append(item.name.rstrip("/"))
    return result


def execute(transfer: Transfer, *, progress: bool) -> int:
    """The real rsync, with its progress line on a terminal; returns rsync's exit code."""
    extra = ["--human-readable"]
    if progress:
        extra += ["--info=progress2", "--no-inc-recursive"]
    argv = transfer.argv(*extra)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                errors="replace")
    except FileNotFoundError:
        raise OperationError("rsync is not installed here", "install rsync") from None
    try:
        _, stderr = proc.communicate()
    except KeyboardInterrupt:
        proc.wait()
        from gpu_lol.console import info

        info(f"\ninterrupted: run the same command again to resume (partial files wait in {PARTIAL_DIR}/)")
        raise
    if proc.returncode != 0:
        raise transfer.error(subprocess.CompletedProcess(argv, proc.returncode, "", stderr or ""),
                             transfer.direction)
    return 0


# ---------------------------------------------------------------------------------------------
# Commands


def _confirm_overwrites(result: Plan, where: str, *, force: bool, dry_run: bool) -> None:
    from gpu_lol.console import confirm, info

    if not result.newer_on_receiver or force:
        return
    shown = result.newer_on_receiver[:10]
    info(f"{len(result.newer_on_receiver)} file(s) {where} are newer than the copies coming in and "
         "would be overwritten:")
    for name in shown:
        info(f"  {name}")
    if len(result.newer_on_receiver) > len(shown):
        info(f"  ... and {len(result.newer_on_receiver) - len(shown)} more")
    if dry_run:
        return
    if not sys.stdin.isatty():
        raise UsageError("not overwriting newer files without confirmation",
                         "pass --force to overwrite them, or --exclude them")
    if not confirm("Overwrite them?", default=False):
        raise OperationError("cancelled: nothing copied", "pass --exclude PATTERN to skip those files")


def _print_items(result: Plan) -> None:
    from gpu_lol.console import info

    for item in result.files[:200]:
        mark = "new    " if item.is_new else "update "
        info(f"  {mark} {item.name}")
    if len(result.files) > 200:
        info(f"  ... and {len(result.files) - 200} more")


def pull(target, remote_path: str, local: str | None, *, dry_run: bool = False, force: bool = False,
         excludes: tuple[str, ...] = (), cwd: Path | None = None, progress: bool | None = None) -> Plan:
    """Copy ``remote_path`` (relative = in the workdir) from the target to ``local``."""
    from gpu_lol.console import info

    _check_text(remote_path, "remote path")
    cwd = cwd or Path.cwd()
    repo = Path(target.repo) if target.repo else None
    if local:
        _check_text(local, "local path")
        dest = _absolute(Path(local).expanduser())
        slash = local.endswith("/")
    else:
        dest = _absolute(default_local_for_pull(remote_path, repo, cwd))
        slash = True
    if not dest.parent.is_dir() and not dest.is_dir():
        raise UsageError(f"{dest.parent} does not exist here", "create it first, or pick another LOCAL")
    transfer = Transfer(target, "pull", dest, remote_path, excludes=excludes)
    if slash and not dest.is_symlink() and str(dest) != "/":
        transfer.local_arg = str(dest) + "/"
    problem = _local_symlink_problem(transfer, remote_path)
    if problem:
        raise UsageError(problem, "pull into the real directory (pass it as LOCAL), or remove the link first")
    source = f"{target.name}:{remote_display(transfer.ep.workdir, remote_path)}"
    result = plan(transfer)
    result.source, result.destination = source, str(dest)
    if dry_run:
        info(f"would pull {result.summary()} from {source} to {dest} (dry run: nothing copied)")
        _print_items(result)
    for name in result.replaced_links:
        info(f"note: {name} is a symlink here; the pulled copy replaces the link (its target is untouched)")
    _confirm_overwrites(result, "here", force=force, dry_run=dry_run)
    if dry_run:
        return result
    if not result.files and not result.items:
        info(f"{dest} already matches {source}: nothing to copy")
        return result
    info(f"pulling {result.summary()} from {source} to {dest}")
    started = time.monotonic()
    execute(transfer, progress=sys.stdout.isatty() if progress is None else progress)
    info(f"pulled {result.summary()} in {time.monotonic() - started:.1f}s")
    return result


def push(target, local: str, remote_path: str | None, *, dry_run: bool = False, force: bool = False,
         excludes: tuple[str, ...] = (), progress: bool | None = None) -> Plan:
    """Copy ``local`` to ``remote_path`` on the target (default: its place in the workdir)."""
    from gpu_lol.console import info, warn
    from gpu_lol.machine import remote
    from gpu_lol.secrets.sensitive import is_secret_file

    _check_text(local, "local path")
    source = _absolute(Path(local).expanduser())
    if not source.exists() and not source.is_symlink():
        raise UsageError(f"{local} does not exist here", "pass a file or directory to push")
    repo = Path(target.repo) if target.repo else None
    if remote_path is None:
        remote_path = default_remote_for_push(source, repo)
    else:
        _check_text(remote_path, "remote path")
    transfer = Transfer(target, "push", source, remote_path, excludes=excludes)
    transfer.local_arg = str(source) + ("/" if local.endswith("/") and source.is_dir() else "")
    ep = transfer.ep
    # rsync creates the last directory only: make the parents of a directory destination.
    parent = remote_rsync_path(ep.workdir, remote_path)
    if not remote_path.endswith("/") and remote_path != ".":
        parent = posixpath.dirname(parent.rstrip("/")) or "."
    destination = f"{target.name}:{remote_display(ep.workdir, remote_path)}"
    secrets = []
    if source.is_dir():
        for root, _dirs, names in os.walk(source):
            secrets += [os.path.relpath(os.path.join(root, n), source) for n in names if is_secret_file(n)]
    elif is_secret_file(source.name):
        secrets.append(source.name)
    if secrets:
        warn("secret-looking files will be copied: " + ", ".join(secrets[:5])
             + (" ..." if len(secrets) > 5 else "") + " (--exclude them to keep them here)")
    if not dry_run and parent not in (".", "/"):
        mk = remote.capture(target, "mkdir -p -- " + shlex.quote(parent), cd="skip", login=False)
        if mk.returncode != 0:
            raise OperationError(f"cannot create {parent} on {ep.label}: "
                                 f"{(mk.stderr.strip().splitlines() or ['?'])[-1]}", "pick another REMOTE path")
    result = plan(transfer) if not dry_run or parent in (".", "/") or _remote_exists(target, parent) \
        else _plan_new_tree(source, transfer)
    result.source, result.destination = str(source), destination
    if dry_run:
        info(f"would push {result.summary()} from {source} to {destination} (dry run: nothing copied)")
        _print_items(result)
    _confirm_overwrites(result, f"on {target.name}", force=force, dry_run=dry_run)
    if dry_run:
        return result
    if not result.items:
        info(f"{destination} already matches {source}: nothing to copy")
        return result
    info(f"pushing {result.summary()} from {source} to {destination}")
    started = time.monotonic()
    execute(transfer, progress=sys.stdout.isatty() if progress is None else progress)
    info(f"pushed {result.summary()} in {time.monotonic() - started:.1f}s")
    return result


def _remote_exists(target, path: str) -> bool:
    from gpu_lol.machine import remote

    result = remote.capture(target, "test -d " + shlex.quote(path), cd="skip", login=False)
    return result.returncode == 0


def _plan_new_tree(source: Path, transfer: Transfer) -> Plan:
    """A dry run into a directory that does not exist yet: every file is new."""
    items = []
    base = source.parent if not transfer.local_arg.endswith("/") else source
    if source.is_dir():
        for root, _dirs, names in os.walk(source):
            for n in names:
                p = Path(root) / n
                items.append(Item(">f+++++++++", p.lstat().st_size, str(p.relative_to(base))))
    else:
        items.append(Item(">f+++++++++", source.lstat().st_size, source.name))
    return Plan(direction="push", source="", destination="", items=items)


# ---------------------------------------------------------------------------------------------
# Files a teardown would delete


@dataclass
class NewFiles:
    name: str
    files: list[tuple[str, int]] = field(default_factory=list)  # (path in the workdir, bytes)
    truncated: bool = False
    error: str | None = None

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)


NEW_FILES_LIMIT = 2000


def new_files_since_launch(target, *, timeout: float = 30) -> NewFiles:
    """Files in the target's workdir written after it was launched (results, checkpoints).

    Files synced from the repo keep their local modification times (rsync ``-a``), so only what
    was written on the machine (or changed here and synced later) shows. ``.git``, gpu-lol's own
    ``.gpu-lol`` folder, ``__pycache__`` and rsync's partial folder are left out.
    """
    from gpu_lol.machine import remote

    out = NewFiles(name=target.name)
    try:
        ep = remote.endpoint(target)
    except OperationError as exc:
        out.error = exc.message
        return out
    since = int(target.created_at or 0)
    wd = remote.shell_path(ep.workdir)
    prune = " -o ".join(f"-name {shlex.quote(n)}" for n in (".git", remote.HOST_META_DIR, "__pycache__", PARTIAL_DIR))
    script = (f"cd {wd} 2>/dev/null || exit 3\n"
              'ref=$(mktemp 2>/dev/null) || exit 4\n'
              f'touch -d @{since} "$ref" 2>/dev/null || {{ rm -f "$ref"; exit 4; }}\n'
              f'find . \\( {prune} \\) -prune -o -type f -newer "$ref" -print0 2>/dev/null'
              f" | head -z -n {NEW_FILES_LIMIT + 1} | xargs -0 -r stat -c '%s %n' 2>/dev/null\n"
              'rm -f "$ref"\n')
    try:
        result = remote.capture(target, script, cd="skip", login=False, timeout=timeout, connect_timeout=5)
    except OperationError as exc:
        out.error = exc.message
        return out
    if result.returncode == 3:
        return out  # no workdir: nothing to lose
    if result.returncode not in (0, 123):
        out.error = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        return out
    for line in result.stdout.splitlines():
        size, _, name = line.partition(" ")
        if not name:
            continue
        name = name[2:] if name.startswith("./") else name
        try:
            out.files.append((name, int(size)))
        except ValueError:
            continue
    if len(out.files) > NEW_FILES_LIMIT:
        out.files = out.files[:NEW_FILES_LIMIT]
        out.truncated = True
    out.files.sort()
    return out


def _teardown_check(plan_item, purge: bool) -> str | None:
    """"check" when the teardown deletes a workdir we can look into, "stopped" when it deletes
    one we cannot reach (a stopped cluster), None when nothing on the machine is deleted."""
    target = plan_item.target
    if target is None:
        return None
    if target.kind == "host":
        return "check" if purge else None
    cluster = plan_item.cluster
    if cluster is None:
        return None
    status = str(getattr(cluster, "status", "")).upper()
    return "stopped" if "STOP" in status else "check"


def check_before_down(plans: list, *, purge: bool) -> list[NewFiles]:
    """For each target whose teardown deletes its workdir: list the files written since launch
    (on stderr). Returns those that have some; the caller asks (or refuses without a terminal)."""
    from gpu_lol.console import info
    from gpu_lol.console import human_bytes

    found = []
    for item in plans:
        what = _teardown_check(item, purge)
        if what is None:
            continue
        if what == "stopped":
            info(f"  note: {item.name} is stopped, so its files cannot be listed; its disk is deleted "
                 f"with it (`gpu-lol start {item.name}` and `gpu-lol pull` first to keep results)")
            continue
        new = new_files_since_launch(item.target)
        if new.error:
            info(f"  note: could not list new files on {new.name} ({new.error}); its workdir is deleted with it")
            continue
        if not new.files:
            continue
        found.append(new)
        more = "+" if new.truncated else ""
        info(f"  {new.name}: {len(new.files)}{more} file(s), {human_bytes(new.total_bytes)}{more}, "
             "written since launch would be deleted:")
        for name, size in new.files[:10]:
            info(f"      {name} ({human_bytes(size)})")
        if len(new.files) > 10:
            info(f"      ... and {len(new.files) - 10}{more} more")
        top = sorted({n.split("/", 1)[0] for n, _ in new.files})[:3]
        info("    keep them first: " + "; ".join(f"gpu-lol pull {new.name} {shlex.quote(t)}" for t in top))
    return found
