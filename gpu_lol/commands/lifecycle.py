"""``ls``, ``info``, ``start``, ``stop``, ``down``, ``check``, ``cost``: thin renderers over
:mod:`gpu_lol.machine.lifecycle`. NAME defaults to the cluster (or host) launched from the current repo."""

from __future__ import annotations

import sys

import click

_CTX = {"help_option_names": ["-h", "--help"]}


def _progress(message: str) -> None:
    from gpu_lol.console import info

    info(message)


def _uptime(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    hours, rest = divmod(int(seconds), 3600)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours}h"
    return f"{hours}h{rest // 60:02d}m"


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:.2f}"


@click.command("ls", context_settings=_CTX)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.option("--refresh", is_flag=True, help="Ask the providers for the latest status (slower).")
def ls_command(as_json: bool, refresh: bool) -> int:
    """List clusters and host targets: status, GPU, provider, $/hr, uptime, autostop, repo."""
    from gpu_lol.console import info, print_json
    from gpu_lol.machine import lifecycle

    listing = lifecycle.list_targets(refresh=refresh, progress=_progress)
    if as_json:
        print_json({"targets": [r.to_dict() for r in listing.rows], "notes": listing.notes})
        return 0
    for note in listing.notes:
        info(note)
    if not listing.rows:
        info("Nothing launched. Start with `gpu-lol up --dry-run`.")
        return 0
    from rich.markup import escape
    from rich.table import Table

    from gpu_lol.console import stdout

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "STATUS", "GPU", "PROVIDER", "$/HR", "UPTIME", "AUTOSTOP", "REPO"):
        table.add_column(column, overflow="fold")
    colors = {"UP": "green", "INIT": "yellow", "STOPPED": "blue", "GONE": "dim"}
    for row in listing.rows:
        status = escape(row.status)
        color = colors.get(row.status)
        table.add_row(escape(row.name), f"[{color}]{status}[/{color}]" if color else status, escape(row.gpu),
                      escape(row.provider), _money(row.price_hr), _uptime(row.uptime_s), escape(row.autostop),
                      escape(row.repo))
    console = stdout()
    console.print(table)
    for row in listing.rows:
        if row.detail:
            console.print(f"[dim]{escape(row.name)}: {escape(row.detail)}[/dim]")
    return 0


@click.command("info", context_settings=_CTX)
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def info_command(name: str | None, as_json: bool) -> int:
    """Show one cluster or host target (and write its SSH config if it is up)."""
    from gpu_lol.console import print_json, stdout
    from gpu_lol.machine import lifecycle

    data = lifecycle.info(name, progress=_progress)
    if as_json:
        print_json(data)
        return 0
    from rich.markup import escape

    console = stdout()
    console.print(f"[bold]{escape(data['name'])}[/bold]  {escape(str(data.get('status')))}")
    record = data.get("record") or {}
    cluster = data.get("cluster") or {}
    spec = record.get("spec") or {}
    rows = [
        ("repo", record.get("repo")),
        ("gpu", f"{spec.get('gpu_type')} x {spec.get('gpu_count')}" if spec.get("gpu_type") else None),
        ("provider", cluster.get("provider")),
        ("region", cluster.get("region")),
        ("resources", cluster.get("resources")),
        ("$/hr", _money(cluster.get("price_hr") if cluster.get("price_hr") is not None
                        else (record.get("extra") or {}).get("price_hr"))),
        ("autostop", lifecycle.autostop_text(cluster.get("autostop_minutes"), bool(cluster.get("autostop_down")))
         if cluster else None),
        ("image", spec.get("base_image")),
        ("ssh config", data.get("ssh_config")),
    ]
    if data.get("kind") == "host":
        host = data.get("host") or {}
        rows = [(label, value) for label, value in rows if label in ("repo", "gpu", "image")]
        rows += [("host", host.get("host")), ("machine gpu", host.get("gpu")),
                 ("workdir", host.get("workdir")), ("detail", host.get("detail"))]
    for label, value in rows:
        if value:
            console.print(f"  [cyan]{label:<10}[/cyan] {escape(str(value))}")
    for port, url in (data.get("endpoints") or {}).items():
        console.print(f"  [cyan]{'port ' + port:<10}[/cyan] {escape(str(url))}  (public endpoint, from SkyPilot)")
    for hint in data.get("connect") or []:
        console.print(f"  {escape(hint)}")
    for hint in data.get("forward") or []:
        console.print(f"  {escape(hint)}  (over SSH, any provider)")
    return 0


def _render_action(result, as_json: bool) -> int:
    from gpu_lol.console import print_json

    if as_json:
        print_json(result.to_dict())
    else:
        click.echo(result.message)
    return 0 if result.ok else 1


