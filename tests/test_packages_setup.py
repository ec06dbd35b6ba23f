"""setup.py (ast, never executed) and setup.cfg."""

from __future__ import annotations

from pathlib import Path

from gpu_lol.analyzer.packages import collect
from gpu_lol.repo_index import FileIndex

CASES = Path(__file__).parent / "fixtures" / "packages"


def report_for(case):
    return collect(FileIndex.build(CASES / case if isinstance(case, str) else case))


def pairs(items):
    return [(q.text, q.evidence.cite()) for q in items]


def test_setup_py_literals_names_and_extras():
    r = report_for("setup_literal")
    assert pairs(r.requirements) == [
        ("torch>=2.0", "setup.py:4"),  # a name bound to a string inside a list
        ("numpy", "setup.py:7"),
        ("einops>=0.7", "setup.py:9"),  # BASE += [...]
        ("safetensors", "setup.py:10"),  # BASE.append(...)
        ("tqdm", "setup.py:23"),  # BASE + ["tqdm"]
        ("importlib-metadata ; python_version < '3.9'", "setup.py:15"),  # ":marker" extra key
    ]
    assert all(q.source == "setup.py" for q in r.requirements)
    assert pairs(r.optional["train"]) == [("accelerate", "setup.py:13"), ("deepspeed", "setup.py:13")]
    assert pairs(r.dev["test"]) == [("pytest", "setup.py:14")]
    assert [(v, e.cite()) for v, e in r.python_versions] == [(">=3.9", "setup.py:22")]
    assert r.is_package and r.project_name == "lit-pkg" and r.package_evidence.cite() == "setup.py:18"


def test_setup_py_reading_requirement_files_reads_those_files():
    r = report_for("setup_reads_file")
    assert pairs(r.requirements) == [
        ("numpy<2", "requirements/common.txt:1"),
        ("ray>=2.9", "requirements/common.txt:2"),
        ("torch==2.3.0", "requirements/cuda.txt:2"),
        ("xformers==0.0.26", "requirements/cuda.txt:3"),
    ]
    # the ROCm variant is not installed; the file an extra reads is that extra, not runtime
    assert [q.text for q in r.optional["requirements/rocm.txt"]] == ["amdsmi"]
    assert pairs(r.optional["tensorizer"]) == [("tensorizer>=2.9", "requirements-tensorizer.txt:1")]
    assert "amdsmi" not in [q.text for q in r.requirements]


def test_setup_py_is_never_executed(tmp_path):
    marker = tmp_path / "executed"
    (tmp_path / "setup.py").write_text(
        f"open({str(marker)!r}, 'w').write('x')\n"
        "from setuptools import setup\nsetup(name='x', install_requires=['numpy'])\n")
    r = report_for(tmp_path)
    assert [q.text for q in r.requirements] == ["numpy"]
    assert not marker.exists()


def test_computed_install_requires_warns(tmp_path):
    (tmp_path / "setup.py").write_text(
        "import json\nfrom setuptools import setup\n"
        "setup(name='x', install_requires=json.load(open('deps.json'))['deps'])\n")
    r = report_for(tmp_path)
    assert r.is_package and r.requirements == []
    assert "setup.py:3: install_requires is computed when setup.py runs; not read (pip install . resolves it)" \
        in r.warnings


def test_python2_setup_py_read_by_pattern():
    r = report_for("setup_py2")
    assert pairs(r.requirements) == [("numpy>=1.8", "setup.py:5"), ("six", "setup.py:6")]
    assert r.is_package
    assert r.warnings == ["setup.py:2: not valid Python 3 (never run); install_requires read by pattern"]


def test_setup_kwargs_dict_and_requirements_block(tmp_path):
    (tmp_path / "setup.py").write_text(
        "import setuptools\n"
        "kw = dict(name='kw-pkg', python_requires='>=3.10',\n"
        "          install_requires='''\n    numpy>=1.26\n    # comment\n    scipy\n''')\n"
        "setuptools.setup(**kw)\n")
    r = report_for(tmp_path)
    assert [q.text for q in r.requirements] == ["numpy>=1.26", "scipy"]
    assert r.project_name == "kw-pkg"
    assert [v for v, _ in r.python_versions] == [">=3.10"]


def test_setup_cfg():
    r = report_for("setup_cfg")
    assert pairs(r.requirements) == [
        ("numpy>=1.21", "setup.cfg:8"),
        ('torch>=1.13; sys_platform == "linux"', "setup.cfg:9"),
        ("pyyaml", "setup.cfg:11"),
    ]
    assert all(q.source == "setup.cfg" for q in r.requirements)
    assert pairs(r.optional["vision"]) == [("torchvision", "setup.cfg:16"), ("pillow", "setup.cfg:17")]
    assert pairs(r.dev["testing"]) == [("pytest", "setup.cfg:19")]
    assert [(v, e.cite()) for v, e in r.python_versions] == [(">=3.8", "setup.cfg:6")]
    assert r.project_name == "cfg-pkg"


def test_setup_cfg_file_directive(tmp_path):
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = f\n\n[options]\ninstall_requires = file: deps.txt\n")
    (tmp_path / "deps.txt").write_text("requests\n")
    r = report_for(tmp_path)
    assert [(q.text, q.evidence.cite()) for q in r.requirements] == [("requests", "deps.txt:1")]
    assert r.is_package and r.package_evidence.cite() == "setup.cfg:2"


def test_setup_py_common_file_reading_idioms(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy\n")
    (tmp_path / "reqs").mkdir()
    (tmp_path / "reqs" / "serve.txt").write_text("fastapi\n")
    (tmp_path / "setup.py").write_text(
        "import io, os\nfrom setuptools import setup\n"
        "here = os.path.abspath(os.path.dirname(__file__))\n"
        "with io.open(os.path.join(here, 'requirements.txt'), encoding='utf-8') as f:\n"
        "    requirements = f.read().splitlines()\n"
        "setup(name='idioms', install_requires=requirements,\n"
        "      extras_require={'serve': open('reqs/serve.txt').read().splitlines()})\n")
    r = report_for(tmp_path)
    assert [(q.text, q.evidence.cite()) for q in r.requirements] == [("numpy", "requirements.txt:1")]
    assert [(q.text, q.evidence.cite()) for q in r.optional["serve"]] == [("fastapi", "reqs/serve.txt:1")]
