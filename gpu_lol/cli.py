"""The ``gpu-lol`` command: a table of subcommands, each loaded only when it runs.

Importing this module pulls in click and nothing heavy: SkyPilot, openai, httpx and rich are
imported inside the commands that need them, so ``gpu-lol --help`` stays fast.
"""

from __future__ import annotations

import os
import sys

import click

from gpu_lol import __version__

# name -> (module, short help). The module defines a click command named ``<name>_command``.
COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("gpu_lol.commands.analyze", "Read a repo and show what it needs to run."),
    "init": ("gpu_lol.commands.init", "Write .gpu-lol.yaml from the analysis."),
    "estimate": ("gpu_lol.commands.estimate", "Estimate GPU memory for a model and pick GPUs."),
    "gpus": ("gpu_lol.commands.gpus", "List the GPU catalog with prices."),
    "up": ("gpu_lol.commands.up", "Launch a GPU machine for this repo (or use your own host)."),
    "ls": ("gpu_lol.commands.lifecycle", "List clusters and host targets."),
    "info": ("gpu_lol.commands.lifecycle", "Show one cluster or host target."),
    "start": ("gpu_lol.commands.lifecycle", "Restart a stopped cluster."),
    "stop": ("gpu_lol.commands.lifecycle", "Stop a cluster (where the provider can)."),
    "down": ("gpu_lol.commands.lifecycle", "Tear down a cluster or forget a host target."),
    "check": ("gpu_lol.commands.lifecycle", "Check cloud credentials, the API server and tools."),
    "cost": ("gpu_lol.commands.lifecycle", "Show SkyPilot's cost report."),
    "templates": ("gpu_lol.commands.templates", "List your RunPod pod templates."),
    "ssh": ("gpu_lol.commands.remote", "Open a shell on a cluster or host, in the workdir."),
    "exec": ("gpu_lol.commands.remote", "Run a command on a cluster or host, inline."),
    "run": ("gpu_lol.commands.remote", "Run a command as a SkyPilot job (autostop waits for it)."),
    "logs": ("gpu_lol.commands.remote", "Show setup and job logs."),
    "pull": ("gpu_lol.commands.transfer", "Copy files (results, checkpoints) back from a machine."),
    "push": ("gpu_lol.commands.transfer", "Copy files (data, weights) to a machine."),
    "notebook": ("gpu_lol.commands.notebook", "Jupyter Lab on a machine, through an SSH tunnel."),
    "code": ("gpu_lol.commands.notebook", "Open the workdir in VS Code (Remote-SSH)."),
    "forward": ("gpu_lol.commands.remote", "Forward ports to a cluster or host over SSH."),
    "validate": ("gpu_lol.commands.validate", "Check that a machine matches the spec."),
    "snapshot": ("gpu_lol.commands.snapshot", "Turn a running machine into a .gpu-lol.yaml."),
    "resume": ("gpu_lol.commands.resume", "Launch exactly what .gpu-lol.yaml says."),
    "config": ("gpu_lol.commands.config", "Get and set gpu-lol settings (LLM endpoint...)."),
}


# Words people type for a command that has another name here (checked before fuzzy matching).
COMMAND_ALIASES: dict[str, str] = {
    "status": "ls", "list": "ls", "ps": "ls", "show": "info", "describe": "info",
    "launch": "up", "create": "up", "shell": "ssh", "rm": "down", "delete": "down",
    "destroy": "down", "terminate": "down", "kill": "down", "teardown": "down", "analyse": "analyze",
    "price": "cost", "prices": "gpus", "log": "logs", "settings": "config", "doctor": "check",
    "relaunch": "resume", "restart": "start", "configure": "config",
}


