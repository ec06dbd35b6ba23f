"""One GPU verdict per spec: the warnings that each say a card cannot hold the work, and each
propose a fix, become one line with the single fix.

Several stages size the same spec: the analyzer's selection (with the full memory estimate), the
guardrails that check every finished spec (a cruder per-GPU split), the sharding note when the
repo sets no count, and the launch plan's out-of-memory check. On a user's card that is too
small each said so in its own words, with different numbers and different "would fit" fixes
(1x B200 from one, 4x A40 from the other). :func:`merge` keeps the first verdict about the
spec's card (the analyzer's, which has the real estimate), drops the others that repeat it, and
ends it with one instruction in the user's own terms: the flags they passed or the fields of
``.gpu-lol.yaml`` they set. :func:`drop_repeats` does the same for the plan's warnings against
the analysis' (``up`` prints both).

The phrasings matched here are the ones :mod:`gpu_lol.sizing.selection`, ``combine`` and
``launch.build_plan`` write; tests/test_gpu_fix.py produces each through the real code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from gpu_lol.spec import EnvironmentSpec

_GPU = r"[A-Za-z0-9][\w.\-]*"
_NUM = r"[\d.,]+"
# selection: "8x L4 (24 GiB each) cannot hold this work: ..." / "L4 (24 GiB) cannot hold this work
# even as 8 GPUs: ..."; then "; would fit: 4x A40 (48 GiB each, 41.1 GiB per GPU) at $1.60/hr"
VERDICT = re.compile(
    rf"^(?:(?P<count>\d+)x )?(?P<gpu>{_GPU}) \({_NUM} GiB(?: each)?\) cannot hold this work"
    rf"(?: even as (?P<even>\d+) GPUs)?: needs (?P<need>{_NUM}) GiB per GPU.*?"
    rf"(?:; would fit: (?P<fcount>\d+)x (?P<fgpu>{_GPU}) \([^)]*\) at \$[\d.,]+/hr)?$")
# selection: a user's card the chosen providers do not rent (at that count), then maybe a second
# line saying it is too small as well
UNOFFERED = re.compile(
    rf"^(?P<gpu>{_GPU}) is not offered (?:on|as \d+ GPUs? on) [^;]*?"
    rf"(?:; would fit: (?P<fcount>\d+)x (?P<fgpu>{_GPU}) \([^)]*\) at \$[\d.,]+/hr|; nothing in the catalog fits)$")
ALSO = re.compile(rf"^(?P<gpu>{_GPU}) \({_NUM} GiB\) also cannot hold {_NUM} GiB per GPU \(short by {_NUM} GiB\)$")
# the selection's reason for a user's card, which the guardrails pass on as a note
REQUESTED = re.compile(rf"^\d+x (?P<gpu>{_GPU}) as requested \((?:does not fit|not offered by the chosen providers)\)$")
# combine: the count the model needs when the repo sets none (a sharding caveat)
SHARD = re.compile(r"^the repo sets no GPU count, but (?P<count>\d+) GPUs are needed to hold the model")
# launch.build_plan's check of the final spec
OOM = re.compile(rf"^needs {_NUM} GB per GPU but (?P<gpu>{_GPU}) has {_NUM} GB: it will likely run out of memory")
SHARD_CAVEAT = ("the code must shard across them: vLLM tensor_parallel_size, device_map='auto', "
                "DeepSpeed/FSDP")


@dataclass
class Fix:
    """The plan the fix proposes: ``count`` x ``gpu`` with ``need_gb`` per GPU (GiB)."""

    gpu: str
    count: int
    need_gb: float | None = None
    price_hr: float | None = None
    must_shard: bool = False  # more than one GPU, and the repo sets no count: the code must shard
    # pinning this plan (gpu_type + gpu_count) passes the checks too; False: only leaving the card
    # and count to gpu-lol gets it (a pinned count is sized as the launcher's, unsharded)
    pin_ok: bool = True

    def would_fit(self) -> str:
        from gpu_lol.sizing.catalog import get_gpu

        card = get_gpu(self.gpu)
        each = f"{card.vram_gb:g} GiB each" if card is not None else ""
        per = f"{self.need_gb:,.1f} GiB per GPU" if self.need_gb is not None else ""
        inner = ", ".join(x for x in (each, per) if x)
        price = f" at ${self.price_hr:,.2f}/hr" if self.price_hr is not None else ""
        return f"would fit: {self.count}x {self.gpu}" + (f" ({inner})" if inner else "") + price


def _fix_text(fix: Fix, pinned: Mapping[str, str], cfg_name: str) -> str:
    """The one instruction that gets the proposed plan, in the terms the user pinned the card in
    (``pinned``: field -> "flag" or "file")."""
    shard = f" ({SHARD_CAVEAT})" if fix.count > 1 and fix.must_shard else ""
    flags = [f for f, how in pinned.items() if how == "flag" and f in ("gpu_type", "gpu_count")]
    in_file = [f for f, how in pinned.items() if how == "file" and f in ("gpu_type", "gpu_count")]
    if in_file and not flags:
        if not fix.pin_ok:
            return f"; fix: delete {' and '.join(in_file)} in {cfg_name} to let gpu-lol choose that plan{shard}"
        return (f"; fix: set gpu_type: {fix.gpu} and gpu_count: {fix.count} in {cfg_name}, or delete "
                f"{' and '.join(in_file)} there to let gpu-lol choose{shard}")
    if not fix.pin_ok:
        gone = " and ".join({"gpu_type": "--gpu", "gpu_count": "--gpus"}[f] for f in flags) or "--gpu/--gpus"
        return f"; fix: leave out {gone} to let gpu-lol choose that plan{shard}"
    return f"; fix: --gpu {fix.gpu} --gpus {fix.count}{shard}"


def pinned_card_verdict(warnings: list[str], spec: EnvironmentSpec) -> bool:
    """Whether a warning says the spec's own card cannot hold the work (or is not rented)."""
    return bool(spec.gpu_type) and any((m := _verdict(w)) and m["gpu"] == spec.gpu_type for w in warnings)


