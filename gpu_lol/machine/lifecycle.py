"""Cluster and host lifecycle as functions returning data: ls, info, start, stop, down, check, cost.

SkyPilot answers ``down``/``stop``/``start`` on a cluster that does not exist with success, so
every action here asks SkyPilot for the cluster's status first and checks the result after.
Host targets (your own machines, :mod:`gpu_lol.machine.hosts`) are listed and forgotten here too; they
are never billed, so stopping or starting one is explained, not done.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from gpu_lol.errors import OperationError, UsageError
from gpu_lol.launch import state
from gpu_lol.spec import PROVIDERS

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


# --------------------------------------------------------------------------------------------
# ls / info
# --------------------------------------------------------------------------------------------

@dataclass
class Row:
    name: str
    kind: str  # sky | host | sky-untracked (a SkyPilot cluster gpu-lol did not launch)
    status: str  # UP | INIT | STOPPED | GONE | host status
    gpu: str = "-"
    provider: str = "-"
    price_hr: float | None = None
    uptime_s: int | None = None
    autostop: str = "-"
    repo: str = "-"
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Listing:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _gpu_text(spec: dict[str, Any]) -> str:
    if not spec or spec.get("workload_type") == "cpu" or not spec.get("gpu_type"):
        return "cpu"
    return f"{spec.get('gpu_type')} x {spec.get('gpu_count', 1)}"


def autostop_text(minutes: int | None, down: bool) -> str:
    if minutes is None or minutes < 0:
        return "off"
    return f"{minutes}m ({'down' if down else 'stop'})"


def _sky_available(records: list[state.Target], progress: Progress) -> bool:
    """Whether to ask SkyPilot: yes when gpu-lol launched clusters or a server is already up.

    With nothing launched and no server running, starting SkyPilot's local server (10-20 s,
    about 1 GB) just to list nothing is not worth it.
    """
    from gpu_lol.launch import skypilot

    if any(t.kind == state.KIND_SKY for t in records):
        skypilot.ensure_api_server(progress)
        return True
    server = skypilot.api_server()
    if server.status == "healthy":
        return True
    if not server.local:
        skypilot.ensure_api_server(progress)  # raises the clear "unreachable" error
    return False


def list_targets(*, refresh: bool = False, progress: Progress = _quiet) -> Listing:
    """Every gpu-lol target with its live status, plus SkyPilot clusters gpu-lol did not launch."""
    from gpu_lol.launch import skypilot

    records = state.all_targets()
    listing = Listing()
    clusters: dict[str, Any] = {}
    seen: list[Any] = []
    asked = _sky_available(records, progress)
    if asked:
        from gpu_lol.console import progress as progress_line

        with progress_line("Asking SkyPilot for the clusters' status"
                           + (" (refreshed from the providers)..." if refresh else "...")):
            clusters = {c.name: c for c in skypilot.status(None, refresh=refresh)}
        seen = list(clusters.values())
        _refresh_ssh_configs([n for n in clusters if clusters[n].status == "UP"])
    else:
        listing.notes.append("SkyPilot's API server is not running and gpu-lol has launched no cluster; "
                             "`gpu-lol check` starts it")
    now = time.time()
    for target in records:
        if target.kind == state.KIND_HOST:
            listing.rows.append(_host_row(target))
            continue
        cluster = clusters.pop(target.name, None)
        if cluster is None:
            listing.rows.append(Row(
                name=target.name, kind=state.KIND_SKY, status="GONE" if asked else "?",
                gpu=_gpu_text(target.spec), provider=str(target.extra.get("cloud") or "-"),
                price_hr=None, repo=target.repo,
                detail=("no longer exists in SkyPilot (torn down by autostop or outside gpu-lol); "
                        f"`gpu-lol down {target.name}` forgets it") if asked else ""))
            continue
        listing.rows.append(_sky_row(cluster, target, now))
    for cluster in clusters.values():
        listing.rows.append(_sky_row(cluster, None, now))
    listing.notes += billing_notes(seen)
    return listing


def billing_notes(clusters: list[Any]) -> list[str]:
    """What bills without showing as running: a STOPPED Vast instance (its disk bills; a spot
    instance outbid by another renter is paused like this and its autostop-down never fires)
    and a cluster left in INIT (a failed or interrupted launch may hold a machine)."""
    notes = []
    for c in clusters:
        if c.status == "STOPPED" and (c.provider or "") == "vast":
            note = (f"{c.name} is STOPPED on Vast: Vast bills its disk while it is stopped")
            if c.spot:
                note += (" (a spot instance outbid by another renter is paused like this, and its "
                         "autostop tear-down never fires)")
            notes.append(note + f"; `gpu-lol start {c.name}` or `gpu-lol down {c.name}`")
        elif c.status == "INIT":
            notes.append(f"{c.name} is INIT: a launch that failed or was interrupted can leave a "
                         f"machine that bills; if no launch is running, `gpu-lol down {c.name}`")
    return notes


def _refresh_ssh_configs(names: list[str]) -> None:
    """Like ``sky status``: keep ``~/.sky/generated/ssh/<cluster>`` current for ssh/exec."""
    from gpu_lol.launch import skypilot

    missing = [name for name in names if not skypilot.ssh_config_path(name).exists()]
    if missing:
        skypilot.write_ssh_configs(missing)


def _sky_row(cluster, target: state.Target | None, now: float) -> Row:
    spec = target.spec if target is not None else {}
    gpu = _gpu_text(spec) if target is not None else (cluster.accelerators or "-")
    price = cluster.price_hr if cluster.price_hr is not None else (
        target.extra.get("price_hr") if target is not None else None)
    uptime = int(now - cluster.launched_at) if cluster.status == "UP" and cluster.launched_at else None
    return Row(name=cluster.name, kind=state.KIND_SKY if target is not None else "sky-untracked",
               status=cluster.status, gpu=gpu, provider=cluster.provider or "-", price_hr=price,
               uptime_s=uptime, autostop=autostop_text(cluster.autostop_minutes, cluster.autostop_down),
               repo=target.repo if target is not None else "-",
               detail="" if target is not None else "launched outside gpu-lol")


def _host_row(target: state.Target) -> Row:
    from gpu_lol.machine import hosts

    try:
        described = hosts.describe(target) or {}
    except OperationError as exc:
        described = {"status": "unreachable", "detail": exc.message}
    host = target.extra.get("host", "-")
    user = target.extra.get("user")
    return Row(name=target.name, kind=state.KIND_HOST, status=str(described.get("status", "?")),
               gpu=str(described.get("gpu") or _gpu_text(target.spec)),
               provider=f"host {user + '@' if user else ''}{host}", price_hr=None, autostop="n/a",
               repo=target.repo, detail=str(described.get("detail", "")))


def _resolve_name(name: str | None, cwd: Path | None = None) -> tuple[str, state.Target | None]:
    """NAME, or the target launched from the current repo; the record may be missing."""
    if name:
        return state.check_name(name), state.load(name)
    target = state.resolve(None, cwd)
    return target.name, target


def info(name: str | None, *, cwd: Path | None = None, progress: Progress = _quiet) -> dict[str, Any]:
    """One target: its record, live status, SSH config and how to connect."""
    from gpu_lol.launch import skypilot

    name, target = _resolve_name(name, cwd)
    if target is not None and target.kind == state.KIND_HOST:
        from gpu_lol.machine import hosts

        described = hosts.describe(target) or {}
        return {"name": name, "kind": "host", "status": str(described.get("status", "?")),
                "host": described, "record": target.to_dict(),
                "connect": [f"gpu-lol ssh {name}", f"gpu-lol exec {name} -- nvidia-smi",
                            f"gpu-lol down {name}"]}
    if target is None and not skypilot.may_have_clusters():
        raise _no_such(name)  # like `down`: nothing to ask SkyPilot, answer at once
    skypilot.ensure_api_server(progress)
    cluster = skypilot.status_one(name)
    if cluster is None and target is None:
        raise _no_such(name)
    ssh_config = None
    found: dict[int, str] = {}
    ports = sorted((target.spec.get("ports") or []) if target is not None else [])
    if cluster is not None and cluster.status == "UP":
        ssh_config = skypilot.ensure_ssh_config(name)
        found = skypilot.endpoints(name) if ports or target is None else {}
    return {
        "endpoints": {str(k): v for k, v in found.items()},
        "forward": [f"gpu-lol forward {name} {p}" for p in ports],
        "name": name,
        "kind": "sky",
        "status": cluster.status if cluster is not None else "GONE",
        "cluster": cluster.to_dict() if cluster is not None else None,
        "record": target.to_dict() if target is not None else None,
        "ssh_config": str(ssh_config) if ssh_config else None,
        "connect": [f"gpu-lol ssh {name}", f"gpu-lol exec {name} -- nvidia-smi", f"gpu-lol down {name}"],
    }


def _no_such(name: str) -> OperationError:
    known = ", ".join(t.name for t in state.all_targets()) or "none"
    return OperationError(f"no cluster or host named '{name}'", f"known to gpu-lol: {known} (see `gpu-lol ls`)")


# --------------------------------------------------------------------------------------------
# stop / start
# --------------------------------------------------------------------------------------------

@dataclass
class ActionResult:
    name: str
    action: str  # stopped | started | already | not_billed | cannot_stop | removed | forgotten
    message: str
    ok: bool = True
    cluster: Any = None

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "action": self.action, "message": self.message, "ok": self.ok}
        if self.cluster is not None:
            out["cluster"] = self.cluster.to_dict()
        return out


def _host_not_billed(name: str, verb: str) -> ActionResult:
    return ActionResult(name=name, action="not_billed",
                        message=f"{name} is your own host: it is not billed, so there is nothing to {verb}. "
                                f"`gpu-lol down {name}` forgets it.")


def stop(name: str | None, *, cwd: Path | None = None, progress: Progress = _quiet, output=None) -> ActionResult:
    """Stop a cluster where the provider can; otherwise explain (``cannot_stop``, ok=False)."""
    from gpu_lol.launch import skypilot

    name, target = _resolve_name(name, cwd)
    if target is not None and target.kind == state.KIND_HOST:
        return _host_not_billed(name, "stop")
    skypilot.ensure_api_server(progress)
    cluster = skypilot.status_one(name)
    if cluster is None:
        raise _no_such(name) if target is None else OperationError(
            f"{name} no longer exists in SkyPilot (autostop may have torn it down)",
            f"`gpu-lol up` launches it again; `gpu-lol down {name}` forgets the record")
    if cluster.status == "STOPPED":
        return ActionResult(name=name, action="already", message=f"{name} is already stopped.", cluster=cluster)
    if not cluster.can_stop:
        provider = skypilot.DISPLAY.get(cluster.provider or "", cluster.provider or "this provider")
        why = "a spot instance cannot be stopped" if cluster.spot else f"{provider} cannot stop a machine"
        return ActionResult(name=name, action="cannot_stop", ok=False, cluster=cluster,
                            message=f"{why}, only tear it down (its disk is deleted). Nothing was stopped: "
                                    f"{name} keeps billing until `gpu-lol down {name}` (or its autostop).")
    progress(f"Stopping {name}...")
    skypilot.stop(name, output=output)
    after = skypilot.status_one(name)
    if after is None or after.status != "STOPPED":
        raise OperationError(f"SkyPilot reported success but {name} is "
                             f"{after.status if after else 'gone'}, not STOPPED",
                             f"check `gpu-lol ls --refresh`; `gpu-lol down {name}` stops all billing")
    return ActionResult(name=name, action="stopped", cluster=after,
                        message=f"Stopped {name}: compute billing stopped; its disk is still billed. "
                                f"`gpu-lol start {name}` resumes it.")


def start(name: str | None, *, cwd: Path | None = None, progress: Progress = _quiet, output=None) -> ActionResult:
    """Restart a stopped cluster, keeping the autostop it was launched with."""
    from gpu_lol.launch import skypilot

    name, target = _resolve_name(name, cwd)
    if target is not None and target.kind == state.KIND_HOST:
        return _host_not_billed(name, "start")
    skypilot.ensure_api_server(progress)
    cluster = skypilot.status_one(name)
    if cluster is None:
        if target is None:
            raise _no_such(name)
        raise OperationError(f"{name} no longer exists in SkyPilot, so it cannot be started",
                             "launch it again with `gpu-lol up` (or `gpu-lol resume`)")
    if cluster.status == "UP":
        skypilot.ensure_ssh_config(name)
        return ActionResult(name=name, action="already", message=f"{name} is already up.", cluster=cluster)
    idle = autostop_down = None
    if target is not None:
        idle = target.extra.get("idle_minutes", target.spec.get("idle_minutes"))
        autostop_down = bool(target.extra.get("autostop_down"))
    progress(f"Starting {name}...")
    skypilot.start(name, idle_minutes=idle, autostop_down=bool(autostop_down), output=output)
    after = skypilot.status_one(name)
    if after is None or after.status != "UP":
        raise OperationError(f"SkyPilot reported success but {name} is {after.status if after else 'gone'}",
                             f"see `sky api logs`; `gpu-lol down {name}` stops all billing")
    skypilot.ensure_ssh_config(name)
    return ActionResult(name=name, action="started", cluster=after, message=f"Started {name}.")


# --------------------------------------------------------------------------------------------
# down
# --------------------------------------------------------------------------------------------

@dataclass
class DownPlan:
    """What ``down`` would remove: shown before asking."""

    name: str
    target: state.Target | None
    cluster: Any  # skypilot.ClusterStatus | None

    def describe(self) -> str:
        if self.target is not None and self.target.kind == state.KIND_HOST:
            return f"{self.name}: your host {self.target.extra.get('host', '')} (forget the record)"
        if self.cluster is None:
            return f"{self.name}: already gone from SkyPilot (forget the record)"
        price = f", ${self.cluster.price_hr:.2f}/hr" if self.cluster.price_hr is not None else ""
        return (f"{self.name}: {self.cluster.status} on {self.cluster.provider or '?'}"
                f" ({self.cluster.accelerators or self.cluster.resources or '?'}{price}) - tear down, disk deleted")


def plan_down(names: list[str] | None, *, all_targets: bool = False, cwd: Path | None = None,
              progress: Progress = _quiet) -> list[DownPlan]:
    """Resolve what to remove; a name nobody knows is a clear error (SkyPilot would say 'ok')."""
    from gpu_lol.launch import skypilot

    if all_targets:
        targets = state.all_targets()
        items = [(t.name, t) for t in targets]
    elif names:
        items = [(state.check_name(n), state.load(n)) for n in names]
    else:
        name, target = _resolve_name(None, cwd)
        items = [(name, target)]
    plans: list[DownPlan] = []
    for name, target in items:
        if target is None and not skypilot.may_have_clusters():
            raise _no_such(name)  # nothing to ask SkyPilot: it has never launched a cluster here
    need_sky = any(t is None or t.kind == state.KIND_SKY for _, t in items)
    if need_sky and items:
        skypilot.ensure_api_server(progress)
    for name, target in items:
        if target is not None and target.kind == state.KIND_HOST:
            plans.append(DownPlan(name=name, target=target, cluster=None))
            continue
        cluster = skypilot.status_one(name)
        if cluster is None and target is None:
            raise _no_such(name)
        plans.append(DownPlan(name=name, target=target, cluster=cluster))
    return plans


def down(plan: DownPlan, *, purge: bool = False, output=None, progress: Progress = _quiet) -> ActionResult:
    """Remove one target and check it is gone. Returns a sentence of what was removed."""
    from gpu_lol.launch import skypilot

    if plan.target is not None and plan.target.kind == state.KIND_HOST:
        from gpu_lol.machine import hosts

        sentence = hosts.forget(plan.target, purge)
        if state.load(plan.name) is not None:
            state.delete(plan.name)
        return ActionResult(name=plan.name, action="forgotten", message=sentence)
    if plan.cluster is None:
        state.delete(plan.name)
        skypilot.remove_ssh_config(plan.name)
        return ActionResult(name=plan.name, action="forgotten",
                            message=f"{plan.name} was already gone from SkyPilot; forgot its record.")
    progress(f"Tearing down {plan.name}...")
    skypilot.down(plan.name, output=output)
    after = skypilot.status_one(plan.name)
    if after is not None:
        raise OperationError(f"SkyPilot reported success but {plan.name} still exists ({after.status})",
                             f"run `gpu-lol down {plan.name}` again, or check the provider's console")
    state.delete(plan.name)
    cluster = plan.cluster
    what = f"{cluster.provider or 'cluster'} {cluster.accelerators or cluster.resources or ''}".strip()
    return ActionResult(name=plan.name, action="removed",
                        message=f"Tore down {plan.name} ({what}): billing stopped, its disk is deleted.")


# --------------------------------------------------------------------------------------------
# check
# --------------------------------------------------------------------------------------------

@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


SETUP_HINTS = {
    "runpod": ("pip install \"skypilot[runpod]\", then put your key in ~/.runpod/config.toml "
               "([default] api_key = \"...\"; `runpod config` writes it)"),
    "vast": ("pip install \"skypilot[vast]\", then save your key to ~/.config/vastai/vast_api_key"),
    "lambda": "put `api_key = ...` in ~/.lambda_cloud/lambda_keys (key from cloud.lambdalabs.com/api-keys)",
}


def _local_credential_file(provider: str) -> Path:
    home = Path.home()
    return {"runpod": home / ".runpod" / "config.toml",
            "vast": home / ".config" / "vastai" / "vast_api_key",
            "lambda": home / ".lambda_cloud" / "lambda_keys"}[provider]


def check(*, progress: Progress = _quiet) -> list[Check]:
    """Tools, the API server and each provider's credentials (as SkyPilot sees them)."""
    from gpu_lol.launch import skypilot

    checks: list[Check] = []
    for tool, why in (("ssh", "gpu-lol ssh/exec connect with OpenSSH"),
                      ("rsync", "exec --sync and up --host copy the repo with rsync")):
        path = shutil.which(tool)
        checks.append(Check(tool, "ok" if path else "fail", path or f"not found ({why})",
                            None if path else f"install {'openssh-client' if tool == 'ssh' else 'rsync'}"))
    endpoint = os.environ.get("SKYPILOT_API_SERVER_ENDPOINT")
    try:
        server = skypilot.ensure_api_server(progress)
    except OperationError as exc:
        checks.append(Check("api-server", "fail", exc.message, exc.hint))
        for provider in PROVIDERS:
            checks.append(Check(provider, "fail", "unknown: the API server did not answer", None))
        return checks
    where = "remote" if not server.local else "local"
    source = " (SKYPILOT_API_SERVER_ENDPOINT)" if endpoint else ""
    checks.append(Check("api-server", "ok", f"{where} {server.url}{source}, SkyPilot {server.version or '?'}"))
    from gpu_lol.console import progress as progress_line

    with progress_line("Checking provider credentials through SkyPilot..."):
        enabled = skypilot.enabled_providers(PROVIDERS)
    for provider in PROVIDERS:
        if enabled.get(provider):
            checks.append(Check(provider, "ok", "credentials work"))
            continue
        detail = "not enabled in SkyPilot"
        if server.local:
            cred = _local_credential_file(provider)
            detail += f" ({cred} {'exists but did not work' if cred.exists() else 'is missing'})"
        else:
            detail += " on the API server"
        checks.append(Check(provider, "fail", detail, SETUP_HINTS[provider]))
    from gpu_lol.launch import runpod_api

    has_key = runpod_api.api_key() is not None
    checks.append(Check("runpod-templates", "ok" if has_key else "warn",
                        "RunPod API key found (templates: `gpu-lol templates`)" if has_key
                        else "no RunPod API key: launches use the spec's image, not your templates",
                        None if has_key else "set RUNPOD_API_KEY or ~/.runpod/config.toml"))
    return checks


def check_passed(checks: list[Check]) -> bool:
    """Usable: ssh present, the API server answers and at least one provider works."""
    by_name = {c.name: c for c in checks}
    provider_ok = any(by_name.get(p) and by_name[p].status == "ok" for p in PROVIDERS)
    return provider_ok and by_name["ssh"].status == "ok" and by_name["api-server"].status == "ok"


# --------------------------------------------------------------------------------------------
# cost
# --------------------------------------------------------------------------------------------

def cost(days: int | None = None, *, progress: Progress = _quiet) -> dict[str, Any]:
    """SkyPilot's cost report (every cluster, including torn-down ones) and the total."""
    from gpu_lol.launch import skypilot

    if days is not None and days <= 0:
        raise UsageError(f"--days {days}: must be 1 or more")
    skypilot.ensure_api_server(progress)
    rows = skypilot.cost_report(days)
    ours = {t.name for t in state.all_targets()}
    for row in rows:
        row["gpu_lol"] = row["name"] in ours
    rows.sort(key=lambda r: -(r.get("launched_at") or 0))
    return {"days": days or 30, "clusters": rows, "total": round(sum(r["cost"] for r in rows), 2)}
