"""Cost of the analysis on the largest hostile trees: wall time and peak RSS of
`gpu-lol analyze --no-llm --json` (a fresh process each, so the RSS is the command's own).

    .venv/bin/python bench/bench_hostile.py            # all cases
    .venv/bin/python bench/bench_hostile.py 100k-files # one

Targets (issue 16): <= 5 s and <= 300 MB on a 100 000-file tree. The trees are built in a
temporary directory (the 100k tree takes a while to write on a slow disk; its build time is
printed apart from the analysis time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def many_files(repo: Path, count: int = 100_000) -> None:
    (repo / "train.py").write_text("import torch\nfrom transformers import AutoModel\n")
    for i in range(count):
        if i % 1000 == 0:
            directory = repo / f"pkg{i // 1000}"
            directory.mkdir()
        (directory / f"mod{i}.py").write_text(f"import numpy\nVALUE = {i}\n")


def sparse_files(repo: Path) -> None:
    (repo / "train.py").write_text("import torch\n")
    for name, size in (("requirements.txt", 8 << 30), ("weights.py", 4 << 30), ("data.ipynb", 2 << 30)):
        with open(repo / name, "wb") as fh:
            fh.truncate(size)


def real_notebook(repo: Path, mb: int = 500) -> None:
    (repo / "train.py").write_text("import torch\n")
    chunk = json.dumps({"cell_type": "code", "source": ["import torch\n"], "metadata": {},
                        "outputs": [{"output_type": "stream", "name": "stdout", "text": ["y" * 1_000_000]}]})
    with open(repo / "big.ipynb", "w") as fh:
        fh.write('{"nbformat": 4, "metadata": {}, "cells": [')
        for i in range(mb):
            fh.write(("," if i else "") + chunk)
        fh.write("]}")


def deep_tree(repo: Path, depth: int = 1000) -> None:
    (repo / "train.py").write_text("import torch\n")
    path = str(repo)
    for _ in range(depth):
        path += "/d"
        os.mkdir(path)
    Path(path, "x.py").write_text("import jax\n")


def big_gitignore(repo: Path) -> None:
    many_files(repo, 10_000)
    (repo / ".gitignore").write_text("\n".join(f"generated{i}/**/*.tmp" for i in range(100_000)) + "\n")


CASES = {"100k-files": many_files, "sparse-14GB": sparse_files, "notebook-500MB": real_notebook,
         "deep-1000": deep_tree, "gitignore-100k-lines-10k-files": big_gitignore}


def measure(name: str) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-hostile-{name}-") as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        started = time.perf_counter()
        CASES[name](repo)
        built = time.perf_counter() - started
        env = dict(os.environ, GPU_LOL_HOME=str(Path(tmp) / "home"), HOME=str(Path(tmp) / "home"))
        env.pop("GPU_LOL_LLM_URL", None)
        # A wrapper process per case: its RUSAGE_CHILDREN peak is this one analysis alone.
        probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
                 "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
                 "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
                 "p.returncode); sys.stderr.write(p.stderr)")
        proc = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "gpu_lol", "analyze",
                               "--no-llm", "--json", str(repo)],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
        wall_s, peak_kb, code = proc.stdout.split()
        wall, peak = float(wall_s), int(peak_kb)
        proc.returncode = int(code)
        subprocess.run(["rm", "-rf", str(repo)], check=False)
    return {"case": name, "build_s": round(built, 1), "analyze_s": round(wall, 2),
            "peak_rss_mb": round(peak / 1024, 1), "exit": proc.returncode,
            "stderr": proc.stderr.strip().splitlines()[-1:] if proc.returncode else []}


def main(argv: list[str]) -> int:
    names = argv or list(CASES)
    print(f"{'case':34} {'build s':>8} {'analyze s':>10} {'peak RSS MB':>12} exit")
    for name in names:
        row = measure(name)
        print(f"{row['case']:34} {row['build_s']:>8} {row['analyze_s']:>10} {row['peak_rss_mb']:>12} "
              f"{row['exit']} {' '.join(row['stderr'])}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
