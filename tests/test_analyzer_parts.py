"""Unit tests of the analyzer's detectors: the tree walk, launch commands, Python signals,
configs, README statements, image choice and setup commands."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gpu_lol.analyzer import image, launch_commands, python_signals, readme_facts, setup_commands
from gpu_lol.analyzer.configs import read_config
from gpu_lol.analyzer.evidence import Evidence
from gpu_lol.repo_index import FileIndex


# ---- the tree walk -------------------------------------------------------------------------

def write(root: Path, rel: str, data: str | bytes = "x\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return path


def test_walk_skips_vcs_venvs_node_modules_caches_and_gitignored(tmp_path):
    write(tmp_path, "train.py")
    write(tmp_path, ".git/config")
    write(tmp_path, "env/pyvenv.cfg", "home = /usr\n")  # a venv under any name
    write(tmp_path, "env/lib/python3.11/site-packages/torch/__init__.py")
    write(tmp_path, "node_modules/x/index.js")
    write(tmp_path, "pkg/__pycache__/a.pyc", b"\x00\x01")
    write(tmp_path, "data/big.csv")
    write(tmp_path, "sub/.gitignore", "*.log\n!keep.log\n")
    write(tmp_path, "sub/run.log")
    write(tmp_path, "sub/keep.log")
    write(tmp_path, ".gitignore", "data/\n")
    index = FileIndex.build(tmp_path)
    rels = {f.rel for f in index.files}
    assert rels == {"train.py", ".gitignore", "sub/.gitignore", "sub/keep.log"}
    assert index.skipped["virtualenv"] == 1 and index.skipped["gitignored"] == 2


def test_walk_never_follows_links_out_of_the_repo_or_around_a_loop(tmp_path):
    outside = tmp_path / "outside"
    write(outside, "secret.py", "import torch\n")
    repo = tmp_path / "repo"
    write(repo, "a/train.py")
    os.symlink(outside, repo / "escape")
    os.symlink(repo / "a", repo / "a" / "loop")
    os.symlink(outside / "secret.py", repo / "linked.py")
    os.symlink(repo / "nowhere", repo / "dangling")
    index = FileIndex.build(repo)
    assert {f.rel for f in index.files} == {"a/train.py"}
    assert index.skipped["link-outside"] == 2 and index.skipped["link-loop"] == 1


def test_text_reading_survives_binary_utf16_latin1_and_huge_files(tmp_path):
    write(tmp_path, "ok.py", "print('é')\n")
    write(tmp_path, "utf16.txt", "torch\n".encode("utf-16"))
    write(tmp_path, "bin.py", b"\x7fELF\x00\x00")
    write(tmp_path, "latin1.txt", "caf\xe9\n".encode("latin-1"))
    write(tmp_path, "bom.txt", b"\xef\xbb\xbftorch\n")
    write(tmp_path, "huge.py", "x = 1\n" * 300_000)
    index = FileIndex.build(tmp_path)
    assert index.text("ok.py") == "print('é')\n"
    assert index.text("bom.txt") == "torch\n"
    for rel in ("utf16.txt", "bin.py", "latin1.txt", "huge.py"):
        assert index.text(rel) is None
    assert index.text("missing.py") is None


def test_walk_of_an_unreadable_directory_does_not_crash(tmp_path):
    write(tmp_path, "locked/a.py")
    write(tmp_path, "b.py")
    (tmp_path / "locked").chmod(0)
    try:
        index = FileIndex.build(tmp_path)
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert "b.py" in {f.rel for f in index.files}


# ---- launch commands -------------------------------------------------------------------------

def cmds(text: str, file: str = "run.sh"):
    return launch_commands.commands_from_shell_lines(text.splitlines(), file, "script")


def test_torchrun_accelerate_deepspeed_and_vllm_are_split_and_classified():
    found = cmds("""
MODEL=meta-llama/Llama-2-7b-hf
torchrun --nproc_per_node=4 train.py \\
    --model_name_or_path $MODEL --per_device_train_batch_size 2
