"""EnvironmentSpec -> SkyPilot task, validated by SkyPilot's own code, plus thin SDK wrappers.

Everything that touches SkyPilot lives here, so the rest of gpu-lol never imports ``sky``:

* :func:`render_task` turns a spec into a task dict (the same shape as a ``sky launch`` YAML);
  :func:`validate_task` loads it with ``sky.Task.from_yaml_config`` (offline, no API server).
* :func:`offers` asks SkyPilot's catalog which instance each provider would give, but only when
  the catalog files are already on disk and would not be re-downloaded (no network in a plan).
* The SDK wrappers (:func:`launch`, :func:`status`, :func:`down`, ...) go through SkyPilot's API
  server: local (started on first use, 10-20 s) or the team server named by
  ``SKYPILOT_API_SERVER_ENDPOINT``. SkyPilot returns success for ``down``/``stop``/``start`` on
  a cluster that does not exist, so callers query :func:`status` first.
* :func:`explain` maps SkyPilot's exceptions to one-line :class:`~gpu_lol.errors.GpuLolError`\\ s
  with the fix.
"""

from __future__ import annotations

import copy
import os
import posixpath
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from gpu_lol.errors import ConfigError, GpuLolError, OperationError
from gpu_lol.sizing import catalog
from gpu_lol.spec import EnvironmentSpec

REMOTE_WORKDIR = "~/sky_workdir"  # where SkyPilot syncs the workdir (sky.skylet.constants)
# On the machine: the secrets (`export KEY=value` lines, mode 600) that `gpu-lol exec/ssh` and
# `gpu-lol run` jobs source; written by setup from SkyPilot's secrets, never printed.
SECRETS_FILE = "~/.gpu-lol/secrets.env"
REDACTED = "<redacted>"

# Providers whose clusters cannot be stopped, only torn down (SkyPilot's
# CloudImplementationFeatures.STOP is unsupported on them).
CANNOT_STOP = frozenset({"runpod", "lambda"})
# Providers without spot/interruptible instances in SkyPilot.
NO_SPOT = frozenset({"lambda"})
# SkyPilot's display names for our provider ids, and back.
DISPLAY = {"runpod": "RunPod", "vast": "Vast", "lambda": "Lambda"}

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def load_sky(*modules: str) -> None:
    """Import SkyPilot (2-5 s the first time: its SDK pulls in much of the package) and the
    given submodules, under a progress line; a no-op once they are loaded."""
    wanted = ["sky", *modules]
    if all(name in sys.modules for name in wanted):
        return
    import importlib

    from gpu_lol.console import progress

    with progress("Loading SkyPilot..."):
        for name in wanted:
            importlib.import_module(name)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

@dataclass
class Upload:
    """A local file or directory copied to the machine through SkyPilot ``file_mounts``."""

    destination: str  # absolute or ~/ path on the machine
    source: str  # absolute local path


@dataclass
class RenderInput:
    """Everything :func:`render_task` needs besides the spec."""

    name: str
    workdir: Path
    providers: list[tuple[str, str | None]]  # (provider id, accelerator name or None for cpu)
    secrets: dict[str, str] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)
    vast_datacenter_only: bool = False  # task-level SkyPilot config: Vast datacenter hosts only


def autostop_for(providers: Iterable[str], idle_minutes: int, spot: bool) -> dict[str, Any] | bool:
    """SkyPilot ``autostop`` for these providers: ``down: true`` when any of them cannot stop.

    Spot instances cannot be stopped on any provider either. 0 idle minutes disables autostop.
    """
    if idle_minutes <= 0:
        return False
    must_down = spot or any(p in CANNOT_STOP for p in providers)
    return {"idle_minutes": int(idle_minutes), "down": bool(must_down)}


def pip_install_command(requirements: Iterable[str]) -> str:
    """``python -m pip install 'a' 'b<2'``: every requirement is one quoted argument."""
    reqs = list(requirements)
    return " ".join(["python", "-m", "pip", "install", *(shlex.quote(r) for r in reqs)])


