"""``gpu-lol up [PATH]``: analyze -> plan -> confirm -> launch through SkyPilot (or your own host).

Thin: the plan and the launch are :mod:`gpu_lol.launch`; this module parses flags and renders.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


def _port(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a port number") from None


def launch_flags(func):
    """Flags shared by ``up`` and ``resume`` (how to launch, not what)."""
    options = [
        click.option("--dry-run", is_flag=True, help="Show the plan and price; launch nothing."),
        click.option("--json", "as_json", is_flag=True,
                     help="JSON output (with --dry-run: spec, task, cost_per_hour, cluster_name...)."),
        click.option("-y", "--yes", is_flag=True, help="Launch without asking."),
        click.option("-n", "--name", help="Cluster name (default: gpu-lol-<repo dir>)."),
        click.option("--detach", is_flag=True,
                     help="Submit the launch and return; follow it with `sky api logs`."),
        click.option("--env", "envs", multiple=True, metavar="KEY=VALUE",
                     help="Environment variable on the machine (repeatable); KEY alone takes the value "
                          "from your shell. Secret-looking names go as SkyPilot secrets."),
        click.option("--provision-timeout", "provision_timeout", type=click.FloatRange(min=0), default=15.0,
                     show_default=True, metavar="MINUTES",
                     help="Cancel and tear down a launch still provisioning after this many minutes (0: wait)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command("up", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("path", default=".", type=click.Path(file_okay=False, path_type=Path))
@launch_flags
@click.option("--gpu", help="GPU type (see `gpu-lol gpus`), overriding the analysis.")
@click.option("--gpus", type=int, help="Number of GPUs.")
@click.option("--idle-minutes", type=int,
              help="Tear down (or stop) after this many idle minutes (default 60; 0 = never, with a warning).")
@click.option("--spot/--no-spot", default=None, help="Use spot/interruptible instances (or not).")
@click.option("--assets", multiple=True, metavar="SRC:DEST",
              help="Link DEST on the machine to SRC (a network volume path), or upload a ./SRC (repeatable).")
@click.option("--template", metavar="NAME_OR_ID",
              help="Launch from this RunPod template's image ('none': no automatic template).")
@click.option("--port", "ports", multiple=True, metavar="PORT", help="Open a port (repeatable).")
@click.option("--cloud", "clouds", multiple=True, metavar="PROVIDER",
              help="Only these providers: runpod, vast, lambda (repeatable or comma-separated).")
@click.option("--no-llm", is_flag=True, help="Heuristics only: do not ask the LLM.")
@click.option("--host", metavar="USER@HOST[:PORT]", help="Use your own GPU machine over SSH instead.")
@click.option("--identity", metavar="KEY", help="SSH private key for --host.")
@click.option("--workdir", metavar="PATH", help="Directory on --host for the repo (default under ~/).")
@click.option("--path", "main_path", type=click.IntRange(min=0), default=0, metavar="N",
              help="Launch alternative path N of `gpu-lol analyze` (0, the default, is the README's main path).")
@click.option("--yes-expensive", is_flag=True,
              help="With -y, also launch a low-confidence plan that costs more than a modest budget.")
def up_command(path: Path, dry_run: bool, as_json: bool, yes: bool, name: str | None, detach: bool,
               envs: tuple[str, ...], gpu: str | None, gpus: int | None, idle_minutes: int | None,
               spot: bool | None, assets: tuple[str, ...], template: str | None, ports: tuple[str, ...],
               clouds: tuple[str, ...], no_llm: bool, host: str | None, identity: str | None,
               workdir: str | None, provision_timeout: float = 15.0, main_path: int = 0,
               yes_expensive: bool = False) -> int:
    """Launch a GPU machine that fits this repo.

    \b
    Reads the repo (or its .gpu-lol.yaml), shows the plan and its price, asks, then launches
    through SkyPilot on the cheapest available provider and records the cluster.

    \b
    Examples:
      gpu-lol up --dry-run             the plan and price, launch nothing
      gpu-lol up -y                    launch without asking
      gpu-lol up --gpu H100 --gpus 2   override the GPU
      gpu-lol up --host me@box         use your own GPU machine
    """
    from gpu_lol.errors import UsageError
    from gpu_lol.launch import LaunchOptions

    repo = path.resolve()
    if not repo.is_dir():
        raise UsageError(f"{path} is not a directory")
    if (identity or workdir) and host is None:
        raise UsageError("--identity and --workdir only apply with --host")
    if host is not None:  # checked before the analysis; `--host ''` is not "no host"
        from gpu_lol.machine.hosts import check_workdir, parse_host

        parse_host(host)
        if workdir is not None:
            check_workdir(workdir)
    options = LaunchOptions(
        gpu=gpu, gpus=gpus, name=name, idle_minutes=idle_minutes, spot=spot, assets=list(assets),
        template=template, envs=list(envs), ports=[_port(p) for p in ports], clouds=list(clouds),
        detach=detach, provision_timeout_min=provision_timeout or None)
    from gpu_lol.launch import check_options

    check_options(options)  # bad flags fail before the analysis (and any LLM call)
    analysis = analyzed(repo, use_llm=not no_llm, quiet=as_json, main_path=main_path, options=options)
    spec = analysis.spec
    if host:
        return _up_host(repo, spec, options, host=host, identity=identity, workdir=workdir,
                        dry_run=dry_run, as_json=as_json, yes=yes)
    return plan_and_launch(repo, spec, options, dry_run=dry_run, as_json=as_json, yes=yes,
                           analysis=analysis, yes_expensive=yes_expensive)


def analyzed(repo: Path, *, use_llm: bool, quiet: bool, main_path: int = 0, options=None):
    """The repo's analysis (which applies .gpu-lol.yaml); warnings on stderr."""
    from gpu_lol.analyzer import analyze
    from gpu_lol.console import warn

    # --gpu/--gpus are sized like the file's fields: the memory per GPU and the warnings are those
    # of the machine that launches, and one verdict with one fix covers them (gpu_lol.sizing.gpu_fix)
    fields = {}
    if options is not None and options.gpu:
        from gpu_lol.launch import resolve_gpu

        fields["gpu_type"] = resolve_gpu(options.gpu)
    if options is not None and options.gpus is not None:
        fields["gpu_count"] = options.gpus
    analysis = analyze(repo, use_llm=use_llm, main_path=main_path, fields=fields or None)
    if options is not None and "base_image" in analysis.config_fields:
        options.keep_image = True  # the user's image: a conflict is refused, not switched
    from gpu_lol.analyzer import NO_PYTHON_WARNING

    if analysis.warnings and analysis.warnings[0] == NO_PYTHON_WARNING.format(root=repo.resolve()):
        from gpu_lol.errors import UsageError

        raise UsageError(f"{repo} has no Python code, notebook or package file: nothing to launch",
                         "cd into the repo (or pass its path), or write .gpu-lol.yaml to launch anyway")
    for message in analysis.warnings:
        warn(message)
    if not quiet and analysis.source:
        from gpu_lol.console import info

        info(f"spec from {analysis.source} ({repo})")
    return analysis


