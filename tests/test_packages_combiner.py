"""The combiner: scope (root vs subdirectories), precedence and dedupe, Python versions,
virtualenvs that must not leak, and malformed files that must not crash anything."""

from __future__ import annotations

import shutil
from pathlib import Path

from gpu_lol.analyzer.collector import PackageReport, python_version_text, variant
from gpu_lol.analyzer.packages import collect
from gpu_lol.repo_index import FileIndex

CASES = Path(__file__).parent / "fixtures" / "packages"


def report_for(case):
    return collect(FileIndex.build(CASES / case if isinstance(case, str) else case))


def pairs(items):
    return [(q.text, q.evidence.cite()) for q in items]


def test_monorepo_examples_benchmarks_docs_and_vendored_code_do_not_leak():
    r = report_for("monorepo")
    assert pairs(r.requirements) == [("torch==2.2.0", "requirements.txt:1"), ("accelerate", "requirements.txt:2")]
    assert r.sources == ["requirements.txt"]
    assert not r.from_subdirs and not r.from_imports
    assert not r.is_package  # third_party/vendored/setup.py is not the repo's
    assert r.optional == {} and r.dev == {}


def test_subdirectory_sources_only_when_the_root_declares_nothing():
    r = report_for("subdirs")
    assert r.from_subdirs and not r.from_imports
    # the shallowest ones (depth 1), never docs/, never deeper ones
    assert pairs(r.requirements) == [
        ("torch>=2.0", "imagenet/requirements.txt:1"),
        ("pillow", "imagenet/requirements.txt:2"),
        ("torchvision", "mnist/requirements.txt:2"),
    ]


def test_precedence_first_file_owns_a_name_and_keeps_its_marker_variants():
    r = report_for("precedence")
    assert [(q.text, q.evidence.cite(), q.source) for q in r.requirements] == [
        ('torch==2.1.0; sys_platform == "linux"', "requirements.txt:1", "requirements"),
        # the darwin line is dropped (a Linux machine never installs it), with a warning
        # requirements.txt owns numpy but leaves it bare: pyproject's pin refines it
        ("numpy>=1.26", "pyproject.toml:3", "pyproject"),
        ("pandas", "pyproject.toml:3", "pyproject"),
        ("scikit-learn", "Dockerfile:2", "dockerfile"),  # Dockerfile's torch==1.13 loses
    ]
    assert r.sources == ["requirements.txt", "pyproject.toml", "Dockerfile"]
    assert any("requirements.txt:2" in w and "excludes" not in w and "false on Linux" in w for w in r.warnings)
    # `pip install selfpkg[train]` names the repo itself: its extra is requested
    assert r.project_name == "SelfPkg"
    assert [(x, e.cite()) for x, e in r.extras_requested] == [("train", "Dockerfile:2")]
    # exact versions first: .python-version, runtime.txt, then the Dockerfile's python image
    assert [(v, e.cite()) for v, e in r.python_versions] == [
        ("3.10", ".python-version:1"), ("3.9", "runtime.txt:1"), ("3.10", "Dockerfile:1")]


