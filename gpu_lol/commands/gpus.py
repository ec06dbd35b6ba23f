"""`gpu-lol gpus`: the GPU catalog with memory, providers and prices."""

from __future__ import annotations

import click

PROVIDER_CHOICES = ("runpod", "vast", "lambda")


@click.command("gpus")
@click.option("--min-vram", type=float, metavar="GB", help="Only cards with at least this much memory.")
@click.option("--provider", "-p", "providers", multiple=True, type=click.Choice(PROVIDER_CHOICES),
              help="Only these providers (repeatable; default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def gpus_command(min_vram: float | None, providers: tuple[str, ...], as_json: bool) -> int:
    """List the GPUs gpu-lol can pick: memory, providers (and their names for the card), $/hr."""
    from gpu_lol.errors import UsageError
    from gpu_lol.sizing.catalog import catalog_rows

    if min_vram is not None and min_vram < 0:
        raise UsageError(f"--min-vram must be 0 or more, got {min_vram:g}")
    rows = catalog_rows(list(providers) or None, min_vram=min_vram)
    if as_json:
        from gpu_lol.console import print_json

        print_json(rows)
        return 0
    if not rows:
        from gpu_lol.console import info

        info("no GPU in the catalog matches" + (f" --min-vram {min_vram:g}" if min_vram else ""))
        return 0
    _render(rows)
    return 0


def _render(rows: list[dict]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from gpu_lol.console import stdout

    sources = sorted({row["price_source"] for row in rows if row["price_source"]})
    mixed = len(sources) > 1
    table = Table(show_edge=False)
    table.add_column("GPU", style="bold", no_wrap=True)
    table.add_column("VRAM", justify="right", no_wrap=True)
    table.add_column("$/hr", justify="right", no_wrap=True)
    table.add_column("providers (SkyPilot name)")
    table.add_column("counts", justify="right", no_wrap=True)
    if mixed:
        table.add_column("price", style="dim", no_wrap=True)
    for row in rows:
        per = row.get("counts_by_provider") or {}

        def only(p: str) -> str:  # a cloud that rents fewer counts than the column shows
            mine = per.get(p) or row["counts"]
            return f" [{','.join(map(str, mine))} only]" if mine != row["counts"] else ""

        names = ", ".join((f"{p} ({n})" if n != row["id"] else p) + only(p)
                          for p, n in row["provider_names"].items())
        if row["not_offered"]:
            names = (names + "; " if names else "") + "[dim]not in cached catalog: " + \
                ", ".join(row["not_offered"]) + "[/]"
        price = f"${row['price_hr']:,.2f}" if row["price_hr"] is not None else "-"
        counts = ",".join(str(c) for c in row["counts"]) or "-"
        cells = [escape(row["id"]), f"{row['vram_gb']:g} GiB", price, names, counts]
        if mixed:
            src = row["price_source"] or ""
            cells.append("built-in" if src.startswith("built-in") else "catalog" if src else "-")
        table.add_row(*cells)
    out = stdout()
    out.print(table)
    out.print(f"[dim]$/hr: cheapest on-demand price of one card; prices from "
              f"{escape(' and '.join(sources) or 'nowhere')}[/]", soft_wrap=True)