def plan_and_launch(repo: Path, spec, options, *, dry_run: bool, as_json: bool, yes: bool,
                    analysis=None, yes_expensive: bool = False) -> int:
    from gpu_lol import launch
    from gpu_lol.console import confirm, info, print_json
    from gpu_lol.launch import budget

    plan = launch.build_plan(repo, spec, options)
    if analysis is not None:
        from gpu_lol.sizing import gpu_fix

        plan.warnings = gpu_fix.drop_repeats(plan.warnings, analysis.warnings, plan.spec)
    gate = budget.check(plan, analysis, yes_expensive=yes_expensive)
    plan.warnings.extend(gate.lines)
    if gate.refusal:
        plan.warnings.append(f"{gate.refusal}; {gate.hint}")
        if not dry_run:
            from gpu_lol.errors import OperationError

            show_plan(plan, err=True)
            raise OperationError(f"not launching: {gate.refusal}", gate.hint)
    if gate.ask and yes and not dry_run:
        yes = False  # a person confirms a low-confidence, costly plan (or --yes-expensive)
        if not sys.stdin.isatty():
            from gpu_lol.errors import UsageError

            show_plan(plan, err=True)
            raise UsageError(f"not launching on -y alone: {gate.ask}",
                             "check the analysis, pin the plan in .gpu-lol.yaml, or pass --yes-expensive "
                             "(or a max_price_per_hour that allows it)")
    if dry_run:
        if as_json:
            print_json(plan.to_json())
        else:
            show_plan(plan, err=False)
            info("dry run: nothing launched. Launch it with `gpu-lol up` (or `gpu-lol up -y`).")
        return 0
    show_plan(plan, err=as_json)
    if not yes:
        if not sys.stdin.isatty():
            from gpu_lol.errors import UsageError

            raise UsageError("not launching without confirmation", "pass -y/--yes to launch non-interactively")
        price = f" at ${plan.cost_per_hour:.2f}/hr" if plan.cost_per_hour is not None else ""
        if not confirm(f"Launch {plan.cluster_name}{price}?", default=False):
            info("Cancelled: nothing launched.")
            return 1
    outcome = launch.execute(plan, progress=info, output=sys.stderr)
    if as_json:
        print_json(outcome.to_json())
        return 0
    _show_outcome(outcome)
    return 0


