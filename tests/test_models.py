"""Model facts: the known-model table, sizes read from names, and parameters counted from config.json."""

from __future__ import annotations

import json

import pytest

from gpu_lol.errors import UsageError
from gpu_lol.sizing import models
from gpu_lol.sizing.models import facts_from_config, lookup_model, resolve_model, size_from_name


# ------------------------------------------------------------------------------ table lookups
@pytest.mark.parametrize("name, canonical, params", [
    ("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-7b-hf", 6.74),
    ("llama-2-7b", "meta-llama/Llama-2-7b-hf", 6.74),
    ("TheBloke/Llama-2-7B-Chat-GPTQ", "meta-llama/Llama-2-7b-hf", 6.74),
    ("NousResearch/Meta-Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B", 8.03),
    ("unsloth/llama-3-8b-bnb-4bit", "meta-llama/Meta-Llama-3-8B", 8.03),
    ("meta-llama/Llama-3.3-70B-Instruct", "meta-llama/Llama-3.3-70B-Instruct", 70.55),
    ("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B", 0.49),
    ("Qwen/Qwen2.5-7B-Instruct-1M", "Qwen/Qwen2.5-7B", 7.62),  # "1M" is a context length
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", 1.78),
    ("deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-R1", 671.0),
    ("gpt2", "openai-community/gpt2", 0.124),
    ("gpt2-xl", "openai-community/gpt2-xl", 1.558),
    ("distilgpt2", "distilbert/distilgpt2", 0.082),
    ("bert-base-uncased", "google-bert/bert-base-uncased", 0.110),
    ("distilbert-base-uncased", "distilbert/distilbert-base-uncased", 0.066),
    ("xlm-roberta-base", "FacebookAI/xlm-roberta-base", 0.278),
    ("cardiffnlp/twitter-roberta-base-sentiment", "FacebookAI/roberta-base", 0.125),
    ("google/flan-t5-base", "google/flan-t5-base", 0.248),
    ("openai/whisper-large-v3", "openai/whisper-large-v3", 1.55),
    ("openai/whisper-large-v3-turbo", "openai/whisper-large-v3-turbo", 0.809),
    ("yolov8n.pt", "ultralytics/yolov8n", 0.0032),
    ("runs/weights/yolo11n-seg.pt", "ultralytics/yolo11n", 0.0026),
    ("google/gemma-2-2b-it", "google/gemma-2-2b", 2.61),
    ("google/gemma-2b-it", "google/gemma-2b", 2.51),
    ("teknium/OpenHermes-2.5-Mistral-7B", "mistralai/Mistral-7B-v0.3", 7.25),
    ("stabilityai/stable-diffusion-xl-base-1.0", "stabilityai/stable-diffusion-xl-base-1.0", 3.47),
    ("black-forest-labs/FLUX.1-dev", "black-forest-labs/FLUX.1-dev", 16.9),
])
def test_table_lookup(name, canonical, params):
    facts = lookup_model(name)
    assert facts is not None, name
    assert facts.source == "table"
    assert facts.name == canonical
    assert facts.params_b == pytest.approx(params)
    assert canonical in facts.note


def test_moe_total_and_active():
    mixtral = lookup_model("mistralai/Mixtral-8x7B-Instruct-v0.1")
    assert mixtral.params_b == pytest.approx(46.7) and mixtral.active_params_b == pytest.approx(12.88)
    qwen = lookup_model("Qwen/Qwen3-30B-A3B-Instruct-2507")
    assert qwen.params_b == pytest.approx(30.53) and qwen.active_params_b == pytest.approx(3.34)
    assert lookup_model("meta-llama/Llama-2-7b-hf").active_params_b is None


def test_token_boundaries():
    assert lookup_model("mt5-small") is None  # not t5-small
    assert lookup_model("t5-small").name == "google-t5/t5-small"


@pytest.mark.parametrize("name, kind", [
    ("Qwen/Qwen3-8B", "llm"), ("bert-base-uncased", "encoder"), ("BAAI/bge-m3", "embedding"),
    ("t5-base", "seq2seq"), ("openai/whisper-small", "speech"), ("openai/clip-vit-large-patch14", "vision"),
    ("facebook/sam-vit-huge", "vision"), ("stable-diffusion-v1-5/stable-diffusion-v1-5", "diffusion"),
    ("yolov5s", "detection"), ("llava-hf/llava-1.5-7b-hf", "multimodal"),
])
def test_kinds(name, kind):
    assert lookup_model(name).kind == kind


