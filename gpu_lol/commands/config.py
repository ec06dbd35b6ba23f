"""``gpu-lol config``: get and set the user's settings (the LLM endpoint for now).

Thin: validation, storage and masking live in :mod:`gpu_lol.config.user_config`.
"""

from __future__ import annotations

import os
import sys

import click


@click.group("config", context_settings={"help_option_names": ["-h", "--help"]})
def config_command() -> None:
    """Get and set gpu-lol settings, stored in ~/.gpu-lol/config.yaml (mode 0600).

    \b
    Keys (each has an environment variable that overrides the file):
      llm.url      GPU_LOL_LLM_URL      OpenAI-compatible base URL; unset = no LLM
      llm.key      GPU_LOL_LLM_KEY      API key for that endpoint (always masked)
      llm.model    GPU_LOL_LLM_MODEL    model name (default gpt-4o-mini)
      llm.timeout  GPU_LOL_LLM_TIMEOUT  seconds per request (default 30; one retry)

    \b
    Examples:
      gpu-lol config set llm.url https://openrouter.ai/api/v1
      gpu-lol config set llm.key -          # reads the key from stdin, not your shell history
      gpu-lol config set llm.url http://localhost:11434/v1   # a local Ollama
      gpu-lol config show
    """


@config_command.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key")
@click.argument("value")
def _set(key: str, value: str) -> int:
    """Set KEY to VALUE (VALUE '-' reads it from stdin)."""
    from gpu_lol.config import user_config
    from gpu_lol.errors import UsageError

    user_config.check_key(key)
    if value == "-":
        value = sys.stdin.readline().strip()
        if not value:
            raise UsageError(f"no value for {key} on stdin", f"echo VALUE | gpu-lol config set {key} -")
    stored = user_config.set_value(key, value)
    setting = user_config.Setting(key, stored, "file", user_config.KEYS[key].secret)
    click.echo(f"{key} = {setting.shown()}  ({user_config.path()})", err=True)
    if key == "llm.url":
        note = user_config.url_warning(stored)
        if note:
            click.echo(f"warning: {note}", err=True)
    env = user_config.KEYS[key].env
    if env in os.environ:
        click.echo(f"note: {env} is set in your environment and overrides this value", err=True)
    return 0


@config_command.command("unset")
@click.argument("key")
def _unset(key: str) -> int:
    """Remove KEY from the settings file."""
    from gpu_lol.config import user_config

    removed = user_config.unset(key)
    click.echo(f"{key} removed" if removed else f"{key} was not set in {user_config.path()}", err=True)
    return 0


@config_command.command("get")
@click.argument("key")
@click.option("--reveal", is_flag=True, help="Print a secret value in full instead of masked.")
def _get(key: str, reveal: bool) -> int:
    """Print the value of KEY in effect (environment, then file, then default).

    Exit 1 when it has no value.
    """
    from gpu_lol.config import user_config

    setting = user_config.effective(key)
    if setting.value is None:
        click.echo(f"{key} is not set", err=True)
        return 1
    click.echo(str(setting.value) if reveal else setting.shown())
    return 0


@config_command.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def _show(as_json: bool) -> int:
    """Show every setting, its value in effect (keys masked) and where it comes from."""
    from gpu_lol.config import user_config
    from gpu_lol.console import print_json, stdout, warn

    settings = user_config.all_settings()
    perm = user_config.permission_warning()
    url = next(s.value for s in settings if s.key == "llm.url")
    if as_json:
        print_json({
            "file": str(user_config.path()),
            "settings": {s.key: {"value": s.shown() if s.secret else s.value, "source": s.source}
                         for s in settings},
        })
    else:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(f"gpu-lol settings ({user_config.path()})"), title_justify="left")
        for column in ("key", "value", "from"):
            table.add_column(column)
        for s in settings:  # values are data: Text, never rich markup
            table.add_row(Text(s.key), Text(s.shown() or "-"), Text(s.source))
        stdout().print(table)
    for note in (perm, user_config.url_warning(url)):
        if note:
            warn(note)
    return 0
