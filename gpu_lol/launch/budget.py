"""What a launch may cost: ``max_price_per_hour`` and the low-confidence check of ``up``.

* ``max_price_per_hour`` (a repo's ``.gpu-lol.yaml``, else the user's setting or
  ``GPU_LOL_MAX_PRICE_PER_HOUR``): a plan above it is refused (exit 1), naming the cheapest
  alternative that holds the same need and any of the analysis' other paths under the limit.
* When the analysis' overall confidence is low and the plan costs more than
  :data:`LOW_CONFIDENCE_BUDGET` per hour, ``up`` says so in the plan and asks even with ``-y``,
  unless ``--yes-expensive`` is given or ``max_price_per_hour`` allows that price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# A modest hourly budget: above it, a plan the analysis is unsure of is confirmed by a person.
LOW_CONFIDENCE_BUDGET = 2.00


@dataclass
class Gate:
    limit: float | None = None
    limit_source: str = ""
    refusal: str | None = None  # the plan is above the limit: the message
    hint: str = ""
    ask: str | None = None  # ask a person even with -y: why
    lines: list[str] = field(default_factory=list)  # shown with the plan


def price_limit(spec) -> tuple[float | None, str]:
    """The limit in effect and where it comes from (the repo's file first, then the user's setting)."""
    if getattr(spec, "max_price_per_hour", None):
        return float(spec.max_price_per_hour), ".gpu-lol.yaml max_price_per_hour"
    from gpu_lol.config import user_config

    setting = user_config.effective("max_price_per_hour")
    if setting.value is not None:
        where = setting.source if setting.source.startswith("env") else "setting max_price_per_hour"
        return float(setting.value), where
    return None, ""


def cheapest_alternative(spec) -> tuple[str, float] | None:
    """The cheapest (card, count) that holds the spec's per-GPU need at its GPU count."""
    from gpu_lol.errors import UsageError
    from gpu_lol.sizing import selection

    if spec.is_cpu:
        return None
    need = float(spec.vram_required_gb or 0.0)
    try:
        sel = selection.choose(lambda n: need, providers=list(spec.providers), gpu_count=spec.gpu_count)
    except UsageError:
        return None
    if not sel.fits:
        return None
    return f"{sel.gpu_count}x {sel.gpu_type}", float(sel.price_hr)


def check(plan, analysis: Any = None, *, yes_expensive: bool = False) -> Gate:
    """The price gate for ``plan`` (a :class:`gpu_lol.launch.Plan`); ``analysis`` gives confidence
    and alternative paths when the plan comes from the analyzer."""
    spec = plan.spec
    gate = Gate()
    gate.limit, gate.limit_source = price_limit(spec)
    cost = plan.cost_per_hour
    if cost is None:
        return gate
    if gate.limit is not None and cost > gate.limit + 1e-9:
        gate.refusal = (f"the plan costs ${cost:.2f}/hr, above max_price_per_hour ${gate.limit:.2f} "
                        f"({gate.limit_source})")
        options = []
        alt = cheapest_alternative(spec)
        if alt is not None and alt[1] < cost - 0.005:
            options.append(f"the cheapest GPUs that hold {spec.vram_required_gb:g} GB per GPU: {alt[0]} at "
                           f"${alt[1]:.2f}/hr (--gpu/--gpus)")
        for p in getattr(analysis, "paths", None) or []:
            price = p.get("price_hr")
            if not p.get("chosen") and (p.get("workload_type") == "cpu" or (price is not None and price <= gate.limit)):
                gpu = "no GPU" if not p.get("gpu_count") else f"{p['gpu_count']}x {p['gpu_type']} at ${price:.2f}/hr"
                options.append(f"path {p['index']} ({p.get('command') or p['workload_type']}): {gpu} (--path {p['index']})")
                break
        gate.hint = ("cheapest alternative: " + "; ".join(options)) if options else (
            "nothing cheaper holds this work; raise max_price_per_hour or choose a smaller model/method in .gpu-lol.yaml")
        return gate
    confidence = None
    if analysis is not None and getattr(analysis, "confidence", None):
        confidence = analysis.confidence.get("overall")
    if confidence == "low" and cost > LOW_CONFIDENCE_BUDGET:
        weak = ", ".join(k for k, v in analysis.confidence.items() if k != "overall" and v == "low")
        gate.lines.append(f"low confidence in this analysis ({weak or 'overall'}) and the plan costs ${cost:.2f}/hr "
                          f"(over ${LOW_CONFIDENCE_BUDGET:.2f}/hr): check `gpu-lol analyze` before launching")
        allowed = gate.limit is not None and cost <= gate.limit
        if not yes_expensive and not allowed:
            gate.ask = gate.lines[-1]
    return gate
