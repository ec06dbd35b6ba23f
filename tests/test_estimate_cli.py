"""`gpu-lol estimate` and `gpu-lol gpus` through the real entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from gpu_lol import spec
from gpu_lol.sizing import vram
from gpu_lol.sizing.models import lookup_model


@pytest.fixture
def sky_catalog(shared_dir, isolated_home):
    dest = isolated_home / ".sky" / "catalogs" / "v8"
    shutil.copytree(shared_dir / "skypilot-catalog" / "v8", dest)
    return dest


def test_estimate_json_fields(run_cli):
    res = run_cli("estimate", "meta-llama/Llama-2-7b-hf", "--json")
    assert res.code == 0, res
    data = res.json()
    for key in ("vram_gb", "total_vram_gb", "params_b", "method", "gpu_type", "gpu_count", "breakdown"):
        assert key in data
    expected = vram.estimate(facts=lookup_model("meta-llama/Llama-2-7b-hf"), method="inference")
    assert data["vram_gb"] == expected.per_gpu_gb and data["breakdown"] == expected.breakdown
    assert data["params_b"] == pytest.approx(6.74) and data["method"] == "inference"
    assert (data["gpu_type"], data["gpu_count"], data["fits"]) == ("RTX3090", 1, True)
    assert data["model_source"] == "table" and data["price_source"] == "built-in table"
    assert data["alternatives"] and data["assumptions"]


def test_estimate_options(run_cli):
    res = run_cli("estimate", "meta-llama/Llama-3.1-8B", "--method", "qlora", "--batch-size", "2",
                  "--seq-len", "1024", "--json")
    data = res.json()
    assert data["method"] == "qlora" and "batch 2 x 1,024 tokens (given)" in data["assumptions"]
    assert data["breakdown"]["adapters"] > 0
    two = run_cli("estimate", "meta-llama/Llama-3.1-70B", "--gpus", "2", "--json").json()
    assert two["gpu_count"] == 2 and two["total_vram_gb"] == pytest.approx(2 * two["vram_gb"], abs=0.02)
    lam = run_cli("estimate", "gpt2", "-p", "lambda", "--json").json()
    assert lam["providers"] == ["lambda"]
    h100 = run_cli("estimate", "gpt2", "--gpu", "H100", "--json").json()
    assert h100["gpu_type"] == "H100"
    ddp = run_cli("estimate", "meta-llama/Llama-3.1-8B", "-m", "full", "--gpus", "4", "--sharding", "ddp",
                  "--json").json()
    assert ddp["fits"] is False and ddp["warnings"]
    ck = run_cli("estimate", "meta-llama/Llama-3.1-8B", "-m", "lora", "--gradient-checkpointing", "--json").json()
    plain = run_cli("estimate", "meta-llama/Llama-3.1-8B", "-m", "lora", "--json").json()
    assert ck["breakdown"]["activations"] < plain["breakdown"]["activations"]


def test_estimate_human_output(run_cli):
    res = run_cli("estimate", "mistralai/Mixtral-8x7B-v0.1")
    assert res.code == 0, res
    out = res.out
    for text in ("Mixtral-8x7B", "46.7B parameters", "12.88B active", "Memory per GPU", "weights",
                 "KV cache", "needed per GPU", "Cheapest GPUs that fit", "$/hr", "built-in table"):
        assert text in out, text


def test_estimate_with_cached_skypilot_catalog(run_cli, sky_catalog):
    data = run_cli("estimate", "gpt2", "--json").json()
    assert data["price_source"] == "skypilot-catalog (~/.sky/catalogs/v8)"


def test_unknown_model_is_a_clear_usage_error(run_cli):
    res = run_cli("estimate", "acme/mystery-model")
    assert res.code == 2
    lines = res.err.strip().splitlines()
    assert lines[0].startswith("error: unknown model 'acme/mystery-model'")
    assert lines[1].startswith("hint:") and "--params 7" in lines[1]
    assert "Traceback" not in res.err and res.out == ""


def test_unknown_model_with_params(run_cli):
    data = run_cli("estimate", "acme/mystery-model", "--params", "3", "--json").json()
    assert data["params_b"] == 3 and data["model_source"] == "user"
    sized = run_cli("estimate", "acme/foo-13b-chat", "--json").json()
    assert sized["model_source"] == "name-size" and sized["params_b"] == 13


def test_config_json_path(run_cli, tmp_path):
    cfg = {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
           "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
           "tie_word_embeddings": True, "max_position_embeddings": 32768}
    path = tmp_path / "tiny" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(cfg))
    data = run_cli("estimate", str(path), "-m", "full", "--json").json()
    assert data["model_source"] == "config" and data["params_b"] == pytest.approx(0.494, rel=0.01)
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    res = run_cli("estimate", str(bad))
    assert res.code == 2 and str(bad) in res.err and "not valid JSON" in res.err


@pytest.mark.parametrize("args, text", [
    (("--batch-size", "0"), "--batch-size must be at least 1"),
    (("--gpus", "0"), "--gpus must be at least 1"),
    (("--gpu", "H900"), "unknown GPU type"),
    (("--optimizer", "magic", "-m", "full"), "unknown optimizer"),
    (("--tensor-parallel", "3", "--gpus", "4"), "must divide"),
    (("--params", "-1"), "--params"),
])
def test_bad_options(run_cli, args, text):
    res = run_cli("estimate", "gpt2", *args)
    assert res.code == 2, res
    assert text in res.err and "Traceback" not in res.err


def test_bad_choice_is_click_usage(run_cli):
    res = run_cli("estimate", "gpt2", "--method", "training")
    assert res.code == 2 and "training" in res.err


def test_gpus_json_and_filter(run_cli):
    rows = run_cli("gpus", "--json").json()
    assert {r["id"] for r in rows} >= {"RTX3090", "H100", "B200"}
    for row in rows:
        assert set(row) >= {"id", "vram_gb", "price_hr", "providers", "price_source", "provider_names"}
    big = run_cli("gpus", "--json", "--min-vram", "80").json()
    assert big and all(r["vram_gb"] >= 80 for r in big)
    lam = run_cli("gpus", "--json", "-p", "lambda").json()
    assert {r["id"] for r in lam} == {"RTXA6000", "A100", "A100-80GB", "H100", "B200"}
    assert next(r for r in lam if r["id"] == "RTXA6000")["provider_names"] == {"lambda": "A6000"}


def test_gpus_human_output(run_cli, sky_catalog):
    res = run_cli("gpus")
    assert res.code == 0
    for text in ("RTX3090", "H200", "runpod (H200-SXM)", "lambda (A6000)", "$/hr",
                 "skypilot-catalog (~/.sky/catalogs/v8)"):
        assert text in res.out, text
    none = run_cli("gpus", "--min-vram", "1000")
    assert none.code == 0 and "no GPU" in none.err
    neg = run_cli("gpus", "--min-vram", "-5")
    assert neg.code == 2


def test_choices_match_the_spec():
    from gpu_lol.commands import estimate, gpus

    assert estimate.METHOD_CHOICES == spec.METHODS
    assert estimate.PROVIDER_CHOICES == spec.PROVIDERS == gpus.PROVIDER_CHOICES


def test_command_modules_import_only_click():
    code = ("import sys, gpu_lol.commands.estimate, gpu_lol.commands.gpus\n"
            "heavy = [m for m in ('rich', 'yaml', 'sky', 'httpx', 'openai', 'gpu_lol.sizing.vram', "
            "'gpu_lol.sizing.catalog', 'gpu_lol.sizing.models') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_real_console_script(gpu_lol_exe, isolated_home):
    res = subprocess.run([*gpu_lol_exe, "estimate", "Qwen/Qwen2.5-0.5B-Instruct", "--json"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["params_b"] == pytest.approx(0.49)