def merge(warnings: list[str], spec: EnvironmentSpec, *, pinned: Mapping[str, str] | None = None,
          cfg_name: str = ".gpu-lol.yaml", fix: Fix | None = None) -> list[str]:
    """``warnings`` with every verdict about the spec's card folded into the first one, which
    gets the fix. Warnings about anything else keep their order.

    ``fix``: the plan the caller checked (the analyzer sizes the repo again with the pinned card
    and count left open, a plan every check accepts); it replaces the verdict's own "would fit",
    which one estimator made and another may reject. Without it, that "would fit" is the fix."""
    pinned = dict(pinned or {})
    gpu = spec.gpu_type
    if not gpu:
        return list(warnings)
    verdicts = [i for i, w in enumerate(warnings) if (m := _verdict(w)) and m["gpu"] == gpu]
    if not verdicts:
        return list(warnings)
    must_shard = any(SHARD.match(w) for w in warnings)
    out: list[str] = []
    for i, line in enumerate(warnings):
        if i == verdicts[0]:
            m = _verdict(line)
            nxt = warnings[i + 1] if i + 1 < len(warnings) else ""
            if UNOFFERED.match(line) and (also := ALSO.match(nxt)) and also["gpu"] == gpu:
                # "not offered" and "also too small" are one verdict: one line
                head, sep, tail = line.partition("; would fit: ")
                line = f"{head}; {nxt}{sep}{tail}" if sep else f"{line}; {nxt}"
            if fix is None and m["fcount"]:
                fix = Fix(m["fgpu"], int(m["fcount"]), must_shard=must_shard)
            elif fix is not None:
                line = re.sub(r"(?:; )?would fit: \d+x \S+ \([^)]*\) at \$[\d.,]+/hr", "", line)
                line = line.replace("; nothing in the catalog fits", "") + "; " + fix.would_fit()
            out.append(line + _fix_text(fix, pinned, cfg_name) if fix is not None else line)
            continue
        if i in verdicts:
            continue  # the same card, said again with a cruder estimate
        m = REQUESTED.match(line) or OOM.match(line) or ALSO.match(line)
        if m and m["gpu"] == gpu:
            continue
        if SHARD.match(line):
            continue  # the fix says how many GPUs, and that the code must shard
        out.append(line)
    return out


def _verdict(line: str) -> re.Match | None:
    return VERDICT.match(line) or UNOFFERED.match(line)


def drop_repeats(plan_warnings: list[str], analysis_warnings: list[str], spec: EnvironmentSpec) -> list[str]:
    """The plan's warnings less its out-of-memory line when the analysis already gave the verdict
    (with its fix) for the same card."""
    gpu = spec.gpu_type
    told = gpu and any((m := _verdict(w)) and m["gpu"] == gpu for w in analysis_warnings)
    if not told:
        return list(plan_warnings)
    return [w for w in plan_warnings if not ((m := OOM.match(w)) and m["gpu"] == gpu)]
