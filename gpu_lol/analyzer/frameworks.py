"""Which GPU frameworks the repo really uses: the difference between a GPU and a cpu workload.

A framework counts when the repo declares it as a runtime requirement or imports it in code
that is not a test or a doc. Optional extras, dev groups and tests do not make a repo need a GPU.
A torch pinned to PyTorch's CPU wheel index is a CPU torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.requirements_text import name_of

# PyPI name (canonical) -> framework family. Each needs (or is built for) a CUDA GPU.
GPU_PACKAGES = {
    "torch": "torch", "torchvision": "torch", "torchaudio": "torch", "pytorch-lightning": "torch",
    "lightning": "torch", "tensorflow": "tensorflow", "tensorflow-gpu": "tensorflow", "tf-nightly": "tensorflow",
    "tf-keras": "tensorflow", "jax": "jax", "jaxlib": "jax", "flax": "jax", "cupy": "cupy", "cupy-cuda12x": "cupy",
    "cupy-cuda11x": "cupy", "cudf-cu12": "rapids", "cuml-cu12": "rapids", "vllm": "torch", "xformers": "torch",
    "flash-attn": "torch", "bitsandbytes": "torch", "deepspeed": "torch", "triton": "torch",
    "transformers": "torch", "diffusers": "torch", "accelerate": "torch", "peft": "torch", "trl": "torch",
    "ultralytics": "torch", "sentence-transformers": "torch", "timm": "torch", "mmcv": "torch", "mmdet": "torch",
    "mmengine": "torch", "detectron2": "torch", "onnxruntime-gpu": "onnx", "tensorrt": "tensorrt",
    "paddlepaddle-gpu": "paddle", "mxnet-cu112": "mxnet", "openai-whisper": "torch", "faster-whisper": "ctranslate2",
    "ctranslate2": "ctranslate2", "auto-gptq": "torch", "autoawq": "torch", "optimum": "torch",
    "unsloth": "torch", "axolotl": "torch", "llamafactory": "torch", "torchtune": "torch", "litgpt": "torch",
    "sglang": "torch", "nemo-toolkit": "torch", "fairseq": "torch", "fastai": "torch", "torch-geometric": "torch",
    "dgl": "torch", "stable-baselines3": "torch", "open-clip-torch": "torch", "segment-anything": "torch",
    "keras": "keras", "torchmetrics": "torch", "verl": "torch", "open-r1": "torch",
    "llama-cpp-python": "llama_cpp", "exllamav2": "torch", "mamba-ssm": "torch", "apex": "torch",
    "liger-kernel": "torch", "torchao": "torch", "lm-eval": "torch", "nanotron": "torch", "megatron-core": "torch",
}
# Top-level import name -> family.
GPU_IMPORTS = {
    "torch": "torch", "torchvision": "torch", "torchaudio": "torch", "lightning": "torch",
    "pytorch_lightning": "torch", "tensorflow": "tensorflow", "jax": "jax", "flax": "jax", "cupy": "cupy",
    "cudf": "rapids", "cuml": "rapids", "vllm": "torch", "xformers": "torch", "flash_attn": "torch",
    "bitsandbytes": "torch", "deepspeed": "torch", "triton": "torch", "transformers": "torch", "diffusers": "torch",
    "accelerate": "torch", "peft": "torch", "trl": "torch", "ultralytics": "torch", "sentence_transformers": "torch",
    "timm": "torch", "mmcv": "torch", "mmdet": "torch", "detectron2": "torch", "tensorrt": "tensorrt",
    "paddle": "paddle", "mxnet": "mxnet", "whisper": "torch", "faster_whisper": "ctranslate2",
    "ctranslate2": "ctranslate2", "auto_gptq": "torch", "awq": "torch", "unsloth": "torch", "sglang": "torch",
    "fastai": "torch", "torch_geometric": "torch", "dgl": "torch", "stable_baselines3": "torch",
    "open_clip": "torch", "segment_anything": "torch", "keras": "keras", "nemo": "torch", "fairseq": "torch",
    "llama_cpp": "llama_cpp", "verl": "torch", "torchtune": "torch", "litgpt": "torch", "mamba_ssm": "torch",
}
# Families that can run on a CPU as well; alone they do not make a GPU workload.
CPU_CAPABLE = frozenset({"llama_cpp", "onnx", "ctranslate2"})


@dataclass
class Frameworks:
    families: dict[str, list[Evidence]] = field(default_factory=dict)
    cpu_torch: Evidence | None = None

    @property
    def needs_gpu(self) -> bool:
        return any(f not in CPU_CAPABLE for f in self.families)

    def has(self, family: str) -> bool:
        return family in self.families

    def summary(self) -> str:
        return ", ".join(sorted(self.families))


# Launchers that only run on GPUs (a README whose command is `vllm serve …` needs a GPU even
# when the repo declares no packages).
GPU_LAUNCHERS = {"vllm": "torch", "tgi": "torch", "sglang": "torch", "torchrun": "torch", "deepspeed": "torch",
                 "accelerate": "torch", "axolotl": "torch", "llamafactory": "torch", "torchtune": "torch",
                 "litgpt": "torch"}


def detect(requirements: list, imports: dict[str, list[Evidence]], index_urls: list,
           file_frameworks: dict[str, list[Evidence]], commands: list = ()) -> Frameworks:
    """``requirements``: DeclaredRequirement list; ``imports``: module -> evidence (non-test code);
    ``file_frameworks``: import name -> evidence from the Python signal scan; ``commands``: launch
    commands (GPU-only launchers count)."""
    found = Frameworks()
    for cmd in commands:
        family = GPU_LAUNCHERS.get(cmd.launcher)
        if family and cmd.weight > 0:
            found.families.setdefault(family, []).append(cmd.evidence)
    for req in requirements:
        name = name_of(req.text)
        family = GPU_PACKAGES.get(name or "")
        if family:
            found.families.setdefault(family, []).append(req.evidence)
    for module, evs in list(imports.items()) + list(file_frameworks.items()):
        family = GPU_IMPORTS.get(module)
        if family and evs:
            found.families.setdefault(family, []).extend(evs[:2])
    cpu_index = [ev for _, url, ev in index_urls if "download.pytorch.org/whl/cpu" in url]
    cuda_index = [url for _, url, _ in index_urls if re.search(r"download\.pytorch\.org/whl/(cu|rocm|nightly/cu)", url)]
    if cpu_index and not cuda_index:
        found.cpu_torch = cpu_index[0]
    if found.cpu_torch is not None and set(found.families) <= {"torch"} | CPU_CAPABLE:
        # torch from the CPU wheel index and nothing else that needs CUDA
        gpu_only = [r for r in requirements if name_of(r.text) in ("vllm", "flash-attn", "bitsandbytes", "xformers",
                                                                     "deepspeed", "triton")]
        if not gpu_only:
            found.families.pop("torch", None)
    return found