def remote_path(path: str) -> str:
    """Shell-quote a path on the machine; a leading ``~/`` stays the remote user's home."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def parse_asset_link(link: str) -> tuple[str, str]:
    """``REMOTE:LOCAL`` -> (remote, local); both must be non-empty and free of NUL/newlines."""
    remote, sep, local = link.partition(":")
    if not sep or not remote or not local or ":" in local:
        raise ConfigError(f"asset link '{link}' is not REMOTE:LOCAL",
                          "e.g. /workspace/huggingface:~/.cache/huggingface")
    for part in (remote, local):
        if any(c in part for c in "\0\n\r"):
            raise ConfigError(f"asset link '{link}' has a control character")
    return remote, local


def _asset_link_lines(link: str) -> list[str]:
    remote, local = parse_asset_link(link)
    local_q = remote_path(local)
    parent = posixpath.dirname(local.rstrip("/"))
    lines = [
        f"if [ -e {local_q} ] && [ ! -L {local_q} ]; then "
        f"echo {shlex.quote(f'gpu-lol: {local} exists and is not a link; not replacing it')} >&2; "
        "exit 1; fi",
    ]
    if parent and parent not in ("/", "~", "."):
        lines.append(f"mkdir -p -- {remote_path(parent)}")
    # A missing target (no network volume attached) would leave a dangling link that breaks
    # whatever writes through it (the Hugging Face cache); create it as a directory instead.
    remote_q = remote_path(remote)
    lines.append(f"[ -e {remote_q} ] || mkdir -p -- {remote_q}")
    lines.append(f"ln -sfn -- {remote_q} {local_q}")
    return lines


def render_setup(spec: EnvironmentSpec, name: str = "") -> str:
    """The setup script: fail fast, system packages, workdir, asset links, setup commands."""
    lines = ["set -euo pipefail",
             f"# gpu-lol setup{' for ' + name if name else ''}: generated from the spec; "
             "change .gpu-lol.yaml, not this script"]
    if spec.system_packages:
        packages = " ".join(shlex.quote(p) for p in spec.system_packages)
        lines += [
            "export DEBIAN_FRONTEND=noninteractive",
            'SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi',
            "$SUDO apt-get update -qq",
            f"$SUDO apt-get install -y -qq --no-install-recommends {packages}",
        ]
    lines.append(f"cd {remote_path(REMOTE_WORKDIR)}")
    for link in spec.asset_links:
        lines += _asset_link_lines(link)
    if spec.setup_commands:
        # The analyzer's commands (or the user's own in .gpu-lol.yaml) are the complete install:
        # they already skip what the image ships (torch in a PyTorch image).
        lines += list(spec.setup_commands)
    elif spec.requirements:
        lines.append(pip_install_command(spec.requirements))
    return "\n".join(lines) + "\n"


def render_run(spec: EnvironmentSpec, name: str = "") -> str:
    """A ``run`` that ends at once, so the cluster goes idle and autostop can fire."""
    ready = shlex.quote(f"gpu-lol: {name or 'machine'} is ready")
    if spec.is_cpu:
        return f"echo {ready}\n"
    return ("nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true\n"
            f"echo {ready}\n")


def render_task(spec: EnvironmentSpec, inp: RenderInput) -> dict[str, Any]:
    """The SkyPilot task (as a dict) for ``spec``. Secrets go to ``secrets:``, never ``envs:``."""
    from gpu_lol.secrets.sensitive import is_secret_env_name

    if not spec.base_image:
        raise ConfigError("base_image is empty: no image to launch",
                          "set base_image in .gpu-lol.yaml (see `gpu-lol analyze`)")
    if not inp.providers:
        raise ConfigError("no provider to launch on", "set providers in .gpu-lol.yaml or pass --cloud")
    resources: dict[str, Any] = {
        "image_id": f"docker:{spec.base_image}",
        "disk_size": int(spec.disk_gb),
        "use_spot": bool(spec.spot),
        "autostop": autostop_for([p for p, _ in inp.providers], spec.idle_minutes, spec.spot),
    }
    if spec.ports:
        resources["ports"] = [int(p) for p in spec.ports]
    if spec.is_cpu:
        resources["cpus"] = f"{catalog.CPU_MIN_VCPUS}+"
        resources["memory"] = f"{catalog.CPU_MIN_MEMORY_GB}+"
    any_of = []
    for provider, accelerator in inp.providers:
        entry: dict[str, Any] = {"infra": provider}
        if accelerator is not None and not spec.is_cpu:
            entry["accelerators"] = {accelerator: int(spec.gpu_count)}
        if spec.is_cpu:
            # a CPU-only instance, pinned: by cpus/memory alone SkyPilot may pick a GPU box
            # (only where SkyPilot's catalog is cached: checking an instance type otherwise
            # downloads it; uncached, cpus/memory alone pick the CPU instance, the cheapest)
            inst = catalog.cpu_instance_for(provider)
            if inst is not None:
                if catalog_cached(provider):
                    entry["instance_type"] = inst.instance_type
                if inst.max_disk_gb is not None and int(spec.disk_gb) > inst.max_disk_gb:
                    entry["disk_size"] = inst.max_disk_gb  # RunPod CPU pods: 10 GB per vCPU
        any_of.append(entry)
    resources["any_of"] = any_of

    envs: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for key, value in spec.envs.items():
        text = _env_text(value)
        (secrets if is_secret_env_name(key) else envs)[key] = text
    for key, value in inp.secrets.items():
        secrets[key] = value
        envs.pop(key, None)

    task: dict[str, Any] = {
        "name": inp.name,
        "workdir": str(Path(inp.workdir).resolve()),
        "resources": resources,
    }
    if envs:
        task["envs"] = envs
    if secrets:
        task["secrets"] = secrets
    if inp.uploads:
        task["file_mounts"] = {u.destination: u.source for u in inp.uploads}
    if inp.vast_datacenter_only and any(p == "vast" for p, _ in inp.providers):
        # SkyPilot reads vast.datacenter_only from the task's config overrides (sky/clouds/vast.py)
        task["config"] = {"vast": {"datacenter_only": True}}
    task["setup"] = render_setup(spec, inp.name)
    if secrets:
        task["setup"] = secrets_file_setup(secrets) + task["setup"]
    task["run"] = render_run(spec, inp.name)
    return task


def vast_datacenter_only() -> bool:
    """gpu-lol's ``vast.datacenter_only`` setting, or SkyPilot's own in ~/.sky/config.yaml."""
    try:
        from gpu_lol.config import user_config

        if "vast.datacenter_only" in user_config.KEYS and user_config.effective("vast.datacenter_only").value:
            return True
    except ImportError:
        pass
    try:
        load_sky("sky.skypilot_config")
        from sky import skypilot_config

        return bool(skypilot_config.get_nested(("vast", "datacenter_only"), False))
    except Exception:  # noqa: BLE001 - an unreadable SkyPilot config: SkyPilot reports it itself
        return False


def secrets_file_setup(names: Iterable[str]) -> str:
    """Setup lines that copy the task's secrets (SkyPilot exports them to setup) into
    ``SECRETS_FILE`` (mode 600), which ``gpu-lol exec``/``ssh`` sessions and ``run`` jobs source.
    Only the names are in the script: no value is ever in the task text, a log or a dry run."""
    wanted = sorted(n for n in names if isinstance(n, str) and n.isidentifier())
    if not wanted:
        return ""
    directory = remote_path(posixpath.dirname(SECRETS_FILE))
    target = remote_path(SECRETS_FILE)
    return "\n".join([
        "# gpu-lol: secrets for exec/ssh sessions (names only here; values come from SkyPilot secrets)",
        f"( umask 077; mkdir -p {directory} && tmp={target}.tmp.$$ && : > \"$tmp\" && chmod 600 \"$tmp\" &&",
        f"  for name in {' '.join(wanted)}; do if [ -n \"${{!name+x}}\" ]; then "
        "printf 'export %s=%q\\n' \"$name\" \"${!name}\" >> \"$tmp\"; fi; done &&",
        f"  mv -f \"$tmp\" {target} ) || echo 'gpu-lol: could not write the secrets file' >&2",
        "",
    ])


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def redact_task(task: dict[str, Any]) -> dict[str, Any]:
    """A copy of the task safe to print: secret values replaced by ``<redacted>``.

    Setup/run text and env values also go through :func:`gpu_lol.secrets.redact.redact`, so a token
    written into a setup command (or a secret's value appearing anywhere) is not shown either.
    """
    from gpu_lol.secrets.redact import redact

    out = copy.deepcopy(task)
    values: list[str] = []
    if isinstance(out.get("secrets"), dict):
        values = [str(v) for v in out["secrets"].values() if v]
        out["secrets"] = {k: REDACTED for k in out["secrets"]}
    for key in ("setup", "run"):
        if isinstance(out.get(key), str):
            out[key] = redact(out[key], values)
    if isinstance(out.get("envs"), dict):
        out["envs"] = {k: redact(str(v), values) for k, v in out["envs"].items()}
    return out


def task_yaml(task: dict[str, Any]) -> str:
    """The task as YAML (what ``sky launch`` would take); redact first if it is for display."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper, data):
        style = "|" if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    _Dumper.add_representer(str, _str)
    return yaml.dump(task, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)


def validate_task(task: dict[str, Any]):
    """Load the task with SkyPilot's own validator (offline). Returns the ``sky.Task``.

    A rejection is a clear :class:`OperationError`, never a launch.
    """
    load_sky()
    import sky

    try:
        # SkyPilot's loader raises assorted types (ValueError, jsonschema errors, its own
        # exceptions) for a bad task; every one of them means "not launchable as rendered".
        return sky.Task.from_yaml_config(copy.deepcopy(task))
    except Exception as exc:  # noqa: BLE001 - see above
        raise OperationError(f"SkyPilot rejected the task: {clean_message(exc)}",
                             "check the fields of .gpu-lol.yaml (image, ports, disk_gb, envs); "
                             "`gpu-lol up --dry-run --json` shows the task") from None


def clean_message(exc: BaseException | str, limit: int = 300) -> str:
    """First meaningful line of an error, without ANSI colours."""
    text = _ANSI_RE.sub("", str(exc)).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    return first if len(first) <= limit else first[:limit - 3] + "..."


# --------------------------------------------------------------------------------------------
# Offline offers from SkyPilot's catalog
# --------------------------------------------------------------------------------------------

@dataclass
class Offer:
    provider: str
    instance_type: str
    accelerator: str | None
    count: int
    price_hr: float
    region: str | None = None


@dataclass
class OfferCheck:
    offers: list[Offer] = field(default_factory=list)  # cheapest first
    unavailable: dict[str, str] = field(default_factory=dict)  # provider -> why (suggestions)
    skipped: list[str] = field(default_factory=list)  # providers whose catalog is not cached


def catalog_cached(provider: str) -> bool:
    """True when SkyPilot would read this provider's catalog from disk without downloading."""
    load_sky("sky.catalog.common")
    from sky.catalog import common as catalog_common

    filename = f"{provider}/vms.csv"
    path = catalog_common.get_catalog_path(filename)
    if not os.path.isfile(path):
        return False
    if catalog_common.is_catalog_modified(filename):
        return True  # hand-placed or edited: SkyPilot never replaces it
    import time

    # SkyPilot refreshes a downloaded catalog older than its pull frequency (7 h for RunPod
    # and Lambda); treat anything older than 6 h as "would download" to stay offline.
    return os.path.getmtime(path) + 6 * 3600 > time.time()


def offers(task: dict[str, Any]) -> OfferCheck:
    """What each provider in the task would launch, from SkyPilot's cached catalogs, offline.

    Providers whose catalog is not cached (or would be refreshed) are listed in ``skipped``;
    nothing is downloaded. A provider with no matching instance lands in ``unavailable`` with
    SkyPilot's suggestions (e.g. ``H100:4``), so an impossible request is caught before launch.
    """
    sky_task = validate_task(task)
    result = OfferCheck()
    for resources in sky_task.resources:
        cloud = resources.cloud
        provider = str(cloud).lower() if cloud is not None else None
        if provider is None or not catalog_cached(provider):
            if provider:
                result.skipped.append(provider)
            continue
        feasible = cloud.get_feasible_launchable_resources(resources, 1)
        if not feasible.resources_list:
            why = "no instance offers " + _accelerator_text(resources)
            if feasible.fuzzy_candidate_list:
                why += "; it offers " + ", ".join(feasible.fuzzy_candidate_list[:6])
            elif feasible.hint:
                why += f" ({clean_message(feasible.hint)})"
            result.unavailable[provider] = why
            continue
        best = min(feasible.resources_list, key=lambda r: r.get_cost(3600))
        accs = best.accelerators or {}
        acc_name, count = next(iter(accs.items())) if accs else (None, 0)
        result.offers.append(Offer(provider=provider, instance_type=best.instance_type,
                                   accelerator=acc_name, count=int(count),
                                   price_hr=round(float(best.get_cost(3600)), 4),
                                   region=best.region))
    result.offers.sort(key=lambda o: o.price_hr)
    return result


def _accelerator_text(resources) -> str:
    accs = resources.accelerators or {}
    if not accs:
        return "a CPU instance"
    return ", ".join(f"{name}:{int(n) if float(n).is_integer() else n}" for name, n in accs.items())


# --------------------------------------------------------------------------------------------
# API server
# --------------------------------------------------------------------------------------------

@dataclass
class ApiServer:
    url: str
    local: bool
    status: str  # healthy | unhealthy | needs_auth | version_mismatch
    version: str | None = None
    error: str | None = None


def may_have_clusters() -> bool:
    """False only when SkyPilot provably manages no cluster here: no remote API server or
    database is configured and its local state database (``~/.sky/state_db.db``, under
    ``$SKY_RUNTIME_DIR`` when set) was never created. Cheap: imports nothing."""
    if os.environ.get("SKYPILOT_API_SERVER_ENDPOINT") or os.environ.get("SKYPILOT_DB_CONNECTION_URI"):
        return True
    runtime = Path(os.path.expanduser(os.environ.get("SKY_RUNTIME_DIR", "~")))
    return (runtime / ".sky" / "state_db.db").exists()


def team_endpoint() -> str | None:
    """The API server endpoint the user configured (SKYPILOT_API_SERVER_ENDPOINT, else
    ``api_server.endpoint`` in ~/.sky/config.yaml): a server shared by a team. Cheap: reads the
    file, imports no SkyPilot."""
    env = os.environ.get("SKYPILOT_API_SERVER_ENDPOINT", "").strip()
    if env:
        return env
    config = Path(os.path.expanduser(os.environ.get("SKYPILOT_GLOBAL_CONFIG", "~/.sky/config.yaml")))
    try:
        import yaml

        data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, ImportError):
        return None
    except Exception:  # noqa: BLE001 - a broken YAML file: SkyPilot reports it itself
        return None
    endpoint = (data.get("api_server") or {}).get("endpoint") if isinstance(data, dict) else None
    return str(endpoint).strip() or None if endpoint else None