@click.command("stop", context_settings=_CTX)
@click.argument("name", required=False)
@click.option("-y", "--yes", is_flag=True, help="If the provider cannot stop, do not offer to tear down.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def stop_command(name: str | None, yes: bool, as_json: bool) -> int:
    """Stop a cluster (compute billing stops, the disk is kept).

    RunPod and Lambda cannot stop a machine, only tear it down: gpu-lol says so and offers
    `down` instead (exit 1 when nothing was stopped).
    """
    from gpu_lol.console import confirm
    from gpu_lol.machine import lifecycle

    result = lifecycle.stop(name, progress=_progress, output=sys.stderr)
    if result.action == "cannot_stop" and not as_json and not yes and sys.stdin.isatty():
        click.echo(result.message)
        if confirm(f"Tear {result.name} down instead?", default=False):
            plans = lifecycle.plan_down([result.name], progress=_progress)
            done = lifecycle.down(plans[0], output=sys.stderr, progress=_progress)
            click.echo(done.message)
            return 0
        return 1
    return _render_action(result, as_json)


@click.command("start", context_settings=_CTX)
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def start_command(name: str | None, as_json: bool) -> int:
    """Restart a stopped cluster (with the autostop it was launched with)."""
    from gpu_lol.machine import lifecycle

    return _render_action(lifecycle.start(name, progress=_progress, output=sys.stderr), as_json)


@click.command("down", context_settings=_CTX)
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--all", "all_targets", is_flag=True, help="Everything gpu-lol launched (clusters and hosts).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--purge", is_flag=True, help="Host targets: also delete the remote workdir.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def down_command(names: tuple[str, ...], all_targets: bool, yes: bool, purge: bool, as_json: bool) -> int:
    """Tear down a cluster (billing stops, disk deleted) or forget a host target."""
    from gpu_lol.console import confirm, info, print_json
    from gpu_lol.errors import UsageError
    from gpu_lol.machine import lifecycle

    if all_targets and names:
        raise UsageError("pass NAME or --all, not both")
    plans = lifecycle.plan_down(list(names) or None, all_targets=all_targets, progress=_progress)
    if not plans:
        info("Nothing to tear down: gpu-lol has launched nothing.")
        if as_json:
            print_json({"removed": []})
        return 0
    if not yes:
        for plan in plans:
            info(f"  {plan.describe()}")
        from gpu_lol.machine.transfer import check_before_down  # lists results the teardown would delete

        new_files = check_before_down(plans, purge=purge)
        if not sys.stdin.isatty():
            if new_files:
                raise UsageError("not deleting files written since launch without confirmation",
                                 "pull what you need first (commands above), then pass -y/--yes")
            raise UsageError("not tearing down without confirmation", "pass -y/--yes")
        question = f"Remove {len(plans)} target(s)" + (" and delete the new files listed above?" if new_files else "?")
        if not confirm(question, default=False):
            info("Cancelled: nothing removed.")
            return 1
    if purge and any(p.target is None or p.target.kind != "host" for p in plans):
        info("note: --purge only applies to host targets")
    results = [lifecycle.down(plan, purge=purge, output=sys.stderr, progress=_progress) for plan in plans]
    if as_json:
        print_json({"removed": [r.to_dict() for r in results]})
    else:
        for result in results:
            click.echo(result.message)
    return 0


@click.command("check", context_settings=_CTX)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def check_command(as_json: bool) -> int:
    """Check ssh/rsync, SkyPilot's API server and each provider's credentials."""
    from gpu_lol.console import print_json
    from gpu_lol.machine import lifecycle

    checks = lifecycle.check(progress=_progress)
    passed = lifecycle.check_passed(checks)
    if as_json:
        print_json({"ok": passed, "checks": [c.to_dict() for c in checks]})
        return 0 if passed else 1
    from rich.markup import escape

    from gpu_lol.console import stdout

    console = stdout()
    marks = {"ok": "[green]ok  [/green]", "warn": "[yellow]warn[/yellow]", "fail": "[red]fail[/red]"}
    for c in checks:
        console.print(f"{marks[c.status]} {c.name:<17} {escape(c.detail)}")
        if c.hint and c.status != "ok":
            console.print(f"     {'':<17} [dim]fix: {escape(c.hint)}[/dim]")
    if not passed:
        console.print("[red]Not ready to launch:[/red] fix the failures above, then run `gpu-lol check` again.")
    return 0 if passed else 1


@click.command("cost", context_settings=_CTX)
@click.option("--days", type=int, help="Look back this many days (default 30).")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
def cost_command(days: int | None, as_json: bool) -> int:
    """SkyPilot's cost report: every cluster in the period, including torn-down ones."""
    from gpu_lol.console import info, print_json
    from gpu_lol.machine import lifecycle

    report = lifecycle.cost(days, progress=_progress)
    if as_json:
        print_json(report)
        return 0
    if not report["clusters"]:
        info(f"No clusters in the last {report['days']} days.")
        return 0
    from rich.markup import escape
    from rich.table import Table

    from gpu_lol.console import stdout

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "STATUS", "PROVIDER", "RESOURCES", "HOURS", "COST"):
        table.add_column(column, overflow="fold")
    for row in report["clusters"]:
        table.add_row(escape(row["name"] or "-"), escape(row["status"] or "-"), escape(row["provider"] or "-"),
                      escape(row["resources"] or "-"), f"{row['hours']:.2f}", _money(row["cost"]))
    console = stdout()
    console.print(table)
    console.print(f"Total over {report['days']} days: [bold]{_money(report['total'])}[/bold] "
                  "(SkyPilot's estimate from list prices and uptime)")
    return 0
