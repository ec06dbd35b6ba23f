"""The GPU catalog: every card gpu-lol can pick, its memory, price and per-provider names.

The facts live in ``gpu_lol/data/gpus.yaml``; this module loads them once. Prices come from
SkyPilot's cached catalog CSVs (``~/.sky/catalogs/v8/<cloud>/vms.csv``) when they are present, read
directly with the csv module (importing SkyPilot would cost seconds), else from the built-in table.
"""

from __future__ import annotations

import csv
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from gpu_lol.data import load_yaml

CATALOG_VERSION = "v8"
DEFAULT_COUNTS = (1, 2, 4, 8)
# gpu-lol provider -> SkyPilot's catalog directory for that cloud
SKY_CLOUD_DIRS = {"runpod": "runpod", "vast": "vast", "lambda": "lambda"}
SOURCE_SKY = "skypilot-catalog"
SOURCE_BUILTIN = "built-in table"
# Vast names that SkyPilot's catalog fetcher merges over cards of different memory: it strips
# PCIE/SXM4/SXM/NVL from Vast's own names (sky/catalog/data_fetchers/fetch_vast.py), so a launch
# asking Vast for "A100" may land on a 40 GB A100 PCIe as well as an 80 GB SXM4. gpu-lol never
# maps a card to one of these names: asking for A100-80GB must not get a 40 GB card.
VAST_AMBIGUOUS = {
    "A100": "Vast lists the 40 GB A100 PCIe and the 80 GB A100 PCIe/SXM4 under one name",
}
DISPLAY_NAMES = {"runpod": "RunPod", "vast": "Vast", "lambda": "Lambda"}


@dataclass(frozen=True)
class GPU:
    id: str
    vram_gb: float
    price_hr: float
    compute_capability: str
    providers: dict[str, str] = field(default_factory=dict)
    nvidia_smi: tuple[str, ...] = ()
    # built-in on-demand prices: provider -> {count: total $/hr}
    prices: dict[str, dict[int, float]] = field(default_factory=dict)

    def offered_by(self, provider: str) -> bool:
        return provider in self.providers


def _parse_prices(gpu_id: str, raw: dict | None, providers: dict[str, str],
                  fallback: float) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    raw = raw or {}
    for provider in providers:
        value = raw.get(provider, fallback)
        if isinstance(value, dict):
            out[provider] = {int(k): float(v) for k, v in value.items()}
        else:
            out[provider] = {n: round(float(value) * n, 4) for n in DEFAULT_COUNTS}
    unknown = set(raw) - set(providers)
    if unknown:
        raise ValueError(f"gpus.yaml: {gpu_id}: prices for providers it does not list: {sorted(unknown)}")
    return out


@functools.lru_cache(maxsize=1)
def all_gpus() -> tuple[GPU, ...]:
    rows = load_yaml("gpus.yaml")
    for row in rows:
        vast = (row.get("providers") or {}).get("vast")
        if vast in VAST_AMBIGUOUS:
            raise ValueError(f"gpus.yaml: {row['id']}: Vast's {vast!r} is ambiguous "
                             f"({VAST_AMBIGUOUS[vast]}); leave Vast out for this card")
    return tuple(
        GPU(
            id=row["id"],
            vram_gb=float(row["vram_gb"]),
            price_hr=float(row["price_hr"]),
            compute_capability=str(row["compute_capability"]),
            providers=dict(row["providers"]),
            nvidia_smi=tuple(row.get("nvidia_smi", ())),
            prices=_parse_prices(row["id"], row.get("prices"), dict(row["providers"]),
                                 float(row["price_hr"])),
        )
        for row in rows
    )


def gpu_ids() -> list[str]:
    return [g.id for g in all_gpus()]


def get_gpu(gpu_id: str) -> GPU | None:
    for gpu in all_gpus():
        if gpu.id == gpu_id:
            return gpu
    return None


def provider_name(gpu_id: str, provider: str) -> str | None:
    """SkyPilot's accelerator name for this card on this provider (None if not offered there)."""
    gpu = get_gpu(gpu_id)
    if gpu is None:
        return None
    return gpu.providers.get(provider)


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", name.lower())


def match_gpu_id(text: str) -> str | None:
    """The catalog id a user probably means: ``h100``, ``rtx-4090``, ``4090``, ``a6000``,
    ``NVIDIA GeForce RTX 4090`` -> the id; None when nothing (or more than one id) fits."""
    wanted = _squash(text or "")
    if not wanted:
        return None
    ids = gpu_ids()
    exact = [i for i in ids if _squash(i) == wanted]
    if len(exact) == 1:
        return exact[0]
    found = gpu_for_nvidia_smi_name(text)
    if found is not None:
        return found.id
    # "4090" -> RTX4090, "a6000" -> RTXA6000: the id is the input behind a vendor word only
    tail = [i for i in ids if _squash(i).endswith(wanted) and any(c.isdigit() for c in wanted)
            and _squash(i)[: -len(wanted)].isalpha()]
    return tail[0] if len(tail) == 1 else None


