"""Facts from YAML/JSON configs: DeepSpeed and accelerate configs, training recipes (axolotl,
LLaMA-Factory, alignment-handbook, torchtune, TRL…), docker-compose and local HF ``config.json``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from gpu_lol.analyzer import locations
from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.analyzer.python_signals import looks_like_model_id
from gpu_lol.analyzer.values import as_int, truthy as _truthy
from gpu_lol.repo_index import FileIndex, RepoFile

MAX_CONFIG_BYTES = 256 * 1024
MAX_CONFIG_FILES = 2500

MODEL_KEYS = frozenset({
    "model_name_or_path", "base_model", "model_name", "model_id", "pretrained_model_name_or_path",
    "pretrained_model", "model_path", "hf_model", "base_model_name_or_path", "policy_model", "model_repo",
    "pretrained_model_path", "model_checkpoint", "actor_model_name_or_path", "hf_model_id",
})
BATCH_KEYS = frozenset({"micro_batch_size", "per_device_train_batch_size", "train_micro_batch_size_per_gpu",
                        "batch_size", "train_batch_size", "per_gpu_train_batch_size"})
SEQ_KEYS = frozenset({"sequence_len", "max_seq_length", "cutoff_len", "max_length", "block_size", "seq_len",
                      "max_seq_len", "model_max_length", "max_model_len", "max_position_embeddings_train",
                      "context_length", "max_len"})
COUNT_KEYS = frozenset({"tensor_parallel_size", "tensor_model_parallel_size", "tp_size", "num_gpus", "n_gpus",
                        "gpus", "nproc_per_node", "num_processes", "gpus_per_node", "n_gpu", "ngpus"})
TRAIN_KEYS = frozenset({"learning_rate", "num_train_epochs", "num_epochs", "max_steps", "warmup_steps",
                        "warmup_ratio", "lr_scheduler_type", "gradient_accumulation_steps", "optimizer",
                        "weight_decay", "epochs", "lr", "train_steps", "max_iters"})


@dataclass
class ConfigFacts:
    file: str
    kind: str = "other"  # deepspeed | accelerate | recipe | hf_model | other
    model_ids: list[tuple[str, Evidence, float]] = field(default_factory=list)
    zero_stage: tuple[int, Evidence] | None = None
    offload: Evidence | None = None
    fsdp: Evidence | None = None
    counts: list[tuple[int, Evidence]] = field(default_factory=list)
    adapter: tuple[str, Evidence] | None = None  # ("lora" | "qlora" | "full", ev)
    quant4: Evidence | None = None
    quant8: Evidence | None = None
    batch: list[tuple[int, Evidence]] = field(default_factory=list)
    seq: list[tuple[int, Evidence]] = field(default_factory=list)
    grad_ckpt: Evidence | None = None
    fused_loss: Evidence | None = None  # Liger/fused cross-entropy: logits never materialized
    training_keys: int = 0
    hf_config: dict | None = None
    deepspeed_ref: str | None = None
    inference_ref: Evidence | None = None


def _walk(data: Any, path: tuple = ()) -> Iterator[tuple[tuple, str, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            key_s = str(key)
            yield path, key_s, value
            yield from _walk(value, path + (key_s,))
    elif isinstance(data, list):
        for item in data[:200]:
            yield from _walk(item, path)


def _line_of(lines: list[str], key: str, value: Any = None) -> int | None:
    key_re = re.compile(r'(^|[\s{,"\'])' + re.escape(key) + r'["\']?\s*[:=]')
    first = None
    for i, line in enumerate(lines, 1):
        if key_re.search(line):
            if value is None or str(value) in line:
                return i
            first = first or i
    return first






def read_config(rel: str, text: str) -> ConfigFacts | None:
    data: Any
    try:
        if rel.endswith(".json"):
            data = json.loads(text)
        else:
            from gpu_lol.safe_yaml import load as safe_load

            data = safe_load(text)  # refuses aliases: a billion-laughs config says nothing
    except Exception:  # noqa: BLE001 - malformed configs are common; they say nothing
        return None
    if not isinstance(data, dict):
        return None
    lines = text.splitlines()
    facts = ConfigFacts(file=rel)

    def ev(key: str, value: Any = None) -> Evidence:
        line = _line_of(lines, key, value if isinstance(value, (str, int)) else None)
        snippet = lines[line - 1].strip() if line else f"{key}: {value}"
        return Evidence(rel, line, snippet)

    keys = {k for _, k, _ in _walk(data)}
    if "zero_optimization" in keys:
        facts.kind = "deepspeed"
    elif "compute_environment" in keys or "distributed_type" in keys:
        facts.kind = "accelerate"
    elif ("architectures" in keys or "model_type" in keys) and (
            "hidden_size" in keys or "n_embd" in keys or "d_model" in keys) and rel.endswith("config.json"):
        facts.kind = "hf_model"
        facts.hf_config = data
        return facts
    for path, key, value in _walk(data):
        lkey = key.lower()
        parent = path[-1].lower() if path else ""
        if lkey in MODEL_KEYS or (lkey in ("model", "name", "path", "pretrained", "_component_", "checkpoint")
                                 and (parent in ("model", "policy", "actor", "base_model") or lkey == "model")):
            explicit = lkey in MODEL_KEYS or lkey == "_component_"
            if isinstance(value, str) and looks_like_model_id(value) and (explicit or "/" in value):
                strength = 0.9 if explicit or parent == "model" else 0.6
                facts.model_ids.append((value, ev(key, value), strength))
        if lkey == "stage" and parent == "zero_optimization":
            n = as_int(value)
            if n is not None:
                facts.zero_stage = (n, ev(key, value))
        elif lkey == "zero_stage":
            n = as_int(value)
            if n is not None:
                facts.zero_stage = (n, ev(key, value))
        elif lkey in ("offload_optimizer", "offload_param", "offload_optimizer_device", "offload_param_device"):
            device = value.get("device") if isinstance(value, dict) else value
            if isinstance(device, str) and device.lower() in ("cpu", "nvme"):
                facts.offload = ev(key)
        elif lkey in ("fsdp", "fsdp_config") and value and value not in ("", "no", False):
            facts.fsdp = ev(key)
        elif lkey == "distributed_type" and str(value).upper() == "FSDP":
            facts.fsdp = ev(key, value)
        elif lkey in COUNT_KEYS:
            n = as_int(value)
            if n and 1 <= n <= 64:
                facts.counts.append((n, ev(key, value)))
        elif lkey == "adapter" and isinstance(value, str) and value.lower() in ("lora", "qlora"):
            facts.adapter = (value.lower(), ev(key, value))
        elif lkey == "finetuning_type" and isinstance(value, str):
            kind = value.lower()
            facts.adapter = ("lora" if kind in ("lora", "oft") else "full", ev(key, value))
        elif lkey in ("use_peft", "use_lora", "lora_enable") and _truthy(value):
            facts.adapter = facts.adapter or ("lora", ev(key, value))
        elif lkey in ("lora_r", "lora_rank", "lora_alpha") and as_int(value) and parent not in ("zero_optimization",):
            facts.adapter = facts.adapter or ("lora", ev(key, value))
        elif lkey in ("load_in_4bit", "use_4bit", "use_qlora", "q_lora") and _truthy(value):
            facts.quant4 = ev(key, value)
        elif lkey == "load_in_8bit" and _truthy(value):
            facts.quant8 = ev(key, value)
        elif lkey == "quantization_bit" and as_int(value) in (4, 8):
            if as_int(value) == 4:
                facts.quant4 = ev(key, value)
            else:
                facts.quant8 = ev(key, value)
        elif lkey in BATCH_KEYS:
            n = as_int(value)
            if n and n <= 4096:
                facts.batch.append((n, ev(key, value)))
        elif lkey in SEQ_KEYS:
            n = as_int(value)
            if n and 64 <= n <= 1_048_576:
                facts.seq.append((n, ev(key, value)))
        elif lkey in ("gradient_checkpointing", "activation_checkpointing", "enable_activation_checkpointing") \
                and _truthy(value):
            facts.grad_ckpt = ev(key, value)
        elif lkey in ("use_liger_kernel", "use_liger", "liger_kernel", "use_cut_cross_entropy") and _truthy(value):
            facts.fused_loss = ev(key, value)
        elif lkey == "deepspeed" and isinstance(value, str) and value.endswith(".json"):
            facts.deepspeed_ref = value
        if lkey in TRAIN_KEYS:
            facts.training_keys += 1
    if facts.kind == "other" and (facts.model_ids or facts.adapter) and facts.training_keys >= 2:
        facts.kind = "recipe"
    if facts.adapter and facts.adapter[0] == "lora" and facts.quant4:
        facts.adapter = ("qlora", facts.adapter[1])
    if not (facts.model_ids or facts.zero_stage or facts.counts or facts.adapter or facts.quant4 or facts.quant8
            or facts.fsdp or facts.kind != "other"):
        return None
    return facts


def collect(index: FileIndex) -> dict[str, ConfigFacts]:
    """Config facts by file, for YAML/JSON files that carry any."""
    out: dict[str, ConfigFacts] = {}
    count = 0
    for f in index.files:
        if f.suffix not in (".yaml", ".yml", ".json") or f.size > MAX_CONFIG_BYTES:
            continue
        if f.name in ("package.json", "package-lock.json", "tsconfig.json", ".pre-commit-config.yaml",
                      "mkdocs.yml", "environment.yml", "environment.yaml", "codecov.yml", "pnpm-lock.yaml",
                      "tokenizer.json", "tokenizer_config.json", "vocab.json", "special_tokens_map.json"):
            continue
        if locations.weight(f.rel) == 0.0 and f.name != "config.json":
            continue
        count += 1
        if count > MAX_CONFIG_FILES:
            break
        text = index.text(f)
        if not text:
            continue
        facts = read_config(f.rel, text)
        if facts is not None:
            out[f.rel] = facts
    return out


def resolve_ref(index: FileIndex, ref: str, relative_to: RepoFile | str | None = None) -> str | None:
    """Repo-relative path of a config reference from a command (tried as given, then relative)."""
    ref = ref.strip().strip("'\"")
    if ref.startswith("./"):
        ref = ref[2:]
    if index.has(ref):
        return ref
    if relative_to is not None:
        base = relative_to.parent if isinstance(relative_to, RepoFile) else relative_to.rsplit("/", 1)[0] \
            if "/" in relative_to else ""
        candidate = f"{base}/{ref}" if base else ref
        if index.has(candidate):
            return candidate
    tail = "/" + ref.split("/", 1)[-1] if "/" in ref else "/" + ref
    matches = [f.rel for f in index.files if f.rel.endswith(tail) or f.rel == ref.split("/")[-1]]
    return matches[0] if len(matches) == 1 else None
