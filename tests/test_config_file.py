"""`.gpu-lol.yaml`: strict, kind validation; the schema matches the catalog; nothing is lost."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import pytest

from gpu_lol.config import config_file
from gpu_lol.errors import ConfigError, UsageError
from gpu_lol.sizing import catalog
from gpu_lol.spec import EnvironmentSpec, ModelInfo


def load_text(text: str):
    return config_file.loads(text, ".gpu-lol.yaml")


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_text(text)
    return info.value


def test_minimal_file_sets_only_what_it_says():
    loaded = load_text("gpu_type: RTX4090\ngpu_count: 2\n")
    assert loaded.data == {"gpu_type": "RTX4090", "gpu_count": 2}


def test_empty_file_is_an_empty_config():
    assert load_text("").data == {}
    assert load_text("# just a comment\n").data == {}


def test_unknown_key_names_it_the_line_and_the_closest_key():
    err = error_of("version: 1\nworkload_type: training\ngpu_typ: H100\n")
    assert "unknown key 'gpu_typ'" in err.message
    assert err.line == 3
    assert err.hint == "did you mean 'gpu_type'?"
    assert err.exit_code == 2


def test_unknown_nested_key_in_model():
    err = error_of("model:\n  name: gpt2\n  param_b: 0.1\n")
    assert "unknown key 'param_b' in model" in err.message
    assert err.line == 3
    assert "params_b" in err.hint


def test_bad_gpu_lists_the_valid_names():
    err = error_of("gpu_type: X9000\n")
    assert err.field == "gpu_type" and err.line == 1
    for gpu_id in ("RTX4090", "A100-80GB", "H100-SXM", "B200"):
        assert gpu_id in err.hint


def test_wrong_type_names_field_line_and_what_is_allowed():
    err = error_of("workload_type: training\ngpu_count: two\n")
    assert err.message.startswith(".gpu-lol.yaml:2: gpu_count: expected an integer, got a string")
    err = error_of("spot: maybe\n")
    assert "true or false" in err.message


def test_out_of_range_values():
    assert "at most 16" in error_of("gpu_count: 99\n").message
    assert "at least 10" in error_of("disk_gb: 1\n").message
    err = error_of("ports:\n  - 8000\n  - 70000\n")
    assert err.field == "ports[1]" and err.line == 3


def test_invalid_yaml_names_the_line():
    err = error_of("gpu_type: RTX4090\nrequirements: [torch,\n  numpy\nspot: true\n")
    assert "invalid YAML" in err.message
    assert err.line is not None and err.line >= 3


def test_duplicate_keys_are_an_error():
    err = error_of("gpu_type: RTX4090\ngpu_type: H100\n")
    assert "duplicate key 'gpu_type'" in err.message and err.line == 2


def test_requirement_strings_are_checked():
    assert load_text("requirements: ['numpy<2.0', 'torch==2.8.0; platform_system == \"Linux\"']\n")
    err = error_of("requirements:\n  - numpy<2.0\n  - 'evil; rm -rf /'\n")
    assert err.field == "requirements[1]" and err.line == 3


def test_cpu_workload_takes_no_gpu():
    err = error_of("workload_type: cpu\ngpu_type: RTX4090\n")
    assert err.field == "gpu_type"
    err = error_of("workload_type: training\ngpu_count: 0\n")
    assert err.field == "gpu_count"


def test_top_level_must_be_a_mapping():
    assert "mapping" in error_of("- gpu_type\n").message


def test_schema_gpu_enum_is_the_catalog():
    enum = config_file.schema()["properties"]["gpu_type"]["enum"]
    assert [g for g in enum if g is not None] == catalog.gpu_ids()


def test_schema_covers_every_spec_field():
    props = set(config_file.schema()["properties"])
    assert props == set(EnvironmentSpec.field_names())


def test_written_spec_loads_back_unchanged(tmp_path):
    spec = EnvironmentSpec(workload_type="training", gpu_type="L40S", gpu_count=2, vram_required_gb=30.5,
                           base_image="runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2204", python_version="3.12",
                           requirements=["numpy<2.0", "torch==2.8.0"], setup_commands=["python -m pip install -e ."],
                           envs={"WANDB_PROJECT": "x"}, ports=[8000],
                           model=ModelInfo("meta-llama/Llama-3.1-8B", 8.03, "qlora"))
    path = config_file.write(tmp_path / ".gpu-lol.yaml", spec, header="made by a test")
    text = path.read_text()
    assert text.startswith("# made by a test")
    loaded = config_file.load(path)
    assert EnvironmentSpec.from_dict(loaded.data) == spec


def test_write_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / ".gpu-lol.yaml"
    path.write_text("gpu_type: RTX4090\n")
    with pytest.raises(UsageError):
        config_file.write(path, EnvironmentSpec(base_image="x"))
    assert path.read_text() == "gpu_type: RTX4090\n"
    config_file.write(path, EnvironmentSpec(base_image="python:3.11-slim", workload_type="cpu", gpu_count=0),
                      force=True)
    assert "python:3.11-slim" in path.read_text()


def test_cli_bad_config_exits_2_with_one_line_and_leaves_the_file(run_cli, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    bad = "workload_type: trainign\n"
    (repo / ".gpu-lol.yaml").write_text(bad)
    result = run_cli("analyze", str(repo), "--json", "--no-llm")
    assert result.code == 2
    assert result.out == ""
    lines = [line for line in result.err.splitlines() if line]
    assert lines[0].startswith("error: ") and ".gpu-lol.yaml:1: workload_type" in lines[0]
    assert lines[1].startswith("hint: allowed: training, inference, interactive, cpu")
    assert "Traceback" not in result.err
    assert (repo / ".gpu-lol.yaml").read_text() == bad


def _random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 2 else 5)
    if kind == 0:
        return rng.randint(-5, 100000)
    if kind == 1:
        return rng.random() * 1000 - 10
    if kind == 2:
        return "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 12)))
    if kind == 3:
        return rng.choice([True, False, None])
    if kind == 4:
        return rng.choice(catalog.gpu_ids() + ["training", "cpu", "3.11", "numpy<2", "a:b"])
    if kind == 5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = EnvironmentSpec.field_names() + ["name", "params_b", "method", "junk"]
    return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def test_fuzz_random_configs_only_raise_config_errors():
    import yaml

    rng = random.Random(20261124)
    keys = EnvironmentSpec.field_names() + ["gpu", "vram", "image"]
    accepted = 0
    for _ in range(600):
        data = {rng.choice(keys): _random_value(rng) for _ in range(rng.randint(0, 6))}
        text = yaml.safe_dump(data, sort_keys=False)
        try:
            loaded = load_text(text)
        except ConfigError as exc:
            assert exc.exit_code == 2 and exc.message
            continue
        accepted += 1
        spec = EnvironmentSpec.from_dict(loaded.data)  # what validates must build a spec
        json.dumps(spec.to_dict())
    assert accepted > 0


def test_fuzz_random_bytes_never_crash():
    rng = random.Random(7)
    for _ in range(300):
        text = "".join(rng.choice(":-[]{}\n '\"#&*!|>%@`\tab01") for _ in range(rng.randint(0, 60)))
        try:
            load_text(text)
        except ConfigError:
            pass


def test_example_file_is_valid():
    example = Path(__file__).resolve().parent.parent / ".gpu-lol.yaml.example"
    loaded = config_file.load(example)
    assert loaded.data["version"] == 1
    assert "gpu_type" in loaded.data