def gpu_for_nvidia_smi_name(name: str) -> GPU | None:
    """The catalog card for a name nvidia-smi prints ("NVIDIA H100 80GB HBM3" -> H100-SXM)."""
    if not name or not name.strip():
        return None
    wanted = _squash(name)
    for gpu in all_gpus():
        if any(_squash(n) == wanted for n in gpu.nvidia_smi):
            return gpu
    # Variants nvidia-smi prints that the table does not list verbatim.
    text = name.lower()
    text = text.replace("nvidia", "").replace("geforce", "").strip()
    flat = _squash(text)
    rules: list[tuple[bool, str]] = [
        ("b200" in flat, "B200"),
        ("h200" in flat, "H200"),
        ("h100" in flat and "nvl" in flat, "H100-NVL"),
        ("h100" in flat and "pcie" in flat, "H100"),
        ("h100" in flat and ("sxm" in flat or "hbm3" in flat), "H100-SXM"),
        ("a100" in flat and "80gb" in flat and "sxm" in flat, "A100-80GB-SXM"),
        ("a100" in flat and "80gb" in flat, "A100-80GB"),
        ("a100" in flat and "40gb" in flat, "A100"),
        (flat in ("rtxa6000", "a6000"), "RTXA6000"),
        ("rtx6000ada" in flat, "RTX6000-Ada"),
        (flat == "l40s", "L40S"),
        (flat == "l4", "L4"),
        (flat == "a40", "A40"),
        (flat == "rtx3090", "RTX3090"),
        (flat == "rtx4090", "RTX4090"),
        (flat == "rtx5090", "RTX5090"),
    ]
    for matched, gpu_id in rules:
        if matched:
            return get_gpu(gpu_id)
    return None


# ------------------------------------------------------------------------------ prices
def sky_catalog_dir() -> Path:
    """Where SkyPilot caches its catalogs (``~/.sky/catalogs/v8``; honours SKY_RUNTIME_DIR)."""
    root = os.environ.get("SKY_RUNTIME_DIR") or "~"
    return Path(root).expanduser() / ".sky" / "catalogs" / CATALOG_VERSION


def _display(path: Path) -> str:
    home = str(Path.home())
    text = str(path)
    if home and home != "/" and text.startswith(home + os.sep):
        return "~" + text[len(home):]
    return text


def sky_source_label() -> str:
    return f"{SOURCE_SKY} ({_display(sky_catalog_dir())})"


@functools.lru_cache(maxsize=32)
def _read_vms_cached(path: str, mtime_ns: int, size: int, column: str = "Price"
                     ) -> dict[tuple[str, int], float] | None:
    del mtime_ns, size  # cache key only
    out: dict[tuple[str, int], float] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = set(reader.fieldnames or ())
        if not {"AcceleratorName", "AcceleratorCount", "Price"} <= fields:
            return None  # not a catalog we understand: fall back to the built-in table
        for row in reader:
            name = (row.get("AcceleratorName") or "").strip()
            if not name:
                continue
            try:
                count = int(float(row.get("AcceleratorCount") or "0"))
                price = float(row.get(column) or "")
            except ValueError:
                continue
            if count < 1 or price <= 0:
                continue
            key = (name, count)
            if key not in out or price < out[key]:
                out[key] = price
    return out


def read_sky_prices(provider: str, spot: bool = False) -> dict[tuple[str, int], float] | None:
    """{(SkyPilot accelerator name, count): cheapest on-demand $/hr} from SkyPilot's cached
    ``vms.csv`` for this provider, or None when no readable catalog is cached (missing file, or
    without the AcceleratorName/AcceleratorCount/Price columns).

    Only AcceleratorName, AcceleratorCount and Price are read: the columns sit in a different order
    for each cloud, and GpuInfo's memory is not trusted (RunPod writes ``SizeInMiB: 80`` for an
    80 GB card); memory comes from gpus.yaml.
    """
    cloud = SKY_CLOUD_DIRS.get(provider)
    if cloud is None:
        return None
    path = sky_catalog_dir() / cloud / "vms.csv"
    try:
        st = path.stat()
    except OSError:
        return None
    try:
        return _read_vms_cached(str(path), st.st_mtime_ns, st.st_size, "SpotPrice" if spot else "Price")
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


