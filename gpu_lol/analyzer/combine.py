"""The combiner: every detector's findings → one EnvironmentSpec with its evidence.

Precedence (documented in docs/analyzer.md):
1. Fields set in ``.gpu-lol.yaml`` are taken as given; they also feed the later decisions
   (a user's ``model`` drives the VRAM estimate, a user's ``gpu_type`` is kept).
2. Workload → model → method → parallelism → per-GPU memory → GPU choice, each from the
   detectors in this package, each leaving a reasoning line that cites ``file:line``.
3. Packages → image → Python version → setup commands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from gpu_lol.analyzer import configs as configs_mod
from gpu_lol.analyzer import frameworks as frameworks_mod
from gpu_lol.analyzer import gpu_count as gpu_count_mod
from gpu_lol.analyzer import image as image_mod
from gpu_lol.analyzer import launch_commands
from gpu_lol.analyzer import locations
from gpu_lol.analyzer import method as method_mod
from gpu_lol.analyzer import model_choice
from gpu_lol.analyzer import collector
from gpu_lol.analyzer import packages as packages_mod
from gpu_lol.analyzer import python_signals
from gpu_lol.analyzer import readme_facts
from gpu_lol.analyzer import setup_commands
from gpu_lol.analyzer import workload as workload_mod
from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.analyzer.result import Analysis, Reason
from gpu_lol.analyzer.values import as_int as _int_arg
from gpu_lol.repo_index import FileIndex
from gpu_lol.requirements_text import name_of
from gpu_lol.sizing import guardrails
from gpu_lol.spec import DEFAULT_DISK_GB, EnvironmentSpec, ModelInfo

DEFAULT_PORTS = {"vllm": 8000, "tgi": 8080, "sglang": 30000, "gradio": 7860, "streamlit": 8501, "uvicorn": 8000,
                 "jupyter": 8888, "ollama": 11434}
BATCH_ARGS = ("per_device_train_batch_size", "micro_batch_size", "train_batch_size", "batch_size",
              "per_device_eval_batch_size", "max_num_seqs")
SEQ_ARGS = ("max_seq_length", "max_seq_len", "cutoff_len", "model_max_length", "block_size", "seq_len",
            "max_len", "max_length", "max_model_len", "sequence_len", "context_length")
CKPT_ARGS = ("gradient_checkpointing", "activation_checkpointing", "grad_checkpoint", "use_gradient_checkpointing")


@dataclass
class Findings:
    """Everything the detectors found; kept for the LLM layer and for debugging."""

    index: FileIndex
    packages: Any
    commands: list
    signals: list
    configs: dict
    readme: Any
    frameworks: Any
    config_refs: dict = field(default_factory=dict)
    linked_notebooks: list = field(default_factory=list)  # notebooks the root README links to
    gpu_in_code: bool = True  # a GPU framework is imported by code or run by a GPU launcher


def _cite(evs: list[Evidence], n: int = 2) -> str:
    out, seen = [], set()
    for ev in evs:
        if ev.cite() in seen:
            continue
        seen.add(ev.cite())
        out.append(str(ev))
        if len(out) >= n:
            break
    return "; ".join(out)


def gather(index: FileIndex) -> Findings:
    packages = packages_mod.collect(index)
    commands = launch_commands.collect(index)
    linked = launch_commands.linked_notebooks(index)
    priority = linked[:20] + [
        rel for c in commands if c.main for rel in [_script_file(index, c)] if rel]
    signals = python_signals.collect(index, priority)
    configs = configs_mod.collect(index)
    readme = readme_facts.read(index)
    file_frameworks: dict[str, list[Evidence]] = {}
    for sig in signals:
        if sig.weight == 0:
            continue
        for module in sig.frameworks:
            file_frameworks.setdefault(module, []).append(Evidence(sig.file))
    imports = {m: [ev for ev in evs if locations.weight(ev.file) > 0] for m, evs in packages.imports.items()}
    fw = frameworks_mod.detect(packages.requirements, imports, packages.index_urls, file_frameworks, commands)
    gpu_in_code = any(frameworks_mod.GPU_IMPORTS.get(m) not in (None, *frameworks_mod.CPU_CAPABLE) and evs
                      for m, evs in list(imports.items()) + list(file_frameworks.items())) or any(
        frameworks_mod.GPU_LAUNCHERS.get(c.launcher) and c.weight > 0 for c in commands)
    refs: dict[str, list] = {}
    for cmd in commands:
        for ref in launch_commands.config_refs(cmd):
            rel = configs_mod.resolve_ref(index, ref, cmd.evidence.file)
            if rel and rel in configs:
                refs.setdefault(rel, []).append(cmd)
    return Findings(index, packages, commands, signals, configs, readme, fw, refs, linked, gpu_in_code)


MAX_PATHS = 4  # alternative paths shown besides the main one


def heuristics(index: FileIndex, overrides: dict[str, Any] | None = None, path: int = 0
               ) -> tuple[Analysis, Findings]:
    """Analyze the repo; ``overrides`` are fields from .gpu-lol.yaml (taken as given).

    ``path`` 0 plans the main path (the README quick start); N plans alternative N of
    ``Analysis.paths`` (a fine-tuning recipe, a reproduction script…) instead. Every alternative is
    planned too, so ``analyze`` can show what each would need."""
    from gpu_lol.errors import UsageError

    overrides = dict(overrides or {})
    found = gather(index)
    _mark_hosted_scripts(index, found)
    main, main_cmd = _decide(index, found, overrides, None)
    alternatives: list[tuple[Any, Analysis]] = []
    seen = {_plan_key(main)}
    for cmd in _candidate_paths(found, main_cmd):
        try:
            alt, _ = _decide(index, found, overrides, cmd)
        except UsageError:
            continue  # a path no machine can run (more GPUs than any offer): not shown
        key = _plan_key(alt)
        if key in seen:
            continue
        seen.add(key)
        alternatives.append((cmd, alt))
        if len(alternatives) >= MAX_PATHS:
            break
    if path < 0 or path > len(alternatives):
        raise UsageError(f"--path {path}: this repo has {len(alternatives)} alternative path(s)",
                         "run `gpu-lol analyze` to see them (path 0 is the main one)")
    chosen = main if path == 0 else alternatives[path - 1][1]
    chosen.paths = [_path_summary(0, main_cmd, main, chosen is main)] + [
        _path_summary(i, cmd, alt, chosen is alt) for i, (cmd, alt) in enumerate(alternatives, 1)]
    if path:
        chosen.reasoning.insert(0, Reason(f"path {path} chosen (--path): {alternatives[path - 1][0].evidence}",
                                          "path", [alternatives[path - 1][0].evidence], "high"))
    return chosen, found


def _plan_key(a: Analysis) -> tuple:
    s = a.spec
    return (s.workload_type, s.gpu_type, s.gpu_count, s.model.name, s.model.method)


def _path_summary(i: int, cmd, a: Analysis, chosen: bool) -> dict[str, Any]:
    s = a.spec
    return {"index": i, "main": i == 0, "chosen": chosen,
            "command": redact_text(" ".join(cmd.evidence.text.split())[:160]) if cmd is not None else None,
            "evidence": cmd.evidence.cite() if cmd is not None else None,
            "role": (cmd.role if cmd is not None else s.workload_type),
            "workload_type": s.workload_type, "model": s.model.name, "method": s.model.method,
            "gpu_type": s.gpu_type, "gpu_count": s.gpu_count, "vram_required_gb": s.vram_required_gb,
            "price_hr": a.price_hr, "confidence": a.confidence.get("overall"), "fits": _fits(s)}


def _fits(spec) -> bool:
    """Whether the plan's per-GPU need fits its card (False: nothing in the catalog holds it)."""
    from gpu_lol.sizing.catalog import get_gpu

    card = get_gpu(spec.gpu_type) if spec.gpu_type else None
    return card is None or spec.vram_required_gb <= card.vram_gb