FAMILIES = [
    "meta-llama/Llama-2-13b-chat-hf", "meta-llama/Meta-Llama-3-70B-Instruct", "meta-llama/Llama-3.1-405B",
    "meta-llama/Llama-3.2-3B-Instruct", "meta-llama/Llama-3.3-70B-Instruct", "mistralai/Mistral-7B-Instruct-v0.2",
    "mistralai/Mixtral-8x22B-Instruct-v0.1", "Qwen/Qwen2-7B-Instruct", "Qwen/Qwen2.5-72B-Instruct", "Qwen/Qwen3-14B",
    "Qwen/Qwen3-235B-A22B", "Qwen/Qwen2-57B-A14B", "google/gemma-7b", "google/gemma-2-27b-it",
    "google/gemma-3-12b-it", "microsoft/phi-2", "microsoft/Phi-3-mini-128k-instruct", "microsoft/phi-4",
    "deepseek-ai/DeepSeek-V2-Lite", "deepseek-ai/DeepSeek-V3-0324", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
    "tiiuae/falcon-7b-instruct", "tiiuae/falcon-40b", "openai-community/gpt2-medium", "FacebookAI/roberta-large",
    "google-t5/t5-large", "openai/whisper-medium.en", "openai/clip-vit-base-patch32", "facebook/sam-vit-base",
    "runwayml/stable-diffusion-v1-5", "stabilityai/stable-diffusion-2-1", "black-forest-labs/FLUX.1-schnell",
    "yolov8x.pt",
]


@pytest.mark.parametrize("name", FAMILIES)
def test_issue_families_are_in_the_table(name):
    facts = lookup_model(name)
    assert facts is not None and facts.source == "table", name


def test_table_is_consistent():
    keys: dict[str, str] = {}
    for entry in models.table():
        assert entry.kind in models.KINDS
        assert entry.params_b > 0
        for key in entry.keys:
            assert key not in keys, f"{key} is a key of both {keys[key]} and {entry.id}"
            keys[key] = entry.id
        if entry.kind == "llm" and entry.shapes and "kv_dim" not in entry.shapes:
            counted = models.params_from_shapes(entry.shapes)
            assert counted == pytest.approx(entry.params_b, rel=0.07), entry.id
        if entry.active_b is not None:
            assert entry.active_b < entry.params_b


# ------------------------------------------------------------------------------ sizes in names
@pytest.mark.parametrize("text, size", [
    ("7b", 7.0), ("1.5B", 1.5), ("SmolLM-135M", 0.135), ("acme/foo-7b-chat", 7.0),
    ("EleutherAI/pythia-70m-deduped", 0.07), ("bigscience/bloom-560m", 0.56),
    ("Qwen3-30B-A3B", 30.0), ("x-2b-7b", 7.0),
])
def test_size_from_name(text, size):
    assert size_from_name(text) == pytest.approx(size)


def test_size_from_name_moe_is_not_naive_product():
    size = size_from_name("foo-8x7b")
    assert 46.7 <= size < 56  # never below Mixtral's real 46.7B, never the naive 56


@pytest.mark.parametrize("text", [
    "EPOCHS = 100", "model-4bit", "v2.0", "2024-05-01", "abc123def", "run-20240501", "resnet",
    "lr-3e-4", "a3b4c5", "", "bnb-8bit-nf4",
])
def test_no_size_where_there_is_none(text):
    assert size_from_name(text) is None


def test_name_size_fallback_says_so():
    facts = lookup_model("acme/foo-7b-chat")
    assert facts.source == "name-size" and facts.params_b == 7.0 and facts.shapes is None
    assert "not in the model table" in facts.note and "7B" in facts.note
    small = lookup_model("HuggingFaceTB/SmolLM-135M")
    assert small.source == "name-size" and small.params_b == pytest.approx(0.135)
    moe = lookup_model("acme/thing-30b-a3b")
    assert moe.active_params_b == 3.0


@pytest.mark.parametrize("name", ["unknown-model", "my_model", "EPOCHS = 100", "$(rm -rf /)", "a" * 300,
                                  "123", ""])
def test_truly_unknown_is_none(name):
    assert lookup_model(name) is None


# ------------------------------------------------------------------------------ config.json
LLAMA2_7B_CONFIG = {
    "model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000,
    "max_position_embeddings": 4096, "tie_word_embeddings": False, "torch_dtype": "float16",
}
DEEPSEEK_V3_CONFIG = {
    "model_type": "deepseek_v3", "hidden_size": 7168, "num_hidden_layers": 61, "num_attention_heads": 128,
    "num_key_value_heads": 128, "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 128, "v_head_dim": 128, "n_routed_experts": 256, "num_experts_per_tok": 8,
    "moe_intermediate_size": 2048, "n_shared_experts": 1, "first_k_dense_replace": 3,
    "intermediate_size": 18432, "vocab_size": 129280, "tie_word_embeddings": False,
    "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]},
}


def test_config_dense():
    facts = facts_from_config(LLAMA2_7B_CONFIG, name="my-llama")
    assert facts.source == "config" and facts.name == "my-llama" and facts.kind == "llm"
    assert facts.params_b == pytest.approx(6.738, rel=0.002)
    assert facts.shapes["kv_heads"] == 32 and facts.shapes["max_seq"] == 4096


