"""Pick the GPU: the cheapest card and count that hold the work, with headroom.

A card "fits" when the per-GPU need at that count is at most ``HEADROOM`` (90%) of the card's memory:
the remaining 10% covers memory the driver keeps (an 80 GB H100 shows 79.6 GiB; an L4 22.5 of its
24), allocator fragmentation on long runs, and estimate error. Among fitting (card, count) pairs the
cheapest total $/hr wins; on a tie, fewer GPUs, then more memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from gpu_lol.errors import UsageError
from gpu_lol.sizing import catalog

HEADROOM = 0.90
MAX_ALTERNATIVES = 4


@dataclass
class Selection:
    gpu_type: str
    gpu_count: int
    vram_per_gpu_gb: float
    need_per_gpu_gb: float
    price_hr: float
    price_source: str
    providers: list[str]
    warnings: list[str] = field(default_factory=list)
    reason: str = ""
    alternatives: list["Selection"] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.need_per_gpu_gb <= usable_gb(self.vram_per_gpu_gb)

    def label(self) -> str:
        return f"{self.gpu_count}x {self.gpu_type}"

    def to_dict(self, with_alternatives: bool = True) -> dict:
        out = {
            "gpu_type": self.gpu_type, "gpu_count": self.gpu_count,
            "vram_per_gpu_gb": self.vram_per_gpu_gb, "need_per_gpu_gb": self.need_per_gpu_gb,
            "price_hr": self.price_hr, "price_source": self.price_source,
            "providers": list(self.providers), "fits": self.fits, "warnings": list(self.warnings),
            "reason": self.reason,
        }
        if with_alternatives:
            out["alternatives"] = [a.to_dict(with_alternatives=False) for a in self.alternatives]
        return out


def usable_gb(vram_gb: float) -> float:
    return vram_gb * HEADROOM


def price_table(providers: Sequence[str] | None = None) -> tuple[dict[str, float], str]:
    """Cheapest on-demand $/hr for one card of each GPU id on these providers, and the source.

    Reads SkyPilot's cached ``~/.sky/catalogs/v8/<cloud>/vms.csv`` directly (no SkyPilot import)
    when present, else the built-in table; see :func:`gpu_lol.sizing.catalog.price_table`.
    """
    return catalog.price_table(list(providers) if providers else None)


@dataclass
class _Candidate:
    gpu: catalog.GPU
    count: int
    need: float
    price: float
    providers: list[str]
    source: str

    @property
    def fits(self) -> bool:
        return self.need <= usable_gb(self.gpu.vram_gb)

    def sort_key(self):
        return (round(self.price, 2), self.count, -self.gpu.vram_gb, self.gpu.id)


def _money(value: float) -> str:
    return f"${value:,.2f}/hr"


def _gib(value: float) -> str:
    return f"{value:,.1f} GiB"


def _to_selection(c: _Candidate, reason: str = "", warnings: list[str] | None = None) -> Selection:
    return Selection(gpu_type=c.gpu.id, gpu_count=c.count, vram_per_gpu_gb=c.gpu.vram_gb,
                     need_per_gpu_gb=round(c.need, 2), price_hr=round(c.price, 2),
                     price_source=catalog.describe_sources({c.source}), providers=list(c.providers),
                     warnings=list(warnings or []), reason=reason)


class _Needs:
    """Memoized need_for_count; counts the closure rejects (ValueError) are skipped."""

    def __init__(self, fn: Callable[[int], float]):
        self.fn = fn
        self.cache: dict[int, float | None] = {}

    def __call__(self, n: int) -> float | None:
        if n not in self.cache:
            try:
                value = float(self.fn(n))
            except ValueError:
                value = None
            self.cache[n] = max(value, 0.0) if value is not None else None
        return self.cache[n]


def _candidates(needs: _Needs, counts: Sequence[int], providers: list[str],
                offers: list[catalog.Offer], only_gpu: str | None = None) -> list[_Candidate]:
    grouped: dict[tuple[str, int], list[catalog.Offer]] = {}
    for offer in offers:
        grouped.setdefault((offer.gpu_id, offer.count), []).append(offer)
    out = []
    for gpu in catalog.all_gpus():
        if only_gpu and gpu.id != only_gpu:
            continue
        for n in counts:
            group = grouped.get((gpu.id, n))
            if not group:
                continue
            need = needs(n)
            if need is None:
                continue
            best = min(group, key=lambda o: o.price_hr)
            provs = [p for p in providers if any(o.provider == p for o in group)]
            # a provider offering it at the best price goes first only if the caller listed it first
            out.append(_Candidate(gpu, n, need, best.price_hr, provs, best.source))
    return out


def _alternatives(fitting: list[_Candidate], chosen: _Candidate | None) -> list[Selection]:
    seen = {chosen.gpu.id} if chosen else set()
    out = []
    for c in sorted(fitting, key=_Candidate.sort_key):
        if c.gpu.id in seen:
            continue
        seen.add(c.gpu.id)
        out.append(_to_selection(c, reason=f"{c.count}x {c.gpu.id}: {_gib(c.need)} per GPU of "
                                           f"{c.gpu.vram_gb:g} GiB, {_money(c.price)}"))
        if len(out) >= MAX_ALTERNATIVES:
            break
    return out


def _would_fit_text(fitting: list[_Candidate]) -> str:
    if not fitting:
        return "nothing in the catalog fits"
    best = min(fitting, key=_Candidate.sort_key)
    return (f"would fit: {best.count}x {best.gpu.id} ({best.gpu.vram_gb:g} GiB each, "
            f"{_gib(best.need)} per GPU) at {_money(best.price)}")


def choose(need_for_count: Callable[[int], float], *, counts: Sequence[int] = (1, 2, 4, 8),
           shardable: bool = True, gpu_type: str | None = None, gpu_count: int | None = None,
           providers: Sequence[str] | None = None) -> Selection:
    """The cheapest (card, count) whose per-GPU need fits with headroom; see the module doc.

    ``need_for_count(n)`` gives GiB per GPU when the work runs on n GPUs. ``shardable=False``: only
    one GPU (or ``gpu_count``) is considered. A user's ``gpu_type``/``gpu_count`` are kept even when
    they cannot hold the need; the warning then says by how much and what would fit. When nothing
    fits, the largest card is returned with a warning (``Selection.fits`` is False).
    """
    from gpu_lol.spec import PROVIDERS

    provs = list(providers) if providers else list(PROVIDERS)
    unknown = [p for p in provs if p not in PROVIDERS]
    if unknown:
        raise UsageError(f"unknown provider {unknown[0]!r}", f"providers are: {', '.join(PROVIDERS)}")
    if gpu_type is not None and catalog.get_gpu(gpu_type) is None:
        raise UsageError(f"unknown GPU type {gpu_type!r}",
                         f"one of: {', '.join(catalog.gpu_ids())} (see `gpu-lol gpus`)")
    if gpu_count is not None and (not isinstance(gpu_count, int) or gpu_count < 1):
        raise UsageError(f"gpu_count must be a positive integer, got {gpu_count!r}")
    base_counts = sorted({int(n) for n in counts if int(n) >= 1}) or [1]

    needs = _Needs(need_for_count)
    offers = catalog.offers(provs)
    free_counts = base_counts if shardable else [1]
    free = _candidates(needs, free_counts, provs, offers)
    free_fitting = [c for c in free if c.fits]

    if gpu_type is not None and gpu_count is not None:
        return _fixed_both(needs, gpu_type, gpu_count, provs, offers, free_fitting)
    if gpu_type is not None:
        counts_for_type = base_counts if shardable else [1]
        return _fixed_type(needs, gpu_type, counts_for_type, provs, offers, free_fitting, shardable)
    if gpu_count is not None:
        pool = _candidates(needs, [gpu_count], provs, offers)
        return _pick(pool, free_fitting, needs, provs, fixed_count=gpu_count, shardable=shardable)
    return _pick(free, free_fitting, needs, provs, fixed_count=None, shardable=shardable)


def _pick(pool: list[_Candidate], free_fitting: list[_Candidate], needs: _Needs, provs: list[str],
          *, fixed_count: int | None, shardable: bool) -> Selection:
    fitting = [c for c in pool if c.fits]
    if fitting:
        best = min(fitting, key=_Candidate.sort_key)
        single_need = needs(1)
        if best.need <= 0:
            reason = (f"any GPU fits; cheapest is {best.count}x {best.gpu.id} at "
                      f"{_money(best.price)}")
        elif best.count > 1 and fixed_count is None:
            one = min((c for c in fitting if c.count == 1), key=_Candidate.sort_key, default=None)
            whole = _gib(single_need) if single_need is not None else "the work"
            if one is None:
                reason = (f"no single card holds {whole}; {best.count}x {best.gpu.id} split it to "
                          f"{_gib(best.need)} per GPU ({best.gpu.vram_gb:g} GiB each) at "
                          f"{_money(best.price)}")
            else:
                reason = (f"{best.count}x {best.gpu.id} split {whole} to {_gib(best.need)} per GPU "
                          f"({best.gpu.vram_gb:g} GiB each) at {_money(best.price)}, cheaper than "
                          f"1x {one.gpu.id} at {_money(one.price)}")
        else:
            reason = (f"cheapest fit: {best.count}x {best.gpu.id} ({best.gpu.vram_gb:g} GiB"
                      f"{' each' if best.count > 1 else ''}) holds {_gib(best.need)} per GPU with "
                      f"{int(round((1 - HEADROOM) * 100))}% headroom, {_money(best.price)}")
        sel = _to_selection(best, reason=reason)
        sel.alternatives = _alternatives(fitting if fixed_count else free_fitting or fitting, best)
        return sel
    # nothing fits: the largest card (closest to fitting) at the most GPUs considered
    if not pool:
        raise UsageError("no GPU in the catalog is offered by the chosen providers"
                         + (f" in a {fixed_count}-GPU machine" if fixed_count else ""),
                         "allow more providers, or check `gpu-lol gpus`")
    largest = max(pool, key=lambda c: (c.gpu.vram_gb - c.need, -c.price))
    usable = usable_gb(largest.gpu.vram_gb)
    short = largest.need - usable
    if fixed_count:
        where = f"on {fixed_count} GPU{'s' if fixed_count > 1 else ''}"
    elif shardable:
        where = f"even split over {largest.count} GPUs"
    else:
        where = "on one GPU and the work cannot be split across GPUs"
    warning = (f"nothing fits {where}: needs {_gib(largest.need)} per GPU, the largest card "
               f"({largest.gpu.id}, {largest.gpu.vram_gb:g} GiB) holds {_gib(usable)} with headroom "
               f"(short by {_gib(short)})")
    if fixed_count and free_fitting:
        warning += f"; {_would_fit_text(free_fitting)}"
    else:
        warning += ("; try a smaller batch or sequence, gradient checkpointing, LoRA/QLoRA or "
                    "int8/int4 weights" + ("" if shardable else ", or code that shards across GPUs"))
    sel = _to_selection(largest, reason=f"closest: {largest.count}x {largest.gpu.id}, which does not "
                                        "fit", warnings=[warning])
    sel.alternatives = _alternatives(free_fitting, largest)
    return sel


def _fixed_type(needs: _Needs, gpu_type: str, counts: list[int], provs: list[str],
                offers: list[catalog.Offer], free_fitting: list[_Candidate],
                shardable: bool) -> Selection:
    gpu = catalog.get_gpu(gpu_type)
    assert gpu is not None
    pool = _candidates(needs, counts, provs, offers, only_gpu=gpu_type)
    if not pool:
        return _unoffered(needs, gpu, counts[0], provs, free_fitting)
    fitting = [c for c in pool if c.fits]
    if fitting:
        best = min(fitting, key=_Candidate.sort_key)
        reason = (f"{best.count}x {gpu_type} as requested: {_gib(best.need)} per GPU of "
                  f"{gpu.vram_gb:g} GiB")
        if best.count > 1:
            reason += f" (fewer {gpu_type} cards cannot hold it)"
        sel = _to_selection(best, reason=reason)
        sel.alternatives = _alternatives(free_fitting, best)
        return sel
    closest = max(pool, key=lambda c: (c.count, -c.price)) if shardable else pool[0]
    usable = usable_gb(gpu.vram_gb)
    warning = (f"{gpu_type} ({gpu.vram_gb:g} GiB) cannot hold this work"
               f"{' even as ' + str(closest.count) + ' GPUs' if closest.count > 1 else ''}: needs "
               f"{_gib(closest.need)} per GPU, {_gib(usable)} usable (short by "
               f"{_gib(closest.need - usable)}); {_would_fit_text(free_fitting)}")
    sel = _to_selection(closest, reason=f"{closest.count}x {gpu_type} as requested (does not fit)",
                        warnings=[warning])
    sel.alternatives = _alternatives(free_fitting, None)
    return sel


def _fixed_both(needs: _Needs, gpu_type: str, gpu_count: int, provs: list[str],
                offers: list[catalog.Offer], free_fitting: list[_Candidate]) -> Selection:
    gpu = catalog.get_gpu(gpu_type)
    assert gpu is not None
    pool = _candidates(needs, [gpu_count], provs, offers, only_gpu=gpu_type)
    if not pool:
        return _unoffered(needs, gpu, gpu_count, provs, free_fitting)
    c = pool[0]
    warnings = []
    usable = usable_gb(gpu.vram_gb)
    if not c.fits:
        warnings.append(f"{gpu_count}x {gpu_type} ({gpu.vram_gb:g} GiB each) cannot hold this work: "
                        f"needs {_gib(c.need)} per GPU, {_gib(usable)} usable (short by "
                        f"{_gib(c.need - usable)}); {_would_fit_text(free_fitting)}")
        reason = f"{gpu_count}x {gpu_type} as requested (does not fit)"
    else:
        reason = f"{gpu_count}x {gpu_type} as requested: {_gib(c.need)} per GPU of {gpu.vram_gb:g} GiB"
        cheaper = [f for f in free_fitting if f.price < c.price - 0.005]
        if cheaper:
            best = min(cheaper, key=_Candidate.sort_key)
            reason += (f" (cheapest fit would be {best.count}x {best.gpu.id} at "
                       f"{_money(best.price)})")
    sel = _to_selection(c, reason=reason, warnings=warnings)
    sel.alternatives = _alternatives(free_fitting, c)
    return sel


def _unoffered(needs: _Needs, gpu: catalog.GPU, count: int, provs: list[str],
               free_fitting: list[_Candidate]) -> Selection:
    """The user's card is not rentable (at that count) from the chosen providers: keep it, warn."""
    listed = [p for p in provs if p in gpu.providers]
    if not listed:
        elsewhere = ", ".join(gpu.providers) or "no provider"
        problem = f"{gpu.id} is not offered on {', '.join(provs)} (offered on: {elsewhere})"
    else:
        by_provider = catalog.counts_by_provider(gpu.id, listed)
        if by_provider:
            # The card is rentable, only not in this count: a usage error, not a plan that
            # fails at launch ("no capacity") or is priced for a machine nobody rents.
            raise count_error(gpu.id, count, by_provider)
        problem = (f"{gpu.id} is not offered as {count} GPU{'s' if count > 1 else ''} on "
                   f"{', '.join(listed)} (not in the cached SkyPilot catalog)")
    need = needs(count) or 0.0
    price_each = gpu.price_hr
    warnings = [problem + f"; {_would_fit_text(free_fitting)}"]
    usable = usable_gb(gpu.vram_gb)
    if need > usable:
        warnings.append(f"{gpu.id} ({gpu.vram_gb:g} GiB) also cannot hold {_gib(need)} per GPU "
                        f"(short by {_gib(need - usable)})")
    sel = Selection(gpu_type=gpu.id, gpu_count=count, vram_per_gpu_gb=gpu.vram_gb,
                    need_per_gpu_gb=round(need, 2), price_hr=round(price_each * count, 2),
                    price_source=catalog.SOURCE_BUILTIN, providers=[], warnings=warnings,
                    reason=f"{count}x {gpu.id} as requested (not offered by the chosen providers)")
    sel.alternatives = _alternatives(free_fitting, None)
    return sel


