"""requirements*.txt: includes, options, URLs, hashes, markers, variables, dev files, hostile lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_lol.analyzer.packages import collect
from gpu_lol.repo_index import FileIndex
from gpu_lol.requirements_text import check_requirement

CASES = Path(__file__).parent / "fixtures" / "packages"


def report_for(case: str | Path):
    return collect(FileIndex.build(CASES / case if isinstance(case, str) else case))


def reqs(report) -> list[tuple[str, str]]:
    return [(r.text, r.evidence.cite()) for r in report.requirements]


def test_requirement_files_follow_pip_format():
    r = report_for("req_files")
    assert reqs(r) == [
        ("numpy<2.0", "requirements.txt:2"),
        ('torch==2.1.0 ; python_version >= "3.8"', "requirements.txt:3"),
        ("transformers[torch,sentencepiece]>=4.36", "requirements.txt:4"),
        ("pandas>=2.0", "requirements/base.txt:1"),  # -r followed where it appears
        ("scipy", "requirements/base.txt:3"),
        ("git+https://github.com/huggingface/peft.git#egg=peft", "requirements.txt:10"),
        # `#egg=x&subdirectory=y` rewritten so no `&` reaches a shell
        ("tool @ git+https://github.com/org/tool.git@v1.2#subdirectory=python", "requirements.txt:11"),
        ("flash-attn @ https://github.com/Dao-AILab/flash-attention/releases/download/v2.5.0/"
         "flash_attn-2.5.0.tar.gz", "requirements.txt:12"),
        ("accelerate==0.25.0", "requirements.txt:13"),  # hashes stripped, continuation joined
        ("datasets>=2.14", "requirements.txt:16"),
    ]
    assert all(r.source == "requirements" for r in r.requirements)
    for q in r.requirements:
        assert check_requirement(q.text) == q.text
    assert r.sources == ["requirements.txt", "requirements/base.txt"]


def test_options_are_recorded_not_taken_as_packages():
    r = report_for("req_files")
    assert [(k, u, e.cite()) for k, u, e in r.index_urls] == [
        ("--extra-index-url", "https://download.pytorch.org/whl/cu118", "requirements.txt:7"),
        ("--find-links", "https://data.pyg.org/whl/torch-2.1.0+cu118.html", "requirements.txt:8"),
    ]
    assert [(p, e.cite()) for p, e in r.constraints] == [("constraints.txt", "requirements.txt:6")]
    texts = [q.text for q in r.requirements]
    assert "urllib3<2" not in texts  # constraints are not requirements
    assert not any(t.startswith("-") for t in texts)


def test_editable_dot_is_the_package_not_a_requirement():
    r = report_for("req_files")
    assert r.is_package
    assert r.package_evidence.cite() == "pyproject.toml:1"
    assert "." not in [q.text for q in r.requirements]


def test_variables_invalid_and_duplicate_lines_warn_with_file_and_line():
    r = report_for("req_files")
    assert ("requirements.txt:18: dropped '${PRIVATE_WHEEL_URL}' (uses environment variable "
            "${PRIVATE_WHEEL_URL}, unknown here)") in r.warnings
    assert any(w.startswith("requirements.txt:21: dropped invalid requirement 'foo=='") for w in r.warnings)
    assert "requirements.txt:20: 'numpy>=1.20' repeats 'numpy'; the first entry is kept" in r.warnings


def test_dev_docs_and_platform_files_are_not_installed():
    r = report_for("req_files")
    texts = [q.text for q in r.requirements]
    for never in ("pytest>=7", "ruff", "sphinx", "sphinx-rtd-theme", "tensorflow-rocm"):
        assert never not in texts
    # recorded where a reader can find them, the runtime file they include not repeated
    assert [q.text for q in r.dev["requirements-dev.txt"]] == ["pytest>=7", "ruff"]
    assert [q.text for q in r.dev["requirements/docs.txt"]] == ["sphinx"]
    assert [q.text for q in r.optional["requirements-rocm.txt"]] == ["tensorflow-rocm"]
    assert "docs/requirements.txt" not in r.dev  # docs/ never counts


def test_hostile_requirements_are_dropped_and_markers_kept_intact():
    r = report_for("hostile")
    assert reqs(r) == [
        ("numpy<2.0", "requirements.txt:1"),
        ('torch==2.1; python_version < "3.8"', "requirements.txt:3"),
        ('pillow; python_version >= "3.8" and sys_platform == "linux"', "requirements.txt:4"),
        ("scipy>=1.10,<1.12", "requirements.txt:10"),
    ]
    dropped_lines = {int(w.split(":")[1]) for w in r.warnings}
    assert dropped_lines == {2, 5, 6, 7, 8, 9}
    joined = "\n".join(r.warnings)
    for evil in ("curl", "touch", "`id`", "tee", "reboot"):
        assert evil in joined  # named in a warning ...
        assert not any(evil in q.text for q in r.requirements)  # ... never passed on


def test_include_cycle_and_missing_include(tmp_path):
    (tmp_path / "requirements.txt").write_text("-r a.txt\nnumpy\n-r missing.txt\n-r ../outside.txt\n")
    (tmp_path / "a.txt").write_text("-r requirements.txt\nscipy\n")
    r = report_for(tmp_path)
    assert [q.text for q in r.requirements] == ["scipy", "numpy"]
    assert "requirements.txt:3: requirements file 'missing.txt' is not in the repo; not followed" in r.warnings
    assert "requirements.txt:4: requirements file '../outside.txt' is not in the repo; not followed" in r.warnings


def test_pip_tools_in_file_only_without_compiled_twin(tmp_path):
    (tmp_path / "requirements.in").write_text("torch\n")
    (tmp_path / "requirements.txt").write_text("torch==2.2.1\nfilelock==3.13.1\n")
    r = report_for(tmp_path)
    assert [q.text for q in r.requirements] == ["torch==2.2.1", "filelock==3.13.1"]
    (tmp_path / "requirements.txt").unlink()
    assert [q.text for q in report_for(tmp_path).requirements] == ["torch"]


def test_local_paths_and_self_install_with_extras(tmp_path):
    (tmp_path / "libs" / "mini").mkdir(parents=True)
    (tmp_path / "libs" / "mini" / "setup.py").write_text("from setuptools import setup\nsetup(name='mini')\n")
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup(name='root-pkg')\n")
    (tmp_path / "requirements.txt").write_text("-e .[train]\n./libs/mini\n./nowhere\nrequests\n")
    r = report_for(tmp_path)
    assert [q.text for q in r.requirements] == ["requests"]
    assert [(e, ev.cite()) for e, ev in r.extras_requested] == [("train", "requirements.txt:1")]
    assert [(p, ev.cite()) for p, ev in r.local_installs] == [("libs/mini", "requirements.txt:2")]
    assert "requirements.txt:3: local path './nowhere' is not in the repo; not installed" in r.warnings


def test_self_install_without_build_files_is_not_a_package(tmp_path):
    (tmp_path / "requirements.txt").write_text("-e .\nnumpy\n")
    r = report_for(tmp_path)
    assert not r.is_package
    assert any("installs the repo itself, but the repo has no setup.py" in w for w in r.warnings)


def test_pypi_mirrors_are_not_passed_on(tmp_path):
    (tmp_path / "requirements.txt").write_text(
        "-i https://pypi.tuna.tsinghua.edu.cn/simple\n"
        "--extra-index-url https://mirrors.aliyun.com/pytorch-wheels/cu121\nnumpy\n")
    r = report_for(tmp_path)
    assert [u for _k, u, _e in r.index_urls] == ["https://mirrors.aliyun.com/pytorch-wheels/cu121"]
    assert any("PyPI mirror" in w for w in r.warnings)


@pytest.mark.parametrize("line", ["-f file:///tmp/wheels", "--index-url ftp://x.example/simple"])
def test_non_http_indexes_are_ignored(tmp_path, line):
    (tmp_path / "requirements.txt").write_text(line + "\nnumpy\n")
    r = report_for(tmp_path)
    assert r.index_urls == []
    assert any("only http(s) URLs are used" in w for w in r.warnings)


def test_import_names_written_as_requirements_are_fixed(tmp_path):
    (tmp_path / "requirements.txt").write_text("sklearn\nPIL>=9\nopencv-python\nyaml; python_version>'3'\n")
    r = report_for(tmp_path)
    assert [q.text for q in r.requirements] == ["scikit-learn", "pillow>=9", "opencv-python", "pyyaml; python_version>'3'"]
    assert r.warnings[0] == ("requirements.txt:1: 'sklearn' cannot be installed from PyPI under that name; "
                             "installing 'scikit-learn' instead")


def test_url_with_marker_gets_the_wheel_name(tmp_path):
    (tmp_path / "requirements.txt").write_text(
        'https://github.com/o/r/releases/download/v1/flash_attn-2.8.3+cu128-cp311-cp311-linux_x86_64.whl; '
        'platform_system == "Linux"\nhttps://example.com/dl/thing; sys_platform == "linux"\n')
    r = report_for(tmp_path)
    assert [q.text for q in r.requirements] == [
        "flash_attn @ https://github.com/o/r/releases/download/v1/flash_attn-2.8.3+cu128-cp311-cp311-linux_x86_64.whl"
        ' ; platform_system == "Linux"']
    assert len(r.warnings) == 1 and r.warnings[0].startswith("requirements.txt:2: dropped invalid requirement")