def test_config_moe_and_mla():
    mixtral = dict(LLAMA2_7B_CONFIG, model_type="mixtral", intermediate_size=14336, num_key_value_heads=8,
                   num_local_experts=8, num_experts_per_tok=2)
    facts = facts_from_config(mixtral)
    assert facts.params_b == pytest.approx(46.7, rel=0.005)
    assert facts.active_params_b == pytest.approx(12.9, rel=0.01)
    ds = facts_from_config(DEEPSEEK_V3_CONFIG, name="deepseek-ai/DeepSeek-V3")
    assert ds.params_b == pytest.approx(671, rel=0.01)
    assert ds.active_params_b == pytest.approx(37, rel=0.03)
    assert ds.shapes["kv_dim"] == 576
    assert "fp8" in ds.note and ds.shapes["quant_bits"] == 8


def test_config_other_architectures():
    gpt2 = facts_from_config({"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12,
                              "vocab_size": 50257, "n_positions": 1024})
    assert gpt2.params_b == pytest.approx(0.124, rel=0.01)
    bert = facts_from_config({"model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12,
                              "num_attention_heads": 12, "intermediate_size": 3072, "vocab_size": 30522,
                              "max_position_embeddings": 512, "type_vocab_size": 2})
    assert bert.kind == "encoder" and bert.params_b == pytest.approx(0.110, rel=0.02)
    t5 = facts_from_config({"model_type": "t5", "d_model": 768, "d_ff": 2048, "d_kv": 64, "num_layers": 12,
                            "num_decoder_layers": 12, "num_heads": 12, "vocab_size": 32128,
                            "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False})
    assert t5.kind == "seq2seq" and t5.params_b == pytest.approx(0.248, rel=0.01)
    whisper = facts_from_config({"model_type": "whisper", "d_model": 1280, "encoder_layers": 32,
                                 "decoder_layers": 32, "encoder_attention_heads": 20,
                                 "decoder_attention_heads": 20, "encoder_ffn_dim": 5120,
                                 "decoder_ffn_dim": 5120, "vocab_size": 51866, "num_mel_bins": 128,
                                 "max_source_positions": 1500, "max_target_positions": 448})
    assert whisper.kind == "speech" and whisper.params_b == pytest.approx(1.55, rel=0.01)
    assert whisper.shapes["enc_tokens"] == 1500
    llava = facts_from_config({"model_type": "llava", "text_config": dict(LLAMA2_7B_CONFIG, vocab_size=32064),
                               "vision_config": {"hidden_size": 1024, "num_hidden_layers": 24,
                                                 "intermediate_size": 4096}})
    assert llava.kind == "multimodal" and llava.params_b == pytest.approx(7.06, rel=0.01)


@pytest.mark.parametrize("config", [{}, {"model_type": "unet"}, {"block_out_channels": [320, 640]},
                                    {"hidden_size": "big"}, [], "text"])
def test_config_without_shapes(config):
    assert facts_from_config(config) is None


def test_typical_shapes_are_sane():
    shapes = models.typical_shapes(7)
    assert 3500 < shapes["hidden"] < 5000 and shapes["layers"] == 32
    assert shapes["kv_heads"] == shapes["heads"] and shapes["vocab"] == 128256


# ------------------------------------------------------------------------------ resolve_model (CLI input)
def test_resolve_config_path_and_folder(tmp_path):
    folder = tmp_path / "my-llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA2_7B_CONFIG))
    by_file = resolve_model(str(folder / "config.json"))
    by_dir = resolve_model(str(folder))
    assert by_file.source == by_dir.source == "config"
    assert by_file.name == "my-llama"
    assert by_file.params_b == pytest.approx(6.738, rel=0.002)


def test_resolve_errors(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text('{"hidden_size": 4096,\n  oops}')
    with pytest.raises(UsageError) as err:
        resolve_model(str(bad))
    assert str(bad) in err.value.message and ":2:" in err.value.message
    unet = tmp_path / "unet.json"
    unet.write_text(json.dumps({"block_out_channels": [320]}))
    with pytest.raises(UsageError, match="no transformer shapes") as err:
        resolve_model(str(unet))
    assert "--params" in err.value.hint
    assert resolve_model(str(unet), params_b=0.86).params_b == 0.86
    with pytest.raises(UsageError) as err:
        resolve_model("acme/mystery-model")
    assert "--params 7" in err.value.hint
    with pytest.raises(UsageError, match="no such file"):
        resolve_model(str(tmp_path / "missing.json"))
    with pytest.raises(UsageError, match="--params"):
        resolve_model("gpt2", params_b=-3)


def test_resolve_params_override():
    unknown = resolve_model("acme/mystery-model", params_b=3)
    assert unknown.source == "user" and unknown.params_b == 3 and "--params 3" in unknown.note
    same = resolve_model("meta-llama/Llama-2-7b-hf", params_b=6.9)
    assert same.shapes is not None  # close to the table's size: its shapes still apply
    other = resolve_model("meta-llama/Llama-2-7b-hf", params_b=13)
    assert other.shapes is None and other.params_b == 13
