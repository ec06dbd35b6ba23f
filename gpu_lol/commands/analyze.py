"""`gpu-lol analyze`: what the repo needs, and why."""

from __future__ import annotations

import click


@click.command("analyze")
@click.argument("path", default=".", type=click.Path(file_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the panel.")
@click.option("--no-llm", is_flag=True, help="Use heuristics only, even when an LLM endpoint is configured.")
@click.option("--path", "main_path", type=click.IntRange(min=0), default=0, metavar="N",
              help="Plan alternative path N (listed under 'paths'; 0, the default, is the README's main path).")
def analyze_command(path: str, as_json: bool, no_llm: bool, main_path: int) -> int:
    """Read the repo at PATH (default: here) and show its workload, GPU, image, packages and evidence."""
    from gpu_lol.analyzer import analyze

    analysis = analyze(path, use_llm=False if no_llm else None, main_path=main_path)
    if as_json:
        from gpu_lol.console import print_json

        print_json(analysis.to_json())
        return 0
    from gpu_lol.render import analysis_panel

    analysis_panel(analysis)
    return 0
