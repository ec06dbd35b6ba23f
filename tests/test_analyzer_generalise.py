"""Failure classes found on the development corpus's blind-labelled half, each on a fixture repo
written here (shaped like the real repos, not copies): hosted-model quick starts the analyzer planned
on a GPU, and pretrained-model quick starts it read as training."""

from __future__ import annotations

from pathlib import Path

from gpu_lol.analyzer import analyze

REPOS = Path(__file__).resolve().parent / "fixtures" / "repos"


def run(name: str):
    return analyze(REPOS / name, use_llm=False)


def text(a) -> str:
    return "\n".join(a.reasoning)


def test_a_library_client_given_a_hosted_model_id_is_hosted():
    # the README's example builds the framework's own client class with model="gpt-4.1": whatever the
    # class is called, no weights of that model exist to run here, so the quick start needs no GPU
    a = run("agent-wrapped-client")
    assert a.spec.workload_type == "cpu", text(a)
    assert a.spec.gpu_count == 0 and a.spec.gpu_type is None
    assert "README.md:16" in text(a)


def test_readme_app_that_only_calls_a_hosted_model_is_cpu():
    # `streamlit run planner.py` after `cd apps/trip_planner`: planner.py only talks to gpt-4o; the
    # fine-tuning tutorial elsewhere in the collection is not the quick start
    a = run("app-collection-hosted")
    assert a.spec.workload_type == "cpu", text(a)
    assert a.spec.gpu_count == 0
    assert "apps/trip_planner/planner.py" in text(a)


def test_quick_start_that_only_sets_a_hosted_api_key_is_cpu():
    # `export OPENAI_API_KEY=…` then the repo's console script scoring precomputed outputs: a vLLM
    # judge config deep in the package is an alternative, not the quick start
    a = run("eval-hosted-judge")
    assert a.spec.workload_type == "cpu", text(a)
    assert a.spec.gpu_count == 0
    assert "OPENAI_API_KEY" in text(a) and "README.md:15" in text(a)


def test_hosted_key_beside_a_local_model_argument_stays_on_a_gpu(tmp_path):
    # a judge key next to a command that generates with a local model: the generation needs the GPU
    (tmp_path / "README.md").write_text(
        "# gen\n\n```bash\nexport OPENAI_API_KEY=sk-xxx\n"
        "python generate.py --model_name_or_path Qwen/Qwen2.5-7B-Instruct\n```\n")
    (tmp_path / "requirements.txt").write_text("torch\ntransformers\nopenai\n")
    (tmp_path / "generate.py").write_text(
        "import argparse\nfrom transformers import AutoModelForCausalLM\n\n"
        "p = argparse.ArgumentParser()\np.add_argument('--model_name_or_path')\nargs = p.parse_args()\n"
        "model = AutoModelForCausalLM.from_pretrained(args.model_name_or_path, device_map='auto')\n"
        "print(model.generate(None))\n")
    a = analyze(tmp_path, use_llm=False)
    assert a.spec.workload_type == "inference", text(a)
    assert a.spec.gpu_count == 1


def test_tokenizer_helper_named_for_a_hosted_model_is_not_a_hosted_client(tmp_path):
    # tiktoken.encoding_for_model("gpt-4") counts tokens locally; it is not a model call
    (tmp_path / "requirements.txt").write_text("torch\ntiktoken\n")
    (tmp_path / "train.py").write_text(
        "import tiktoken\nimport torch\n\nenc = tiktoken.encoding_for_model(model_name='gpt-4')\n"
        "model = torch.nn.Linear(8, 8).cuda()\nopt = torch.optim.AdamW(model.parameters())\n"
        "if __name__ == '__main__':\n    loss = model(torch.randn(2, 8).cuda()).sum()\n"
        "    loss.backward()\n    opt.step()\n")
    a = analyze(tmp_path, use_llm=False)
    assert a.spec.workload_type == "training", text(a)


def test_torch_hub_quick_start_is_inference_despite_training_scripts():
    a = run("vision-hub-demo")
    assert a.spec.workload_type == "inference", text(a)
    assert a.spec.gpu_count == 1
    assert "README.md:8" in text(a)


def test_pretrained_model_builder_in_the_readme_is_inference():
    a = run("pretrained-embedding")
    assert a.spec.workload_type == "inference", text(a)
    assert a.spec.gpu_count == 1


