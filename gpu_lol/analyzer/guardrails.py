"""GPU choice and the guardrails every spec passes, whoever proposed it (heuristics, the LLM,
a user's partial .gpu-lol.yaml): a cpu workload has no GPU; a GPU workload gets a card that holds
its per-GPU need (never 177 GB on one 80 GB card); a count that cannot hold the need is widened
only when the work can be sharded, and a user's own choice is kept with a warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from gpu_lol.spec import EnvironmentSpec

# Per-GPU need (GiB, CUDA context included) when no model could be identified.
FALLBACK_NEED_GB = {"training": 16.0, "inference": 12.0, "interactive": 12.0}
MIN_NEED_GB = 4.0


@dataclass
class GpuChoice:
    gpu_type: str | None
    gpu_count: int
    vram_required_gb: float
    price_hr: float | None = None
    providers: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def round_need(gb: float) -> float:
    return round(math.ceil(gb * 10) / 10, 1)


def choose(need_for_count: Callable[[int], float], *, shardable: bool, gpu_type: str | None = None,
           gpu_count: int | None = None, providers: list[str] | None = None) -> GpuChoice:
    from gpu_lol import selection

    sel = selection.choose(need_for_count, shardable=shardable, gpu_type=gpu_type, gpu_count=gpu_count,
                           providers=providers)
    reasons = [sel.reason] if sel.reason else []
    return GpuChoice(sel.gpu_type, sel.gpu_count, round_need(sel.need_per_gpu_gb), sel.price_hr,
                     list(sel.providers), reasons, list(sel.warnings))


def finalize(spec: EnvironmentSpec, *, shardable: bool = True, fixed: frozenset[str] | set[str] = frozenset()
             ) -> tuple[EnvironmentSpec, list[str]]:
    """Make ``spec`` consistent; ``fixed`` names fields a user set (kept, with a warning if unsafe)."""
    from gpu_lol.catalog import get_gpu

    notes: list[str] = []
    if spec.workload_type == "cpu":
        if spec.gpu_type is not None or spec.gpu_count:
            notes.append("cpu workload: no GPU")
        spec.gpu_type, spec.gpu_count, spec.vram_required_gb = None, 0, 0.0
        return spec, notes
    need = max(float(spec.vram_required_gb or 0.0), MIN_NEED_GB)
    count = spec.gpu_count if spec.gpu_count and spec.gpu_count > 0 else 1
    card = get_gpu(spec.gpu_type) if spec.gpu_type else None
    if card is not None and card.vram_gb >= need:
        spec.gpu_count = count
        spec.vram_required_gb = round_need(need)
        return spec, notes
    total = need * count

    def need_for_count(n: int) -> float:
        return total / n if shardable else need

    keep_type = spec.gpu_type if "gpu_type" in fixed else None
    keep_count = spec.gpu_count if "gpu_count" in fixed and spec.gpu_count else None
    if card is not None and not keep_type:
        notes.append(f"{spec.gpu_type} ({card.vram_gb:.0f} GB) cannot hold {need:.1f} GB per GPU; choosing again")
    choice = choose(need_for_count, shardable=shardable, gpu_type=keep_type, gpu_count=keep_count,
                    providers=list(spec.providers))
    spec.gpu_type, spec.gpu_count, spec.vram_required_gb = choice.gpu_type, choice.gpu_count, choice.vram_required_gb
    notes += choice.reasons + choice.warnings
    return spec, notes
