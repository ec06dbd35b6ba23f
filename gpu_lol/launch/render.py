"""Rich rendering of library results (imported only by commands that draw something)."""

from __future__ import annotations

from gpu_lol.analyzer.result import Analysis


def _gpu_line(analysis: Analysis) -> str:
    spec = analysis.spec
    if spec.is_cpu:
        return "none (cpu workload)"
    from gpu_lol.sizing.catalog import get_gpu

    card = get_gpu(spec.gpu_type) if spec.gpu_type else None
    vram = f" ({card.vram_gb:.0f} GB each)" if card else ""
    return f"{spec.gpu_type} x {spec.gpu_count}{vram}"


def analysis_panel(analysis: Analysis) -> None:
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    from gpu_lol.console import stdout

    spec = analysis.spec
    con = stdout()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column()
    grid.add_row("workload", spec.workload_type)
    grid.add_row("GPU", escape(_gpu_line(analysis)))
    if not spec.is_cpu:
        grid.add_row("VRAM needed", f"{spec.vram_required_gb:g} GB per GPU")
    model = spec.model
    if model.name or model.params_b:
        size = f" ({model.params_b:g}B)" if model.params_b else ""
        grid.add_row("model", escape(f"{model.name or '?'}{size}, {model.method or '?'}"))
    grid.add_row("image", escape(spec.base_image))
    grid.add_row("python", spec.python_version or "image default")
    reqs = spec.requirements
    shown = ", ".join(reqs[:8]) + (f", … (+{len(reqs) - 8})" if len(reqs) > 8 else "")
    grid.add_row("packages", escape(shown or "none declared"))
    from gpu_lol.launch import _lock_display

    for i, cmd in enumerate(spec.setup_commands):
        cmd = _lock_display(cmd)
        text = cmd if len(cmd) <= 160 else cmd[:157] + "..."
        grid.add_row("setup" if i == 0 else "", escape(text))
    if spec.ports:
        grid.add_row("ports", ", ".join(map(str, spec.ports)))
    grid.add_row("source", analysis.source + (f" ({', '.join(analysis.config_fields)})" if analysis.config_fields else ""))
    con.print(Panel(grid, title=f"gpu-lol analyze: {escape(analysis.repo)}", expand=False))
    if analysis.confidence:
        levels = ", ".join(f"{k} {v}" for k, v in analysis.confidence.items() if k != "overall")
        con.print(f"[bold]confidence[/bold]: {analysis.confidence.get('overall', '?')} ({escape(levels)})")
    if analysis.reasoning:
        con.print("[bold]why[/bold]")
        hanging(con, [("  •", line) for line in analysis.reasoning])
    if len(analysis.paths) > 1:
        con.print("[bold]paths[/bold] (plan another with --path N)")
        rows = []
        for p in analysis.paths:
            gpu = "no GPU" if not p.get("gpu_count") else f"{p['gpu_count']}x {p['gpu_type']}"
            price = f", ${p['price_hr']:.2f}/hr" if p.get("price_hr") else ""
            mark = "*" if p.get("chosen") else " "
            what = p.get("command") or "(main path)"
            if not p.get("fits", True):
                gpu += " (does not fit)"
            rows.append((f" {mark}{p['index']}:", f"{p['workload_type']}, {gpu}{price}, "
                         f"{p['vram_required_gb']:g} GB/GPU — {what}"
                         + (f" ({p['evidence']})" if p.get("evidence") else "")))
        hanging(con, rows)
    warnings(con, analysis.warnings)


def hanging(con, rows, *, head_style: str | None = None) -> None:
    """Lines as ``HEAD text``, a long text wrapped under its own start (not flush left):

    \b
      • setup: resolved 12 packages for Python 3.11 with uv; torch 2.4
        comes from the image
    """
    from rich.text import Text

    rows = list(rows)
    width = max((len(head) for head, _ in rows), default=0)
    room = max(20, con.width - width - 1)
    for head, text in rows:
        # Text: the repo's words are never rich markup; wrapped here (words, long ones folded)
        # so each line is printed as is: no flush-left continuation, no trailing padding
        lines = Text(text).wrap(con, room, overflow="fold") or [Text("")]
        for i, line in enumerate(lines):
            line.rstrip()
            lead = Text(head.ljust(width), style=head_style or "") if i == 0 else Text(" " * width)
            con.print(Text.assemble(lead, " ", line), soft_wrap=True)


def warnings(con, messages) -> None:
    """``warning: ...`` lines, wrapped under the message."""
    hanging(con, [("warning:", m) for m in messages], head_style="yellow")