def test_readme_prose_sizes_an_unsized_checkpoint_name_and_phase_bound_hardware():
    # `--from_pretrained owlvlm-chat` has no size; the README's "OwlVLM-17B has …" gives it. The
    # "Finetuning: … 8* RTX 3090" line is about the other phase, and the 4-bit load sits behind the
    # `--quant` flag the quick start does not pass: 17B in 16-bit on one card
    a = run("vlm-release-prose-size")
    assert a.spec.workload_type == "inference", text(a)
    assert a.spec.model.params_b == 17, text(a)
    assert "README.md:3" in text(a)
    assert a.spec.model.method == "inference", text(a)
    assert a.spec.gpu_count == 1, text(a)
    assert 32 <= a.spec.vram_required_gb <= 48, text(a)


def test_opt_in_quant_flag_on_the_main_command_keeps_4_bit(tmp_path):
    import shutil

    repo = tmp_path / "r"
    shutil.copytree(REPOS / "vlm-release-prose-size", repo)
    readme = repo / "README.md"
    readme.write_text(readme.read_text().replace("--from_pretrained acme/owlvlm-chat-hf --bf16",
                                                 "--from_pretrained acme/owlvlm-chat-hf --quant 4"))
    a = analyze(repo, use_llm=False)
    assert a.spec.model.method == "inference-int4", text(a)


