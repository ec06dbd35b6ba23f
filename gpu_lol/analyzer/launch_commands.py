"""Launch commands: how the repo says to run it.

Read from README code blocks, shell scripts, Makefiles, notebooks (``!python …``), Dockerfile
``CMD``/``ENTRYPOINT`` and docker-compose ``command:``. Each command is tokenized like a shell
would (line continuations joined, ``VAR=value`` prefixes and ``$VAR`` from earlier assignments in
the same script resolved), split into the launcher's own options and the script's options, and
classified: training, inference, interactive or other.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

from gpu_lol.analyzer import locations
from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.analyzer.values import truthy
from gpu_lol.repo_index import FileIndex, RepoFile

README_NAMES = ("readme.md", "readme.rst", "readme.txt", "readme", "readme.markdown")
# Root-level Markdown files that document no way to run the repo.
_NOT_USAGE_DOC = re.compile(r"^(changelog|changes|history|license|licence|contributing|code_of_conduct|security|"
                            r"authors|contributors|citation|notice|support|governance|maintainers|release)", re.I)
_FENCE_RE = re.compile(r"^\s*(```|~~~)")
# A command in an indented (4 spaces / tab) Markdown code block.
_INDENTED_CMD_RE = re.compile(r"^(?: {4,}|\t+)\$?\s*(?:[A-Z_]+=\S+\s+)*(?:python3?|bash|sh|torchrun|accelerate|deepspeed|"
                              r"vllm|uvicorn|streamlit|gradio|jupyter|pip3?|\./)\b")
_ASSIGN_RE = re.compile(r"^(?:export\s+|local\s+|declare\s+(?:-\w+\s+)?)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-=]([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_PY_RE = re.compile(r"^(?:.*/)?python(?:3(?:\.\d+)?)?$")
_SPLIT_RE = re.compile(r"\s(?:&&|\|\||;|\|)\s|\s*;\s*$")

# Script name words (split on _ - . and camel-case) that say what a script does.
TRAIN_WORDS = frozenset({
    "train", "training", "trainer", "finetune", "finetuning", "fine", "ft", "sft", "dpo", "orpo", "kto",
    "grpo", "ppo", "rlhf", "rl", "pretrain", "pretraining", "distill", "distillation", "lora", "qlora",
    "tune", "tuning", "fit",
})
INFER_WORDS = frozenset({
    "serve", "server", "serving", "inference", "infer", "predict", "prediction", "predictor",
    "generate", "generation", "sample", "sampling", "chat", "chatbot", "demo", "app", "api", "deploy",
    "handler", "webui", "web", "gradio", "streamlit", "run_inference", "translate",
    "transcribe", "detect", "txt2img", "img2img", "text2image", "complete", "completion", "bot",
})
EVAL_WORDS = frozenset({"eval", "evaluate", "evaluation", "benchmark", "bench", "test", "score"})

MODEL_ARG_KEYS = (
    "model_name_or_path", "base_model", "model_name", "model", "model_id", "model_path",
    "pretrained_model_name_or_path", "pretrained_model", "hf_model", "model_type_or_path",
    "base_model_name_or_path", "model_dir", "ckpt_name", "policy_model", "actor_model_name_or_path",
    "model_name_or_id", "llm", "llm_model", "pretrained", "from_pretrained", "ckpt_dir", "model_size", "model_version",
    "model_path_or_name", "weights", "cfg", "ckpt_path", "checkpoint_path", "checkpoint", "hf_ckpt_path",
    "name",
)


@dataclass
class Command:
    argv: list[str]
    evidence: Evidence
    origin: str  # readme | script | notebook | docker | makefile | compose
    env: dict[str, str] = field(default_factory=dict)
    launcher: str = "other"  # python | torchrun | accelerate | deepspeed | vllm | tgi | llamafactory
    # | axolotl | torchtune | litgpt | uvicorn | gradio | streamlit | jupyter | trl | sglang
    # | ollama | shell | other
    script: str | None = None  # python script path or -m module
    launcher_args: dict[str, str | bool] = field(default_factory=dict)
    args: dict[str, str | bool] = field(default_factory=dict)
    positionals: list[str] = field(default_factory=list)
    role: str = "other"  # training | inference | interactive | eval | setup | other
    role_reason: str = ""
    main: bool = False  # from the root README or a script it runs
    readme_rank: int | None = None  # order among the root README's commands (0 = first)
    block_signals: object | None = None  # a README ```python example's FileSignals
    section: str = ""  # the root README heading the command sits under
    in_usage: bool = False  # at or after the root README's first usage / quick-start heading

    def flag(self, *keys: str) -> bool:
        """Whether any of these options is on (`--x`, `--x True`, `x=true`, `--x 1`)."""
        return any(truthy(self.args.get(k)) for k in keys)

    def int_arg(self, *keys: str) -> int | None:
        """The first of these options that holds a whole number."""
        from gpu_lol.analyzer.values import as_int

        return next((n for n in (as_int(self.args.get(k)) for k in keys) if n is not None), None)

    @property
    def weight(self) -> float:
        if self.role == "test":
            return 0.0
        base = locations.weight(self.evidence.file)
        return base * (1.5 if self.main else 1.0)




def _launched(cmd: Command, launcher: str, tokens: list[str]) -> None:
    """``launcher-options SCRIPT script-options``: split at the script and parse both sides."""
    opts, script, script_args = _split_script(tokens)
    cmd.launcher = launcher
    cmd.launcher_args = _parse_options(opts)[0]
    cmd.script = script
    cmd.args, cmd.positionals = _parse_options(script_args)


def _norm_key(key: str) -> str:
    return key.lstrip("-").replace("-", "_").lower()


def _words(name: str) -> set[str]:
    stem = name.rsplit("/", 1)[-1]
    for suffix in (".py", ".sh", ".ipynb"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    stem = re.sub(r"([a-z])([A-Z])", r"\1_\2", stem)
    return {w for w in re.split(r"[^A-Za-z0-9]+", stem.lower()) if w}


def role_of_script(name: str) -> str | None:
    """training / inference / eval from a script or module name, whole words only; the script's
    own name first, then its directory (``pretrain/tinyllama.py``)."""
    name = name.replace("\\", "/")
    parts = [p for p in re.split(r"[/.]", name) if p and p not in ("py", "sh", "ipynb")]
    if not parts:
        return None
    for candidate in (parts[-1], *reversed(parts[:-1])):
        words = _words(candidate)
        if words & TRAIN_WORDS:
            return "training"
        if words & INFER_WORDS:
            return "inference"
        if words & EVAL_WORDS:
            return "eval"
    return None


def _parse_options(tokens: list[str]) -> tuple[dict[str, str | bool], list[str]]:
    args: dict[str, str | bool] = {}
    positionals: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("--") and len(tok) > 2:
            if "=" in tok:
                key, value = tok.split("=", 1)
                args[_norm_key(key)] = value
            elif i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
                args[_norm_key(tok)] = tokens[i + 1]
                i += 1
            else:
                args[_norm_key(tok)] = True
        elif tok.startswith("-") and len(tok) == 2 and tok[1].isalpha():
            if i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
                args[_norm_key(tok)] = tokens[i + 1]
                i += 1
            else:
                args[_norm_key(tok)] = True
        elif "=" in tok and re.match(r"^\+{0,2}[A-Za-z_][\w.\-]*=", tok):
            # Hydra/OmegaConf-style override: trainer.n_gpus_per_node=8, model.path=org/name
            key, value = tok.lstrip("+").split("=", 1)
            args[_norm_key(key)] = value
            parts = _norm_key(key).split(".")
            if len(parts) > 1 and any("model" in p for p in parts[:-1]) and parts[-1] in (
                    "path", "name", "pretrained", "partial_pretrain", "name_or_path"):
                args.setdefault("model_name_or_path", value)
            else:
                args.setdefault(parts[-1], value)
        else:
            positionals.append(tok)
        i += 1
    return args, positionals


def _split_script(tokens: list[str]) -> tuple[list[str], str | None, list[str]]:
    """Split ``launcher-opts SCRIPT script-opts`` at the first .py file or ``-m module``."""
    for i, tok in enumerate(tokens):
        if tok == "-m" and i + 1 < len(tokens):
            return tokens[:i], tokens[i + 1], tokens[i + 2:]
        if tok.endswith(".py") and not tok.startswith("-"):
            return tokens[:i], tok, tokens[i + 1:]
    return tokens, None, []


def console_scripts(index: FileIndex) -> dict[str, str]:
    """The repo's own console scripts (pyproject ``[project.scripts]``/Poetry, setup.py
    ``console_scripts``): command name -> ``module:function``."""
    scripts: dict[str, str] = {}
    py = index.get("pyproject.toml")
    if py is not None and index.text(py):
        from gpu_lol.analyzer.pyproject import tomllib

        try:
            data = tomllib.loads(index.text(py))
        except (ValueError, TypeError, RecursionError):
            data = {}
        tables = [data.get("project", {}).get("scripts", {}),
                  data.get("tool", {}).get("poetry", {}).get("scripts", {})]
        for table in tables:
            if isinstance(table, dict):
                for name, target in table.items():
                    if isinstance(target, str):
                        scripts[str(name)] = target
    setup = index.get("setup.py")
    text = index.text(setup) if setup is not None else None
    if text:
        for name, target in re.findall(r"['\"]\s*([\w.\-]+)\s*=\s*([\w.]+:[\w.]+)\s*['\"]", text):
            scripts.setdefault(name, target)
    return scripts


def interpret(argv: list[str], evidence: Evidence, origin: str, env: dict[str, str] | None = None,
              scripts: dict[str, str] | None = None) -> Command | None:
    """Turn a token list into a classified :class:`Command` (``None`` if it runs nothing we read).
    ``scripts``: the repo's own console scripts, which run its modules."""
    env = dict(env or {})
    argv = list(argv)
    while argv and _ASSIGN_RE.match(argv[0]) and not argv[0].startswith("-"):
        key, value = _ASSIGN_RE.match(argv[0]).groups()
        env[key] = value.strip("'\"")
        argv.pop(0)
    while argv and argv[0] in ("sudo", "nohup", "time", "exec", "env", "srun", "uv", "poetry", "pipenv",
                               "conda", "!", "%run", "%%bash", "%sh", "!!", "$"):
        if argv[0] in ("uv", "poetry", "pipenv") and len(argv) > 1 and argv[1] == "run":
            argv = argv[2:]
            continue
        if argv[0] == "conda" and len(argv) > 1 and argv[1] == "run":
            argv = argv[2:]
            while argv and argv[0].startswith("-"):
                argv = argv[2:] if argv[0] in ("-n", "--name", "-p") else argv[1:]
            continue
        if argv[0] == "conda":
            return None
        if argv[0] == "%run":
            argv = ["python"] + argv[1:]
            break
        argv = argv[1:]
        while argv and _ASSIGN_RE.match(argv[0]):
            key, value = _ASSIGN_RE.match(argv[0]).groups()
            env[key] = value.strip("'\"")
            argv.pop(0)
    if not argv:
        return None
    head = argv[0].lstrip("!")
    cmd = Command(argv=argv, evidence=evidence, origin=origin, env=env)
    rest = argv[1:]
    if scripts and head in scripts and head not in _KNOWN_TOOLS:
        # the repo's own console script: it runs module:function; a subcommand (`tool train …`)
        # says more about the role than the module's name
        cmd.launcher = "python"
        cmd.args, cmd.positionals = _parse_options(rest)
        sub = cmd.positionals[0] if cmd.positionals and re.match(r"^[a-z][a-z\-_]*$", cmd.positionals[0]) else None
        module = scripts[head].split(":", 1)[0]
        cmd.script = f"{module}.{head}" if sub is None or role_of_script(sub) is None else f"{sub}"
        rest_pos = cmd.positionals[1:] if sub else cmd.positionals
        if rest_pos and "model" not in cmd.args and not rest_pos[0].endswith((".yml", ".yaml", ".json")):
            cmd.args["model_dir"] = rest_pos[0]
        _classify(cmd)
        return cmd
    if _PY_RE.match(head):
        opts, script, script_args = _split_script(rest)
        if script is None:
            return None
        launcher_args, _ = _parse_options(opts)
        if script in ("torch.distributed.run", "torch.distributed.launch"):
            cmd.launcher = "torchrun"
            opts2, script, script_args = _split_script(script_args)
            cmd.launcher_args = _parse_options(opts2)[0]
            if script is None:
                return None
        elif script.startswith("vllm.entrypoints"):
            cmd.launcher = "vllm"
        elif script.startswith("sglang.launch_server"):
            cmd.launcher = "sglang"
        elif script.startswith("axolotl.cli"):
            cmd.launcher = "axolotl"
        elif script in ("accelerate.commands.launch",):
            cmd.launcher = "accelerate"
        elif script in ("streamlit",):
            cmd.launcher = "streamlit"
        elif script in ("uvicorn", "gunicorn"):
            cmd.launcher = "uvicorn"
        elif script in ("jupyter", "notebook", "jupyterlab"):
            cmd.launcher = "jupyter"
        elif script in ("pip", "venv", "ensurepip", "pytest", "unittest", "build", "twine", "black", "ruff",
                        "mypy", "flake8", "isort", "pre_commit", "http.server", "json.tool"):
            cmd.launcher = "tool"
        else:
            cmd.launcher = "python"
        cmd.script = script
        cmd.args, cmd.positionals = _parse_options(script_args)
        cmd.launcher_args.update(launcher_args)
    elif head in ("torchrun", "torch.distributed.run"):
        _launched(cmd, "torchrun", rest)
    elif head == "accelerate" and rest[:1] == ["launch"]:
        _launched(cmd, "accelerate", rest[1:])
        if cmd.script is None:  # accelerate launch of a console script
            cmd.args, cmd.positionals = _parse_options(rest[1:])
    elif head == "deepspeed":
        _launched(cmd, "deepspeed", rest)
    elif head == "vllm" and rest[:1] == ["serve"]:
        cmd.launcher = "vllm"
        cmd.args, cmd.positionals = _parse_options(rest[1:])
        if cmd.positionals:
            cmd.args.setdefault("model", cmd.positionals[0])
    elif head in ("text-generation-launcher", "text-generation-server"):
        cmd.launcher = "tgi"
        cmd.args, cmd.positionals = _parse_options(rest)
    elif head in ("llamafactory-cli", "llamafactory", "lmf"):
        cmd.launcher = "llamafactory"
        cmd.args, cmd.positionals = _parse_options(rest[1:])
        cmd.script = rest[0] if rest else None
    elif head == "axolotl":
        cmd.launcher = "axolotl"
        cmd.args, cmd.positionals = _parse_options(rest[1:])
        cmd.script = rest[0] if rest else None
    elif head == "tune":
        cmd.launcher = "torchtune"
        cmd.args, cmd.positionals = _parse_options(rest[1:])
        cmd.script = " ".join(rest[:2]) if rest else None
    elif head == "litgpt":
        cmd.launcher = "litgpt"
        cmd.args, cmd.positionals = _parse_options(rest[1:])
        cmd.script = rest[0] if rest else None
        if len(cmd.positionals) >= 1:
            cmd.args.setdefault("model", cmd.positionals[0])
    elif head == "trl" and rest:
        cmd.launcher = "trl"
        cmd.script = rest[0]
        cmd.args, cmd.positionals = _parse_options(rest[1:])
    elif head in ("uvicorn", "gunicorn", "hypercorn", "fastapi"):
        cmd.launcher = "uvicorn"
        cmd.args, cmd.positionals = _parse_options(rest)
        cmd.script = cmd.positionals[0] if cmd.positionals else None
    elif head == "gradio":
        cmd.launcher = "gradio"
        cmd.script = rest[0] if rest else None
    elif head == "streamlit" and rest[:1] == ["run"]:
        cmd.launcher = "streamlit"
        cmd.script = rest[1] if len(rest) > 1 else None
    elif head in ("jupyter", "jupyter-lab", "jupyter-notebook", "voila"):
        cmd.launcher = "jupyter"
    elif head in ("ollama",) and rest[:1] in (["run"], ["serve"]):
        cmd.launcher = "ollama"
        cmd.positionals = rest[1:]
    elif head in ("bash", "sh", "zsh", "source", ".") or (head.startswith("./") and head.endswith(".sh")) \
            or head.endswith(".sh"):
        script = head if head.endswith(".sh") else next((t for t in rest if not t.startswith("-")), None)
        if script is None or not script.endswith(".sh"):
            return None
        cmd.launcher = "shell"
        cmd.script = script
        idx = argv.index(script) if script in argv else 0
        cmd.args, cmd.positionals = _parse_options(argv[idx + 1:])
    elif head in ("mpirun", "mpiexec") and rest:
        _launched(cmd, "torchrun", rest)
        opts, script, _ = _split_script(rest)
        for i, tok in enumerate(opts[:-1]):  # -np 8 / -n 8 (single dash, several letters)
            if tok in ("-np", "-n", "--np", "-c") and opts[i + 1].isdigit():
                cmd.launcher_args["nproc_per_node"] = opts[i + 1]
        if script is None:  # mpirun -np 8 ./train_gpt2cu
            binary = next((t for t in opts if not t.startswith("-") and not t.isdigit()), None)
            if binary is None:
                return None
            cmd.script = binary
    elif head in ("lightning", "composer", "horovodrun", "ray", "sbatch", "modal", "sky"):
        _launched(cmd, "torchrun" if head in ("composer", "horovodrun") else "python", rest)
        if cmd.script is None:
            return None
    else:
        return None
    _classify(cmd)
    return cmd


