"""The import scan and the imports fallback: stdlib, local modules, optional imports, PyPI names."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gpu_lol.analyzer.imports import pypi_name, resolve_import, scan_source
from gpu_lol.analyzer.packages import collect, scan_imports
from gpu_lol.repo_index import FileIndex

CASES = Path(__file__).parent / "fixtures" / "packages"


@pytest.fixture
def repo(tmp_path):
    """The imports-only fixture plus test files (written here so pytest never collects them)."""
    dst = tmp_path / "repo"
    shutil.copytree(CASES / "imports_only", dst)
    (dst / "tests").mkdir()
    (dst / "tests" / "test_models.py").write_text("import pytest\nimport hypothesis\n")
    (dst / "test_top.py").write_text("import responses\n")
    (dst / "conftest.py").write_text("import pytest_asyncio\n")
    return dst


def test_fallback_requirements_from_imports(repo):
    r = collect(FileIndex.build(repo))
    assert r.from_imports
    assert [(q.text, q.evidence.cite()) for q in r.requirements] == [
        ("scipy", "legacy.py:3"),  # a Python 2 file is still read
        ("numpy", "train.py:9"),
        ("torch", "train.py:10"),
        ("opencv-python", "train.py:11"),
        ("pillow", "train.py:12"),
        ("scikit-learn", "train.py:13"),
        ("pyyaml", "train.py:14"),
        ("protobuf", "train.py:15"),
        ("tqdm", "train.py:35"),  # a lazy import in a function is still required
        ("matplotlib", "examples/common.py:1"),
        ("timm", "models/resnet.py:1"),
        ("tensorflow", "examples/tensorflow/run_tf.py:1"),  # a folder named tensorflow hides nothing
    ]
    assert all(q.source == "imports" for q in r.requirements)
    texts = {q.text for q in r.requirements}
    # optional imports, tests, local modules, stdlib, docstrings: none of them
    for never in ("wandb", "pandas", "pytest", "hypothesis", "responses", "pytest_asyncio", "utils",
                  "models", "corelib", "helpers", "os", "sys", "urllib2", "ConfigParser",
                  "fake_docstring_pkg", "frobnicate_lib", "apex", "__future__", "typing"):
        assert never not in texts
    assert ("train.py:16: import 'frobnicate_lib' is not a PyPI package we know; not installed "
            "(declare it in requirements.txt)") in r.warnings
    assert ("train.py:17: import 'apex' is not installable from PyPI under that name; not installed "
            "(declare it in requirements.txt)") in r.warnings


def test_scan_imports_reports_every_third_party_name_with_sites(repo):
    found = scan_imports(FileIndex.build(repo))
    assert [e.cite() for e in found["wandb"]] == ["train.py:26"]  # optional, still reported
    assert [e.cite() for e in found["pandas"]] == ["train.py:31"]
    assert found["google.protobuf"][0].text == "import google.protobuf.message"
    assert "pytest" in found  # test code is reported (with its location) ...
    assert all(n not in found for n in ("utils", "models", "corelib", "helpers", "os", "fake_docstring_pkg"))


def test_runtime_sites_are_listed_before_test_sites(tmp_path):
    (tmp_path / "tests").mkdir()
    for i in range(6):
        (tmp_path / "tests" / f"t{i}.py").write_text("import torch\n")
    (tmp_path / "src" / "pkg" / "deep").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "src" / "pkg" / "deep" / "model.py").write_text("import torch\n")
    found = scan_imports(FileIndex.build(tmp_path))
    assert len(found["torch"]) == 5
    assert found["torch"][0].cite() == "src/pkg/deep/model.py:1"


def test_declared_packages_win_over_imports(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy==1.26.4\n")
    (tmp_path / "main.py").write_text("import numpy\nimport torch\n")
    r = collect(FileIndex.build(tmp_path))
    assert not r.from_imports
    assert [q.text for q in r.requirements] == ["numpy==1.26.4"]
    assert set(r.imports) == {"numpy", "torch"}  # still reported for the other detectors


@pytest.mark.parametrize("source, expected", [
    ("import a.b as c, d\n", [(1, "a.b", False), (1, "d", False)]),
    ("from x.y import (z,\n  w)\n", [(1, "x.y", False)]),
    ("from . import k\nfrom .m import n\n", []),
    ("try:\n    import p\nexcept ImportError:\n    import q\nelse:\n    pass\n", [(2, "p", True), (4, "q", True)]),
    ("if TYPE_CHECKING:\n    import t\n", [(2, "t", True)]),
    ("def f():\n    if x:\n        import u\n", [(3, "u", False)]),
    ("try:\n    x = 1\nfinally:\n    pass\ndef g():\n    import v\n", [(6, "v", False)]),
    ('"""\nimport not_me\n"""\nimport me\n', [(4, "me", False)]),
    ("s = '''\n  from hidden import x\n'''\n", []),
    ("# import comment\nx = 'import y'\n", []),
    ("print 'py2'\nimport old\n", [(2, "old", False)]),
])
def test_scan_source(source, expected):
    assert scan_source(source) == expected


@pytest.mark.parametrize("name, pypi", [
    ("cv2", "opencv-python"), ("PIL", "pillow"), ("sklearn", "scikit-learn"), ("yaml", "pyyaml"),
    ("skimage", "scikit-image"), ("bs4", "beautifulsoup4"), ("dotenv", "python-dotenv"),
    ("google.protobuf", "protobuf"), ("google.protobuf.message", "protobuf"), ("Crypto", "pycryptodome"),
    ("attr", "attrs"), ("OpenSSL", "pyOpenSSL"), ("jwt", "PyJWT"), ("serial", "pyserial"),
    ("fitz", "PyMuPDF"), ("docx", "python-docx"), ("torch", "torch"), ("torch.nn", "torch"),
    ("some_unknown_mod", "some_unknown_mod"),
])
def test_pypi_name(name, pypi):
    assert pypi_name(name) == pypi


def test_resolve_import_refuses_unknown_and_unrelated_names():
    assert resolve_import("numpy") == "numpy"
    assert resolve_import("clip") is None  # PyPI "clip" is an unrelated project
    assert resolve_import("google.colab") is None
    assert resolve_import("definitely_not_known_xyz") is None


def test_sibling_modules_of_a_script_inside_a_package_are_local(tmp_path):
    pkg = tmp_path / "style" / "neural"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "vgg.py").write_text("import torchvision\n")
    (pkg / "run.py").write_text("from vgg import Vgg16\nimport numpy\n")
    (tmp_path / "other.py").write_text("import vgg\n")  # elsewhere, `vgg` is not this module
    found = scan_imports(FileIndex.build(tmp_path))
    assert [e.cite() for e in found["vgg"]] == ["other.py:1"]
    assert set(found) == {"vgg", "numpy", "torchvision"}
