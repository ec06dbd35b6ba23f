"""``.gpu-lol.yaml``: strict, kind loading and writing.

The JSON Schema in ``gpu_lol/schema/gpu-lol.v1.schema.json`` is the single source of truth for
what the file may hold (editors use it too). Errors name the file, the line and the field, say
what is allowed, and suggest the closest valid key for a typo. A bad file is never modified.
"""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gpu_lol.errors import ConfigError
from gpu_lol.spec import EnvironmentSpec

CONFIG_NAME = ".gpu-lol.yaml"
SCHEMA_NAME = "gpu-lol.v1.schema.json"


@functools.lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    text = resources.files("gpu_lol.schema").joinpath(SCHEMA_NAME).read_text(encoding="utf-8")
    return json.loads(text)


@dataclass
class LoadedConfig:
    path: Path
    data: dict[str, Any]  # only the fields the file sets
    notes: list[str] = field(default_factory=list)  # e.g. a gpu_type name read as a catalog id

    def fields_set(self) -> list[str]:
        return list(self.data)


def find(repo: Path) -> Path | None:
    path = Path(repo) / CONFIG_NAME
    return path if path.is_file() else None


MAX_CONFIG_BYTES = 1 << 20  # a real .gpu-lol.yaml is a few hundred bytes


def load(path: Path) -> LoadedConfig:
    """Read and validate a config file. Raises :class:`ConfigError` (exit 2)."""
    import stat

    from gpu_lol.repo_index import read_bytes

    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError("not a regular file", "replace it with a YAML file", path=str(path))
    raw = read_bytes(path, MAX_CONFIG_BYTES)
    if raw is None:
        raise ConfigError("cannot read it", "check its permissions", path=str(path))
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"larger than {MAX_CONFIG_BYTES >> 20} MB; this is not a gpu-lol config",
                          "a .gpu-lol.yaml is a few lines of YAML (see docs/config.md)", path=str(path))
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in raw:
        raise ConfigError("binary or UTF-16 content, not UTF-8 text", "save the file as UTF-8",
                          path=str(path))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("not UTF-8 text", "save the file as UTF-8", path=str(path), line=line) from None
    return loads(text, str(path))


def loads(text: str, path: str = CONFIG_NAME) -> LoadedConfig:
    from gpu_lol.safe_yaml import YamlLimitError, compose_and_load

    try:
        node, data = compose_and_load(text)
    except YamlLimitError as exc:
        if "alias" in exc.problem:
            hint = "write each value out; YAML anchors and aliases are not supported"
        elif "cannot be read" in exc.problem:
            hint = "quote the value or write a smaller/valid one"
        else:
            hint = "check indentation and quoting on that line"
        where = f"{exc.field}: " if exc.field else ""
        raise ConfigError(f"{where}{exc.problem}", hint, path=path, line=exc.line, field=exc.field) from None
    if data is None:
        data = {}
        node = None
    elif not isinstance(data, dict) and node is not None:
        raise ConfigError(f"the file must be a mapping of field: value, not {_type_name(data)}",
                          "see .gpu-lol.yaml.example", path=path, line=node.start_mark.line + 1)
    if not isinstance(data, dict):
        raise ConfigError("the file must be a mapping of field: value",
                          "see .gpu-lol.yaml.example", path=path, line=1)
    if node is not None:
        _check_duplicate_keys(node, path)
    notes = _normalize_gpu_type(data, path)
    _validate_schema(data, node, path)
    _validate_semantics(data, node, path)
    return LoadedConfig(path=Path(path), data=data, notes=notes)


def _normalize_gpu_type(data: dict[str, Any], path: str) -> list[str]:
    """``gpu_type`` takes the names ``--gpu`` takes (case-insensitive, ``4090``, ``rtx-4090``)."""
    value = data.get("gpu_type")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # gpu_type: 4090
    if not isinstance(value, str):
        return []
    from gpu_lol.sizing import catalog

    if value in catalog.gpu_ids():
        return []
    match = next((i for i in catalog.gpu_ids() if i.lower() == value.strip().lower()), None) \
        or catalog.match_gpu_id(value)
    if match is None:
        return []  # the schema check names the allowed values
    data["gpu_type"] = match
    return [f"{Path(path).name}: gpu_type '{value}' read as {match} (write {match} to silence this)"]