def _classify(cmd: Command) -> None:
    launcher = cmd.launcher
    if cmd.script and locations.weight(cmd.script.lstrip("./")) == 0.0:
        cmd.role, cmd.role_reason = "test", f"runs {cmd.script} (a test or doc script)"
        return
    if launcher in ("vllm", "tgi", "uvicorn", "gradio", "streamlit", "sglang", "ollama"):
        cmd.role, cmd.role_reason = "inference", f"{launcher} launch"
        return
    if launcher == "jupyter":
        cmd.role, cmd.role_reason = "interactive", "jupyter launch"
        return
    if launcher in ("tool",):
        cmd.role = "setup"
        return
    if launcher in ("llamafactory", "axolotl", "torchtune", "litgpt", "trl"):
        sub = (cmd.script or "").lower()
        if any(w in sub for w in ("train", "finetune", "sft", "dpo", "grpo", "pretrain", "lora", "full",
                                   "kto", "orpo", "distill", "preprocess")):
            cmd.role, cmd.role_reason = "training", f"{launcher} {cmd.script}"
        elif "webui" in sub or sub in ("web", "board", "gui"):
            # a fine-tuning tool's web UI: people click through training there; not a launch path
            cmd.role, cmd.role_reason = "interactive", f"{launcher} {cmd.script} (the tool's web UI)"
        elif any(w in sub for w in ("chat", "serve", "api", "webchat", "generate", "infer")):
            cmd.role, cmd.role_reason = "inference", f"{launcher} {cmd.script}"
        elif "eval" in sub:
            cmd.role, cmd.role_reason = "eval", f"{launcher} {cmd.script}"
        return
    script_role = role_of_script(cmd.script or "") if cmd.script else None
    if script_role is None and launcher in ("python", "torchrun") and any(
            truthy(cmd.args.get(k)) for k in ("eval", "evaluate", "eval_only", "test_only", "eval-only")) \
            and not any(truthy(cmd.args.get(k)) for k in ("do_train", "train")):
        # DeiT/ConvNeXt/DETR-style `main.py --eval true --resume <checkpoint>`: scores a released model
        cmd.role, cmd.role_reason = "inference", f"runs {cmd.script} in evaluation mode (--eval)"
        return
    if launcher in ("torchrun", "accelerate", "deepspeed"):
        if script_role in ("inference", "eval"):
            cmd.role, cmd.role_reason = script_role, f"{launcher} runs {cmd.script}"
        else:
            cmd.role, cmd.role_reason = "training", f"{launcher} launch of {cmd.script or 'a script'}"
        return
    if script_role:
        cmd.role, cmd.role_reason = script_role, f"runs {cmd.script}"
        return
    if launcher == "shell":
        cmd.role = "other"  # the script's own commands decide