def suggest_command(name: str) -> str | None:
    """The command the user probably meant by ``name`` (None when nothing is close)."""
    import difflib

    lowered = name.lower()
    if lowered in COMMANDS:
        return lowered
    if lowered in COMMAND_ALIASES and COMMAND_ALIASES[lowered] in COMMANDS:
        return COMMAND_ALIASES[lowered]
    close = difflib.get_close_matches(lowered, list(COMMANDS) + list(COMMAND_ALIASES), n=1, cutoff=0.6)
    if not close:
        return None
    return COMMAND_ALIASES.get(close[0], close[0]) if close[0] not in COMMANDS else close[0]


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use; help text comes from the table."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        import importlib

        module = importlib.import_module(entry[0])
        command = _quiet_with_json(getattr(module, name + "_command"))
        if os.environ.get("_GPU_LOL_COMPLETE"):  # a shell asks for completions (docs/launch.md)
            from gpu_lol.commands.completion import attach

            attach(command)
        return command

    def shell_complete(self, ctx: click.Context, incomplete: str):
        """Command names from the table (no command module imported), then the group's options."""
        from click.shell_completion import CompletionItem

        items = [CompletionItem(name, help=help_text) for name, (_, help_text) in COMMANDS.items()
                 if name.startswith(incomplete)]
        return items + click.Command.shell_complete(self, ctx, incomplete)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0] if args else ""
        if name and name not in COMMANDS and not name.startswith("-"):
            guess = suggest_command(name)
            hint = (f"did you mean `gpu-lol {guess}`?" if guess
                    else "see `gpu-lol --help` for the commands")
            raise _UnknownCommand(f"unknown command '{name}'", hint, ctx)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _quiet_with_json(command: click.Command) -> click.Command:
    """A command run with ``--json`` (or ``--quiet``) prints no progress lines on stderr."""
    callback = command.callback
    if callback is None or getattr(callback, "_gpu_lol_quiet", False):
        return command

    def run(*args, **kwargs):
        if kwargs.get("as_json") or kwargs.get("quiet"):
            from gpu_lol import console

            console.set_quiet(True)
        return callback(*args, **kwargs)

    run._gpu_lol_quiet = True  # type: ignore[attr-defined]
    command.callback = run
    return command


class _UnknownCommand(click.UsageError):
    def __init__(self, message: str, hint: str, ctx: click.Context):
        super().__init__(message, ctx)
        self.hint = hint


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="gpu-lol")
@click.option("--debug", is_flag=True, envvar="GPU_LOL_DEBUG",
              help="Show full tracebacks for unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """cd into an ML repo, run `gpu-lol up`, get a GPU that fits the work.

    \b
    Start here:
      gpu-lol analyze          what this repo needs (workload, GPU, packages, evidence)
      gpu-lol up --dry-run     the launch plan and price, without launching
      gpu-lol up               launch it
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if debug:
        os.environ["GPU_LOL_DEBUG"] = "1"


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("GPU_LOL_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the CLI and turns every error into one line and an exit code."""
    from gpu_lol.errors import EXIT_FAILED, EXIT_USAGE, GpuLolError

    args = list(sys.argv[1:] if argv is None else argv)
    from gpu_lol import console

    console.set_quiet(False)  # each run decides again (tests call main() many times in one process)
    try:
        result = cli.main(args=args, prog_name="gpu-lol", standalone_mode=False)
    except GpuLolError as exc:
        _print_error(exc.message, exc.hint)
        return exc.exit_code
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C (and Ctrl-D at a prompt) into Abort; Ctrl-C keeps its exit code 130.
        if isinstance(exc.__context__, KeyboardInterrupt) or isinstance(exc.__cause__, KeyboardInterrupt):
            return _interrupted()
        _safe_echo("Aborted.")
        return EXIT_FAILED
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        _print_error(*_click_error(exc))
        return exc.exit_code if exc.exit_code else EXIT_USAGE
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        if _debug_requested(args):
            raise
        _print_error(f"unexpected error: {type(exc).__name__}: {exc}".splitlines()[0],
                     "run again with --debug for the full traceback, and report it")
        return EXIT_FAILED
    if isinstance(result, int):
        return result
    return 0


def _interrupted() -> int:
    """Ctrl-C: one line, exit 130 (128 + SIGINT); a second Ctrl-C while exiting just ends it."""
    import signal

    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    except (ValueError, OSError):  # not the main thread
        pass
    _safe_echo("interrupted")
    return 130


def _safe_echo(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _quiet_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _click_error(exc: click.ClickException) -> tuple[str, str | None]:
    """A click usage error in our format: one ``error:`` line and a ``hint:``."""
    message = " ".join(exc.format_message().split()) or type(exc).__name__
    message = message[:1].lower() + message[1:] if message[:2] != message[:2].upper() else message
    hint = getattr(exc, "hint", None)
    if hint is None:
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "gpu-lol"
        hint = f"see `{command} --help`"
    return message.rstrip("."), hint


def _print_error(message: str, hint: str | None) -> None:
    try:  # an error line never carries a secret (a key pasted into a flag, a token in a URL)
        from gpu_lol.secrets.redact import redact, secret_env_values

        extra = secret_env_values()
        message = redact(message, extra)
        hint = redact(hint, extra) if hint else hint
    except Exception:  # noqa: BLE001 - printing the error must not fail
        pass
    _safe_echo(f"error: {message}")
    if hint:
        _safe_echo(f"hint: {hint}")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
