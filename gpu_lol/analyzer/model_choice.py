"""Which model the repo's main path runs, and how big it is.

Candidates come from launch-command arguments (``--model_name_or_path``, ``vllm serve ID``),
the configs those commands use, model keys in recipes, ``from_pretrained``/``pipeline``/``LLM``
calls, argparse and function defaults, ``MODEL_NAME = …`` constants, and local ``config.json``
files. Each is resolved in the model table (full id, most specific first); only ids the table
knows, ids with a size in the model name, and ``org/name`` Hugging Face ids count. The winner has
the most evidence, weighted by source strength, location and whether it belongs to the chosen
workload's path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gpu_lol.analyzer import locations
from gpu_lol.analyzer.configs import ConfigFacts
from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.analyzer.launch_commands import Command, model_arg
from gpu_lol.analyzer.python_signals import FileSignals, looks_like_model_id

_SIZED_VAR = re.compile(r"(^|[_\-])\d+(\.\d+)?[bB]([_\-]|$)")
# Model kinds that dominate GPU memory when a repo uses several models.
MAIN_KINDS = frozenset({"llm", "multimodal", "diffusion", "seq2seq", "speech"})


@dataclass
class Candidate:
    name: str
    facts: object | None  # gpu_lol.sizing.models.ModelFacts
    score: float = 0.0
    evidence: list[Evidence] = field(default_factory=list)
    roles: set[str] = field(default_factory=set)
    first_seen: int = 0
    command: Command | None = None


@dataclass
class ModelChoice:
    name: str | None
    facts: object | None
    evidence: list[Evidence]
    note: str = ""
    alternatives: list[str] = field(default_factory=list)
    command: Command | None = None  # the launch command that named it, when one did


def _lookup(name: str):
    from gpu_lol.sizing.models import lookup_model

    try:
        return lookup_model(name)
    except Exception:  # noqa: BLE001 - an odd id must not stop the analysis
        return None


def _normal(name: str) -> str:
    name = name.strip().strip("'\"").rstrip("/")
    if name.startswith(("/", "./", "../", "~")) or name.count("/") > 1:
        # a local checkpoint path: its last component may name the model (/path/to/DeepSeek-V3-Demo)
        base = name.rsplit("/", 1)[-1]
        facts = _lookup(base) if base else None
        # (a size in the folder's name sizes it too: ./ckpts/vidgen-1.3b)
        return base if facts is not None and facts.source in ("table", "name-size") else name
    # weights/config files named after the model: yolov5s.pt, yolov5n.yaml, sam_vit_h_4b8939.pth
    for suffix in (".pt", ".pth", ".yaml", ".yml", ".ckpt", ".safetensors"):
        if name.lower().endswith(suffix) and "/" not in name:
            stem = name[: -len(suffix)]
            return stem if _lookup(stem) is not None else name
    return name


def choose(*, workload: str, commands: list[Command], configs: dict[str, ConfigFacts],
           config_refs: dict[str, list[Command]], signals: list[FileSignals],
           local_configs: list[tuple[str, dict]], main_files: list[str] = ()) -> ModelChoice:
    """``main_files``: files the main path is known to run (a notebook repo's linked notebook);
    their models count three times."""
    cands: dict[str, Candidate] = {}
    aliases: dict[str, str] = {}  # lowercased name as written -> candidate key
    order = 0

    def add(raw: str, ev: Evidence, strength: float, role: str | None = None, command: Command | None = None) -> None:
        nonlocal order
        name = _normal(raw)
        if not looks_like_model_id(name):
            return
        facts = _lookup(name)
        if facts is None and "/" not in name:
            return  # a bare word we cannot size is not evidence of a model
        # names of the same table entry pool their evidence (flux-dev, flux-dev-krea, FLUX.1-dev)
        key = facts.name.lower() if facts is not None and facts.source == "table" else name.lower()
        aliases[name.lower()] = key
        cand = cands.get(key)
        if cand is None:
            order += 1
            cand = cands[key] = Candidate(name, facts, first_seen=order)
        cand.score += strength
        cand.evidence.append(ev)
        if role:
            cand.roles.add(role)
        if command is not None and cand.command is None:
            cand.command = command

    first_of_role: dict[str, int] = {}
    for cmd in commands:
        if cmd.readme_rank is not None and cmd.role not in first_of_role:
            first_of_role[cmd.role] = id(cmd)
    for cmd in commands:
        found = model_arg(cmd)
        if not found or "<" in found[1]:
            continue
        value = found[1]
        if "$" in value or "{" in value:
            # an unresolved variable whose name carries the size: `mistral-chat $12B_DIR`
            var = value.strip("${}").split("}")[0].split("/")[0]
            if not _SIZED_VAR.search(var):
                continue
            value = var
        first = first_of_role.get(cmd.role) == id(cmd)
        add(value, cmd.evidence, 3.0 * cmd.weight * (2.0 if first else 1.0), cmd.role, cmd)
    for rel, cmds in config_refs.items():
        facts = configs.get(rel)
        if facts is None:
            continue
        boost = max(c.weight for c in cmds)
        for name, ev, strength in facts.model_ids:
            add(name, ev, 2.5 * strength * boost, cmds[0].role, cmds[0])
    for rel, facts in configs.items():
        if rel in config_refs:
            continue
        w = locations.weight(rel) or 0.1
        for name, ev, strength in facts.model_ids:
            add(name, ev, 0.8 * strength * w, "training" if facts.kind == "recipe" else None)
    for sig in signals:
        if sig.weight == 0:
            continue
        w = sig.weight * (1.3 if sig.is_entry or sig.is_notebook else 0.8)
        role = None
        if sig.training_strength >= 2 and sig.training_strength >= sig.inference_strength:
            role = "training"
        elif sig.inference_strength or sig.serving:
            role = "inference"
        boost = 3.0 if sig.file in main_files else 1.0
        for name, ev, strength in sig.model_ids:
            add(name, ev, 1.2 * strength * w * boost, role)
    for rel, cfg in local_configs:
        from gpu_lol.sizing.models import facts_from_config

        facts = facts_from_config(cfg, name=rel.rsplit("/", 1)[0] or rel)
        if facts is not None:
            key = f"local:{rel}"
            order += 1
            cands[key] = Candidate(rel.rsplit("/", 1)[0] or rel, facts, 0.9 * (locations.weight(rel) or 0.2),
                                   [Evidence(rel, None, "local model config.json")], first_seen=order)

    if not cands:
        return ModelChoice(None, None, [], "no model id found in commands, configs or code")
    want = {"training": "training", "inference": "inference", "interactive": None, "cpu": None}.get(workload)
    for cand in cands.values():
        if want and want in cand.roles:
            cand.score *= 1.5
        kind = getattr(cand.facts, "kind", None)
        if kind in MAIN_KINDS:
            cand.score *= 1.25
        if cand.facts is None:
            cand.score *= 0.5  # an id we cannot size is a weaker answer than one we can
    ranked = sorted(cands.values(), key=lambda c: (-c.score, c.first_seen))
    best = ranked[0]
    # The README's first command of the chosen workload is the documented main path: when it names
    # a model we can size, that is the model, however often others are mentioned.
    main = [c for c in commands if c.readme_rank is not None and c.role == workload]
    if main:
        first = min(main, key=lambda c: c.readme_rank)
        found = model_arg(first)
        if found:
            key = aliases.get(_normal(found[1]).lower(), "")
            if key in cands and cands[key].facts is not None:
                best = cands[key]
                ranked = [best] + [c for c in ranked if c is not best]
    note = getattr(best.facts, "note", "") if best.facts is not None else \
        f"'{best.name}' is not in the model table and its name carries no size"
    return ModelChoice(best.name, best.facts, best.evidence[:3], note, [c.name for c in ranked[1:4]], best.command)