def tokenize(line: str) -> list[str] | None:
    try:
        return shlex.split(line, comments=True, posix=True)
    except ValueError:
        return line.split() or None


def _substitute(text: str, variables: dict[str, str]) -> str:
    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(3)
        default = m.group(2)
        if name in variables:
            return variables[name]
        if default is not None:
            return default
        return m.group(0)

    return _VAR_RE.sub(repl, text)


def _logical_lines(lines: list[str]) -> list[tuple[int, str]]:
    """Join backslash continuations; returns (first line number, joined text)."""
    out: list[tuple[int, str]] = []
    buf = ""
    start = 0
    for i, raw in enumerate(lines, 1):
        line = raw.rstrip()
        if not buf:
            start = i
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        out.append((start, buf))
        buf = ""
    if buf:
        out.append((start, buf))
    return out


def commands_from_shell_lines(lines: list[str], file: str, origin: str,
                              variables: dict[str, str] | None = None,
                              scripts: dict[str, str] | None = None) -> list[Command]:
    """Commands in shell text (a script, a README code block, a Makefile recipe)."""
    variables = dict(variables or {})
    found: list[Command] = []
    hosted_key: str | None = None  # a hosted-model API key this block sets (README quick starts)
    for lineno, text in _logical_lines(lines):
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("$ "):
            stripped = stripped[2:]
        elif stripped.startswith(">>> ") or stripped.startswith("In ["):
            continue
        key = _HOSTED_KEY_RE.match(stripped)
        if key:
            hosted_key = key.group(1)
        assign = _ASSIGN_RE.match(stripped)
        if assign and " " not in assign.group(2).strip().strip("'\"") and not re.search(r"\s(python|torchrun)", stripped):
            variables[assign.group(1)] = _substitute(assign.group(2).strip().strip("'\""), variables)
            continue
        stripped = _substitute(stripped, variables)
        for part in _SPLIT_RE.split(stripped):
            part = part.strip().strip("`")
            if not part:
                continue
            tokens = tokenize(part)
            if not tokens:
                continue
            command = interpret(tokens, Evidence(file, lineno, part), origin, scripts=scripts)
            if command is not None:
                if hosted_key and origin == "readme" and command.launcher == "python" \
                        and command.role not in ("training", "test", "setup") and _no_local_model(command):
                    # `export OPENAI_API_KEY=…` then `tool --outputs x.json`: the one thing the quick start
                    # asks for is a hosted model's key, and the command names no model to run here
                    command.role = "hosted"
                    command.role_reason = f"the README sets {hosted_key} for it (a hosted model API) and it names no local model"
                found.append(command)
    return found