accelerate launch --config_file configs/zero3.yaml scripts/run_sft.py recipes/sft.yaml
deepspeed --include localhost:0,1 finetune.py --deepspeed ds.json
vllm serve Qwen/Qwen2.5-7B-Instruct --tensor-parallel-size 2 --port 9000
python -m torch.distributed.run --nproc-per-node 2 pretrain/model.py
mpirun -np 8 ./train_gpt2cu
""")
    by_launcher = {c.launcher + ":" + str(c.evidence.line): c for c in found}
    t = by_launcher["torchrun:3"]
    assert t.script == "train.py" and t.launcher_args == {"nproc_per_node": "4"}
    assert t.args["model_name_or_path"] == "meta-llama/Llama-2-7b-hf"  # $MODEL resolved
    assert t.role == "training"
    a = by_launcher["accelerate:5"]
    assert launch_commands.config_refs(a) == ["configs/zero3.yaml", "recipes/sft.yaml"]
    d = by_launcher["deepspeed:6"]
    assert d.launcher_args["include"] == "localhost:0,1" and d.args["deepspeed"] == "ds.json"
    v = by_launcher["vllm:7"]
    assert v.role == "inference" and v.args["model"] == "Qwen/Qwen2.5-7B-Instruct"
    assert by_launcher["torchrun:8"].role == "training"  # pretrain/ directory names the role
    assert by_launcher["torchrun:9"].launcher_args["nproc_per_node"] == "8"  # mpirun -np


def test_roles_are_whole_words_not_substrings():
    role = launch_commands.role_of_script
    assert role("train.py") == "training" and role("finetune_lora.py") == "training"
    assert role("serve.py") == "inference" and role("example_chat_completion.py") == "inference"
    assert role("capital.py") is None and role("endpoints.py") is None and role("restrain.py") is None
    assert role("trainer_utils_backup.py") == "training"
    assert role("tests/test_train.py") == "training"  # the name; the location is judged elsewhere


def test_commands_running_test_scripts_carry_no_weight():
    (cmd,) = cmds("torchrun --nproc_per_node=8 tests/test_dist.py")
    assert cmd.role == "test" and cmd.weight == 0


def test_hydra_overrides_and_env_prefixes():
    (cmd,) = cmds("CUDA_VISIBLE_DEVICES=0 python3 -m verl.trainer.main_ppo actor_rollout_ref.model.path=Qwen/Qwen2.5-3B "
                  "trainer.n_gpus_per_node=2")
    assert cmd.env == {"CUDA_VISIBLE_DEVICES": "0"}
    assert cmd.args["model_name_or_path"] == "Qwen/Qwen2.5-3B" and cmd.args["n_gpus_per_node"] == "2"


def test_readme_blocks_keep_line_numbers_and_python_blocks_are_usage(tmp_path):
    readme = ("# demo\n\nInstall:\n\n```bash\npip install -r requirements.txt\npython serve.py --port 7000\n```\n\n"
              "```python\nfrom vllm import LLM\nllm = LLM(model='Qwen/Qwen2.5-7B-Instruct')\n"
              "print(llm.generate(['hi']))\n```\n")
    write(tmp_path, "README.md", readme)
    write(tmp_path, "serve.py", "import gradio\n")
    found = launch_commands.collect(FileIndex.build(tmp_path))
    serve = next(c for c in found if c.script == "serve.py")
    assert serve.evidence.line == 7 and serve.main and serve.readme_rank == 0
    block = next(c for c in found if c.origin == "readme-python")
    assert block.role == "inference" and block.args["model"] == "Qwen/Qwen2.5-7B-Instruct"
    assert block.evidence.line == 11


def test_console_scripts_of_the_repo_are_read_with_their_subcommand(tmp_path):
    write(tmp_path, "pyproject.toml", '[project]\nname = "tool"\n[project.scripts]\nmytool = "tool.cli:main"\n'
                                      'mychat = "tool.chat:main"\n')
    write(tmp_path, "README.md", "```bash\nmytool train cfg.yml\nmychat $12B_DIR --instruct\n```\n")
    found = launch_commands.collect(FileIndex.build(tmp_path))
    assert [c.role for c in found] == ["training", "inference"]
    assert found[1].args["model_dir"] == "$12B_DIR"


def test_compose_vllm_service_is_a_vllm_launch(tmp_path):
    write(tmp_path, "docker-compose.yml", """