def _check_duplicate_keys(node: Any, path: str) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise ConfigError(f"duplicate key '{key}' (first set on line {seen[key]})",
                                  "keep one of them", path=path, line=key_node.start_mark.line + 1,
                                  field=str(key))
            seen[key] = key_node.start_mark.line + 1
            _check_duplicate_keys(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(item, path)


def _locate(node: Any, keys: list[Any], want_key: bool = False) -> int | None:
    """Line (1-based) of the value (or key) at ``keys`` inside a composed YAML node."""
    import yaml

    line = node.start_mark.line + 1 if node is not None else None
    current = node
    for i, key in enumerate(keys):
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                if key_node.value == key:
                    last = i == len(keys) - 1
                    if last and want_key:
                        return key_node.start_mark.line + 1
                    current = value_node
                    line = value_node.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(current, yaml.SequenceNode) and isinstance(key, int) and key < len(current.value):
            current = current.value[key]
            line = current.start_mark.line + 1
        else:
            return line
    return line


def _field_name(keys: list[Any]) -> str:
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out or "(top level)"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_TYPE_WORDS = {"integer": "an integer", "number": "a number", "string": "a string",
               "boolean": "true or false", "array": "a list", "object": "a mapping", "null": "null"}


def _validate_schema(data: dict[str, Any], node: Any, path: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return
    err = errors[0]
    keys = list(err.absolute_path)
    field = _field_name(keys)
    line = _locate(node, keys)
    value = err.instance
    if err.validator == "additionalProperties":
        allowed = list(err.schema.get("properties", {}))
        unknown = [k for k in value if k not in allowed]
        key = unknown[0]
        line = _locate(node, keys + [key], want_key=True)
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'?" if close else "valid keys: " + ", ".join(allowed)
        where = f" in {field}" if keys else ""
        raise ConfigError(f"unknown key '{key}'{where}", hint, path=path, line=line,
                          field=_field_name(keys + [key]))
    if err.validator == "enum":
        allowed = ", ".join("null" if v is None else str(v) for v in err.validator_value)
        raise ConfigError(f"{field}: {json.dumps(value)} is not allowed", f"allowed: {allowed}",
                          path=path, line=line, field=field)
    if err.validator == "const":
        raise ConfigError(f"{field}: must be {json.dumps(err.validator_value)}, got {json.dumps(value)}",
                          path=path, line=line, field=field)
    if err.validator == "type":
        expected = err.validator_value
        expected = [expected] if isinstance(expected, str) else expected
        want = " or ".join(_TYPE_WORDS.get(t, t) for t in expected)
        raise ConfigError(f"{field}: expected {want}, got {_type_name(value)} ({json.dumps(value, default=str)})",
                          path=path, line=line, field=field)
    if err.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        word = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than",
                "exclusiveMaximum": "less than"}[err.validator]
        raise ConfigError(f"{field}: {value} is out of range; must be {word} {err.validator_value}",
                          path=path, line=line, field=field)
    if err.validator == "pattern":
        description = _description_for(keys)
        raise ConfigError(f"{field}: {json.dumps(value)} is not a valid value", description,
                          path=path, line=line, field=field)
    if err.validator in ("minLength", "minItems"):
        raise ConfigError(f"{field}: must not be empty", path=path, line=line, field=field)
    if err.validator == "uniqueItems":
        raise ConfigError(f"{field}: has a repeated entry", path=path, line=line, field=field)
    if err.validator == "propertyNames":
        raise ConfigError(f"{field}: a key is not a valid environment variable name",
                          "use letters, digits and _ and do not start with a digit",
                          path=path, line=line, field=field)
    raise ConfigError(f"{field}: {err.message}", path=path, line=line, field=field)


def _description_for(keys: list[Any]) -> str | None:
    props = schema().get("properties", {})
    name = next((k for k in keys if isinstance(k, str)), None)
    if name and name in props:
        return props[name].get("description")
    return None


def _non_finite(value: Any, keys: list[Any]) -> list[Any] | None:
    """The key path of the first .inf/.nan in ``value`` (JSON Schema's range checks miss NaN)."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return keys
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite(item, keys + [key])
            if found is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _non_finite(item, keys + [i])
            if found is not None:
                return found
    return None


def _validate_semantics(data: dict[str, Any], node: Any, path: str) -> None:
    from gpu_lol.requirements_text import RequirementError, check_requirement

    bad = _non_finite(data, [])
    if bad is not None:
        field = _field_name(bad)
        raise ConfigError(f"{field}: must be a finite number", "write a number such as 24",
                          path=path, line=_locate(node, bad), field=field)

    for i, req in enumerate(data.get("requirements") or []):
        try:
            check_requirement(req)
        except RequirementError as exc:
            raise ConfigError(f"requirements[{i}]: {exc}", "write a PEP 508 requirement, e.g. 'numpy<2.0'",
                              path=path, line=_locate(node, ["requirements", i]), field=f"requirements[{i}]") from None
    workload = data.get("workload_type")
    gpu_type = data.get("gpu_type")
    gpu_count = data.get("gpu_count")
    if workload == "cpu" and (gpu_type is not None or (gpu_count or 0) > 0):
        key = "gpu_type" if gpu_type is not None else "gpu_count"
        raise ConfigError(f"{key}: a cpu workload takes no GPU",
                          "remove gpu_type/gpu_count or change workload_type",
                          path=path, line=_locate(node, [key]), field=key)
    if workload not in (None, "cpu") and gpu_count == 0:
        raise ConfigError(f"gpu_count: 0 GPUs for a {workload} workload",
                          "set gpu_count to 1 or more, or workload_type: cpu",
                          path=path, line=_locate(node, ["gpu_count"]), field="gpu_count")


# What ``gpu-lol init`` writes as settings: the decisions a user owns. Everything else follows
# the repo (and these fields) at every run, so editing requirements.txt changes the setup and
# editing model.name changes the memory estimate and the GPU; init lists those fields as
# comments, to read or to uncomment when a value must be pinned.
DECIDED_FIELDS = ("workload_type", "model", "envs", "ports", "asset_links", "disk_gb", "providers",
                  "idle_minutes", "spot")


def spec_to_yaml(spec: EnvironmentSpec, header: str | None = None,
                 decided: tuple[str, ...] | None = None) -> str:
    """``spec`` as ``.gpu-lol.yaml`` text. Every field is set, unless ``decided`` names the fields
    to set: the others are then written as comments, marked as derived."""
    from gpu_lol import safe_yaml

    def dump(data: dict[str, Any]) -> str:
        return safe_yaml.dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)

    data = spec.to_dict()
    derived: dict[str, Any] = {}
    if decided is not None:
        keep = {"version", *decided}
        model = data.get("model") or {}
        if "model" in keep and model.get("name"):
            # the size follows the name: a stale params_b would keep the old estimate
            data["model"] = {"name": model["name"], "method": model.get("method")}
            derived["model.params_b"] = model.get("params_b")
        elif "model" in keep:
            keep.discard("model")
        derived.update({k: v for k, v in data.items() if k not in keep})
        data = {k: v for k, v in data.items() if k in keep}
    lines = [f"# {line}" if line else "#" for line in (header or "").splitlines()]
    lines.append("# Fields here win over gpu-lol's analysis; delete a field to let gpu-lol infer it.")
    lines.append("# Reference: docs/config.md (schema: gpu-lol.v1.schema.json)")
    text = "\n".join(lines) + "\n" + dump(data)
    if derived:
        text += ("\n# Derived: gpu-lol works these out again at every run from the repo and the fields\n"
                 "# above (shown as of this writing). Uncomment a field to pin it.\n")
        text += "".join(f"# {line}\n" for line in dump(derived).splitlines())
    return text


def write(path: Path, spec: EnvironmentSpec, *, force: bool = False, header: str | None = None,
          decided: tuple[str, ...] | None = None) -> Path:
    """Write ``spec`` to ``path`` (see :func:`spec_to_yaml` for ``decided``); refuses to overwrite
    an existing file unless ``force``."""
    import os

    from gpu_lol.errors import UsageError
    from gpu_lol.paths import write_private

    path = Path(path)
    if os.path.lexists(path) and not force:
        raise UsageError(f"{path} already exists; not overwriting it", "pass --force to replace it")
    if path.is_symlink():
        # --force replaces the link itself; its target (which may be anywhere) is never written.
        from gpu_lol.console import warn

        warn(f"{path} is a symlink; replacing the link with a file (its target is not touched)")
    text = spec_to_yaml(spec, header, decided)
    loads(text, str(path))  # what we write must load back
    umask = os.umask(0)
    os.umask(umask)
    return write_private(path, text, mode=0o666 & ~umask)