def current_user() -> str:
    """The user name SkyPilot sends to its API server (the local user when nobody logged in)."""
    try:
        from sky.utils import common_utils

        return str(common_utils.get_local_user_name())
    except Exception:  # noqa: BLE001 - fall back to the OS user
        import getpass

        return getpass.getuser()


def api_server() -> ApiServer:
    """Where SkyPilot's API server is and whether it answers (does not start one)."""
    load_sky("sky.server.common")
    from sky.server import common as server_common

    url = server_common.get_server_url()
    server_common.get_api_server_status_response.cache_clear()
    info = server_common.get_api_server_status(url)
    return ApiServer(url=server_common.redact_url_password(url),
                     local=bool(server_common.is_api_server_local(url)),
                     status=info.status.value, version=info.version, error=info.error)


def ensure_api_server(progress: Callable[[str], None] | None = None) -> ApiServer:
    """Make sure an API server answers; start the local one (with a progress line) if needed.

    A remote server (``SKYPILOT_API_SERVER_ENDPOINT``) is never started: if it does not answer,
    this raises a clear error.
    """
    server = api_server()
    if server.status == "healthy":
        return server
    if server.status == "needs_auth":
        raise OperationError(f"the SkyPilot API server at {server.url} needs you to log in",
                             f"run: sky api login -e {server.url}")
    if server.status == "version_mismatch":
        raise OperationError(f"SkyPilot here and the API server at {server.url} are different versions",
                             "restart the local server with `sky api stop`, or install the server's "
                             "SkyPilot version" if server.local else
                             "install the SkyPilot version your team's server runs")
    if not server.local:
        raise _unreachable(server.url, local=False)
    from gpu_lol.console import progress as progress_line

    # Our own progress line instead of SkyPilot's ("Failed to connect to SkyPilot API server at
    # ... Starting a local server.", its spinner and "SkyPilot API server started."): SkyPilot's
    # logging is silenced for the start (errors still raise and are explained).
    with progress_line("Starting SkyPilot's local API server (the first start takes 10-20 s)..."):
        call(_start_local_server)
    return api_server()


