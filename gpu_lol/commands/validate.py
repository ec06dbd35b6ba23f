"""``gpu-lol validate [NAME | --local] [--json]``: check a machine against its spec."""

from __future__ import annotations

import click


@click.command("validate")
@click.argument("name", required=False)
@click.option("--local", is_flag=True, help="Check this machine (the spec from .gpu-lol.yaml or the analysis).")
@click.option("--json", "as_json", is_flag=True, help="Print the checks and the probe's facts as JSON.")
def validate_command(name: str | None, local: bool, as_json: bool) -> int:
    """Check that a machine matches the spec: GPU, VRAM, torch, CUDA, packages, code, disk.

    Exits 1 when any check fails.
    """
    from pathlib import Path

    from gpu_lol.console import print_json
    from gpu_lol.errors import UsageError
    from gpu_lol.launch import state
    from gpu_lol.machine import validator

    if local and name:
        raise UsageError("give a NAME or --local, not both", "gpu-lol validate --local checks this machine")
    target = None if local else state.resolve(name)
    result = validator.validate(target, repo=Path.cwd() if local else None)
    if as_json:
        print_json(result.to_dict())
    else:
        render(result)
    return 0 if result.ok else 1


def render(result) -> None:
    from rich.table import Table
    from rich.text import Text

    from gpu_lol.console import stdout
    from gpu_lol.machine.probe_facts import gpu_summary

    console = stdout()
    where = result.target or "this machine"
    console.print(Text(f"{where}: {gpu_summary(result.facts)}; spec from {result.spec_source}"))
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column()
    styles = {"pass": ("ok", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "red bold")}
    for check in result.checks:
        label, style = styles.get(check.status, (check.status, ""))
        table.add_row(Text(label, style=style), Text(check.name), Text(check.reason))
    console.print(table)
    counts = result.counts()
    console.print(Text(f"{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed",
                       style="green" if result.ok else "red"))