def test_virtualenvs_and_build_outputs_do_not_leak(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(CASES / "monorepo", repo)
    for venv in (".venv", "env", "myvenv"):
        site = repo / venv / "lib" / "python3.11" / "site-packages" / "leaky"
        site.mkdir(parents=True)
        (repo / venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
        (site / "requirements.txt").write_text("leaky-from-venv\n")
        (site / "setup.py").write_text("from setuptools import setup\nsetup(install_requires=['leaky2'])\n")
        (site / "__init__.py").write_text("import leaky_import\n")
        (repo / venv / "requirements.txt").write_text("leaky-venv-root\n")
    (repo / "node_modules" / "x").mkdir(parents=True)
    (repo / "node_modules" / "x" / "requirements.txt").write_text("leaky-node\n")
    index = FileIndex.build(repo)
    assert not any(f.rel.startswith((".venv/", "env/", "myvenv/", "node_modules/")) for f in index.files)
    r = collect(index)
    assert [q.text for q in r.requirements] == ["torch==2.2.0", "accelerate"]
    assert not any("leaky" in k for k in r.imports)
    assert not any("leaky" in w for w in r.warnings)


def test_venv_only_repo_falls_back_to_its_own_imports_not_the_venv(tmp_path):
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / ".venv" / "lib" / "requirements.txt").write_text("leaky\n")
    (tmp_path / "app.py").write_text("import requests\n")
    r = collect(FileIndex.build(tmp_path))
    assert r.from_imports and [q.text for q in r.requirements] == ["requests"]


def test_malformed_files_warn_and_never_crash():
    r = report_for("malformed")
    assert isinstance(r, PackageReport)
    assert pairs(r.requirements) == [("ok-pkg", "setup.cfg:3")]
    assert r.warnings == [
        "requirements.txt: not readable as UTF-8 text; skipped",
        "pyproject.toml:1: invalid TOML (Expected ']' at the end of a table declaration); skipped",
        "setup.py:1: not valid Python 3 (never run); install_requires read by pattern",
        "Pipfile:2: invalid TOML (Invalid value); skipped",
        "environment.yml:5: invalid YAML (expected ',' or ']', but got '<stream end>'); skipped",
        "Dockerfile:1: FROM without an image",
        "Dockerfile:2: unbalanced quotes in a shell command; not read",
        "weird.ipynb: not a notebook (no cells); skipped",
    ]


def test_empty_repo(tmp_path):
    r = collect(FileIndex.build(tmp_path))
    assert r.requirements == [] and not r.is_package and not r.from_imports and r.warnings == []


def test_every_requirement_is_valid_and_shell_safe_across_fixtures():
    from gpu_lol.requirements_text import check_requirement

    for case in sorted(p.name for p in CASES.iterdir() if p.is_dir()):
        r = report_for(case)
        for q in r.requirements + [q for g in r.optional.values() for q in g]:
            assert check_requirement(q.text) == q.text, (case, q)
            assert not any(c in q.text for c in "`$\n"), (case, q)
            assert q.evidence.line is not None and q.evidence.line >= 1, (case, q)


def test_variant_names():
    assert variant("requirements-dev.txt") == "dev"
    assert variant("test-requirements.txt") == "dev"
    assert variant("requirements_test.txt") == "dev"
    assert variant("requirements/lint.txt") == "dev"
    assert variant("requirements/docs.txt") == "dev"
    assert variant("requirements/rocm.txt") == "platform"
    assert variant("requirements-cpu.txt", ["requirements-gpu.txt"]) == "platform"
    assert variant("requirements-cpu.txt", ["requirements.txt"]) == "runtime"
    assert variant("requirements-optional.txt") == "optional"
    assert variant("requirements.txt") == "runtime"
    assert variant("requirements/cuda.txt") == "runtime"
    assert variant("requirements/base.txt") == "runtime"


def test_python_version_text():
    assert python_version_text("3.10.12") == "3.10"
    assert python_version_text("python-3.9.7") == "3.9"
    assert python_version_text("3.11.*") == "3.11"
    assert python_version_text(">= 3.8, <3.12") == ">=3.8,<3.12"
    assert python_version_text("==3.11.*") == "3.11"
    assert python_version_text("pypy3.9") is None
    assert python_version_text("latest") is None


def test_a_bare_name_is_pinned_by_a_later_source(tmp_path):
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup(name='ld', install_requires=['torch', 'numpy>=1.2'])\n")
    (tmp_path / "environment.yaml").write_text(
        "dependencies:\n  - pytorch=1.11.0\n  - numpy=1.19.2\n  - pip:\n    - einops==0.3.0\n")
    r = collect(FileIndex.build(tmp_path))
    # setup.py owns both names; its bare `torch` takes the environment's pin, its numpy range stays
    assert pairs(r.requirements) == [
        ("torch==1.11.0", "environment.yaml:2"), ("numpy>=1.2", "setup.py:2"), ("einops==0.3.0", "environment.yaml:5")]


def test_installing_the_repo_from_its_own_git_url_is_the_repo_itself(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "openai-whisper"\ndependencies = ["numpy"]\n'
        '[project.urls]\nHomepage = "https://github.com/openai/whisper"\n')
    (tmp_path / "README.md").write_text(
        "```bash\npip install git+https://github.com/openai/whisper.git\n"
        "pip install git+https://github.com/other/tool.git\n```\n")
    r = collect(FileIndex.build(tmp_path))
    assert [q.text for q in r.requirements] == ["numpy", "git+https://github.com/other/tool.git"]


def test_extras_refine_and_named_urls_absorb_nameless_ones(tmp_path):
    (tmp_path / "requirements.txt").write_text(
        "black\nblack[jupyter]\nflaxformer @ git+https://github.com/google/flaxformer\n"
        "git+https://github.com/google/flaxformer\nnumpy>=1.2\nnumpy[dev]>=1.3\n")
    (tmp_path / "setup.sh").write_text("pip install -U pip setuptools wheel uv 'setuptools<70'\n")
    r = collect(FileIndex.build(tmp_path))
    assert [q.text for q in r.requirements] == [
        "black[jupyter]", "flaxformer @ git+https://github.com/google/flaxformer", "numpy>=1.2", "setuptools<70"]
    assert r.warnings == ["requirements.txt:6: 'numpy[dev]>=1.3' repeats 'numpy'; the first entry is kept"]


def test_indexes_of_platform_files_stay_out(tmp_path):
    (tmp_path / "requirements.txt").write_text("jax\n-f https://storage.googleapis.com/jax-releases/jax_cuda_releases.html\n")
    (tmp_path / "requirements-tpu.txt").write_text("-f https://storage.googleapis.com/jax-releases/libtpu_releases.html\njax[tpu]\n")
    r = collect(FileIndex.build(tmp_path))
    assert [u for _k, u, _e in r.index_urls] == ["https://storage.googleapis.com/jax-releases/jax_cuda_releases.html"]


def test_subdirectory_fallback_goes_deeper_past_folders_without_declarations(tmp_path):
    for d in ("training", "inference"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "README.md").write_text("# notes\n")
    (tmp_path / "training" / "cifar").mkdir()
    (tmp_path / "training" / "cifar" / "requirements.txt").write_text("torchvision\n")
    (tmp_path / "training" / "cifar" / "deeper").mkdir()
    (tmp_path / "training" / "cifar" / "deeper" / "requirements.txt").write_text("not-this\n")
    r = collect(FileIndex.build(tmp_path))
    assert r.from_subdirs and [q.text for q in r.requirements] == ["torchvision"]


def test_paths_and_specs_handed_on_have_no_shell_characters(tmp_path):
    (tmp_path / "a;b.txt").write_text("urllib3<2\n")
    (tmp_path / "lib x").mkdir()
    (tmp_path / "lib x" / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    (tmp_path / "requirements.txt").write_text('-c "a;b.txt"\n./lib x\nnumpy\n')
    (tmp_path / "environment.yml").write_text("dependencies:\n  - 'ffmpeg;reboot'\n  - cudatoolkit=11.8\n")
    r = collect(FileIndex.build(tmp_path))
    assert r.constraints == [] and r.local_installs == []
    assert [s for s, _ in r.conda_only] == ["cudatoolkit=11.8"]
    assert [q.text for q in r.requirements] == ["numpy"]
    assert r.warnings == [
        "requirements.txt:1: constraints file 'a;b.txt' has unusual characters in its name; ignored",
        "requirements.txt:2: local path 'lib x' has unusual characters in its name; not installed",
        "environment.yml:2: ignored conda spec 'ffmpeg;reboot' (unexpected characters)",
    ]


def test_mangled_declaration_files_never_crash(tmp_path):
    """Each fixture declaration file cut, spliced and sprinkled with odd bytes, a few hundred
    times: the analysis always returns a report (warnings allowed), never raises."""
    import random

    rng = random.Random(1234)
    sources = [p for p in CASES.rglob("*") if p.is_file() and p.stat().st_size < 4000]
    names = ["requirements.txt", "pyproject.toml", "setup.py", "setup.cfg", "environment.yml",
             "Pipfile", "Dockerfile", "run.sh", "README.md", "nb.ipynb", "main.py"]
    junk = ["\x00", "\\", "\"", "'''", "[", "{", "-r ", "-e ", "$(", "`", ";", "\n", "\t", "é", "\ufeff",
            "FROM ", "RUN pip install ", "%pip install ", "import ", "::", "=", "^", "~", "*", "||"]
    for round_ in range(40):
        repo = tmp_path / f"r{round_}"
        repo.mkdir()
        for name in rng.sample(names, 4):
            data = rng.choice(sources).read_bytes()
            cut = rng.randrange(len(data) + 1)
            piece = rng.choice(sources).read_bytes()
            mangled = data[:cut] + "".join(rng.choice(junk) for _ in range(rng.randrange(6))).encode() \
                + piece[rng.randrange(len(piece) + 1):]
            (repo / name).write_bytes(mangled)
        r = collect(FileIndex.build(repo))
        assert isinstance(r, PackageReport)
        for q in r.requirements:
            assert not any(c in q.text for c in "`$\n")