def _start_local_server() -> None:
    from sky import sky_logging
    from sky.server import common as server_common

    with sky_logging.silent():
        server_common.check_server_healthy_or_start_fn()


def _unreachable(url: str, *, local: bool) -> OperationError:
    if local:
        return OperationError(f"cannot reach SkyPilot's local API server at {url}",
                              "see ~/.sky/api_server/server.log; `sky api stop` and try again")
    return OperationError(f"cannot reach the SkyPilot API server at {url}",
                          "check the endpoint (SKYPILOT_API_SERVER_ENDPOINT or api_server.endpoint in "
                          "~/.sky/config.yaml) and your network/VPN; unset it to use a local server")


# --------------------------------------------------------------------------------------------
# Error mapping
# --------------------------------------------------------------------------------------------

CREDENTIALS_HINT = ("set up a provider: RunPod: `pip install \"skypilot[runpod]\"` and api_key in "
                    "~/.runpod/config.toml; Vast: `pip install \"skypilot[vast]\"` and your key in "
                    "~/.config/vastai/vast_api_key; Lambda: api_key in ~/.lambda_cloud/lambda_keys; "
                    "then run `gpu-lol check`")


def explain(exc: BaseException, *, what: str = "", alternatives: list[str] | None = None,
            tried: list[str] | None = None) -> GpuLolError:
    """Map a SkyPilot (or transport) exception to one line plus the fix.

    ``what`` names the request (e.g. ``RTX4090:1``), ``tried`` the providers, ``alternatives``
    the next cheapest options, for the capacity message.
    """
    if isinstance(exc, GpuLolError):
        return exc
    from sky import exceptions as sky_exc

    name = type(exc).__name__
    message = clean_message(exc)
    tried_text = ", ".join(DISPLAY.get(p, p) for p in (tried or []))
    if isinstance(exc, sky_exc.NoCloudAccessError) or (
            isinstance(exc, sky_exc.ResourcesUnavailableError) and "not enabled" in str(exc)):
        where = f" ({tried_text})" if tried_text else ""
        return OperationError(f"no cloud credentials: SkyPilot has no usable account for the providers "
                              f"in this plan{where}", CREDENTIALS_HINT)
    if isinstance(exc, sky_exc.ResourcesUnavailableError):
        subject = what or "the requested GPU"
        where = f" on {tried_text}" if tried_text else ""
        hint = ("next cheapest options: " + "; ".join(alternatives)) if alternatives else (
            "retry later (capacity changes by the minute), or pick another GPU with --gpu")
        return OperationError(f"no capacity: no {subject} available{where} right now", hint)
    if isinstance(exc, sky_exc.ApiServerAuthenticationError):
        url = _url_in(message)
        return OperationError(f"the SkyPilot API server{(' at ' + url) if url else ''} needs you to log in",
                              f"run: sky api login{(' -e ' + url) if url else ''}")
    if isinstance(exc, sky_exc.ApiServerConnectionError) or _is_connection_error(exc):
        from sky.server import common as server_common

        url = server_common.get_server_url()
        return _unreachable(server_common.redact_url_password(url),
                            local=bool(server_common.is_api_server_local(url)))
    if isinstance(exc, sky_exc.APIVersionMismatchError):
        return OperationError("SkyPilot here and its API server are different versions",
                              "restart the local server with `sky api stop`, or match the versions")
    if isinstance(exc, sky_exc.ClusterDoesNotExist):
        return OperationError(message, "see `gpu-lol ls`")
    if isinstance(exc, sky_exc.ClusterOwnerIdentityMismatchError):
        return OperationError(f"the cluster belongs to another account: {message}",
                              "switch to the account that launched it")
    if isinstance(exc, sky_exc.NotSupportedError):
        return OperationError(f"not supported by the provider: {message}")
    if isinstance(exc, sky_exc.RequestCancelled):
        return OperationError("the SkyPilot request was cancelled", "run the command again")
    if isinstance(exc, sky_exc.InvalidClusterNameError):
        return OperationError(f"invalid cluster name: {message}", "pass a different --name")
    if isinstance(exc, sky_exc.ResourcesMismatchError):
        return OperationError(f"a cluster with this name exists with other resources: {message}",
                              "pass another --name, or `gpu-lol down` the old one first")
    if isinstance(exc, RuntimeError) and "API server" in str(exc):
        return OperationError(f"SkyPilot's API server: {message}",
                              "see ~/.sky/api_server/server.log, or set SKYPILOT_API_SERVER_ENDPOINT")
    if isinstance(exc, KeyboardInterrupt):
        return OperationError("interrupted")
    return OperationError(f"SkyPilot failed: {name}: {message}",
                          "`sky api logs` shows SkyPilot's full log; rerun with --debug for a traceback")


