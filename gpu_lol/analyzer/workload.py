"""Training, inference, interactive or cpu: decided from what the repo runs, not from path
substrings.

Evidence, weighted by where it sits (root and scripts count fully, examples less, tests and docs
not at all): launch commands (``torchrun``/``accelerate launch``/``deepspeed``, ``vllm serve``,
``python train.py`` with whole-word script names), training calls (``loss.backward()``,
``optimizer.step()``, ``Trainer``/``SFTTrainer``/``GRPOTrainer``, ``trainer.train()``), inference
calls (``LLM(...)``, ``pipeline(...)``, ``.generate(...)``), serving apps, and training recipes.
Precedence: no GPU framework → cpu; a notebook-centric repo with no documented launch → interactive;
else training when its evidence is at least 60% of inference's; else inference; else interactive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.analyzer.launch_commands import Command, role_of_script
from gpu_lol.analyzer.python_signals import FileSignals

TRAINING_SHARE = 0.6


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
           py_file_count: int) -> WorkloadDecision:
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
    notebook_centric = bool(notebooks) and len(notebooks) >= max(1, py_file_count) and not documented
    if not needs_gpu:
        return WorkloadDecision("cpu", scores, evidence, "no GPU framework (torch, tensorflow, jax, vllm, …) is "
                                "declared or imported", notebook_centric)
    if notebook_centric:
        add("interactive", 2.0 + len(notebooks) * 0.5, Evidence(notebooks[0].file))
        return WorkloadDecision("interactive", scores, evidence,
                                f"notebook-centric: {len(notebooks)} notebooks, {py_file_count} Python entry files",
                                True)
    train, infer = scores["training"], scores["inference"]
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
