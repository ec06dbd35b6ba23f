"""GPU selection: cheapest fit with headroom, multi-GPU, user overrides, providers, nothing fits."""

from __future__ import annotations

import shutil

import pytest

from gpu_lol.errors import UsageError
from gpu_lol.sizing import catalog, selection
from gpu_lol.sizing.models import lookup_model
from gpu_lol.sizing.selection import HEADROOM, choose, pick_for


def flat(gb: float):
    """The same need on any number of GPUs (work that does not shrink when split, e.g. DDP)."""
    return lambda n: gb


def split(total: float, per_gpu_overhead: float = 1.0):
    return lambda n: total / n + per_gpu_overhead


@pytest.fixture
def sky_catalog(shared_dir, isolated_home):
    dest = isolated_home / ".sky" / "catalogs" / "v8"
    shutil.copytree(shared_dir / "skypilot-catalog" / "v8", dest)
    return dest


def test_cheapest_single_gpu_that_fits():
    sel = choose(flat(17.3))
    assert (sel.gpu_type, sel.gpu_count) == ("RTX3090", 1)
    assert sel.fits and sel.price_hr == 0.20 and sel.price_source == "built-in table"
    assert sel.providers == ["runpod", "vast"]
    assert "cheapest fit" in sel.reason and "RTX3090" in sel.reason
    prices = [a.price_hr for a in sel.alternatives]
    assert prices == sorted(prices) and all(a.fits for a in sel.alternatives)
    assert len({a.gpu_type for a in sel.alternatives}) == len(sel.alternatives)


def test_headroom_is_respected():
    # 22 GiB is more than 90% of a 24 GiB card: a 32 GiB card or more is needed
    sel = choose(flat(22.0))
    assert sel.vram_per_gpu_gb * HEADROOM >= 22.0
    assert sel.gpu_type not in ("RTX3090", "RTX4090", "L4")
    exactly = choose(flat(24 * HEADROOM))
    assert exactly.gpu_type == "RTX3090"


def test_multi_gpu_when_no_card_holds_it():
    sel = choose(split(400.0))
    assert sel.gpu_count > 1 and sel.fits
    assert sel.need_per_gpu_gb == pytest.approx(400.0 / sel.gpu_count + 1.0)
    assert sel.need_per_gpu_gb <= sel.vram_per_gpu_gb * HEADROOM  # never more than a card holds
    assert sel.price_hr == pytest.approx(catalog.get_gpu(sel.gpu_type).price_hr * sel.gpu_count, abs=0.01)
    assert "no single card holds" in sel.reason
    # it really is the cheapest fitting total
    for n in (1, 2, 4, 8):
        for gpu in catalog.all_gpus():
            if 400.0 / n + 1.0 <= gpu.vram_gb * HEADROOM:
                assert gpu.price_hr * n >= sel.price_hr - 0.01


def test_split_beats_a_big_card_only_when_cheaper():
    sel = choose(split(150.0, per_gpu_overhead=2.0))  # B200 holds it alone; 4x A40 is cheaper
    assert sel.gpu_count > 1
    assert "cheaper than 1x B200" in sel.reason


def test_not_shardable_and_too_big_returns_largest_card_with_warning():
    sel = choose(flat(400.0), shardable=False)
    assert sel.gpu_count == 1 and sel.gpu_type == "B200" and not sel.fits
    assert len(sel.warnings) == 1
    warning = sel.warnings[0]
    assert "nothing fits on one GPU" in warning and "cannot be split" in warning
    assert "400.0 GiB" in warning and "short by 238.0 GiB" in warning


def test_shardable_but_nothing_fits_even_on_eight():
    sel = choose(split(5000.0))
    assert not sel.fits and sel.gpu_count == 8 and sel.gpu_type == "B200"
    assert "even split over 8 GPUs" in sel.warnings[0]


def test_shardable_false_only_considers_one_gpu():
    sel = choose(split(100.0), shardable=False)
    assert sel.gpu_count == 1 and sel.fits and sel.vram_per_gpu_gb * HEADROOM >= 101.0


def test_user_gpu_type_that_fits_is_kept():
    sel = choose(flat(30.0), gpu_type="H100")
    assert (sel.gpu_type, sel.gpu_count) == ("H100", 1) and sel.fits and not sel.warnings
    assert "as requested" in sel.reason


def test_user_gpu_type_too_small_warns_how_much_and_what_fits():
    sel = choose(flat(60.0), gpu_type="RTX4090", shardable=False)
    assert sel.gpu_type == "RTX4090" and sel.gpu_count == 1 and not sel.fits
    warning = sel.warnings[0]
    assert "RTX4090 (24 GiB) cannot hold" in warning
    assert "short by 38.4 GiB" in warning  # 60 - 0.9 * 24
    assert "would fit: 1x A100-80GB" in warning


def test_user_gpu_type_uses_more_of_them_when_shardable():
    sel = choose(split(100.0), gpu_type="RTX4090")
    assert sel.gpu_type == "RTX4090" and sel.gpu_count == 8 and sel.fits
    assert "fewer RTX4090 cards cannot hold it" in sel.reason


