"""``gpu-lol templates [--filter TEXT]``: the user's RunPod pod templates (over :mod:`gpu_lol.launch.runpod_api`)."""

from __future__ import annotations

import click


@click.command("templates", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--filter", "text", metavar="TEXT", help="Only templates whose name, image or id contains TEXT.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def templates_command(text: str | None, as_json: bool) -> int:
    """List your RunPod pod templates (pin one with `gpu-lol up --template NAME_OR_ID`).

    \b
    The key comes from RUNPOD_API_KEY or ~/.runpod/config.toml. `up` picks a template on its own
    when its image runs the same torch and CUDA as the spec (a cached image boots faster);
    GPU_LOL_TEMPLATE_PATTERN prefers templates whose name matches it.
    """
    from gpu_lol.console import info, print_json
    from gpu_lol.launch import runpod_api

    templates = runpod_api.filter_templates(runpod_api.list_templates(), text)
    if as_json:
        print_json([dict(t.to_dict(), torch=v[0], cuda=v[1])
                    for t, v in ((t, runpod_api.image_versions(t.image)) for t in templates)])
        return 0
    if not templates:
        info("No pod templates" + (f" matching '{text}'" if text else "") + ".")
        return 0
    from rich.markup import escape
    from rich.table import Table

    from gpu_lol.console import stdout

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "NAME", "IMAGE", "TORCH", "CUDA", "DISK"):
        table.add_column(column, overflow="fold")
    for t in templates:
        torch, cuda = runpod_api.image_versions(t.image)
        table.add_row(escape(t.id), escape(t.name), escape(t.image), runpod_api.dotted(torch) if torch else "-", cuda or "-",
                      f"{t.container_disk_gb} GB" if t.container_disk_gb is not None else "-")
    stdout().print(table)
    return 0
