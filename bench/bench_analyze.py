#!/usr/bin/env python3
"""Analyzer speed and memory on big trees.

1. A generated repo of 20,000 files (default) with a `.venv` (its own pyvenv.cfg and a
   site-packages full of torch-like modules) and a `node_modules` inside: target <= 1.0 s, and
   nothing from the venv may leak into the requirements.
2. A copy of a big real package tree (default: this venv's site-packages) analyzed as a repo.

Usage: bench/bench_analyze.py [--files N] [--tree DIR] [--runs N]
Each analysis runs in a fresh subprocess (`gpu-lol analyze --json --no-llm`); we report wall
time and peak RSS (ru_maxrss of the child).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_repo(root: Path, n_files: int) -> None:
    """A realistic ML repo shape scaled to ``n_files`` files."""
    (root / "src" / "proj").mkdir(parents=True)
    (root / "requirements.txt").write_text("torch==2.8.0\ntransformers>=4.45\naccelerate\n")
    (root / "train.py").write_text(
        "import torch\nfrom transformers import AutoModelForCausalLM\n"
        "model = AutoModelForCausalLM.from_pretrained('Qwen/Qwen2.5-1.5B')\n"
        "opt = torch.optim.AdamW(model.parameters())\nloss = model(torch.zeros(1,4,dtype=torch.long)).logits.sum()\n"
        "loss.backward()\nopt.step()\n")
    (root / ".gitignore").write_text("data/\n*.ckpt\n")
    venv_site = root / ".venv" / "lib" / "python3.11" / "site-packages"
    venv_site.mkdir(parents=True)
    (root / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    nm = root / "node_modules"
    nm.mkdir()
    data = root / "data"
    data.mkdir()
    budget = n_files - 4
    # 40% in the venv, 25% in node_modules, 10% ignored data, 25% real source
    plan = [(venv_site, int(budget * 0.40), "import leaked_venv_pkg_{i}\nimport vllm\n", ".py"),
            (nm, int(budget * 0.25), "module.exports = {};\n", ".js"),
            (data, int(budget * 0.10), "x,y\n1,2\n", ".csv")]
    used = sum(p[1] for p in plan)
    plan.append((root / "src" / "proj", budget - used, "import numpy\nimport torch\n\ndef f_{i}():\n    return {i}\n", ".py"))
    for base, count, body, suffix in plan:
        per_dir = 200
        for i in range(count):
            d = base / f"d{i // per_dir}"
            if i % per_dir == 0:
                d.mkdir(exist_ok=True)
            (d / f"m{i}{suffix}").write_text(body.replace("{i}", str(i)))


def run_analyze(gpu_lol: str, repo: Path, home: Path) -> tuple[float, float, dict]:
    env = dict(os.environ, GPU_LOL_HOME=str(home), HOME=str(home))
    env.pop("GPU_LOL_LLM_URL", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run([gpu_lol, "analyze", str(repo), "--json", "--no-llm"], capture_output=True, text=True,
                          env=env, check=False)
    wall = time.perf_counter() - start
    rss_mb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    if proc.returncode != 0:
        raise SystemExit(f"analyze failed on {repo}: {proc.stderr.strip()[-400:]}")
    return wall, rss_mb, json.loads(proc.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--tree", type=Path, default=Path(sys.prefix) / "lib" /
                        f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    gpu_lol = shutil.which("gpu-lol", path=str(Path(sys.executable).parent)) or "gpu-lol"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        home = tmp / "home"
        home.mkdir()
        repo = tmp / "generated"
        make_repo(repo, args.files)
        total = sum(len(files) for _, _, files in os.walk(repo))
        times, rss = [], []
        result = {}
        for _ in range(args.runs):
            wall, mb, result = run_analyze(gpu_lol, repo, home)
            times.append(wall)
            rss.append(mb)
        leaked = [r for r in result["requirements"] if "leaked" in r or r.startswith("vllm")]
        print(f"generated repo: {total} files (.venv + node_modules + ignored data inside)")
        print(f"  analyze wall: median {statistics.median(times):.3f} s, min {min(times):.3f}, max {max(times):.3f} "
              f"(n={args.runs}); peak RSS {max(rss):.0f} MB")
        print(f"  requirements: {result['requirements']}; leaked from the venv: {leaked or 'none'}")
        if args.tree.is_dir():
            copy = tmp / "tree"
            shutil.copytree(args.tree, copy, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
            n = sum(len(files) for _, _, files in os.walk(copy))
            size = sum(f.stat().st_size for f in copy.rglob("*") if f.is_file() and not f.is_symlink())
            times = []
            for _ in range(max(1, args.runs // 2)):
                wall, mb, result = run_analyze(gpu_lol, copy, home)
                times.append(wall)
            print(f"real package tree ({args.tree}): {n} files, {size / 2**20:.0f} MB")
            print(f"  analyze wall: median {statistics.median(times):.3f} s (n={len(times)}); peak RSS {mb:.0f} MB; "
                  f"workload {result['workload_type']}, {len(result['requirements'])} requirements")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