def show_plan(plan, *, err: bool) -> None:
    from rich.table import Table

    from gpu_lol.console import stderr, stdout

    console = stderr() if err else stdout()
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in _plan_rows(plan):
        table.add_row(label, value)
    console.print(table)
    from gpu_lol.launch.render import warnings

    warnings(console, plan.warnings)


def _plan_rows(plan):
    from gpu_lol.launch import plan_rows

    return [(label, _escape(value)) for label, value in plan_rows(plan)]


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _show_outcome(outcome) -> None:
    from gpu_lol.console import stdout
    from gpu_lol.launch import connect_hints

    console = stdout()
    name = outcome.target.name
    if outcome.detached:
        console.print(f"Submitted the launch of [bold]{name}[/bold] (request {outcome.request_id}).")
        console.print(f"  follow it:  sky api logs {outcome.request_id}")
        console.print(f"  when it is up: gpu-lol info {name}  (writes the SSH config)")
        return
    where = ""
    if outcome.cluster is not None and outcome.cluster.provider:
        where = f" on {outcome.cluster.provider}"
        if outcome.cluster.price_hr is not None:
            where += f" at ${outcome.cluster.price_hr:.2f}/hr"
    if outcome.setup_exit is None:
        console.print(f"[green]{name} is up{_escape(where)}[/green] (setup was not followed; "
                      f"`gpu-lol logs {name}` shows it).")
    else:
        console.print(f"[green]{name} is ready{_escape(where)}: setup succeeded.[/green]")
    if outcome.ssh_config is None:
        console.print(f"[yellow]warning:[/yellow] no SSH config yet; run `gpu-lol info {name}` to write it")
    for hint in connect_hints(name, outcome.target.spec):
        console.print(f"  {hint}")
    for port, url in getattr(outcome, "endpoints", {}).items():
        console.print(f"  port {port}: {_escape(url)}  (or over SSH: gpu-lol forward {name} {port})")


def _up_host(repo: Path, spec, options, *, host: str, identity: str | None, workdir: str | None,
             dry_run: bool, as_json: bool, yes: bool) -> int:
    from gpu_lol import launch
    from gpu_lol.console import info, print_json
    from gpu_lol.errors import UsageError
    from gpu_lol.launch import state

    spec, _warnings = launch.apply_options(spec, options)
    name = state.check_name(options.name or state.default_name(repo))
    existing = state.load(name)
    if existing is not None and existing.kind != state.KIND_HOST:
        raise UsageError(f"'{name}' is already the name of a SkyPilot cluster",
                         "pass --name for the host, or `gpu-lol down` the cluster first")
    if dry_run:
        from gpu_lol.secrets.redact import redact
        from gpu_lol.secrets.sensitive import is_secret_env_name

        shown = spec.to_dict()  # never a secret value in a dry run, --json included
        values = [str(v) for k, v in (shown.get("envs") or {}).items() if is_secret_env_name(k)]
        shown["envs"] = {k: "<redacted>" if is_secret_env_name(k) else redact(str(v), values)
                         for k, v in (shown.get("envs") or {}).items()}
        shown["setup_commands"] = [redact(c, values) for c in shown.get("setup_commands") or []]
        data = {"host": host, "name": name, "workdir": workdir, "identity": identity, "spec": shown}
        if as_json:
            print_json(data)
        else:
            info(f"dry run: would set up {repo} on {host} as '{name}' "
                 f"(workdir {workdir or 'default'}; a virtualenv with --system-site-packages); nothing done.")
        return 0
    from gpu_lol.machine import hosts

    target = hosts.up_host(repo, spec, host, identity=identity, name=name, workdir=workdir, yes=yes)
    if as_json:
        print_json(target.to_dict())
        return 0
    from gpu_lol.launch import connect_hints

    info(f"{target.name} is ready on {host}.")
    for hint in connect_hints(target.name, target.spec):
        info(f"  {hint}")
    return 0
