"""``gpu-lol ssh`` / ``exec`` / ``logs``: work on a cluster or host over SSH.

NAME defaults to the cluster or host launched from the current repo. The transport (argv,
multiplexing, quoting, exit codes, Ctrl-C) is :mod:`gpu_lol.machine.remote`.
"""

from __future__ import annotations

import sys

import click

_AFTER = "gpu_lol.after_dashdash"


class DashDashCommand(click.Command):
    """A command whose words after ``--`` are a remote command, kept out of click's parsing."""

    command_metavar = "-- CMD..."

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = list(args)
        if "--" in args:
            i = args.index("--")
            ctx.meta[_AFTER] = args[i + 1:]
            args = args[:i]
        else:
            ctx.meta[_AFTER] = None
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return super().collect_usage_pieces(ctx) + [self.command_metavar]


def _command_after_dashdash(ctx: click.Context) -> list[str] | None:
    return ctx.meta.get(_AFTER)


class _OptionalCommand(DashDashCommand):
    command_metavar = "[-- CMD...]"


@click.command("ssh", cls=_OptionalCommand)
@click.argument("name", required=False)
@click.option("--print", "print_only", is_flag=True,
              help="Print the ssh command line (for scripts, editors) instead of connecting.")
@click.option("-L", "--forward", "forwards", multiple=True, metavar="PORT[:REMOTE]",
              help="Forward 127.0.0.1:PORT here to PORT (or REMOTE) on the machine (repeatable).")
@click.pass_context
def ssh_command(ctx: click.Context, name: str | None, print_only: bool, forwards: tuple[str, ...]) -> int:
    """Open a shell on a cluster or host, in the workdir.

    \b
      gpu-lol ssh                 a login shell in the workdir (venv active on a host)
      gpu-lol ssh mybox -- htop   run one program with a terminal
      gpu-lol ssh -L 8888         the shell, with localhost:8888 forwarded to the machine's 8888
      gpu-lol ssh --print         the plain ssh command gpu-lol uses
    """
    import shlex

    from gpu_lol.launch import state
    from gpu_lol.machine import remote

    pairs = [remote.parse_forward(f) for f in forwards]
    target = state.resolve(name)
    if print_only:
        argv = remote.ssh_argv(target, interactive=True)
        argv = argv[:-1] + remote.forward_options(pairs) + argv[-1:]
        click.echo(" ".join(shlex.quote(part) for part in argv))
        return 0
    command = _command_after_dashdash(ctx)
    return remote.run(target, command or "", tty=True, forwards=pairs)


@click.command("forward")
@click.argument("args", nargs=-1, required=True, metavar="[NAME] PORT[:REMOTE]...")
def forward_command(args: tuple[str, ...]) -> int:
    """Forward ports from this machine to a cluster or host over SSH (until Ctrl-C).

    \b
      gpu-lol forward 8888            localhost:8888 -> 8888 on this repo's machine
      gpu-lol forward mybox 6006 18888:8888
    Works on every provider: nothing is opened to the internet (no port mapping, no firewall).
    """
    import re

    from gpu_lol.console import info
    from gpu_lol.launch import state
    from gpu_lol.machine import remote

    words = list(args)
    name = None
    if words and not (re.fullmatch(r"\d+(:\d+)?", words[0]) and state.load(words[0]) is None):
        name = words.pop(0)
    pairs = [remote.parse_forward(w) for w in words]
    target = state.resolve(name)
    return remote.forward(target, pairs, announce=info)


@click.command("exec", cls=DashDashCommand)
@click.argument("name", required=False)
@click.option("--sync", is_flag=True, help="Copy the repo to the workdir first (honours .gitignore/.skyignore).")
@click.option("-t/-T", "--tty/--no-tty", "tty", default=None,
              help="Force or disable a terminal (default: when stdin and stdout are terminals).")
@click.option("-d", "--detach", is_flag=True,
              help="Clusters: submit as a SkyPilot job (autostop waits for it) and return; "
                   "same as `gpu-lol run --detach`.")