# A hosted model provider's API key (HF_TOKEN is not one: it downloads gated weights).
_HOSTED_KEY_RE = re.compile(r"^(?:export\s+|set\s+|\$env:)?((?:OPENAI|AZURE_OPENAI|ANTHROPIC|GROQ|TOGETHER|MISTRAL|COHERE|"
                            r"GEMINI|GOOGLE|REPLICATE|FIREWORKS|DEEPSEEK|OPENROUTER|PERPLEXITY|XAI)_API_(?:KEY|TOKEN))\s*=")


_PY_HOSTED_KEY_RE = re.compile(r"os\.environ(?:\[\s*|\.setdefault\(\s*)[\"']((?:OPENAI|AZURE_OPENAI|ANTHROPIC|GROQ|"
                               r"TOGETHER|MISTRAL|COHERE|GEMINI|GOOGLE|REPLICATE|FIREWORKS|DEEPSEEK|OPENROUTER|"
                               r"PERPLEXITY|XAI)_API_(?:KEY|TOKEN))[\"']")


def _no_local_model(cmd: Command) -> bool:
    from gpu_lol.analyzer.python_signals import is_hosted_model_id

    found = model_arg(cmd)
    return found is None or is_hosted_model_id(found[1])


def readme_code_lines(text: str, python: bool | None = None) -> list[tuple[int, str]]:
    """(line number, text) for every line inside fenced code blocks of a Markdown file;
    ``python=True`` keeps only ```python blocks, ``False`` drops them, ``None`` keeps all."""
    out: list[tuple[int, str]] = []
    in_block = False
    fence = ""
    is_python = False
    prev_blank = True
    for i, line in enumerate(text.splitlines(), 1):
        if not in_block and python is not True and _INDENTED_CMD_RE.match(line) and (prev_blank or (out and out[-1][0] == i - 1)):
            out.append((i, line.strip()))  # an indented Markdown code block holding a command
            prev_blank = False
            continue
        prev_blank = not line.strip()
        m = _FENCE_RE.match(line)
        if m:
            if not in_block:
                in_block, fence = True, m.group(1)
                lang = line.strip()[3:].strip().lower()
                is_python = lang in ("python", "py", "python3", "pycon")
            elif m.group(1) == fence:
                in_block = False
            continue
        if in_block and (python is None or python == is_python):
            out.append((i, line))
    return out


