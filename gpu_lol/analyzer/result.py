"""The analyzer's answer: a spec plus the evidence behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gpu_lol.spec import EnvironmentSpec

SOURCES = ("config", "heuristics", "llm")


@dataclass
class Analysis:
    spec: EnvironmentSpec
    reasoning: list[str] = field(default_factory=list)  # short lines, each citing file:line
    source: str = "heuristics"  # config | heuristics | llm
    warnings: list[str] = field(default_factory=list)
    config_fields: list[str] = field(default_factory=list)  # fields taken from .gpu-lol.yaml
    repo: str = ""

    def to_json(self) -> dict[str, Any]:
        out = self.spec.to_dict()
        out["reasoning"] = list(self.reasoning)
        out["source"] = self.source
        out["warnings"] = list(self.warnings)
        out["config_fields"] = list(self.config_fields)
        out["repo"] = self.repo
        return out
