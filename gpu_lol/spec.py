"""EnvironmentSpec: the one artifact every stage uses.

``.gpu-lol.yaml`` is its committed form (see :mod:`gpu_lol.config.config_file`); the analyzer produces
one, the launcher renders one into a SkyPilot task, ``snapshot`` reverse-engineers one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

SPEC_VERSION = 1
WORKLOADS = ("training", "inference", "interactive", "cpu")
METHODS = ("full", "lora", "qlora", "inference", "inference-int8", "inference-int4")
PROVIDERS = ("runpod", "vast", "lambda")
# Fields that are launch policy, not a description of the environment: a .gpu-lol.yaml that sets
# every other field is complete without them.
POLICY_FIELDS = ("max_price_per_hour",)
DEFAULT_IDLE_MINUTES = 60
DEFAULT_DISK_GB = 100


@dataclass
class ModelInfo:
    name: str | None = None
    params_b: float | None = None
    method: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params_b": self.params_b, "method": self.method}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "ModelInfo":
        data = data or {}
        return cls(name=data.get("name"), params_b=data.get("params_b"), method=data.get("method"))


@dataclass
class EnvironmentSpec:
    workload_type: str = "interactive"
    gpu_type: str | None = None
    gpu_count: int = 1
    vram_required_gb: float = 0.0
    base_image: str = ""
    python_version: str | None = None
    requirements: list[str] = field(default_factory=list)
    setup_commands: list[str] = field(default_factory=list)
    system_packages: list[str] = field(default_factory=list)
    asset_links: list[str] = field(default_factory=list)
    envs: dict[str, str] = field(default_factory=dict)
    ports: list[int] = field(default_factory=list)
    disk_gb: int = DEFAULT_DISK_GB
    model: ModelInfo = field(default_factory=ModelInfo)
    providers: list[str] = field(default_factory=lambda: list(PROVIDERS))
    idle_minutes: int = DEFAULT_IDLE_MINUTES
    spot: bool = False
    lock: bool = False  # setup_commands install a resolved lock (gpu-lol init --lock); not re-resolved
    max_price_per_hour: float | None = None  # refuse plans above this $/hr (None: no limit)
    version: int = SPEC_VERSION

    @property
    def is_cpu(self) -> bool:
        return self.workload_type == "cpu" or not self.gpu_type or self.gpu_count == 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the field order of ``.gpu-lol.yaml`` (version first)."""
        out: dict[str, Any] = {"version": self.version}
        for f in fields(self):
            if f.name == "version" or (f.name == "lock" and not self.lock):
                continue  # `lock` is written only when set
            value = getattr(self, f.name)
            if value is None and f.name in POLICY_FIELDS:
                continue  # an unset limit is not written (files and records stay as they were)
            if isinstance(value, ModelInfo):
                value = value.to_dict()
            elif isinstance(value, (list, dict)):
                value = type(value)(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EnvironmentSpec":
        """Build from already-validated plain data; missing keys take defaults."""
        kwargs: dict[str, Any] = {}
        names = {f.name for f in fields(cls)}
        for key, value in data.items():
            if key not in names:
                continue
            if key == "model":
                value = ModelInfo.from_dict(value)
            kwargs[key] = value
        return cls(**kwargs)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
