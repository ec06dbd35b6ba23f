"""``gpu-lol pull`` / ``push``: copy files between here and a cluster or host (rsync over SSH).

NAME is optional: with one path (pull REMOTE, push LOCAL) or when the first word is not a known
target, the target is the one launched from the current repo. See :mod:`gpu_lol.machine.transfer`.
"""

from __future__ import annotations

import click

_CTX = {"help_option_names": ["-h", "--help"]}


def _split(words: tuple[str, ...], command: str, first: str, second: str):
    """([NAME] A [B]) -> (target, A, B): with two words the first is NAME only when a target
    of that name exists (otherwise it is A and the second is B)."""
    from gpu_lol.errors import UsageError
    from gpu_lol.launch import state

    words = tuple(words)
    usage = f"gpu-lol {command} [NAME] {first} [{second}]"
    if not words:
        raise UsageError(f"{command} needs a {first} path", f"usage: {usage}")
    if len(words) > 3:
        raise UsageError(f"{command} takes at most 3 arguments ([NAME] {first} [{second}])",
                         "quote paths that hold spaces; rsync patterns go in --exclude")
    name = None
    if len(words) == 3:
        name, words = words[0], words[1:]
    elif len(words) == 2 and _is_target(words[0]):
        name, words = words[0], words[1:]
    target = state.resolve(name)
    return target, words[0], (words[1] if len(words) > 1 else None)


def _is_target(word: str) -> bool:
    from gpu_lol.errors import UsageError
    from gpu_lol.launch import state

    try:
        return state.load(state.check_name(word)) is not None
    except UsageError:
        return False


_OPTIONS = [
    click.option("-n", "--dry-run", is_flag=True, help="Show what would be copied; copy nothing."),
    click.option("--force", is_flag=True, help="Overwrite files that are newer than the copies coming in."),
    click.option("--exclude", "excludes", multiple=True, metavar="PATTERN",
                 help="Skip files matching PATTERN (rsync syntax; repeatable)."),
    click.option("--progress/--no-progress", default=None,
                 help="Show rsync's progress line (default: on a terminal)."),
]


def _with_options(func):
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


@click.command("pull", context_settings=_CTX)
@click.argument("words", nargs=-1, metavar="[NAME] REMOTE [LOCAL]")
@_with_options
def pull_command(words: tuple[str, ...], dry_run: bool, force: bool, excludes: tuple[str, ...],
                 progress: bool | None) -> int:
    """Copy results back: REMOTE (relative = in the workdir) from the machine to LOCAL.

    \b
      gpu-lol pull outputs                 -> outputs/ in the local repo (same place)
      gpu-lol pull mybox ckpt/last.pt .    -> ./last.pt
      gpu-lol pull outputs/ ~/runs/r1      -> what is inside outputs/ into ~/runs/r1
      gpu-lol pull -n outputs              what would be copied

    Resumable (run it again after an interruption); never deletes; a file here that is newer
    than the incoming one is overwritten only after a confirmation or --force.
    """
    from gpu_lol.machine import transfer

    target, remote_path, local = _split(words, "pull", "REMOTE", "LOCAL")
    transfer.pull(target, remote_path, local, dry_run=dry_run, force=force, excludes=excludes,
                  progress=progress)
    return 0


@click.command("push", context_settings=_CTX)
@click.argument("words", nargs=-1, metavar="[NAME] LOCAL [REMOTE]")
@_with_options
def push_command(words: tuple[str, ...], dry_run: bool, force: bool, excludes: tuple[str, ...],
                 progress: bool | None) -> int:
    """Copy LOCAL to the machine: to REMOTE (relative = in the workdir), by default to the same
    place in the workdir as in the repo.

    \b
      gpu-lol push data/train.csv          -> <workdir>/data/train.csv
      gpu-lol push ~/datasets/imgs data/   -> <workdir>/data/imgs
      gpu-lol push mybox weights.pt /scratch/

    Resumable; never deletes; a remote file newer than the local one is overwritten only after a
    confirmation or --force.
    """
    from gpu_lol.machine import transfer

    target, local, remote_path = _split(words, "push", "LOCAL", "REMOTE")
    transfer.push(target, local, remote_path, dry_run=dry_run, force=force, excludes=excludes,
                  progress=progress)
    return 0
