"""Training, inference, interactive or cpu: decided from what the repo runs, not from path
substrings.

Evidence, weighted by where it sits (root and scripts count fully, examples less, tests and docs
not at all): launch commands (``torchrun``/``accelerate launch``/``deepspeed``, ``vllm serve``,
``python train.py`` with whole-word script names), training calls (``loss.backward()``,
``optimizer.step()``, ``Trainer``/``SFTTrainer``/``GRPOTrainer``, ``trainer.train()``), inference
calls (``LLM(...)``, ``pipeline(...)``, ``.generate(...)``), serving apps, and training recipes.
Precedence: no GPU framework → cpu; a notebook-centric repo with no documented launch → interactive;
inference when the README's first documented command runs inference and inference evidence is at
least 80% of training's; else training when its evidence is at least 60% of inference's; else
inference; else interactive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.analyzer.launch_commands import Command, role_of_script
from gpu_lol.analyzer.python_signals import FileSignals

TRAINING_SHARE = 0.6
# When the README's first documented command runs inference, inference wins if its evidence is at
# least this share of training's (model-release repos ship a finetune script too).
README_FIRST_SHARE = 0.8
# The root README's first command (its quick start) decides the workload when its role's evidence is
# at least this share of the other role's: training code elsewhere (a finetune/ folder, a reproduction
# recipe) is an alternative path, not the main one.
MAIN_PATH_SHARE = 0.25


@dataclass
class WorkloadDecision:
    workload: str
    scores: dict[str, float]
    evidence: dict[str, list[tuple[float, Evidence]]] = field(default_factory=dict)
    reason: str = ""
    notebook_centric: bool = False

    def top_evidence(self, kind: str, n: int = 3) -> list[Evidence]:
        items = sorted(self.evidence.get(kind, []), key=lambda item: -item[0])
        seen, out = set(), []
        for _, ev in items:
            if ev.cite() not in seen:
                seen.add(ev.cite())
                out.append(ev)
            if len(out) >= n:
                break
        return out


def decide(*, needs_gpu: bool, commands: list[Command], signals: list[FileSignals], recipe_files: list[tuple[str, Evidence]],
           py_file_count: int, notebook_count: int = 0, linked_notebooks: list[str] = (),
           gpu_in_code: bool = True, cpu_statement: Evidence | None = None,
           course: Evidence | None = None) -> WorkloadDecision:
    """``notebook_count``: notebooks outside tests/docs (from the file index, read or not);
    ``linked_notebooks``: notebooks of this repo the root README links to; ``gpu_in_code``: a GPU
    framework is imported by the repo's code or run by a GPU launcher (not only declared);
    ``cpu_statement``: the README says the code runs on a laptop/CPU; ``course``: the README presents
    the repo as a course, book or lecture series."""
    scores = {"training": 0.0, "inference": 0.0, "interactive": 0.0}
    evidence: dict[str, list[tuple[float, Evidence]]] = {k: [] for k in scores}

    def add(kind: str, amount: float, ev: Evidence) -> None:
        if amount > 0:
            scores[kind] += amount
            evidence[kind].append((amount, ev))

    documented = False
    for cmd in commands:
        w = cmd.weight
        if cmd.role == "training":
            add("training", 3.0 * w, cmd.evidence)
            documented = documented or cmd.main
        elif cmd.role == "inference":
            add("inference", (3.5 if cmd.launcher in ("vllm", "tgi", "sglang") else 3.0) * w, cmd.evidence)
            documented = documented or cmd.main
        elif cmd.role == "eval":
            add("inference", 1.0 * w, cmd.evidence)
        elif cmd.role == "interactive":
            add("interactive", 2.0 * w, cmd.evidence)
    notebooks = [s for s in signals if s.is_notebook and s.weight > 0]
    for sig in signals:
        if sig.weight == 0:
            continue
        w = sig.weight * (1.0 if sig.is_entry or sig.is_notebook else 0.5)
        train = min(sig.training_strength, 5.0)
        infer = min(sig.inference_strength, 4.0)
        if sig.serving and (sig.loads_model or sig.inference):
            infer += 2.0
        elif sig.serving:
            infer += 0.5
        role = role_of_script(sig.file)
        if role == "training" and train > 0:
            train += 1.5
        elif role == "inference" and (infer > 0 or sig.loads_model):
            infer += 1.0
        if train:
            add("training", train * w, sig.training[0] if sig.training else Evidence(sig.file))
        if infer:
            first = (sig.serving or sig.inference or sig.loads_model or [Evidence(sig.file)])[0]
            add("inference", infer * w, first)
    for i, (_, ev) in enumerate(recipe_files[:3]):
        add("training", 0.8, ev)
    n_notebooks = max(notebook_count, len(notebooks))
    notebook_centric = not documented and n_notebooks > 0 and (
        n_notebooks >= max(1, py_file_count) or (bool(linked_notebooks) and n_notebooks >= 3))
    if course is not None and n_notebooks >= 3 and not _gpu_launch_first(commands):
        # a course/book of notebooks: its lessons are the main path, whatever scripts sit beside them
        notebook_centric = True
    if not needs_gpu:
        return WorkloadDecision("cpu", scores, evidence, "no GPU framework (torch, tensorflow, jax, vllm, …) is "
                                "declared or imported", notebook_centric)
    hosted = _hosted_reason(commands, signals)
    if hosted:
        return WorkloadDecision("cpu", scores, evidence, hosted, notebook_centric)
    if not gpu_in_code and not any(s.weight > 0 and s.local_model_use for s in signals) and not any(
            c.weight > 0 and c.role in ("training", "inference") and c.launcher not in ("python", "other", "shell")
            for c in commands):
        return WorkloadDecision("cpu", scores, evidence, "a GPU framework is declared but no code imports it and "
                                "nothing trains or runs a model", notebook_centric)
    if notebook_centric and cpu_statement is not None:
        return WorkloadDecision("cpu", scores, evidence, f"notebooks the README says run on a laptop/CPU "
                                f"({cpu_statement})", True)
    if notebook_centric:
        first = linked_notebooks[0] if linked_notebooks else (notebooks[0].file if notebooks else "")
        add("interactive", 2.0 + n_notebooks * 0.5, Evidence(first))
        why = f"notebook-centric: {n_notebooks} notebooks, {py_file_count} Python entry files"
        if linked_notebooks:
            why += f", the README links {len(linked_notebooks)} of them"
        return WorkloadDecision("interactive", scores, evidence, why, True)
    train, infer = scores["training"], scores["inference"]
    ranked = sorted((c for c in commands if c.readme_rank is not None and c.role in ("training", "inference")
                     and c.weight > 0), key=lambda c: c.readme_rank)
    first_role = ranked[0].role if ranked else None
    if first_role == "inference" and infer >= 1.5 and infer >= README_FIRST_SHARE * train:
        return WorkloadDecision("inference", scores, evidence,
                                f"the README's first command serves or runs a model ({ranked[0].evidence.cite()})")
    from gpu_lol.analyzer.launch_commands import main_command

    main_first = main_command(commands)
    if main_first is not None and main_first.role == "inference" and infer >= 1.5 and infer >= MAIN_PATH_SHARE * train:
        # the quick start runs a model; fine-tuning folders and reproduction recipes are alternatives
        return WorkloadDecision("inference", scores, evidence,
                                f"the README's first command serves or runs a model ({main_first.evidence.cite()}); "
                                "training code elsewhere is an alternative path")
    readme_roles = {c.role for c in commands if c.readme_rank is not None and c.readme_rank < 1000 and c.weight > 0}
    if main_first is not None and main_first.role == "inference" and infer >= 1.5 and "training" not in readme_roles:
        # the root README runs models and never trains: training scripts and TRAINING.md are other paths
        return WorkloadDecision("inference", scores, evidence,
                                f"the README runs a model ({main_first.evidence.cite()}) and shows no training "
                                "command; training code elsewhere is an alternative path")
    if train >= 2.0 and train >= TRAINING_SHARE * infer:
        return WorkloadDecision("training", scores, evidence, "training code and launch commands")
    if infer >= 1.5:
        return WorkloadDecision("inference", scores, evidence, "inference/serving code and launch commands")
    if train > 0 and train >= infer:
        return WorkloadDecision("training", scores, evidence, "some training code")
    if infer > 0:
        return WorkloadDecision("inference", scores, evidence, "some inference code")
    return WorkloadDecision("interactive", scores, evidence,
                            "a GPU framework is used but no training or serving entry point was found")


def _gpu_launch_first(commands: list[Command]) -> bool:
    """The README's first command is a GPU launcher (torchrun, accelerate, deepspeed, vllm serve…)."""
    ranked = sorted((c for c in commands if c.readme_rank is not None and c.role in ("training", "inference")
                     and c.weight > 0), key=lambda c: c.readme_rank)
    return bool(ranked) and ranked[0].launcher in ("torchrun", "accelerate", "deepspeed", "vllm", "tgi", "sglang")