@click.pass_context
def exec_command(ctx: click.Context, name: str | None, sync: bool, tty: bool | None, detach: bool) -> int:
    """Run a command on a cluster or host, inline, in the workdir; exits with its exit code.

    \b
      gpu-lol exec -- nvidia-smi
      gpu-lol exec mybox -- python train.py --lr 3e-4   several words: each passed as is
      gpu-lol exec -- "python train.py | tee log"       one word: a shell command line
      gpu-lol exec --sync -- python train.py            copy the repo first
      gpu-lol exec --detach -- python train.py          a SkyPilot job; follow with gpu-lol logs

    Without a terminal the cluster is held busy (a keep-alive SSH session) while the command
    runs; for work that must outlive your connection use `gpu-lol run`.
    """
    from gpu_lol.launch import state
    from gpu_lol.machine import remote

    command = _require_command(ctx, name, "exec")
    target = state.resolve(name)
    if detach:
        from gpu_lol.machine import jobs

        return jobs.run(target, command, detach=True)
    if tty is None:
        tty = sys.stdin.isatty() and sys.stdout.isatty()
    return remote.run(target, command, tty=tty, sync=sync)


def _require_command(ctx: click.Context, name: str | None, verb: str) -> list[str]:
    from gpu_lol.errors import UsageError
    from gpu_lol.launch import state

    command = _command_after_dashdash(ctx)
    if not command:
        example = "nvidia-smi" if verb == "exec" else "python train.py"
        hint = f"put the command after --, e.g. gpu-lol {verb} -- {example}"
        if name and (not _valid_name(name) or state.load(name) is None):
            hint = f"put the command after --, e.g. gpu-lol {verb} -- {name}"
        raise UsageError("no command given", hint)
    return command


@click.command("run", cls=DashDashCommand)
@click.argument("name", required=False)
@click.option("-d", "--detach", is_flag=True, help="Return once the job is queued (prints its id).")
@click.option("--no-sync", "no_sync", is_flag=True,
              help="Do not sync the repo first (use the copy already on the machine).")
@click.pass_context
def run_command(ctx: click.Context, name: str | None, detach: bool, no_sync: bool) -> int:
    """Run a command as a SkyPilot job: autostop waits for it, it outlives your connection.

    \b
      gpu-lol run -- python train.py       sync the repo, run, stream the log, exit with its code
      gpu-lol run -d -- python train.py    queue it and return; gpu-lol logs NAME JOB follows it

    Ctrl-C stops following, not the job (`sky cancel NAME JOB` stops it). On your own host
    (no job queue, no autostop) the command runs inline, as `gpu-lol exec`.
    """
    from gpu_lol.console import info
    from gpu_lol.errors import UsageError
    from gpu_lol.launch import state
    from gpu_lol.machine import jobs, remote

    command = _require_command(ctx, name, "run")
    target = state.resolve(name)
    if target.kind == state.KIND_HOST:
        if detach:
            raise UsageError(f"'{target.name}' is your own host: it has no job queue to detach into",
                             "run it inline (`gpu-lol run` without -d), or in tmux on the host")
        info(f"note: {target.name} is your own host (no autostop); running inline")
        return remote.run(target, command, tty=False, sync=not no_sync)
    return jobs.run(target, command, detach=detach, sync=not no_sync)


def _valid_name(name: str) -> bool:
    from gpu_lol.errors import UsageError
    from gpu_lol.launch import state

    try:
        state.check_name(name)
    except UsageError:
        return False
    return True


@click.command("logs")
@click.argument("name", required=False)
@click.argument("job", required=False, type=click.IntRange(min=1))
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C to stop).")
@click.option("-n", "--tail", type=click.IntRange(min=0), default=0, metavar="N",
              help="Only the last N lines.")
@click.option("--provision", is_flag=True, help="Clusters: SkyPilot's provisioning log instead of the job log.")
def logs_command(name: str | None, job: int | None, follow: bool, tail: int, provision: bool) -> int:
    """Show setup and job logs.

    A host target shows its setup log; a cluster shows its latest SkyPilot job (setup and run
    output), or job JOB (a `gpu-lol run` job; `gpu-lol logs 3` is job 3 of this repo's
    cluster), or with --provision how the machine was provisioned. For a job the exit status
    is SkyPilot's: 0 succeeded, 100 failed, 101 not finished, 102 not found, 103 cancelled.
    """
    from gpu_lol.console import info
    from gpu_lol.errors import UsageError
    from gpu_lol.launch import state
    from gpu_lol.machine import remote

    if name and job is None and name.isdigit() and state.load(name) is None:
        name, job = None, int(name)  # `gpu-lol logs 3`: a job of this repo's cluster
    target = state.resolve(name)
    if provision and target.kind == state.KIND_HOST:
        info("note: a host is not provisioned; showing its setup log")
    if job is not None and target.kind == state.KIND_HOST:
        raise UsageError(f"'{target.name}' is your own host: it has no SkyPilot jobs",
                         f"`gpu-lol logs {target.name}` shows its setup log")
    return remote.stream_logs(target, follow=follow, tail=tail, provision=provision, job_id=job)
