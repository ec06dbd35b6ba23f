"""The GPU catalog: ids, per-provider SkyPilot names checked against SkyPilot's own catalog files,
nvidia-smi names, and prices read from a cached SkyPilot catalog (a real copy of catalog v8 in a
temporary HOME) or from the built-in table."""

from __future__ import annotations

import ast
import csv
import json
import shutil
from pathlib import Path

import pytest

from gpu_lol.sizing import catalog
from gpu_lol.spec import PROVIDERS

REPO = Path(__file__).resolve().parent.parent
SKY_CLOUD = {"runpod": "RunPod", "vast": "Vast", "lambda": "Lambda"}


@pytest.fixture
def sky_catalog(shared_dir, isolated_home):
    """SkyPilot's catalog v8 (real files from ../shared) cached where SkyPilot keeps it."""
    dest = isolated_home / ".sky" / "catalogs" / "v8"
    shutil.copytree(shared_dir / "skypilot-catalog" / "v8", dest)
    return dest


def _accelerators(shared_dir) -> dict[str, list[str]]:
    out = {}
    with open(shared_dir / "skypilot-catalog" / "v8" / "common" / "accelerators.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            out[row["AcceleratorName"]] = ast.literal_eval(row["Clouds"])
    return out


def test_ids_match_the_schema():
    schema = json.loads((REPO / "gpu_lol" / "schema" / "gpu-lol.v1.schema.json").read_text())
    enum = [x for x in schema["properties"]["gpu_type"]["enum"] if x is not None]
    assert sorted(enum) == sorted(catalog.gpu_ids())
    for required in ("RTX3090", "RTX4090", "RTX5090", "L4", "A40", "RTXA6000", "L40S", "RTX6000-Ada",
                     "A100", "A100-80GB", "A100-80GB-SXM", "H100", "H100-SXM", "H100-NVL", "H200", "B200"):
        assert catalog.get_gpu(required) is not None


def test_provider_names_from_the_issue():
    name = catalog.provider_name
    assert name("RTXA6000", "runpod") == "RTXA6000" and name("RTXA6000", "vast") == "RTXA6000"
    assert name("RTXA6000", "lambda") == "A6000"
    assert name("A100-80GB", "runpod") == "A100-80GB" and name("A100-80GB-SXM", "runpod") == "A100-80GB-SXM"
    # Vast's "A100" is both the 40 GB and the 80 GB card: never offered for either
    assert name("A100-80GB", "vast") is None and name("A100", "vast") is None
    assert (name("H100", "runpod"), name("H100-SXM", "runpod"), name("H100-NVL", "runpod")) == \
        ("H100", "H100-SXM", "H100-NVL")
    assert name("H200", "runpod") == "H200-SXM" and name("H200", "vast") == "H200"
    for gpu_id in ("RTX3090", "RTX4090"):
        assert set(catalog.get_gpu(gpu_id).providers) == {"runpod", "vast"}
    assert name("RTX3090", "lambda") is None
    assert name("NOPE", "runpod") is None


def test_every_provider_name_is_one_skypilot_knows_for_that_cloud(shared_dir):
    clouds = _accelerators(shared_dir)
    for gpu in catalog.all_gpus():
        assert gpu.providers, gpu.id
        for provider, sky_name in gpu.providers.items():
            assert provider in PROVIDERS
            assert SKY_CLOUD[provider] in clouds.get(sky_name, []), f"{gpu.id}: {provider} {sky_name}"


def test_builtin_prices_are_consistent():
    for gpu in catalog.all_gpus():
        per_card = [total / n for by_count in gpu.prices.values() for n, total in by_count.items()]
        assert set(gpu.prices) == set(gpu.providers)
        assert gpu.price_hr == pytest.approx(min(per_card), abs=0.006), gpu.id


def test_builtin_counts_are_the_snapshots_counts(sky_catalog):
    # Where the snapshot lists a card for a provider, the built-in table rents exactly the counts
    # it lists (no 8x A6000 on Lambda when the catalog is not cached).
    for gpu in catalog.all_gpus():
        for provider, by_count in gpu.prices.items():
            listed = {n for (name, n) in catalog.read_sky_prices(provider) if name == gpu.providers[provider]}
            if listed:
                assert set(by_count) == listed, (gpu.id, provider)
    assert set(catalog.get_gpu("RTXA6000").prices["lambda"]) == {1}


def test_no_card_maps_to_an_ambiguous_vast_name(monkeypatch):
    for gpu in catalog.all_gpus():
        assert gpu.providers.get("vast") not in catalog.VAST_AMBIGUOUS, gpu.id
    rows = [{"id": "X", "vram_gb": 80, "price_hr": 1, "compute_capability": "8.0",
             "providers": {"vast": "A100"}}]
    monkeypatch.setattr(catalog, "load_yaml", lambda name: rows)
    catalog.all_gpus.cache_clear()
    try:
        with pytest.raises(ValueError, match="ambiguous"):
            catalog.all_gpus()
    finally:
        monkeypatch.undo()
        catalog.all_gpus.cache_clear()


def test_counts_by_provider_from_the_snapshot(sky_catalog):
    assert catalog.counts_by_provider("B200") == {"runpod": [1, 2, 4, 8], "lambda": [8]}
    assert catalog.counts_by_provider("H100", ["lambda"]) == {"lambda": [1, 8]}
    assert catalog.describe_counts({"runpod": [1, 2, 4, 8], "lambda": [8]}) == "RunPod 1, 2, 4 or 8; Lambda 8"


def test_builtin_prices_agree_with_the_skypilot_snapshot(sky_catalog):
    # Where the snapshot lists a card, the built-in fallback carries the same on-demand prices.
    for gpu in catalog.all_gpus():
        for provider, by_count in gpu.prices.items():
            sky = catalog.read_sky_prices(provider)
            listed = {n: p for (name, n), p in sky.items() if name == gpu.providers[provider]}
            if not listed:
                continue
            for n, price in listed.items():
                assert by_count.get(n) == pytest.approx(price, abs=0.006), (gpu.id, provider, n)


@pytest.mark.parametrize("smi, gpu_id", [
    ("NVIDIA H100 80GB HBM3", "H100-SXM"), ("NVIDIA A100-SXM4-80GB", "A100-80GB-SXM"),
    ("NVIDIA RTX A6000", "RTXA6000"), ("NVIDIA GeForce RTX 4090", "RTX4090"), ("NVIDIA H100 PCIe", "H100"),
    ("NVIDIA H100 NVL", "H100-NVL"), ("NVIDIA A100 80GB PCIe", "A100-80GB"), ("NVIDIA A100-SXM4-40GB", "A100"),
    ("NVIDIA L40S", "L40S"), ("NVIDIA L4", "L4"), ("NVIDIA RTX 6000 Ada Generation", "RTX6000-Ada"),
    ("NVIDIA H200", "H200"), ("NVIDIA B200", "B200"), ("  nvidia   h100 80gb hbm3 ", "H100-SXM"),
])
def test_nvidia_smi_names(smi, gpu_id):
    assert catalog.gpu_for_nvidia_smi_name(smi).id == gpu_id


@pytest.mark.parametrize("smi", ["", "Tesla T4", "NVIDIA GeForce GTX 1080", "NVIDIA L40", "AMD MI300X"])
def test_unknown_nvidia_smi_names(smi):
    assert catalog.gpu_for_nvidia_smi_name(smi) is None


def test_real_h100_fixture_name(shared_dir):
    row = (shared_dir / "fixtures" / "h100" / "nvidia-smi-query-noheader.csv").read_text().splitlines()[0]
    assert catalog.gpu_for_nvidia_smi_name(row.split(",")[0]).id == "H100-SXM"


def test_prices_without_a_cached_catalog_use_the_builtin_table():
    prices, source = catalog.price_table()
    assert source == "built-in table"
    assert set(prices) == set(catalog.gpu_ids())
    assert prices["RTX3090"] == 0.20
    lam, _ = catalog.price_table(["lambda"])
    assert set(lam) == {"RTXA6000", "A100", "A100-80GB", "H100", "B200"}
    assert lam["RTXA6000"] == 0.80
    assert lam["B200"] == pytest.approx(39.92 / 8)  # Lambda rents B200 only as 8 cards


def test_prices_from_the_cached_skypilot_catalog(sky_catalog):
    prices, source = catalog.price_table()
    assert source == "skypilot-catalog (~/.sky/catalogs/v8)"
    assert prices["RTX3090"] == 0.20 and prices["H100"] == 2.00 and prices["H200"] == 3.00
    runpod, _ = catalog.price_table(["runpod"])
    assert runpod["H200"] == 3.99 and runpod["RTX4090"] == 0.69
    # cards the cached catalog does not list are not rentable through SkyPilot right now
    assert "H100-NVL" not in runpod and "RTX6000-Ada" not in prices


def test_catalog_price_changes_are_picked_up(sky_catalog):
    path = sky_catalog / "vast" / "vms.csv"
    rows = list(csv.reader(path.open()))
    header = rows[0]
    price_col = header.index("Price")
    for row in rows[1:]:
        if row[header.index("AcceleratorName")] == "RTX3090":
            row[price_col] = f"{float(row[price_col]) * 0.5:.3f}"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    prices, _ = catalog.price_table(["vast"])
    assert prices["RTX3090"] == pytest.approx(0.10)


def test_memory_comes_from_our_catalog_not_runpod_gpuinfo(sky_catalog):
    # RunPod's vms.csv says SizeInMiB: 80 for an 80 GB card; the catalog rows keep our GiB.
    rows = {r["id"]: r for r in catalog.catalog_rows(["runpod"])}
    assert rows["H100-SXM"]["vram_gb"] == 80 and rows["H200"]["vram_gb"] == 141


def test_partial_and_broken_catalogs(isolated_home, shared_dir):
    base = isolated_home / ".sky" / "catalogs" / "v8"
    (base / "runpod").mkdir(parents=True)
    shutil.copy(shared_dir / "skypilot-catalog" / "v8" / "runpod" / "vms.csv", base / "runpod" / "vms.csv")
    (base / "vast").mkdir()
    (base / "vast" / "vms.csv").write_text("garbage,without,the,columns\n1,2,3,4\n")
    prices, source = catalog.price_table()
    assert source == "skypilot-catalog (~/.sky/catalogs/v8) + built-in table"
    assert prices["RTX3090"] == 0.20  # vast from the built-in table (its file is unreadable)
    assert catalog.read_sky_prices("vast") is None
    assert catalog.read_sky_prices("lambda") is None


def test_sky_runtime_dir_is_honoured(tmp_path, monkeypatch, shared_dir):
    shutil.copytree(shared_dir / "skypilot-catalog" / "v8", tmp_path / ".sky" / "catalogs" / "v8")
    monkeypatch.setenv("SKY_RUNTIME_DIR", str(tmp_path))
    assert catalog.sky_catalog_dir() == tmp_path / ".sky" / "catalogs" / "v8"
    assert catalog.read_sky_prices("runpod") is not None


def test_catalog_rows_for_gpus_command(sky_catalog):
    rows = catalog.catalog_rows(min_vram=80)
    assert rows and all(r["vram_gb"] >= 80 for r in rows)
    by_id = {r["id"]: r for r in rows}
    assert by_id["B200"]["providers"] == ["runpod", "lambda"] and by_id["B200"]["counts"] == [1, 2, 4, 8]
    assert by_id["H100-NVL"]["price_hr"] is None and by_id["H100-NVL"]["not_offered"] == ["runpod"]
    assert "vast" not in by_id["A100-80GB"]["provider_names"]
    assert by_id["B200"]["counts_by_provider"] == {"runpod": [1, 2, 4, 8], "lambda": [8]}
