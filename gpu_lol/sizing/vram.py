"""How much GPU memory a workload needs, term by term (pure functions, no I/O).

The model adds what PyTorch actually keeps on the card: weights, gradients, optimizer states, LoRA
adapters, activations (including the logits, which dominate for small models with large
vocabularies), the KV cache, allocator/framework overhead and the CUDA context. Its constants are
calibrated against peaks measured on an H100 (``../shared/vram/h100-measured.jsonl``): the estimate
is never below the measured reserved peak plus the CUDA context and stays within about 1.5x of it.
See ``docs/vram.md`` for the derivation and the table of estimate vs measured.

All figures are GiB (2^30 bytes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from gpu_lol.sizing.models import ModelFacts, typical_shapes
from gpu_lol.spec import METHODS

GIB = float(1 << 30)

# --- calibrated constants (docs/vram.md explains each) ---------------------------------------
CUDA_CONTEXT_GB = 0.5          # CUDA context + kernels, counted by nvidia-smi, not by torch
OVERHEAD_BASE_GB = 0.5         # allocator reservation, cuBLAS workspaces, framework buffers
OVERHEAD_FRACTION = 0.06       # allocator fragmentation grows with what is allocated
ACT_BYTES_PER_HIDDEN = 24      # training: bytes kept per token per layer per hidden unit
ACT_BYTES_PER_MLP = 6          # training: bytes kept per token per layer per MLP unit
LOGITS_TRAIN_BYTES = 16        # bf16 logits + fp32 upcast + log-softmax + their gradients
LOGITS_INFER_BYTES = 4         # fp32 logits for the prompt during prefill
KV_BYTES = 2                   # bf16/fp16 KV cache
LORA_RANK = 16                 # LoRA rank assumed, on q/k/v/o projections
INT4_BYTES = 0.5 + 4 / 64      # NF4/GPTQ/AWQ: 4 bits + an fp32 absmax per 64-value block
INT8_BYTES = 1.0
GC_ACTIVATION_FACTOR = 0.35    # non-transformer models with gradient checkpointing

TRAINING_METHODS = ("full", "lora", "qlora")

# batch, tokens per sample when the caller does not know them, per kind and phase
DEFAULTS: dict[str, dict[str, tuple[int, int]]] = {
    "llm": {"inference": (1, 4096), "training": (4, 512)},
    "multimodal": {"inference": (1, 4096), "training": (4, 512)},
    "encoder": {"inference": (32, 512), "training": (32, 256)},
    "embedding": {"inference": (32, 512), "training": (32, 256)},
    "seq2seq": {"inference": (1, 512), "training": (8, 512)},
    "speech": {"inference": (1, 448), "training": (8, 448)},
    "vision": {"inference": (32, 0), "training": (32, 0)},
    "detection": {"inference": (1, 0), "training": (16, 0)},
    "diffusion": {"inference": (1, 0), "training": (1, 0)},
}

OPTIMIZER_BYTES = {"adamw": 8.0, "adamw-8bit": 2.0, "sgd": 4.0, "lion": 4.0, "adafactor": 1.0,
                   "none": 0.0}
_OPTIMIZER_ALIASES = {
    "adam": "adamw", "adamw": "adamw", "adamw-torch": "adamw", "adamw-torch-fused": "adamw",
    "adamw-hf": "adamw", "adamw-apex-fused": "adamw", "paged-adamw-32bit": "adamw",
    "fused-adam": "adamw", "adamw-8bit": "adamw-8bit", "adam-8bit": "adamw-8bit",
    "adam8bit": "adamw-8bit", "adamw8bit": "adamw-8bit", "paged-adamw-8bit": "adamw-8bit",
    "adamw-bnb-8bit": "adamw-8bit", "8bit": "adamw-8bit", "bnb-8bit": "adamw-8bit",
    "sgd": "sgd", "lion": "lion", "lion-8bit": "adamw-8bit", "adafactor": "adafactor",
    "none": "none",
}


@dataclass
class Estimate:
    per_gpu_gb: float
    total_gb: float
    gpu_count: int
    params_b: float
    method: str
    breakdown: dict[str, float] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"per_gpu_gb": self.per_gpu_gb, "total_gb": self.total_gb,
                "gpu_count": self.gpu_count, "params_b": self.params_b, "method": self.method,
                "breakdown": dict(self.breakdown), "assumptions": list(self.assumptions)}


def normalize_optimizer(name: str | None) -> str:
    key = (name or "adamw").strip().lower().replace("_", "-")
    if key not in _OPTIMIZER_ALIASES:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZER_BYTES)}")
    return _OPTIMIZER_ALIASES[key]


def is_training(method: str) -> bool:
    return method in TRAINING_METHODS


def _gb(n_bytes: float) -> float:
    return n_bytes / GIB


def _fmt_tokens(n: int) -> str:
    return f"{n:,}"


@dataclass
class _Model:
    params: float                 # total parameters (count)
    kind: str
    shapes: dict
    transformer: bool
    guessed: bool
    active: float | None


def _model(params_b: float | None, facts: ModelFacts | None) -> _Model:
    kind = facts.kind if facts else "llm"
    total_b = params_b if params_b is not None else (facts.params_b if facts else None)
    if total_b is None:
        raise ValueError("estimate() needs params_b or facts")
    if not (isinstance(total_b, (int, float)) and math.isfinite(total_b) and total_b > 0):
        raise ValueError(f"parameter count must be a positive number of billions, got {total_b!r}")
    shapes = dict(facts.shapes) if facts and facts.shapes else {}
    transformer_kinds = ("llm", "multimodal", "encoder", "embedding", "seq2seq", "speech")
    guessed = False
    if "hidden" not in shapes and (kind in transformer_kinds):
        guessed_shapes = typical_shapes(total_b, kind)
        guessed_shapes.update(shapes)
        shapes = guessed_shapes
        guessed = True
    transformer = "hidden" in shapes and "layers" in shapes
    active = facts.active_params_b if facts else None
    return _Model(params=total_b * 1e9, kind=kind, shapes=shapes, transformer=transformer,
                  guessed=guessed, active=active)


def _embedding_params(m: _Model) -> float:
    s = m.shapes
    if not m.transformer or not s.get("vocab"):
        return 0.0
    return float(s["vocab"]) * s["hidden"] * (1 if s.get("tied", False) else 2)


def _layer_params(m: _Model) -> float:
    s = m.shapes
    if not m.transformer:
        return m.params
    layers = s["layers"] + s.get("enc_layers", 0)
    return max(m.params - _embedding_params(m), 0.0) / max(layers, 1)


def _lora_params(m: _Model) -> float:
    """Trainable LoRA parameters: rank 16 on q, k, v, o of every attention layer."""
    s = m.shapes
    if not m.transformer:
        return 0.01 * m.params  # adapters on a UNet/CNN's attention and conv layers: ~1%
    h, heads = s["hidden"], s["heads"]
    hd = s.get("head_dim") or h // heads
    q_out = heads * hd
    kv_out = (s.get("kv_heads") or heads) * hd
    per_layer = LORA_RANK * ((h + q_out) + 2 * (h + kv_out) + (q_out + h))
    return float(per_layer) * (s["layers"] + s.get("enc_layers", 0))


def _weight_bytes(m: _Model, method: str, base_bits: int | None = None) -> tuple[float, str]:
    emb = _embedding_params(m)
    rest = max(m.params - emb, 0.0)
    if method == "lora" and base_bits == 8:  # LoRA on an 8-bit-loaded base (load_in_8bit)
        return rest * INT8_BYTES + emb * 2.0, "8-bit base weights (1 byte/param), embeddings in 16-bit"
    if method == "lora" and base_bits == 4:
        method = "qlora"
    if method == "full":
        return m.params * 6.0, "fp32 master weights + bf16 autocast copies (6 bytes/param)"
    if method in ("lora", "inference"):
        return m.params * 2.0, "bf16 weights (2 bytes/param)"
    if method in ("qlora", "inference-int4"):
        text = "4-bit weights (NF4/GPTQ/AWQ, 0.56 bytes/param with block scales)"
        if emb:
            text += ", embeddings kept in 16-bit"
        return rest * INT4_BYTES + emb * 2.0, text
    if method == "inference-int8":
        text = "8-bit weights (1 byte/param)"
        if emb:
            text += ", embeddings kept in 16-bit"
        return rest * INT8_BYTES + emb * 2.0, text
    raise ValueError(f"unknown method {method!r}")


def _per_token_layer_bytes(s: dict) -> float:
    h = s["hidden"]
    inter = s.get("intermediate") or 4 * h
    moe_dispatch = 4 * s.get("top_k", 0) * h if s.get("experts") else 0
    return ACT_BYTES_PER_HIDDEN * h + ACT_BYTES_PER_MLP * inter + moe_dispatch


def _transient_token_bytes(s: dict) -> float:
    """Inference: what one layer holds per token while it runs (hidden states + MLP), bf16."""
    h = s["hidden"]
    inter = s.get("intermediate") or 4 * h
    return 2.0 * (4 * h + 3 * inter)


def _kv_elems_per_token_layer(s: dict) -> float:
    if s.get("kv_dim"):
        return float(s["kv_dim"])
    heads = s["heads"]
    hd = s.get("head_dim") or s["hidden"] // heads
    return 2.0 * (s.get("kv_heads") or heads) * hd


@dataclass
class _Work:
    activations: float = 0.0   # bytes, whole model on one GPU
    logits: float = 0.0        # bytes (kept on the last pipeline stage)
    kv: float = 0.0            # bytes
    lines: list[str] = field(default_factory=list)


def _transformer_work(m: _Model, training: bool, batch: int, seq: int, gc: bool) -> _Work:
    s = m.shapes
    w = _Work()
    per_tok = _per_token_layer_bytes(s)
    h = s["hidden"]
    vocab = s.get("vocab") or 0
    kind = m.kind
    layers = s["layers"]
    if kind in ("seq2seq", "speech"):
        enc_layers = s.get("enc_layers", layers)
        enc_tokens = batch * (s.get("enc_tokens") or seq)
        dec_tokens = batch * seq
        if training:
            if gc:
                kept = (enc_layers * enc_tokens + layers * dec_tokens) * 2 * h
                kept += max(enc_tokens, dec_tokens) * (per_tok + 8 * h)
            else:
                kept = enc_layers * enc_tokens * per_tok + layers * dec_tokens * (per_tok + 8 * h)
            w.activations = kept
            w.logits = dec_tokens * vocab * LOGITS_TRAIN_BYTES
        else:
            w.activations = enc_tokens * _transient_token_bytes(s)
            w.logits = batch * vocab * LOGITS_INFER_BYTES
            per_token = layers * _kv_elems_per_token_layer(s) * KV_BYTES
            w.kv = per_token * (dec_tokens + enc_tokens)
            w.lines.append(f"KV cache: decoder self-attention for {seq} tokens + cross-attention over "
                           f"{enc_tokens // max(batch, 1)} encoder tokens per sample")
        return w
    if kind == "vision" or "tokens" in s:
        tokens = batch * int(s.get("tokens") or 197)
        w.lines.append(f"{s.get('tokens') or 197} tokens per image")
    else:
        tokens = batch * seq
    if training:
        if gc:
            w.activations = layers * tokens * 2 * h + tokens * per_tok
        else:
            w.activations = layers * tokens * per_tok
        if kind in ("llm", "multimodal"):
            w.logits = tokens * vocab * LOGITS_TRAIN_BYTES
    else:
        w.activations = tokens * _transient_token_bytes(s)
        if kind in ("llm", "multimodal"):
            w.logits = tokens * vocab * LOGITS_INFER_BYTES
            w.kv = tokens * layers * _kv_elems_per_token_layer(s) * KV_BYTES
            kv_text = "MLA latent" if s.get("kv_dim") else f"{s.get('kv_heads') or s['heads']} KV heads"
            w.lines.append(f"KV cache in 16-bit for {_fmt_tokens(tokens)} tokens ({kv_text})")
    return w


def _per_sample_gb(m: _Model, training: bool) -> float:
    s = m.shapes
    key = "act_train_gb" if training else "act_infer_gb"
    if s.get(key) is not None:
        return float(s[key])
    millions = m.params / 1e6
    billions = m.params / 1e9
    if m.kind == "detection":
        return 0.1 + 0.01 * millions if training else 0.05 + 0.002 * millions
    if m.kind == "diffusion":
        return 2.0 + 4.0 * billions if training else 0.5 + 0.5 * billions
    # convolutional vision backbones at 224x224
    return 0.02 + 0.004 * millions if training else 0.005 + 0.001 * millions


def _resolve_batch_seq(m: _Model, method: str, batch_size: int | None, seq_len: int | None,
                       lines: list[str]) -> tuple[int, int]:
    phase = "training" if is_training(method) else "inference"
    d_batch, d_seq = DEFAULTS.get(m.kind, DEFAULTS["llm"])[phase]
    batch = batch_size if batch_size is not None else d_batch
    seq = seq_len if seq_len is not None else d_seq
    for name, value in (("batch_size", batch), ("seq_len", seq)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if batch < 1:
        raise ValueError("batch_size must be at least 1")
    if seq_len is not None and seq_len < 1:
        raise ValueError("seq_len must be at least 1")
    max_seq = m.shapes.get("max_seq")
    uses_tokens = m.transformer and not (m.kind == "vision" or "tokens" in m.shapes)
    if uses_tokens:
        if seq < 1:
            seq = d_seq or 512
        if seq_len is None and max_seq and seq > max_seq:
            seq = int(max_seq)
        given = "given" if (batch_size is not None and seq_len is not None) else (
            "defaults for unknown values" if batch_size is None and seq_len is None else
            "batch default" if batch_size is None else "sequence default")
        lines.append(f"batch {batch} x {_fmt_tokens(seq)} tokens ({given})")
        if seq_len is not None and max_seq and seq > max_seq:
            lines.append(f"sequence {seq} is longer than the model's context ({max_seq})")
    else:
        where = "given" if batch_size is not None else "default"
        unit = "image" if m.kind in ("vision", "detection", "diffusion") else "sample"
        lines.append(f"batch {batch} ({where}), activations per {unit} at the model's usual resolution")
    return batch, seq


def estimate(*, params_b: float | None = None, facts: ModelFacts | None = None,
             method: str = "inference", batch_size: int | None = None, seq_len: int | None = None,
             gpu_count: int = 1, tensor_parallel: int | None = None,
             pipeline_parallel: int | None = None, zero_stage: int | None = None,
             fsdp: bool = False, optimizer: str = "adamw",
             gradient_checkpointing: bool = False, base_bits: int | None = None,
             fused_loss: bool = False) -> Estimate:
    """Per-GPU memory for running ``method`` on a model, with a breakdown and the assumptions used.

    ``params_b`` overrides the facts' parameter count (the facts still give kind and shapes).
    ``batch_size`` is per GPU (micro-batch); ``seq_len`` is tokens per sample (prompt + output for
    inference). Multi-GPU: inference splits weights and KV cache across the GPUs (tensor parallel
    when ``tensor_parallel`` is given, else a layer split like ``device_map="auto"``); training
    replicates everything (DDP) unless ZeRO (``zero_stage`` 1/2/3), FSDP (full shard, like ZeRO-3),
    tensor or pipeline parallelism shard it.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
    if not isinstance(gpu_count, int) or isinstance(gpu_count, bool) or gpu_count < 1:
        raise ValueError(f"gpu_count must be a positive integer, got {gpu_count!r}")
    tp = tensor_parallel or 1
    pp = pipeline_parallel or 1
    if tp < 1 or pp < 1:
        raise ValueError("tensor_parallel and pipeline_parallel must be at least 1")
    if tp * pp > gpu_count or gpu_count % (tp * pp):
        raise ValueError(f"tensor_parallel x pipeline_parallel ({tp} x {pp}) must divide "
                         f"gpu_count ({gpu_count})")
    if zero_stage not in (None, 0, 1, 2, 3):
        raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {zero_stage!r}")
    opt = normalize_optimizer(optimizer)
    training = is_training(method)
    m = _model(params_b, facts)
    lines: list[str] = []
    batch, seq = _resolve_batch_seq(m, method, batch_size, seq_len, lines)

    weight_bytes, weight_text = _weight_bytes(m, method, base_bits)
    lines.append(weight_text)
    grad_bytes = 0.0
    opt_bytes = 0.0
    adapter_bytes = 0.0
    if method == "full":
        grad_bytes = m.params * 4.0
        opt_bytes = m.params * OPTIMIZER_BYTES[opt]
        lines.append(f"fp32 gradients (4 bytes/param), {opt} optimizer states "
                     f"({OPTIMIZER_BYTES[opt]:g} bytes/param)")
    elif method in ("lora", "qlora"):
        lora = _lora_params(m)
        adapter_bytes = lora * (4.0 + 4.0 + OPTIMIZER_BYTES[opt])
        where = "q/k/v/o projections" if m.transformer else "attention layers (~1% of parameters)"
        lines.append(f"LoRA r={LORA_RANK} on {where}: {lora / 1e6:.1f}M trainable parameters "
                     f"in fp32 with {opt} states")

    if m.transformer:
        work = _transformer_work(m, training, batch, seq, gradient_checkpointing)
        if training:
            lines.append("flash/SDPA attention (no seq^2 score matrix); "
                         + ("gradient checkpointing on" if gradient_checkpointing
                            else "no gradient checkpointing"))
    else:
        per_sample = _per_sample_gb(m, training)
        factor = GC_ACTIVATION_FACTOR if (training and gradient_checkpointing) else 1.0
        work = _Work(activations=batch * per_sample * factor * GIB)
        lines.append(f"activations ~{per_sample:.2f} GiB per sample"
                     + (" (with gradient checkpointing)" if factor < 1 else ""))
    lines.extend(work.lines)
    if m.guessed:
        lines.append("layer shapes guessed from the parameter count (full attention, 128k vocabulary)")
    if m.active:
        lines.append(f"mixture of experts: all {m.params / 1e9:g}B parameters stay in memory; "
                     f"{m.active:g}B active per token")

    # ---------------------------------------------------------------- split across GPUs
    dp = gpu_count // (tp * pp)
    activations = work.activations
    logits = work.logits
    if fused_loss and training and logits:
        # a fused linear + cross-entropy kernel (Liger, Unsloth, chunked CE) never materializes the
        # full logits; keep one 4k-token chunk of them
        tokens_in_chunk = min(4096.0, logits / (LOGITS_TRAIN_BYTES * max(m.shapes.get("vocab") or 1, 1)))
        logits = tokens_in_chunk * (m.shapes.get("vocab") or 0) * LOGITS_TRAIN_BYTES
        lines.append("fused linear + cross-entropy loss: logits computed in chunks, never whole")
    kv = work.kv
    if not training:
        split = tp * pp
        if gpu_count > 1 and tp == 1 and pp == 1:
            split = gpu_count
            lines.append(f"weights and KV cache split across {gpu_count} GPUs by layer "
                         '(device_map="auto"); one layer and the embeddings of imbalance allowed')
        elif split > 1:
            lines.append(f"tensor parallel {tp} x pipeline parallel {pp}: weights and KV cache "
                         f"split {split} ways" + (f", {dp} replicas" if dp > 1 else ""))
        if split > 1:
            per_layer = _layer_params(m) * (weight_bytes / m.params)
            emb = _embedding_params(m) * 2.0
            imbalance = 0.0 if tp > 1 and pp == 1 else per_layer + emb / 2
            weight_bytes = weight_bytes / split + imbalance
            kv = kv / split
            if tp > 1:
                activations = activations / tp
    else:
        shard = tp * pp
        zero = 3 if fsdp else (zero_stage or 0)
        if shard > 1:
            weight_bytes /= shard
            grad_bytes /= shard
            opt_bytes /= shard
            adapter_bytes /= shard
            activations *= 0.3 + 0.7 / tp
            lines.append(f"tensor parallel {tp} x pipeline parallel {pp} shard weights, gradients "
                         "and optimizer states (activations of in-flight micro-batches are not "
                         "reduced by pipeline stages)")
        if dp > 1:
            if zero >= 1:
                opt_bytes /= dp
                adapter_bytes /= dp
            if zero >= 2:
                grad_bytes /= dp
            if zero >= 3:
                per_layer16 = _layer_params(m) * 2.0 / shard
                weight_bytes = weight_bytes / dp + 2 * per_layer16
            if zero == 0 and method == "full":
                grad_bytes += m.params * 4.0 / shard
            label = ("FSDP full shard" if fsdp else f"ZeRO-{zero}" if zero else "DDP")
            if zero == 0:
                lines.append(f"{label} over {dp} GPUs: every GPU holds the full model, gradients "
                             "and optimizer states" + (" plus gradient buckets" if method == "full" else ""))
            else:
                sharded = {1: "optimizer states", 2: "optimizer states and gradients",
                           3: "weights, gradients and optimizer states"}[zero]
                lines.append(f"{label} over {dp} GPUs shards {sharded}")
        elif zero or fsdp:
            lines.append("ZeRO/FSDP has nothing to shard on one GPU")
        if dp > 1:
            lines.append(f"batch {batch} is per GPU")

    allocated = weight_bytes + grad_bytes + opt_bytes + adapter_bytes + activations + logits + kv
    overhead = OVERHEAD_BASE_GB * GIB + OVERHEAD_FRACTION * allocated
    breakdown = {
        "weights": _gb(weight_bytes),
        "gradients": _gb(grad_bytes),
        "optimizer": _gb(opt_bytes),
        "adapters": _gb(adapter_bytes),
        "activations": _gb(activations + logits),
        "kv_cache": _gb(kv),
        "overhead": _gb(overhead),
        "cuda_context": CUDA_CONTEXT_GB,
    }
    breakdown = {k: round(v, 2) for k, v in breakdown.items()}
    if logits:
        lines.append(f"activations include {_gb(logits):.2f} GiB of logits "
                     f"({m.shapes.get('vocab', 0):,}-token vocabulary)")
    per_gpu = round(sum(_gb(x) for x in (weight_bytes, grad_bytes, opt_bytes, adapter_bytes,
                                         activations + logits, kv, overhead)) + CUDA_CONTEXT_GB, 2)
    return Estimate(per_gpu_gb=per_gpu, total_gb=round(per_gpu * gpu_count, 2), gpu_count=gpu_count,
                    params_b=round(m.params / 1e9, 4), method=method, breakdown=breakdown,
                    assumptions=lines)


