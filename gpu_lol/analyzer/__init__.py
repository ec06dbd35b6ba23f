"""The analyzer: read a repo, say what it needs on a GPU machine, and why.

``analyze(path)`` is the one entry point: ``.gpu-lol.yaml`` fields win, heuristics fill the rest
(see :mod:`gpu_lol.analyzer.combine`), and the optional LLM layer may refine what the file does
not set. Every decision leaves a reasoning line citing ``file:line``.
"""

from __future__ import annotations

from pathlib import Path

from gpu_lol.analyzer.result import Analysis
from gpu_lol.errors import UsageError

__all__ = ["Analysis", "analyze"]


# The first words identify it: `up` refuses to launch a plan made from nothing.
NO_PYTHON_WARNING = ("no Python code, notebook or package file in {root}: nothing to size, so the plan "
                     "is only a default CPU machine")


def analyze(path: str | Path = ".", *, use_llm: bool | None = None, main_path: int = 0,
            fields: dict | None = None) -> Analysis:
    """Analyze the repo at ``path``.

    ``use_llm``: ``None`` uses the LLM layer when one is configured, ``False`` never does.
    ``main_path``: 0 plans the README's main path; N plans alternative N of ``Analysis.paths``.
    ``fields``: spec fields given on the command line (``up --gpu/--gpus``: ``gpu_type``,
    ``gpu_count``); they win over the file and are sized like its fields, so the memory per GPU
    and the warnings are those of the card and count that will launch.
    Raises ``ConfigError`` (exit 2) for an invalid ``.gpu-lol.yaml`` and ``UsageError`` for a path
    that is not a directory.
    """
    from gpu_lol.analyzer import combine
    from gpu_lol.config import config_file
    from gpu_lol.repo_index import FileIndex
    from gpu_lol.sizing import guardrails
    from gpu_lol.spec import EnvironmentSpec

    root = Path(path).expanduser()
    if not root.exists():
        raise UsageError(f"{root}: no such directory", "pass the path of a repo, or cd into one")
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory", "pass the path of a repo, or cd into one")
    root = root.resolve()
    cfg_path = config_file.find(root)
    loaded = config_file.load(cfg_path) if cfg_path else None
    overrides = dict(loaded.data) if loaded else {}
    overrides.pop("version", None)
    file_fields = list(overrides)
    pinned = {f: "file" for f in overrides}
    for key, value in (fields or {}).items():
        if value is not None:
            overrides[key], pinned[key] = value, "flag"
    from gpu_lol.spec import POLICY_FIELDS

    # lock and the policy fields (max_price_per_hour) are optional: a file without them is complete
    every = [f for f in EnvironmentSpec.field_names() if f not in ("version", "lock") and f not in POLICY_FIELDS]
    if loaded and not fields and all(f in overrides for f in every):
        spec = EnvironmentSpec.from_dict(overrides)
        from gpu_lol.analyzer import packages

        index = FileIndex.build(root)
        drifted = _drift(cfg_path, loaded, spec, packages.collect(index), index)
        return Analysis(spec=spec, reasoning=[f"every field comes from {cfg_path.name}"], source="config",
                        config_fields=list(overrides), repo=str(root), warnings=drifted)
    index = FileIndex.build(root)
    analysis, found = combine.heuristics(index, overrides, path=main_path)
    if use_llm is not False:
        from gpu_lol import llm

        if llm.enabled(no_llm=False):
            analysis.config_fields = list(overrides)
            analysis = llm.refine(index, analysis)
    spec, notes = guardrails.finalize(analysis.spec, shardable=True, fixed=frozenset(overrides))
    spec.lock = bool(overrides.get("lock", spec.lock))  # setup_commands install a committed lock
    analysis.spec = spec
    analysis.warnings.extend(n for n in notes if n not in analysis.warnings)
    analysis.warnings.extend(index.limit_notes())  # caps hit on a huge or hostile tree
    if not loaded and not index.has_python_work():
        analysis.warnings.insert(0, NO_PYTHON_WARNING.format(root=root))
    if loaded:
        analysis.warnings.extend(n for n in loaded.notes if n not in analysis.warnings)
        analysis.warnings.extend(_drift(cfg_path, loaded, spec, found.packages, index))
    if loaded:
        if analysis.source != "llm":  # an LLM that filled fields the file leaves open stays visible
            analysis.source = "config"
        analysis.config_fields = file_fields
        analysis.reasoning.insert(0, f"{cfg_path.name} sets: {', '.join(file_fields) or 'nothing'} (taken as given)")
    from gpu_lol.sizing import gpu_fix

    fix = None
    if gpu_fix.pinned_card_verdict(analysis.warnings, spec) and ({"gpu_type", "gpu_count"} & set(pinned)):
        fix = _checked_fix(index, overrides, main_path)
    analysis.warnings = gpu_fix.merge(analysis.warnings, spec, pinned=pinned, fix=fix,
                                      cfg_name=cfg_path.name if cfg_path else config_file.CONFIG_NAME)
    return analysis


def _checked_fix(index, overrides: dict, main_path: int):
    """The plan the fix proposes for a pinned card that cannot hold the work: the repo sized again
    with the card and count left open, kept only when every check accepts it (its own warnings
    and the guardrails have no verdict about it). ``None``: no such plan."""
    from gpu_lol.analyzer import combine
    from gpu_lol.errors import GpuLolError
    from gpu_lol.sizing import guardrails, gpu_fix

    free = {k: v for k, v in overrides.items() if k not in ("gpu_type", "gpu_count", "vram_required_gb")}
    try:
        alt, _ = combine.heuristics(index, free, path=main_path)
        spec, notes = guardrails.finalize(alt.spec, shardable=True, fixed=frozenset(free))
    except GpuLolError:
        return None
    if not _accepted(spec, alt.warnings + notes):
        return None
    fix = gpu_fix.Fix(spec.gpu_type, spec.gpu_count, spec.vram_required_gb, alt.price_hr,
                      must_shard=any(gpu_fix.SHARD.match(w) for w in alt.warnings)
                      or any("the code must shard" in line for line in alt.reasoning))
    # the same plan pinned (what "set gpu_type and gpu_count" does): its count is sized as given
    pin = {**free, "gpu_type": spec.gpu_type, "gpu_count": spec.gpu_count}
    try:
        pinned, _ = combine.heuristics(index, pin, path=main_path)
        checked, notes = guardrails.finalize(pinned.spec, shardable=True, fixed=frozenset(pin))
        fix.pin_ok = _accepted(checked, pinned.warnings + notes)
    except GpuLolError:
        fix.pin_ok = False
    return fix


def _accepted(spec, warnings: list[str]) -> bool:
    from gpu_lol.sizing import gpu_fix

    return bool(spec.gpu_type) and not gpu_fix.pinned_card_verdict(warnings, spec) and not any(
        "nothing fits" in w for w in warnings)


def _drift(cfg_path: Path, loaded, spec, report, index) -> list[str]:
    """Where .gpu-lol.yaml and the repo disagree (see gpu_lol.config.drift)."""
    from gpu_lol.config import drift
    from gpu_lol.repo_index import read_text

    declared = None if report.from_imports else [(r.text, r.evidence.cite()) for r in report.requirements
                                                 if r.source != "imports"]
    return drift.check(cfg_path.name, loaded.data, read_text(cfg_path), spec, declared=declared, index=index)
