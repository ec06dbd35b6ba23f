"""The user's own settings file (``$GPU_LOL_HOME/config.yaml``), managed by ``gpu-lol config``.

The file is YAML, nested by the dotted key (``llm.url`` is stored as ``llm: {url: ...}``), and is
always written with mode 0600 (atomically, through a temporary file in the same directory) since
it can hold an API key. Every known key has an environment variable that overrides it; an
environment variable set to the empty string counts as "unset" and hides the file's value (so
``GPU_LOL_LLM_URL= gpu-lol analyze`` runs without the LLM once).

Keys the file holds that this version does not know are kept when the file is rewritten and
otherwise ignored. Secret values (``llm.key``) are masked whenever they are shown.
"""

from __future__ import annotations

import difflib
import math
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpu_lol import paths
from gpu_lol.errors import ConfigError, UsageError


def _parse_url(raw: str) -> str:
    from urllib.parse import urlsplit

    value = raw.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in value):
        raise ValueError("must be an http(s) URL such as https://api.openai.com/v1 or "
                         "http://localhost:11434/v1")
    value = value.rstrip("/")
    # People paste the full endpoint; the SDK wants the base URL it appends /chat/completions to.
    for suffix in ("/chat/completions", "/completions"):
        if value.endswith(suffix):
            value = value[: -len(suffix)]
    return value


def _parse_text(raw: str) -> str:
    value = raw.strip()
    if not value or any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("must be a non-empty value without spaces")
    return value


def _parse_bool(raw: str | bool) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _parse_timeout(raw: str | float | int) -> float:
    if isinstance(raw, bool):
        raise ValueError("must be a number of seconds")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError("must be a number of seconds, e.g. 30") from None
    if not math.isfinite(value) or value <= 0 or value > 600:
        raise ValueError("must be more than 0 and at most 600 seconds")
    return value


def _parse_price(raw: str | float | int) -> float:
    if isinstance(raw, bool):
        raise ValueError("must be a price in dollars per hour, e.g. 3.50")
    try:
        value = float(str(raw).strip().lstrip("$"))
    except (TypeError, ValueError):
        raise ValueError("must be a price in dollars per hour, e.g. 3.50") from None
    if not math.isfinite(value) or value <= 0 or value > 10000:
        raise ValueError("must be more than 0 and at most 10000 dollars per hour")
    return value


@dataclass(frozen=True)
class Key:
    name: str
    env: str
    help: str
    parse: Callable[[Any], Any]
    default: Any = None
    secret: bool = False


KEYS: dict[str, Key] = {k.name: k for k in (
    Key("llm.url", "GPU_LOL_LLM_URL", "Base URL of an OpenAI-compatible API (empty: LLM off)",
        _parse_url),
    Key("llm.key", "GPU_LOL_LLM_KEY", "API key sent to that endpoint", _parse_text, secret=True),
    Key("llm.model", "GPU_LOL_LLM_MODEL", "Model name at that endpoint", _parse_text,
        default="gpt-4o-mini"),
    Key("llm.timeout", "GPU_LOL_LLM_TIMEOUT", "Seconds per LLM request (one retry)",
        _parse_timeout, default=30.0),
    Key("runpod.template_pattern", "GPU_LOL_TEMPLATE_PATTERN",
        "Name pattern (glob or substring) of your preferred RunPod template", _parse_text),
    Key("max_price_per_hour", "GPU_LOL_MAX_PRICE_PER_HOUR",
        "Refuse to launch a plan costing more than this many $/hr (a repo's .gpu-lol.yaml may set its own)",
        _parse_price),
    Key("vast.datacenter_only", "GPU_LOL_VAST_DATACENTER_ONLY",
        "true: launch on Vast datacenter hosts only (community hosts get your secrets)", _parse_bool,
        default=False),
)}


@dataclass(frozen=True)
class Setting:
    key: str
    value: Any  # parsed value in effect, or None
    source: str  # "env GPU_LOL_…" | "file" | "default" | "unset"
    secret: bool

    def shown(self) -> str:
        if self.value is None:
            return ""
        return mask(str(self.value)) if self.secret else _plain(self.value)


def _plain(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def mask(value: str) -> str:
    """``sk-proj-abc…wxyz`` → ``sk-…wxyz``: enough to recognise a key, not to use it."""
    if not value:
        return ""
    if len(value) < 12:
        return "****"
    prefix = value[:3] if value[:3].isascii() else ""
    return f"{prefix}…{value[-4:]}"


def path() -> Path:
    return paths.user_config_file()


def check_key(name: str) -> Key:
    key = KEYS.get(name)
    if key is None:
        close = difflib.get_close_matches(name, list(KEYS), n=1)
        hint = f"did you mean '{close[0]}'?" if close else "known keys: " + ", ".join(KEYS)
        raise UsageError(f"unknown setting '{name}'", hint)
    return key


# ---- the file -----------------------------------------------------------------------------
MAX_FILE_BYTES = 256 << 10


def _lock() -> paths.FileLock:
    """Held while a command reads, changes and rewrites the file (two `config set` at once)."""
    file = path()
    return paths.FileLock(file.with_name(file.name + ".lock"))


def read_file(file: Path | None = None) -> dict[str, Any]:
    """The file as nested plain data ({} when absent). Raises :class:`ConfigError` when broken."""
    from gpu_lol.safe_yaml import YamlLimitError, compose_and_load

    file = file or path()
    try:
        with open(file, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", "fix or delete the file",
                          path=str(file)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"larger than {MAX_FILE_BYTES >> 10} KB; not a gpu-lol settings file",
                          "delete it and use `gpu-lol config set`", path=str(file))
    try:
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in raw:
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "binary")
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", "fix or delete the file", path=str(file)) from None
    try:
        _node, data = compose_and_load(text, max_nodes=10_000, max_depth=16)
    except YamlLimitError as exc:
        where = f"{exc.field}: " if exc.field else ""
        raise ConfigError(f"{where}{exc.problem}", "fix it, or delete it and use `gpu-lol config set`",
                          path=str(file), line=exc.line, field=exc.field) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping such as 'llm: {url: ...}'",
                          "fix it, or delete it and use `gpu-lol config set`", path=str(file))
    return data