def _url_in(text: str) -> str | None:
    match = re.search(r"https?://[^\s'\"]+", text)
    return match.group(0).rstrip(".") if match else None


def _is_connection_error(exc: BaseException) -> bool:
    try:
        import requests
    except ImportError:  # pragma: no cover - SkyPilot depends on requests
        return False
    return isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout))


class _SkyOutputToStderr:
    """SkyPilot's chatter (``click.echo``, spinners, its loggers' stdout handlers) -> stderr.

    Our stdout stays the command's result (``--json`` included). SkyPilot's log handlers hold
    the stdout stream they were created with, so ``redirect_stdout`` alone does not reach them.
    SkyPilot colours its lines whatever the stream is: on a pipe, a file or a NO_COLOR terminal
    they go through :func:`gpu_lol.console.plain_stream`, without ANSI escapes.
    """

    def __enter__(self):
        import contextlib
        import logging

        from gpu_lol.console import plain_stream

        err = plain_stream(sys.stderr)
        self._redirect = contextlib.redirect_stdout(err)
        self._redirect.__enter__()
        self._swapped: list[tuple[logging.StreamHandler, Any]] = []
        outs = {id(sys.__stdout__), id(sys.__stderr__), id(sys.stderr)}
        for name in ["sky", *[n for n in logging.Logger.manager.loggerDict if n.startswith("sky.")]]:
            logger = logging.getLogger(name)
            for handler in getattr(logger, "handlers", []):
                stream = getattr(handler, "stream", None)
                if isinstance(handler, logging.StreamHandler) and stream is not None and (
                        id(stream) in outs or getattr(stream, "name", None) in ("<stdout>", "<stderr>")):
                    self._swapped.append((handler, stream))
                    handler.setStream(err)
        return self

    def __exit__(self, *exc):
        for handler, stream in self._swapped:
            handler.setStream(stream)
        self._redirect.__exit__(*exc)
        return False


