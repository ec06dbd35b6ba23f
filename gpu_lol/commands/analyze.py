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
    resolution = _resolve_setup(analysis)
    if as_json:
        from gpu_lol.console import print_json

        out = analysis.to_json()
        if resolution is not None:
            out["resolution"] = resolution
        print_json(out)
        return 0
    from gpu_lol.launch.render import analysis_panel

    analysis_panel(analysis)
    return 0


def _resolve_setup(analysis):
    """The setup section, resolved for the image's Python (see gpu_lol.launch.resolve); a conflict is
    a warning here (``up`` refuses it)."""
    from pathlib import Path

    from gpu_lol.errors import OperationError
    from gpu_lol.launch import resolve

    spec = analysis.spec
    try:
        check = resolve.check_spec(spec, Path(analysis.repo),
                                   may_change_image="base_image" not in analysis.config_fields)
    except OperationError as exc:
        analysis.warnings.append(f"{exc.message if hasattr(exc, 'message') else exc}"
                                 + (f" (fix: {exc.hint})" if exc.hint else ""))
        return {"status": "conflict", "summary": str(exc), "hint": exc.hint}
    res = check.resolution
    if res.status == "skipped":
        return None
    if check.image_changed_from is not None:
        spec.base_image, spec.python_version = check.image, check.python
    spec.setup_commands = check.setup_commands
    analysis.reasoning.append(f"setup: {res.summary()}")
    analysis.reasoning.extend(f"setup: {note}" for note in check.notes)
    analysis.warnings.extend(check.warnings)
    return {**res.to_dict(), "summary": res.summary(), "notes": list(check.notes)}
