"""Issue 10's failure classes, each on a fixture repo written here (shaped like a real repo, not a
copy): a hosted-API agent library, notebook courses, a laptop-CPU lecture repo, a model too big for
one card, a model-release README's stated size and hardware."""

from __future__ import annotations

from pathlib import Path

from gpu_lol.analyzer import analyze
from gpu_lol.sizing.catalog import get_gpu
from gpu_lol.sizing.selection import HEADROOM

REPOS = Path(__file__).resolve().parent / "fixtures" / "repos"


def run(name: str):
    return analyze(REPOS / name, use_llm=False)


def text(a) -> str:
    return "\n".join(a.reasoning)


def test_hosted_api_agent_library_needs_no_gpu():
    # transformers is imported by an optional local-model class, but the README quick start runs the
    # agent on a hosted inference API: no local GPU
    a = run("agent-hosted-api")
    assert a.spec.workload_type == "cpu"
    assert a.spec.gpu_type is None and a.spec.gpu_count == 0
    assert "hosted model API" in text(a) and "README.md:14" in text(a)
    assert a.spec.base_image.startswith("python:")


def test_hosted_model_ids_are_not_local_model_candidates(tmp_path):
    (tmp_path / "requirements.txt").write_text("openai>=1.40\nlitellm\ntorch\n")
    (tmp_path / "app.py").write_text(
        'from openai import OpenAI\nimport torch\n\nMODEL_NAME = "Qwen/Qwen2.5-72B-Instruct"\n'
        'client = OpenAI()\n\nif __name__ == "__main__":\n'
        '    r = client.chat.completions.create(model=MODEL_NAME, messages=[{"role": "user", "content": "hi"}])\n'
        '    print(r.choices[0].message.content)\n')
    a = analyze(tmp_path, use_llm=False)
    assert a.spec.workload_type == "cpu", text(a)
    assert a.spec.model.name is None


def test_client_of_a_local_server_is_not_hosted(tmp_path):
    # an OpenAI client pointed at the vLLM server the README starts is local inference
    (tmp_path / "README.md").write_text("# demo\n\n```bash\nvllm serve Qwen/Qwen2.5-7B-Instruct\n```\n\n"
                                        "```python\nfrom openai import OpenAI\n"
                                        "client = OpenAI(base_url=\"http://localhost:8000/v1\")\n```\n")
    (tmp_path / "requirements.txt").write_text("vllm\nopenai\n")
    a = analyze(tmp_path, use_llm=False)
    assert a.spec.workload_type == "inference"
    assert a.spec.gpu_count >= 1


def test_notebook_course_is_interactive_even_with_a_script_in_the_readme():
    a = run("course-notebooks")
    assert a.spec.workload_type == "interactive", text(a)
    assert a.spec.gpu_count == 1


def test_lecture_notebooks_that_run_on_a_laptop_are_cpu():
    a = run("lecture-notebooks-cpu")
    assert a.spec.workload_type == "cpu", text(a)
    assert a.spec.gpu_type is None
    assert "README.md:6" in text(a)


def test_a_model_too_big_for_any_card_is_split_over_a_count_that_fits():
    a = run("release-huge-unsharded")
    spec = a.spec
    assert spec.model.params_b > 150
    assert spec.gpu_count > 1
    card = get_gpu(spec.gpu_type)
    assert spec.vram_required_gb <= card.vram_gb * HEADROOM + 0.1, (spec.gpu_type, spec.vram_required_gb)
    assert "must shard" in text(a)
    assert a.confidence["gpu_count"] == "low"  # nothing says the code shards: `up -y` asks first


def test_readme_stated_size_and_required_hardware():
    # "314B parameters" sizes a model loaded from a local folder; "requires 8x80GB" sets the plan
    a = run("release-314b")
    spec = a.spec
    assert spec.model.params_b == 314
    assert spec.workload_type == "inference"
    assert spec.gpu_count == 8
    assert get_gpu(spec.gpu_type).vram_gb >= 80 and spec.vram_required_gb == 80
    assert "outranks the estimate" in text(a)


def test_readme_card_size_statement_outranks_a_smaller_estimate(tmp_path):
    (tmp_path / "README.md").write_text(
        "# chat demo\n\nThe demo runs on a single 24 GB GPU.\n\n```bash\npython demo.py\n```\n")
    (tmp_path / "requirements.txt").write_text("torch\ntransformers\n")
    (tmp_path / "demo.py").write_text(
        'from transformers import AutoModelForCausalLM\n\nif __name__ == "__main__":\n'
        '    m = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-3B-Instruct")\n    print(m.generate())\n')
    a = analyze(tmp_path, use_llm=False)
    assert a.spec.workload_type == "inference"
    assert a.spec.vram_required_gb == 24
    assert "README.md:3" in text(a)


def test_llama1_30b_checkpoint_is_32_5b():
    from gpu_lol.sizing.models import lookup_model

    assert lookup_model("huggyllama/llama-30b").params_b == 32.53
    assert lookup_model("decapoda-research/llama-65b-hf").params_b == 65.29
    assert lookup_model("xai-org/grok-1").params_b == 314
    assert lookup_model("meta-llama/Llama-2-7b-hf").name == "meta-llama/Llama-2-7b-hf"  # not LLaMA-1


def test_a_checkpoint_folder_with_a_size_in_its_name_sizes_the_model():
    a = run("video-gen-quickstart")  # --ckpt_dir ./ckpts/vidgen-1.3b
    assert a.spec.model.name == "vidgen-1.3b" and a.spec.model.params_b == 1.3
    assert a.spec.vram_required_gb <= 16


def test_a_client_of_a_local_server_through_a_constant_is_not_hosted():
    from gpu_lol.analyzer.python_signals import analyze_source

    sig = analyze_source("client.py", 'from openai import OpenAI\nBASE = "http://localhost:8000/v1"\n'
                                      'client = OpenAI(base_url=BASE, api_key="EMPTY")\n')
    assert not sig.hosted
    sig = analyze_source("client.py", 'from openai import OpenAI\nclient = OpenAI()\n'
                                      'client.chat.completions.create(model="gpt-4o-mini", messages=[])\n')
    assert len(sig.hosted) == 2 and ("gpt-4o-mini" in [m for m, _ in sig.hosted_models])
    assert sig.hosted_only and not sig.model_ids


def test_training_progress_in_a_checkpoint_name_is_not_a_size():
    from gpu_lol.sizing.models import lookup_model, size_from_name

    assert lookup_model("PY007/TinyLlama-1.1B-intermediate-step-240k-503b").params_b == 1.1
    assert size_from_name("my-lm-350m-step-20000-tokens-300b") == 0.35
    assert size_from_name("Qwen3-30B-A3B") == 30  # still the total of an MoE