services:
  llm:
    image: vllm/vllm-openai:latest
    command: --model mistralai/Mistral-7B-Instruct-v0.3 --tensor-parallel-size 2
    deploy:
      resources:
        reservations:
          devices:
            - driver: nvidia
              count: 2
              capabilities: [gpu]
""")
    (cmd,) = launch_commands.collect(FileIndex.build(tmp_path))
    assert cmd.launcher == "vllm" and cmd.args["model"] == "mistralai/Mistral-7B-Instruct-v0.3"
    assert cmd.launcher_args["compose_gpus"] == "2"


def test_readme_linked_notebooks_resolve_github_and_colab_links(tmp_path):
    write(tmp_path, "nb/Fine tune (8B).ipynb", "{}")
    write(tmp_path, "README.md", "[Open](https://colab.research.google.com/github/o/r/blob/main/nb/Fine%20tune%20(8B).ipynb) "
                                 "and [other](missing.ipynb)\n")
    assert launch_commands.linked_notebooks(FileIndex.build(tmp_path)) == []  # ')' inside the link target
    write(tmp_path, "README.md", "[Open](https://github.com/o/r/blob/main/nb/Fine%20tune%20(8B).ipynb)\n"
                                 "<a href=\"nb/Fine tune (8B).ipynb\">x</a>\n")
    assert launch_commands.linked_notebooks(FileIndex.build(tmp_path)) == ["nb/Fine tune (8B).ipynb"]


# ---- Python signals ----------------------------------------------------------------------------

def test_python_signals_read_models_training_quantization_and_shapes():
    src = '''
import torch, argparse
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, Trainer
from peft import LoraConfig, get_peft_model
EPOCHS = 100
HASH = "a3f9c2d7b1e4f6a8c0d2e4f6a8b0c2d4e6f8a0b2"
MODEL_NAME = "meta-llama/Llama-2-7b-hf"
tok = AutoTokenizer.from_pretrained("bert-base-uncased")
p = argparse.ArgumentParser()
p.add_argument("--batch_size", type=int, default=128)
p.add_argument("--micro_batch_size", type=int, default=4)
p.add_argument("--max_seq_length", type=int, default=2048)
bnb = BitsAndBytesConfig(load_in_4bit=args.bits == 4, bnb_4bit_quant_type="nf4")
m = AutoModelForCausalLM.from_pretrained(MODEL_NAME, quantization_config=bnb, device_map="auto")
m = get_peft_model(m, LoraConfig(r=16))
m.gradient_checkpointing_enable()
trainer = Trainer(model=m)
print "python 2 line"
if __name__ == "__main__":
    trainer.train()
'''
    sig = python_signals.analyze_source("train.py", src)
    assert sig.is_entry and sig.training_strength >= 4
    names = [name for name, _, _ in sig.model_ids]
    assert set(names) == {"meta-llama/Llama-2-7b-hf"}  # not the tokenizer, not the hash, not EPOCHS
    assert sig.quant4 and sig.peft and sig.grad_ckpt and sig.device_map
    assert sig.batch[0][0] == 4  # the per-device batch first
    assert sig.seq[0][0] == 2048
    assert all(ev.line for _, ev, _ in sig.model_ids)


def test_notebook_cells_parse_one_by_one_and_cite_notebook_lines(tmp_path):
    import json

    nb = {"cells": [
        {"cell_type": "code", "source": "!pip install -q torch \\\n    transformers\n"},
        {"cell_type": "code", "source": "def broken(:\n"},
        {"cell_type": "markdown", "source": "from_pretrained('x/y-70b')"},
        {"cell_type": "code", "source": ["from transformers import pipeline\n",
                                         "pipe = pipeline('text-generation', model='Qwen/Qwen2.5-1.5B')\n"]},
    ]}
    text = json.dumps(nb, indent=1)
    write(tmp_path, "demo.ipynb", text)
    (sig,) = python_signals.collect(FileIndex.build(tmp_path))
    assert [name for name, _, _ in sig.model_ids] == ["Qwen/Qwen2.5-1.5B"]
    line = sig.model_ids[0][1].line
    assert "Qwen/Qwen2.5-1.5B" in text.splitlines()[line - 1]  # the .ipynb's own line


def test_model_id_shapes():
    ok = python_signals.looks_like_model_id
    assert ok("meta-llama/Llama-3.1-8B") and ok("gpt2") and ok("yolov8n")
    for bad in ("./ckpt/model", "/abs/path", "http://x/y", "data/train.json", "a/b/c", "weights.safetensors",
                "has space", "$MODEL", "100", ""):
        assert not ok(bad), bad


# ---- configs and README statements -------------------------------------------------------------

def test_recipe_and_deepspeed_configs():
    facts = read_config("examples/qlora.yml", "base_model: NousResearch/Llama-2-7b-hf\nadapter: lora\n"
                        "load_in_4bit: true\nsequence_len: 4096\nmicro_batch_size: 2\nlearning_rate: 2e-4\n"
                        "num_epochs: 3\nuse_liger_kernel: true\n")
    assert facts.kind == "recipe" and facts.adapter[0] == "qlora"
    assert facts.model_ids[0][0] == "NousResearch/Llama-2-7b-hf" and facts.model_ids[0][1].line == 1
    assert facts.seq[0][0] == 4096 and facts.batch[0][0] == 2 and facts.fused_loss
    ds = read_config("ds.json", '{"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu"}},'
                                ' "train_micro_batch_size_per_gpu": "auto"}')
    assert ds.kind == "deepspeed" and ds.zero_stage[0] == 3 and ds.offload is not None
    assert read_config("bad.yaml", "a: [\n") is None
    assert read_config("x.yaml", "colors: [red]\n") is None


def test_readme_statements(tmp_path):
    write(tmp_path, "README.md", "\n".join([
        "It runs on a GPU with at least 10GB VRAM.",
        "You need 32GB RAM and 40GB free disk space.",
        "Naively, fine-tuning requires about 112 GB of VRAM.",
        "We finetune a 65B model on a single 48GB GPU.",
        "Reproduced on a single 8XA100 40GB node.",
        "```bash", "echo at least 99GB VRAM", "```",
    ]))
    write(tmp_path, "recipes/x/README.md", "You will require 8 GPUs (80GB of VRAM) to train.\n")
    facts = readme_facts.read(FileIndex.build(tmp_path))
    assert [v for v, _ in facts.vram_needs] == [10.0]
    assert facts.vram_floor()[1].line == 1
    assert facts.hardware_for(8)[0] == 40.0  # the root README's statement comes first
    assert [(n, gb) for n, gb, _ in facts.hardware] == [(8, 40.0), (8, 80.0)]
    assert facts.hardware_for(4) is None


# ---- image and setup -------------------------------------------------------------------------

class Req:
    def __init__(self, text: str):
        self.text = text
        self.evidence = Evidence("requirements.txt", 1, text)


@pytest.mark.parametrize("pins,expected", [
    (["torch==2.8.0"], "torch280"), (["torch>=2.4,<2.6"], "torch251"), (["torchvision==0.20.1"], "torch25"),
    ([], "2.6.0-cuda12.4"), (["torch==1.13.1"], "1.13.1-cuda11.6"), (["torch==1.11.0"], "1.11.0-cuda11.3"),
])
def test_image_matches_the_torch_pin(pins, expected):
    choice = image.choose("training", [Req(p) for p in pins], [], [], {"torch"})
    assert expected in choice.image
    assert choice.python_version == image.python_of(choice.image)  # the Python the image really has
    assert any("needs NVIDIA driver" in r for r in choice.reasons)  # the plan says which driver


def test_no_pin_prefers_a_cuda_12_4_image_and_a_pin_that_needs_newer_gets_it():
    assert "cuda12.4" in image.choose("training", [], [], [], {"torch"}).image
    newer = image.choose("training", [Req("torch>=2.7")], [], [], {"torch"})
    assert "cu128" in newer.image and any("driver 570+" in r for r in newer.reasons)
    assert image.choose("training", [Req("torch==2.99")], [], [], {"torch"}).provides == {}  # installed on top


def test_the_repos_python_picks_among_images_with_its_torch():
    ev = Evidence("environment.yml", 3, "python=3.8.5")
    sd = image.choose("training", [Req("torch==1.11.0")], [], [("3.8", ev)], {"torch"})
    assert sd.python_version == "3.8" and "1.11.0" in sd.image
    ev = Evidence("setup.py", 3, "python_requires")
    py310 = image.choose("training", [Req("torch>=2.4,<2.6")], [], [(">=3.8,<3.11", ev)], {"torch"})
    assert py310.python_version == "3.10" and py310.image.startswith("runpod/pytorch:0.7.0")
    # a wish no image with that torch has: the image's own Python is reported, with a warning
    odd = image.choose("training", [Req("torch==2.9.1")], [], [("3.9", Evidence("x", 1, "3.9"))], {"torch"})
    assert odd.python_version == "3.12" and odd.warnings


def test_image_python_table():
    for row in image._table()["pytorch"]:
        assert image.python_of(row["image"]) == row["python"]
        assert image.provides_of(row["image"])["torch"] == row["torch"]
        assert row["driver"] == image._table()["cuda_driver"][row["cuda"]]
    assert image.python_of("nvidia/cuda:11.8.0-devel-ubuntu20.04") == "3.8"
    assert image.python_of("nvidia/cuda:12.4.1-runtime-ubuntu22.04") == "3.10"
    assert image.python_of("python:3.11-slim") == "3.11"
    assert image.python_of("something/else") is None
    rows = image.images_for_python(["3.11"], [">=2.4"])
    assert rows and all(r["python"] == "3.11" for r in rows)


def test_dockerfile_image_gets_the_python_and_pip_bootstrap_its_dockerfile_uses():
    ev = Evidence("Dockerfile", 1, "FROM nvidia/cuda:12.2.0-runtime-ubuntu20.04")
    fast = image.choose("inference", [], [("nvidia/cuda:12.2.0-runtime-ubuntu20.04", ev)], [], {"torch"},
                        system_packages=["python3.9", "curl"])
    assert fast.python_version == "3.9" and fast.python_exe == "python3.9"
    assert any("get-pip.py | python3.9" in c for c in fast.bootstrap)
    assert any("python3.9 -m ensurepip" in c for c in fast.bootstrap)
    assert "curl" not in fast.system_packages and "ca-certificates" in fast.system_packages
    plain = image.choose("inference", [], [("nvidia/cuda:11.8.0-devel-ubuntu20.04", ev)], [], {"torch"})
    assert plain.python_version == "3.8" and plain.python_exe == "python3" and "python3-pip" in plain.system_packages


def test_dockerfile_cuda_image_wins_and_cpu_gets_slim_python():
    ev = Evidence("Dockerfile", 1, "FROM ...")
    assert image.choose("inference", [], [("nvidia/cuda:12.4.1-runtime-ubuntu22.04", ev)], [], {"torch"}).image == \
        "nvidia/cuda:12.4.1-runtime-ubuntu22.04"
    assert image.row_for(image.choose("inference", [], [("ubuntu:22.04", ev)], [], {"torch"}).image)
    cpu = image.choose("cpu", [], [], [(">=3.10", ev)], set())
    assert cpu.image == "python:3.12-slim" and cpu.python_version == "3.12"
    tf = image.choose("training", [Req("tensorflow==2.16.1")], [], [], {"tensorflow"})
    assert tf.image == "tensorflow/tensorflow:2.16.1-gpu"


def test_setup_commands_quote_every_value_and_skip_what_the_image_ships():
    plan = setup_commands.build(["torch>=2.6", "numpy<2.0", 'x>=1; python_version >= "3.8"', "flash-attn==2.7.4"],
                                provides={"torch": "2.9.1"}, index_options=[("--extra-index-url", "https://a/b c")],
                                install_package=True, extras=["train"])
    assert plan.skipped == ["torch>=2.6"]
    assert plan.commands == [
        "python -m pip install --extra-index-url 'https://a/b c' 'numpy<2.0' 'x>=1; python_version >= \"3.8\"' "
        "flash-attn==2.7.4",
        "python -m pip install -e '.[train]'",
    ]
    assert setup_commands.build([]).commands == []
    assert not setup_commands.provided_by_image("torch[cuda]>=2", {"torch": "2.9.1"})
    assert not setup_commands.provided_by_image("torch==2.1.0", {"torch": "2.9.1"})


def test_readme_memory_tables_and_hardware_phrasings(tmp_path):
    write(tmp_path, "README.md", "\n".join([
        "Tested on a GPU with >18GB VRAM.",
        "We trained on a machine with 4 80GB A100s.",
        "",
        "| Size | Parameters | Required VRAM | Speed |",
        "|:---:|:---:|:---:|:---:|",
        "| tiny | 39 M | ~1 GB | ~10x |",
        "| large | 1550 M | ~10 GB | 1x |",
        "| turbo | 809 M | ~6 GB | ~8x |",
        "",
        "| 量化等级 | 最低 GPU 显存（推理） | 最低 GPU 显存（高效参数微调） |",
        "| -------- | --------------------- | ----------------------------- |",
        "| FP16（无量化） | 13 GB | 14 GB |",
        "| INT4 | 6 GB | 7 GB |",
    ]))
    facts = readme_facts.read(FileIndex.build(tmp_path))
    assert [v for v, _ in facts.vram_needs] == [18.0]
    assert [(n, gb) for n, gb, _ in facts.root_hardware] == [(4, 80.0)]
    assert facts.table_need("openai/whisper-turbo", "inference", "inference")[0] == 6.0
    assert facts.table_need("THUDM/chatglm-6b", "inference", "inference")[0] == 13.0
    assert facts.table_need("THUDM/chatglm-6b", "inference-int4", "inference")[0] == 6.0
    assert facts.table_need("THUDM/chatglm-6b", "lora", "training")[0] == 14.0
    assert facts.table_need("acme/other", None, "training") is None  # no name match, no precision


def test_training_count_from_readme_hardware_and_global_batch_split(tmp_path):
    from gpu_lol.analyzer import analyze

    write(tmp_path, "requirements.txt", "torch\ntransformers\n")
    write(tmp_path, "train.py", "import torch\nloss = torch.zeros(1, requires_grad=True)\nloss.backward()\n")
    write(tmp_path, "README.md", "Ran on a machine with 4 80GB A100s.\n\n```bash\n"
                                 "python -u train.py model.name_or_path=gpt2-xl batch_size=64 "
                                 "gradient_accumulation_steps=2 trainer=FSDPTrainer\n```\n")
    a = analyze(tmp_path, use_llm=False)
    assert a.spec.gpu_count == 4 and a.spec.model.name == "gpt2-xl"
    text = "\n".join(a.reasoning)
    assert "README.md:1" in text and "batch 32 x" in text


def test_fsdp_named_in_a_hydra_value_shards():
    from gpu_lol.analyzer import gpu_count

    (cmd,) = cmds("python -u train.py trainer=FSDPTrainer model.name_or_path=gpt2-xl")
    par = gpu_count.decide(workload="training", main_commands=[cmd], all_commands=[cmd], configs={}, referenced=[],
                           signals=[], resolve=lambda *_: None, package_names=set())
    assert par.fsdp and par.shardable and par.count is None