_HEADING_RE = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
# README sections whose commands are alternatives to the quick start (not the main path)
USAGE_SECTION_RE = re.compile(
    r"\busage\b|quick\s*-?\s*start|getting\s+started|get\s+started|how\s+to\s+(?:use|run)|使用|快速开始", re.I)
ALT_SECTION_RE = re.compile(
    r"reproduc|replicat|benchmark|evaluat|ablation|experiment|multi-?node|cluster|slurm|pre-?train(?:ing)?\s+from|"
    r"distill|scaling|复现|评测", re.I)


def _headings(text: str) -> list[tuple[int, str]]:
    out, fence = [], False
    for i, line in enumerate(text.splitlines(), 1):
        if _FENCE_RE.match(line):
            fence = not fence
            continue
        m = None if fence else _HEADING_RE.match(line)
        if m:
            out.append((i, m.group(2)))
    return out


def _section_at(headings: list[tuple[int, str]], line: int) -> str:
    current = ""
    for lineno, title in headings:
        if lineno > line:
            break
        current = title
    return current


def main_command(commands: list[Command]) -> Command | None:
    """The command a user following the root README runs first: its first training/inference command
    outside reproduction/benchmark/evaluation sections (those are alternatives), else its first."""
    ranked = sorted((c for c in commands if c.readme_rank is not None and c.readme_rank < 1000 and c.weight > 0
                     and c.role in ("training", "inference", "hosted")), key=lambda c: c.readme_rank)
    if ranked and ranked[0].readme_rank < 0:
        return ranked[0]  # a path the user chose (`--path N`) is the main one
    plain = [c for c in ranked if not ALT_SECTION_RE.search(c.section)]
    # where the README has a Usage / Quick start / Getting started section, the path starts there: a
    # one-line hub snippet under the model-zoo table above it is an aside
    usage = [c for c in plain if c.in_usage]
    return (usage or plain or ranked or [None])[0]


