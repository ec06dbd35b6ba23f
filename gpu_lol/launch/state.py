"""Records of what gpu-lol launched: SkyPilot clusters and the user's own hosts.

One JSON file per target under ``$GPU_LOL_HOME/targets/<name>.json``. A target remembers the
repo it was launched from (so commands run in that repo find it without a name) and the spec it
was launched with (so ``validate`` knows what to check).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gpu_lol import paths
from gpu_lol.errors import OperationError, UsageError

KIND_SKY = "sky"
KIND_HOST = "host"
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$|^[a-z]$")


@dataclass
class Target:
    name: str
    kind: str  # "sky" | "host"
    repo: str  # absolute path of the repo it was launched from
    spec: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    # sky: {"cloud", "region", "price_hr", "workdir"}; host: {"host", "user", "port", "identity",
    # "workdir", "venv"}
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Target":
        return cls(
            name=data["name"],
            kind=data["kind"],
            repo=data.get("repo", ""),
            spec=data.get("spec") or {},
            created_at=float(data.get("created_at") or 0),
            extra=data.get("extra") or {},
        )


def check_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise UsageError(
            f"'{name}' is not a valid name",
            "use lowercase letters, digits and '-', start with a letter, at most 63 characters",
        )
    return name


def default_name(repo: Path) -> str:
    """A cluster name from the repo directory: ``gpu-lol-<dirname>`` made safe."""
    base = re.sub(r"[^a-z0-9-]+", "-", Path(repo).resolve().name.lower()).strip("-") or "repo"
    name = f"gpu-lol-{base}"[:63].rstrip("-")
    return name


def _dir() -> Path:
    return paths.state_dir("targets")


def _file(name: str) -> Path:
    return _dir() / f"{check_name(name)}.json"


def save(target: Target) -> Path:
    return paths.write_private(_file(target.name), json.dumps(target.to_dict(), indent=2, sort_keys=True))


def load(name: str) -> Target | None:
    path = _file(name)
    if not path.exists():
        return None
    try:
        return Target.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError) as exc:
        raise OperationError(f"{path}: damaged record ({exc})", f"delete {path} and launch again") from None


def delete(name: str) -> bool:
    path = _file(name)
    if path.exists():
        path.unlink()
        return True
    return False


def all_targets() -> list[Target]:
    out = []
    for path in sorted(_dir().glob("*.json")):
        try:
            out.append(Target.from_dict(json.loads(path.read_text(encoding="utf-8"))))
        except (ValueError, KeyError):
            continue
    return out


def for_repo(repo: Path) -> Target | None:
    """The most recent target launched from ``repo`` or a parent of it."""
    repo = Path(repo).resolve()
    best: Target | None = None
    for target in all_targets():
        try:
            target_repo = Path(target.repo).resolve()
        except OSError:
            continue
        if repo == target_repo or target_repo in repo.parents:
            if best is None or target.created_at > best.created_at:
                best = target
    return best


def resolve(name: str | None, cwd: Path | None = None) -> Target:
    """The named target, or the one launched from the current repo; a clear error otherwise."""
    if name:
        target = load(name)
        if target is None:
            known = ", ".join(t.name for t in all_targets()) or "none"
            raise OperationError(f"no cluster or host named '{name}'", f"known: {known} (see `gpu-lol ls`)")
        return target
    target = for_repo(cwd or Path.cwd())
    if target is None:
        raise UsageError("no cluster or host was launched from this repo",
                         "name one (see `gpu-lol ls`) or launch with `gpu-lol up`")
    return target
