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