def redact_text(text: str) -> str:
    from gpu_lol.secrets.redact import redact

    return redact(text)


def _candidate_paths(found: Findings, main_cmd) -> list:
    """Other ways to run the repo: training/inference commands of the READMEs and the repo's own
    launch scripts (not tests), README ones first, one per distinct command."""
    cands = [c for c in found.commands if c is not main_cmd and c.role in ("training", "inference") and c.weight > 0
             and c.origin in ("readme", "readme-python", "script")]
    cands.sort(key=lambda c: (c.readme_rank is None, c.readme_rank if c.readme_rank is not None else 0,
                              c.origin != "readme", -c.weight, c.evidence.file, c.evidence.line or 0))
    out, seen = [], set()
    for c in cands:
        key = (c.role, c.launcher, c.script, str(launch_commands.model_arg(c)),
               gpu_count_mod.count_from_command(c, found.configs, lambda r, f: configs_mod.resolve_ref(found.index, r, f))[0])
        if key in seen:
            continue
        seen.add(key)
        out.append(c)
        if len(out) >= 3 * MAX_PATHS:
            break
    return out


def _decide(index: FileIndex, found: Findings, overrides: dict[str, Any], forced) -> tuple[Analysis, Any]:
    """One plan: the main path's (``forced`` None) or the one ``forced`` command runs."""
    if forced is None:
        return _decide_one(index, found, overrides, None)
    saved = (forced.main, forced.readme_rank)
    forced.main, forced.readme_rank = True, -1  # this command is the documented first one now
    try:
        return _decide_one(index, found, overrides, forced)
    finally:
        forced.main, forced.readme_rank = saved


