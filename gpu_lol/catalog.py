"""The GPU catalog: every card gpu-lol can pick, its memory, price and per-provider names.

The facts live in ``gpu_lol/data/gpus.yaml``; this module loads them once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from gpu_lol.data import load_yaml


@dataclass(frozen=True)
class GPU:
    id: str
    vram_gb: float
    price_hr: float
    compute_capability: str
    providers: dict[str, str] = field(default_factory=dict)
    nvidia_smi: tuple[str, ...] = ()

    def offered_by(self, provider: str) -> bool:
        return provider in self.providers


@functools.lru_cache(maxsize=1)
def all_gpus() -> tuple[GPU, ...]:
    rows = load_yaml("gpus.yaml")
    return tuple(
        GPU(
            id=row["id"],
            vram_gb=float(row["vram_gb"]),
            price_hr=float(row["price_hr"]),
            compute_capability=str(row["compute_capability"]),
            providers=dict(row["providers"]),
            nvidia_smi=tuple(row.get("nvidia_smi", ())),
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
