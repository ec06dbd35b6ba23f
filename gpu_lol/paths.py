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
    path.mkdir(parents=True, exist_ok=True, mode=mode)
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


def write_private(file: Path, text: str) -> Path:
    """Write ``text`` to ``file`` atomically, readable by the owner only (mode 0600).

    A temporary file in the same directory is renamed over the target, so a reader never sees a
    half-written file and an interrupted write leaves the old one intact.
    """
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=str(file.parent))
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, file)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return file