def _decide_one(index: FileIndex, found: Findings, overrides: dict[str, Any], forced) -> tuple[Analysis, Any]:
    reasoning: list[str] = []
    warnings: list[str] = list(found.packages.warnings)
    resolve = lambda ref, rel: configs_mod.resolve_ref(index, ref, rel)  # noqa: E731

    # ---- workload ---------------------------------------------------------------------------
    entries = [s for s in found.signals if s.weight > 0 and s.is_entry and not s.is_notebook
               and s.file.rsplit("/", 1)[-1] not in ("setup.py", "__init__.py", "conftest.py")]
    recipe_files = [(rel, Evidence(rel)) for rel, c in found.configs.items()
                    if c.kind == "recipe" and locations.weight(rel) > 0]
    notebook_count = sum(1 for f in index.files if f.suffix == ".ipynb" and locations.weight(f.rel) > 0)
    decision = workload_mod.decide(needs_gpu=found.frameworks.needs_gpu, commands=found.commands,
                                   signals=found.signals, recipe_files=recipe_files, py_file_count=len(entries),
                                   notebook_count=notebook_count,
                                   linked_notebooks=found.linked_notebooks,
                                   gpu_in_code=found.gpu_in_code, cpu_statement=found.readme.cpu_statement,
                                   course=found.readme.course)
    if forced is not None and forced.role in ("training", "inference") and decision.workload != "cpu":
        decision.workload, decision.reason = forced.role, f"the chosen path runs {forced.role} ({forced.evidence.cite()})"
        decision.notebook_centric = False
    workload = overrides.get("workload_type") or decision.workload
    if "workload_type" in overrides:
        reasoning.append(f"workload: {workload} (set in .gpu-lol.yaml)")
    elif workload == "cpu":
        reasoning.append(f"workload: cpu ({decision.reason})")
        if found.frameworks.cpu_torch is not None:
            reasoning.append(f"torch comes from PyTorch's CPU wheel index — {found.frameworks.cpu_torch}")
    else:
        top = decision.top_evidence(workload if workload in decision.evidence else "training")
        scores = ", ".join(f"{k} {v:.1f}" for k, v in decision.scores.items() if v)
        reasoning.append(f"workload: {workload} ({decision.reason}; scores: {scores or 'none'})"
                         + (f" — {_cite(top)}" if top else ""))
        reasoning.append(f"GPU frameworks: {found.frameworks.summary()} — "
                         + _cite([evs[0] for evs in found.frameworks.families.values() if evs], 2))

    # ---- model --------------------------------------------------------------------------------
    local_configs = [(rel, c.hf_config) for rel, c in found.configs.items() if c.kind == "hf_model" and c.hf_config]
    choice = model_choice.choose(workload=workload, commands=found.commands, configs=found.configs,
                                 config_refs=found.config_refs, signals=found.signals, local_configs=local_configs,
                                 main_files=found.linked_notebooks[:1]
                                 if decision.notebook_centric else [])
    model_override = overrides.get("model") or {}
    facts = choice.facts if workload != "cpu" else None
    model_name = model_override.get("name", choice.name if workload != "cpu" else None)
    params_b = model_override.get("params_b")
    if model_override.get("name") and model_override.get("name") != choice.name:
        from gpu_lol.sizing.models import lookup_model

        facts = lookup_model(model_override["name"])
    if params_b is None and facts is not None:
        params_b = round(float(facts.params_b), 3)
    stated_size = found.readme.stated_params_b if workload != "cpu" else None
    # the README's size of the model the analysis found still applies when the file names that model
    # (`gpu-lol init` writes model.name and leaves the size derived)
    same_model = model_override.get("name") in (None, choice.name) and "params_b" not in model_override
    if params_b is None and stated_size and same_model:
        params_b = stated_size[0]
        reasoning.append(f"model size: {params_b:g}B parameters, as the README states — {stated_size[1]}")
    named = found.readme.named_size(choice.name) if workload != "cpu" and params_b is None else None
    if named and same_model:
        params_b = named[0]
        reasoning.append(f"model size: {params_b:g}B parameters, the size the README gives {choice.name} — {named[1]}")
    if "model" in overrides:
        reasoning.append(f"model: {model_name} ({params_b}B) (set in .gpu-lol.yaml)")
    elif workload != "cpu":
        if choice.name:
            size = f"{params_b:g}B" if params_b else "size unknown"
            reasoning.append(f"model: {choice.name} ({size}; {choice.note}) — {_cite(choice.evidence)}")
            if choice.alternatives:
                reasoning.append("other models mentioned: " + ", ".join(choice.alternatives))
        else:
            reasoning.append(f"model: none identified ({choice.note}); using a default memory need for {workload}")

    # ---- method -------------------------------------------------------------------------------
    training_like = workload == "training" or (
        workload == "interactive" and decision.scores.get("training", 0) >= max(2.0, decision.scores.get("inference", 0)))
    package_names = {name_of(r.text) or "" for r in found.packages.requirements}
    main_cmds = _ordered_commands(found.commands, workload, choice.command)
    if decision.notebook_centric and workload == "interactive":
        main_cmds = []  # a notebook repo's main path is its notebooks, not commands in sub-READMEs
    referenced = [found.configs[rel] for rel in found.config_refs
                  if any(c in main_cmds[:3] for c in found.config_refs[rel])]
    if not referenced:
        referenced = [found.configs[rel] for rel in found.config_refs]
    path_signals = _main_path_signals(index, main_cmds[:3], found, workload)
    meth = method_mod.decide(workload=workload, training_like=training_like, model_name=model_name,
                             commands=main_cmds[:4], configs=referenced,
                             signals=path_signals, package_names=package_names, model_facts=facts)
    method = model_override.get("method", meth.method)
    if workload != "cpu" and method:
        if "model" in overrides and "method" in model_override:
            reasoning.append(f"method: {method} (set in .gpu-lol.yaml)")
        else:
            reasoning.append(f"method: {method} ({meth.reason})" + (f" — {_cite(meth.evidence)}" if meth.evidence else ""))

    # ---- parallelism and GPU count ----------------------------------------------------------
    notebook_main = (found.linked_notebooks[:1] or None) if decision.notebook_centric and workload == "interactive" \
        else None
    par = gpu_count_mod.decide(workload=workload, main_commands=main_cmds[:6], all_commands=found.commands,
                               configs=found.configs, referenced=referenced, signals=found.signals,
                               resolve=resolve, package_names=package_names, main_files=notebook_main)
    for note in par.notes:
        warnings.append(note)
    # a statement made for the other phase ("Finetuning: 8x RTX 3090" in an inference repo) is not this path's
    other = "inference" if workload == "training" else "training"
    required = [h for h in found.readme.required_hardware if "/" not in h[2].file
                and found.readme.required_phase.get((h[2].file, h[2].line)) != other]
    if par.count is None and workload != "cpu" and required:
        count, gb, ev = required[0]
        par.count = count
        par.evidence.append(ev)
        par.shardable = True
        reasoning.append(f"GPU count: {count}, the hardware the README says is required — {ev}")
    if par.count is None and workload == "training" and found.readme.root_hardware:
        count, gb, ev = found.readme.root_hardware[0]
        par.count = count
        par.evidence.append(ev)
        par.shardable = True
        reasoning.append(f"GPU count: {count}, the hardware the README says the training ran on — {ev}")
    explicit_count = overrides.get("gpu_count") or par.count
    if par.count and "gpu_count" not in overrides and not any(line.startswith("GPU count") for line in reasoning):
        reasoning.append(f"GPU count: {par.count} (explicit) — {_cite(par.evidence[:1])}")
    batch, seq, ckpt = _shape_hints(main_cmds[:1], referenced, path_signals)
    if workload != "training" and batch and batch > 64:
        batch = None  # a serving engine's batch limit (max_num_seqs) is not sequences held at full length
    fused = _fused_loss(main_cmds[:1], referenced, path_signals)

    # ---- memory and GPU -----------------------------------------------------------------------
    spec = EnvironmentSpec(workload_type=workload)
    spec.providers = overrides.get("providers", spec.providers)
    fit_notes: list[str] = []
    picked = None
    gpu_reasons: list[str] = []
    if workload == "cpu":
        spec.gpu_type, spec.gpu_count, spec.vram_required_gb = None, 0, 0.0
    else:
        base_bits = meth.base_bits if method == meth.method else None
        need_for_count, stated_need, breakdown_line = _need_function(workload, facts, params_b, method, batch, seq,
                                                                     ckpt, par, found.readme, overrides, base_bits,
                                                                     fused, model_name,
                                                                     fallback=_fallback_need(workload, found, package_names))
        if breakdown_line:
            reasoning.append(breakdown_line)
        shardable = par.shardable or bool(explicit_count and explicit_count > 1)
        if overrides.get("gpu_count"):
            picked = guardrails.choose(need_for_count, shardable=shardable, gpu_type=overrides.get("gpu_type"),
                                       gpu_count=explicit_count, providers=list(spec.providers))
        else:
            def shard() -> None:
                # inference splits with tensor parallel at any count > 1; training needs sharded states
                if workload == "training" and not (par.fsdp or par.zero_stage == 3):
                    par.fsdp = True
                par.shardable = True

            picked, fit_notes = guardrails.choose_fitting(
                need_for_count, shardable=shardable, repo_count=par.count, gpu_type=overrides.get("gpu_type"),
                providers=list(spec.providers), shard=shard)
            for note in fit_notes:
                reasoning.append(f"GPU count: {note}")
            if fit_notes:
                explicit_count = picked.gpu_count
        spec.gpu_type, spec.gpu_count = picked.gpu_type, picked.gpu_count
        spec.vram_required_gb = max(picked.vram_required_gb, stated_need(picked.gpu_count))
        if picked.gpu_count > 1 and not explicit_count:
            warnings.append(
                f"the repo sets no GPU count, but {picked.gpu_count} GPUs are needed to hold the model: make sure "
                "it shards across them (vLLM tensor_parallel_size, device_map='auto', DeepSpeed/FSDP)")
        if "vram_required_gb" in overrides:
            spec.vram_required_gb = float(overrides["vram_required_gb"])
        gpu_reasons = picked.reasons
        warnings.extend(picked.warnings)
        for line in gpu_reasons:
            reasoning.append(f"GPU: {line}")
    spec.model = ModelInfo(name=model_name if workload != "cpu" else model_override.get("name"),
                           params_b=params_b if workload != "cpu" else model_override.get("params_b"),
                           method=method if workload != "cpu" else model_override.get("method"))

    # ---- packages, image, setup ---------------------------------------------------------------
    reqs = [r for r in found.packages.requirements] + _implied_requirements(found, main_cmds[:3], reasoning)
    if "requirements" in overrides:
        requirements = list(overrides["requirements"])
    else:
        requirements = [r.text for r in reqs]
        if reqs:
            origin = "imports (no package file declares any)" if found.packages.from_imports else \
                ", ".join(found.packages.sources[:4])
            reasoning.append(f"packages: {len(reqs)} from {origin}")
    extra_reqs = found.packages.extras_requirements() if hasattr(found.packages, "extras_requirements") else []
    choice_img = image_mod.choose(workload, reqs + extra_reqs, found.packages.docker_images, found.packages.python_versions,
                                  set(found.frameworks.families),
                                  system_packages=[p for p, _ in found.packages.system_packages])
    spec.base_image = overrides.get("base_image", choice_img.image)
    if "base_image" not in overrides:
        reasoning.extend(choice_img.reasons)
        warnings.extend(choice_img.warnings)
    spec.python_version = overrides.get("python_version", choice_img.python_version)
    spec.requirements = requirements
    provides = choice_img.provides if spec.base_image == choice_img.image else {}
    if "setup_commands" in overrides:
        spec.setup_commands = list(overrides["setup_commands"])
    else:
        extras = [name for name, _ in found.packages.extras_requested
                  if not (workload == "inference" and collector.is_training_extra(name))]
        if len(extras) < len(found.packages.extras_requested):
            reasoning.append("setup: training extras left out of an inference plan: " + ", ".join(
                name for name, _ in found.packages.extras_requested if name not in extras))
        own_image = spec.base_image == choice_img.image
        python_exe = (choice_img.python_exe if own_image else None) or setup_commands.python_for(spec.base_image)
        plan = setup_commands.build(requirements, provides=provides, python=python_exe,
                                    index_options=[(flag, url) for flag, url, _ in found.packages.index_urls
                                                   if workload == "cpu" or "/whl/cpu" not in url],
                                    constraints=[path for path, _ in found.packages.constraints],
                                    install_package=found.packages.is_package, extras=extras,
                                    build_flags=getattr(found.packages, "build_flags", None))
        spec.setup_commands = (list(choice_img.bootstrap) if own_image else []) + plan.commands
        reasoning.extend(f"setup: {r}" for r in plan.reasons)
        if found.packages.is_package and found.packages.package_evidence:
            reasoning.append(f"setup: installs the repo itself (pip install -e .) — {found.packages.package_evidence}")
    spec.system_packages = overrides.get("system_packages", _dedupe([p for p, _ in found.packages.system_packages]
                                                                    + choice_img.system_packages))
    spec.asset_links = overrides.get("asset_links", [])
    spec.envs = overrides.get("envs", {})
    spec.ports = overrides.get("ports", _ports(main_cmds[:4], workload))
    spec.disk_gb = overrides.get("disk_gb", _disk_gb(params_b, workload))
    spec.idle_minutes = overrides.get("idle_minutes", spec.idle_minutes)
    spec.spot = overrides.get("spot", spec.spot)
    if found.index.truncated:
        warnings.append("the repo is very large: the analysis stopped after 200,000 entries")
    analysis = Analysis(spec=spec, reasoning=reasoning, source="heuristics", warnings=_dedupe(warnings),
                        repo=str(index.root))
    levels = _confidences(overrides=overrides, workload=workload, decision=decision, forced=forced, choice=choice,
                          facts=facts, params_b=params_b, par=par, main_cmds=main_cmds, readme=found.readme,
                          fit_notes=fit_notes, stated_size=stated_size)
    analysis.set_confidence(**levels)
    _tag_reasons(reasoning, levels)
    if workload != "cpu" and picked is not None:
        analysis.price_hr = picked.price_hr
    return analysis, (main_cmds[0] if main_cmds else None)