def count_error(gpu_id: str, count: int, by_provider: dict[str, list[int]]) -> UsageError:
    """``count`` of ``gpu_id`` is rented by none of these providers: say what each one rents."""
    names = ", ".join(catalog.DISPLAY_NAMES.get(p, p) for p in by_provider)
    return UsageError(f"{count}x {gpu_id} is not rented on {names} (GPU counts offered: "
                      f"{catalog.describe_counts(by_provider)})",
                      "ask for one of those counts (--gpus N, or gpu_count in .gpu-lol.yaml), "
                      "or another --gpu/--cloud (see `gpu-lol gpus`)")


def pick_for(facts, *, method: str = "inference", params_b: float | None = None,
             batch_size: int | None = None, seq_len: int | None = None,
             optimizer: str = "adamw", gradient_checkpointing: bool = False,
             zero_stage: int | None = None, fsdp: bool | None = None,
             tensor_parallel: int | None = None, gpu_type: str | None = None,
             gpu_count: int | None = None, providers: Sequence[str] | None = None,
             shardable: bool = True):
    """Estimate a model's memory and pick GPUs for it: ``(Estimate at the chosen count, Selection)``.

    The multi-GPU strategy is :func:`gpu_lol.sizing.vram.estimator`'s (inference split across GPUs;
    training sharded with FSDP unless ``zero_stage``/``fsdp``/``tensor_parallel`` say otherwise).
    """
    from gpu_lol.sizing import vram

    if gpu_count and tensor_parallel and gpu_count % tensor_parallel:
        raise ValueError(f"tensor parallel {tensor_parallel} must divide the GPU count {gpu_count}")
    at = vram.estimator(facts=facts, params_b=params_b, method=method, batch_size=batch_size,
                        seq_len=seq_len, optimizer=optimizer,
                        gradient_checkpointing=gradient_checkpointing, zero_stage=zero_stage,
                        fsdp=fsdp, tensor_parallel=tensor_parallel)
    at(1)  # bad arguments fail here, as ValueError, before any GPU is considered
    sel = choose(lambda n: at(n).per_gpu_gb, shardable=shardable, gpu_type=gpu_type,
                 gpu_count=gpu_count, providers=providers)
    return at(sel.gpu_count), sel
