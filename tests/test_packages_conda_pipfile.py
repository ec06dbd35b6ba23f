"""conda environment files and Pipfile."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_lol.analyzer.conda import conda_version_to_pip
from gpu_lol.analyzer.packages import collect
from gpu_lol.repo_index import FileIndex

CASES = Path(__file__).parent / "fixtures" / "packages"


def report_for(case):
    return collect(FileIndex.build(CASES / case if isinstance(case, str) else case))


def pairs(items):
    return [(q.text, q.evidence.cite()) for q in items]


def test_environment_yml():
    r = report_for("conda_env")
    assert pairs(r.requirements) == [
        ("sentencepiece", "requirements-pip.txt:1"),  # a root requirements file comes first
        ("torch==2.1.0", "environment.yml:9"),  # pytorch::pytorch=2.1.0
        ("torchvision>=0.16", "environment.yml:12"),
        ("numpy==1.24.*", "environment.yml:13"),  # conda's fuzzy =1.24
        ("scipy==1.11.4", "environment.yml:14"),  # build string dropped, version exact
        ("matplotlib", "environment.yml:15"),  # matplotlib-base
        ("opencv-python", "environment.yml:18"),  # py-opencv
        ("pandas==2.1.*", "environment.yml:19"),
        ("weird", "environment.yml:20"),
        ("transformers==4.36.2", "environment.yml:22"),  # pip: section
        ("git+https://github.com/openai/CLIP.git", "environment.yml:25"),
    ]
    sources = {q.text: q.source for q in r.requirements}
    assert sources["torch==2.1.0"] == "conda" and sources["transformers==4.36.2"] == "conda"
    assert [(s, e.cite()) for s, e in r.conda_only] == [
        ("pytorch-cuda=12.1", "environment.yml:10"),
        ("cudatoolkit=11.8", "environment.yml:11"),
        ("ffmpeg", "environment.yml:16"),
        ("libgcc-ng", "environment.yml:17"),
    ]
    texts = [q.text for q in r.requirements]
    assert not any(t.split("=")[0] in ("pip", "python", "cudatoolkit", "pytorch-cuda") for t in texts)
    assert [(v, e.cite()) for v, e in r.python_versions] == [("3.10", "environment.yml:7")]
    assert [(k, u, e.cite()) for k, u, e in r.index_urls] == [
        ("--extra-index-url", "https://download.pytorch.org/whl/cu121", "environment.yml:24")]
    assert "environment.yml:20: conda version '=1.0|1.1' of weird has no pip equivalent; taken unpinned" in r.warnings
    assert [q.text for q in r.dev["environment-dev.yml"]] == ["pytest"]


@pytest.mark.parametrize("conda, pip", [
    ("", ""), ("*", ""), ("=1.24", "==1.24.*"), ("=2.1.0", "==2.1.0"), ("==1.2", "==1.2"),
    (">=1.2,<2", ">=1.2,<2"), (">=1.2.*", ">=1.2"), ("1.24", "==1.24.*"), ("=1.2=py39_0", "==1.2"),
    ("1.2 py39_0", "==1.2"), ("1.2|1.3", None), ("=abc", None),
])
def test_conda_version_syntax(conda, pip):
    assert conda_version_to_pip(conda) == pip


def test_conda_bracket_and_python_range(tmp_path):
    (tmp_path / "environment.yaml").write_text(
        "dependencies:\n  - python>=3.9,<3.12\n  - numpy[version='>=1.22']\n  - conda-forge::jax\n"
        "  - pip:\n    - -r reqs/extra.txt\n    - -e .\n")
    (tmp_path / "reqs").mkdir()
    (tmp_path / "reqs" / "extra.txt").write_text("optax\n")
    r = report_for(tmp_path)
    assert [q.text for q in r.requirements] == ["numpy>=1.22", "jax", "optax"]
    assert [v for v, _ in r.python_versions] == [">=3.9,<3.12"]
    assert not r.is_package  # `-e .` without a setup.py / pyproject
    assert any("installs the repo itself" in w for w in r.warnings)


def test_yaml_that_is_not_an_environment_is_ignored(tmp_path):
    (tmp_path / "env.yaml").write_text("learning_rate: 0.1\nmodel: llama\n")
    (tmp_path / "requirements.txt").write_text("numpy\n")
    r = report_for(tmp_path)
    assert [q.text for q in r.requirements] == ["numpy"] and r.warnings == []


def test_pipfile():
    r = report_for("pipfile")
    assert pairs(r.requirements) == [
        ("requests", "Pipfile:12"),
        ("numpy==1.26.0", "Pipfile:13"),
        ("torch>=2.0", "Pipfile:14"),
        ("uvicorn[standard]>=0.27", "Pipfile:15"),
        # Pipfile:16 `pywin32; sys_platform == 'win32'` is dropped: never on a Linux machine
        ("mylib @ git+https://github.com/org/mylib.git@main", "Pipfile:17"),
        ("scipy==1.11.0", "Pipfile:18"),  # a bare version means ==
    ]
    assert all(q.source == "pipfile" for q in r.requirements)
    assert any("Pipfile:16" in w and "pywin32" in w for w in r.warnings)
    assert [q.text for q in r.dev["dev-packages"]] == ["pytest"]
    assert [(v, e.cite()) for v, e in r.python_versions] == [("3.11", "Pipfile:24")]
    # the PyPI source is not an extra index; the PyTorch one is
    assert [(k, u, e.cite()) for k, u, e in r.index_urls] == [
        ("--extra-index-url", "https://download.pytorch.org/whl/cu118", "Pipfile:7")]