def _confidences(*, overrides, workload, decision, forced, choice, facts, params_b, par, main_cmds, readme,
                 fit_notes, stated_size) -> dict[str, str]:
    """How sure each core decision is, from the kind of evidence it rests on (docs/analyzer.md)."""
    out: dict[str, str] = {}
    reason = decision.reason
    if "workload_type" in overrides or forced is not None:
        out["workload"] = "high"
    elif workload == "cpu":
        out["workload"] = "high" if reason.startswith(("no GPU framework", "the README's first example")) else "medium"
    elif reason.startswith("the README's first command") or (decision.notebook_centric and "links" in reason):
        out["workload"] = "high"
    elif reason.startswith(("some ", "a GPU framework is used")):
        out["workload"] = "low"
    else:
        win = decision.scores.get(workload, 0.0)
        other = max((v for k, v in decision.scores.items() if k != workload), default=0.0)
        documented = any(c.main and c.role == workload for c in main_cmds[:3])
        out["workload"] = "high" if documented and win >= 2 * other else "medium" if win >= 1.25 * other else "low"
    if workload == "cpu":
        return {k: out["workload"] for k in ("workload", "model", "gpu_count", "vram")}
    # model
    if "model" in overrides:
        out["model"] = "high"
    elif choice.name and facts is not None and getattr(facts, "source", "") == "table":
        out["model"] = "high" if choice.command is not None else "medium"
    elif choice.name and params_b:
        out["model"] = "medium"
    elif stated_size:
        out["model"] = "medium"
    else:
        out["model"] = "low"
    # GPU count
    main_ev = {c.evidence for c in main_cmds[:1]}
    if "gpu_count" in overrides or readme.required_for(par.count or 0):
        out["gpu_count"] = "high"
    elif any("must shard" in n for n in fit_notes):
        out["gpu_count"] = "low"  # nothing in the repo says its code shards across those GPUs
    elif fit_notes:
        out["gpu_count"] = "medium"
    elif par.count and par.evidence and par.evidence[0] in main_ev:
        out["gpu_count"] = "high"
    else:
        out["gpu_count"] = "medium"
    # memory
    if "vram_required_gb" in overrides or readme.vram_floor() or readme.required_for(par.count or 0):
        out["vram"] = "high"
    elif facts is not None and getattr(facts, "source", "") == "table":
        out["vram"] = "medium"
    elif params_b:
        out["vram"] = "medium" if stated_size or choice.name else "low"
    else:
        out["vram"] = "low"  # a default need: no model size is known
    return out


