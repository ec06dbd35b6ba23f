"""``gpu-lol snapshot [NAME | --local] [-o FILE] [--force]``: a running machine -> .gpu-lol.yaml."""

from __future__ import annotations

import click


@click.command("snapshot")
@click.argument("name", required=False)
@click.option("--local", is_flag=True, help="Snapshot this machine instead of a cluster or host.")
@click.option("-o", "--output", metavar="FILE",
              help="Where to write (default: .gpu-lol.yaml of the repo; '-' prints it).")
@click.option("--force", is_flag=True, help="Overwrite FILE without asking.")
def snapshot_command(name: str | None, local: bool, output: str | None, force: bool) -> int:
    """Turn a running machine into a .gpu-lol.yaml: GPU, Python, exact package pins.

    Shows a diff against the existing file and writes only after you confirm (or --force).
    """
    import sys
    from pathlib import Path

    from gpu_lol.config import config_file
    from gpu_lol.console import confirm, info
    from gpu_lol.errors import UsageError
    from gpu_lol.launch import state
    from gpu_lol.machine import snapshot

    if local and name:
        raise UsageError("give a NAME or --local, not both", "gpu-lol snapshot --local snapshots this machine")
    target = None if local else state.resolve(name)
    snap = snapshot.take(target, repo=Path.cwd() if local else None)
    for note in snap.notes:
        info(f"note: {note}")
    text = snap.yaml()
    if output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    if output:
        path = Path(output).expanduser()
    else:
        repo = Path(target.repo) if target is not None and Path(target.repo).is_dir() else Path.cwd()
        path = repo / config_file.CONFIG_NAME
    if path.exists():
        if path.is_dir():
            raise UsageError(f"{path} is a directory", "pass a file name with -o")
        if snapshot.unchanged(snap, path):
            info(f"{path} already matches {snap.where}; nothing to write")
            return 0
        _show_diff(snapshot.diff(path, text))
        if not force and not confirm(f"Overwrite {path}?", default=False):
            raise UsageError(f"{path} exists; not overwriting it",
                             "review the diff above, then pass --force (or -o another file)")
    config_file.write(path, snap.spec, force=True, header=snap.header)
    info(f"wrote {path} ({len(snap.spec.requirements)} pinned packages) from {snap.where}")
    return 0


def _show_diff(diff: str) -> None:
    from rich.text import Text

    from gpu_lol.console import stdout

    console = stdout()
    for line in diff.splitlines():
        style = "green" if line.startswith("+") and not line.startswith("+++") else \
            "red" if line.startswith("-") and not line.startswith("---") else \
            "cyan" if line.startswith("@@") else ""
        console.print(Text(line, style=style))
