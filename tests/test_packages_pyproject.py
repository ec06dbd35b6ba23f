"""pyproject.toml: PEP 621, Poetry (constraint conversion), PDM/uv/PEP 735 groups."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from gpu_lol.analyzer.packages import collect
from gpu_lol.analyzer.pyproject import poetry_constraint
from gpu_lol.repo_index import FileIndex

CASES = Path(__file__).parent / "fixtures" / "packages"


def report_for(case):
    return collect(FileIndex.build(CASES / case if isinstance(case, str) else case))


def pairs(items):
    return [(q.text, q.evidence.cite()) for q in items]


def test_pep621_dependencies_groups_and_python():
    r = report_for("pep621")
    assert pairs(r.requirements) == [
        ("torch>=2.2", "pyproject.toml:10"),
        ("transformers[torch]>=4.40,<5", "pyproject.toml:11"),
        ('tqdm; python_version < "3.12"', "pyproject.toml:12"),
        # [tool.uv.sources] says where mylib lives: pip gets the same source
        ("mylib @ git+https://github.com/org/mylib@v0.1", "pyproject.toml:13"),
    ]
    assert {g: [q.text for q in v] for g, v in r.optional.items()} == {
        "train": ["deepspeed>=0.14", "wandb"],
        "serve": ["vllm==0.4.2"],
        "eval": ["lm-eval>=0.4", "rouge-score"],  # {include-group} followed
        "extra-eval": ["rouge-score"],
    }
    assert {g: [q.text for q in v] for g, v in r.dev.items()} == {
        "dev": ["pytest", "ruff", "ipdb", "mypy"],  # PEP 621 extra + PDM + uv dev deps
        "docs": ["mkdocs"],
        "test": ["pytest-cov", "black"],
        "lint": ["black"],
        "bench": ["pytest-benchmark"],
    }
    assert r.is_package and r.project_name == "fancy-trainer"
    assert r.package_evidence.cite() == "pyproject.toml:6"
    assert [(v, e.cite()) for v, e in r.python_versions] == [(">=3.10,<3.13", "pyproject.toml:8")]
    assert [(k, u) for k, u, _ in r.index_urls] == [("--extra-index-url", "https://download.pytorch.org/whl/cu121")]


def test_poetry_dependencies_convert_to_pep440():
    r = report_for("poetry")
    assert pairs(r.requirements) == [
        ("numpy>=1.26.4,<2.0.0", "pyproject.toml:7"),
        ("scipy>=0.2,<0.3", "pyproject.toml:8"),
        ("pandas>=1.2,<1.3", "pyproject.toml:9"),
        ("requests>=2.31.0,<2.32.0", "pyproject.toml:10"),
        ("einops", "pyproject.toml:11"),
        ("rich==13.7.1", "pyproject.toml:12"),
        ("click>=8.0,<9.0", "pyproject.toml:13"),
        ("torch>=2.1,<3.0", "pyproject.toml:14"),
        ("transformers[torch]>=4.38,<5.0", "pyproject.toml:15"),
        ("uvloop>=0.19,<0.20; sys_platform != 'win32'", "pyproject.toml:16"),
        ('tomli>=2.0,<3.0; python_version < "3.11"', "pyproject.toml:17"),
        ("peft @ git+https://github.com/huggingface/peft.git@v0.10.0", "pyproject.toml:18"),
        ("weird", "pyproject.toml:20"),
        ("lolzero>=0,<1", "pyproject.toml:21"),
        ("zerozero>=0.0,<0.1", "pyproject.toml:22"),
        ("wandb>=0.16,<0.17", "pyproject.toml:31"),  # a non-dev group is installed
    ]
    assert {g: [q.text for q in v] for g, v in r.optional.items()} == {
        "quant": ["bitsandbytes>=0.43,<0.44"],  # optional = true, named by [tool.poetry.extras]
        "viz": ["matplotlib>=3.8,<4.0"],  # optional group
    }
    assert {g: [q.text for q in v] for g, v in r.dev.items()} == {"dev": ["black>=24,<25", "pytest>=8.0,<9.0"]}
    assert [(v, e.cite()) for v, e in r.python_versions] == [(">=3.10,<4.0", "pyproject.toml:6")]
    assert "pyproject.toml:20: 'weird' version '^1.0 || ^2.0' cannot be written for pip; taken unpinned" in r.warnings
    assert r.project_name == "poetry-app" and r.is_package


@pytest.mark.parametrize("poetry, pep440", [
    ("^1.2.3", ">=1.2.3,<2.0.0"),
    ("^1.2", ">=1.2,<2.0"),
    ("^1", ">=1,<2"),
    ("^0.2.3", ">=0.2.3,<0.3.0"),
    ("^0.2", ">=0.2,<0.3"),
    ("^0.0.3", ">=0.0.3,<0.0.4"),
    ("^0.0", ">=0.0,<0.1"),
    ("^0", ">=0,<1"),
    ("~1.2.3", ">=1.2.3,<1.3.0"),
    ("~1.2", ">=1.2,<1.3"),
    ("~1", ">=1,<2"),
    ("~=1.2", "~=1.2"),
    ("*", ""),
    ("1.2.3", "==1.2.3"),
    ("1.2.*", "==1.2.*"),
    (">= 1.2, < 1.5", ">=1.2,<1.5"),
    (">=1.2 <1.5", ">=1.2,<1.5"),
    ("=2.0", "==2.0"),
    ("^2.0.0rc1", ">=2.0.0rc1,<3.0.0"),
    ("^1.0 || ^2.0", None),
    ("latest", None),
])
def test_poetry_constraint(poetry, pep440):
    assert poetry_constraint(poetry) == pep440
    if pep440:
        SpecifierSet(pep440)  # what we write is valid PEP 440


def test_poetry_package_mode_false_is_not_a_package(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.poetry]\nname = "app"\npackage-mode = false\n\n[tool.poetry.dependencies]\n'
        'python = "3.11.*"\nrequests = "^2.31"\n')
    r = report_for(tmp_path)
    assert not r.is_package
    assert [q.text for q in r.requirements] == ["requests>=2.31,<3.0"]
    assert [v for v, _ in r.python_versions] == ["3.11"]


def test_tool_config_only_pyproject_is_not_a_package(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.black]\nline-length = 100\n")
    (tmp_path / "requirements.txt").write_text("numpy\n")
    r = report_for(tmp_path)
    assert not r.is_package and r.package_evidence is None


def test_dynamic_dependencies_from_files(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\n\n[project]\nname = "dyn"\n'
        'dynamic = ["dependencies", "optional-dependencies"]\n\n'
        '[tool.setuptools.dynamic]\ndependencies = {file = ["deps/runtime.txt"]}\n'
        'optional-dependencies.gpu = {file = ["deps/gpu.txt"]}\n')
    (tmp_path / "deps").mkdir()
    (tmp_path / "deps" / "runtime.txt").write_text("numpy>=1.26\n")
    (tmp_path / "deps" / "gpu.txt").write_text("cupy-cuda12x\n")
    r = report_for(tmp_path)
    assert [(q.text, q.evidence.cite()) for q in r.requirements] == [("numpy>=1.26", "deps/runtime.txt:1")]
    assert [q.text for q in r.optional["gpu"]] == ["cupy-cuda12x"]


def test_flit_legacy_metadata(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["flit_core"]\n\n[tool.flit.metadata]\nmodule = "m"\n'
        'requires = ["requests>=2"]\nrequires-python = ">=3.8"\n\n'
        '[tool.flit.metadata.requires-extra]\ntest = ["pytest"]\ngpu = ["cupy-cuda12x"]\n')
    r = report_for(tmp_path)
    assert [(q.text, q.evidence.cite()) for q in r.requirements] == [("requests>=2", "pyproject.toml:6")]
    assert list(r.optional) == ["gpu"] and list(r.dev) == ["test"]
