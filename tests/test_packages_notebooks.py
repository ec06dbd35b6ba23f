"""Notebooks: %pip/!pip installs, imports in code cells, offsets other detectors rely on."""

from __future__ import annotations

import json
from pathlib import Path

from gpu_lol.analyzer.notebooks import code_cells, python_source, read_cells, shell_lines
from gpu_lol.analyzer.packages import collect
from gpu_lol.repo_index import FileIndex

CASES = Path(__file__).parent / "fixtures" / "packages"
NB = CASES / "notebooks_repo" / "finetune.ipynb"


def test_notebook_installs_with_file_lines():
    r = collect(FileIndex.build(CASES / "notebooks_repo"))
    assert [(q.text, q.evidence.cite()) for q in r.requirements] == [
        ("transformers==4.38.2", "finetune.ipynb:15"),  # %pip install -q
        ("peft", "finetune.ipynb:15"),
        ("bitsandbytes>=0.43", "finetune.ipynb:16"),  # !pip install -U "..."
        ("accelerate", "finetune.ipynb:16"),
        ("trl", "finetune.ipynb:34"),  # %%capture cell, !{sys.executable} -m pip
        ("datasets", "finetune.ipynb:44"),  # %%bash cell with a continuation
        ("evaluate", "finetune.ipynb:86"),  # get_ipython().system(...)
    ]
    assert all(q.source == "notebook" for q in r.requirements)
    assert "finetune.ipynb:85: dropped '$PKG' (uses $PKG, unknown here)" in r.warnings
    assert any(w.startswith("broken.ipynb: not valid notebook JSON") for w in r.warnings)


def test_evidence_lines_are_lines_of_the_ipynb_file():
    raw = NB.read_text().splitlines()
    r = collect(FileIndex.build(CASES / "notebooks_repo"))
    for q in r.requirements:
        name = q.text.split("=")[0].split(">")[0]
        assert name in q.evidence.text  # the command as read
        # the cited line is where that command starts (a continued command starts before it)
        assert name in raw[q.evidence.line - 1] or raw[q.evidence.line - 1].rstrip().endswith('\\\\\\n",')
    for name, evs in r.imports.items():
        for ev in evs:
            assert "import" in raw[ev.line - 1] and ev.file == "finetune.ipynb"


def test_notebook_imports_skip_magics_outputs_and_stdlib():
    r = collect(FileIndex.build(CASES / "notebooks_repo"))
    assert {k: [e.cite() for e in v] for k, v in r.imports.items()} == {
        "torch": ["finetune.ipynb:56"],
        "numpy": ["finetune.ipynb:57"],
        "PIL": ["finetune.ipynb:58"],
        "sklearn": ["finetune.ipynb:61"],  # under `if True:` next to a `!ls` line
        "cv2": ["finetune.ipynb:72"],
        "wandb": ["finetune.ipynb:74"],  # optional (try/except ImportError), still reported
    }
    assert "fake_from_output" not in r.imports


def test_code_cells_offsets_and_python_source():
    index = FileIndex.build(CASES / "notebooks_repo")
    cells = list(code_cells(index, "finetune.ipynb"))
    assert len(cells) == 6
    raw = NB.read_text().splitlines()
    for offset, code in cells:
        for k, line in enumerate(code.splitlines(), 1):
            if line.strip():
                assert json.dumps(line)[1:-1] in raw[offset + k - 1]
    src = python_source(cells[3][1])
    assert src.splitlines()[0] == "pass"  # %matplotlib inline
    assert "    pass" in src.splitlines()  # indented !ls keeps the block valid
    compile(src, "cell", "exec")
    assert list(code_cells(index, "broken.ipynb")) == []


def test_shell_lines_forms():
    code = ("%pip install a\n!pip install b \\\n  c\nx = !pip freeze\n%%time\n"
            "get_ipython().run_line_magic('pip', 'install d')\n%sx ls\n")
    assert shell_lines(code) == [(1, "pip install a"), (2, "pip install b  c"), (4, "pip freeze"),
                                 (6, "pip install d"), (7, "ls")]
    assert shell_lines("%%bash\npip install e\n") == [(2, "pip install e")]
    assert shell_lines("%%html\n<b>!pip install f</b>\n") == []


def test_nbformat3_and_single_string_sources():
    nb3 = {"nbformat": 3, "worksheets": [{"cells": [
        {"cell_type": "code", "input": ["import torch\n", "!pip install x3\n"], "outputs": []}]}]}
    cells, error = read_cells(json.dumps(nb3, indent=1))
    assert error is None and cells[0][1] == "import torch\n!pip install x3\n"
    nb4 = {"nbformat": 4, "cells": [{"cell_type": "code", "source": "import jax\nimport flax", "outputs": []}]}
    cells, error = read_cells(json.dumps(nb4))
    assert error is None and cells[0][1] == "import jax\nimport flax"
    assert read_cells("[1, 2]")[1].startswith("not a notebook")


def test_colab_clone_then_install_from_the_clone(tmp_path):
    repo = tmp_path / "vision_transformer"
    (repo / "vit_jax").mkdir(parents=True)
    (repo / "vit_jax" / "requirements.txt").write_text("flax\n")
    nb = {"nbformat": 4, "cells": [{"cell_type": "code", "outputs": [], "source": [
        "!git clone https://github.com/google-research/vision_transformer\n",
        "!pip install -qr vision_transformer/vit_jax/requirements.txt\n"]}]}
    (repo / "demo.ipynb").write_text(json.dumps(nb, indent=1))
    r = collect(FileIndex.build(repo))
    assert [(q.text, q.evidence.cite()) for q in r.requirements] == [("flax", "vit_jax/requirements.txt:1")]