def _readme_variables(index: FileIndex) -> dict[str, str]:
    """Plain `VAR=value` / `export VAR=value` lines in the root README's shell blocks."""
    out: dict[str, str] = {}
    for f in index.files:
        if f.depth != 0 or f.name.lower() not in README_NAMES:
            continue
        for _, line in readme_code_lines(index.text(f) or "", python=False):
            m = _ASSIGN_RE.match(line.strip().removeprefix("$ "))
            if m and " " not in m.group(2).strip().strip("'\"") and "$(" not in m.group(2):
                out.setdefault(m.group(1), m.group(2).strip().strip("'\""))
    return out


def _python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, code) of each ```python block."""
    blocks: list[tuple[int, str]] = []
    current: list[str] = []
    start = prev = 0
    for lineno, line in readme_code_lines(text, python=True):
        if current and lineno != prev + 1:
            blocks.append((start, "\n".join(current)))
            current = []
        if not current:
            start = lineno
        current.append(line[4:] if line.startswith((">>> ", "... ")) else line)
        prev = lineno
    if current:
        blocks.append((start, "\n".join(current)))
    return blocks


def _readme_python_commands(rel: str, text: str) -> list[Command]:
    """A README's ```python usage blocks, as commands classified by what the code does."""
    from gpu_lol.analyzer.python_signals import analyze_source

    out = []
    for start, code in _python_blocks(text):
        sig = analyze_source(rel, code)
        if sig is None:
            continue
        first_line = next((line.strip() for line in code.splitlines() if line.strip() and not line.startswith("#")), "")
        ev = Evidence(rel, start, f"```python: {first_line}")
        cmd = Command(argv=["python", "-c", "<readme block>"], evidence=ev, origin="readme-python", launcher="python",
                      block_signals=sig)
        if sig.hosted_only:
            cmd.role, cmd.role_reason = "hosted", "README Python example calls a hosted model API"
            out.append(cmd)
            continue
        key = _PY_HOSTED_KEY_RE.search(code)
        if key and not sig.local_model_use and not sig.serving:
            # `os.environ["OPENAI_API_KEY"] = …` then a framework call: the example's model is the hosted
            # one whose key it sets, and nothing in it loads or trains a model here
            cmd.role, cmd.role_reason = "hosted", f"README Python example sets {key.group(1)} and runs no local model"
            out.append(cmd)
            continue
        if sig.training_strength >= 2 and sig.training_strength >= sig.inference_strength:
            cmd.role, cmd.role_reason = "training", "README Python example trains"
        elif sig.inference_strength > 0 or (sig.loads_model and not sig.training_strength) or sig.serving:
            cmd.role, cmd.role_reason = "inference", "README Python example loads and runs a model"
        else:
            continue
        for name, mev, _strength in sig.model_ids:
            cmd.args.setdefault("model", name)
        out.append(cmd)
    return out


def _block_commands(numbered: list[tuple[int, str]], file: str, origin: str,
                    scripts: dict[str, str] | None = None) -> list[Command]:
    """Commands from numbered lines, keeping each line's own number."""
    found: list[Command] = []
    group: list[tuple[int, str]] = []

    def flush():
        if not group:
            return
        first = group[0][0]
        cmds = commands_from_shell_lines([t for _, t in group], file, origin, scripts=scripts)
        for c in cmds:
            c.evidence = Evidence(file, first + c.evidence.line - 1, c.evidence.text)
        found.extend(cmds)
        group.clear()

    prev = None
    for lineno, text in numbered:
        if prev is not None and lineno != prev + 1:
            flush()
        group.append((lineno, text))
        prev = lineno
    flush()
    return found


