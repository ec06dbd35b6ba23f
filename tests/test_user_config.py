"""The user settings file and `gpu-lol config set/get/unset/show`, through the real entry point."""

from __future__ import annotations

import io
import stat
import subprocess

import pytest

from gpu_lol import paths
from gpu_lol.config import user_config
from gpu_lol.errors import ConfigError, UsageError

KEY = "sk-proj-Tq4Lw9Zr2Xc7Vb1Nm8Kj3Hg6"


def test_set_writes_a_0600_file_and_get_reads_it(run_cli):
    r = run_cli("config", "set", "llm.url", "https://openrouter.ai/api/v1/")
    assert r.code == 0, r
    file = paths.user_config_file()
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
    r = run_cli("config", "get", "llm.url")
    assert (r.code, r.out) == (0, "https://openrouter.ai/api/v1\n")


def test_full_endpoint_url_is_reduced_to_the_base(run_cli):
    run_cli("config", "set", "llm.url", "http://localhost:11434/v1/chat/completions")
    assert user_config.file_value("llm.url") == "http://localhost:11434/v1"


def test_key_is_masked_everywhere_but_reveal(run_cli):
    r = run_cli("config", "set", "llm.key", KEY)
    assert r.code == 0 and KEY not in r.out + r.err
    assert "…" in r.err
    r = run_cli("config", "get", "llm.key")
    assert r.code == 0 and KEY not in r.out and r.out.strip() == "sk-…3Hg6"
    for args in (("config", "show"), ("config", "show", "--json")):
        r = run_cli(*args)
        assert r.code == 0 and KEY not in r.out + r.err and "3Hg6" in r.out
    r = run_cli("config", "get", "llm.key", "--reveal")
    assert r.out.strip() == KEY
    assert stat.S_IMODE(paths.user_config_file().stat().st_mode) == 0o600


def test_key_from_stdin(run_cli, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(KEY + "\n"))
    r = run_cli("config", "set", "llm.key", "-")
    assert r.code == 0, r
    assert user_config.file_value("llm.key") == KEY
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    r = run_cli("config", "set", "llm.key", "-")
    assert r.code == 2 and "no value for llm.key on stdin" in r.err


def test_show_reports_sources_env_over_file_over_default(run_cli, monkeypatch):
    run_cli("config", "set", "llm.model", "gpt-4.1-mini")
    run_cli("config", "set", "llm.timeout", "45")
    monkeypatch.setenv("GPU_LOL_LLM_TIMEOUT", "7")
    data = run_cli("config", "show", "--json").json()
    s = data["settings"]
    assert s["llm.model"] == {"value": "gpt-4.1-mini", "source": "file"}
    assert s["llm.timeout"] == {"value": 7.0, "source": "env GPU_LOL_LLM_TIMEOUT"}
    assert s["llm.url"] == {"value": None, "source": "unset"}
    assert data["file"] == str(paths.user_config_file())
    r = run_cli("config", "show")
    assert r.code == 0 and "env GPU_LOL_LLM_TIMEOUT" in r.out and "gpt-4.1-mini" in r.out
    r = run_cli("config", "get", "llm.timeout")
    assert r.out.strip() == "7"


def test_get_unset_key_exits_1(run_cli):
    r = run_cli("config", "get", "llm.url")
    assert r.code == 1 and r.out == "" and "not set" in r.err


def test_unset(run_cli):
    run_cli("config", "set", "llm.url", "http://127.0.0.1:8000/v1")
    r = run_cli("config", "unset", "llm.url")
    assert r.code == 0 and "removed" in r.err
    assert user_config.file_value("llm.url") is None
    assert user_config.read_file() == {}
    assert "was not set" in run_cli("config", "unset", "llm.url").err


@pytest.mark.parametrize("args,words", [
    (("config", "set", "llm.timout", "3"), "did you mean 'llm.timeout'"),
    (("config", "set", "llm.timeout", "-3"), "more than 0"),
    (("config", "set", "llm.timeout", "soon"), "number of seconds"),
    (("config", "set", "llm.url", "localhost:11434"), "http(s) URL"),
    (("config", "set", "llm.url", "ftp://x/v1"), "http(s) URL"),
    (("config", "set", "llm.model", "two words"), "without spaces"),
    (("config", "get", "nope"), "unknown setting 'nope'"),
])
def test_bad_usage_is_one_line_and_exit_2(run_cli, args, words):
    r = run_cli(*args)
    assert r.code == 2, r
    assert words in r.err
    assert "Traceback" not in r.err
    assert not paths.user_config_file().exists()  # nothing written


def test_unknown_keys_in_the_file_are_kept(run_cli):
    file = paths.user_config_file()
    paths.ensure_dir(file.parent)
    file.write_text("llm:\n  model: mine\nother_tool:\n  flag: true\n")
    run_cli("config", "set", "llm.url", "http://127.0.0.1:1/v1")
    data = user_config.read_file()
    assert data["other_tool"] == {"flag": True} and data["llm"]["model"] == "mine"


@pytest.mark.parametrize("text,words", [
    ("llm: [unclosed\n", "invalid YAML"),
    ("- a\n- b\n", "must be a mapping"),
    ("llm:\n  timeout: forever\n", "'llm.timeout' must be a number of seconds"),
    ("llm:\n  url: {a: 1}\n", "'llm.url' must be a single value"),
])
def test_broken_file_is_a_config_error_naming_it(run_cli, text, words):
    file = paths.user_config_file()
    paths.ensure_dir(file.parent)
    file.write_text(text)
    r = run_cli("config", "show")
    assert r.code == 2 and words in r.err and str(file) in r.err
    assert file.read_text() == text  # never rewritten behind the user's back
    with pytest.raises((ConfigError, UsageError)):
        user_config.all_settings()


def test_loose_permissions_are_warned_about(run_cli):
    run_cli("config", "set", "llm.key", KEY)
    file = paths.user_config_file()
    file.chmod(0o644)
    r = run_cli("config", "show")
    assert r.code == 0 and "chmod 600" in r.err
    run_cli("config", "set", "llm.model", "m")  # any write restores 0600
    assert stat.S_IMODE(file.stat().st_mode) == 0o600


def test_mask():
    assert user_config.mask("") == ""
    assert user_config.mask("short") == "****"
    assert user_config.mask(KEY) == "sk-…3Hg6"


def test_config_help_in_a_subprocess(gpu_lol_exe):
    out = subprocess.run(gpu_lol_exe + ["config", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "llm.url" in out.stdout and "GPU_LOL_LLM_KEY" in out.stdout


def test_plain_http_to_a_remote_host_is_warned_about(run_cli):
    r = run_cli("config", "set", "llm.url", "http://llm.example.com/v1")
    assert r.code == 0 and "unencrypted" in r.err
    assert "unencrypted" in run_cli("config", "show").err
    assert "unencrypted" not in run_cli("config", "set", "llm.url", "http://localhost:11434/v1").err
    assert "unencrypted" not in run_cli("config", "set", "llm.url", "https://api.openai.com/v1").err