GPU_ONLY_LAUNCHERS = ("torchrun", "accelerate", "deepspeed", "vllm", "tgi", "sglang", "ollama")


def _script_signals(cmd: Command, signals: list[FileSignals]) -> FileSignals | None:
    """The signals of the repo file a command runs (`streamlit run app.py`, `python demo.py`), when the
    path names exactly one file (a README that `cd`s into a folder first names it by its tail)."""
    script = (cmd.script or "").lstrip("./")
    if not script.endswith(".py"):
        return None
    exact = [s for s in signals if s.file == script]
    if exact:
        return exact[0]
    tail = [s for s in signals if s.file.endswith("/" + script) and s.weight > 0]
    return tail[0] if len(tail) == 1 else None


def _hosted_reason(commands: list[Command], signals: list[FileSignals]) -> str:
    """Why the repo needs no local GPU because it only calls hosted models, or "".

    Either the README's first runnable example (a command or a ```python block) calls a hosted
    model API and runs no model itself, or the repo's code calls hosted models and nowhere trains
    or loads one (outside tests and docs)."""
    ranked = sorted((c for c in commands if c.readme_rank is not None and c.readme_rank < 1000 and c.weight > 0
                     and c.role in ("training", "inference", "hosted")), key=lambda c: c.readme_rank)
    if ranked and ranked[0].role == "hosted":
        why = ranked[0].role_reason if "sets" in (ranked[0].role_reason or "") else ""
        return (f"the README's first example calls a hosted model API, no local model "
                f"({ranked[0].evidence.cite()}{'; ' + why if why else ''})")
    if ranked and ranked[0].launcher not in GPU_ONLY_LAUNCHERS:
        app = _script_signals(ranked[0], signals)
        if app is not None and app.hosted_only:
            # `streamlit run app.py` where app.py only talks to a hosted model: the quick start needs no GPU
            return (f"the README's first command runs {app.file}, which calls a hosted model API and runs no "
                    f"model itself ({ranked[0].evidence.cite()}; {app.hosted[0].cite()})")
    hosted = [s for s in signals if s.weight > 0 and s.hosted]
    if not hosted:
        return ""
    local = [s for s in signals if s.weight > 0 and s.local_model_use]
    launched = [c for c in commands if c.weight > 0 and c.role in ("training", "inference")
                and c.launcher in ("torchrun", "accelerate", "deepspeed", "vllm", "tgi", "sglang", "ollama")]
    if local or launched:
        return ""
    return f"the code calls hosted model APIs only ({hosted[0].hosted[0].cite()}); nothing trains or loads a model"
