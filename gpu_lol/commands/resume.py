"""``gpu-lol resume [SPEC]``: launch exactly what a ``.gpu-lol.yaml`` says, skipping analysis.

The workdir is the directory holding the spec file, never the current directory by accident.
"""

from __future__ import annotations

from pathlib import Path

import click

from gpu_lol.commands.up import launch_flags


@click.command("resume", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("spec_path", metavar="[SPEC]", required=False, type=click.Path(path_type=Path))
@launch_flags
def resume_command(spec_path: Path | None, dry_run: bool, as_json: bool, yes: bool, name: str | None,
                   detach: bool, envs: tuple[str, ...], provision_timeout: float = 15.0) -> int:
    """Launch exactly what .gpu-lol.yaml says (no analysis, no overrides).

    \b
    SPEC is a .gpu-lol.yaml file or a directory holding one (default: ./.gpu-lol.yaml).
    The repo synced to the machine is the directory of that file.

    \b
    Examples:
      gpu-lol resume --dry-run
      gpu-lol resume ~/code/myrepo/.gpu-lol.yaml -y
    """
    from gpu_lol.commands.up import plan_and_launch
    from gpu_lol.launch import LaunchOptions, load_spec_file

    spec_file, spec = load_spec_file(spec_path)
    options = LaunchOptions(name=name, envs=list(envs), detach=detach, auto_template=False, keep_image=True,
                            provision_timeout_min=provision_timeout or None)
    return plan_and_launch(spec_file.parent, spec, options, dry_run=dry_run, as_json=as_json, yes=yes)
