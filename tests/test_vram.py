"""The VRAM model: each term, the multi-GPU rules, and calibration against measured H100 peaks.

Run as a script (``python tests/test_vram.py --write-docs``) to regenerate the estimate-vs-measured
table in docs/vram.md; a test checks the doc matches the code.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pytest

from gpu_lol.sizing import vram
from gpu_lol.sizing.models import ModelFacts, lookup_model

GIB = 2 ** 30
REPO = Path(__file__).resolve().parent.parent
MEASURED = REPO.parent / "shared" / "vram" / "h100-measured.jsonl"
DOC = REPO / "docs" / "vram.md"

# Shapes from ../shared/vram/README.md: hidden, intermediate, layers, heads, kv_heads, vocab, tied, params
README_SHAPES = {
    "qwen2.5-0.5b-like": (896, 4864, 24, 14, 2, 151936, True, 0.494),
    "llama-3.2-1b": (2048, 8192, 16, 32, 8, 128256, True, 1.236),
    "llama-2-7b": (4096, 11008, 32, 32, 32, 32000, False, 6.738),
    "llama-2-13b": (5120, 13824, 40, 40, 40, 32000, False, 13.016),
}
CASE_METHOD = {"inference-bf16": "inference", "inference-nf4": "inference-int4", "lora-bf16": "lora",
               "qlora-nf4": "qlora", "full-ft-mixed-adamw": "full"}


def _facts(model: str) -> ModelFacts:
    h, inter, layers, heads, kv, vocab, tied, params = README_SHAPES[model]
    shapes = {"hidden": h, "intermediate": inter, "layers": layers, "heads": heads, "kv_heads": kv,
              "vocab": vocab, "tied": tied}
    return ModelFacts(model, params, None, "llm", shapes, "table", "calibration shapes")


def measured_rows() -> list[dict]:
    return [json.loads(line) for line in MEASURED.read_text().splitlines() if line.strip()]


def estimate_for_row(row: dict) -> vram.Estimate:
    seq = row.get("seq") or (row["prompt"] + row["decode"])
    return vram.estimate(facts=_facts(row["model"]), method=CASE_METHOD[row["case"]],
                         batch_size=row["batch"], seq_len=seq)


def calibration_table() -> str:
    lines = ["| workload | model | batch x tokens | measured peak reserved | + 0.5 context | "
             "estimate | estimate / (measured + 0.5) | allowed range |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for row in measured_rows():
        est = estimate_for_row(row)
        measured = row["peak_reserved_gb"]
        seq = row.get("seq") or (row["prompt"] + row["decode"])
        low, high = measured + 0.5, 1.5 * measured + 1
        lines.append(f"| {row['case']} | {row['model']} | {row['batch']} x {seq} | {measured:.2f} | "
                     f"{low:.2f} | {est.per_gpu_gb:.2f} | {est.per_gpu_gb / low:.2f} | "
                     f"{low:.2f} - {high:.2f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ calibration
@pytest.mark.skipif(not MEASURED.exists(), reason="../shared/vram is not beside the checkout")
@pytest.mark.parametrize("index", range(10))
def test_estimate_brackets_measured_peak(index):
    rows = measured_rows()
    assert len(rows) >= 10
    row = rows[index]
    est = estimate_for_row(row)
    measured = row["peak_reserved_gb"]
    assert est.per_gpu_gb >= measured + 0.5, (row, est.breakdown)
    assert est.per_gpu_gb <= 1.5 * measured + 1.0, (row, est.breakdown)


@pytest.mark.skipif(not MEASURED.exists(), reason="../shared/vram is not beside the checkout")
def test_docs_table_matches_the_model():
    text = DOC.read_text()
    assert calibration_table() in text, "docs/vram.md is stale: run python tests/test_vram.py --write-docs"


def test_table_shapes_match_the_calibration_shapes():
    # The model table must agree with the measured models' shapes (else the calibration tells us little).
    for model_id, key in (("meta-llama/Llama-2-7b-hf", "llama-2-7b"),
                          ("meta-llama/Llama-2-13b-hf", "llama-2-13b"),
                          ("meta-llama/Llama-3.2-1B", "llama-3.2-1b"),
                          ("Qwen/Qwen2.5-0.5B", "qwen2.5-0.5b-like")):
        facts = lookup_model(model_id)
        h, inter, layers, heads, kv, vocab, tied, params = README_SHAPES[key]
        s = facts.shapes
        assert (s["hidden"], s["intermediate"], s["layers"], s["heads"], s["kv_heads"], s["vocab"],
                s["tied"]) == (h, inter, layers, heads, kv, vocab, tied)
        assert facts.params_b == pytest.approx(params, rel=0.01)


# ------------------------------------------------------------------------------ terms
LLAMA7 = _facts("llama-2-7b")


def test_weights_bytes_per_param_by_method():
    bf16 = vram.estimate(facts=LLAMA7, method="inference").breakdown["weights"]
    assert bf16 == pytest.approx(6.738e9 * 2 / GIB, abs=0.01)
    int8 = vram.estimate(facts=LLAMA7, method="inference-int8").breakdown["weights"]
    int4 = vram.estimate(facts=LLAMA7, method="inference-int4").breakdown["weights"]
    emb = 2 * 32000 * 4096  # untied embeddings + lm_head stay 16-bit
    assert int8 == pytest.approx(((6.738e9 - emb) * 1.0 + emb * 2) / GIB, abs=0.01)
    assert int4 == pytest.approx(((6.738e9 - emb) * (0.5 + 4 / 64) + emb * 2) / GIB, abs=0.01)
    assert int4 < int8 < bf16
    full = vram.estimate(facts=LLAMA7, method="full").breakdown["weights"]
    assert full == pytest.approx(6.738e9 * 6 / GIB, abs=0.01)  # fp32 master + bf16 autocast copy


def test_embeddings_stay_16bit_when_quantized():
    # A model dominated by its vocabulary (Gemma 3 270M: 168M of 268M are embeddings) barely shrinks.
    facts = lookup_model("google/gemma-3-270m")
    bf16 = vram.estimate(facts=facts, method="inference").breakdown["weights"]
    int4 = vram.estimate(facts=facts, method="inference-int4").breakdown["weights"]
    assert int4 > 0.6 * bf16


def test_full_training_gradients_and_optimizer_states():
    est = vram.estimate(params_b=1.0, method="full")
    assert est.breakdown["gradients"] == pytest.approx(1e9 * 4 / GIB, abs=0.01)
    assert est.breakdown["optimizer"] == pytest.approx(1e9 * 8 / GIB, abs=0.01)
    eight_bit = vram.estimate(params_b=1.0, method="full", optimizer="paged_adamw_8bit")
    assert eight_bit.breakdown["optimizer"] == pytest.approx(1e9 * 2 / GIB, abs=0.01)
    assert vram.estimate(params_b=1.0, method="full", optimizer="sgd").breakdown["optimizer"] == \
        pytest.approx(1e9 * 4 / GIB, abs=0.01)
    assert est.breakdown["adapters"] == 0


def test_lora_adapters_rank16_qkvo():
    est = vram.estimate(facts=LLAMA7, method="lora", batch_size=1, seq_len=128)
    lora_params = 16 * (4096 + 4096) * 4 * 32  # r * (in + out) for q, k, v, o on 32 layers
    assert est.breakdown["adapters"] == pytest.approx(lora_params * 16 / GIB, abs=0.01)
    assert est.breakdown["gradients"] == 0 and est.breakdown["optimizer"] == 0
    # GQA: k/v projections are narrower, so fewer adapter parameters
    gqa = vram.estimate(facts=lookup_model("meta-llama/Llama-3.1-8B"), method="lora")
    assert any("LoRA r=16" in line for line in gqa.assumptions)


def test_kv_cache_formula_and_gqa():
    est = vram.estimate(facts=LLAMA7, method="inference", batch_size=1, seq_len=4096)
    # 2 (K and V) x 32 layers x 32 heads x 128 dims x 2 bytes x 4096 tokens = 2 GiB
    assert est.breakdown["kv_cache"] == pytest.approx(2.0, abs=0.01)
    llama3 = lookup_model("meta-llama/Llama-3.1-8B")
    gqa = vram.estimate(facts=llama3, method="inference", batch_size=1, seq_len=4096)
    assert gqa.breakdown["kv_cache"] == pytest.approx(0.5, abs=0.01)  # 8 KV heads instead of 32
    doubled = vram.estimate(facts=llama3, method="inference", batch_size=2, seq_len=4096)
    assert doubled.breakdown["kv_cache"] == pytest.approx(1.0, abs=0.01)
    assert vram.estimate(facts=llama3, method="lora").breakdown["kv_cache"] == 0  # no cache in training


def test_mla_cache_is_the_compressed_latent():
    ds = lookup_model("deepseek-ai/DeepSeek-V3")
    est = vram.estimate(facts=ds, method="inference-int8", batch_size=1, seq_len=4096, gpu_count=8)
    per_token = 61 * 576 * 2  # layers x (512 latent + 64 rope) x 2 bytes
    assert est.breakdown["kv_cache"] == pytest.approx(per_token * 4096 / GIB / 8, abs=0.01)


def test_activations_scale_with_tokens_and_checkpointing_cuts_them():
    a = vram.estimate(facts=LLAMA7, method="lora", batch_size=2, seq_len=512).breakdown["activations"]
    b = vram.estimate(facts=LLAMA7, method="lora", batch_size=4, seq_len=512).breakdown["activations"]
    c = vram.estimate(facts=LLAMA7, method="lora", batch_size=4, seq_len=1024).breakdown["activations"]
    assert b == pytest.approx(2 * a, rel=0.02) and c == pytest.approx(2 * b, rel=0.02)
    gc = vram.estimate(facts=LLAMA7, method="lora", batch_size=4, seq_len=512,
                       gradient_checkpointing=True).breakdown["activations"]
    assert gc < 0.25 * b


def test_logits_dominate_small_models_with_big_vocabularies():
    qwen = lookup_model("Qwen/Qwen2.5-0.5B")
    est = vram.estimate(facts=qwen, method="full", batch_size=4, seq_len=512)
    logits = 4 * 512 * 151936 * 16 / GIB
    assert est.breakdown["activations"] > logits
    assert any("logits" in line for line in est.assumptions)


def test_overhead_and_context_are_always_counted():
    est = vram.estimate(params_b=0.1, method="inference")
    assert est.breakdown["cuda_context"] == vram.CUDA_CONTEXT_GB
    assert est.breakdown["overhead"] >= vram.OVERHEAD_BASE_GB
    assert est.per_gpu_gb == pytest.approx(sum(est.breakdown.values()), abs=0.05)


def test_defaults_are_stated_and_capped_by_context():
    est = vram.estimate(facts=lookup_model("gpt2"), method="inference")
    assert any("1,024 tokens" in line and "default" in line for line in est.assumptions)
    train = vram.estimate(facts=LLAMA7, method="lora")
    assert any(line.startswith("batch 4 x 512 tokens") for line in train.assumptions)
    given = vram.estimate(facts=LLAMA7, method="lora", batch_size=2, seq_len=256)
    assert any(line == "batch 2 x 256 tokens (given)" for line in given.assumptions)


def test_unknown_shapes_are_guessed_and_said():
    est = vram.estimate(params_b=7, method="inference")
    assert any("guessed" in line for line in est.assumptions)
    assert est.breakdown["weights"] == pytest.approx(7e9 * 2 / GIB, abs=0.01)
    assert est.breakdown["kv_cache"] > 0


def test_moe_keeps_all_experts_in_memory():
    mixtral = lookup_model("mistralai/Mixtral-8x7B-v0.1")
    est = vram.estimate(facts=mixtral, method="inference", gpu_count=1)
    assert est.breakdown["weights"] == pytest.approx(46.7e9 * 2 / GIB, abs=0.05)
    assert any("mixture of experts" in line for line in est.assumptions)


def test_non_transformer_models():
    yolo = lookup_model("yolov8n.pt")
    train = vram.estimate(facts=yolo, method="full")
    assert 1.0 < train.per_gpu_gb < 8  # batch 16 at 640px: a couple of GiB
    gc = vram.estimate(facts=yolo, method="full", gradient_checkpointing=True)
    assert gc.breakdown["activations"] < train.breakdown["activations"]
    sdxl = vram.estimate(facts=lookup_model("stabilityai/stable-diffusion-xl-base-1.0"), method="inference")
    assert 8 < sdxl.per_gpu_gb < 16


# ------------------------------------------------------------------------------ multi-GPU
def test_inference_splits_weights_and_cache():
    one = vram.estimate(facts=LLAMA7, method="inference", seq_len=4096)
    four = vram.estimate(facts=LLAMA7, method="inference", seq_len=4096, gpu_count=4)
    assert four.breakdown["weights"] < one.breakdown["weights"] / 4 + 1.0  # plus one layer of imbalance
    assert four.breakdown["weights"] > one.breakdown["weights"] / 4
    assert four.breakdown["kv_cache"] == pytest.approx(one.breakdown["kv_cache"] / 4, abs=0.01)
    assert four.total_gb == pytest.approx(four.per_gpu_gb * 4, abs=0.05)
    tp = vram.estimate(facts=LLAMA7, method="inference", seq_len=4096, gpu_count=4, tensor_parallel=4)
    assert tp.breakdown["weights"] == pytest.approx(one.breakdown["weights"] / 4, abs=0.01)


def test_ddp_replicates_and_zero_stages_shard():
    kw = dict(facts=LLAMA7, method="full", batch_size=1, seq_len=512)
    one = vram.estimate(**kw)
    ddp = vram.estimate(**kw, gpu_count=4)
    assert ddp.breakdown["weights"] == one.breakdown["weights"]
    assert ddp.breakdown["optimizer"] == one.breakdown["optimizer"]
    assert ddp.breakdown["gradients"] > one.breakdown["gradients"]  # gradient buckets
    z1 = vram.estimate(**kw, gpu_count=4, zero_stage=1)
    assert z1.breakdown["optimizer"] == pytest.approx(one.breakdown["optimizer"] / 4, abs=0.01)
    assert z1.breakdown["weights"] == one.breakdown["weights"]
    z2 = vram.estimate(**kw, gpu_count=4, zero_stage=2)
    assert z2.breakdown["gradients"] == pytest.approx(one.breakdown["gradients"] / 4, abs=0.01)
    z3 = vram.estimate(**kw, gpu_count=4, zero_stage=3)
    fsdp = vram.estimate(**kw, gpu_count=4, fsdp=True)
    assert z3.breakdown == fsdp.breakdown
    assert z3.breakdown["weights"] < one.breakdown["weights"] / 4 + 1.0
    assert z3.per_gpu_gb < z2.per_gpu_gb < z1.per_gpu_gb < ddp.per_gpu_gb


def test_need_for_count_shards_training_by_default():
    need = vram.need_for_count(facts=LLAMA7, method="full", batch_size=1, seq_len=512)
    assert need(8) < need(4) < need(2) < need(1)
    ddp = vram.need_for_count(facts=LLAMA7, method="full", batch_size=1, seq_len=512, zero_stage=0,
                              fsdp=False)
    assert ddp(4) >= ddp(1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(params_b=7, method="training"), "unknown method"),
    (dict(params_b=7, gpu_count=0), "gpu_count"),
    (dict(params_b=7, gpu_count=4, tensor_parallel=3), "divide"),
    (dict(params_b=7, method="full", optimizer="magic"), "unknown optimizer"),
    (dict(method="inference"), "params_b or facts"),
    (dict(params_b=-1), "positive"),
    (dict(params_b=math.nan), "positive"),
    (dict(params_b=7, batch_size=0), "batch_size"),
    (dict(params_b=7, seq_len=0), "seq_len"),
    (dict(params_b=7, batch_size=2.5), "batch_size"),
    (dict(params_b=7, zero_stage=4), "zero_stage"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        vram.estimate(**kwargs)


def _write_docs() -> None:
    text = DOC.read_text()
    start, end = "<!-- calibration-table:start -->", "<!-- calibration-table:end -->"
    new = f"{start}\n{calibration_table()}\n{end}"
    text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _m: new, text, flags=re.S)
    DOC.write_text(text)


if __name__ == "__main__":  # pragma: no cover
    if "--write-docs" in sys.argv:
        _write_docs()
    else:
        print(calibration_table())
