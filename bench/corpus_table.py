#!/usr/bin/env python3
"""Turn `score_corpus.py --json FILE` results into the Markdown table in docs/benchmarks.md.

Usage: bench/corpus_table.py RESULTS.json
"""

from __future__ import annotations

import json
import sys


def fmt_label(labels: dict) -> str:
    count = labels.get("gpu_count")
    count = "/".join(map(str, count)) if isinstance(count, list) else str(count)
    workload = labels.get("workload")
    workload = "/".join(workload) if isinstance(workload, list) else workload
    if labels.get("max_vram_gb") is None:
        return f"{workload}, 0 GPU"
    return f"{workload}, {count} GPU, {labels['min_vram_gb']}–{labels['max_vram_gb']} GB"


def fmt_output(out: dict | None) -> str:
    if not out:
        return "(no output)"
    if out.get("gpu_count") == 0:
        return f"{out['workload_type']}, 0 GPU"
    return f"{out['workload_type']}, {out['gpu_type']} x{out['gpu_count']}, {out['vram_required_gb']:g} GB"


def main() -> int:
    data = json.load(open(sys.argv[1]))
    s = data["summary"]
    print(f"**All right: {s['all']['right']}/{s['all']['total']}** · workload {s['workload']['right']}/"
          f"{s['workload']['total']} · GPU count {s['gpu_count']['right']}/{s['gpu_count']['total']} · "
          f"GPU {s['gpu']['right']}/{s['gpu']['total']}" + (
              f" · VRAM within 0.8–2.5x of the minimum {s['vram_ratio']['right']}/{s['vram_ratio']['total']}"
              if s.get("vram_ratio") else "") + "\n")
    print("| repo | label (workload, GPUs, VRAM range) | gpu-lol | workload | count | GPU | VRAM 0.8–2.5x |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    mark = {True: "✓", False: "✗", None: "–"}
    for r in data["results"]:
        score = r.get("score") or {}
        print(f"| {r['repo']} | {fmt_label(r['labels'])} | {fmt_output(r.get('output'))} | "
              f"{mark[bool(score.get('workload'))]} | {mark[bool(score.get('gpu_count'))]} | "
              f"{mark[bool(score.get('gpu'))]} | {mark[score.get('vram_ratio')]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
