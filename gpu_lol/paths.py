"""Where gpu-lol keeps local state.

Everything lives under ``GPU_LOL_HOME`` (default ``~/.gpu-lol``) so that tests and users can
isolate it: cluster and host records, SSH control sockets, host SSH configs, the user config
file and caches.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The gpu-lol state directory (not created)."""
    value = os.environ.get("GPU_LOL_HOME")
    if value:
        return Path(value).expanduser()
    return Path.home() / ".gpu-lol"


def ensure_dir(path: Path, mode: int = 0o700) -> Path:
    """Create ``path`` and any missing parents with ``mode`` (0700: owner only).

    ``Path.mkdir(parents=True)`` gives the parents the umask's mode (often 0755); here every
    directory this call creates gets ``mode``, so nothing under ``GPU_LOL_HOME`` is readable by
    others. Directories that already exist are left as they are.
    """
    path = Path(path)
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=mode)
        except FileExistsError:
            continue
        os.chmod(directory, mode)  # mkdir's mode is masked by the umask
    if not path.is_dir():
        raise NotADirectoryError(str(path))
    return path


def state_dir(*parts: str) -> Path:
    """A subdirectory of the state directory, created with owner-only permissions."""
    return ensure_dir(home().joinpath(*parts))


def user_config_file() -> Path:
    return home() / "config.yaml"


def cache_dir(*parts: str) -> Path:
    return state_dir("cache", *parts)


def sky_home() -> Path:
    """SkyPilot's own directory (``~/.sky``)."""
    return Path.home() / ".sky"


def write_private(file: Path, text: str | bytes, mode: int = 0o600) -> Path:
    """Write ``text`` to ``file`` atomically, readable by the owner only (mode 0600).

    A temporary file in the same directory (created with O_EXCL, so a planted symlink is never
    written through) is flushed to disk and renamed over the target, so a reader never sees a
    half-written file and an interrupted write (Ctrl-C included) leaves the old one intact. When
    ``file`` is a symlink the link itself is replaced; its target is never touched.
    """
    import tempfile

    file = Path(file)
    fd, tmp = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=str(file.parent))
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8") if isinstance(text, str) else text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, file)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return file


class FileLock:
    """An exclusive ``flock`` on ``path`` (created 0600) for read-modify-write of shared state.

    Two gpu-lol commands that update the same file (``config set`` twice at once, two launches
    recording targets) take it in turn; the lock goes when the process does, so a killed command
    never leaves a stale lock behind.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def __enter__(self) -> "FileLock":
        import fcntl

        ensure_dir(self.path.parent)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