def _tag_reasons(reasoning: list, levels: dict[str, str]) -> None:
    """Give each core decision's lines their confidence (the lines stay plain text for printing)."""
    from gpu_lol.analyzer.result import decision_of

    for i, line in enumerate(reasoning):
        decision = getattr(line, "decision", "") or decision_of(line)
        key = {"gpu": "gpu_count"}.get(decision, decision)
        if key in levels:
            reasoning[i] = Reason(str(line), decision, getattr(line, "evidence", ()), levels[key])


# Launchers whose package the documented command needs even when no file declares it.
IMPLIED_PACKAGES = {"vllm": "vllm", "sglang": "sglang"}


def _implied_requirements(found: Findings, cmds: list, reasoning: list[str]) -> list:
    declared = {name_of(r.text) for r in found.packages.requirements}
    out = []
    for cmd in cmds:
        package = IMPLIED_PACKAGES.get(cmd.launcher)
        if package and package not in declared and cmd.weight > 0:
            declared.add(package)
            out.append(collector.DeclaredRequirement(package, cmd.evidence, "readme"))
            reasoning.append(f"packages: {package} is not declared but the documented command runs it — {cmd.evidence}")
            break  # only the main command's launcher
    return out


def _mark_hosted_scripts(index: FileIndex, found: Findings) -> None:
    """A documented command that runs a script which only calls hosted model APIs (``python app.py``
    where app.py builds an OpenAI client) is a hosted-API command, not local inference."""
    by_file = {sig.file: sig for sig in found.signals}
    wrappers = set().union(*(sig.hosted_classes for sig in found.signals if sig.weight > 0)) if found.signals else set()
    for cmd in found.commands:
        if cmd.main and cmd.role == "other" and cmd.launcher == "shell" and cmd.readme_rank is not None:
            # `bash runs/speedrun.sh`: the script's first training/inference command says what it does
            rel = _script_file(index, cmd)
            inner = [c for c in found.commands if rel and c.evidence.file == rel and c.role in ("training", "inference")]
            if inner:
                cmd.role, cmd.role_reason = inner[0].role, f"{rel} runs {inner[0].evidence}"
            continue
        if cmd.main and cmd.role == "other" and cmd.launcher == "python":
            # `python run.py`: a neutral name, so the script's code says what the documented command does
            rel = _script_file(index, cmd)
            sig = by_file.get(rel) if rel else None
            if sig is not None and sig.weight > 0:
                if sig.training_strength >= 2 and sig.training_strength >= sig.inference_strength:
                    cmd.role, cmd.role_reason = "training", f"{rel} trains a model"
                elif sig.inference or (sig.loads_model and not sig.training_strength):
                    cmd.role, cmd.role_reason = "inference", f"{rel} loads and runs a model"
        block = cmd.block_signals
        if block is not None and cmd.role == "inference" and not block.local_model_use and (block.called & wrappers):
            # the README example builds one of the repo's own wrappers of a hosted client
            cmd.role, cmd.role_reason = "hosted", "README example uses the repo's hosted-API model class"
            continue
        if not cmd.main or cmd.role not in ("inference", "interactive", "other", "training"):
            continue
        rel = _script_file(index, cmd)
        sig = by_file.get(rel) if rel else None
        if sig is not None and sig.hosted_only:
            cmd.role, cmd.role_reason = "hosted", f"{rel} only calls a hosted model API"


