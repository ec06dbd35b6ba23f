"""Validator checks from facts dicts (no machine needed) and on the H100 fixture facts."""

from __future__ import annotations


import pytest

from gpu_lol.machine import probe_facts, validator
from gpu_lol.machine.validator import FAIL, PASS, WARN
from gpu_lol.spec import EnvironmentSpec, ModelInfo
from test_probe import h100, h100_report  # noqa: F401 - fixture


def gpu_facts(*, name="NVIDIA H100 80GB HBM3", catalog_id="H100-SXM", cap="9.0", count=1, vram=79.6,
              driver_cuda="12.4", torch_version="2.4.0+cu121", torch_cuda="12.1", arch_list=None,
              available=True, seen=None):
    return {
        "python": {"version": "3.11.9"},
        "system": {"cuda_visible_devices": None},
        "gpu": {"driver_found": True, "error": None, "count": count, "name": name, "catalog_id": catalog_id,
                "vram_gb": vram, "driver_version": "550.54", "driver_cuda": driver_cuda,
                "compute_capability": cap},
        "torch": {"installed": True, "error": None, "version": torch_version, "cuda": torch_cuda,
                  "cuda_available": available, "device_count": count if seen is None else seen,
                  "names": [name], "arch_list": arch_list or [], "warning": None},
        "packages": {"installed": {"torch": torch_version.split("+")[0], "numpy": "1.26.4",
                                   "transformers": "4.44.0"}},
        "workdir": {"path": "/w", "exists": True, "disk": {"path": "/w", "total": 200 * 2 ** 30, "free": 120 * 2 ** 30},
                    "files": {"checked": 4, "missing": [], "different": []}},
    }


def spec(**kw) -> EnvironmentSpec:
    base = dict(workload_type="training", gpu_type="H100-SXM", gpu_count=1, vram_required_gb=40,
                base_image="runpod/pytorch:x", requirements=["torch>=2.0", "numpy<2"])
    base.update(kw)
    return EnvironmentSpec(**base)


def by_name(checks):
    return {c.name: c for c in checks}


# ---------------------------------------------------------------------------------------------
# compute capability: the "no kernel image is available" trap


@pytest.mark.parametrize("cap,cuda,status", [
    ("9.0", "11.7", FAIL),   # Hopper needs CUDA >= 11.8
    ("9.0", "11.8", PASS),
    ("9.0", "13.0", PASS),
    ("10.0", "12.6", FAIL),  # Blackwell (B200) needs >= 12.8
    ("10.0", "12.8", PASS),
    ("12.0", "12.4", FAIL),  # Blackwell (RTX 5090) needs >= 12.8
    ("12.0", "12.8", PASS),
    ("8.9", "11.7", FAIL),   # Ada needs 11.8 too
    ("8.0", "11.3", PASS),
    ("7.0", "13.0", FAIL),   # CUDA 13 dropped Volta
])
def test_compute_capability_rule(cap, cuda, status):
    facts = gpu_facts(cap=cap, torch_cuda=cuda, torch_version=f"2.4.0+cu{cuda.replace('.', '')}")
    check = validator.check_compute_capability(spec(), facts)
    assert check.status == status, check.reason
    if status == FAIL:
        assert "no kernel image" in check.reason or "dropped" in check.reason


def test_compute_capability_uses_the_builds_arch_list():
    # A cu128 build without sm_120 kernels fails on an RTX 5090 even though CUDA is new enough.
    facts = gpu_facts(name="NVIDIA GeForce RTX 5090", catalog_id="RTX5090", cap="12.0", torch_cuda="12.8",
                      arch_list=["sm_80", "sm_86", "sm_90"])
    check = validator.check_compute_capability(spec(gpu_type="RTX5090"), facts)
    assert check.status == FAIL and "sm_90" in check.reason
    facts["torch"]["arch_list"] = ["sm_80", "sm_90", "sm_100", "sm_120"]
    assert validator.check_compute_capability(spec(), facts).status == PASS
    # PTX for an older architecture is compiled at load time
    facts["torch"]["arch_list"] = ["sm_80", "compute_90"]
    assert validator.check_compute_capability(spec(), facts).status == PASS
    # sm_80 cubins run on 8.6 (same major, higher minor)
    assert validator.arch_list_supports(["sm_80"], "8.6") is True
    assert validator.arch_list_supports(["sm_86"], "8.0") is False


