"""The corpus scorer (bench/score_corpus.py): scoring rules, splits, per-kind and confusion reports.

The end-to-end test builds a real git repository, exports it the way the scorer does for a
fetched snapshot, and runs the real `gpu-lol analyze --json` on it.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scorer():
    spec = importlib.util.spec_from_file_location("score_corpus", ROOT / "bench" / "score_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["score_corpus"] = module
    spec.loader.exec_module(module)
    return module


def gpu_labels(**kw):
    labels = {"workload": "training", "gpu_count": 1, "min_vram_gb": 20, "max_vram_gb": 48}
    labels.update(kw)
    return labels


def answer(workload="training", count=1, gpu="L40S", vram=24.0):
    return {"workload_type": workload, "gpu_count": count, "gpu_type": gpu, "vram_required_gb": vram}


def test_all_right_needs_workload_count_and_vram_in_range(scorer):
    assert scorer.score_entry(gpu_labels(), answer())["all"] is True
    assert scorer.score_entry(gpu_labels(), answer(workload="inference"))["all"] is False
    assert scorer.score_entry(gpu_labels(), answer(count=2))["all"] is False
    too_big = scorer.score_entry(gpu_labels(), answer(vram=60))
    assert too_big["gpu"] is False and too_big["workload"] is True


def test_an_acceptable_gpu_is_a_card_that_holds_the_labelled_minimum(scorer):
    # the label says the main path needs an 80 GB card; a 55 GB estimate on an 80 GB card is right
    labels = gpu_labels(min_vram_gb=80, max_vram_gb=80)
    right = scorer.score_entry(labels, answer(gpu="H100", vram=55))
    assert right["gpu"] is True and right["need_in_range"] is False
    # an under-estimate that lands on a 48 GB card would OOM
    assert scorer.score_entry(labels, answer(gpu="L40S", vram=40))["gpu"] is False
    # an over-estimate that lands on a card beyond the sensible maximum is waste
    assert scorer.score_entry(gpu_labels(min_vram_gb=10, max_vram_gb=24), answer(gpu="H200", vram=100))["gpu"] is False
    # ... but not when it still lands on the smallest card there is (nothing cheaper in memory)
    small = gpu_labels(min_vram_gb=4, max_vram_gb=8)
    assert scorer.smallest_card() == 24
    assert scorer.score_entry(small, answer(gpu="RTX3090", vram=12))["gpu"] is True
    assert scorer.score_entry(small, answer(gpu="RTX3090", vram=12))["vram_ratio"] is False  # 3x the need
    assert scorer.score_entry(small, answer(gpu="A40", vram=30))["gpu"] is False
    # a card that does not hold its own estimate is never acceptable
    assert scorer.score_entry(gpu_labels(min_vram_gb=80, max_vram_gb=None), answer(gpu="H100", vram=90))["gpu"] is False
    assert scorer.card_vram("H100") == 80 and scorer.card_vram("nope") is None


def test_vram_ratio_bounds_are_relative_to_the_labelled_minimum(scorer):
    labels = gpu_labels(min_vram_gb=20, max_vram_gb=None)
    assert scorer.score_entry(labels, answer(vram=16))["vram_ratio"] is True  # 0.8x
    assert scorer.score_entry(labels, answer(vram=15.9))["vram_ratio"] is False
    assert scorer.score_entry(labels, answer(vram=50))["vram_ratio"] is True  # 2.5x
    assert scorer.score_entry(labels, answer(vram=50.1))["vram_ratio"] is False
    # a CPU answer to a GPU label is never "close"
    assert scorer.score_entry(labels, answer(count=0, gpu=None, vram=0))["vram_ratio"] is False
    # CPU labels do not take part
    cpu = {"workload": "cpu", "gpu_count": 0, "min_vram_gb": None, "max_vram_gb": None}
    assert scorer.score_entry(cpu, answer(workload="cpu", count=0, gpu=None, vram=0))["vram_ratio"] is None
    assert scorer.score_entry(cpu, None)["vram_ratio"] is None


def test_cpu_labels_need_no_gpu(scorer):
    cpu = {"workload": "cpu", "gpu_count": 0, "min_vram_gb": None, "max_vram_gb": None}
    assert scorer.score_entry(cpu, answer(workload="cpu", count=0, gpu=None, vram=0))["all"] is True
    assert scorer.score_entry(cpu, answer(workload="cpu", count=1, gpu="T4", vram=4))["all"] is False


def test_confusion_and_per_kind(scorer):
    results = [
        {"status": "ok", "kind": "notebooks", "labels": {"workload": ["interactive", "cpu"]},
         "output": {"workload_type": "cpu"}, "score": {"all": True}},
        {"status": "ok", "kind": "notebooks", "labels": {"workload": "interactive"},
         "output": {"workload_type": "training"}, "score": {"all": False}},
        {"status": "analyzer-error", "kind": "agents-api", "labels": {"workload": "cpu"}, "score": {"all": False}},
    ]
    conf = scorer.workload_confusion(results)
    assert conf == {"cpu": {"cpu": 1, "error": 1}, "interactive": {"training": 1}}
    summary = scorer.summarize(results)
    assert summary["per_kind"] == {"agents-api": {"right": 0, "total": 1}, "notebooks": {"right": 1, "total": 2}}


def test_calibration_counts_right_per_stated_confidence(scorer):
    def result(level, right, status="ok"):
        return {"status": status, "labels": {"workload": "training"},
                "output": {"workload_type": "training", "confidence": {"workload": level, "overall": level}},
                "score": {"workload": right, "all": right}}

    table = scorer.calibration([result("low", False), result("high", True), result("high", False),
                                result("low", True), result("high", True, status="analyzer-error")])
    assert table["workload"] == {"high": {"right": 1, "total": 2}, "low": {"right": 1, "total": 2}}
    assert list(table["overall"]) == ["high", "low"]  # high first, whatever order they came in
    assert "vram" not in table  # no entry stated a VRAM confidence


def test_splits_are_disjoint_and_tagged(scorer, tmp_path, monkeypatch):
    dev, held = tmp_path / "corpus.yaml", tmp_path / "heldout.yaml"
    entry = "- id: {id}\n  repo: o/{id}\n  commit: abc\n  labels: {{workload: cpu, gpu_count: 0, min_vram_gb: null, max_vram_gb: null}}\n"
    dev.write_text(entry.format(id="a"))
    held.write_text(entry.format(id="b"))
    monkeypatch.setitem(scorer.SPLITS, "dev", [dev])
    monkeypatch.setitem(scorer.SPLITS, "heldout", [held])
    monkeypatch.setitem(scorer.SPLITS, "all", [dev, held])
    assert [(e["id"], e["split"]) for e in scorer.load_split("all")] == [("a", "dev"), ("b", "heldout")]
    held.write_text(entry.format(id="a"))
    with pytest.raises(scorer.SetupError, match="also in"):
        scorer.load_split("all")


def test_the_real_corpus_files_are_valid(scorer):
    entries = scorer.load_corpus(ROOT / "bench" / "corpus.yaml")
    assert len(entries) >= 60
    held = ROOT / "bench" / "heldout.yaml"
    if held.exists():
        ids = {e["id"] for e in entries}
        assert not ids & {e["id"] for e in scorer.load_corpus(held)}


def test_end_to_end_on_a_real_snapshot(scorer, tmp_path):
    work = tmp_path / "src"
    work.mkdir()
    (work / "README.md").write_text("# tiny\n\nA pandas report.\n\n```bash\npython report.py\n```\n")
    (work / "requirements.txt").write_text("pandas\nscikit-learn\n")
    (work / "report.py").write_text("import pandas as pd\nprint(pd.DataFrame({'a': [1]}).describe())\n")
    git = ["git", "-C", str(work), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    mirrors = tmp_path / "mirrors"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(mirrors / "someone+tiny" / "repo")], check=True)
    corpus = tmp_path / "c.yaml"
    corpus.write_text(
        f"- id: tiny\n  repo: someone/tiny\n  commit: {sha}\n  kind: classic-ml\n"
        "  labels: {workload: cpu, gpu_count: 0, min_vram_gb: null, max_vram_gb: null}\n"
    )
    exe = Path(sys.executable).with_name("gpu-lol")
    out = tmp_path / "r.json"
    rc = scorer.main(["--corpus", str(corpus), "--mirrors", str(mirrors), "--gpu-lol", str(exe), "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    (result,) = data["results"]
    assert result["status"] == "ok", result
    assert result["commit"] == sha
    assert data["summary"]["per_kind"] == {"classic-ml": {"right": 1 if result["score"]["all"] else 0, "total": 1}}
    assert result["output"]["workload_type"] == "cpu"