@dataclass(frozen=True)
class Offer:
    """One way to rent ``count`` of a card on one provider."""

    gpu_id: str
    provider: str
    count: int
    price_hr: float  # total for all ``count`` cards
    source: str      # SOURCE_SKY or SOURCE_BUILTIN


def offers(providers: list[str] | tuple[str, ...] | None = None, *, spot: bool = False) -> list[Offer]:
    """Every (card, provider, count) that can be rented, with its on-demand price.

    Where SkyPilot's catalog for a provider is cached, it is the truth for that provider (SkyPilot
    launches only what its catalog lists); otherwise the built-in table is used.
    """
    from gpu_lol.spec import PROVIDERS

    wanted = list(providers) if providers else list(PROVIDERS)
    # spot: SkyPilot's SpotPrice column; the built-in table has on-demand prices only, so a
    # provider without a cached catalog offers no spot price (see launch: "spot price unknown")
    sky = {p: read_sky_prices(p, spot=spot) for p in wanted}
    out: list[Offer] = []
    for gpu in all_gpus():
        for provider in wanted:
            sky_name = gpu.providers.get(provider)
            if sky_name is None:
                continue
            table = sky[provider]
            if table is not None:
                for (name, count), price in table.items():
                    if name == sky_name:
                        out.append(Offer(gpu.id, provider, count, price, SOURCE_SKY))
            elif not spot:
                for count, price in gpu.prices.get(provider, {}).items():
                    out.append(Offer(gpu.id, provider, count, price, SOURCE_BUILTIN))
    return out


def counts_by_provider(gpu_id: str, providers: list[str] | tuple[str, ...] | None = None
                       ) -> dict[str, list[int]]:
    """{provider: the GPU counts it rents this card in}, from the same source as the prices
    (SkyPilot's cached catalog where present, else the built-in table); providers that do not
    list the card are left out."""
    out: dict[str, set[int]] = {}
    for offer in offers(providers):
        if offer.gpu_id == gpu_id:
            out.setdefault(offer.provider, set()).add(offer.count)
    wanted = list(providers) if providers else list(out)
    return {p: sorted(out[p]) for p in wanted if p in out}


def describe_counts(counts: dict[str, list[int]]) -> str:
    """"RunPod 1, 2, 4 or 8; Lambda 8" for messages."""
    def one(numbers: list[int]) -> str:
        text = [str(n) for n in numbers]
        return text[0] if len(text) == 1 else ", ".join(text[:-1]) + " or " + text[-1]

    return "; ".join(f"{DISPLAY_NAMES.get(p, p)} {one(n)}" for p, n in counts.items() if n)


def describe_sources(sources: set[str] | list[str]) -> str:
    kinds = set(sources)
    parts = []
    if SOURCE_SKY in kinds:
        parts.append(sky_source_label())
    if SOURCE_BUILTIN in kinds or not parts:
        parts.append(SOURCE_BUILTIN)
    return " + ".join(parts)


def price_table(providers: list[str] | tuple[str, ...] | None = None) -> tuple[dict[str, float], str]:
    """Cheapest on-demand $/hr for one card of each GPU id offered by ``providers``, and the source.

    The per-card price is the cheapest over providers and instance sizes (an 8-card instance counts
    as its price / 8). The source is ``"skypilot-catalog (~/.sky/catalogs/v8)"``, ``"built-in
    table"``, or both joined by `` + `` when only some providers have a cached catalog.
    """
    prices: dict[str, float] = {}
    sources: set[str] = set()
    for offer in offers(providers):
        per_card = offer.price_hr / offer.count
        if offer.gpu_id not in prices or per_card < prices[offer.gpu_id] - 1e-9:
            prices[offer.gpu_id] = round(per_card, 4)
        sources.add(offer.source)
    return prices, describe_sources(sources)