def estimator(*, facts: ModelFacts | None = None, params_b: float | None = None,
              method: str = "inference", batch_size: int | None = None,
              seq_len: int | None = None, optimizer: str = "adamw",
              gradient_checkpointing: bool = False, zero_stage: int | None = None,
              fsdp: bool | None = None, tensor_parallel: int | None = None,
              ) -> Callable[[int], Estimate]:
    """``at(n) -> Estimate`` for the work on n GPUs, with gpu-lol's multi-GPU strategy.

    For n > 1: inference splits the model across the GPUs; training uses the sharding given, and
    when none is given assumes FSDP full sharding (what a multi-GPU fine-tune of a model that does
    not fit one card has to use). With ``tensor_parallel``, counts it does not divide raise
    ValueError (the selector skips them).
    """
    def at(n: int) -> Estimate:
        kwargs: dict = dict(params_b=params_b, facts=facts, method=method, batch_size=batch_size,
                            seq_len=seq_len, gpu_count=n, optimizer=optimizer,
                            gradient_checkpointing=gradient_checkpointing)
        if n > 1 and is_training(method):
            if zero_stage is None and fsdp is None and not tensor_parallel:
                kwargs["fsdp"] = True
            else:
                kwargs["zero_stage"] = zero_stage
                kwargs["fsdp"] = bool(fsdp)
        if n > 1 and tensor_parallel:
            if n % tensor_parallel:
                raise ValueError(f"tensor parallel {tensor_parallel} does not divide {n} GPUs")
            kwargs["tensor_parallel"] = tensor_parallel
        return estimate(**kwargs)

    return at


def need_for_count(**kwargs) -> Callable[[int], float]:
    """A ``need_for_count(n) -> GiB per GPU`` closure for :func:`gpu_lol.sizing.selection.choose`.

    Takes :func:`estimator`'s arguments. Pass ``shardable=False`` to ``choose`` when the code
    cannot split across GPUs.
    """
    at = estimator(**kwargs)
    return lambda n: at(n).per_gpu_gb
