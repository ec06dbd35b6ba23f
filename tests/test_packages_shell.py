"""pip/conda install lines in shell scripts and README code blocks; the shared command reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_lol.analyzer.packages import collect
from gpu_lol.analyzer.shell_installs import readme_code_lines, split_commands
from gpu_lol.repo_index import FileIndex

CASES = Path(__file__).parent / "fixtures" / "packages"


def report_for(case):
    return collect(FileIndex.build(CASES / case if isinstance(case, str) else case))


def test_scripts_and_readme():
    r = report_for("shell_readme")
    assert [(q.text, q.evidence.cite(), q.source) for q in r.requirements] == [
        ("torch>=2.1", "requirements.txt:1", "requirements"),
        ("numpy<2.0", "scripts/setup_env.sh:7", "shell"),  # continued line, trailing comment
        ("scipy>=1.11", "scripts/setup_env.sh:7", "shell"),
        ("einops", "scripts/setup_env.sh:7", "shell"),
        ("xformers==0.0.23", "scripts/setup_env.sh:9", "shell"),  # inside if ...; then ...; fi
        ("flash-attn", "scripts/setup_env.sh:10", "shell"),  # redirects skipped
        ("git+https://github.com/org/extra-tool.git", "README.md:10", "readme"),
    ]
    texts = [q.text for q in r.requirements]
    for never in ("pip", "commented-out-pkg", "inline-code-pkg", "python-block-pkg", "pytest", "mypkg[serve]"):
        assert never not in texts
    # `pip install -e ".[train,dev]"` and `pip install mypkg[serve]` (the repo's own name)
    assert [(x, e.cite()) for x, e in r.extras_requested] == [
        ("train", "scripts/setup_env.sh:11"), ("serve", "README.md:9")]
    assert [(v, e.cite()) for v, e in r.python_versions] == [("3.10", "README.md:6")]
    # a per-command --index-url is an extra index for the whole environment
    assert [(k, u) for k, u, _ in r.index_urls] == [("--extra-index-url", "https://download.pytorch.org/whl/cu121")]
    assert r.system_packages == []  # apt-get in scripts is not taken (Dockerfiles only)


@pytest.mark.parametrize("text, words", [
    ('pip install -q "numpy<2.0" x && echo ok', [["pip", "install", "-q", "numpy<2.0", "x"], ["echo", "ok"]]),
    ("a; b || c | d", [["a"], ["b"], ["c"], ["d"]]),
    ("pip install 'a; python_version<\"3.8\"'", [["pip", "install", 'a; python_version<"3.8"']]),
    ("pip install git+https://x/y.git#egg=z", [["pip", "install", "git+https://x/y.git#egg=z"]]),
])
def test_split_commands(text, words):
    assert split_commands(text) == words


@pytest.mark.parametrize("line, expected", [
    ("sudo -E pip3 install --user requests", ["requests"]),
    ("sudo -E -H -u builder env PIP_NO_CACHE=1 pip install rich", ["rich"]),
    ("FOO=1 python3.10 -m pip install -U rich", ["rich"]),
    ("pip --no-cache-dir install -r /dev/null tqdm", ["tqdm"]),
    ("uv add httpx", ["httpx"]),
    ("uv add --dev pytest", []),
    ("pip download numpy", []),
    ("pipx install black", []),
    ("conda install -y -c conda-forge 'numpy>=1.26' python=3.11", ["numpy>=1.26"]),
    ("mamba install pytorch::pytorch torchvision", ["torch", "torchvision"]),
    ("pip install 'transformers[torch]>=4.40' 2>/dev/null", ["transformers[torch]>=4.40"]),
])
def test_install_command_forms(tmp_path, line, expected):
    (tmp_path / "go.sh").write_text(line + "\n")
    r = report_for(tmp_path)
    assert [q.text for q in r.requirements] == expected


def test_readme_blocks_and_rst(tmp_path):
    (tmp_path / "README.rst").write_text(
        "Install\n=======\n\n.. code-block:: bash\n\n   pip install rst-pkg\n\nText.\n\n"
        "Or::\n\n    pip install literal-pkg\n\n.. code-block:: python\n\n   os.system('pip install no')\n")
    r = report_for(tmp_path)
    assert [(q.text, q.evidence.cite()) for q in r.requirements] == [
        ("rst-pkg", "README.rst:6"), ("literal-pkg", "README.rst:12")]


def test_readme_code_lines_prompts_and_fences():
    lines = ["```sh", "$ pip install a", "(venv) user@host:~$ pip install b \\", "   c", "```",
             "~~~", ">>> import x", "~~~", "```yaml", "pip install no", "```"]
    assert readme_code_lines(lines) == [(2, "pip install a"), (3, "pip install b  c"), (7, "import x")]


@pytest.mark.parametrize("line, expected_reqs, expected_flag", [
    ("pip install -qr pinned.txt comet_ml  # install", ["numpy", "comet_ml"], None),
    ("pip install -Ur pinned.txt", ["numpy"], None),
    ("pip install -rpinned.txt", ["numpy"], None),
    ("pip install -qU -i https://download.pytorch.org/whl/cu121 torch", ["torch"], "--extra-index-url"),
])
def test_combined_short_options_and_comments(tmp_path, line, expected_reqs, expected_flag):
    (tmp_path / "pinned.txt").write_text("numpy\n")
    (tmp_path / "go.sh").write_text(line + "\n")
    r = report_for(tmp_path)
    assert [q.text for q in r.requirements] == expected_reqs
    assert [k for k, _u, _e in r.index_urls] == ([expected_flag] if expected_flag else [])
    assert r.warnings == []


def test_readme_placeholders_are_not_packages(tmp_path):
    (tmp_path / "README.md").write_text(
        "```\npip install -r <requirements file according to table below>\npip install <your-package>\n"
        "pip install 'numpy<2' 'scipy>=1'\n```\n")
    r = report_for(tmp_path)
    assert [q.text for q in r.requirements] == ["numpy<2", "scipy>=1"]
    assert r.warnings == ["README.md:2: install command with a placeholder (<...>); not read",
                          "README.md:3: install command with a placeholder (<...>); not read"]


def test_commented_install_lines_in_readme_blocks_are_not_read(tmp_path):
    (tmp_path / "README.md").write_text(
        "```bash\n# pip install commented-out\npip install kept  # trailing note\n"
        "root@box:/workspace# pip install from-root-prompt\n```\n")
    r = report_for(tmp_path)
    assert [q.text for q in r.requirements] == ["kept", "from-root-prompt"]