def _script_file(index: FileIndex, cmd) -> str | None:
    """The repo file a command runs (``train.py``, ``-m pkg.mod``, ``bash scripts/x.sh``)."""
    script = (cmd.script or "").strip()
    if not script or " " in script:
        return None
    candidates = [script.lstrip("./")]
    if not script.endswith((".py", ".sh")):
        module = script.replace(".", "/")
        candidates += [module + ".py", module + "/__main__.py", "src/" + module + ".py"]
    base = cmd.evidence.file.rsplit("/", 1)[0] if "/" in cmd.evidence.file else ""
    if base:
        candidates += [f"{base}/{c}" for c in list(candidates)]
    return next((c for c in candidates if index.has(c)), None)


def _main_path_signals(index: FileIndex, cmds: list, found: Findings, workload: str) -> list:
    """Signals of the files the main path runs (following a shell script one level); when no
    command names a file, the entry files whose name says the workload (train.py, serve.py)."""
    signals, all_commands = found.signals, found.commands
    by_file = {sig.file: sig for sig in signals}
    if workload == "interactive":
        linked = [by_file[rel] for rel in found.linked_notebooks if rel in by_file]
        if linked:
            return linked[:1]
    if cmds and cmds[0].block_signals is not None:
        return [cmds[0].block_signals]  # the README's own example is the main path
    files: list[str] = []
    for cmd in cmds:
        rel = _script_file(index, cmd)
        if rel and rel.endswith(".sh"):
            files += [r for c in all_commands if c.evidence.file == rel for r in [_script_file(index, c)] if r]
        elif rel:
            files.append(rel)
    picked = [by_file[f] for f in dict.fromkeys(files) if f in by_file]
    if picked:
        return picked
    role = {"training": "training", "inference": "inference"}.get(workload)
    return [sig for sig in signals if sig.weight and (sig.is_entry or sig.is_notebook)
            and (role is None or launch_commands.role_of_script(sig.file) == role or sig.is_notebook)]