def test_no_cuda_torch_skips_the_capability_and_driver_checks():
    facts = gpu_facts(torch_cuda=None, torch_version="2.3.0+cpu")
    assert validator.check_compute_capability(spec(), facts) is None
    assert validator.check_cuda_driver(spec(), facts) is None
    torch = validator.check_torch(spec(), facts)
    assert torch.status == FAIL and "CPU-only build" in torch.reason


# ---------------------------------------------------------------------------------------------
# driver vs torch CUDA


def test_driver_cuda_older_major_fails_minor_warns_newer_passes():
    assert validator.check_cuda_driver(spec(), gpu_facts(driver_cuda="11.8", torch_cuda="12.1")).status == FAIL
    warn = validator.check_cuda_driver(spec(), gpu_facts(driver_cuda="12.2", torch_cuda="12.4"))
    assert warn.status == WARN and "minor-version compatibility" in warn.reason
    assert validator.check_cuda_driver(spec(), gpu_facts(driver_cuda="12.4", torch_cuda="12.4")).status == PASS
    assert validator.check_cuda_driver(spec(), gpu_facts(driver_cuda="13.0", torch_cuda="12.8")).status == PASS


# ---------------------------------------------------------------------------------------------
# GPU, VRAM, torch


def test_gpu_count_type_and_vram():
    checks = by_name(validator.run_checks(spec(gpu_count=2), gpu_facts(), local=True))
    assert checks["gpu"].status == FAIL and "needs 2" in checks["gpu"].reason
    assert checks["torch"].status == FAIL  # torch sees 1 of the 2 needed
    other = gpu_facts(name="NVIDIA A100-SXM4-80GB", catalog_id="A100-80GB-SXM", cap="8.0")
    assert validator.check_gpu(spec(), other).status == WARN
    assert validator.check_vram(spec(vram_required_gb=80), gpu_facts(vram=79.6)).status == PASS  # rounding
    small = validator.check_vram(spec(vram_required_gb=70), gpu_facts(vram=39.4))
    assert small.status == FAIL and "will not fit" in small.reason


def test_no_gpu_fails_once_with_the_reason():
    facts = {"gpu": {"driver_found": False, "count": 0}, "python": {"version": "3.11.9"},
             "packages": {"installed": {"torch": "2.4.0", "numpy": "1.26.4"}},
             "workdir": {"exists": True, "files": {"checked": 1}, "disk": {"total": 2 ** 40, "free": 2 ** 39}}}
    checks = validator.run_checks(spec(), facts, local=False)
    names = [c.name for c in checks]
    assert "vram" not in names and "torch" not in names  # no repeats of the same cause
    gpu = by_name(checks)["gpu"]
    assert gpu.status == FAIL and "nvidia-smi not found" in gpu.reason
    assert validator.failed(checks)


def test_cpu_spec_skips_gpu_checks():
    facts = {"gpu": {"driver_found": False, "count": 0}, "python": {"version": "3.11.9"},
             "packages": {"installed": {}}, "workdir": {"exists": True, "files": {"checked": 0},
                                                        "disk": {"total": 2 ** 40, "free": 2 ** 39}}}
    checks = validator.run_checks(EnvironmentSpec(workload_type="cpu", gpu_type=None, gpu_count=0), facts, local=False)
    assert by_name(checks)["gpu"].status == PASS
    assert not validator.failed(checks)


def test_torch_cannot_use_gpu_reports_the_warning():
    facts = gpu_facts(available=False)
    facts["torch"]["warning"] = "UserWarning: CUDA initialization: The NVIDIA driver on your system is too old"
    check = validator.check_torch(spec(), facts)
    assert check.status == FAIL and "driver on your system is too old" in check.reason


def test_torch_missing_warns_unless_required():
    facts = gpu_facts()
    facts["torch"] = {"installed": False, "error": None}
    assert validator.check_torch(spec(requirements=[]), facts).status == WARN
    assert validator.check_torch(spec(), facts).status == FAIL


# ---------------------------------------------------------------------------------------------
# packages, python, code, disk


def test_packages_pins():
    facts = gpu_facts()
    assert validator.check_packages(spec(), facts).status == PASS
    bad = validator.check_packages(spec(requirements=["numpy>=2", "peft", "torch>=2.0"]), facts)
    assert bad.status == FAIL
    assert "numpy 1.26.4 does not satisfy >=2" in bad.reason and "peft is not installed" in bad.reason
    marker = validator.check_packages(spec(requirements=["pywin32; sys_platform == 'win32'"]), facts)
    assert marker.status == PASS
    url = validator.check_packages(spec(requirements=["git+https://github.com/org/repo"]), facts)
    assert url.status == WARN
    # canonical names: Transformers == transformers
    assert validator.check_packages(spec(requirements=["Transformers==4.44.0"]), facts).status == PASS


