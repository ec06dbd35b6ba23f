"""Every hostile case, as data: the tests parametrize over these lists and docs/security.md's
table is generated from them (``python tests/hostile/make_table.py``; a test checks the doc
matches), so the table can never drift from what is tested.

A case is (id, what it is, the outcome allowed). Outcomes:

- ``works``: exit 0;
- ``error N``: exit N with one ``error:`` line (and a hint) on stderr;
- ``works or error``: either, as long as the rules below hold (used where the answer depends on
  the machine, e.g. whether a FIFO can be opened).

Whatever the outcome, every case also checks: no traceback, no marker file created by a shell,
no secret in the output, nothing written outside the repo and the temporary home.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SECRET = "HOSTILE-SECRET-c0ffee-9d2e4a7b1f"  # planted in keys/credentials; never printed
PRIVATE_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\n" + SECRET + "\nb3BlbnNzaC1rZXktdjEAAAAA\n"
               "-----END OPENSSH PRIVATE KEY-----\n")
MARK = "HOSTILE_MARK"  # shell payloads create files named HOSTILE_MARK-*; none may appear


@dataclass(frozen=True)
class Case:
    id: str
    what: str
    expect: str
    build: Callable[..., object] | None = field(default=None, compare=False, repr=False)
    group: str = ""


def _case(group: str):
    def make(id: str, what: str, expect: str, build=None) -> Case:
        return Case(id, what, expect, build, group)
    return make


# =============================================================================================
# 1. Repo trees: `gpu-lol analyze --no-llm --json REPO` (in-process, the real entry point)
# =============================================================================================
tree = _case("repo trees")


def _w(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _ml(repo: Path) -> None:
    """A small real ML repo underneath every hostile tree, so the analysis has work to do."""
    _w(repo / "run_model.py", "import torch\nfrom transformers import AutoModel\n"
       "m = AutoModel.from_pretrained('bert-base-uncased')\n")


def _fifo(name: str):
    def build(repo: Path, home: Path) -> None:
        _ml(repo)
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(repo / name)
    return build


def _chardev(name: str):
    def build(repo: Path, home: Path) -> None:
        _ml(repo)
        os.mknod(repo / name, 0o600 | 0o020000, os.makedev(1, 5))  # like /dev/zero: endless
    return build


def _socket(name: str):
    def build(repo: Path, home: Path) -> None:
        import socket

        _ml(repo)
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(repo / name))
        sock.close()
    return build


def _link(name: str, target: Callable[[Path, Path], str]):
    def build(repo: Path, home: Path) -> None:
        _ml(repo)
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target(repo, home), repo / name)
    return build


def _ssh_key(repo: Path, home: Path) -> str:
    _w(home / ".ssh" / "id_rsa", PRIVATE_KEY)
    return str(home / ".ssh" / "id_rsa")


def _ssh_dir(repo: Path, home: Path) -> str:
    _ssh_key(repo, home)
    return str(home / ".ssh")


def _loop(repo: Path, home: Path) -> None:
    _ml(repo)
    os.symlink("b", repo / "a")
    os.symlink("a", repo / "b")
    (repo / "pkg").mkdir()
    os.symlink("..", repo / "pkg" / "up")
    os.symlink(".", repo / "pkg" / "self")


def _sparse(name: str, size: int):
    def build(repo: Path, home: Path) -> None:
        _ml(repo)
        with open(repo / name, "wb") as fh:
            fh.truncate(size)
    return build


def _long_line(name: str, prefix: str = ""):
    def build(repo: Path, home: Path) -> None:
        _ml(repo)
        _w(repo / name, prefix + "x" * (1 << 20) + "\n")
    return build


def _deep(depth: int):
    def build(repo: Path, home: Path) -> None:
        _ml(repo)
        deep = str(repo)
        for _ in range(depth):  # os.makedirs recurses once per level
            deep += "/d"
            os.mkdir(deep)
        with open(os.path.join(deep, "train.py"), "w") as fh:
            fh.write("import torch\n")
    return build


def _many(count: int):
    def build(repo: Path, home: Path) -> None:
        _ml(repo)
        for i in range(count):
            directory = repo / f"m{i // 500}"
            if i % 500 == 0:
                directory.mkdir()
            (directory / f"f{i}.py").write_text("import numpy\n")
    return build


def _content(name: str, kind: str):
    payloads = {
        "binary": bytes(range(256)) * 64,
        "bad-utf8": b"torch==2.1\n\xff\xfe\xc3\x28 broken \xa0\xa1\n",
        "utf16": "import torch\nnumpy==1.26\n".encode("utf-16"),
        "nul": b"torch\x00\x00numpy\n",
    }

    def build(repo: Path, home: Path) -> None:
        _ml(repo)
        _w(repo / name, payloads[kind])
    return build


def _odd_names(repo: Path, home: Path) -> None:
    _ml(repo)
    _w(repo / "new\nline.py", "import torch\n")
    (repo / "dir\nwith\nnewlines").mkdir()
    _w(repo / "dir\nwith\nnewlines" / "requirements.txt", "numpy\n")
    _w(Path(os.fsdecode(bytes(repo) + b"/bad-\xff\xfe-name.py")), "import jax\n")
    _w(repo / "$(touch HOSTILE_MARK-name).py", "import torch\n")
    _w(repo / "-rf.py", "import torch\n")


def _gitignore(text: str | bytes):
    def build(repo: Path, home: Path) -> None:
        _ml(repo)
        _w(repo / ".gitignore", text)
        _w(repo / "sub" / "mod.py", "import numpy\n")
    return build


def _yaml_bomb(name: str):
    bomb = "\n".join([
        'a: &a ["x","x","x","x","x","x","x","x","x"]',
        *[f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]" for p, c in zip("abcdefg", "bcdefgh")],
        "dependencies: *h", ""])

    def build(repo: Path, home: Path) -> None:
        _ml(repo)
        _w(repo / name, bomb)
    return build


def _deep_json_notebook(repo: Path, home: Path) -> None:
    _ml(repo)
    _w(repo / "nb.ipynb", "[" * 200_000 + "]" * 200_000)


def _big_notebook(repo: Path, home: Path) -> None:
    _ml(repo)
    cell = {"cell_type": "code", "source": ["import torch\n"], "metadata": {}, "outputs": [
        {"output_type": "stream", "name": "stdout", "text": ["y" * 1000 + "\n"] * 100}]}
    _w(repo / "big.ipynb", json.dumps({"cells": [cell] * 300, "metadata": {}, "nbformat": 4}))


def _readme_link_bomb(repo: Path, home: Path) -> None:
    _ml(repo)
    _w(repo / "README.md", "[x](" * 50_000 + "\n" + "```bash\n" * 20_000)


def _pyproject_deep(repo: Path, home: Path) -> None:
    _ml(repo)
    _w(repo / "pyproject.toml", "a = " + "[" * 5000 + "]" * 5000 + "\n")


def _setup_py_bomb(repo: Path, home: Path) -> None:
    _ml(repo)
    _w(repo / "setup.py", "from setuptools import setup\nsetup(install_requires=" + "[" * 3000
       + "]" * 3000 + ")\n" + "x = (" * 200 + ")" * 200 + "\n")


def _python_deep_expr(repo: Path, home: Path) -> None:
    _ml(repo)
    _w(repo / "deep.py", "x = " + "-" * 100_000 + "1\n" + "y = " + "(" * 1000 + ")" * 1000 + "\n")


def _requirements_include_loop(repo: Path, home: Path) -> None:
    _ml(repo)
    _w(repo / "requirements.txt", "-r requirements.txt\n-r other.txt\nnumpy\n")
    _w(repo / "other.txt", "-r requirements.txt\n-r /etc/passwd\n-r ../../../../etc/shadow\n")


def _requirements_secret_include(repo: Path, home: Path) -> None:
    _ml(repo)
    _ssh_key(repo, home)
    _w(repo / "requirements.txt", f"-r {home}/.ssh/id_rsa\n-c {home}/.ssh/id_rsa\nnumpy\n")


def _env_secret_file(repo: Path, home: Path) -> None:
    _ml(repo)
    _w(repo / ".env", f"HF_TOKEN={SECRET}\nOPENAI_API_KEY={SECRET}\n")
    _w(repo / "config.yaml", f"api_key: {SECRET}\nmodel: bert-base-uncased\n")


PARSED_NAMES = ["requirements.txt", "pyproject.toml", "setup.py", "setup.cfg", "environment.yml",
                "Pipfile", "Dockerfile", "train.py", "README.md", "notebook.ipynb", ".gitignore",
                "config.yaml", "train.sh", "Makefile"]

TREE_CASES: list[Case] = [
    *[tree(f"fifo-{n}", f"a FIFO named {n}", "works", _fifo(n))
      for n in ("requirements.txt", "train.py", "pyproject.toml", ".gitignore", "environment.yml",
                "notebook.ipynb", "README.md", ".gpu-lol.yaml")],
    *[tree(f"chardev-{n}", f"a character device (/dev/zero) named {n}", "works", _chardev(n))
      for n in ("requirements.txt", "setup.py", "config.yaml")],
    tree("socket-setup.py", "a Unix socket named setup.py", "works", _socket("setup.py")),
    tree("symlink-loop", "symlinks a->b->a, pkg/up -> .., pkg/self -> .", "works", _loop),
    tree("link-req-to-ssh-key", "requirements.txt -> ~/.ssh/id_rsa (key never printed)", "works",
         _link("requirements.txt", _ssh_key)),
    tree("link-readme-to-etc-passwd", "README.md -> /etc/passwd", "works",
         _link("README.md", lambda r, h: "/etc/passwd")),
    tree("link-dir-to-root", "a directory link to /", "works", _link("rootfs", lambda r, h: "/")),
    tree("link-dir-to-ssh", "a directory link to ~/.ssh", "works", _link("keys", _ssh_dir)),
    tree("link-dangling-req", "requirements.txt dangling", "works",
         _link("requirements.txt", lambda r, h: "/nonexistent/requirements.txt")),
    tree("link-dangling-config", ".gpu-lol.yaml dangling", "works",
         _link(".gpu-lol.yaml", lambda r, h: "/nonexistent/x.yaml")),
    tree("link-config-to-ssh-key", ".gpu-lol.yaml -> ~/.ssh/id_rsa", "error 2",
         _link(".gpu-lol.yaml", _ssh_key)),
    tree("sparse-4GB-requirements", "requirements.txt, a 4 GB sparse file", "works",
         _sparse("requirements.txt", 4 << 30)),
    tree("sparse-4GB-train.py", "train.py, a 4 GB sparse file", "works", _sparse("big.py", 4 << 30)),
    tree("sparse-500MB-notebook", "a 500 MB (sparse) notebook", "works", _sparse("huge.ipynb", 500 << 20)),
    tree("notebook-30MB-outputs", "a real 30 MB notebook (outputs)", "works", _big_notebook),
    tree("notebook-deep-json", "a notebook of 200k nested JSON arrays", "works", _deep_json_notebook),
    tree("1MB-line-train.py", "a 1 MB single line in a .py", "works", _long_line("long.py", "import torch; ")),
    tree("1MB-line-requirements", "a 1 MB single line in requirements.txt", "works",
         _long_line("requirements.txt")),
    tree("1MB-line-readme", "a 1 MB single line in README.md", "works", _long_line("README.md", "pip install ")),
    tree("deep-300", "a 300-deep directory path", "works", _deep(300)),
    tree("deep-1000", "a 1000-deep directory path", "works", _deep(1000)),
    tree("many-5000", "5 000 Python files (100k: bench/bench_hostile.py)", "works", _many(5000)),
    tree("odd-names", "names with newlines, non-UTF-8 bytes, $(…) and a leading -", "works", _odd_names),
    *[tree(f"{kind}-{n}", f"{n} holding {kind.replace('-', ' ')} bytes", "works", _content(n, kind))
      for n in PARSED_NAMES for kind in ("binary", "bad-utf8", "utf16", "nul")],
    tree("gitignore-100k-lines", ".gitignore of 100 000 patterns", "works",
         _gitignore("\n".join(f"pattern{i}/**/*.tmp" for i in range(100_000)))),
    tree("gitignore-star-soup", ".gitignore of '**/**/**…' and '[' patterns", "works",
         _gitignore("**/" * 2000 + "x\n[\n[]\n\\\n!\n!*\n***\n" + "*" * 10000 + "\n")),
    tree("gitignore-ignore-all", ".gitignore '*' then '!*.py'", "works", _gitignore("*\n!*.py\n")),
    tree("gitignore-256KB-line", ".gitignore with one 300 KB line", "works", _gitignore("a" * 300_000)),
    *[tree(f"yaml-bomb-{n}", f"an alias bomb in {n}", "works", _yaml_bomb(n))
      for n in ("environment.yml", "config.yaml", "configs/train.yaml", ".github/workflows/ci.yml")],
    tree("readme-bracket-bomb", "README of 50 000 '[x](' and 20 000 fences", "works", _readme_link_bomb),
    tree("pyproject-deep-arrays", "pyproject.toml with 5000 nested arrays", "works", _pyproject_deep),
    tree("setup.py-nesting", "setup.py with 3000 nested lists", "works", _setup_py_bomb),
    tree("python-deep-expr", "a .py the parser cannot nest (100k unary minus)", "works", _python_deep_expr),
    tree("requirements-include-loop", "-r loops, -r /etc/passwd, -r ../../etc/shadow", "works",
         _requirements_include_loop),
    tree("requirements-include-key", "-r ~/.ssh/id_rsa (key never printed)", "works",
         _requirements_secret_include),
    tree("secrets-in-repo", ".env and config.yaml holding tokens (never printed)", "works", _env_secret_file),
]


# =============================================================================================
# 2. .gpu-lol.yaml and user settings
# =============================================================================================
def _describe(text: str | bytes) -> str:
    shown = repr(text[:48]) + ("…" if len(text) > 48 else "") + f" ({len(text)} bytes)"
    return shown.replace("|", "\\|")


def _text_case(group: str):
    def make(id: str, text: str | bytes, expect: str) -> Case:
        return Case(id, _describe(text), expect, text, group)
    return make


cfg = _text_case(".gpu-lol.yaml")

BOMB = "\n".join([
    'a: &a ["x","x","x","x","x","x","x","x","x"]',
    *[f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]" for p, c in zip("abcdef", "bcdefg")],
    "requirements: *g", ""])

# (id, text or bytes, expected, line the error must name (None: any), field it must name)
CONFIG_CASES: list[Case] = [
    cfg("alias-bomb", BOMB, "error 2 line 2 field b[0]"),
    cfg("alias-bomb-valid-keys", "envs: &e {A: '1'}\nmodel: {name: x}\nrequirements: &r [numpy]\n"
        "setup_commands: *r\n", "error 2 line 4 field setup_commands"),
    cfg("merge-key", "base: &b {gpu_count: 1}\n<<: *b\n", "error 2 line 2"),
    cfg("anchor-without-alias", "gpu_count: &n 2\n", "works"),
    cfg("duplicate-key", "gpu_count: 1\ngpu_count: 2\n", "error 2 line 2 field gpu_count"),
    cfg("duplicate-nested-key", "model:\n  name: a\n  name: b\n", "error 2 line 3 field name"),
    cfg("top-level-list", "- gpu_type: H100\n", "error 2 line 1"),
    cfg("top-level-string", "just text\n", "error 2 line 1"),
    cfg("top-level-number", "42\n", "error 2 line 1"),
    cfg("empty", "", "works"),
    cfg("only-comments", "# nothing\n# here\n", "works"),
    cfg("only-document-marker", "---\n...\n", "works"),
    cfg("two-documents", "gpu_count: 1\n---\ngpu_count: 2\n", "error 2 line 2"),
    cfg("tab-indent", "model:\n\tname: x\n", "error 2 line 2"),
    cfg("tab-after-colon", "gpu_count:\t2\n", "works"),
    cfg("gpu-count-string", "gpu_count: two\n", "error 2 line 1 field gpu_count"),
    cfg("gpu-count-list", "gpu_count: [1]\n", "error 2 line 1 field gpu_count"),
    cfg("gpu-count-negative", "gpu_count: -1\n", "error 2 line 1 field gpu_count"),
    cfg("gpu-count-huge", "gpu_count: 99999999999999999999999\n", "error 2 line 1 field gpu_count"),
    cfg("gpu-count-5000-digits", "gpu_count: " + "9" * 5000 + "\n", "error 2 line 1 field gpu_count"),
    cfg("vram-inf", "vram_required_gb: .inf\n", "error 2 line 1 field vram_required_gb"),
    cfg("vram-nan", "vram_required_gb: .nan\n", "error 2 line 1 field vram_required_gb"),
    cfg("vram-1e308", "vram_required_gb: 1.0e+308\n", "error 2 line 1 field vram_required_gb"),
    cfg("disk-huge", "disk_gb: 10000000000000\n", "error 2 line 1 field disk_gb"),
    cfg("idle-negative", "idle_minutes: -5\n", "error 2 line 1 field idle_minutes"),
    cfg("requirements-string", "requirements: numpy\n", "error 2 line 1 field requirements"),
    cfg("requirements-mapping", "requirements: {numpy: 1}\n", "error 2 line 1 field requirements"),
    cfg("requirement-shell", "requirements: ['numpy; touch HOSTILE_MARK-req']\n",
        "error 2 line 1 field requirements[0]"),
    cfg("requirements-5000", "requirements:\n" + "".join(f"- pkg{i}\n" for i in range(5000)), "works"),
    cfg("envs-list", "envs: [A, B]\n", "error 2 line 1 field envs"),
    cfg("envs-bad-name", "envs: {'A B': '1'}\n", "error 2 line 1 field envs"),
    cfg("envs-shell-name", "envs: {'$(touch HOSTILE_MARK-env)': '1'}\n", "error 2 line 1 field envs"),
    cfg("ports-string", "ports: '22;touch HOSTILE_MARK'\n", "error 2 line 1 field ports"),
    cfg("ports-out-of-range", "ports: [70000]\n", "error 2 line 1 field ports[0]"),
    cfg("python-version-shell", "python_version: '3.11; touch HOSTILE_MARK'\n",
        "error 2 line 1 field python_version"),
    cfg("workload-unknown", "workload_type: mining\n", "error 2 line 1 field workload_type"),
    cfg("unknown-key", "gpu_typ: H100\n", "error 2 line 1 field gpu_typ"),
    cfg("python-tag", "gpu_type: !!python/object/apply:os.system ['touch HOSTILE_MARK-tag']\n",
        "error 2 line 1"),
    cfg("bad-timestamp", "version: 2024-13-45\n", "error 2 line 1 field version"),
    cfg("complex-key", "? [a, b]\n: 1\n", "error 2"),
    cfg("deep-nesting", "model: " + "[" * 200 + "]" * 200 + "\n", "error 2 line 1"),
    cfg("100k-char-key", "k" * 100_000 + ": 1\n", "error 2 line 1"),
    cfg("unclosed-bracket", "requirements: [numpy\n", "error 2"),
    cfg("control-chars", "base_image: \"img\\e[2J\\x07\"\n", "error 2 line 1 field base_image"),
    cfg("binary", bytes(range(256)) * 8, "error 2"),
    cfg("utf16", "gpu_count: 1\n".encode("utf-16"), "error 2"),
    cfg("bad-utf8", b"gpu_count: 1\nmodel: {name: \xff\xfe}\n", "error 2 line 2"),
    cfg("utf8-bom", b"\xef\xbb\xbfgpu_count: 1\n", "works"),
    cfg("2MB", "# " + "x" * (2 << 20) + "\n", "error 2"),
    cfg("200k-nodes", "envs:\n" + "".join(f"  K{i}: '{i}'\n" for i in range(120_000)), "error 2"),
]

settings = _text_case("user settings")

SETTINGS_CASES: list[Case] = [
    settings("settings-alias-bomb", BOMB.replace("requirements", "llm"), "error 2 line 2"),
    settings("settings-top-level-list", "- llm\n", "error 2"),
    settings("settings-binary", bytes(range(256)) * 4, "error 2"),
    settings("settings-utf16", "llm: {model: x}\n".encode("utf-16"), "error 2"),
    settings("settings-invalid-yaml", "llm: {url: [\n", "error 2"),
    settings("settings-timeout-inf", "llm: {timeout: .inf}\n", "error 2"),
    settings("settings-timeout-text", "llm: {timeout: soon}\n", "error 2"),
    settings("settings-url-file", "llm: {url: 'file:///etc/passwd'}\n", "error 2"),
    settings("settings-url-shell", "llm: {url: 'http://127.0.0.1:9/$(touch${IFS}HOSTILE_MARK-url)/v1'}\n",
             "works"),
    settings("settings-key-mapping", "llm: {key: {a: b}}\n", "error 2"),
    settings("settings-huge", "# " + "x" * (1 << 20) + "\n", "error 2"),
    settings("settings-deep", "llm: " + "[" * 100 + "]" * 100 + "\n", "error 2"),
    settings("settings-duplicate-key", "llm: {model: a}\nllm: {model: b}\n", "works or error"),
    settings("settings-unknown-keys-kept", "future: {thing: 1}\nllm: {model: m}\n", "works"),
    settings("settings-secret-key-shown", f"llm: {{key: {SECRET}, url: 'http://127.0.0.1:9/v1'}}\n", "works"),
]


# =============================================================================================
# 3. Strings that reach shells or ssh (marker files prove no shell ran them)
# =============================================================================================
shell = _case("shells and ssh")
M = "/tmp/" + MARK  # payloads write here or in the test's directories; both are checked

# `up REPO --host HOST --yes --no-llm`: refused before any connection
HOST_CASES: list[Case] = [shell(f"host-{i}", f"--host {h!r}", "error 2", h) for i, h in enumerate([
    f"-oProxyCommand=touch {M}-1", f"root@-oProxyCommand=touch {M}-2", f"a@b;touch {M}-3",
    f"a@$(touch {M}-4)", f"a@`touch {M}-5`", "a@b c", f"a@b\ntouch {M}-6", "user@host:99999",
    "user@host:0", "user@host:-22", "user@host:22;id", "@host", "user@", "", "a@b/../c",
    f"$(touch {M}-7)@host", "us'er@host", "[::1", "a@[::1]x", "-i@host", "host:22:33",
    f"a@b|touch {M}-8", f"a@b&&touch {M}-9", "a@b\x00c",
])]
# (flag, value) with a valid-looking --host on a closed port: refused before any connection
HOST_FLAG_CASES: list[Case] = [shell(f"{flag.strip('-')}-{i}", f"{flag} {value!r}", "error 2", (flag, value))
                               for i, (flag, value) in enumerate([
    ("--identity", f"-oProxyCommand=touch {M}-10"), ("--identity", f"$(touch {M}-11)"),
    ("--identity", "/nonexistent/key"), ("--workdir", f"$(touch {M}-12)"), ("--workdir", "~/../../etc"),
    ("--workdir", "/"), ("--workdir", "/home/someone"), ("--workdir", "~"), ("--workdir", "/etc"),
    ("--workdir", "/tmp/a\nb"), ("--workdir", "/tmp/../etc"), ("--workdir", f"/tmp/w`touch {M}-14`"),
    ("--workdir", f"/tmp/w\"; touch {M}-15; \""), ("--name", f"$(touch {M}-13)"),
    ("--name", "-rf"), ("--name", "a;b"), ("--name", "UPPER"), ("--name", "x" * 64), ("--name", "a b"),
    ("--name", "../x"),
])]
# `up REPO --dry-run --json FLAG VALUE` (the SkyPilot plan, no cloud): refused, or shown as data
PLAN_FLAG_CASES: list[Case] = [shell(f"plan{flag}-{i}", f"{flag} {value!r}", expect, (flag, value))
                               for i, (flag, value, expect) in enumerate([
    ("--port", f"22;touch {M}-20", "error 2"), ("--port", "99999", "error 2"), ("--port", "-1", "error 2"),
    ("--port", "http", "error 2"), ("--env", f"A=$(touch {M}-21)", "works"),
    ("--env", f"$(touch {M}-22)=1", "error 2"), ("--env", "A B=1", "error 2"), ("--env", "=x", "error 2"),
    ("--env", f"B=`touch {M}-23`", "works"), ("--env", f"C='; touch {M}-24; '", "works"),
    ("--cloud", f"runpod;touch {M}-25", "error 2"), ("--gpu", f"$(touch {M}-26)", "error 2"),
    ("--gpus", "2;id", "error 2"), ("--idle-minutes", "1e9", "error 2"), ("--name", f"x$(touch {M}-27)", "error 2"),
    ("--assets", f"$(touch {M}-28):/data", "works"), ("--assets", f"data:/x;touch {M}-29", "works"),
])]

# Values that reach the host's shell through a real sshd: env values (exported by the setup
# script and the login rc file) and exec argv words; each must arrive verbatim.
HOSTILE_VALUES = [
    "$(touch {M}-30)", "`touch {M}-31`", "'; touch {M}-32; '", "\"; touch {M}-33; \"",
    "a\ntouch {M}-34", "$HOME and ${{PATH}}", "* ? [a-z] ~", "--help", "-n", "\\$(touch {M}-35)",
    "; touch {M}-36 #", "| touch {M}-37", "&& touch {M}-38 &", "$((1+1))", "!!", "\t\r",
]
HOSTILE_VALUES = [v.format(M=M) for v in HOSTILE_VALUES]
SSH_ENV_CASES: list[Case] = [shell(f"ssh-env-{i}", f"spec env value {v!r} arrives verbatim", "works", v)
                             for i, v in enumerate(HOSTILE_VALUES)]
SSH_EXEC_CASES: list[Case] = [shell(f"ssh-exec-{i}", f"exec argv word {v!r} arrives verbatim", "works", v)
                              for i, v in enumerate(HOSTILE_VALUES)]
SSH_WORKDIR_CASES: list[Case] = [
    shell("ssh-workdir-odd", "a workdir named \"w; touch … 'q' * &\" on the host", "works"),
]
# What a hostile host prints for the pre-flight probe, parsed and then run in the setup script
# by a real bash: the interpreter name goes quoted, so nothing runs.
PROBE_CASES: list[Case] = [shell(f"probe-{i}", f"host probe prints python={v[:40]!r}", "works", v.format(M=M))
                           for i, v in enumerate([
    "$(touch {M}-40)", "`touch {M}-41`", "python3; touch {M}-42", "nopython\ntouch {M}-43",
    "python3 -c 'import os; os.system(\"touch {M}-44\")'", "x" * (1 << 20),
])]


# =============================================================================================
# 4. Faults
# =============================================================================================
fault = _case("faults")

API_CASES: list[Case] = [fault(f"api-unreachable-{c[0]}", f"`gpu-lol {' '.join(c)}` with the API server "
                               "endpoint on a closed port", "error 1", c)
                         for c in (("ls",), ("info", "x"), ("down", "x", "--yes"), ("cost",))]
# The LLM endpoint misbehaves; the analysis falls back to the heuristics with a warning (llm.timeout 1 s)
LLM_CASES: list[Case] = [fault(f"llm-{k}", f"LLM endpoint {w}", "works (warning, heuristics)", k) for k, w in (
    ("never-answers", "accepts the connection and never answers"), ("500", "answers 500 every time"),
    ("10MB", "answers a 10 MB body"), ("invalid-json", "answers 200 with invalid JSON"),
    ("html", "answers an HTML page"), ("refused", "refuses connections"), ("empty", "answers 200, empty body"),
    ("reset", "closes the connection mid-request"), ("wrong-shape", "answers JSON of the wrong shape"),
    ("slow-drip", "sends headers, then one byte a second"),
)]
# `up --host` to a TCP server that is not a working sshd (GPU_LOL_SSH_CONNECT_TIMEOUT=2)
SSH_FAULT_CASES: list[Case] = [fault(f"ssh-{k}", f"ssh to a server that {w}", "error 1", k) for k, w in (
    ("silent", "accepts and never sends a banner"), ("banner-stall", "sends a banner, then stalls"),
    ("garbage", "sends 1 MB of garbage"), ("closes", "accepts and closes at once"),
)] + [fault(f"ssh-exec-{k}", f"`exec` on a recorded host whose server {w}", "error 1", k) for k, w in (
    ("silent", "accepts and never sends a banner"), ("banner-stall", "sends a banner, then stalls"),
)]
REMOTE_FAULT_CASES: list[Case] = [
    fault("remote-killed-mid-exec", "the remote session is killed (kill -9) mid-exec", "error 1"),
    fault("remote-exit-code", "the remote command exits 7", "error 7 (passed through)"),
]
# Ctrl-C (SIGINT) once the command is inside the stage: exit 130, no traceback, nothing half-written
SIGINT_CASES: list[Case] = [fault(f"sigint-{k}", f"SIGINT during {w}", "error 130", k) for k, w in (
    ("analysis", "the analysis of a 4000-file tree"), ("llm", "an LLM request that never answers"),
    ("ssh-connect", "an ssh connection that stalls (up --host)"), ("api-server", "a request to an API "
     "server that never answers (gpu-lol ls)"), ("init", "init (analysis, then the file write)"),
    ("config-set-locked", "config set waiting for the settings lock"),
)]
RACE_CASES: list[Case] = [
    fault("race-config-set", "two processes × 8 `config set` of different keys at once", "works"),
    fault("race-state-save", "16 threads recording targets (same and different names) at once", "works"),
    fault("race-init", "two `init --force` at once: the file is one of them, whole", "works"),
]


# =============================================================================================
# 5. Secrets and files
# =============================================================================================
files = _case("secrets and files")

FILE_CASES: list[Case] = [
    *[files(f"mode-{k}", f"{w}: every file 0600, every directory 0700 (umask 022)", "works")
      for k, w in (("config-set", "config set (settings file, its lock)"), ("state", "a target record"),
                   ("llm-cache", "the LLM cache"), ("host-ssh-config", "a host's ssh config and socket dir"))],
    files("mode-after-up-host", "after a real `up --host` and execs: ssh config, known_hosts, logs, "
          "sockets and records are all private", "works"),
    files("init-symlink", ".gpu-lol.yaml is a symlink: init refuses, --force replaces the link only",
          "works"),
    files("symlink-target", "a write whose target is a symlink replaces the link, not its target", "works"),
    files("symlink-tmp", "links planted at the temp names a naive writer uses are not followed", "works"),
    *[files(f"sync-{n.strip('/').replace('/', '-') or n}{'-' + str(spec) if spec else ''}",
            f"{n} is {'left out of' if out else 'kept in'} the workdir sync"
            + (f" ({'setuptools-scm' if spec == 'scm' else 'setup runs git'})" if spec else ""),
            "works", (n, out, spec))
      for n, out, spec in (
          (".env", True, None), (".env.production", True, None), ("deploy/server.pem", True, None),
          ("id_rsa", True, None), ("id_ed25519", True, None), ("credentials.json", True, None),
          (".aws/credentials", True, None), ("service-account-prod.json", True, None),
          (".netrc", True, None), ("secrets.yaml", True, None), (".git/", True, None),
          (".env.example", False, None), ("id_rsa.pub", False, None), (".git/", False, "scm"),
          (".git/", False, "git-setup"))],
    *[files(f"dryrun-{k}", f"`up --dry-run{' --json' if 'json' in k else ''}{' --host' if 'host' in k else ''}` "
            "with HF_TOKEN, --env WANDB_API_KEY=… and a .env: no value shown", "works")
      for k in ("plan", "json", "host", "host-json")],
    *[files(f"dryrun-spec-envs-{k}", f"`up --dry-run --json{' --host' if k == 'host' else ''}` with HF_TOKEN and "
            "MY_PASSWORD values in .gpu-lol.yaml envs: no value shown", "works") for k in ("plan", "host")],
]

SSH_MODE_CASES = [c for c in FILE_CASES if c.id == "mode-after-up-host"]

# Caps of the analysis, scaled down for the suite (the full sizes: bench/bench_hostile.py)
CAP_CASES: list[Case] = [
    tree("cap-entries", "more entries than the walk cap (cap lowered to 300 for the test)",
         "works (note names the cap)", ("MAX_ENTRIES", 300)),
    tree("cap-read-budget", "more file content than the read budget (lowered to 64 KB)",
         "works (note names the cap)", ("MAX_READ_BYTES", 64 << 10)),
]

# gpu_type takes the names --gpu takes (issue 13): read as the catalog id, with a note
GPU_NAME_CASES: list[Case] = [cfg(f"gpu-name-{n.replace(' ', '-')}", f"gpu_type: {n}\n", f"works ({want})")
                              for n, want in (("rtx4090", "RTX4090"), ("4090", "RTX4090"), ("rtx-4090", "RTX4090"),
                                              ("h100", "H100"), ("a6000", "RTXA6000"),
                                              ("NVIDIA GeForce RTX 4090", "RTX4090"))]


# =============================================================================================
# 6. Feedback and conventions (issue 13 item 6)
# =============================================================================================
feedback = _case("feedback")

FEEDBACK_CASES: list[Case] = [
    feedback("unknown-analyse", "`gpu-lol analyse`", "error 2 (did you mean `gpu-lol analyze`?)", ["analyse"]),
    feedback("unknown-status", "`gpu-lol status`", "error 2 (did you mean `gpu-lol ls`?)", ["status"]),
    feedback("unknown-lauch", "`gpu-lol lauch`", "error 2 (did you mean `gpu-lol up`?)", ["lauch"]),
    feedback("unknown-xyzzy", "`gpu-lol xyzzy`", "error 2 (see `gpu-lol --help`)", ["xyzzy"]),
    feedback("usage-no-such-option", "`gpu-lol up --frob`", "error 2 (no such option, see `gpu-lol up --help`)",
             ["up", "--frob"]),
    feedback("usage-bad-int", "`gpu-lol up --gpus x`", "error 2 (invalid value for '--gpus')", ["up", "--gpus", "x"]),
    feedback("usage-missing-arg", "`gpu-lol config set`", "error 2", ["config", "set"]),
    feedback("info-unknown", "`gpu-lol info nope` with nothing launched: answers without SkyPilot",
             "error 1 (no cluster or host named 'nope')", ["info", "nope"]),
    feedback("empty-repo-up", "`up --dry-run` in an empty directory", "error 2 (nothing to launch)", "empty"),
    feedback("js-repo-up", "`up --dry-run` in a repo without Python", "error 2 (nothing to launch)", "js"),
    feedback("empty-repo-analyze", "`analyze` in an empty directory", "works (warning: no Python code)", "empty"),
    feedback("gated-model-no-token", "`up --dry-run` for meta-llama/Llama-3.1-8B without HF_TOKEN",
             "works (warning names HF_TOKEN and the fix)", "gated"),
    feedback("gated-model-token", "the same with HF_TOKEN exported", "works (no gated warning)", "gated-token"),
]
