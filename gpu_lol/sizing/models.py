"""What a model is: parameter count, kind and shapes, from a name or a Hugging Face ``config.json``.

Offline only: the facts come from the table in ``gpu_lol/data/models.yaml``, from a size written in
the model's name (``acme/foo-7b-chat``), or from a ``config.json`` dict. Nothing here touches the
network or SkyPilot.

Matching a name against the table: the name is reduced to its last path part, lower-cased, with a
weights-file extension dropped and ``_``/spaces read as ``-``. A table key matches when it occurs in
that name at token boundaries and the rest of the name carries no other size: so
``TheBloke/Llama-2-7B-Chat-GPTQ`` is Llama-2-7b, but ``DeepSeek-R1-Distill-Qwen-1.5B`` is not
DeepSeek-R1 (its rest, ``-distill-qwen-1.5b``, names another size). Among matching keys the longest
(most specific) wins.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any

KINDS = ("llm", "encoder", "seq2seq", "speech", "vision", "diffusion", "detection", "embedding",
         "multimodal")

_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".gguf", ".ggml", ".ckpt", ".onnx",
                    ".engine", ".tflite", ".mlmodel", ".h5", ".keras")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/: ]*$")
# A size inside a name token: "7b", "1.5B", "135M", never part of a longer word ("4bit", "a3b4").
_SIZE_RE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)([bm])(?![a-z0-9])")
_MOE_RE = re.compile(r"(?<![a-z0-9.])(\d+)x(\d+(?:\.\d+)?)b(?![a-z0-9])")
_ACTIVE_RE = re.compile(r"(?<![a-z0-9.])a(\d+(?:\.\d+)?)b(?![a-z0-9])")


@dataclass(frozen=True)
class ModelFacts:
    name: str
    params_b: float
    active_params_b: float | None
    kind: str
    shapes: dict | None
    source: str  # "table" | "name-size" | "config" | "user" (--params)
    note: str
    native_bits: int | None = None  # weights as released: 8 (FP8), 4 (MXFP4); None = 16-bit


# ------------------------------------------------------------------------------------- names
def normalize_name(name: str) -> str:
    """The part of a model id that is matched: last path part, lower-case, no weights extension."""
    text = str(name).strip().strip("'\"").rstrip("/")
    text = text.replace("\\", "/").split("/")[-1].lower()
    for suffix in _WEIGHT_SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            break
    return re.sub(r"[_\s]+", "-", text).strip("-")


# Words after which a size in a checkpoint's name counts training progress (steps, tokens), not parameters
_PROGRESS_RE = re.compile(r"(?<![a-z])(?:step|steps|iter|iters|tokens?|epoch|ckpt-\d)(?![a-z])")


def _sizes(token: str) -> list[tuple[str, float]]:
    """All sizes written in a normalized name: ("dense"|"moe"|"active", billions)."""
    found: list[tuple[str, float]] = []
    moe_spans = []
    for m in _MOE_RE.finditer(token):
        experts, each = int(m.group(1)), float(m.group(2))
        if 1 < experts <= 512 and 0 < each <= 1000:
            found.append(("moe", _moe_total(experts, each)))
            moe_spans.append(m.span())
    for m in _ACTIVE_RE.finditer(token):
        found.append(("active", float(m.group(1))))
    progress = _PROGRESS_RE.search(token)
    for m in _SIZE_RE.finditer(token):
        if any(a <= m.start() < b for a, b in moe_spans):
            continue
        if progress is not None and m.start() > progress.start():
            continue  # "-step-240k-503b": tokens seen by an intermediate checkpoint, not parameters
        value, unit = float(m.group(1)), m.group(2)
        if unit == "m":
            if not 1 <= value < 1000:
                continue
            value /= 1000.0
        elif not 0.01 <= value <= 5000:
            continue
        found.append(("dense", value))
    return found


def _moe_total(experts: int, each_b: float) -> float:
    # Experts share attention and embeddings (about a fifth of a dense model); names round down.
    return round(each_b * (0.8 * experts + 0.2) * 1.05, 2)


def _moe_active(each_b: float, top_k: int = 2) -> float:
    return round(each_b * (0.8 * top_k + 0.2) * 1.05, 2)


def size_from_name(name: str) -> float | None:
    """Total parameters (billions) written in a model name, or None.

    ``"7b"`` -> 7, ``"1.5B"`` -> 1.5, ``"SmolLM-135M"`` -> 0.135, ``"8x7b"`` -> 48.5 (experts share
    attention, so 8x7B is not 56B; Mixtral-8x7B is 46.7B). ``"Qwen3-30B-A3B"`` -> 30 (A3B is the
    active count). Only the model-name token is read, so dates, hashes, ``4bit`` and ``EPOCHS = 100``
    never count. With several sizes in one name the largest is returned (never under-estimate).
    """
    if not name:
        return None
    sizes = [v for k, v in _sizes(normalize_name(name)) if k in ("dense", "moe")]
    return max(sizes) if sizes else None


def _active_from_name(token: str) -> float | None:
    sizes = _sizes(token)
    for kind, value in sizes:
        if kind == "active":
            return value
    for kind, _value in sizes:
        if kind == "moe":
            m = _MOE_RE.search(token)
            if m:
                return _moe_active(float(m.group(2)))
    return None


def _has_size(text: str) -> bool:
    for kind, value in _sizes(text):
        if kind == "active":
            continue
        if kind == "dense" and value < 0.01:  # "1m" in "...-instruct-1m" is a context length
            continue
        return True
    return False


# ------------------------------------------------------------------------------------- table
@dataclass(frozen=True)
class _Entry:
    id: str
    keys: tuple[str, ...]
    params_b: float
    active_b: float | None
    kind: str
    shapes: dict | None
    note: str
    native_bits: int | None = None


@functools.lru_cache(maxsize=1)
def table() -> tuple[_Entry, ...]:
    """The known-model table (loaded once)."""
    from gpu_lol.data import load_yaml

    entries = []
    for row in load_yaml("models.yaml"):
        keys = [normalize_name(row.get("key") or row["id"])]
        keys += [normalize_name(a) for a in row.get("aliases", ())]
        kind = row["kind"]
        if kind not in KINDS:
            raise ValueError(f"models.yaml: {row['id']}: unknown kind {kind!r}")
        entries.append(_Entry(
            id=row["id"], keys=tuple(dict.fromkeys(keys)), params_b=float(row["params_b"]),
            active_b=float(row["active_b"]) if row.get("active_b") is not None else None,
            kind=kind, shapes=dict(row["shapes"]) if row.get("shapes") else None,
            note=str(row.get("note", "")),
            native_bits=int(row["native_bits"]) if row.get("native_bits") else None,
        ))
    return tuple(entries)


@functools.lru_cache(maxsize=1)
def _keys_longest_first() -> tuple[tuple[str, _Entry], ...]:
    pairs = [(key, entry) for entry in table() for key in entry.keys]
    pairs.sort(key=lambda p: -len(p[0]))
    return tuple(pairs)


def _free_before(text: str, start: int) -> bool:
    return start == 0 or not text[start - 1].isalnum()


def _free_after(text: str, end: int) -> bool:
    return end >= len(text) or not text[end].isalnum()


def _match_table(token: str) -> tuple[str, _Entry] | None:
    for key, entry in _keys_longest_first():
        start = token.find(key)
        while start != -1:
            end = start + len(key)
            if _free_before(token, start) and _free_after(token, end):
                rest = token[:start] + " " + token[end:]
                if not _has_size(rest):
                    return key, entry
            start = token.find(key, start + 1)
    return None


def _facts_from_entry(entry: _Entry, matched: str, original: str) -> ModelFacts:
    note = f"matched '{original}' to {entry.id} in the model table"
    if entry.note:
        note += f"; {entry.note}"
    return ModelFacts(name=entry.id, params_b=entry.params_b, active_params_b=entry.active_b,
                      kind=entry.kind, shapes=dict(entry.shapes) if entry.shapes else None,
                      source="table", note=note, native_bits=entry.native_bits)


def guess_kind(token: str) -> str:
    """The kind of model a name suggests (used only for names not in the table)."""
    t = token.lower()
    rules = (
        (("whisper", "wav2vec", "hubert", "speech", "asr", "parakeet", "canary"), "speech"),
        (("yolo", "detr", "rtdetr", "faster-rcnn", "retinanet"), "detection"),
        (("stable-diffusion", "sdxl", "flux", "diffusion", "unet", "controlnet", "kandinsky"), "diffusion"),
        (("embed", "bge", "gte", "e5", "minilm", "mpnet", "sentence"), "embedding"),
        (("llava", "-vl", "vision", "idefics", "paligemma", "pixtral", "blip"), "multimodal"),
        (("clip", "siglip", "vit", "dino", "sam", "resnet", "convnext", "efficientnet"), "vision"),
        (("t5", "mt5", "umt5", "bart", "pegasus", "marian", "mbart", "nllb", "m2m"), "seq2seq"),
        (("bert", "roberta", "deberta", "electra", "albert"), "encoder"),
    )
    for words, kind in rules:
        for word in words:
            if re.search(r"(?<![a-z])" + re.escape(word) + r"(?![a-z])", t) or (
                    word in ("bert", "roberta", "deberta") and word in t):
                return kind
    return "llm"


def lookup_model(name: str) -> ModelFacts | None:
    """Facts for a model id or name; None when neither the table nor the name tells its size.

    Table first (most specific key), then a size written in the name (``source="name-size"``).
    """
    if not name or not isinstance(name, str):
        return None
    raw = name.strip()
    if not raw or len(raw) > 200 or not _ID_RE.match(raw):
        return None
    token = normalize_name(raw)
    if not token or not any(ch.isalpha() for ch in token):
        return None
    found = _match_table(token)
    if found is not None:
        return _facts_from_entry(found[1], found[0], raw)
    size = size_from_name(token)
    if size is None:
        return None
    active = _active_from_name(token)
    kind = guess_kind(token)
    note = (f"'{raw}' is not in the model table; using the size in its name ({_fmt_b(size)} "
            f"parameters{', ' + _fmt_b(active) + ' active' if active else ''}) with typical shapes "
            "for that size")
    return ModelFacts(name=raw, params_b=size, active_params_b=active, kind=kind, shapes=None,
                      source="name-size", note=note)


def _fmt_b(value: float | None) -> str:
    if value is None:
        return "?"
    if value < 1:
        return f"{value * 1000:.0f}M"
    return f"{value:g}B"


# ------------------------------------------------------------------------------------- shapes
def params_from_shapes(shapes: dict) -> float | None:
    """Total parameters (billions) of a decoder-only transformer from table/config shapes."""
    try:
        h = int(shapes["hidden"])
        layers = int(shapes["layers"])
        heads = int(shapes["heads"])
        vocab = int(shapes.get("vocab") or 0)
    except (KeyError, TypeError, ValueError):
        return None
    kv = int(shapes.get("kv_heads") or heads)
    hd = int(shapes.get("head_dim") or h // max(heads, 1))
    gated = bool(shapes.get("gated", True))
    attn = h * heads * hd * 2 + h * kv * hd * 2
    mats = 3 if gated else 2
    experts = int(shapes.get("experts") or 0)
    if experts:
        expert_i = int(shapes["expert_intermediate"])
        shared_i = int(shapes.get("shared_intermediate") or 0)
        moe_mlp = experts * mats * h * expert_i + mats * h * shared_i + h * experts
        dense_layers = int(shapes.get("dense_layers") or 0)
        dense_mlp = mats * h * int(shapes.get("dense_intermediate") or shapes.get("intermediate") or 0)
        body = (layers - dense_layers) * (attn + moe_mlp) + dense_layers * (attn + dense_mlp)
    else:
        inter = int(shapes.get("intermediate") or 4 * h)
        body = layers * (attn + mats * h * inter)
    body += layers * 2 * h + h
    emb = vocab * h * (1 if shapes.get("tied", False) else 2)
    return (body + emb) / 1e9


_LAYERS_BY_SIZE = ((0.2, 12), (1.5, 24), (4, 28), (10, 32), (20, 40), (40, 64), (100, 80),
                   (250, 96), (float("inf"), 126))


def typical_shapes(params_b: float, kind: str = "llm") -> dict:
    """Shapes of a typical transformer of this size (when the real ones are unknown).

    Conservative where it matters: full multi-head attention (largest KV cache) and a 128k vocabulary
    (largest logits) for language models.
    """
    dense_b = max(float(params_b), 0.001)
    layers = next(n for limit, n in _LAYERS_BY_SIZE if dense_b < limit)
    hidden = math.sqrt(dense_b * 1e9 / (12 * layers))
    hidden = max(256, int(math.ceil(hidden / 256.0)) * 256)
    heads = max(1, hidden // 128)
    shapes = {"hidden": hidden, "layers": layers, "heads": heads, "kv_heads": heads,
              "head_dim": 128, "intermediate": int(hidden * 8 / 3), "tied": False, "guessed": True}
    if kind in ("llm", "multimodal"):
        shapes["vocab"] = 128256
    elif kind in ("seq2seq", "speech"):
        shapes["vocab"] = 32128 if kind == "seq2seq" else 51866
        shapes["enc_layers"] = layers // 2 or 1
        shapes["layers"] = layers // 2 or 1
    elif kind in ("encoder", "embedding"):
        shapes["vocab"] = 30522
    return shapes


# ------------------------------------------------------------------------------------- config.json
_UNTIED_BY_DEFAULT = {"llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
                      "phi3", "phimoe", "deepseek_v2", "deepseek_v3", "olmo", "olmo2", "granite",
                      "cohere", "starcoder2", "internlm2", "yi", "exaone", "gpt_oss", "phi", "falcon"}
_NOT_GATED = {"gpt2", "gpt_neo", "gpt_neox", "gptj", "falcon", "phi", "opt", "bloom", "bert", "roberta",
              "xlm-roberta", "distilbert", "deberta", "deberta-v2", "electra", "mpnet", "whisper",
              "bart", "mbart", "marian", "pegasus", "vit", "clip", "clip_vision_model", "siglip",
              "dinov2", "sam", "starcoder2", "gpt_bigcode", "codegen", "mpt", "albert", "camembert",
              "t5", "mt5"}
_ENCODERS = {"bert", "roberta", "xlm-roberta", "distilbert", "deberta", "deberta-v2", "electra",
             "mpnet", "albert", "camembert", "modernbert", "nomic_bert"}
_SEQ2SEQ = {"t5", "mt5", "bart", "mbart", "marian", "pegasus", "umt5", "longt5"}
_VISION = {"vit", "clip", "clip_vision_model", "siglip", "siglip_vision_model", "dinov2", "sam",
           "swin", "convnext", "resnet", "beit", "deit"}


def _first(cfg: dict, *keys: str, default: Any = None) -> Any:
    for key in keys:
        value = cfg.get(key)
        if value is not None:
            return value
    return default


def _int(value: Any) -> int | None:
    try:
        if value is None or isinstance(value, bool):
            return None
        out = int(value)
        return out if out > 0 else None
    except (TypeError, ValueError):
        return None


def _decoder_shapes(cfg: dict, model_type: str) -> dict | None:
    h = _int(_first(cfg, "hidden_size", "n_embd", "d_model", "dim", "model_dim"))
    layers = _int(_first(cfg, "num_hidden_layers", "n_layer", "num_layers", "n_layers"))
    heads = _int(_first(cfg, "num_attention_heads", "n_head", "num_heads", "n_heads"))
    if not (h and layers and heads):
        return None
    kv = _int(_first(cfg, "num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num"))
    if kv is None and cfg.get("multi_query"):
        kv = 1
    inter = _int(_first(cfg, "intermediate_size", "n_inner", "ffn_dim", "d_ff", "ffn_hidden_size"))
    vocab = _int(cfg.get("vocab_size")) or 0
    tied = cfg.get("tie_word_embeddings")
    if tied is None:
        tied = model_type not in _UNTIED_BY_DEFAULT
    gated = model_type not in _NOT_GATED
    if model_type in ("t5", "mt5", "umt5", "longt5"):
        gated = str(cfg.get("feed_forward_proj", "")).startswith("gated")
    shapes: dict[str, Any] = {
        "hidden": h, "layers": layers, "heads": heads, "kv_heads": kv or heads,
        "vocab": vocab, "intermediate": inter or 4 * h, "tied": bool(tied), "gated": gated,
    }
    head_dim = _int(_first(cfg, "head_dim", "d_kv", "attention_head_size"))
    if head_dim and head_dim != h // heads:
        shapes["head_dim"] = head_dim
    max_seq = _int(_first(cfg, "max_position_embeddings", "n_positions", "max_seq_len",
                          "seq_length", "max_sequence_length"))
    if max_seq:
        shapes["max_seq"] = max_seq
    experts = _int(_first(cfg, "num_local_experts", "num_experts", "n_routed_experts"))
    if experts and experts > 1:
        top_k = _int(_first(cfg, "num_experts_per_tok", "moe_top_k", "experts_per_token",
                            "num_experts_per_token")) or 2
        expert_i = _int(_first(cfg, "moe_intermediate_size", "expert_intermediate_size")) or inter or 4 * h
        shared_i = _int(cfg.get("shared_expert_intermediate_size")) or 0
        n_shared = _int(cfg.get("n_shared_experts")) or 0
        if n_shared and not shared_i:
            shared_i = n_shared * expert_i
        shapes.update({"experts": experts, "top_k": top_k, "expert_intermediate": expert_i,
                       "shared_intermediate": shared_i, "intermediate": top_k * expert_i + shared_i})
        dense = _int(cfg.get("first_k_dense_replace")) or 0
        if dense:
            shapes["dense_layers"] = dense
            shapes["dense_intermediate"] = inter or 4 * h
    kv_lora = _int(cfg.get("kv_lora_rank"))
    if kv_lora:  # DeepSeek multi-head latent attention: the cache holds the compressed latent
        rope = _int(cfg.get("qk_rope_head_dim")) or 64
        shapes["kv_heads"] = 1
        shapes["kv_dim"] = kv_lora + rope
    return shapes


def _mla_params(cfg: dict, shapes: dict) -> float:
    """Attention parameters per layer for DeepSeek MLA (replaces the plain q/k/v/o count)."""
    h, heads = shapes["hidden"], shapes["heads"]
    q_lora = _int(cfg.get("q_lora_rank"))
    rope = _int(cfg.get("qk_rope_head_dim")) or 64
    nope = _int(cfg.get("qk_nope_head_dim")) or 128
    v_dim = _int(cfg.get("v_head_dim")) or 128
    kv_lora = _int(cfg.get("kv_lora_rank")) or 512
    q = (h * q_lora + q_lora * heads * (nope + rope)) if q_lora else h * heads * (nope + rope)
    return q + h * (kv_lora + rope) + kv_lora * heads * (nope + v_dim) + heads * v_dim * h


def _params_decoder(cfg: dict, shapes: dict) -> float:
    h, layers = shapes["hidden"], shapes["layers"]
    heads, kv = shapes["heads"], shapes["kv_heads"]
    hd = shapes.get("head_dim") or h // heads
    if cfg.get("kv_lora_rank"):
        attn = _mla_params(cfg, shapes)
    else:
        attn = h * heads * hd * 2 + h * kv * hd * 2
    mats = 3 if shapes.get("gated", True) else 2
    if shapes.get("experts"):
        moe = (shapes["experts"] * mats * h * shapes["expert_intermediate"]
               + mats * h * shapes.get("shared_intermediate", 0) + h * shapes["experts"])
        dense_layers = shapes.get("dense_layers", 0)
        dense = mats * h * shapes.get("dense_intermediate", 4 * h)
        body = (layers - dense_layers) * (attn + moe) + dense_layers * (attn + dense)
    else:
        body = layers * (attn + mats * h * shapes["intermediate"])
    body += layers * 2 * h + h
    emb = shapes["vocab"] * h * (1 if shapes["tied"] else 2)
    pos = 0
    if cfg.get("model_type") in ("gpt2", "gpt_neo", "bert", "roberta", "opt", "bart", "whisper"):
        pos = (shapes.get("max_seq") or 0) * h
    return (body + emb + pos) / 1e9


def _active_params(shapes: dict, total_b: float) -> float | None:
    if not shapes.get("experts"):
        return None
    h, layers = shapes["hidden"], shapes["layers"]
    mats = 3 if shapes.get("gated", True) else 2
    inactive = (shapes["experts"] - shapes["top_k"]) * mats * h * shapes["expert_intermediate"]
    moe_layers = layers - shapes.get("dense_layers", 0)
    return round(total_b - moe_layers * inactive / 1e9, 2)


def _vision_params(vcfg: dict) -> float:
    h = _int(_first(vcfg, "hidden_size", "width")) or 1024
    layers = _int(_first(vcfg, "num_hidden_layers", "layers", "depth")) or 24
    inter = _int(vcfg.get("intermediate_size")) or 4 * h
    return layers * (4 * h * h + 2 * h * inter) / 1e9


def facts_from_config(config: dict, name: str = "") -> ModelFacts | None:
    """Facts from a Hugging Face ``config.json`` dict: parameters counted from its shapes.

    Handles decoder-only models (dense, GQA, MoE, DeepSeek MLA), encoders (BERT family),
    encoder-decoders (T5, BART, Whisper), and multimodal configs with a ``text_config``.
    Returns None when the config has no transformer shapes (e.g. a diffusers UNet config).
    """
    if not isinstance(config, dict):
        return None
    model_type = str(config.get("model_type") or "").lower()
    label = name or str(config.get("_name_or_path") or "") or model_type or "config.json"
    extra_b = 0.0
    kind = "llm"
    cfg = config
    text_cfg = config.get("text_config") if isinstance(config.get("text_config"), dict) else None
    vision_cfg = config.get("vision_config") if isinstance(config.get("vision_config"), dict) else None
    if text_cfg is not None:
        cfg = dict(text_cfg)
        cfg.setdefault("model_type", text_cfg.get("model_type") or model_type)
        if "vocab_size" not in cfg and config.get("vocab_size"):
            cfg["vocab_size"] = config["vocab_size"]
        if vision_cfg is not None:
            extra_b = _vision_params(vision_cfg)
        kind = "vision" if model_type in ("clip", "siglip") else "multimodal"
    inner_type = str(cfg.get("model_type") or model_type).lower()

    if inner_type in ("whisper",) or model_type == "whisper":
        kind = "speech"
    elif inner_type in _SEQ2SEQ or model_type in _SEQ2SEQ:
        kind = "seq2seq"
    elif inner_type in _ENCODERS or model_type in _ENCODERS:
        kind = "encoder"
    elif model_type in _VISION and text_cfg is None:
        kind = "vision"

    if kind in ("seq2seq", "speech"):
        facts = _seq2seq_facts(cfg, label, kind)
        return facts
    shapes = _decoder_shapes(cfg, inner_type)
    if shapes is None:
        return None
    total = _params_decoder(cfg, shapes)
    if kind == "encoder":
        shapes["tied"] = True  # encoders have one embedding table (the MLM head is tied)
        total = _params_decoder(cfg, shapes) + (_int(cfg.get("type_vocab_size")) or 0) * shapes["hidden"] / 1e9
        shapes.pop("kv_heads", None)
    total += extra_b
    active = _active_params(shapes, total)
    note = f"counted {_fmt_b(round(total, 3))} parameters from config.json shapes"
    if model_type:
        note += f" (model_type {model_type})"
    quant = config.get("quantization_config")
    if isinstance(quant, dict):
        bits = _int(_first(quant, "bits", "weight_bits")) or (
            4 if quant.get("load_in_4bit") else 8 if quant.get("load_in_8bit") else None)
        qm = str(quant.get("quant_method") or "")
        if bits is None and qm in ("fp8", "fbgemm_fp8", "compressed-tensors"):
            bits = 8
        if qm == "mxfp4":
            bits = 4
        if bits:
            shapes["quant_bits"] = bits
            note += (f"; weights are pre-quantized ({qm or 'quantized'}, {bits}-bit): "
                     f"--method inference-int{8 if bits >= 8 else 4} matches them")
    return ModelFacts(name=label, params_b=round(total, 3), active_params_b=active, kind=kind,
                      shapes=shapes, source="config", note=note)


def _seq2seq_facts(cfg: dict, label: str, kind: str) -> ModelFacts | None:
    h = _int(_first(cfg, "d_model", "hidden_size"))
    dec_layers = _int(_first(cfg, "num_decoder_layers", "decoder_layers", "num_layers"))
    enc_layers = _int(_first(cfg, "encoder_layers", "num_layers")) or dec_layers
    heads = _int(_first(cfg, "num_heads", "decoder_attention_heads", "encoder_attention_heads",
                        "num_attention_heads"))
    if not (h and dec_layers and heads):
        return None
    vocab = _int(cfg.get("vocab_size")) or 0
    ffn = _int(_first(cfg, "d_ff", "decoder_ffn_dim", "encoder_ffn_dim")) or 4 * h
    hd = _int(cfg.get("d_kv")) or h // heads
    gated = str(cfg.get("feed_forward_proj", "")).startswith("gated")
    mats = 3 if gated else 2
    inner = heads * hd
    attn = 2 * h * inner + 2 * h * inner
    enc = enc_layers * (attn + mats * h * ffn + 2 * h)
    dec = dec_layers * (2 * attn + mats * h * ffn + 3 * h)
    tied = cfg.get("tie_word_embeddings", True)
    emb = vocab * h * (1 if tied else 2)
    pos = 0
    if kind == "speech":
        mels = _int(cfg.get("num_mel_bins")) or 80
        enc_tokens = _int(cfg.get("max_source_positions")) or 1500
        max_target = _int(cfg.get("max_target_positions")) or 448
        pos = enc_tokens * h + max_target * h + 3 * mels * h + 3 * h * h
    elif cfg.get("max_position_embeddings") and cfg.get("model_type") in ("bart", "mbart", "marian", "pegasus"):
        pos = 2 * int(cfg["max_position_embeddings"]) * h
    total = (enc + dec + emb + pos) / 1e9
    shapes: dict[str, Any] = {"hidden": h, "layers": dec_layers, "enc_layers": enc_layers,
                              "heads": heads, "vocab": vocab, "intermediate": ffn,
                              "tied": bool(tied), "gated": gated}
    if hd != h // heads:
        shapes["head_dim"] = hd
    if kind == "speech":
        shapes["enc_tokens"] = _int(cfg.get("max_source_positions")) or 1500
        shapes["max_seq"] = _int(cfg.get("max_target_positions")) or 448
    else:
        shapes["max_seq"] = _int(_first(cfg, "n_positions", "max_position_embeddings")) or 512
    note = f"counted {_fmt_b(round(total, 3))} parameters from config.json shapes"
    if cfg.get("model_type"):
        note += f" (model_type {cfg['model_type']})"
    return ModelFacts(name=label, params_b=round(total, 3), active_params_b=None, kind=kind,
                      shapes=shapes, source="config", note=note)


# ------------------------------------------------------------------------------------- CLI input
def resolve_model(arg: str, params_b: float | None = None) -> ModelFacts:
    """Facts for what a user typed: a model id/name, or a path to a ``config.json`` (or its folder).

    ``params_b`` (``--params``) overrides the parameter count and makes unknown names usable.
    Raises :class:`gpu_lol.errors.UsageError` (one line plus a hint) when neither works.
    """
    import dataclasses
    import json
    import os

    from gpu_lol.errors import UsageError

    if params_b is not None and not (math.isfinite(params_b) and 0 < params_b <= 10000):
        raise UsageError(f"--params must be a size in billions between 0 and 10000, got {params_b:g}",
                         "e.g. --params 7 for a 7B model, --params 0.125 for 125M")
    text = (arg or "").strip()
    if not text:
        raise UsageError("no model given", "e.g. `gpu-lol estimate meta-llama/Llama-3.1-8B`")
    path = text
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "config.json")):
        path = os.path.join(path, "config.json")
    if os.path.isfile(path):
        try:
            with open(path, encoding="utf-8") as fh:
                config = json.load(fh)
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read: {exc}", "pass a Hugging Face config.json") from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}",
                             "pass a Hugging Face config.json") from None
        label = os.path.basename(os.path.dirname(os.path.abspath(path))) or path
        facts = facts_from_config(config, name=str(config.get("_name_or_path") or label)
                                  if isinstance(config, dict) else label)
        if facts is None:
            if params_b is None:
                raise UsageError(f"{path}: no transformer shapes to count parameters from "
                                 "(hidden size, layers, heads)",
                                 "pass the size instead: --params 7 (billions)")
            facts = ModelFacts(name=label, params_b=params_b, active_params_b=None,
                               kind=guess_kind(normalize_name(label)), shapes=None, source="user",
                               note=f"{path} has no transformer shapes; using --params {params_b:g}")
        elif params_b is not None:
            facts = dataclasses.replace(facts, params_b=params_b, active_params_b=None,
                                        note=facts.note + f"; --params {params_b:g} overrides the count")
        return facts
    if text.endswith(".json"):
        raise UsageError(f"{text}: no such file", "pass a model id or the path to a config.json")
    facts = lookup_model(text)
    if params_b is not None:
        if facts is None:
            return ModelFacts(name=text, params_b=params_b, active_params_b=None,
                              kind=guess_kind(normalize_name(text)), shapes=None, source="user",
                              note=f"'{text}' is not in the model table; using --params "
                                   f"{params_b:g} with typical shapes for that size")
        same_size = abs(params_b / facts.params_b - 1) < 0.1
        shapes = facts.shapes if (facts.source == "table" and same_size) else None
        return dataclasses.replace(facts, params_b=params_b, active_params_b=None, shapes=shapes,
                                   source="user",
                                   note=f"--params {params_b:g} overrides the size of {facts.name}")
    if facts is None:
        raise UsageError(f"unknown model {text!r}: not in the model table and no size in its name",
                         f"pass its size in billions, e.g. `gpu-lol estimate {text} --params 7`, "
                         "or the path to its config.json")
    return facts
