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
# the selection's reason for a user's card, which the guardrails pass on as a note
REQUESTED = re.compile(rf"^\d+x (?P<gpu>{_GPU}) as requested \(does not fit\)$")
# combine: the count the model needs when the repo sets none (a sharding caveat)
SHARD = re.compile(r"^the repo sets no GPU count, but (?P<count>\d+) GPUs are needed to hold the model")
# launch.build_plan's check of the final spec
OOM = re.compile(rf"^needs {_NUM} GB per GPU but (?P<gpu>{_GPU}) has {_NUM} GB: it will likely run out of memory")
SHARD_CAVEAT = ("the code must shard across them: vLLM tensor_parallel_size, device_map='auto', "
                "DeepSpeed/FSDP")


def _fix(match: re.Match, pinned: Mapping[str, str], cfg_name: str, must_shard: bool) -> str:
    """The one instruction that gets the proposed plan, in the terms the user pinned the card in
    (``pinned``: field -> "flag" or "file"); ``must_shard``: the repo sets no count (the sharding
    note was folded in), so more than one GPU needs code that shards."""
    gpu, count = match["fgpu"], int(match["fcount"])
    shard = f" ({SHARD_CAVEAT})" if count > 1 and must_shard else ""
    flags = [f for f, how in pinned.items() if how == "flag" and f in ("gpu_type", "gpu_count")]
    in_file = [f for f, how in pinned.items() if how == "file" and f in ("gpu_type", "gpu_count")]
    if flags:
        return f"; fix: --gpu {gpu} --gpus {count}{shard}"
    if in_file:
        return (f"; fix: set gpu_type: {gpu} and gpu_count: {count} in {cfg_name}, or delete "
                f"{' and '.join(in_file)} there to let gpu-lol choose{shard}")
    return f"; fix: --gpu {gpu} --gpus {count}{shard}"


def merge(warnings: list[str], spec: EnvironmentSpec, *, pinned: Mapping[str, str] | None = None,
          cfg_name: str = ".gpu-lol.yaml") -> list[str]:
    """``warnings`` with every verdict about the spec's card folded into the first one, which
    gets the fix. Warnings about anything else keep their order."""
    pinned = dict(pinned or {})
    gpu = spec.gpu_type
    if not gpu:
        return list(warnings)
    verdicts = [i for i, w in enumerate(warnings) if (m := VERDICT.match(w)) and m["gpu"] == gpu]
    if not verdicts:
        return list(warnings)
    must_shard = any(SHARD.match(w) for w in warnings)
    out: list[str] = []
    for i, line in enumerate(warnings):
        if i == verdicts[0]:
            m = VERDICT.match(line)
            out.append(line + _fix(m, pinned, cfg_name, must_shard) if m["fcount"] else line)
            continue
        if i in verdicts:
            continue  # the same card, said again with a cruder estimate
        m = REQUESTED.match(line) or OOM.match(line)
        if m and m["gpu"] == gpu:
            continue
        if SHARD.match(line):
            continue  # the fix says how many GPUs, and that the code must shard
        out.append(line)
    return out


def drop_repeats(plan_warnings: list[str], analysis_warnings: list[str], spec: EnvironmentSpec) -> list[str]:
    """The plan's warnings less its out-of-memory line when the analysis already gave the verdict
    (with its fix) for the same card."""
    gpu = spec.gpu_type
    told = gpu and any((m := VERDICT.match(w)) and m["gpu"] == gpu for w in analysis_warnings)
    if not told:
        return list(plan_warnings)
    return [w for w in plan_warnings if not ((m := OOM.match(w)) and m["gpu"] == gpu)]