def _notebook_shell_lines(index: FileIndex, f: RepoFile) -> list[tuple[int, str]]:
    """(line in the .ipynb, command) for `!cmd`, `%run` and `%%bash` lines of code cells."""
    from gpu_lol.analyzer.notebooks import code_cells

    out: list[tuple[int, str]] = []
    for offset, code in code_cells(index, f):
        for i, line in enumerate(code.splitlines()):
            s = line.strip()
            if s.startswith("!") or s.startswith("%run") or s.startswith("%%bash"):
                out.append((offset + i + 1, s.lstrip("!")))
    return out


def _dockerfile_commands(index: FileIndex, f: RepoFile) -> list[Command]:
    found = []
    for lineno, text in _logical_lines(index.lines(f)):
        s = text.strip()
        m = re.match(r"^(CMD|ENTRYPOINT)\s+(.*)$", s, re.I)
        if not m:
            continue
        body = m.group(2).strip()
        tokens: list[str] | None
        if body.startswith("["):
            try:
                tokens = [str(t) for t in json.loads(body)]
            except (ValueError, RecursionError):
                tokens = tokenize(body)
        else:
            tokens = tokenize(body)
        if tokens and tokens[0] in ("/bin/sh", "sh", "/bin/bash", "bash") and "-c" in tokens:
            inner = tokens[tokens.index("-c") + 1:]
            found.extend(commands_from_shell_lines([" ".join(inner)], f.rel, "docker"))
            continue
        if tokens:
            c = interpret(tokens, Evidence(f.rel, lineno, s), "docker")
            if c:
                found.append(c)
    return found


def _compose_commands(index: FileIndex, f: RepoFile) -> list[Command]:
    import yaml

    text = index.text(f)
    if not text:
        return []
    from gpu_lol.safe_yaml import YamlLimitError, load as safe_load

    try:
        data = safe_load(text)  # no aliases, bounded nodes: a compose-file alias bomb costs nothing
    except (yaml.YAMLError, YamlLimitError):
        return []
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        return []
    lines = text.splitlines()
    found = []
    for name, svc in services.items():
        if not isinstance(svc, dict):
            continue
        image = str(svc.get("image") or "")
        command = svc.get("command")
        if isinstance(command, str):
            tokens = tokenize(command) or []
        elif isinstance(command, list):
            tokens = [str(t) for t in command]
        else:
            tokens = []
        lineno = next((i for i, line in enumerate(lines, 1) if "command" in line), None)
        ev = Evidence(f.rel, lineno, f"{name}: {image} {' '.join(tokens)}".strip())
        argv = tokens
        if "vllm" in image and tokens[:1] != ["vllm"]:
            argv = ["vllm", "serve"] + tokens
        elif "text-generation-inference" in image:
            argv = ["text-generation-launcher"] + tokens
        if argv:
            c = interpret(argv, ev, "compose")
            if c:
                gpus = _compose_gpu_count(svc)
                if gpus:
                    c.launcher_args["compose_gpus"] = str(gpus)
                found.append(c)
    return found


def _compose_gpu_count(svc: dict) -> int | None:
    try:
        devices = svc["deploy"]["resources"]["reservations"]["devices"]
    except (KeyError, TypeError):
        return None
    for dev in devices or []:
        if isinstance(dev, dict) and "gpu" in str(dev.get("capabilities", "")):
            count = dev.get("count")
            if isinstance(count, int):
                return count
            if isinstance(dev.get("device_ids"), list):
                return len(dev["device_ids"])
    return None