def test_eval_harness_model_args_name_the_model(tmp_path):
    # `--model hf` is the backend; the model is the packed `pretrained=` of --model_args
    (tmp_path / "README.md").write_text(
        "# evalkit\n\n## Basic usage\n\n```bash\nevalkit --model hf \\\n"
        "    --model_args pretrained=EleutherAI/gpt-j-6B \\\n    --tasks hellaswag --device cuda:0 --batch_size 8\n```\n")
    (tmp_path / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='evalkit', packages=['evalkit'], install_requires=['torch', "
        "'transformers'], entry_points={'console_scripts': ['evalkit=evalkit.__main__:cli_evaluate']})\n")
    (tmp_path / "evalkit").mkdir()
    (tmp_path / "evalkit" / "__init__.py").write_text("")
    (tmp_path / "evalkit" / "__main__.py").write_text(
        "from transformers import AutoModelForCausalLM\n\n\ndef cli_evaluate():\n"
        "    model = AutoModelForCausalLM.from_pretrained('gpt2')\n    print(model.generate(None))\n")
    a = analyze(tmp_path, use_llm=False)
    assert a.spec.workload_type == "inference", text(a)
    assert a.spec.model.name == "EleutherAI/gpt-j-6B", text(a)


def _small_vision_repo(root: Path, extra_import: str = "") -> None:
    (root / "README.md").write_text("# SharpNet: image super-resolution\n\n## Quick inference\n\n```bash\n"
                                    "python inference_sharpnet.py -i inputs -o results --face_enhance\n```\n")
    (root / "requirements.txt").write_text("torch>=1.7\ntorchvision\nopencv-python\n")
    (root / "inference_sharpnet.py").write_text(
        f"import argparse\nimport torch\n{extra_import}\nfrom archs import SharpNet\n\n"
        "def main():\n    p = argparse.ArgumentParser()\n    p.add_argument('-i')\n    p.add_argument('-o')\n"
        "    p.add_argument('--face_enhance', action='store_true')\n    args = p.parse_args()\n"
        "    model = SharpNet()\n    model.load_state_dict(torch.load('weights/sharpnet_x4.pth'))\n"
        "    model.eval().cuda()\n\n\nif __name__ == '__main__':\n    main()\n")
    (root / "archs.py").write_text("import torch.nn as nn\n\n\nclass SharpNet(nn.Module):\n    pass\n")


def test_small_vision_inference_without_a_sized_model_gets_8_gb(tmp_path):
    # no language model, diffusion pipeline or quantized load: a sub-1B restoration model, 8 GB
    _small_vision_repo(tmp_path)
    a = analyze(tmp_path, use_llm=False)
    assert a.spec.workload_type == "inference", text(a)
    assert a.spec.vram_required_gb == 8.0, text(a)
    assert "small model" in text(a)


def test_diffusion_code_keeps_the_general_inference_default(tmp_path):
    _small_vision_repo(tmp_path, extra_import="from ldm.models.diffusion.ddim import DDIMSampler")
    a = analyze(tmp_path, use_llm=False)
    assert a.spec.workload_type == "inference", text(a)
    assert a.spec.vram_required_gb == 12.0, text(a)


def test_a_gpu_count_in_a_pipeline_off_the_main_path_is_not_the_quick_starts(tmp_path):
    # the README runs a 1.7B model from a ```python block; `gpus=8` in a data-generation pipeline
    # elsewhere in the repo is another path's count
    (tmp_path / "README.md").write_text(
        "# SmallLM\n\n## Usage\n\n```python\nfrom transformers import AutoModelForCausalLM\n"
        "model = AutoModelForCausalLM.from_pretrained(\"HuggingFaceTB/SmolLM2-1.7B-Instruct\").to(\"cuda\")\n"
        "print(model.generate(None))\n```\n")
    (tmp_path / "requirements.txt").write_text("torch\ntransformers\n")
    (tmp_path / "local_inference.py").write_text(
        "from transformers import AutoModelForCausalLM\n\nmodel = AutoModelForCausalLM.from_pretrained("
        "'HuggingFaceTB/SmolLM2-1.7B-Instruct')\nprint(model.generate(None))\n")
    pipes = tmp_path / "data" / "pipelines"
    pipes.mkdir(parents=True)
    (pipes / "summaries.py").write_text(
        "from distilabel.steps import StepResources\nfrom distilabel.models import vLLM\n\n"
        "if __name__ == '__main__':\n    llm = vLLM(model='Qwen/Qwen2.5-72B-Instruct')\n"
        "    res = StepResources(gpus=8)\n")
    a = analyze(tmp_path, use_llm=False)
    assert a.spec.workload_type == "inference", text(a)
    assert a.spec.gpu_count == 1, text(a)


def _rag_repo(root: Path, block: str) -> None:
    (root / "README.md").write_text("# ragkit\n\nA data framework for LLM apps.\n\n## Example usage\n\n"
                                    "```python\n" + block + "```\n")
    (root / "pyproject.toml").write_text('[project]\nname = "ragkit"\nversion = "0.1"\n'
                                         'dependencies = ["torch", "transformers", "openai"]\n')
    pkg = root / "ragkit" / "embeddings"
    pkg.mkdir(parents=True)
    (root / "ragkit" / "__init__.py").write_text("")
    (pkg / "hf.py").write_text("from transformers import AutoModel\n\n\nclass HFEmbedding:\n"
                               "    def __init__(self, name):\n        self.model = AutoModel.from_pretrained(name)\n")


def test_python_example_that_sets_a_hosted_api_key_is_cpu(tmp_path):
    _rag_repo(tmp_path, 'import os\n\nos.environ["OPENAI_API_KEY"] = "YOUR_KEY"\n\n'
                        'from ragkit import VectorStoreIndex, SimpleDirectoryReader\n\n'
                        'docs = SimpleDirectoryReader("data").load_data()\nindex = VectorStoreIndex.from_documents(docs)\n')
    a = analyze(tmp_path, use_llm=False)
    assert a.spec.workload_type == "cpu", text(a)
    assert "OPENAI_API_KEY" in text(a)


def test_python_example_with_a_hosted_key_that_loads_a_local_model_needs_a_gpu(tmp_path):
    _rag_repo(tmp_path, 'import os\n\nos.environ["OPENAI_API_KEY"] = "YOUR_KEY"\n\n'
                        'from transformers import AutoModelForCausalLM\n\n'
                        'model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-7B-Instruct")\n')
    a = analyze(tmp_path, use_llm=False)
    assert a.spec.workload_type == "inference", text(a)
    assert a.spec.gpu_count == 1


def test_usage_section_starts_the_main_path_not_a_hub_snippet_above_it(tmp_path):
    # a one-line torch.hub snippet under the model-zoo table is an aside; the README's "Usage"
    # section, whose first command trains, is the path a user follows
    (tmp_path / "README.md").write_text(
        "# DetNet\n\n## Model zoo\n\n| name | box AP |\n| --- | --- |\n| R50 | 42.0 |\n\n"
        "The models are also on torch hub:\n```python\n"
        "model = torch.hub.load('acme/detnet:main', 'detnet_r50', pretrained=True)\n```\n\n"
        "# Usage\n\n## Training\n\n```\npython train.py --coco_path /path/to/coco\n```\n")
    (tmp_path / "requirements.txt").write_text("torch\ntorchvision\n")
    (tmp_path / "train.py").write_text(
        "import argparse\nimport torch\n\n\ndef main():\n    p = argparse.ArgumentParser()\n"
        "    p.add_argument('--coco_path')\n    args = p.parse_args()\n    model = torch.nn.Linear(4, 4).cuda()\n"
        "    opt = torch.optim.AdamW(model.parameters())\n    loss = model(torch.randn(2, 4).cuda()).sum()\n"
        "    loss.backward()\n    opt.step()\n\n\nif __name__ == '__main__':\n    main()\n")
    a = analyze(tmp_path, use_llm=False)
    assert a.spec.workload_type == "training", text(a)
    assert a.spec.gpu_count == 1


def test_readme_that_only_evaluates_released_checkpoints_is_inference(tmp_path):
    # the root README's commands all run `main.py --eval true --resume <release>`; training lives in
    # TRAINING.md and the same main.py: an alternative path, not the README's
    (tmp_path / "README.md").write_text(
        "# ConvNet\n\n## Results and pre-trained models\n\n| model | acc |\n| --- | --- |\n| base | 85.8 |\n\n"
        "## Evaluation\n\nSingle-GPU:\n```\npython main.py --model convnet_base --eval true \\\n"
        "--resume https://example.com/convnet_base_1k_224.pth --data_path /path/to/imagenet\n```\n\n"
        "## Training\n\nSee [TRAINING.md](TRAINING.md).\n")
    (tmp_path / "TRAINING.md").write_text(
        "# Training\n\n```\npython -m torch.distributed.launch --nproc_per_node=8 main.py --model convnet_base "
        "--batch_size 128 --data_path /path/to/imagenet\n```\n")
    (tmp_path / "requirements.txt").write_text("torch\ntorchvision\ntimm\n")
    (tmp_path / "main.py").write_text(
        "import argparse\nimport torch\n\n\ndef main():\n    p = argparse.ArgumentParser()\n"
        "    p.add_argument('--eval', type=bool, default=False)\n    p.add_argument('--resume')\n"
        "    args = p.parse_args()\n    model = torch.nn.Linear(4, 4).cuda()\n"
        "    opt = torch.optim.AdamW(model.parameters())\n    for _ in range(10):\n"
        "        loss = model(torch.randn(2, 4).cuda()).sum()\n        loss.backward()\n        opt.step()\n\n\n"
        "if __name__ == '__main__':\n    main()\n")
    a = analyze(tmp_path, use_llm=False)
    assert a.spec.workload_type == "inference", text(a)
    assert a.spec.gpu_count == 1, text(a)
    assert "--eval" in text(a) or "no training command" in text(a)


def test_notebook_collection_takes_its_count_from_the_first_linked_notebook(tmp_path):
    import json as _json

    def nb(code: str) -> str:
        return _json.dumps({"cells": [{"cell_type": "code", "source": code.splitlines(True), "metadata": {},
                                       "outputs": [], "execution_count": None}],
                            "metadata": {}, "nbformat": 4, "nbformat_minor": 5})

    (tmp_path / "README.md").write_text(
        "# TF examples\n\nA tutorial for beginners.\n\n- [Hello world](notebooks/0_hello.ipynb)\n"
        "- [Linear regression](notebooks/1_linear.ipynb)\n- [Multi-GPU training](notebooks/6_multigpu.ipynb)\n")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "0_hello.ipynb").write_text(nb("import tensorflow as tf\nprint(tf.constant('hi'))\n"))
    (tmp_path / "notebooks" / "1_linear.ipynb").write_text(nb("import tensorflow as tf\nw = tf.Variable(0.0)\n"))
    (tmp_path / "notebooks" / "6_multigpu.ipynb").write_text(
        nb("import tensorflow as tf\nnum_gpus = 2\nmodel = tf.keras.Sequential()\nmodel.fit(x, y, epochs=3)\n"))
    (tmp_path / "requirements.txt").write_text("tensorflow\n")
    a = analyze(tmp_path, use_llm=False)
    assert a.spec.workload_type == "interactive", text(a)
    assert a.spec.gpu_count == 1, text(a)