def _ordered_commands(commands: list, workload: str, model_command) -> list:
    """Commands of the chosen path first: the one that named the model, then same-role ones."""
    role = {"training": "training", "inference": "inference", "interactive": "interactive"}.get(workload)
    same = sorted([c for c in commands if c.role == role],
                  key=lambda c: (c.readme_rank is None, c.readme_rank or 0, -c.weight))
    rest = sorted([c for c in commands if c.role != role and c.role not in ("setup", "other", "test")],
                  key=lambda c: -c.weight)
    # the README's quick-start command is the documented main path, else its first of the chosen role
    quick = launch_commands.main_command(commands)
    first = [quick] if quick is not None and quick.role == role else []
    if not first and same and same[0].readme_rank is not None:
        first = [same[0]]
    ordered = first + ([model_command] if model_command is not None else []) + same + rest
    out, seen = [], set()
    for c in ordered:
        if id(c) not in seen:
            seen.add(id(c))
            out.append(c)
    return out


FUSED_LOSS_ARGS = ("use_liger_kernel", "use_liger", "liger_kernel", "use_cut_cross_entropy")
FUSED_LOSS_IMPORTS = ("liger_kernel", "unsloth", "cut_cross_entropy")


def _fused_loss(cmds: list, referenced: list, signals: list) -> bool:
    """Liger/Unsloth/cut-cross-entropy: the loss never materializes the full logits."""
    if any(cmd.flag(*FUSED_LOSS_ARGS) for cmd in cmds):
        return True
    if any(cfg.fused_loss for cfg in referenced):
        return True
    return any(sig.weight and (sig.is_entry or sig.is_notebook) and set(FUSED_LOSS_IMPORTS) & sig.frameworks
               for sig in signals)


