"""`gpu-lol init`: write .gpu-lol.yaml from the analysis."""

from __future__ import annotations

import click


@click.command("init")
@click.argument("path", default=".", type=click.Path(file_okay=False, path_type=str))
@click.option("--force", is_flag=True, help="Overwrite an existing .gpu-lol.yaml.")
@click.option("--no-llm", is_flag=True, help="Use heuristics only.")
@click.option("--complete", is_flag=True,
              help="Pin every field (GPU, image, requirements, setup too), as `resume` needs.")
def init_command(path: str, force: bool, no_llm: bool, complete: bool) -> int:
    """Analyze the repo at PATH and write its .gpu-lol.yaml (commit it: it makes launches reproducible).

    It sets the decisions (workload, model and method, providers, autostop, disk, envs, ports) and
    lists the derived fields (GPU, count, VRAM, image, Python, requirements, setup) as comments:
    those follow the repo at every run until you uncomment one. --complete pins them all.
    """
    from pathlib import Path

    from gpu_lol import config_file
    from gpu_lol.analyzer import analyze
    from gpu_lol.console import info
    from gpu_lol.errors import UsageError

    target = Path(path) / config_file.CONFIG_NAME
    if target.exists() and not force:
        raise UsageError(f"{target} already exists; not overwriting it", "pass --force to replace it")
    analysis = analyze(path, use_llm=False if no_llm else None)
    header = "Written by `gpu-lol init` from the repo's analysis. Why each value:\n" + "\n".join(
        f"  {line}" for line in analysis.reasoning[:12])
    decided = None if complete else config_file.DECIDED_FIELDS
    config_file.write(target, analysis.spec, force=force, header=header, decided=decided)
    info(f"wrote {target}" + ("" if complete else
                              " (derived fields are comments: they follow the repo; --complete pins them)"))
    return 0