def _lookup(data: dict[str, Any], name: str) -> Any:
    node: Any = data
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def file_value(name: str, data: dict[str, Any] | None = None) -> Any:
    """The parsed value the file holds for ``name`` (None when absent)."""
    key = check_key(name)
    data = read_file() if data is None else data
    raw = _lookup(data, name)
    if raw is None:
        return None
    if isinstance(raw, (dict, list)):
        raise ConfigError(f"'{name}' must be a single value", f"run `gpu-lol config set {name} VALUE`",
                          path=str(path()), field=name)
    try:
        return key.parse(raw if key.parse in (_parse_timeout, _parse_price) else str(raw))
    except ValueError as exc:
        raise ConfigError(f"'{name}' {exc}", f"run `gpu-lol config set {name} VALUE`",
                          path=str(path()), field=name) from None


def _write(data: dict[str, Any], file: Path | None = None) -> Path:
    from gpu_lol import safe_yaml

    file = file or path()
    paths.ensure_dir(file.parent)
    text = "# gpu-lol settings (gpu-lol config set/get/show). Mode 0600: it can hold an API key.\n"
    text += safe_yaml.dump(data, sort_keys=True, default_flow_style=False) if data else ""
    return paths.write_private(file, text)


def set_value(name: str, raw: str) -> Any:
    """Validate and store ``name``; returns the parsed value. Raises UsageError on a bad value."""
    key = check_key(name)
    try:
        value = key.parse(raw)
    except ValueError as exc:
        raise UsageError(f"{name} {exc}", f"for example: {_example(name)}") from None
    with _lock():
        data = read_file()
        node = data
        parts = name.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
        _write(data)
    return value


def unset(name: str) -> bool:
    """Remove ``name`` from the file; True when it was there."""
    check_key(name)
    with _lock():
        return _unset_locked(name)


def _unset_locked(name: str) -> bool:
    data = read_file()
    parts = name.split(".")
    node: Any = data
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or parts[-1] not in node:
        return False
    del node[parts[-1]]
    if not node and len(parts) > 1:
        parent = _lookup(data, ".".join(parts[:-2])) if len(parts) > 2 else data
        if isinstance(parent, dict):
            parent.pop(parts[-2], None)
    _write(data)
    return True


def _example(name: str) -> str:
    return {
        "llm.url": "gpu-lol config set llm.url https://api.openai.com/v1",
        "llm.key": "gpu-lol config set llm.key -   (reads the key from stdin)",
        "llm.model": "gpu-lol config set llm.model gpt-4o-mini",
        "llm.timeout": "gpu-lol config set llm.timeout 30",
        "max_price_per_hour": "gpu-lol config set max_price_per_hour 4.00",
    }.get(name, f"gpu-lol config set {name} VALUE")


# ---- effective values (env over file over default) ----------------------------------------
def effective(name: str, data: dict[str, Any] | None = None) -> Setting:
    """The value in effect for ``name`` and where it came from."""
    key = check_key(name)
    env = os.environ.get(key.env)
    if env is not None:
        if not env.strip():
            return Setting(name, None, f"env {key.env} (empty)", key.secret)
        try:
            return Setting(name, key.parse(env), f"env {key.env}", key.secret)
        except ValueError as exc:
            raise ConfigError(f"{key.env} {exc}", f"fix or unset {key.env}", field=name) from None
    value = file_value(name, data)
    if value is not None:
        return Setting(name, value, "file", key.secret)
    if key.default is not None:
        return Setting(name, key.default, "default", key.secret)
    return Setting(name, None, "unset", key.secret)


def all_settings() -> list[Setting]:
    data = read_file()
    return [effective(name, data) for name in KEYS]


def url_warning(url: str | None) -> str | None:
    """A warning when a key would travel unencrypted: plain http to a host that is not local."""
    from urllib.parse import urlsplit

    if not url:
        return None
    parts = urlsplit(url)
    import ipaddress

    host = (parts.hostname or "").lower()
    try:
        ip = ipaddress.ip_address(host)
        local = ip.is_loopback or ip.is_private or ip.is_link_local
    except ValueError:
        local = host == "localhost" or host.endswith((".localhost", ".local", ".internal", ".lan"))
    if parts.scheme == "http" and not local:
        return (f"llm.url uses plain http to {host}: the API key and the repo digest travel "
                "unencrypted; prefer https")
    return None


def permission_warning(file: Path | None = None) -> str | None:
    """A warning when the file is readable or writable by others (it can hold a key)."""
    file = file or path()
    try:
        mode = stat.S_IMODE(file.stat().st_mode)
    except OSError:
        return None
    if mode & 0o077:
        return (f"{file} has mode {mode:04o}: others can read it; run `chmod 600 {file}` "
                "(gpu-lol config set rewrites it as 0600)")
    return None