def call(fn: Callable[..., Any], *args: Any, explain_kw: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """Run a SkyPilot call with its output on stderr; any failure becomes our one-line error."""
    try:
        with _SkyOutputToStderr():
            return fn(*args, **kwargs)
    except GpuLolError:
        raise
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - every SkyPilot failure is explained, not re-raised raw
        raise explain(exc, **(explain_kw or {})) from None


# --------------------------------------------------------------------------------------------
# SDK wrappers
# --------------------------------------------------------------------------------------------

def _stream(request_id: Any, output=None) -> Any:
    import sky

    from gpu_lol.console import plain_stream

    return sky.stream_and_get(request_id, output_stream=plain_stream(output))


def _get(request_id: Any) -> Any:
    import sky

    return sky.get(request_id)


class LaunchInterrupted(OperationError):
    """Ctrl-C while a launch streams: the request keeps running on the API server."""

    exit_code = 130


@dataclass
class LaunchResult:
    job_id: int | None
    handle: Any
    credentials: dict[str, Any] | None
    request_id: str | None = None


class ProvisionTimeout(OperationError):
    """The launch was still provisioning after the timeout: cancelled and torn down."""


def launch(task: dict[str, Any], cluster_name: str, *, detach: bool = False, output=None,
           explain_kw: dict[str, Any] | None = None,
           provision_timeout_s: float | None = None) -> LaunchResult:
    """Submit the task with ``sky.launch``; stream SkyPilot's progress unless ``detach``.

    ``provision_timeout_s``: a launch request still running after that long (a pod that never
    starts its container bills all the same) is cancelled (``sky.api_cancel``) and the cluster
    torn down (``sky.down``); :class:`ProvisionTimeout` says so.
    """
    import threading

    import sky

    sky_task = validate_task(task)
    timed_out = threading.Event()

    def _run() -> LaunchResult:
        request_id = sky.launch(sky_task, cluster_name=cluster_name, _include_credentials=True)
        if detach:
            return LaunchResult(job_id=None, handle=None, credentials=None, request_id=str(request_id))
        timer = None
        if provision_timeout_s:
            def _give_up() -> None:
                timed_out.set()
                try:
                    sky.api_cancel(request_id)
                except Exception:  # noqa: BLE001 - the teardown below still runs
                    pass
            timer = threading.Timer(provision_timeout_s, _give_up)
            timer.daemon = True
            timer.start()
        try:
            result = _stream(request_id, output)
        except KeyboardInterrupt:
            if timer is not None:
                timer.cancel()
            raise LaunchInterrupted(
                f"interrupted: the launch of {cluster_name} goes on in SkyPilot's API server "
                f"(request {str(request_id)[:8]})",
                f"to stop it and any billing: sky api cancel {str(request_id)[:8]}; then "
                f"`gpu-lol down {cluster_name}`") from None
        except Exception:
            if timed_out.is_set():
                raise _provision_timed_out(cluster_name, provision_timeout_s, output) from None
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if timed_out.is_set():
            raise _provision_timed_out(cluster_name, provision_timeout_s, output)
        credentials = None
        if isinstance(result, tuple) and len(result) == 3:
            job_id, handle, credentials = result
        elif isinstance(result, tuple) and len(result) == 2:
            job_id, handle = result
        else:
            job_id, handle = None, None
        return LaunchResult(job_id=job_id, handle=handle, credentials=credentials,
                            request_id=str(request_id))

    return call(_run, explain_kw=explain_kw)


def _provision_timed_out(cluster_name: str, timeout_s: float | None, output=None) -> ProvisionTimeout:
    """Tear down what the cancelled launch left; the error says what happened."""
    import sky

    minutes = (timeout_s or 0) / 60
    torn = "torn down"
    try:
        _stream(sky.down(cluster_name), output)
    except Exception as exc:  # noqa: BLE001 - say so: the user must check
        if "does not exist" not in str(exc).lower():
            torn = f"NOT torn down ({clean_message(exc, 120)})"
    return ProvisionTimeout(
        f"{cluster_name} was still provisioning after {minutes:g} min: the launch was cancelled and the "
        f"cluster {torn}, so nothing bills while never starting",
        "try again later or another GPU/provider (--gpu, --cloud), or a longer --provision-timeout"
        + ("" if torn == "torn down" else f"; then `gpu-lol down {cluster_name}`"))


class _TailCapture:
    """A text stream that passes SkyPilot's log lines on live and keeps the last ones."""

    def __init__(self, out, keep: int = 25):
        import collections

        self._out = out
        self._partial = ""
        self.last = collections.deque(maxlen=keep)

    def write(self, text: str) -> int:
        from gpu_lol.console import strip_ansi

        self._out.write(text)
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        self.last.extend(strip_ansi(line) for line in lines if line.strip())
        return len(text)

    def flush(self) -> None:
        try:
            self._out.flush()
        except Exception:  # noqa: BLE001
            pass

    def isatty(self) -> bool:
        return False

    def lines(self) -> list[str]:
        tail = list(self.last)
        if self._partial.strip():
            from gpu_lol.console import strip_ansi

            tail.append(strip_ansi(self._partial))
        return tail


@dataclass
class JobOutcome:
    exit_code: int  # SkyPilot's JobExitCode: 0 succeeded, 100 failed, 101 not finished, 103 cancelled
    last_lines: list[str]


def follow_job(cluster_name: str, job_id: int | None, *, output=None) -> JobOutcome:
    """Follow the job's log (SkyPilot 0.14 runs setup as the first part of the first job) live
    to ``output`` until it ends; its exit code and last lines."""
    import sky

    from gpu_lol.console import plain_stream

    capture = _TailCapture(plain_stream(output))

    def _run() -> int:
        return sky.tail_logs(cluster_name, job_id, follow=True, output_stream=capture)

    code = call(_run, explain_kw={"what": f"the setup log of {cluster_name}"})
    try:
        code = int(code if code is not None else 0)
    except (TypeError, ValueError):
        code = 100
    return JobOutcome(exit_code=code, last_lines=capture.lines())


def ssh_config_path(cluster_name: str) -> Path:
    """``~/.sky/generated/ssh/<cluster>``: what ``gpu-lol ssh/exec`` connect with."""
    return Path.home() / ".sky" / "generated" / "ssh" / cluster_name


def ensure_ssh_config(cluster_name: str, launched: LaunchResult | None = None) -> Path | None:
    """Write the cluster's SSH config the way SkyPilot's CLI does; return its path or None.

    The SDK does not write it; ``sky launch``/``sky status`` in SkyPilot's CLI do (through
    ``sky.client.cli.command``). We call the same functions; if that fails we run
    ``sky status <cluster>`` itself.
    """
    path = ssh_config_path(cluster_name)
    try:
        from sky.client.cli import command as sky_cli

        with _SkyOutputToStderr():
            if launched is not None and launched.handle is not None and launched.credentials:
                sky_cli._set_ssh_config_from_launch_response(launched.handle, launched.credentials)
            else:
                sky_cli._get_cluster_records_and_set_ssh_config(clusters=[cluster_name])
    except (ImportError, AttributeError):
        _sky_status_subprocess(cluster_name)
    except Exception as exc:  # noqa: BLE001 - a missing SSH config must not fail a paid launch
        from gpu_lol.console import warn

        warn(f"could not write the SSH config for {cluster_name}: {clean_message(exc)}")
    if not path.exists():
        _sky_status_subprocess(cluster_name)
    return path if path.exists() else None


def write_ssh_configs(cluster_names: list[str]) -> None:
    """One ``sky status``-style round trip that writes the SSH configs of these clusters."""
    try:
        from sky.client.cli import command as sky_cli

        with _SkyOutputToStderr():
            sky_cli._get_cluster_records_and_set_ssh_config(clusters=list(cluster_names))
    except Exception as exc:  # noqa: BLE001 - listing must not fail over a local SSH config file
        from gpu_lol.console import warn

        warn(f"could not write SSH configs for {', '.join(cluster_names)}: {clean_message(exc)}")


def _sky_status_subprocess(cluster_name: str) -> None:
    sky_exe = Path(sys.executable).with_name("sky")
    argv = [str(sky_exe)] if sky_exe.exists() else [sys.executable, "-m", "sky.cli"]
    try:
        subprocess.run([*argv, "status", cluster_name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        pass


def endpoints(cluster_name: str) -> dict[int, str]:
    """The public endpoints SkyPilot reports for the cluster's ports ({8888: 'host:41234'});
    empty when it exposes none (or they are not ready yet). Never raises: it is display data."""
    import sky

    try:
        with _SkyOutputToStderr():
            found = _get(sky.endpoints(cluster_name))
    except Exception:  # noqa: BLE001 - no ports, not up yet, an old server: nothing to show
        return {}
    out: dict[int, str] = {}
    for port, url in (found or {}).items():
        try:
            out[int(port)] = str(url)
        except (TypeError, ValueError):
            continue
    return dict(sorted(out.items()))


PORT_NOTES = {
    "vast": ("Vast exposes one port only: SkyPilot's Vast provisioner maps container port 8080 to "
             "the SSH port + 1 and no other"),
    "runpod": "RunPod maps each port to a random public port: use the endpoint `gpu-lol info` shows, not PORT",
    "lambda": ("Lambda firewall rules are account-wide: opening a port opens it on every Lambda "
               "instance of your account"),
}


# RunPod hosts whose driver runs CUDA 12.4 at most are still rented, and SkyPilot 0.14.1's RunPod
# provisioner sends no allowedCudaVersions (sky/provision/runpod/utils.py: launch; skypilot
# issue #8408), so an image built for a newer CUDA can land on a host that refuses it.
RUNPOD_SAFE_CUDA = (12, 4)
RUNPOD_SAFE_IMAGE = "runpod/pytorch:0.7.0-cu1241-torch251-ubuntu2204"


def image_cuda(image: str) -> tuple[int, int] | None:
    """The CUDA version an image is built for, from its tag (cu1281 -> 12.8, cuda12.4.1 -> 12.4)."""
    m = re.search(r"(?:^|[-:_])cu(?:da)?(\d{2})\.?(\d)(?:\.?\d)?(?:[-_.]|$)", image.lower())
    if not m:
        m = re.match(r"(?:docker\.io/)?nvidia/cuda:(\d{2})\.(\d)", image.lower())  # nvidia/cuda:12.9.1-...
    if not m:
        return None
    return int(m.group(1)), int(m.group(2))


def runpod_cuda_warning(providers: Iterable[str], image: str, compute_capability: str | None) -> str | None:
    """A warning when RunPod may place this image on a host whose driver is too old for it."""
    if "runpod" not in set(providers):
        return None
    cuda = image_cuda(image or "")
    if cuda is None or cuda <= RUNPOD_SAFE_CUDA:
        return None
    try:
        if compute_capability and float(compute_capability) >= 10.0:
            return None  # Blackwell hosts run drivers new enough for CUDA 12.8
    except ValueError:
        pass
    return (f"RunPod may place this CUDA {cuda[0]}.{cuda[1]} image on a host whose driver stops at CUDA 12.4 "
            "(SkyPilot 0.14 cannot filter RunPod hosts by CUDA): the container is refused and the launch "
            f"fails; relaunch, or pin base_image: {RUNPOD_SAFE_IMAGE} (CUDA 12.4, torch 2.5.1)")


def port_warnings(providers: Iterable[str], ports: Iterable[int]) -> list[str]:
    """What each provider does with ``ports`` (empty without ports), and the portable way."""
    ports = sorted({int(p) for p in ports})
    if not ports:
        return []
    shown = ", ".join(map(str, ports))
    out = [f"ports {shown}: {PORT_NOTES[p]}" for p in dict.fromkeys(providers) if p in PORT_NOTES]
    if out:
        out.append(f"ports {shown}: `gpu-lol forward NAME {ports[0]}` (or `gpu-lol ssh -L {ports[0]}`) "
                   "reaches them over SSH on every provider, with nothing opened to the internet")
    return out


def remove_ssh_config(cluster_name: str) -> None:
    try:
        from sky.utils import cluster_utils

        cluster_utils.SSHConfigHelper.remove_cluster(cluster_name)
    except Exception:  # noqa: BLE001 - cleanup of a local file; never blocks a teardown
        pass


@dataclass
class ClusterStatus:
    """One cluster as SkyPilot reports it (plain data)."""

    name: str
    status: str  # UP | INIT | STOPPED
    provider: str | None = None
    region: str | None = None
    accelerators: str | None = None
    resources: str | None = None
    launched_at: int | None = None
    autostop_minutes: int = -1
    autostop_down: bool = False
    price_hr: float | None = None
    nodes: int = 1
    spot: bool = False
    user: str | None = None

    @property
    def can_stop(self) -> bool:
        return not self.spot and (self.provider or "") not in CANNOT_STOP

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _record_value(record: Any, key: str, default: Any = None) -> Any:
    if isinstance(record, dict):
        return record.get(key, default)
    return getattr(record, key, default)


def _to_status(record: Any) -> ClusterStatus:
    status = _record_value(record, "status")
    status_text = getattr(status, "value", status)
    handle = _record_value(record, "handle")
    provider = _record_value(record, "cloud")
    price = None
    spot = False
    launched = getattr(handle, "launched_resources", None) if handle is not None else None
    if launched is not None:
        try:
            price = round(float(launched.get_cost(3600)) * int(getattr(handle, "launched_nodes", 1) or 1), 4)
        except Exception:  # noqa: BLE001 - price is optional display data
            price = None
        spot = bool(getattr(launched, "use_spot", False))
        if provider is None and getattr(launched, "cloud", None) is not None:
            provider = str(launched.cloud)
    return ClusterStatus(
        name=_record_value(record, "name"),
        status=str(status_text),
        provider=provider.lower() if isinstance(provider, str) else provider,
        region=_record_value(record, "region"),
        accelerators=_record_value(record, "accelerators"),
        resources=_record_value(record, "resources_str"),
        launched_at=_record_value(record, "launched_at"),
        autostop_minutes=int(_record_value(record, "autostop", -1) if
                             _record_value(record, "autostop") is not None else -1),
        autostop_down=bool(_record_value(record, "to_down", False)),
        price_hr=price,
        nodes=int(_record_value(record, "nodes", 1) or 1),
        spot=spot,
        user=_record_value(record, "user_name"),
    )


def status(names: list[str] | None = None, *, refresh: bool = False) -> list[ClusterStatus]:
    """Clusters SkyPilot knows (all of this user's, or the named ones that exist)."""
    import sky

    def _run():
        mode = sky.StatusRefreshMode.AUTO if refresh else sky.StatusRefreshMode.NONE
        return _get(sky.status(names, refresh=mode, all_users=names is not None))

    return [_to_status(r) for r in call(_run)]


def status_one(name: str) -> ClusterStatus | None:
    found = [c for c in status([name]) if c.name == name]
    return found[0] if found else None


def down(name: str, *, output=None) -> None:
    import sky

    call(lambda: _stream(sky.down(name), output))
    remove_ssh_config(name)


def stop(name: str, *, output=None) -> None:
    import sky

    call(lambda: _stream(sky.stop(name), output))


def start(name: str, *, idle_minutes: int | None = None, autostop_down: bool = False, output=None) -> None:
    import sky

    kwargs: dict[str, Any] = {}
    if idle_minutes and idle_minutes > 0:
        kwargs = {"idle_minutes_to_autostop": int(idle_minutes), "down": bool(autostop_down)}
    call(lambda: _stream(sky.start(name, **kwargs), output))


def cost_report(days: int | None = None) -> list[dict[str, Any]]:
    """SkyPilot's cost report as plain rows (name, provider, resources, hours, cost, ...)."""
    import sky

    rows = call(lambda: _get(sky.cost_report(days=days)))
    out = []
    for row in rows or []:
        resources = _record_value(row, "resources")
        status = _record_value(row, "status")
        cloud = _record_value(row, "cloud") or getattr(resources, "cloud", None)
        out.append({
            "name": _record_value(row, "name"),
            "status": str(getattr(status, "value", status)) if status is not None else "-",
            "provider": str(cloud).lower() if cloud is not None else None,
            "resources": _record_value(row, "resources_str") or (str(resources) if resources is not None
                                                                else None),
            "launched_at": _record_value(row, "launched_at"),
            "hours": round(float(_record_value(row, "duration", 0) or 0) / 3600.0, 3),
            "cost": round(float(_record_value(row, "total_cost", 0) or 0), 4),
        })
    return out


def enabled_providers(providers: Iterable[str]) -> dict[str, bool]:
    """Which of ``providers`` SkyPilot can launch on (runs SkyPilot's credential check)."""
    from sky.client import sdk

    wanted = list(providers)
    result = call(lambda: _get(sdk.check(tuple(wanted), verbose=False)))
    enabled: set[str] = set()
    for clouds in (result or {}).values():
        for cloud, capabilities in (clouds or {}).items():
            if "compute" in [str(getattr(c, "value", c)).lower() for c in capabilities or []]:
                enabled.add(str(cloud).lower())
    return {p: p in enabled for p in wanted}
