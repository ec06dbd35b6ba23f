#!/usr/bin/env python3
"""Start-up cost of the CLI: `gpu-lol --help` wall time and `import gpu_lol.cli` time.

Usage: bench/bench_startup.py [--runs N]
Prints the median, min and max of N runs for each, next to `sky --help` for scale.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(argv: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        out.append(time.perf_counter() - start)
    return out


def report(label: str, samples: list[float]) -> None:
    print(f"{label:34s} median {statistics.median(samples):6.3f} s   min {min(samples):6.3f}   "
          f"max {max(samples):6.3f}   (n={len(samples)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    gpu_lol = shutil.which("gpu-lol", path=str(bindir)) or "gpu-lol"
    report("gpu-lol --help", timed([gpu_lol, "--help"], args.runs))
    report("python -c 'import gpu_lol.cli'", timed([sys.executable, "-c", "import gpu_lol.cli"], args.runs))
    report("python -c 'pass' (interpreter)", timed([sys.executable, "-c", "pass"], args.runs))
    heavy = subprocess.run([sys.executable, "-c", "import sys, gpu_lol.cli; print(sorted(m for m in "
                            "('sky','openai','httpx','rich','yaml','jsonschema') if m in sys.modules))"],
                           capture_output=True, text=True, check=False).stdout.strip()
    print(f"heavy modules loaded by `import gpu_lol.cli`: {heavy}")
    sky = shutil.which("sky", path=str(bindir))
    if sky:
        report("sky --help (for scale)", timed([sky, "--help"], max(3, args.runs // 5)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