def test_user_gpu_type_and_count():
    ok = choose(split(60.0), gpu_type="H100", gpu_count=2)
    assert (ok.gpu_type, ok.gpu_count) == ("H100", 2) and ok.fits
    assert "cheapest fit would be" in ok.reason
    bad = choose(split(400.0), gpu_type="A40", gpu_count=2)
    assert (bad.gpu_type, bad.gpu_count) == ("A40", 2) and not bad.fits
    assert "short by" in bad.warnings[0] and "would fit" in bad.warnings[0]


def test_user_gpu_count_only():
    sel = choose(split(100.0), gpu_count=4)
    assert sel.gpu_count == 4 and sel.fits
    too_few = choose(flat(500.0), gpu_count=1)
    assert too_few.gpu_count == 1 and not too_few.fits
    assert "nothing fits on 1 GPU" in too_few.warnings[0]


def test_providers_restrict_the_choice():
    sel = choose(flat(17.0), providers=["lambda"])
    assert sel.gpu_type == "RTXA6000" and sel.providers == ["lambda"] and sel.price_hr == 0.80
    big = choose(split(600.0), providers=["lambda"])
    assert big.gpu_type == "B200" and big.gpu_count == 8  # Lambda rents B200 only as 8
    unoffered = choose(flat(10.0), gpu_type="RTX3090", providers=["lambda"])
    assert unoffered.gpu_type == "RTX3090" and unoffered.providers == []
    assert "not offered on lambda" in unoffered.warnings[0]
    assert "offered on: runpod, vast" in unoffered.warnings[0]


def test_provider_order_is_the_callers():
    sel = choose(flat(17.0), providers=["vast", "runpod"])
    assert sel.providers == ["vast", "runpod"]


def test_unknown_inputs_are_usage_errors():
    with pytest.raises(UsageError) as err:
        choose(flat(10.0), gpu_type="H900")
    assert "H100" in err.value.hint
    with pytest.raises(UsageError):
        choose(flat(10.0), providers=["aws"])
    with pytest.raises(UsageError):
        choose(flat(10.0), gpu_count=0)


def test_zero_need_takes_the_cheapest_card():
    sel = choose(flat(0.0))
    assert sel.gpu_type == "RTX3090" and sel.gpu_count == 1 and "any GPU fits" in sel.reason


def test_counts_the_closure_rejects_are_skipped():
    def need(n: int) -> float:
        if n == 2:
            raise ValueError("tensor parallel 4 does not divide 2")
        return 300.0 / n
    sel = choose(need)
    assert sel.fits and sel.gpu_count in (4, 8)


def test_with_the_skypilot_catalog(sky_catalog):
    sel = choose(flat(17.0))
    assert sel.price_source == "skypilot-catalog (~/.sky/catalogs/v8)"
    assert sel.gpu_type == "RTX3090" and sel.providers == ["runpod", "vast"]
    # Lambda's catalog has only 8x A100-80GB: a 2-GPU machine there is not offered
    with pytest.raises(UsageError) as err:
        choose(split(100.0), gpu_type="A100-80GB", gpu_count=2, providers=["lambda"])
    assert err.value.message == "2x A100-80GB is not rented on Lambda (GPU counts offered: Lambda 8)"
    # H100-NVL is not in the cached RunPod catalog, so SkyPilot could not launch it
    nvl = choose(flat(85.0), gpu_type="H100-NVL")
    assert nvl.providers == [] and "not in the cached SkyPilot catalog" in nvl.warnings[0]


def test_price_table_is_reexported(sky_catalog):
    assert selection.price_table(["runpod"]) == catalog.price_table(["runpod"])


def test_to_dict_round_trip():
    data = choose(split(400.0)).to_dict()
    assert data["fits"] is True and data["alternatives"]
    assert "alternatives" not in data["alternatives"][0]


# ------------------------------------------------------------------------------ with the real model
def test_pick_for_real_models():
    est, sel = pick_for(lookup_model("meta-llama/Llama-2-7b-hf"), method="inference")
    assert sel.gpu_count == 1 and sel.fits and est.per_gpu_gb == sel.need_per_gpu_gb
    est, sel = pick_for(lookup_model("meta-llama/Llama-3.1-70B"), method="inference")
    assert sel.gpu_count > 1 and sel.fits
    assert est.gpu_count == sel.gpu_count and est.per_gpu_gb <= sel.vram_per_gpu_gb * HEADROOM
    est, sel = pick_for(lookup_model("meta-llama/Llama-3.1-8B"), method="full", gpu_count=4)
    assert any("FSDP full shard over 4 GPUs" in line for line in est.assumptions)
    est, sel = pick_for(lookup_model("meta-llama/Llama-3.1-8B"), method="full", gpu_count=4,
                        zero_stage=0, fsdp=False)
    assert any(line.startswith("DDP over 4 GPUs") for line in est.assumptions)
    assert not sel.fits  # full fine-tuning an 8B model replicated on each GPU needs > 140 GiB


def test_pick_for_rejects_bad_arguments():
    with pytest.raises(ValueError):
        pick_for(lookup_model("gpt2"), method="inference", batch_size=0)
