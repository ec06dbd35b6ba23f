"""Probe parsers against real H100 outputs (../shared/fixtures/h100) and the probe script itself.

No GPU machine was lent to this work: the H100 facts come from the fixture files captured on one.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpu_lol.machine import probe_facts as pf


@pytest.fixture
def h100(shared_dir) -> dict[str, str]:
    directory = shared_dir / "fixtures" / "h100"
    return {p.name: p.read_text() for p in directory.iterdir() if p.is_file()}


def h100_report(h100: dict[str, str], *, boot: float = 1_000.0) -> dict:
    """A raw probe report assembled from the H100 fixture outputs (the probe's own format)."""
    return {
        "probe_version": 1, "time": 1_800_000_000.0, "errors": [],
        "python": {"version": "3.12.3", "executable": "/usr/bin/python3", "prefix": "/usr",
                   "base_prefix": "/usr", "in_venv": False},
        "system": {"hostname": "h100", "os_release": h100["os-release"], "boot_time": boot,
                   "pid1_start": boot + 5, "cuda_visible_devices": None},
        "nvidia_smi": {"path": "/usr/bin/nvidia-smi",
                       "query": {"rc": 0, "stdout": h100["nvidia-smi-query.csv"], "stderr": ""},
                       "banner": {"rc": 0, "stdout": h100["nvidia-smi.txt"], "stderr": ""}},
        "nvcc": {"path": "/usr/local/cuda/bin/nvcc", "rc": 0, "stdout": h100["nvcc-version.txt"], "stderr": ""},
        "torch": {"rc": 0, "stdout": h100["python-torch.txt"], "stderr": ""},
        "pip_freeze": {"rc": 0, "stdout": h100["pip-freeze.txt"], "stderr": ""},
        "dists": [],
        "workdir": {"path": "/root/sky_workdir", "exists": True,
                    "disk": {"path": "/root/sky_workdir", "total": 200 * 1024 ** 3, "free": 150 * 1024 ** 3},
                    "files": {"checked": 3, "missing": [], "different": []}},
    }


def test_nvidia_smi_query_with_header_and_units(h100):
    rows = pf.parse_nvidia_smi_csv(h100["nvidia-smi-query.csv"])
    assert rows == [{"name": "NVIDIA H100 80GB HBM3", "memory.total": "81559", "memory.used": "0",
                     "memory.free": "81079", "driver_version": "580.159.04", "compute_cap": "9.0",
                     "count": "1"}]
    device = pf.gpu_devices(rows)[0]
    assert device["memory_mib"] == 81559 and device["vram_gb"] == 79.6
    assert device["compute_capability"] == "9.0"


def test_nvidia_smi_query_without_header(h100):
    rows = pf.parse_nvidia_smi_csv(h100["nvidia-smi-query-noheader.csv"],
                                   fields=["name", "memory.total", "driver_version"])
    assert rows == [{"name": "NVIDIA H100 80GB HBM3", "memory.total": "81559", "driver_version": "580.159.04"}]
    with pytest.raises(ValueError):
        pf.parse_nvidia_smi_csv(h100["nvidia-smi-query-noheader.csv"])


def test_nvidia_smi_banner_driver_and_cuda(h100):
    assert pf.parse_nvidia_smi_banner(h100["nvidia-smi.txt"]) == {"driver_version": "580.159.04",
                                                                  "cuda_version": "13.0"}
    assert pf.parse_nvidia_smi_banner("NVIDIA-SMI has failed") == {"driver_version": None, "cuda_version": None}


def test_nvidia_smi_name_maps_to_catalog_id():
    assert pf.catalog_id_for("NVIDIA H100 80GB HBM3") == "H100-SXM"
    assert pf.catalog_id_for("NVIDIA H100 PCIe") == "H100"
    assert pf.catalog_id_for("NVIDIA  A100-SXM4-80GB") == "A100-80GB-SXM"
    assert pf.catalog_id_for("NVIDIA GeForce RTX 4090") == "RTX4090"
    assert pf.catalog_id_for("Tesla T4") is None


def test_nvcc_version(h100):
    assert pf.parse_nvcc_version(h100["nvcc-version.txt"]) == "13.0"
    assert pf.parse_nvcc_version("bash: nvcc: command not found") is None


def test_torch_report_from_h100(h100):
    torch = pf.parse_torch_report(h100["python-torch.txt"])
    assert torch["installed"] and torch["error"] is None
    assert torch["python"] == "3.12.3"
    assert torch["version"] == "2.11.0+cu130" and torch["cuda"] == "13.0"
    assert torch["cuda_available"] is True
    assert torch["names"] == ["NVIDIA H100 80GB HBM3"] and torch["memory"] == [85017493504]
    assert torch["device_count"] == 1


def test_torch_report_variants():
    missing = pf.parse_torch_report("3.11.7 (main)\nIMPORT-ERROR ModuleNotFoundError: No module named 'torch'\n")
    assert missing["installed"] is False and missing["error"] is None
    broken = pf.parse_torch_report("3.11.7\nIMPORT-ERROR OSError: libcudart.so.12: cannot open shared object file\n")
    assert broken["installed"] is True and "libcudart" in broken["error"]
    cpu = pf.parse_torch_report("3.11.7\n2.3.0+cpu None False - 0\n")
    assert cpu["cuda"] is None and cpu["cuda_available"] is False and cpu["device_count"] == 0
    extra = json.dumps({"device_count": 2, "names": ["A", "B"], "capabilities": ["9.0", "9.0"],
                        "memory": [1, 2], "arch_list": ["sm_80", "sm_90"]})
    two = pf.parse_torch_report(f"3.12.3\n2.4.0+cu121 12.1 True NVIDIA H100 PCIe 85000000000\n{extra}\n")
    assert two["device_count"] == 2 and two["arch_list"] == ["sm_80", "sm_90"] and two["cuda"] == "12.1"


def test_cuda_from_torch_version():
    assert pf.cuda_from_torch_version("2.11.0+cu130") == "13.0"
    assert pf.cuda_from_torch_version("2.1.0+cu118") == "11.8"
    assert pf.cuda_from_torch_version("2.5.1+cu124") == "12.4"
    assert pf.cuda_from_torch_version("2.3.0+cpu") is None
    assert pf.cuda_from_torch_version("2.3.0") is None


def test_pip_freeze_from_h100(h100):
    pins, left_out = pf.parse_pip_freeze(h100["pip-freeze.txt"])
    by_name = {p["name"]: p for p in pins}
    assert len(pins) == len([l for l in h100["pip-freeze.txt"].splitlines() if l.strip()])
    assert by_name["torch"]["version"] == "2.11.0" and by_name["torch"]["requirement"] == "torch==2.11.0"
    assert by_name["huggingface-hub"]["requirement"] == "huggingface_hub==1.33.0"  # name kept as written
    assert by_name["pyyaml"]["version"] == "6.0.3"
    assert left_out == []


def test_pip_freeze_leaves_out_editable_local_and_file_urls():
    text = "\n".join([
        "numpy==2.1.0",
        "# Editable install with no version control (mypkg==0.1)",
        "-e /home/me/mypkg",
        "-e git+https://github.com/org/repo@abc123#egg=repo",
        "localpkg @ file:///home/me/localpkg",
        "wheelpkg @ file:///tmp/wheelpkg-1.0-py3-none-any.whl",
        "remote @ git+https://github.com/org/remote@v1.0",
        "private @ git+https://me:ghp_SECRET@github.com/org/private@v2",
        "weird===1.0-custom",
        "",
    ])
    pins, left_out = pf.parse_pip_freeze(text)
    assert [p["requirement"] for p in pins] == ["numpy==2.1.0", "remote @ git+https://github.com/org/remote@v1.0",
                                                "weird===1.0-custom"]
    assert "-e /home/me/mypkg" in left_out
    assert any(l.startswith("localpkg @ file://") for l in left_out)
    assert any(l.startswith("wheelpkg @ file://") for l in left_out)
    # credentials never survive, not even in what is reported as left out
    assert not any("ghp_SECRET" in l for l in left_out + [p["requirement"] for p in pins])
    assert "private @ git+https://***@github.com/org/private@v2" in left_out


def test_facts_from_h100_report(h100):
    facts = pf.facts_from_report(h100_report(h100))
    gpu = facts["gpu"]
    assert gpu["count"] == 1 and gpu["name"] == "NVIDIA H100 80GB HBM3"
    assert gpu["catalog_id"] == "H100-SXM" and gpu["vram_gb"] == 79.6
    assert gpu["driver_version"] == "580.159.04" and gpu["driver_cuda"] == "13.0"
    assert gpu["compute_capability"] == "9.0"
    assert facts["torch"]["version"] == "2.11.0+cu130" and facts["torch"]["cuda"] == "13.0"
    assert facts["nvcc"]["cuda"] == "13.0"
    assert facts["system"]["os"] == "Ubuntu 24.04.3 LTS"
    assert facts["packages"]["source"] == "pip freeze"
    assert facts["packages"]["installed"]["torch"] == "2.11.0"
    assert pf.gpu_summary(facts) == "1x NVIDIA H100 80GB HBM3 (79.6 GiB)"
    json.dumps(facts)  # plain data


def test_facts_when_nvidia_smi_fails():
    report = {"probe_version": 1, "nvidia_smi": {"path": "/usr/bin/nvidia-smi",
              "query": {"rc": 9, "stdout": "", "stderr": "NVIDIA-SMI has failed because it couldn't communicate "
                        "with the NVIDIA driver.\n"}, "banner": {"rc": 9, "stdout": "", "stderr": ""}}}
    gpu = pf.facts_from_report(report)["gpu"]
    assert gpu["driver_found"] and gpu["count"] == 0
    assert "couldn't communicate with the NVIDIA driver" in gpu["error"]


def test_packages_fall_back_to_metadata_when_pip_is_missing():
    report = {"probe_version": 1, "pip_freeze": {"rc": 1, "stdout": "", "stderr": "No module named pip"},
              "dists": [{"name": "numpy", "version": "2.0.0", "where": "venv", "installed_at": 5.0, "direct_url": None},
                        {"name": "mine", "version": "0.1", "where": "venv", "installed_at": 5.0,
                         "direct_url": {"url": "file:///src/mine", "dir_info": {"editable": True}}}]}
    packages = pf.facts_from_report(report)["packages"]
    assert packages["source"] == "package metadata"
    assert [p["requirement"] for p in packages["pins"]] == ["numpy==2.0.0"]
    assert packages["left_out"] == ["mine==0.1 (editable or local)"]
    assert packages["installed"] == {"numpy": "2.0.0", "mine": "0.1"}


def test_probe_is_stdlib_only_and_old_python_syntax():
    source = pf.probe_source()
    tree = ast.parse(source, feature_version=(3, 6))
    stdlib = set(sys.stdlib_module_names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name.split(".")[0] in stdlib, f"probe imports non-stdlib {name}"


def test_probe_runs_locally_and_compares_files(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.txt").write_text("changed")
    import hashlib

    files = {"a.txt": [5, hashlib.sha256(b"hello").hexdigest()],
             "b.txt": [7, hashlib.sha256(b"original").hexdigest()],
             "c.txt": [1, None]}
    raw = pf.run_probe(None, workdir=str(tmp_path), files=files, python=sys.executable)
    assert raw["probe_version"] == 1 and raw["errors"] == []
    assert raw["python"]["executable"]
    assert raw["workdir"]["files"] == {"checked": 3, "missing": ["c.txt"], "different": ["b.txt"]}
    assert raw["workdir"]["disk"]["free"] > 0
    assert any(d["name"].lower() == "pytest" for d in raw["dists"])
    facts = pf.facts_from_report(raw)
    assert facts["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    assert "pytest" in facts["packages"]["installed"]


def test_probe_standalone_prints_one_json_object(tmp_path):
    script = Path(pf.__file__).parent / "probe" / "probe.py"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["workdir"]["path"] == str(tmp_path)