def collect(index: FileIndex) -> list[Command]:
    """Every launch command in the repo, README ones first (they are the documented path)."""
    commands: list[Command] = []
    readme_scripts: set[str] = set()
    scripts = console_scripts(index)
    readmes = [f for f in index.files if f.name.lower() in README_NAMES
               or (f.depth == 0 and f.suffix == ".md" and not _NOT_USAGE_DOC.match(f.name.lower()))]
    for f in readmes:
        text = index.text(f)
        if not text:
            continue
        cmds = _block_commands(readme_code_lines(text, python=False), f.rel, "readme", scripts)
        if f.depth == 0:
            cmds = sorted(cmds + _readme_python_commands(f.rel, text), key=lambda c: c.evidence.line or 0)
            headings = _headings(text)
            usage_line = next((n for n, title in headings if USAGE_SECTION_RE.search(title)), None)
            for rank, c in enumerate(cmds):
                c.section = _section_at(headings, c.evidence.line or 0)
                c.in_usage = usage_line is not None and (c.evidence.line or 0) >= usage_line
                c.main = True
                c.readme_rank = rank if f.name.lower() in README_NAMES else rank + 1000
                if c.script:
                    readme_scripts.add(c.script.lstrip("./"))
        commands.extend(cmds)
    readme_vars = _readme_variables(index)
    for f in index.files:
        if f.suffix == ".sh":
            is_main = f.rel in readme_scripts or f.name in readme_scripts
            # `export N_GPUS=2` in the README before `bash scripts/train.sh` reaches the script
            cmds = commands_from_shell_lines(index.lines(f), f.rel, "script",
                                             variables=readme_vars if is_main else None, scripts=scripts)
            for c in cmds:
                c.main = c.main or is_main
            commands.extend(cmds)
        elif f.name in ("Makefile", "makefile", "justfile"):
            recipe = [line if line.startswith("\t") else "" for line in index.lines(f)]
            commands.extend(commands_from_shell_lines([r.strip().lstrip("@-") for r in recipe], f.rel, "makefile"))
        elif f.name == "Procfile":
            lines = [line.split(":", 1)[1] if ":" in line else "" for line in index.lines(f)]
            commands.extend(commands_from_shell_lines(lines, f.rel, "script"))
        elif f.suffix == ".ipynb":
            for lineno, line in _notebook_shell_lines(index, f):
                for c in commands_from_shell_lines([line], f.rel, "notebook"):
                    c.evidence = Evidence(f.rel, lineno, c.evidence.text)
                    commands.append(c)
        elif f.name.lower().startswith("dockerfile") or f.suffix == ".dockerfile":
            commands.extend(_dockerfile_commands(index, f))
        elif f.name.lower() in ("docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml"):
            commands.extend(_compose_commands(index, f))
    return commands


# Tools whose command shapes interpret() knows, even when the repo is that tool itself.
_KNOWN_TOOLS = frozenset({"vllm", "text-generation-launcher", "llamafactory-cli", "llamafactory", "lmf", "axolotl",
                          "tune", "litgpt", "trl", "torchrun", "accelerate", "deepspeed", "uvicorn", "gradio",
                          "streamlit", "jupyter", "ollama"})
# Bounded repeats: an unbounded ``[^)\s]+`` backtracks quadratically on a README of "[x](" * 50_000.
_LINK_RE = re.compile(r"\]\(([^)\s]{1,500}\.ipynb)\)|href=[\"']([^\"']{1,500}\.ipynb)[\"']", re.I)


def linked_notebooks(index: FileIndex) -> list[str]:
    """Notebooks of this repo that the root README links to, in order (a notebook repo's main path)."""
    out: list[str] = []
    for f in index.files:
        if f.depth != 0 or f.name.lower() not in README_NAMES:
            continue
        for m in _LINK_RE.finditer(index.text(f) or ""):
            target = (m.group(1) or m.group(2)).split("#")[0]
            for marker in ("/blob/", "/tree/"):
                if marker in target:  # github.com/<o>/<r>/blob/<ref>/<path> or colab links to it
                    target = target.split(marker, 1)[1].split("/", 1)[-1]
            target = target.lstrip("./")
            from urllib.parse import unquote

            target = unquote(target)
            if index.has(target) and target not in out:
                out.append(target)
    return out


def model_arg(cmd: Command) -> tuple[str, str] | None:
    """(key, value) of the model argument of a command, if it names one."""
    packed = cmd.args.get("model_args")
    if isinstance(packed, str):
        # evaluation harnesses take the model as `--model hf --model_args pretrained=ID,dtype=…`:
        # the backend name in --model is not the model, the packed `pretrained=` is
        for part in packed.split(","):
            key, _, value = part.partition("=")
            if key.strip() in ("pretrained", "model", "model_name", "model_path", "path") and value.strip("'\" /"):
                return "model_args", value.strip().strip("'\"").rstrip("/")
    for key in MODEL_ARG_KEYS:
        value = cmd.args.get(key)
        if isinstance(value, str) and value.strip("/"):
            return key, value.rstrip("/")
    if cmd.launcher == "tgi":
        value = cmd.args.get("model_id")
        if isinstance(value, str):
            return "model_id", value
    if cmd.launcher == "ollama" and cmd.positionals:
        return "model", cmd.positionals[0]
    return None


def config_refs(cmd: Command) -> list[str]:
    """Config files a command points at (.yaml/.yml/.json arguments)."""
    refs = []
    for value in list(cmd.args.values()) + list(cmd.launcher_args.values()) + cmd.positionals:
        if isinstance(value, str) and re.search(r"\.(ya?ml|json)$", value) and "$" not in value:
            refs.append(value.lstrip("./") if value.startswith("./") else value)
    return refs
