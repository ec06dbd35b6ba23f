"""The analyzer's answer: a spec plus the evidence behind it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from gpu_lol.spec import EnvironmentSpec

SOURCES = ("config", "heuristics", "llm")
CONFIDENCES = ("high", "medium", "low")
# The decisions that carry a confidence of their own (the rest follow from them or from files).
CORE_DECISIONS = ("workload", "model", "gpu_count", "vram")
_PREFIXES = (("GPU count", "gpu_count"), ("GPU frameworks", "frameworks"), ("GPU", "gpu"), ("workload", "workload"),
             ("model size", "model"), ("model", "model"), ("other models", "model"), ("method", "method"),
             ("memory", "vram"), ("packages", "packages"), ("setup", "setup"), ("image", "image"),
             ("Python", "python"), ("torch", "frameworks"), ("path", "path"), ("LLM", "llm"))
# file:line: quote  (as Evidence.__str__ writes it), separated by "; " or " — "
_CITE_RE = re.compile(r"(?:(?<=[\s(])|^)((?:[\w.\-]+/)*[\w.\-]+\.[A-Za-z0-9]{1,8}):(\d+)\b(?::\s(.*?)(?=;\s|$))?")


def _worst(levels: Iterable[str | None]) -> str:
    present = [lvl for lvl in levels if lvl in CONFIDENCES]
    return max(present, key=CONFIDENCES.index) if present else "medium"


class Reason(str):
    """One reasoning line that also knows which decision it explains, its evidence and how sure it is.

    It *is* the text (a ``str``), so code that prints or searches reasoning lines keeps working;
    ``to_json`` gives ``{"decision", "text", "evidence": [{"file", "line", "quote"}], "confidence"}``."""

    decision: str
    evidence: list
    confidence: str | None

    def __new__(cls, text: str, decision: str = "", evidence: Iterable = (), confidence: str | None = None):
        obj = super().__new__(cls, text)
        obj.decision = decision or decision_of(text)
        obj.evidence = list(evidence)
        obj.confidence = confidence
        return obj

    def to_json(self) -> dict[str, Any]:
        return reason_json(self)


def decision_of(text: str) -> str:
    for prefix, name in _PREFIXES:
        if text.startswith(prefix):
            return name
    return "note"


def reason_json(line: str) -> dict[str, Any]:
    """A reasoning line as an object; plain strings get their decision from the prefix and their
    evidence from the ``file:line: quote`` citations in the text."""
    from gpu_lol.secrets.redact import redact

    decision = getattr(line, "decision", "") or decision_of(line)
    evidence = []
    for ev in getattr(line, "evidence", None) or []:
        evidence.append({"file": ev.file, "line": ev.line, "quote": redact(" ".join(ev.text.split()))[:200] or None})
    if not evidence:
        for m in _CITE_RE.finditer(line):
            evidence.append({"file": m.group(1), "line": int(m.group(2)),
                             "quote": (m.group(3) or "").strip() or None})
    best: dict[tuple, dict] = {}
    for item in evidence:  # one entry per file:line, the one with a quote
        key = (item["file"], item["line"])
        if key not in best or (item["quote"] and not best[key]["quote"]):
            best[key] = item
    evidence = list(best.values())
    confidence = getattr(line, "confidence", None)
    if confidence is None:
        # lines that restate files (packages, image, setup) are as sure as the files; the rest medium
        confidence = "high" if decision in ("packages", "setup", "image", "python", "frameworks", "path") else "medium"
    return {"decision": decision, "text": str(line), "evidence": evidence, "confidence": confidence}


@dataclass
class Analysis:
    spec: EnvironmentSpec
    reasoning: list[str] = field(default_factory=list)  # short lines (often Reason), each citing file:line
    source: str = "heuristics"  # config | heuristics | llm
    warnings: list[str] = field(default_factory=list)
    config_fields: list[str] = field(default_factory=list)  # fields taken from .gpu-lol.yaml
    repo: str = ""
    confidence: dict[str, str] = field(default_factory=dict)  # workload/model/gpu_count/vram/overall
    paths: list[dict[str, Any]] = field(default_factory=list)  # main path (0) and alternatives, each planned
    price_hr: float | None = None  # the chosen GPUs' price, when the analysis priced them

    def set_confidence(self, **levels: str) -> None:
        self.confidence.update({k: v for k, v in levels.items() if v})
        self.confidence["overall"] = _worst(self.confidence.get(k) for k in CORE_DECISIONS)

    @property
    def overall_confidence(self) -> str:
        return self.confidence.get("overall", "medium")

    def to_json(self) -> dict[str, Any]:
        out = self.spec.to_dict()
        out["reasoning"] = [reason_json(line) for line in self.reasoning]
        out["confidence"] = dict(self.confidence)
        out["paths"] = [dict(p) for p in self.paths]
        out["price_hr"] = self.price_hr
        out["source"] = self.source
        out["warnings"] = list(self.warnings)
        out["config_fields"] = list(self.config_fields)
        out["repo"] = self.repo
        return out