def _shape_hints(cmds: list, referenced: list, signals: list) -> tuple[int | None, int | None, bool]:
    batch = seq = None
    ckpt = False
    for cmd in cmds:
        for key in BATCH_ARGS:
            value = _int_arg(cmd.args.get(key))
            accum = _int_arg(cmd.args.get("gradient_accumulation_steps"))
            if value and key in ("batch_size", "train_batch_size") and accum and accum > 1:
                value = max(1, value // accum)  # a global batch over accumulation steps
            batch = batch or value
        for key in SEQ_ARGS:
            seq = seq or _int_arg(cmd.args.get(key))
        ckpt = ckpt or cmd.flag(*CKPT_ARGS)
    for cfg in referenced:
        if batch is None and cfg.batch:
            batch = cfg.batch[0][0]
        if seq is None and cfg.seq:
            seq = cfg.seq[0][0]
        ckpt = ckpt or bool(cfg.grad_ckpt)
    for sig in signals:
        if sig.weight == 0 or not (sig.is_entry or sig.is_notebook):
            continue
        if batch is None and sig.batch:
            batch = sig.batch[0][0]
        if seq is None and sig.seq:
            seq = sig.seq[0][0]
        ckpt = ckpt or bool(sig.grad_ckpt)
    if batch is not None and not 1 <= batch <= 1024:
        batch = None
    if seq is not None and not 64 <= seq <= 1_048_576:
        seq = None
    return batch, seq, ckpt


# Code of latent-diffusion-class image generators (UNet + VAE + text encoder at 512 px and up).
_DIFFUSION_MODULES = frozenset({"diffusers", "ldm", "sgm", "cldm", "k_diffusion", "taming", "comfy"})
_LLM_LAUNCHERS = frozenset({"vllm", "tgi", "sglang", "ollama", "llamafactory", "axolotl", "litgpt", "torchtune"})
SMALL_MODEL_NEED_GB = 8.0


def _fallback_need(workload: str, found: Findings, package_names: set[str]) -> tuple[float, str]:
    """The per-GPU need when no model could be sized, and why. Inference with no language model or
    diffusion pipeline in sight (depth, super-resolution, face restoration, detection, TTS models of
    well under 1B parameters) gets 8 GB, which such models fit in with room for large inputs; an
    image-diffusion codebase or an LLM engine keeps the general default."""
    default = guardrails.FALLBACK_NEED_GB.get(workload, 12.0)
    if workload not in ("inference", "interactive"):
        return default, ""
    modules = set(package_names)
    for sig in found.signals:
        if sig.weight > 0:
            modules |= sig.frameworks
    if modules & _DIFFUSION_MODULES or modules & {"vllm", "sglang", "llama_cpp", "peft", "trl", "bitsandbytes"}:
        return default, ""
    if any(c.launcher in _LLM_LAUNCHERS for c in found.commands if c.weight > 0):
        return default, ""
    if any(sig.weight > 0 and (sig.quant4 or sig.quant8 or sig.quant_prequant) for sig in found.signals):
        return default, ""
    return SMALL_MODEL_NEED_GB, "no language model, diffusion pipeline or quantized load in the code: a small model"


def _need_function(workload, facts, params_b, method, batch, seq, ckpt, par, readme, overrides, base_bits=None,
                   fused=False, model_name=None, fallback: tuple[float, str] | None = None):
    from gpu_lol.sizing import vram
    from gpu_lol.sizing.selection import HEADROOM

    fallback_gb, fallback_why = fallback or (guardrails.FALLBACK_NEED_GB.get(workload, 12.0), "")

    floor = readme.vram_floor()
    line = ""
    fixed_need = overrides.get("vram_required_gb")
    sizeable = facts is not None or params_b

    def estimate(n: int):
        tp = None
        pp = None
        if workload != "training" and n > 1:
            if par.tensor_parallel or not par.device_map_auto:
                tp = n
            else:
                pp = n
        return vram.estimate(params_b=params_b if facts is None else None, facts=facts, method=method or "inference",
                             batch_size=batch, seq_len=seq, gpu_count=n, tensor_parallel=tp, pipeline_parallel=pp,
                             zero_stage=par.zero_stage if workload == "training" else None,
                             fsdp=par.fsdp and workload == "training", gradient_checkpointing=ckpt,
                             base_bits=base_bits, fused_loss=fused)

    def base_need(n: int) -> float:
        return estimate(n).per_gpu_gb if sizeable else fallback_gb

    table = readme.table_need(model_name, method, workload) if sizeable else None

    def stated_need(n: int) -> float:
        """What the README says one GPU must have (a card of exactly that size is enough)."""
        if fixed_need:
            return 0.0
        stated = floor[0] if floor else 0.0
        if table and n == 1:
            stated = max(stated, min(table[0], 2.5 * base_need(n)))
        required = readme.required_for(n)
        if required:
            return max(stated, required[0])
        hw = readme.hardware_for(n)
        if hw and workload == "training":
            # the README's hardware for this GPU count; bounded by the estimate when we have one, so a
            # small model is not put on the biggest card the authors happened to own
            stated = max(stated, min(hw[0], 2.5 * base_need(n)) if sizeable else hw[0])
        return stated

    def need_for_count(n: int) -> float:
        if fixed_need:
            return float(fixed_need)
        required = readme.required_for(n)
        if required:
            # the authors' stated requirement outranks an estimate: a card of that size is enough
            return max(required[0] * HEADROOM, guardrails.MIN_NEED_GB)
        ran_on = readme.hardware_for(n) if workload == "training" else None
        if ran_on and sizeable and ran_on[0] * HEADROOM < base_need(n) <= 1.5 * ran_on[0]:
            # the README's training ran on cards of that size at this count: it fits them, whatever
            # the estimate's defaults (batch, sequence) say
            return max(ran_on[0] * HEADROOM, guardrails.MIN_NEED_GB)
        # selection keeps HEADROOM of each card free; a stated size must still fit a card of that size
        return max(base_need(n), stated_need(n) * HEADROOM, guardrails.MIN_NEED_GB)

    if sizeable and not fixed_need:
        est = estimate(par.count or 1)
        parts = ", ".join(f"{k} {v:.1f}" for k, v in est.breakdown.items() if v >= 0.05)
        line = (f"memory: {est.per_gpu_gb:.1f} GB per GPU on {est.gpu_count} GPU(s) for {est.params_b:g}B "
                f"{est.method} ({parts})")
        if est.assumptions:
            line += "; " + "; ".join(est.assumptions[:3])
    elif not fixed_need:
        line = f"memory: {fallback_gb:.0f} GB default for {workload} (no model size known" + \
            (f"; {fallback_why})" if fallback_why else ")")
    if floor and not fixed_need:
        line += f"; README states a need of {floor[0]:g} GB — {floor[1]}"
    if table and not fixed_need:
        line += f"; README's memory table gives {table[0]:g} GB for it — {table[1]}"
    required = readme.required_for(par.count) if par.count else None
    if required and not fixed_need:
        line += f"; the README requires {par.count} GPUs of {required[0]:g} GB, which outranks the estimate — {required[1]}"
    hw = readme.hardware_for(par.count) if par.count else None
    if hw and workload == "training" and not fixed_need and not required:
        line += f"; README's hardware for {par.count} GPUs: {hw[0]:g} GB each — {hw[1]}"
    return need_for_count, stated_need, line


def _ports(cmds: list, workload: str) -> list[int]:
    for cmd in cmds:
        port = _int_arg(cmd.args.get("port")) or _int_arg(cmd.args.get("server_port"))
        if port and 1 <= port <= 65535:
            return [port]
        if cmd.launcher in DEFAULT_PORTS and cmd.role in ("inference", "interactive"):
            return [DEFAULT_PORTS[cmd.launcher]]
    return []


def _disk_gb(params_b: float | None, workload: str) -> int:
    if not params_b or workload == "cpu":
        return DEFAULT_DISK_GB if workload != "cpu" else 50
    needed = params_b * 2.0 * 1.3 + 60  # 16-bit weights, a copy in the HF cache, room for checkpoints
    return int(max(DEFAULT_DISK_GB, math.ceil(needed / 50) * 50))


def _dedupe(items: list[str]) -> list[str]:
    seen, out = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out

