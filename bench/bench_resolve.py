"""Resolution time for 10 real requirement sets: cold and cached (targets: cached <= 0.1 s,
cold <= 10 s median).

    .venv/bin/python bench/bench_resolve.py [--json]

Needs the package index (PyPI). Each set is resolved the way `gpu-lol up` does
(``gpu_lol.launch.resolve.resolve``: uv, the image's Python, manylinux x86_64, the image's torch held):

cold      a fresh ``GPU_LOL_HOME`` and an empty uv cache: every index page downloaded
uv-warm   a fresh ``GPU_LOL_HOME``, uv's HTTP cache from the cold run (a second repo with
          overlapping packages, or a re-resolve after a week)
cached    the same inputs again: gpu-lol's own result cache (``$GPU_LOL_HOME/cache/resolve``)

The sets are the requirements of well-known repos (as their requirement files state them, at
the time of writing), with the Python and torch of the image gpu-lol picks for them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

T26 = {"torch": "2.6.0", "torchvision": "0.21.0"}
SETS = [
    ("artidoro/qlora", "3.11", T26,
     ["bitsandbytes==0.40.0", "transformers==4.31.0", "peft==0.4.0", "accelerate==0.21.0", "einops==0.6.1",
      "evaluate==0.4.0", "scikit-learn==1.2.2", "sentencepiece==0.1.99", "wandb==0.15.3"]),
    ("tloen/alpaca-lora", "3.10", {},
     ["accelerate", "appdirs", "loralib", "bitsandbytes", "black", "black[jupyter]", "datasets", "fire",
      "peft", "transformers>=4.28.0", "sentencepiece", "gradio"]),
    ("CompVis/stable-diffusion", "3.8", {"torch": "1.11.0", "torchvision": "0.12.0"},
     ["numpy==1.19.2", "albumentations==0.4.3", "opencv-python==4.1.2.30", "imageio==2.9.0",
      "imageio-ffmpeg==0.4.2", "pytorch-lightning==1.4.2", "omegaconf==2.1.1", "streamlit>=0.73.1",
      "einops==0.3.0", "transformers==4.19.2", "torchmetrics==0.6.0", "kornia==0.6"]),
    ("karpathy/nanoGPT", "3.11", T26, ["torch", "numpy", "transformers", "datasets", "tiktoken", "wandb", "tqdm"]),
    ("meta-llama/llama-recipes", "3.11", T26,
     ["torch>=2.2", "accelerate", "appdirs", "loralib", "bitsandbytes", "black", "datasets", "fire", "peft",
      "transformers>=4.45.1", "sentencepiece", "py7zr", "scipy", "optimum", "matplotlib", "gradio"]),
    ("huggingface/diffusers (dreambooth)", "3.11", T26,
     ["accelerate>=0.16.0", "torchvision", "transformers>=4.25.1", "ftfy", "tensorboard", "Jinja2", "peft==0.7.0",
      "diffusers"]),
    ("openai/whisper", "3.11", T26,
     ["numba", "numpy", "torch", "tqdm", "more-itertools", "tiktoken",
      'triton>=2.0.0; platform_machine=="x86_64" and sys_platform=="linux"']),
    ("hiyouga/LLaMA-Factory (core)", "3.11", T26,
     ["transformers>=4.41.2,<=4.46.1", "datasets>=2.16.0,<=3.1.0", "accelerate>=0.34.0,<=1.0.1",
      "peft>=0.11.1,<=0.12.0", "trl>=0.8.6,<=0.9.6", "tokenizers>=0.19.0,<0.20.4", "gradio>=4.0.0,<5.0.0",
      "pandas>=2.0.0", "scipy", "einops", "sentencepiece", "tiktoken", "protobuf", "uvicorn", "pydantic",
      "fastapi", "sse-starlette", "matplotlib>=3.7.0", "fire", "packaging", "pyyaml", "numpy<2.0.0", "av"]),
    ("a FastAPI model server", "3.11", T26,
     ["fastapi", "uvicorn[standard]", "pydantic>=2", "httpx", "transformers", "sentencepiece", "accelerate"]),
    ("a scikit-learn notebook repo (cpu)", "3.11", {},
     ["scikit-learn", "pandas", "matplotlib", "seaborn", "jupyter"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from gpu_lol.launch import resolve

    os.environ["GPU_LOL_RESOLVE"] = "on"
    os.environ.pop("GPU_LOL_FIND_LINKS", None)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-resolve-") as tmp:
        for i, (name, python, provides, reqs) in enumerate(SETS):
            uv_cache = Path(tmp) / f"uv-{i}"
            os.environ["UV_CACHE_DIR"] = str(uv_cache)
            times = {}
            for label, home in (("cold", "cold"), ("uv_warm", "warm"), ("cached", "warm")):
                os.environ["GPU_LOL_HOME"] = str(Path(tmp) / f"home-{i}-{home}")
                resolve._WHEEL_MEMO.clear()
                started = time.perf_counter()
                res = resolve.resolve(reqs, python, provides=provides)
                times[label] = time.perf_counter() - started
                if label == "cached":
                    assert res.cached, name
            rows.append({"set": name, "python": python, "requirements": len(reqs), "status": res.status,
                         "packages": len(res.lock) + len(res.held), **{k: round(v, 4) for k, v in times.items()},
                         "note": res.summary() if res.status != "ok" else ""})
            if not args.json:
                print(f"{name:38} py{python:5} {res.status:9} {rows[-1]['packages']:4} pkgs  "
                      f"cold {times['cold']:6.2f}s  uv-warm {times['uv_warm']:5.2f}s  cached {times['cached']*1000:6.1f}ms",
                      flush=True)
    summary = {k: round(statistics.median(r[k] for r in rows), 4) for k in ("cold", "uv_warm", "cached")}
    summary["cached_max"] = round(max(r["cached"] for r in rows), 4)
    summary["cold_max"] = round(max(r["cold"] for r in rows), 4)
    if args.json:
        print(json.dumps({"rows": rows, "median": summary}, indent=1))
    else:
        print(f"median: cold {summary['cold']:.2f}s (target <= 10 s), uv-warm {summary['uv_warm']:.2f}s, "
              f"cached {summary['cached'] * 1000:.1f}ms (max {summary['cached_max'] * 1000:.1f}ms; target <= 100 ms)")
    ok = summary["cold"] <= 10 and summary["cached_max"] <= 0.1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
