"""`gpu-lol init`: write .gpu-lol.yaml from the analysis."""

from __future__ import annotations

import click


@click.command("init")
@click.argument("path", default=".", type=click.Path(file_okay=False, path_type=str))
@click.option("--force", is_flag=True, help="Overwrite an existing .gpu-lol.yaml.")
@click.option("--no-llm", is_flag=True, help="Use heuristics only.")
@click.option("--complete", is_flag=True,
              help="Pin every field (GPU, image, requirements, setup too), as `resume` needs.")
@click.option("--lock", is_flag=True,
              help="Resolve the requirements now and store the exact versions in .gpu-lol-lock.txt "
                   "(setup installs it; the file gets lock: true).")
def init_command(path: str, force: bool, no_llm: bool, complete: bool, lock: bool = False) -> int:
    """Analyze the repo at PATH and write its .gpu-lol.yaml (commit it: it makes launches reproducible).

    It sets the decisions (workload, model and method, providers, autostop, disk, envs, ports) and
    lists the derived fields (GPU, count, VRAM, image, Python, requirements, setup) as comments:
    those follow the repo at every run until you uncomment one. --complete pins them all.
    """
    from pathlib import Path

    from gpu_lol.analyzer import analyze
    from gpu_lol.config import config_file
    from gpu_lol.console import info
    from gpu_lol.errors import UsageError

    target = Path(path) / config_file.CONFIG_NAME
    if target.exists() and not force:
        raise UsageError(f"{target} already exists; not overwriting it", "pass --force to replace it")
    analysis = analyze(path, use_llm=False if no_llm else None)
    if lock:
        _lock(Path(path), analysis, force=force)
    header = "Written by `gpu-lol init` from the repo's analysis. Why each value:\n" + "\n".join(
        f"  {line}" for line in analysis.reasoning[:12])
    # a lock pins the install: its setup is written, and re-running `init --lock` refreshes it
    decided = None if complete else config_file.DECIDED_FIELDS + (("lock", "setup_commands") if lock else ())
    config_file.write(target, analysis.spec, force=force, header=header, decided=decided)
    info(f"wrote {target}" + ("" if complete else
                              " (derived fields are comments: they follow the repo; --complete pins them)"))
    return 0


def _lock(repo, analysis, *, force: bool) -> None:
    """Resolve the setup's requirements and write the lock beside .gpu-lol.yaml."""
    from gpu_lol.console import info, warn
    from gpu_lol.errors import OperationError, UsageError
    from gpu_lol.launch import resolve
    from gpu_lol.paths import write_private

    spec = analysis.spec
    lock_path = repo / resolve.LOCK_FILE
    if lock_path.exists() and not force:
        raise UsageError(f"{lock_path} already exists; not overwriting it", "pass --force to replace it")
    check = resolve.check_spec(spec, repo, may_change_image="base_image" not in analysis.config_fields)
    res = check.resolution
    if res.status != "ok":
        raise OperationError(f"cannot lock: {res.summary()}",
                             "retry when the package index is reachable, or run `gpu-lol init` without --lock")
    if check.image_changed_from is not None:
        spec.base_image, spec.python_version = check.image, check.python
    base = list(spec.setup_commands)
    if not base and spec.requirements:
        from gpu_lol.launch.skypilot import pip_install_command

        base = [pip_install_command(spec.requirements)]
    spec.setup_commands = resolve.locked_setup(base, res, resolve.pip_installs(base), inline=False)
    spec.lock = True
    write_private(lock_path, resolve.lock_text(res))
    lock_path.chmod(0o644)  # a file to commit, like requirements.txt
    for message in check.warnings:
        warn(message)
    info(f"wrote {lock_path} ({len(res.lock)} exact pins for Python {res.python})")