def catalog_rows(providers: list[str] | tuple[str, ...] | None = None,
                 min_vram: float | None = None) -> list[dict]:
    """The catalog as plain rows for `gpu-lol gpus`: one per card, cheapest first within memory."""
    from gpu_lol.spec import PROVIDERS

    wanted = list(providers) if providers else list(PROVIDERS)
    by_gpu: dict[str, list[Offer]] = {}
    for offer in offers(wanted):
        by_gpu.setdefault(offer.gpu_id, []).append(offer)
    rows = []
    for gpu in all_gpus():
        if min_vram is not None and gpu.vram_gb < min_vram:
            continue
        names = {p: gpu.providers[p] for p in wanted if p in gpu.providers}
        if not names:
            continue
        gpu_offers = by_gpu.get(gpu.id, [])
        offered = [p for p in wanted if any(o.provider == p for o in gpu_offers)]
        per_card = min((o.price_hr / o.count for o in gpu_offers), default=None)
        counts = sorted({o.count for o in gpu_offers})
        sources = {o.source for o in gpu_offers}
        rows.append({
            "id": gpu.id,
            "vram_gb": gpu.vram_gb,
            "price_hr": round(per_card, 4) if per_card is not None else None,
            "providers": offered,
            "provider_names": {p: names[p] for p in offered},
            "counts": counts,
            "counts_by_provider": {p: sorted({o.count for o in gpu_offers if o.provider == p})
                                   for p in offered},
            "price_source": describe_sources(sources) if sources else None,
            "not_offered": [p for p in names if p not in offered],
            "compute_capability": gpu.compute_capability,
        })
    rows.sort(key=lambda r: (r["vram_gb"], r["price_hr"] if r["price_hr"] is not None else 1e9))
    return rows


# ------------------------------------------------------------------------------ CPU machines
# A cpu workload gets a CPU instance, never a GPU box: SkyPilot picks the cheapest instance that
# meets cpus/memory among all rows of a cloud's catalog (sky/catalog/common.py:
# get_instance_type_for_cpus_mem_impl), GPU ones included (Vast and Lambda would launch an
# RTX3090 or an A10), so gpu-lol pins a CPU-only instance type per cloud. Vast rents GPU
# machines only. RunPod's CPU pods hold at most 10 GB of container disk per vCPU (SkyPilot PR
# #6450). Used when no SkyPilot catalog is cached: the CPU rows of the v8 snapshot.
CPU_MIN_VCPUS = 2
CPU_MIN_MEMORY_GB = 4
RUNPOD_CPU_DISK_GB_PER_VCPU = 10
BUILTIN_CPU_INSTANCES = {
    "runpod": [("cpu3c-2-4", 2.0, 4.0, 0.08)],
    "lambda": [("cpu_4x_general", 4.0, 16.0, 0.20)],
}


@dataclass(frozen=True)
class CpuInstance:
    provider: str
    instance_type: str
    vcpus: float
    memory_gb: float
    price_hr: float
    source: str

    @property
    def max_disk_gb(self) -> int | None:
        if self.provider == "runpod":
            return int(self.vcpus * RUNPOD_CPU_DISK_GB_PER_VCPU)
        return None

    def label(self) -> str:
        return f"{self.instance_type} ({self.vcpus:g} vCPU, {self.memory_gb:g} GB)"


@functools.lru_cache(maxsize=32)
def _read_cpu_rows(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, float, float, float], ...] | None:
    del mtime_ns, size  # cache key only
    out: dict[str, tuple[str, float, float, float]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not {"InstanceType", "AcceleratorName", "vCPUs", "MemoryGiB", "Price"} <= set(reader.fieldnames or ()):
            return None
        for row in reader:
            if (row.get("AcceleratorName") or "").strip():
                continue  # a GPU instance
            try:
                item = (row["InstanceType"].strip(), float(row["vCPUs"]), float(row["MemoryGiB"]),
                        float(row["Price"]))
            except (TypeError, ValueError):
                continue
            if item[0] and item[3] > 0 and (item[0] not in out or item[3] < out[item[0]][3]):
                out[item[0]] = item
    return tuple(out.values())


def cpu_instances(provider: str) -> list[CpuInstance]:
    """The CPU-only instances a cloud rents (cached catalog, else the snapshot's), cheapest first."""
    cloud = SKY_CLOUD_DIRS.get(provider)
    rows = None
    source = SOURCE_SKY
    if cloud is not None:
        path = sky_catalog_dir() / cloud / "vms.csv"
        try:
            st = path.stat()
            rows = _read_cpu_rows(str(path), st.st_mtime_ns, st.st_size)
        except (OSError, UnicodeDecodeError, csv.Error):
            rows = None
    if rows is None:
        rows, source = tuple(BUILTIN_CPU_INSTANCES.get(provider, ())), SOURCE_BUILTIN
    found = [CpuInstance(provider, name, vcpus, mem, price, source) for name, vcpus, mem, price in rows]
    return sorted(found, key=lambda i: (i.price_hr, i.vcpus, i.instance_type))


def cpu_instance_for(provider: str, cpus: float = CPU_MIN_VCPUS,
                     memory_gb: float = CPU_MIN_MEMORY_GB) -> CpuInstance | None:
    """The cheapest CPU-only instance with at least these vCPUs and memory, or None."""
    for inst in cpu_instances(provider):
        if inst.vcpus >= cpus and inst.memory_gb >= memory_gb:
            return inst
    return None
