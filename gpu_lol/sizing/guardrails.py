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
    fits: bool = True  # the per-GPU need fits the card with headroom


def round_need(gb: float) -> float:
    return round(math.ceil(gb * 10) / 10, 1)


def choose(need_for_count: Callable[[int], float], *, shardable: bool, gpu_type: str | None = None,
           gpu_count: int | None = None, providers: list[str] | None = None) -> GpuChoice:
    from gpu_lol.sizing import selection

    sel = selection.choose(need_for_count, shardable=shardable, gpu_type=gpu_type, gpu_count=gpu_count,
                           providers=providers)
    reasons = [sel.reason] if sel.reason else []
    return GpuChoice(sel.gpu_type, sel.gpu_count, round_need(sel.need_per_gpu_gb), sel.price_hr,
                     list(sel.providers), reasons, list(sel.warnings), fits=sel.fits)


COUNTS = (1, 2, 4, 8)


def choose_fitting(need_for_count: Callable[[int], float], *, shardable: bool, repo_count: int | None = None,
                   gpu_type: str | None = None, providers: list[str] | None = None,
                   shard: Callable[[], None] | None = None) -> tuple[GpuChoice, list[str]]:
    """A plan whose per-GPU need fits its card: the smallest GPU count that holds the need (cheapest card
    at that count), or, when the code shards and the repo sets no count, the cheapest fitting plan.

    ``repo_count``: the count the repo's launcher asks for; kept when it fits, else the smallest larger
    count that does (the estimate at that count is the launcher's: DDP replicates, FSDP/ZeRO-3 and
    tensor parallel split). When nothing fits unsharded, ``shard()`` switches the estimate to a sharded
    strategy (tensor parallel for inference, FSDP for training) and the count is chosen again; the
    returned notes say so. A plan whose per-GPU need exceeds its card is returned only when no count
    in the catalog holds it (``fits`` False)."""
    from gpu_lol.errors import UsageError

    notes: list[str] = []

    def at(n: int | None) -> GpuChoice | None:
        try:
            return choose(need_for_count, shardable=True, gpu_type=gpu_type, gpu_count=n, providers=providers)
        except UsageError:
            return None  # no machine of that many GPUs is offered

    if shardable and not repo_count:
        # the code shards and sets no count: the cheapest (card, count) that holds it
        pick = at(None)
        if pick is not None and pick.fits:
            return pick, notes
    start = repo_count or 1
    counts = [n for n in COUNTS if n >= start] if (shardable or repo_count) else [1]
    if repo_count and repo_count not in counts:
        counts = [repo_count] + counts
    first: GpuChoice | None = None
    for n in counts:
        pick = at(n)
        if pick is None:
            continue
        first = first or pick
        if pick.fits:
            if repo_count and n != repo_count:
                notes.append(f"the repo's {repo_count} GPU(s) cannot hold {first.vram_required_gb:g} GB per GPU; "
                             f"planning {n} GPUs, the smallest count that fits")
            return pick, notes
        if not shardable and not repo_count:
            break
    if shard is not None:
        shard()
        for n in [c for c in COUNTS if c >= max(2, start)]:
            pick = at(n)
            if pick is not None and pick.fits:
                notes.append(f"no single GPU holds it unsharded; {n} GPUs with the work sharded across them "
                             "(the code must shard: vLLM tensor_parallel_size, device_map='auto', FSDP or ZeRO-3)")
                return pick, notes
    # nothing in the catalog holds it: the closest plan, flagged
    last = at(COUNTS[-1])
    if first is None and last is None:
        return choose(need_for_count, shardable=shardable, gpu_type=gpu_type, gpu_count=repo_count,
                      providers=providers), notes  # raises the selection's own error
    if first is None or (last is not None and last.vram_required_gb < first.vram_required_gb):
        return last, notes
    return first, notes


def finalize(spec: EnvironmentSpec, *, shardable: bool = True, fixed: frozenset[str] | set[str] = frozenset()
             ) -> tuple[EnvironmentSpec, list[str]]:
    """Make ``spec`` consistent; ``fixed`` names fields a user set (kept, with a warning if unsafe)."""
    from gpu_lol.sizing.catalog import get_gpu

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