def test_python_version():
    facts = gpu_facts()
    assert validator.check_python(spec(python_version="3.11"), facts).status == PASS
    assert validator.check_python(spec(python_version="3.12"), facts).status == WARN
    assert validator.check_python(spec(python_version=None), facts) is None


def test_code_sync_states():
    facts = gpu_facts()
    assert validator.check_code_sync(facts, local=False).status == PASS
    facts["workdir"]["files"] = {"checked": 4, "missing": ["a.py"], "different": ["b.py"]}
    drift = validator.check_code_sync(facts, local=False, target_name="box")
    assert drift.status == WARN and "gpu-lol exec box --sync" in drift.reason
    facts["workdir"]["exists"] = False
    assert validator.check_code_sync(facts, local=False).status == FAIL
    assert validator.check_code_sync(facts, local=True).status == PASS


def test_disk_thresholds_follow_the_model():
    facts = gpu_facts()
    assert validator.check_disk(spec(), facts).status == PASS
    big = spec(model=ModelInfo(name="meta-llama/Llama-3.1-70B", params_b=70, method="qlora"))
    check = validator.check_disk(big, facts)  # 140 GB of weights, 120 GiB free
    assert check.status == FAIL and "Llama-3.1-70B" in check.reason
    facts["workdir"]["disk"]["free"] = 3 * 2 ** 30
    assert validator.check_disk(spec(), facts).status == FAIL


# ---------------------------------------------------------------------------------------------
# the H100 machine


def test_h100_fixture_passes_a_matching_spec(h100):  # noqa: F811
    facts = probe_facts.facts_from_report(h100_report(h100))
    checks = by_name(validator.run_checks(
        spec(vram_required_gb=80, requirements=["torch>=2.4", "transformers>=5", "peft"], python_version="3.12"),
        facts, local=False))
    assert {name: c.status for name, c in checks.items()} == {
        "gpu": PASS, "vram": PASS, "torch": PASS, "cuda-driver": PASS, "compute-capability": PASS,
        "packages": PASS, "python": PASS, "code": PASS, "disk": PASS}
    assert "H100-SXM" in checks["gpu"].reason
    assert "driver 580.159.04 supports CUDA 13.0" in checks["cuda-driver"].reason


def test_h100_fixture_catches_wrong_spec(h100):  # noqa: F811
    facts = probe_facts.facts_from_report(h100_report(h100))
    checks = by_name(validator.run_checks(spec(gpu_type="B200", gpu_count=2, vram_required_gb=150,
                                               requirements=["transformers<5"]), facts, local=False))
    assert checks["gpu"].status == FAIL and checks["vram"].status == FAIL
    assert checks["packages"].status == FAIL and "transformers 5.17.0" in checks["packages"].reason


def test_validation_json_shape(h100):  # noqa: F811
    facts = probe_facts.facts_from_report(h100_report(h100))
    ok_spec = spec(requirements=["torch>=2.0", "numpy>=2"])
    result = validator.Validation("box", ok_spec, "test", facts, validator.run_checks(ok_spec, facts, local=False))
    data = result.to_dict()
    assert data["ok"] is True and data["target"] == "box" and data["summary"]["fail"] == 0
    assert all(set(c) >= {"name", "status", "reason"} for c in data["checks"])
    assert data["facts"]["gpu"]["catalog_id"] == "H100-SXM"


def test_validate_local_cli_cpu_repo(run_cli, tmp_path):
    """`validate --local --json` on this (GPU-less) machine with a cpu spec: runs the real probe."""
    from gpu_lol.config import config_file

    config_file.write(tmp_path / ".gpu-lol.yaml", EnvironmentSpec(
        workload_type="cpu", gpu_type=None, gpu_count=0, base_image="python:3.11-slim",
        requirements=["definitely-not-installed-pkg>=1"]))
    result = run_cli("validate", "--local", "--json", cwd=tmp_path)
    data = result.json()
    assert result.code == 1
    checks = by_name([validator.Check(**c) for c in data["checks"]])
    assert checks["gpu"].status == PASS and checks["packages"].status == FAIL
    assert "definitely-not-installed-pkg is not installed" in checks["packages"].reason
    assert data["local"] is True and data["facts"]["python"]["version"]


def test_validate_name_and_local_conflict(run_cli):
    result = run_cli("validate", "box", "--local")
    assert result.code == 2 and "not both" in result.err
